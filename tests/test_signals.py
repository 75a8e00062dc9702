"""Signals through the real CLI: a killed batch leaves no process behind, Ctrl-C lets
the running MP4 scenarios finish, and ffmpeg never takes a signal meant for shrink.

Every test runs `shrink` in a session of its own and sends signals as a terminal or
the out-of-memory killer would; every wait is bounded, so a hang fails the test.
Processes are found through /proc (Linux only).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds processes through /proc (Linux)"
)

SHRINK = [sys.executable, "-m", "shrinkcli"]
SIZE = ["--width", "200", "--height", "150", "--hold", "2"]
# long enough that the signal lands mid-render (about 2 s a scenario), short enough
# that a test takes seconds
FRAMES = {"gif": "400", "mp4": "600"}


# ----------------------------------------------------------------------------- helpers


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces and ')'
    return fields[0], int(fields[1]), int(fields[19])


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _descendants(root: int) -> dict[int, int]:
    """Every live process below ``root``: pid -> start time (to tell a reused pid)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            children.setdefault(st[1], []).append(int(entry))
    found, todo = {}, [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            st = _stat(pid)
            if st is not None and st[0] != "Z":
                found[pid] = st[2]
                todo.append(pid)
    return found


def _alive(procs: dict[int, int]) -> dict[int, list[str]]:
    """Those of ``procs`` still running (a zombie has ended: init reaps it)."""
    alive = {}
    for pid, start in procs.items():
        st = _stat(pid)
        if st is not None and st[2] == start and st[0] != "Z":
            alive[pid] = _cmdline(pid)
    return alive


def _wait_for(what: str, check, timeout: float):
    """Poll ``check()`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def _is_encoder(pid: int) -> bool:
    """ffmpeg encoding an animation (not imageio-ffmpeg's version check)."""
    return "rawvideo" in _cmdline(pid)


def _encoders(root: int) -> dict[int, str]:
    """Running ffmpeg encoders below ``root``: pid -> the file they write."""
    return {pid: _cmdline(pid)[-1] for pid in _descendants(root) if _is_encoder(pid)}


def _scenarios(folder: Path, n: int) -> list[Path]:
    files = []
    for i in range(1, n + 1):
        path = folder / f"s{i}.toml"
        path.write_text(f'name = "s{i}"\nseed = {i}\n')
        files.append(path)
    return files


@contextlib.contextmanager
def _started(args: list, *, cwd: Path, sigint=signal.SIG_DFL, prefix=None):
    """`shrink ARGS` in a session of its own (as a terminal's job), with SIGINT at
    ``sigint`` (a background job of a script ignores it); stderr to a file. Whatever
    is left of it is killed afterwards."""
    err = cwd / "stderr.txt"
    with err.open("wb") as fh:
        proc = subprocess.Popen(
            [*(prefix or SHRINK), *map(str, args)],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=fh,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
        )
    seen: dict[int, int] = {}
    try:
        yield proc, err, seen
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for pid in _alive(seen):  # only what the test recorded: never a stranger
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _valid_mp4(path: Path, frames: int) -> bool:
    import imageio_ffmpeg

    head = path.read_bytes()[:12]
    if len(head) < 12 or head[4:8] != b"ftyp":
        return False
    return imageio_ffmpeg.count_frames_and_secs(str(path))[0] == frames


def _temporary(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# ----------------------------------------------------------------------------- killed parent

# the same batch, with the kernel's parent-death signal and with the watching thread only
NO_PDEATHSIG = [
    sys.executable,
    "-c",
    "import shrinkcli.batch as b; b._death_signal = lambda signum: None; "
    "from shrinkcli.cli import entry; entry()",
]


@pytest.mark.parametrize(
    "fmt,prefix",
    [("gif", None), ("mp4", None), ("gif", NO_PDEATHSIG)],
    ids=["gif", "mp4", "gif-thread-only"],
)
def test_workers_of_a_killed_batch_exit(tmp_path, fmt, prefix):
    files = _scenarios(tmp_path, 4)
    out = tmp_path / "out"
    args = ["batch", *files, "--out-dir", out, "--format", fmt, "--jobs", "2", "-q",
            "--frames", FRAMES[fmt], *SIZE]  # fmt: skip
    with _started(args, cwd=tmp_path, prefix=prefix) as (proc, err, seen):

        def rendering():
            # two workers, and below one of them the GIF child or an ffmpeg encoder
            procs = _descendants(proc.pid)
            workers = [p for p in procs if _stat(p) and _stat(p)[1] == proc.pid]
            helpers = [p for p in procs if p not in workers]
            if fmt == "mp4":
                helpers = [p for p in helpers if _is_encoder(p)]
            return procs if len(workers) == 2 and helpers else None

        seen.update(_wait_for("the workers to render", rendering, timeout=60))
        proc.kill()  # as the out-of-memory killer does
        proc.wait(timeout=10)
        _wait_for("every process of the batch to end", lambda: not _alive(seen), timeout=20)
    assert "Traceback" not in err.read_text()
    # a worker unwinds its scenario as on Ctrl-C: no temporary file, no half output
    assert _temporary(out) == []
    for gif in out.glob("*.gif"):
        assert gif.read_bytes().endswith(b";")  # the GIF trailer: written whole
    for mp4 in out.glob("*.mp4"):
        assert _valid_mp4(mp4, int(FRAMES[fmt]) + 2)


@pytest.mark.parametrize("fmt", ["gif", "mp4"])
def test_the_helper_of_a_killed_run_ends_by_itself(tmp_path, fmt):
    # `shrink run` SIGKILLed: the GIF child sees it is orphaned, ffmpeg reads the end
    # of its input; neither lives on (the temporary file is for a later run to remove)
    args = ["run", "-o", f"x.{fmt}", "-q", "--frames", "3000", *SIZE]
    with _started(args, cwd=tmp_path) as (proc, _, seen):
        if fmt == "gif":
            helpers = _wait_for("the GIF child", lambda: _descendants(proc.pid), timeout=60)
        else:
            helpers = _wait_for("ffmpeg", lambda: _encoders(proc.pid), timeout=60)
        seen.update({pid: start for pid, start in _descendants(proc.pid).items()
                     if pid in helpers})  # fmt: skip
        assert seen
        proc.kill()
        proc.wait(timeout=10)
        _wait_for("the helper to end", lambda: not _alive(seen), timeout=20)
    assert not (tmp_path / f"x.{fmt}").exists()


# ----------------------------------------------------------------------------- Ctrl-C, MP4


def test_ctrl_c_lets_running_mp4_scenarios_finish(tmp_path):
    files = _scenarios(tmp_path, 3)
    out = tmp_path / "out"
    frames = int(FRAMES["mp4"])
    args = ["batch", *files, "--out-dir", out, "--format", "mp4", "--jobs", "2",
            "--frames", frames, *SIZE]  # fmt: skip
    with _started(args, cwd=tmp_path) as (proc, err, seen):
        encoders = _wait_for("two ffmpeg encoders",
                             lambda: (e := _encoders(proc.pid)) and len(e) == 2 and e,
                             timeout=60)  # fmt: skip
        seen.update({p: s for p, s in _descendants(proc.pid).items() if p in encoders})
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C at the terminal does
        code = proc.wait(timeout=60)
    stderr = err.read_text()
    assert code == 130
    assert stderr == "shrink: error: interrupted\n"  # one line, no traceback, no ffmpeg
    running = {f"s{i}" for i in range(1, 4) if any(f"s{i}.mp4" in Path(t).name
                                                  for t in encoders.values())}  # fmt: skip
    assert len(running) == 2
    for name in running:  # every file of a running scenario, the MP4 complete
        assert _valid_mp4(out / f"{name}.mp4", frames + 2), name
        assert (out / f"{name}_estimates.csv").stat().st_size > 0
        assert (out / f"{name}_fit.json").stat().st_size > 0
    for mp4 in out.glob("*.mp4"):  # a scenario that was queued: whole or not there
        assert _valid_mp4(mp4, frames + 2), mp4.name
    assert _temporary(out) == []
    assert not _alive(seen)


def test_a_background_batch_ignores_ctrl_c_and_so_does_ffmpeg(tmp_path):
    # `shrink batch ... &` in a script starts with SIGINT ignored; a Ctrl-C to the
    # script's process group must not reach ffmpeg (it stopped with "exit 255")
    files = _scenarios(tmp_path, 2)
    out = tmp_path / "out"
    frames = int(FRAMES["mp4"])
    args = ["batch", *files, "--out-dir", out, "--format", "mp4", "--jobs", "2",
            "--frames", frames, *SIZE]  # fmt: skip
    with _started(args, cwd=tmp_path, sigint=signal.SIG_IGN) as (proc, err, _):
        _wait_for("two ffmpeg encoders", lambda: len(_encoders(proc.pid)) == 2, timeout=60)
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=60)
    assert code == 0 and err.read_text() == ""
    for name in ("s1", "s2"):
        assert _valid_mp4(out / f"{name}.mp4", frames + 2), name
    assert (out / "index.csv").exists() and _temporary(out) == []


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupted_mp4_run_stops_ffmpeg(tmp_path, sig):
    # ffmpeg is in a session of its own now, so the signal to the group misses it:
    # shrink itself must stop it
    args = ["run", "-o", "x.mp4", "-q", "--frames", "3000", *SIZE]
    with _started(args, cwd=tmp_path) as (proc, err, seen):
        encoders = _wait_for("ffmpeg", lambda: _encoders(proc.pid), timeout=60)
        seen.update({p: s for p, s in _descendants(proc.pid).items() if p in encoders})
        os.killpg(proc.pid, getattr(signal, sig))
        code = proc.wait(timeout=60)
    if sig == "SIGINT":
        assert code == 130 and err.read_text() == "shrink: error: interrupted\n"
    else:  # SIGTERM unwinds like Ctrl-C, silently
        assert code == 143 and err.read_text() == ""
    assert list(p.name for p in tmp_path.iterdir()) == ["stderr.txt"]
    _wait_for("ffmpeg to end", lambda: not _alive(seen), timeout=10)
