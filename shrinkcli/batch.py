"""Many scenarios at once, in parallel processes, with an index of what was made."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shrinkcli.errors import ShrinkError, UsageError
from shrinkcli.pipeline import SIM_KEYS

FORMATS = ("gif", "mp4", "png", "html")


@dataclass(frozen=True)
class Job:
    """One scenario to run: its file, its merged values and where its outputs go."""

    source: str
    name: str
    values: dict[str, Any]
    animation: Path
    estimates: Path
    summary: Path


def plan(files: list[str], out_dir: Path, fmt: str, overrides: dict[str, Any]) -> list[Job]:
    """Read every scenario file up front, so a malformed one stops the batch before work."""
    from shrinkcli.config import merge, read_scenario

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not known; use one of {', '.join(FORMATS)}")
    if not files:
        raise UsageError("no scenario files given; e.g. shrink batch scenarios/*.toml")
    jobs, seen = [], {}
    from shrinkcli.encode import check_target
    from shrinkcli.pipeline import check_values

    for file in files:
        values = merge(read_scenario(file), overrides)
        name = values.get("name") or Path(file).stem
        try:
            _, settings = check_values(values)
            size = (settings.width, settings.height)
            check_target(out_dir / f"{name}.{fmt}", fps=settings.fps, size=size)
        except ShrinkError as exc:  # a data path that is no file, too
            raise UsageError(f"{file}: {exc}") from None
        if name in seen:
            raise UsageError(f"{file}: name {name!r} is also used by {seen[name]}; rename one")
        seen[name] = file
        jobs.append(
            Job(
                source=str(file),
                name=name,
                values=values,
                animation=out_dir / f"{name}.{fmt}",
                estimates=out_dir / f"{name}_estimates.csv",
                summary=out_dir / f"{name}_fit.json",
            )
        )
    _check_outputs(jobs, out_dir)
    return jobs


def _check_outputs(jobs: list[Job], out_dir: Path) -> None:
    """No output of the batch may be an input of it (a scenario or data file) or another
    of its outputs: checked before any work."""
    from shrinkcli.output import check_distinct

    inputs = [("scenario file", j.source) for j in jobs]
    inputs += [(f"data of {j.source}", j.values["data"]) for j in jobs if j.values.get("data")]
    outputs = [
        ("the batch index", out_dir / "index.json"),
        ("the batch index", out_dir / "index.csv"),
    ]
    for j in jobs:
        outputs += [(f"an output of {j.source}", p) for p in (j.animation, j.estimates, j.summary)]
    check_distinct(outputs, inputs)


def run_job(job: Job) -> dict[str, Any]:
    """Run one scenario and write its three files; failures become a row, not an exception."""
    from shrinkcli.output import csv_lines, text_output
    from shrinkcli.pipeline import run_values
    from shrinkcli.summary import estimates_columns, to_json

    start = time.perf_counter()
    row: dict[str, Any] = {"name": job.name, "file": job.source, "title": job.values.get("title")}
    try:
        result = run_values(job.values, job.animation)
        fits, data = result.fits, result.data
        with text_output(str(job.estimates)) as fh:
            fh.writelines(csv_lines(estimates_columns(fits, data.labels, data.truth)))
        doc = to_json(fits, truth=data.truth, source=data.source)
        with text_output(str(job.summary)) as fh:
            fh.write(json.dumps(doc, indent=2) + "\n")
    except Exception as exc:  # one failed scenario must not stop the others
        reason = str(exc) if isinstance(exc, ShrinkError) else f"{type(exc).__name__}: {exc}"
        row.update(status="failed", error=reason, seconds=time.perf_counter() - start)
        return row
    row.update(
        status="ok",
        error="",
        parameters={
            k: job.values.get(k) for k in (*SIM_KEYS, "data") if job.values.get(k) is not None
        },
        fit=_fit_fields(doc),
        truth_rmse=doc.get("truth_rmse"),
        outputs={
            "animation": str(job.animation),
            "estimates": str(job.estimates),
            "summary": str(job.summary),
        },
        warnings=doc["warnings"],
        seconds=time.perf_counter() - start,
    )
    return row


def _fit_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The index's fit columns; a random-intercept model has no slope variance or
    correlation (None), and y ~ 1 + (1 | g) no fixed slope."""
    r, f = doc["random"], doc["fixed"]
    return {
        "method": doc["method"],
        "criterion": doc["criterion"],
        "fixed_intercept": f["intercept"]["estimate"],
        "fixed_slope": f.get("slope", {}).get("estimate"),
        "var_intercept": r["intercept"]["var"],
        "var_slope": r.get("slope", {}).get("var"),
        "corr": r.get("corr"),
        "var_residual": r["residual"]["var"],
        "singular": doc["singular"],
        "n_obs": doc["n_obs"],
        "n_clusters": doc["n_clusters"],
    }


def run_batch(jobs: list[Job], *, n_jobs: int | None = None, on_done=None) -> list[dict[str, Any]]:
    """Run jobs in parallel processes; rows come back in the order of the jobs."""
    n_jobs = max(1, min(n_jobs or os.cpu_count() or 1, len(jobs)))
    if n_jobs == 1:
        rows = []
        for job in jobs:
            rows.append(run_job(job))
            if on_done:
                on_done(rows[-1])
        return rows
    _warm_up()
    rows_by_job: dict[int, dict[str, Any]] = {}
    # fork on Linux (the default there before Python 3.14): the workers share the
    # libraries _warm_up imported, and each worker's parent is this process
    context = multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
    pool = ProcessPoolExecutor(
        max_workers=n_jobs, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
    )
    try:
        futures = {pool.submit(_run_in_worker, job): i for i, job in enumerate(jobs)}
        for fut in as_completed(futures):
            rows_by_job[futures[fut]] = fut.result()
            if on_done:
                on_done(rows_by_job[futures[fut]])
    finally:
        # on Ctrl-C: scenarios already running (and the few already queued) finish all
        # their files, as workers ignore SIGINT; the rest are cancelled. Further Ctrl-Cs
        # are ignored until the workers are joined: an interrupted shutdown orphans them.
        with sigint_ignored():
            pool.shutdown(wait=True, cancel_futures=True)
    return [rows_by_job[i] for i in range(len(jobs))]


# ----------------------------------------------------------------------------- workers
#
# A worker whose batch process dies (SIGKILL, the out-of-memory killer) must not live
# on: the job queue's pipes stay open in the sibling workers, so it would wait for work
# for ever. The kernel sends the worker _ORPHAN_SIGNAL when its parent dies
# (PR_SET_PDEATHSIG, Linux), and a thread that watches the parent's pid does the same
# everywhere. The handler unwinds a running scenario as Ctrl-C would (temporary files
# removed, ffmpeg and the GIF child stopped), then the worker exits; an idle worker
# exits at once. The thread repeats the signal, as an exception raised by a signal
# handler can be lost (Python only reports one raised inside an at-fork callback or a
# destructor); if the main thread has not unwound within _ORPHAN_GRACE (stuck in C
# code), the thread ends the process. SIGINT and SIGTERM keep their meaning.

# a signal of its own (None on Windows): the handler ignores it while the parent lives
_ORPHAN_SIGNAL = getattr(signal, "SIGUSR1", None)
_ORPHAN_GRACE = 3.0  # seconds to unwind a running scenario before the worker just exits
_RERAISE = 1.0  # seconds an unwinding takes at most before its exception counts as lost
_POLL = 0.25  # seconds between looks at the parent's pid, and between repeated signals
_worker: dict[str, Any] = {}  # this worker's pid, parent, and whether busy or orphaned


class _ParentGone(BaseException):
    """Raised in a worker's main thread when the batch process has died."""


def _start_worker(parent: int) -> None:
    """Pool initializer: ignore Ctrl-C (running scenarios finish), stop when orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker.update(pid=os.getpid(), parent=parent, busy=False, raised=-_RERAISE)
    if _ORPHAN_SIGNAL is not None:
        signal.signal(_ORPHAN_SIGNAL, _on_orphan_signal)
        sys.unraisablehook = _quiet_about_parent(sys.unraisablehook)
        _death_signal(_ORPHAN_SIGNAL)
    threading.Thread(target=_watch_parent, name="shrink-parent-watch", daemon=True).start()


def _death_signal(signum: int) -> None:
    """Ask the kernel for ``signum`` when the parent dies (Linux; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # the watching thread still works
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signum), 0, 0, 0)  # PR_SET_PDEATHSIG = 1


def _orphaned() -> bool:
    """True in a worker whose parent has died (init or a subreaper adopted it)."""
    return os.getpid() == _worker["pid"] and os.getppid() != _worker["parent"]


def _watch_parent() -> None:
    """Thread: on the parent's death, signal the main thread; exit if it cannot unwind."""
    while not _orphaned():
        time.sleep(_POLL)
    deadline = time.monotonic() + _ORPHAN_GRACE
    while _ORPHAN_SIGNAL is not None and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), _ORPHAN_SIGNAL)  # the handler ignores what it has handled
        time.sleep(_POLL)
    os._exit(1)


def _on_orphan_signal(signum: int, frame: Any) -> None:
    if not _orphaned():  # a stray signal
        return
    if not _worker["busy"]:
        os._exit(1)
    now = time.monotonic()
    if now - _worker["raised"] < _RERAISE:  # unwinding: let the clean-up finish
        return
    _worker["raised"] = now
    raise _ParentGone


def _quiet_about_parent(hook):
    """sys.unraisablehook that says nothing about a _ParentGone Python had to drop."""

    def quiet(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, _ParentGone):
            hook(unraisable)

    return quiet


def _run_in_worker(job: Job) -> dict[str, Any]:
    """run_job in a pool worker, which exits once a scenario cut short by _ParentGone
    has unwound."""
    try:
        _worker["busy"] = True
        row = run_job(job)
    except _ParentGone:
        os._exit(1)
    finally:
        _worker["busy"] = False
    if _orphaned():  # matplotlib's C code can turn the exception into a failed row
        os._exit(1)
    return row


@contextlib.contextmanager
def sigint_ignored():
    """Ignore Ctrl-C for a while (main thread only, where signals are handled)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _warm_up() -> None:
    """Import the heavy libraries once, before the workers fork, so none pays for it again."""
    import shrinkcli.draw  # noqa: F401
    import shrinkcli.encode  # noqa: F401
    import shrinkcli.fit  # noqa: F401


INDEX_COLUMNS = (
    "name", "status", "error", "file", "title",
    "obs_per_cluster", "n_cluster", "intercept", "beta", "sigma", "sd_int", "sd_slope", "cor",
    "balanced", "seed", "data",
    "method", "criterion", "fixed_intercept", "fixed_slope", "var_intercept", "var_slope",
    "corr", "var_residual", "singular", "n_obs", "n_clusters",
    "rmse_ols_intercept", "rmse_ols_slope", "rmse_mixed_intercept", "rmse_mixed_slope",
    "animation", "estimates", "summary", "seconds",
)  # fmt: skip


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """One index.csv row: every nested field on the top level."""
    from shrinkcli.scenario import Scenario

    flat = {k: row.get(k) for k in ("name", "status", "error", "file", "title", "seconds")}
    defaults = Scenario()
    params = row.get("parameters") or {}
    for key in (*SIM_KEYS, "data"):
        flat[key] = params.get(key, getattr(defaults, key, None) if "data" not in params else None)
    flat.update(row.get("fit") or {})
    rmse = row.get("truth_rmse") or {}
    for est in ("ols", "mixed"):
        for part in ("intercept", "slope"):
            flat[f"rmse_{est}_{part}"] = (rmse.get(est) or {}).get(part)
    flat.update(row.get("outputs") or {})
    return {c: flat.get(c) for c in INDEX_COLUMNS}


def _object_column(values: list[Any]):
    import numpy as np

    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def write_index(rows: list[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """DIR/index.json (the rows as they are) and DIR/index.csv (flattened)."""
    from shrinkcli.output import csv_lines, text_output

    with text_output(str(out_dir / "index.json")) as fh:
        fh.write(json.dumps({"scenarios": rows}, indent=2) + "\n")
    flat = [flat_row(row) for row in rows]
    columns = {c: _object_column([r[c] for r in flat]) for c in INDEX_COLUMNS}
    with text_output(str(out_dir / "index.csv")) as fh:
        fh.writelines(csv_lines(columns))
    return out_dir / "index.json", out_dir / "index.csv"
