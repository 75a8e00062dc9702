"""Streams, warnings, resources and messages under stress (issue 9, classes 7, 9-12).

Every case runs the real command line (a subprocess where signals, pipes, closed
descriptors or file types matter) and checks the exit code, that stderr is one
plain line (or nothing) without a traceback, and that the inputs are unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

PY = sys.executable
QUICK = ("--frames", "2", "--hold", "0", "--width", "200", "--height", "150")
RAW_WARNING = re.compile(r"\w+Warning\b|\.py:\d+:|^\s+\S.*\n", re.MULTILINE)


# ----------------------------------------------------------------------------- helpers


def shrink(*args, cwd=None, timeout=120, **kw) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess."""
    return subprocess.run(
        [PY, "-m", "shrinkcli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        **kw,
    )


def bash(script: str, cwd, timeout=120, env=None) -> subprocess.CompletedProcess:
    """A bash line in which "$SHRINK" is the CLI: for >&-, 2>&-, <(...) and pipes."""
    full_env = {**os.environ, "SHRINK": f"{PY} -m shrinkcli", **(env or {})}
    return subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=full_env,
    )


def one_line(proc, code: int = 2, *parts: str) -> str:
    """The exit code, one 'shrink: error:' line on stderr, no traceback; returns it."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shrink: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


def no_raw_warning(stderr: str) -> None:
    """Every stderr line is shrink's own: no 'file.py:12: SomeWarning' and no source line."""
    for line in stderr.splitlines():
        assert line.startswith("shrink: "), stderr
    assert not re.search(r"\.py:\d+: \w*Warning", stderr), stderr


def digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (FIFOs skipped) and its SHA-256."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def unchanged(before: dict[str, str], folder: Path) -> None:
    """Every file that was there is byte-identical, and no temporary file is left."""
    after = digests(folder)
    assert {k: after.get(k) for k in before} == before
    assert not [k for k in after if ".shrink-tmp-" in k]


def write_data(path: Path, n_cluster: int = 30, seed: int = 888) -> Path:
    from shrinkcli.output import csv_lines
    from shrinkcli.scenario import Scenario
    from shrinkcli.simulate import simulate

    d = simulate(Scenario(n_cluster=n_cluster, seed=seed))
    path.write_text("".join(csv_lines({"y": d.y, "x": d.x, "cluster": d.cluster})))
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    write_data(tmp_path / "d.csv")
    return tmp_path


def limited_memory(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


# ----------------------------------------------------------------------------- 7: stdout


@pytest.mark.parametrize(
    "args",
    [
        ("fit",),
        ("fit", "--json"),
        ("fit", "--data", "d.csv"),
        ("simulate", "--n-cluster", "5"),
        ("run", "-o", "x.gif", *QUICK),
        ("run", "-o", "x.png", "--json", *QUICK),
    ],
)
def test_full_stdout_is_one_line_exit_1(folder, args):
    before = digests(folder)
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [PY, "-m", "shrinkcli", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=folder,
            timeout=120,
        )
    one_line(proc, 1, "cannot write to standard output: No space left on device")
    unchanged(before, folder)


@pytest.mark.parametrize(
    "args,what",
    [
        ("fit", "the summary"),
        ("fit --json", "the summary"),
        ("fit --estimates e.csv", "the summary"),  # refused before e.csv is written
        ("simulate --n-cluster 5", "the simulated data"),
        ("simulate -o s.csv --effects -", "--effects"),
        ("run -o x.gif --json " + " ".join(QUICK), "--json"),
        ("batch s.toml -d out --json " + " ".join(QUICK), "--json"),
    ],
)
def test_closed_stdout_refused_before_any_work(folder, args, what):
    (folder / "s.toml").write_text("n-cluster = 5\n")
    before = digests(folder)
    proc = bash(f"$SHRINK {args} >&-", folder)
    one_line(proc, 2, "standard output is closed", what)
    assert digests(folder) == before  # nothing written at all
    assert not (folder / "out").exists()


def test_closed_stdout_without_a_result_on_it_still_works(folder):
    """run and batch print only paths when not --json: the files are the result."""
    proc = bash(f"$SHRINK run -o x.gif {' '.join(QUICK)} >&-", folder)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert (folder / "x.gif").read_bytes()[:6] == b"GIF89a"
    (folder / "s.toml").write_text("n-cluster = 5\n")
    proc = bash(f"$SHRINK batch s.toml -d out {' '.join(QUICK)} >&-", folder)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert (folder / "out" / "index.csv").exists()


def test_closed_stdout_never_gives_its_number_to_a_file(folder):
    """With fd 1 closed, the first file opened would get number 1: shrink parks
    /dev/null there, so no print can land in an output file."""
    before = digests(folder)
    proc = bash("$SHRINK fit --data d.csv --estimates e.csv --json >&-", folder)
    one_line(proc, 2, "standard output is closed")
    assert not (folder / "e.csv").exists()
    proc = bash(f"$SHRINK run --data d.csv -o x.png {' '.join(QUICK)} >&-", folder)
    assert proc.returncode == 0, proc.stderr
    assert (folder / "x.png").read_bytes()[:4] == b"\x89PNG"
    unchanged(before, folder)


def _pipe(args, reader, cwd) -> tuple[int, str, bytes]:
    """shrink ARGS | READER; returns shrink's exit code and stderr, and what READER wrote."""
    writer = subprocess.Popen(
        [PY, "-m", "shrinkcli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd
    )
    consumer = subprocess.Popen(reader, stdin=writer.stdout, stdout=subprocess.PIPE, cwd=cwd)
    writer.stdout.close()
    got, _ = consumer.communicate(timeout=60)
    err = writer.stderr.read().decode()
    return writer.wait(timeout=60), err, got


@pytest.mark.parametrize(
    "args,reader",
    [
        (("fit",), ["true"]),
        (("fit", "--json"), ["head", "-c", "10"]),
        (("fit", "--json", "--ml"), ["head", "-c", "1"]),
        (("simulate", "--n-cluster", "3"), ["head", "-c", "10"]),  # small: fits the pipe
        (("simulate", "--n-cluster", "3000"), ["head", "-n", "2"]),  # large: EPIPE
        (("run", "-o", "x.png", "--json", *QUICK), ["head", "-c", "10"]),
    ],
)
def test_a_reader_that_leaves_early_gives_141_every_time(tmp_path, args, reader):
    for _ in range(3):  # the same whatever the timing
        code, err, _ = _pipe(args, reader, tmp_path)
        assert code == 141 and err == "", (code, err)


def test_readers_that_take_everything_give_0(tmp_path):
    code, err, got = _pipe(("fit", "--json"), ["cat"], tmp_path)
    assert code == 0 and err == "" and got.decode().rstrip().endswith("}")
    slow = ["bash", "-c", "sleep 0.5; cat"]  # reads late, but all of it
    code, err, got = _pipe(("fit",), slow, tmp_path)
    assert code == 0 and got.startswith(b"Linear mixed model")
    head = ["head", "-c", "100000"]  # leaves after reading everything there was
    code, err, got = _pipe(("fit",), head, tmp_path)
    assert code == 0 and got.endswith(b"\n")


def test_a_reader_that_reads_only_after_shrink_exits_loses_nothing(tmp_path):
    """A reader that waits longer than READER_WAIT: shrink exits 0, the data stay in
    the pipe for it."""
    from shrinkcli.cli import READER_WAIT

    start = time.monotonic()
    code, _, got = _pipe(("fit",), ["bash", "-c", f"sleep {READER_WAIT + 1.5}; cat"], tmp_path)
    assert code == 0 and got.startswith(b"Linear mixed model")
    assert time.monotonic() - start < READER_WAIT + 30


@pytest.mark.parametrize(
    "args,code",
    [
        ("fit --data nope.csv", 2),
        ("run --data nope.csv -o x.gif", 2),
        ("simulate --n-cluster 1", 2),
        ("fit --bogus", 2),
        ("fit --balanced 0.003", 0),  # a warning, with stderr closed
    ],
)
def test_closed_stderr_never_moves_messages_to_stdout(folder, args, code):
    before = digests(folder)
    proc = bash(f"$SHRINK {args} 2>&-", folder)
    assert proc.returncode == code
    assert "shrink:" not in proc.stdout and "Traceback" not in proc.stdout
    if code == 0:
        assert proc.stdout.startswith("Linear mixed model")
    else:
        assert proc.stdout == ""
    unchanged(before, folder)


def test_closed_stdin_is_harmless_and_data_dash_says_so(folder):
    proc = bash("$SHRINK fit --data d.csv <&-", folder)
    assert proc.returncode == 0 and proc.stdout.startswith("Linear mixed model")
    one_line(bash("$SHRINK fit --data - <&-", folder), 2, "standard input")


# ----------------------------------------------------------------------------- 9: warnings


@pytest.mark.parametrize(
    "text,parts",
    [
        ("# comment\n{data}", ["comment", "remove the comment lines"]),
        ("# a, b, c\n{data}", ["comment"]),  # a comment with commas: three 'columns'
        ("{semi_comma}", ["semicolons with decimal commas", "comma-separated"]),
        ("{semi}", ["semicolons", "comma-separated"]),
        ("{tabs}", ["tabs"]),
        ("y,x\n1,2,a\n2,3,b\n", ["more fields than the header"]),
    ],
)
def test_csv_that_pandas_warns_about_is_one_plain_line(folder, text, parts):
    data = (folder / "d.csv").read_text()
    body = text.format(
        data=data,
        semi_comma=data.replace(",", ";").replace(".", ","),
        semi=data.replace(",", ";"),
        tabs=data.replace(",", "\t"),
    )
    (folder / "w.csv").write_text(body)
    before = digests(folder)
    line = one_line(shrink("fit", "--data", "w.csv", cwd=folder), 2, *parts)
    assert "Warning" not in line
    unchanged(before, folder)


@pytest.mark.parametrize(
    "args",
    [
        ("--engine", "statsmodels", "--sigma", "0"),
        ("--engine", "statsmodels", "--n-cluster", "2"),
        ("--engine", "statsmodels", "--balanced", "0.003"),
        ("--sigma", "0"),
        ("--n-cluster", "2"),
        ("--balanced", "0.003"),
        ("--sd-slope", "1e6"),
        ("--obs-per-cluster", "1"),
    ],
)
def test_numerical_warnings_are_plain_lines(tmp_path, args):
    proc = shrink("fit", *args, cwd=tmp_path, timeout=300)
    assert proc.returncode in (0, 1, 2), proc.stderr
    assert "Traceback" not in proc.stderr
    no_raw_warning(proc.stderr)


def test_a_nul_in_a_title_is_no_warning(tmp_path):
    (tmp_path / "s.toml").write_text('title = "a\\u0000b\\u0007c"\n')
    for quiet in ((), ("-q",)):
        proc = shrink("run", "--scenario", "s.toml", "-o", "x.gif", *QUICK, *quiet, cwd=tmp_path)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_missing_glyphs_are_one_line_and_nothing_with_quiet(tmp_path):
    proc = shrink("run", "-o", "x.png", "--title", "数据 Ω", *QUICK, cwd=tmp_path)
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("shrink: warning: the font"), proc.stderr
    proc = shrink("run", "-o", "x.png", "--title", "数据 Ω", "-q", *QUICK, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""


def test_an_unusable_matplotlib_folder_is_one_line_and_nothing_with_quiet(tmp_path):
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "file")}
    (tmp_path / "file").write_text("not a folder")
    proc = shrink("run", "-o", "x.png", *QUICK, cwd=tmp_path, env=env)
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "MPLCONFIGDIR" in lines[0] and lines[0].startswith("shrink: warn")
    proc = shrink("run", "-o", "x.png", "-q", *QUICK, cwd=tmp_path, env=env)
    assert proc.returncode == 0 and proc.stderr == ""


def test_the_safety_net_turns_any_leftover_warning_into_one_line(cli, tmp_path, monkeypatch):
    """A real matplotlib warning (identical xlims) means nothing to the user: nothing;
    any other warning is one line, shown once; -q silences both."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    import shrinkcli.pipeline as pipeline

    real = pipeline.make_picture

    def noisy(*args, **kwargs):
        Figure().add_subplot().set_xlim(1.0, 1.0)  # matplotlib's own UserWarning
        for _ in range(3):
            warnings.warn("something odd\nacross lines", RuntimeWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "make_picture", noisy)
    res = cli("run", "-o", tmp_path / "x.png", *QUICK)
    assert res.code == 0
    assert res.err.splitlines() == ["shrink: warning: something odd across lines"]
    res = cli("run", "-o", tmp_path / "x.png", "-q", *QUICK)
    assert res.code == 0 and res.err == ""


# ----------------------------------------------------------------------------- 10: tracebacks


@pytest.mark.parametrize(
    "args,limit,size",
    [
        (("simulate", "--n-cluster", "2000000", "-o", "s.csv"), 1_500_000_000, "20,000,000"),
        (("fit", "--n-cluster", "2000000", "--estimates", "e.csv"), 1_500_000_000, "20,000,000"),
        (("fit", "--n-cluster", "2000000"), 800_000_000, "20,000,000"),
        (
            ("run", "--n-cluster", "100000", "--path", "pooling", "-o", "p.gif", *QUICK),
            1_000_000_000,
            "1,000,000",
        ),
    ],
)
def test_out_of_memory_names_the_size_and_what_to_do(tmp_path, args, limit, size):
    proc = shrink(*args, cwd=tmp_path, timeout=300, preexec_fn=limited_memory(limit))
    line = one_line(proc, 1, "out of memory with", size, "--n-cluster")
    if "pooling" in args:
        assert "--path straight" in line
    assert proc.stdout == "" and list(tmp_path.iterdir()) == []  # nothing half-written


def test_out_of_memory_reading_a_file_names_the_file(tmp_path):
    big = write_data(tmp_path / "big.csv", n_cluster=50_000)  # 500,000 rows, 22 MB
    before = digests(tmp_path)
    proc = shrink("fit", "--data", big, cwd=tmp_path, preexec_fn=limited_memory(300_000_000))
    if proc.returncode == 0:
        pytest.skip("300 MB were enough on this machine")
    one_line(proc, 1, "out of memory with the data in", "big.csv", "MB")
    unchanged(before, tmp_path)


LONG = "a" * 300


@pytest.mark.parametrize(
    "args,part",
    [
        (("fit", "--data", f"{LONG}.csv"), "longer than the file system allows"),
        (("run", "--scenario", f"{LONG}.toml", "-o", "x.gif"), "longer than the file system"),
        (("run", "-o", f"{LONG}.gif"), "longer than the file system allows"),
        (("fit", "--estimates", f"{LONG}.csv"), "longer than the file system allows"),
        (("simulate", "--effects", f"{LONG}.csv"), "longer than the file system allows"),
        (("fit", "--data", "x/" * 2100 + "d.csv"), "longer than the file system allows"),
        (("run", "--scenario", "x/" * 2100 + "s.toml"), "longer than the file system"),
        (("fit", "--data", "d.csv/x.csv"), "is a file, not a folder"),
        (("run", "--scenario", "d.csv/s.toml"), "is a file, not a folder"),
    ],
)
def test_paths_the_system_refuses_are_one_line(folder, args, part):
    before = digests(folder)
    line = one_line(shrink(*args, cwd=folder), 2, part)
    assert len(line) < 500
    unchanged(before, folder)


def _interrupt_after_import(cmd: list[str], module: str) -> subprocess.CompletedProcess:
    """Start ``cmd`` with -X importtime and send Ctrl-C as soon as ``module`` has been
    imported: a point in `shrink`'s start reached whatever the machine's load."""
    done = re.compile(rf"\|\s+{re.escape(module)}\s*$")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(60, proc.kill)  # bound the wait
    timer.start()
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if done.search(line):
                proc.send_signal(signal.SIGINT)
                break
        rest = proc.stderr.read()
        out = proc.stdout.read()
        code = proc.wait(timeout=60)
    finally:
        timer.cancel()
    assert seen and done.search(seen[-1]), f"{module} was never imported"
    return subprocess.CompletedProcess(cmd, code, out, rest)


# newer typer vendors click as typer._click; older typer (0.16, our lowest) imports click
CLICK_CORE = "typer._click.core" if importlib.util.find_spec("typer._click") else "click.core"


@pytest.mark.parametrize(
    "module",
    [
        CLICK_CORE,  # early in `import typer`
        "typer.main",  # the end of `import typer`
        "typer",  # the last of cli.py's imports
        "shrinkcli.errors",  # imported by main(): the command has started
    ],
)
@pytest.mark.parametrize("script", [False, True], ids=["python -m shrinkcli", "shrink script"])
def test_ctrl_c_while_importing_is_130_without_traceback(module, script):
    exe = Path(PY).parent / "shrink"
    if script and not exe.exists():
        pytest.skip("the console script is not installed")
    start = [str(exe)] if script else ["-m", "shrinkcli"]
    proc = _interrupt_after_import([PY, "-X", "importtime", *start, "fit"], module)
    assert proc.returncode == 130, proc.stderr[-500:]
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr
    ours = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert ours == ["shrink: error: interrupted"] and proc.stdout == ""


def test_csv_text_is_made_chunk_by_chunk(tmp_path):
    """The CSV writer turns one block of rows into text at a time: writing 1M rows
    adds almost nothing to the peak memory (it added ~190 MB when every value became a
    string first; 50 M rows needed about 17 GB)."""
    code = """
import resource, numpy as np
from shrinkcli.output import csv_lines
n = 1_000_000
cols = {"y": np.random.default_rng(1).normal(size=n), "x": np.arange(n) / 7.0,
        "cluster": np.arange(n) // 10}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open("/dev/null", "w") as fh:
    fh.writelines(csv_lines(cols))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) < 60_000, f"peak grew by {int(proc.stdout) // 1024} MB"


def test_the_streamed_csv_is_the_same_csv(tmp_path):
    import numpy as np

    from shrinkcli.output import csv_lines

    cols = {"y": np.array([1.5, np.nan, -0.0]), "cluster": np.array(["a,b", "=x", "c"], object)}
    whole = "".join(csv_lines(cols, chunk=10))
    assert "".join(csv_lines(cols, chunk=1)) == whole
    assert whole == 'y,cluster\n1.5,"a,b"\nNA,\'=x\n-0.0,c\n'


# ----------------------------------------------------------------------------- 11: messages


def _feed(path: Path, data: bytes) -> threading.Thread:
    def write() -> None:
        with open(path, "wb") as fh:
            fh.write(data)

    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


def _summary(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "Data:" not in line)


def test_a_fifo_is_read_once(folder):
    expected = shrink("fit", "--data", "d.csv", cwd=folder)
    fifo = folder / "pipe.csv"
    os.mkfifo(fifo)
    before = digests(folder)
    writer = _feed(fifo, (folder / "d.csv").read_bytes())
    proc = shrink("fit", "--data", fifo, cwd=folder, timeout=60)
    writer.join(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert _summary(proc.stdout) == _summary(expected.stdout)
    writer = _feed(fifo, (folder / "d.csv").read_bytes())  # run: checked, then read once
    proc = shrink("run", "--data", fifo, "-o", "x.png", *QUICK, cwd=folder, timeout=60)
    writer.join(timeout=30)
    assert proc.returncode == 0, proc.stderr
    unchanged(before, folder)


def test_process_substitution_and_stdin_are_read(folder):
    expected = shrink("fit", "--data", "d.csv", cwd=folder).stdout
    proc = bash("$SHRINK fit --data <(cat d.csv)", folder)
    assert proc.returncode == 0 and _summary(proc.stdout) == _summary(expected)
    proc = bash("cat d.csv | $SHRINK fit --data -", folder)
    assert proc.returncode == 0 and _summary(proc.stdout) == _summary(expected)
    assert "Data: stdin" in proc.stdout
    proc = bash("$SHRINK fit --data - --json < d.csv", folder)
    assert proc.returncode == 0 and '"data": "stdin"' in proc.stdout


def test_a_stream_whose_labels_need_a_second_look_is_still_read_once(tmp_path):
    """A long column typed in chunks (numbers, then text) is parsed twice: from memory."""
    rows = [f"{i % 7},{i % 5},{i % 50}" for i in range(300_000)] + ["1,2,late", "2,3,late"]
    text = "y,x,cluster\n" + "\n".join(rows) + "\n"
    (tmp_path / "d.csv").write_text(text)
    expected = shrink("fit", "--data", "d.csv", "--json", cwd=tmp_path, timeout=300)
    proc = bash("$SHRINK fit --data - --json < d.csv", tmp_path, timeout=300)
    assert proc.returncode == 0 and expected.returncode == 0, proc.stderr
    assert '"n_clusters": 51' in proc.stdout
    assert proc.stdout.replace('"stdin"', '"d.csv"') == expected.stdout


@pytest.mark.parametrize(
    "args,parts",
    [
        (("fit", "--data", "/dev/null"), ["/dev/null is empty"]),
        (("fit", "--data", ""), ["--data is empty", "give the path"]),
        (("run", "--data", "", "-o", "x.gif"), ["--data is empty"]),
        (("fit", "--data", "."), ["is a folder"]),
        (("batch", "s.toml", "--data", "-"), ["standard input", "save it to a file"]),
    ],
)
def test_data_paths_that_are_no_data(folder, args, parts):
    (folder / "s.toml").write_text("")
    before = digests(folder)
    one_line(shrink(*args, cwd=folder), 2, *parts)
    unchanged(before, folder)


def test_batch_refuses_a_stream_that_several_scenarios_would_read(folder):
    (folder / "a.toml").write_text("")
    (folder / "b.toml").write_text("")
    os.mkfifo(folder / "pipe.csv")
    one_line(shrink("batch", "a.toml", "b.toml", "--data", "pipe.csv", cwd=folder), 2, "once")


@pytest.mark.parametrize(
    "header,flags",
    [
        ("y ,x ,cluster ", ()),
        (" y , x , cluster ", ()),
        ('"y ","x ","cluster "', ()),
        ("resp ,pred,school ", ("--y", "resp", "--x", " pred ", "--cluster", "school")),
    ],
)
def test_column_names_are_stripped_on_both_sides(folder, header, flags):
    lines = (folder / "d.csv").read_text().splitlines()
    (folder / "h.csv").write_text("\n".join([header, *lines[1:]]) + "\n")
    proc = shrink("fit", "--data", "h.csv", *flags, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    expected = shrink("fit", "--data", "d.csv", cwd=folder).stdout
    assert _summary(proc.stdout) == _summary(expected)


def test_two_columns_that_differ_only_in_spaces_are_refused(folder):
    lines = (folder / "d.csv").read_text().splitlines()
    body = [f"{row},{row.split(',')[0]}" for row in lines[1:]]
    (folder / "h.csv").write_text("\n".join(["y,x,cluster,y ", *body]) + "\n")
    one_line(shrink("fit", "--data", "h.csv", cwd=folder), 2, "two columns named 'y'")


@pytest.mark.parametrize(
    "content,code,part",
    [
        ("\ufeffn-cluster = 30\n".encode(), 0, ""),
        ("\ufefftitle = 'Ünïcode'\nn-cluster = 30\n".encode(), 0, ""),
        ("title = 'Müller'\n".encode("latin-1"), 2, "not UTF-8"),
        ("title = 'x'\n".encode("utf-16"), 2, "not UTF-8"),
    ],
)
def test_scenario_encodings(tmp_path, content, code, part):
    (tmp_path / "s.toml").write_bytes(content)
    before = digests(tmp_path)
    proc = shrink("run", "--scenario", "s.toml", "-o", "x.png", *QUICK, cwd=tmp_path)
    if code:
        one_line(proc, code, "s.toml", part)
        assert "UnicodeDecodeError" not in proc.stderr
    else:
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    unchanged(before, tmp_path)


@pytest.mark.parametrize(
    "line",
    [
        "frames = [" + ", ".join(["1"] * 1_000_000) + "]",
        'ease = "' + "w" * 1_000_000 + '"',
        "title = " + "1" * 10_000,
        "x" * 100_000 + " = 1",
        'name = "' + "é" * 100_000 + '"',
        'data = "' + "d" * 100_000 + '.csv"',
        "sd-int = [[" + "1," * 100_000 + "]]",
        "frames = " + "[" * 100_000 + "]" * 100_000,  # nested beyond the parser's recursion
    ],
    ids=lambda line: line[:24],  # pytest < 9.2 puts whole ids in the environment: too long
)
def test_huge_values_are_cut_in_messages(tmp_path, line):
    (tmp_path / "s.toml").write_text(line + "\n")
    proc = shrink("run", "--scenario", "s.toml", "-o", "x.gif", cwd=tmp_path)
    error = one_line(proc, 2, "s.toml")
    assert len(error) < 400, len(error)
    for quoted in re.findall(r"(?<!\w)'([^']*)'(?!\w)", error):
        assert len(quoted) <= 60


def test_messages_are_one_line_with_quoted_values_cut():
    from shrinkcli.cli import _one_line

    long = "w" * 100
    assert _one_line(f"--ease '{long}' is not known") == f"--ease '{'w' * 58}…' is not known"
    # the text between two short quoted values is not a value
    text = f"column 'y' of /{'p' * 80}/d.csv has 1 bad value (row 2: 'foo'); it's wrong"
    assert _one_line(text) == text
    assert _one_line("two\nlines\r\n  and more") == "two lines and more"
    assert len(_one_line("x" * 100_000)) == 1000


def test_huge_flag_values_are_cut_in_messages(tmp_path):
    for args in (("fit", "--engine", "x" * 100_000), ("run", "--ease", "w" * 100_000)):
        error = one_line(shrink(*args, cwd=tmp_path), 2)
        assert len(error) < 400


@pytest.mark.parametrize(
    "target,part",
    [
        ("outs/.gif", "'.gif' is only a suffix; give a name, e.g. outs/shrinkage.gif"),
        (".png", "'.png' is only a suffix"),
        ("outs/.MP4", "only a suffix"),
        ("x.gif ", "ends in a space"),
        ("outs", "it is a folder"),
        ("x.gif/", "ending in '/' is a folder"),
        ("base.csv/x.gif", "base.csv is a file, not a folder; choose another folder"),
        ("x.txt", "must end in .gif, .mp4 or .png"),
    ],
)
def test_output_names_get_the_right_message(tmp_path, target, part):
    (tmp_path / "outs").mkdir()
    (tmp_path / "base.csv").write_text("y,x,cluster\n")
    before = digests(tmp_path)
    one_line(shrink("run", "-o", target, cwd=tmp_path), 2, part)
    unchanged(before, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.csv", "outs"]


@pytest.mark.parametrize(
    "title",
    ["two\nlines", "tab\there", "$x^2$ and $\\frac{$", "50% of $5", "\\textbf{x}", " " * 3],
)
def test_titles_are_plain_text_on_one_line(tmp_path, title):
    proc = shrink("run", "-o", "t.png", "--title", title, *QUICK, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_a_newline_in_a_title_draws_as_a_space(tmp_path):
    a = shrink("run", "-o", "a.png", "--title", "one\ntwo", *QUICK, cwd=tmp_path)
    b = shrink("run", "-o", "b.png", "--title", "one two", *QUICK, cwd=tmp_path)
    assert a.returncode == b.returncode == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_plain_text():
    from shrinkcli.config import plain_text

    assert plain_text("a\nb\x00c\x7f  d\t") == "a b c d"
    assert plain_text("x\udcffy") == "x\ufffdy"  # an undecodable byte from argv
    assert plain_text("$x^2$ ünï 数据") == "$x^2$ ünï 数据"


# ----------------------------------------------------------------------------- 12: scenario data


@pytest.fixture
def tree(tmp_path) -> Path:
    """scen/ holds scenario files and inside.csv; secret.csv lies outside, with long
    column names and a row that must never appear in a message."""
    (tmp_path / "scen" / "sub").mkdir(parents=True)
    write_data(tmp_path / "scen" / "inside.csv")
    write_data(tmp_path / "scen" / "sub" / "deeper.csv")
    names = [f"column_{i}_" + "n" * 60 for i in range(6)]
    (tmp_path / "secret.csv").write_text(
        ",".join(names) + "\n" + ",".join(["TOPSECRET"] * 6) + "\n"
    )
    return tmp_path


@pytest.mark.parametrize(
    "data",
    [
        "../secret.csv",
        "{root}/secret.csv",  # absolute
        "sub/../../secret.csv",
        "{root}/scen/inside.csv",  # absolute, even inside the folder
        "link.csv",  # a link inside the folder to a file outside it
        "/etc/os-release",
    ],
)
@pytest.mark.parametrize("command", ["run", "batch"])
def test_scenario_data_outside_its_folder_is_refused(tree, data, command):
    (tree / "scen" / "link.csv").symlink_to(tree / "secret.csv")
    (tree / "scen" / "s.toml").write_text(f'data = "{data.format(root=tree)}"\n')
    before = digests(tree)
    args = (
        ("run", "--scenario", "scen/s.toml", "-o", "x.gif")
        if command == "run"
        else ("batch", "scen/s.toml", "-d", "out")
    )
    line = one_line(shrink(*args, *QUICK, cwd=tree), 2, "scen/s.toml", "outside", "--allow-outside")
    assert "TOPSECRET" not in line and "column_" not in line and "NAME=" not in line
    unchanged(before, tree)
    assert not (tree / "out").exists() and not (tree / "x.gif").exists()


@pytest.mark.parametrize("data", ["inside.csv", "sub/deeper.csv", "./sub/../inside.csv"])
def test_scenario_data_inside_its_folder_is_read(tree, data):
    (tree / "scen" / "s.toml").write_text(f'data = "{data}"\n')
    before = digests(tree)
    proc = shrink("run", "--scenario", "scen/s.toml", "-o", "x.png", *QUICK, cwd=tree)
    assert proc.returncode == 0, proc.stderr
    unchanged(before, tree)


def test_allowed_outside_data_errors_name_the_scenario_and_three_short_columns(tree):
    (tree / "scen" / "s.toml").write_text('data = "../secret.csv"\n')
    before = digests(tree)
    for args in (
        ("run", "--scenario", "scen/s.toml", "-o", "x.gif", "--allow-outside-data"),
        ("batch", "scen/s.toml", "-d", "out", "--allow-outside-data"),
    ):
        proc = shrink(*args, *QUICK, cwd=tree)
        code = 2 if args[0] == "run" else 1  # a batch reports a failed scenario
        assert proc.returncode == code, proc.stderr
        line = proc.stderr.strip().splitlines()[-1]
        assert "Traceback" not in proc.stderr and "scen/s.toml" in line
        quoted = re.findall(r"'(column_[^']*)'", line)
        assert len(quoted) == 3 and all(len(q) <= 40 for q in quoted), line
        assert "and 3 more" in line and "TOPSECRET" not in proc.stderr
    unchanged(before, tree)


def test_a_data_flag_is_the_users_own_choice(tree):
    """--data on the command line overrides the scenario's and is not confined."""
    (tree / "scen" / "s.toml").write_text('data = "inside.csv"\n')
    write_data(tree / "mine.csv")
    proc = shrink(
        "run", "--scenario", "scen/s.toml", "--data", "mine.csv", "-o", "x.png", *QUICK, cwd=tree
    )
    assert proc.returncode == 0, proc.stderr


def test_values_from_a_file_are_quoted_short(tree):
    (tree / "scen" / "bad.csv").write_text("y,x,cluster\n1,2,a\n" + "z" * 5000 + ",3,b\n2,1,b\n")
    (tree / "scen" / "s.toml").write_text('data = "bad.csv"\n')
    line = one_line(shrink("run", "--scenario", "scen/s.toml", "-o", "x.gif", cwd=tree), 2)
    assert "scen/s.toml" in line and "non-numeric" in line and "z" * 41 not in line


def test_read_scenario_policy_in_the_library(tree, monkeypatch):
    from shrinkcli.config import outside_data_allowed, read_scenario
    from shrinkcli.errors import UsageError

    s = tree / "scen" / "s.toml"
    s.write_text('data = "../secret.csv"\n')
    with pytest.raises(UsageError, match="outside the scenario's folder"):
        read_scenario(s)
    assert read_scenario(s, allow_outside_data=True)["data"] == str(s.parent / "../secret.csv")
    with outside_data_allowed():
        assert read_scenario(s)["data"].endswith("secret.csv")
    with pytest.raises(UsageError):
        read_scenario(s)  # the block ended
    s.write_text('data = "-"\n')  # a file named '-', never standard input
    (tree / "scen" / "-").write_text("y,x,cluster\n")
    assert read_scenario(s)["data"] == str(tree / "scen" / "-")
    monkeypatch.chdir(tree / "scen")
    assert read_scenario("s.toml")["data"] == "./-"
