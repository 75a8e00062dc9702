"""Running a study: its chunks on this process, this machine's cores or a Dask cluster.

Each chunk's result is saved in DIR/chunks/ (written to a temporary name, then
renamed) as soon as it arrives, so an interrupted study keeps every finished chunk
and the same command resumes it. A chunk's file is named by a hash of everything
its numbers depend on (the study's seed, the cell's design, the replications, the
method and STUDY_FORMAT), so a file from another study is never taken for one of
this study's. The outputs are made from the chunk files alone, in plan order, which
is what makes a resumed study end with the same files as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from shrinkcli.batch import sigint_ignored
from shrinkcli.errors import ShrinkError, UsageError, cut
from shrinkcli.study.chunk import COLUMNS, FLOATS, INTS, ChunkTask
from shrinkcli.study.spec import STUDY_FORMAT, Study, replication_seeds

CONNECT_TIMEOUT = 10.0  # seconds to reach a Dask scheduler
WORKER_WAIT = 30.0  # seconds to wait for the first Dask worker
CHUNK_DIR = "chunks"

Progress = Callable[[int, int], None]  # (replications done, replications in all)


@dataclass(frozen=True)
class Plan:
    """The chunks of a study, in order (cell by cell, replications ascending)."""

    study: Study
    tasks: list[ChunkTask]

    @property
    def total(self) -> int:
        return sum(len(t.seeds) for t in self.tasks)


def plan(study: Study) -> Plan:
    from shrinkcli.scenario import Scenario

    size = study.chunk_size
    tasks = []
    for cell in study.cells:
        design = {f.name: getattr(cell.scenario, f.name) for f in fields(Scenario)}
        design.pop("seed")
        for first in range(1, study.reps + 1, size):
            count = min(size, study.reps - first + 1)
            text = f"{STUDY_FORMAT}|{study.seed}|{cell.key}|{first}|{count}"
            key = hashlib.blake2b(text.encode(), digest_size=10).hexdigest()
            seeds = tuple(replication_seeds(study.seed, cell, first, count))
            tasks.append(ChunkTask(key, cell.index, first, seeds, design, cell.ml))
    return Plan(study, tasks)


# ----------------------------------------------------------------------------- chunk files


class ChunkStore:
    """Finished chunks: in memory, and in ``folder`` when there is one."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.results: dict[str, dict[str, Any]] = {}
        if folder is not None:
            from shrinkcli.output import remove_stale

            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"cannot create {folder}: {exc.strerror or exc}") from None
            remove_stale(folder)

    def path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{key}.json"

    def load(self, task: ChunkTask) -> bool:
        """Take the task's saved result, if there is a sound one."""
        if self.folder is None:
            return False
        try:
            doc = json.loads(self.path(task.key).read_text(encoding="utf-8"))
            result = _from_doc(doc, task)
        except (OSError, ValueError, KeyError, TypeError):
            return False  # missing, or not a file this version wrote for this task
        self.results[task.key] = result
        return True

    def save(self, result: dict[str, Any]) -> None:
        self.results[result["key"]] = result
        if self.folder is not None:
            _write_atomic(self.path(result["key"]), json.dumps(_to_doc(result)) + "\n")


def _to_doc(result: dict[str, Any]) -> dict[str, Any]:
    cols = {}
    for name in COLUMNS:
        values = result["columns"][name].tolist()
        if name in FLOATS:
            values = [None if v != v else v for v in values]
        cols[name] = values
    doc = {k: result[k] for k in ("key", "cell", "first", "count", "seconds", "cpu_seconds")}
    doc["worker"] = result["worker"]
    return {"format": STUDY_FORMAT, **doc, "columns": cols}


def _from_doc(doc: dict[str, Any], task: ChunkTask) -> dict[str, Any]:
    import numpy as np

    same = (doc["format"], doc["key"], doc["first"], doc["count"])
    if same != (STUDY_FORMAT, task.key, task.first, len(task.seeds)):
        raise ValueError("another chunk")
    cols: dict[str, Any] = {}
    for name in COLUMNS:
        values = doc["columns"][name]
        if len(values) != len(task.seeds):
            raise ValueError("wrong length")
        if name in FLOATS:
            cols[name] = np.array([math.nan if v is None else float(v) for v in values])
        elif name in INTS:
            cols[name] = np.array([int(v) for v in values], dtype=np.int64)
        else:
            cols[name] = np.array([str(v) for v in values], dtype=object)
    if list(cols["seed"]) != list(task.seeds):
        raise ValueError("other seeds")
    return {**{k: doc[k] for k in ("key", "first", "count", "seconds", "cpu_seconds", "worker")},
            "cell": task.cell, "columns": cols}  # fmt: skip


def _write_atomic(path: Path, text: str) -> None:
    """Write beside, then rename: a chunk file is whole or absent (a temporary name
    from shrinkcli.output, so its stale-file sweep knows it)."""
    from shrinkcli.output import temp_name

    tmp = path.parent / temp_name(path)
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


# ----------------------------------------------------------------------------- engines


def execute(
    tasks: list[ChunkTask],
    on_result: Callable[[dict[str, Any]], None],
    *,
    jobs: int | None = None,
    scheduler: str | None = None,
) -> str:
    """Run the tasks; ``on_result`` gets each result in this thread as it arrives.
    Returns a description of the engine used."""
    if not tasks:
        return "nothing to do"
    if scheduler:
        return _on_dask(tasks, on_result, scheduler)
    n = max(1, min(jobs or _cores(), len(tasks)))
    if n == 1:
        from shrinkcli.study.chunk import run_chunk

        for task in tasks:
            on_result(run_chunk(task))
        return "1 process"
    return _on_processes(tasks, on_result, n)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _on_processes(
    tasks: list[ChunkTask], on_result: Callable[[dict[str, Any]], None], n: int
) -> str:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    import shrinkcli.study.chunk as chunk_module
    import shrinkcli.study.fitbatch  # noqa: F401  (imported once, before the fork)
    import shrinkcli.study.simbatch  # noqa: F401

    fork = sys.platform.startswith("linux")
    context = multiprocessing.get_context("fork") if fork else None
    pool = ProcessPoolExecutor(
        max_workers=n, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)
    )
    every = [pool.submit(chunk_module.run_chunk, t) for t in tasks]
    pending, handled = set(every), set()
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                on_result(_result(fut))
                handled.add(fut)
    except BaseException:
        # Ctrl-C or an error: queued chunks are dropped; those running finish and are
        # kept (a chunk takes a fraction of a second), with further Ctrl-Cs ignored
        for fut in pending:
            fut.cancel()
        with sigint_ignored():
            pool.shutdown(wait=True, cancel_futures=True)
            for fut in every:
                if fut in handled or not fut.done() or fut.cancelled():
                    continue
                if fut.exception() is None:
                    on_result(fut.result())
        raise
    pool.shutdown(wait=True)
    return f"{n} processes"


def _result(fut) -> dict[str, Any]:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return fut.result()
    except BrokenProcessPool:
        raise ShrinkError(
            "a worker process died (out of memory?); the finished chunks are saved: "
            "run the same command again to resume, perhaps with --jobs 1"
        ) from None


def _start_worker(parent: int) -> None:
    """Pool initializer: Ctrl-C is the parent's to handle; die with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)

    def watch() -> None:  # elsewhere, and should the kernel's signal not come
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="shrink-parent-watch", daemon=True).start()


def worker_versions() -> tuple[str, ...]:
    """What a chunk's bits depend on besides its task: checked on every Dask worker."""
    import platform

    import numpy as np

    from shrinkcli import __version__

    return (
        f"shrinkcli {__version__}",
        f"study format {STUDY_FORMAT}",
        f"numpy {np.__version__}",
        f"Python {platform.python_version()}",
        platform.machine(),
    )


def simd_features() -> tuple[str, ...]:
    """The SIMD extensions numpy dispatches to on this CPU (its log and exp kernels
    differ between them in the last bit)."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # numpy < 2
        from numpy.core import _multiarray_umath as umath  # type: ignore[no-redef]
    features = getattr(umath, "__cpu_features__", {})
    wanted = [*getattr(umath, "__cpu_baseline__", []), *getattr(umath, "__cpu_dispatch__", [])]
    return tuple(sorted({f for f in wanted if features.get(f)}))


def _on_dask(
    tasks: list[ChunkTask], on_result: Callable[[dict[str, Any]], None], address: str
) -> str:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UsageError(
            "--scheduler needs the dask and distributed packages: pip install 'shrinkcli[study]'"
        ) from None
    from shrinkcli.study.chunk import run_chunk

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise UsageError(
            f"--scheduler {cut(address)}: cannot reach a Dask scheduler there "
            f"({cut(str(exc) or type(exc).__name__, 120)}); start one with "
            "`dask scheduler` or check the address"
        ) from None
    futures = []
    try:
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT)
        except TimeoutError:
            raise UsageError(
                f"--scheduler {cut(address)}: no worker joined within {WORKER_WAIT:.0f} s; "
                "start one with `dask worker ADDRESS`"
            ) from None
        _check_workers(client)
        futures = [client.submit(run_chunk, t, key=f"shrink-chunk-{t.key}") for t in tasks]
        for fut in as_completed(futures, loop=client.loop):
            on_result(_dask_result(fut))
            fut.release()
        workers = len(client.scheduler_info().get("workers", {}))
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(futures)
        raise
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=CONNECT_TIMEOUT)
    return f"Dask at {address} ({workers} workers)"


def _check_workers(client) -> None:
    """Refuse workers with other versions; warn of workers whose CPU offers numpy other
    SIMD kernels (their last bits may differ)."""
    import warnings

    mine = worker_versions()
    try:
        theirs = client.run(worker_versions)
        simd = client.run(simd_features)
    except Exception as exc:
        raise UsageError(
            "the Dask workers cannot run shrink's chunks "
            f"({cut(str(exc) or type(exc).__name__, 120)}); install shrinkcli where they run"
        ) from None
    for worker, versions in sorted(theirs.items()):
        if tuple(versions) != mine:
            diff = [f"{a} (here {b})" for a, b in zip(versions, mine, strict=False) if a != b]
            raise UsageError(
                f"Dask worker {worker} has {', '.join(diff)}: its numbers could differ in the "
                "last bits; give every worker the same versions as this machine"
            )
    here = simd_features()
    other = sorted(w for w, f in simd.items() if tuple(f) != here)
    if other:
        warnings.warn(
            f"{len(other)} Dask worker(s) (e.g. {other[0]}) run on a CPU with other SIMD "
            "extensions than this one: numpy's log and exp may differ there in the last bit, "
            "so the numbers may not be bit-identical to a run on this machine",
            RuntimeWarning,
            stacklevel=2,
        )


def _dask_result(fut) -> dict[str, Any]:
    try:
        return fut.result()
    except Exception as exc:
        name = type(exc).__name__
        if name == "KilledWorker":
            raise ShrinkError(
                "the workers running one chunk died three times (KilledWorker); the finished "
                "chunks are saved: run the same command again to resume"
            ) from None
        raise


# ----------------------------------------------------------------------------- the study


def outputs(out_dir: Path) -> dict[str, Path]:
    names = ("replications.csv", "summary.csv", "summary.json", "study.png", "timing.csv")
    return {name: out_dir / name for name in names}


def run_study(
    study: Study | str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    plot: bool = True,
):
    """Run a study and return its summary, one row per cell, as a pandas DataFrame.

    ``study`` is a Study or the path of a study file. With ``out_dir``, finished
    chunks are saved in out_dir/chunks (a rerun resumes from them) and the outputs
    written there: replications.csv, summary.csv, summary.json, timing.csv and
    study.png (unless ``plot`` is False). ``scheduler`` is a Dask scheduler's address
    (tcp://HOST:PORT); otherwise ``jobs`` processes on this machine (default: one per
    core; 1 runs in this process). ``progress(done, total)`` is called as
    replications finish.
    """
    from shrinkcli.study.report import summarise, write_outputs

    if isinstance(study, (str, os.PathLike)):
        from shrinkcli.study.spec import read_study

        study = read_study(study)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise UsageError(f"--jobs {jobs!r} must be a whole number of at least 1")
    if scheduler is not None and jobs is not None:
        raise UsageError("--jobs is for this machine's cores; with --scheduler the workers decide")
    the_plan = plan(study)
    folder = Path(out_dir) if out_dir is not None else None
    if folder is not None:
        _check_outputs(study, folder, plot)
    store = ChunkStore(folder / CHUNK_DIR if folder is not None else None)
    todo = [t for t in the_plan.tasks if not store.load(t)]
    done = [the_plan.total - sum(len(t.seeds) for t in todo)]
    if progress:
        progress(done[0], the_plan.total)

    def on_result(result: dict[str, Any]) -> None:
        store.save(result)
        done[0] += result["count"]
        if progress:
            progress(done[0], the_plan.total)

    start = time.perf_counter()
    engine = execute(todo, on_result, jobs=jobs, scheduler=scheduler)
    wall = time.perf_counter() - start
    results = [store.results[t.key] for t in the_plan.tasks]
    summary, replications = summarise(study, results)
    summary.attrs.update(engine=engine, seconds=wall, computed=len(todo))
    if folder is not None:
        write_outputs(study, folder, summary, replications, results, plot=plot)
    return summary


def _check_outputs(study: Study, folder: Path, plot: bool) -> None:
    from shrinkcli.output import check_distinct

    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out-dir {folder}: it is a file, not a folder; choose another name")
    outs = [(f"the study's {name}", path) for name, path in outputs(folder).items()]
    if not plot:
        outs = [o for o in outs if not str(o[1]).endswith(".png")]
    inputs = [("the study file", study.source)] if study.source else []
    check_distinct(outs, inputs)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out-dir {folder}: cannot create it ({exc.strerror})") from None
    from shrinkcli.output import check_writable

    for _, path in outs:
        check_writable(path)


def chunk_files(out_dir: str | os.PathLike[str]) -> Iterable[Path]:
    """The chunk files saved in a study's out-dir."""
    folder = Path(out_dir) / CHUNK_DIR
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
