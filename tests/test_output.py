"""Nothing lost, nothing garbled: outputs never harm inputs, special files are respected,
temporary files never linger, and every table parses (issue 9, classes 1-3, 6 and 8)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_cli_robust import QUICK, one_line, shrink

from shrinkcli.output import TEMP_PREFIX, check_distinct, neutralise, remove_stale, temp_name

ROOT = os.geteuid() == 0


def _digest(*paths: Path) -> list[str]:
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


@pytest.fixture
def data_csv(tmp_path) -> Path:
    path = tmp_path / "v.csv"
    assert shrink("simulate", "--n-cluster", "5", "-o", path).returncode == 0
    return path


# ----------------------------------------------------------------------------- 1: output = input


@pytest.mark.parametrize(
    "spell",
    ["same", "dot-slash", "symlink", "hardlink", "absolute"],
)
def test_fit_estimates_onto_its_data_is_refused(tmp_path, data_csv, spell):
    target = {
        "same": "v.csv",
        "dot-slash": "./v.csv",
        "absolute": str(data_csv),
        "symlink": "link.csv",
        "hardlink": "hard.csv",
    }[spell]
    if spell == "symlink":
        (tmp_path / "link.csv").symlink_to("v.csv")
    if spell == "hardlink":
        os.link(data_csv, tmp_path / "hard.csv")
    before = _digest(data_csv)
    proc = shrink("fit", "--data", "v.csv", "--estimates", target, cwd=tmp_path)
    one_line(proc)
    assert "same file as the input --data" in proc.stderr
    assert _digest(data_csv) == before


def test_simulate_output_and_effects_on_one_file_is_refused(tmp_path):
    proc = shrink("simulate", "-o", tmp_path / "s.csv", "--effects", tmp_path / "s.csv")
    one_line(proc)
    assert not (tmp_path / "s.csv").exists()


def test_run_onto_its_data_is_refused(tmp_path, data_csv):
    shutil.copy(data_csv, tmp_path / "d.png")
    before = _digest(tmp_path / "d.png")
    proc = shrink("run", "--data", tmp_path / "d.png", "-o", tmp_path / "d.png", *QUICK)
    one_line(proc)
    assert _digest(tmp_path / "d.png") == before


def test_run_onto_a_scenario_files_data_is_refused(tmp_path, data_csv):
    shutil.copy(data_csv, tmp_path / "d.png")
    (tmp_path / "s.toml").write_text('data = "d.png"\n')
    before = _digest(tmp_path / "d.png")
    proc = shrink("run", "--scenario", tmp_path / "s.toml", "-o", tmp_path / "d.png", *QUICK)
    one_line(proc)
    assert _digest(tmp_path / "d.png") == before


def test_batch_data_named_like_an_output_is_refused(tmp_path, data_csv):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(data_csv, out / "mine_estimates.csv")
    (tmp_path / "mine.toml").write_text('data = "out/mine_estimates.csv"\n')
    before = _digest(out / "mine_estimates.csv")
    proc = shrink("batch", tmp_path / "mine.toml", "--out-dir", out, *QUICK)
    one_line(proc)
    assert _digest(out / "mine_estimates.csv") == before
    assert sorted(p.name for p in out.iterdir()) == ["mine_estimates.csv"]


def test_batch_scenario_file_named_like_an_output_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    scenario = out / "a_fit.json"  # a TOML file with an unlucky name
    scenario.write_text('name = "a"\nn-cluster = 5\n')
    before = _digest(scenario)
    proc = shrink("batch", scenario, "--out-dir", out, *QUICK)
    one_line(proc)
    assert _digest(scenario) == before


def test_outputs_that_collide_are_refused_before_work(tmp_path):
    a = tmp_path / "a.csv"
    with pytest.raises(Exception, match="give each output its own name"):
        check_distinct([("-o", a), ("--effects", tmp_path / "." / "a.csv")])
    # /dev/null may take several outputs
    check_distinct([("-o", "/dev/null"), ("--effects", "/dev/null")])


@pytest.mark.parametrize(
    "args",
    [
        ("simulate", "--effects", "-"),
        ("simulate", "-o", "-", "--effects", "-"),
        ("fit", "--estimates", "-"),
        ("fit", "--estimates", "-", "--json"),
    ],
)
def test_two_outputs_on_stdout_are_refused(args):
    proc = shrink(*args)
    one_line(proc)
    assert "standard output" in proc.stderr and proc.stdout == ""


# ----------------------------------------------------------------------------- 2: special files


def test_symlink_is_followed_and_stays_a_link(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    (tmp_path / "link.csv").symlink_to("real.csv")
    assert shrink("simulate", "--n-cluster", "3", "-o", tmp_path / "link.csv").returncode == 0
    assert (tmp_path / "link.csv").is_symlink()
    assert real.read_text().startswith("y,x,cluster\n")


def _into_fifo(fifo, *args):
    """Run shrink with ``-o fifo`` while a thread reads the FIFO: (process, bytes read)."""
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    proc = shrink(*args, "-o", fifo, timeout=60)
    reader.join(timeout=30)
    return proc, got


def test_fifo_is_streamed_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe.csv"
    proc, got = _into_fifo(fifo, "simulate", "--n-cluster", "3")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got and got[0].startswith(b"y,x,cluster\n") and len(got[0].splitlines()) == 31


def test_gif_into_a_fifo_is_streamed(tmp_path):
    fifo = tmp_path / "pipe.gif"
    proc, got = _into_fifo(fifo, "run", *QUICK)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and got[0][:6] == b"GIF89a"


@pytest.mark.skipif(not ROOT, reason="making device nodes needs root")
def test_device_nodes_are_written_not_replaced(tmp_path):
    null = tmp_path / "null.gif"
    full = tmp_path / "full.csv"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    assert shrink("run", "-o", null, *QUICK).returncode == 0
    assert stat.S_ISCHR(os.stat(null).st_mode)
    proc = shrink("simulate", "-o", full)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert stat.S_ISCHR(os.stat(full).st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_dev_stdout_is_written_not_replaced():
    before = os.readlink("/dev/stdout") if os.path.islink("/dev/stdout") else None
    proc = shrink("simulate", "--n-cluster", "3", "-o", "/dev/stdout")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("y,x,cluster\n")
    after = os.readlink("/dev/stdout") if os.path.islink("/dev/stdout") else None
    assert before == after


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for >(...)")
def test_process_substitution_works(tmp_path):
    script = (
        f"{sys.executable} -m shrinkcli simulate --n-cluster 3 -o >(gzip > {tmp_path}/x.gz); "
        "wait; sleep 0.5"
    )
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for _ in range(50):  # the gzip process may finish just after bash
        if (tmp_path / "x.gz").exists() and (tmp_path / "x.gz").stat().st_size > 0:
            break
        time.sleep(0.1)
    assert gzip.decompress((tmp_path / "x.gz").read_bytes()).startswith(b"y,x,cluster\n")


def test_existing_file_keeps_its_mode(tmp_path):
    target = tmp_path / "private.csv"
    target.write_text("old\n")
    target.chmod(0o600)
    assert shrink("simulate", "--n-cluster", "3", "-o", target).returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text().startswith("y,x,cluster")


@pytest.mark.skipif(not ROOT, reason="changing a file's owner needs root")
def test_existing_file_keeps_its_owner(tmp_path):
    target = tmp_path / "theirs.gif"
    target.write_bytes(b"old")
    os.chown(target, 1234, 2345)
    target.chmod(0o640)
    assert shrink("run", "-o", target, *QUICK).returncode == 0
    st = target.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 2345, 0o640)
    assert target.read_bytes()[:6] == b"GIF89a"


def test_new_file_gets_the_usual_mode(tmp_path):
    old = os.umask(0o022)
    try:
        assert shrink("simulate", "--n-cluster", "3", "-o", tmp_path / "n.csv").returncode == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "n.csv").stat().st_mode) == 0o644


# ----------------------------------------------------------------------------- 3: temporary files


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    dead = tmp_path / f"{TEMP_PREFIX}{_dead_pid()}-abc123-x.gif"
    alive = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-abc123-y.gif"
    other = tmp_path / ".x.gif.keepme.gif"
    for p in (dead, alive, other):
        p.write_bytes(b"partial")
    assert shrink("run", "-o", tmp_path / "x.gif", *QUICK).returncode == 0
    assert not dead.exists() and alive.exists() and other.exists()


def test_a_killed_writer_leaves_a_named_file_that_the_next_run_removes(tmp_path):
    target = tmp_path / "big.gif"
    proc = subprocess.Popen(
        [sys.executable, "-m", "shrinkcli", "run", "-o", str(target), "--n-cluster", "2000",
         "--frames", "400", "--hold", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    temps: list[Path] = []
    while time.monotonic() < deadline and not temps:
        temps = [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert temps, "the writer never created its temporary file"
    assert temps[0].exists() and f"-{proc.pid}-" in temps[0].name
    assert shrink("simulate", "--n-cluster", "3", "-o", tmp_path / "s.csv").returncode == 0
    assert not temps[0].exists() and not target.exists()


def test_a_long_legal_name_is_written(tmp_path):
    name = "n" * 245 + ".csv"  # 249 bytes: legal, though the temporary name adds more
    assert shrink("simulate", "--n-cluster", "3", "-o", tmp_path / name).returncode == 0
    assert (tmp_path / name).read_text().startswith("y,x,cluster")
    assert len(os.fsencode(temp_name(tmp_path / name))) <= 255
    assert temp_name(tmp_path / name).endswith(".csv")


def test_a_name_too_long_is_one_line(tmp_path):
    proc = shrink("simulate", "-o", tmp_path / ("n" * 300 + ".csv"))
    one_line(proc)
    assert "longer than the file system allows" in proc.stderr


def test_remove_stale_ignores_other_files(tmp_path):
    (tmp_path / f"{TEMP_PREFIX}notapid-abc123-x").write_text("")
    (tmp_path / "plain.csv").write_text("")
    assert remove_stale(tmp_path) == []


# ----------------------------------------------------------------------------- 6: tables


def test_estimates_csv_quotes_and_neutralises_text_labels(tmp_path):
    labels = ["a,b", "line\nbreak", "=cmd|calc", '"quoted"', "+1", "@sum", "plain"]
    rows = [["y", "x", "cluster"]]
    for k, label in enumerate(labels):
        rows += [[str(k + i * 0.5 + (i % 2) * 0.3), str(i), label] for i in range(4)]
    with (tmp_path / "d.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    proc = shrink("fit", "--data", tmp_path / "d.csv", "--estimates", tmp_path / "e.csv")
    assert proc.returncode == 0, proc.stderr
    with (tmp_path / "e.csv").open(newline="") as fh:
        table = list(csv.reader(fh))
    header, body = table[0], table[1:]
    assert len(body) == len(labels) and all(len(r) == len(header) for r in body)
    got = {r[0] for r in body}
    want = {neutralise(lab) for lab in labels}
    assert got == want
    assert "'=cmd|calc" in got and "a,b" in got and "line\nbreak" in got and "'+1" in got
    # numbers are never touched, negative ones included
    assert all(not r[2].startswith("'") for r in body)


def test_neutralise_follows_owasp():
    for bad in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert neutralise(bad) == "'" + bad
    assert neutralise("ok=1") == "ok=1"
