"""Many scenarios at once, in parallel processes, with an index of what was made."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shrinkcli.errors import ShrinkError, UsageError
from shrinkcli.pipeline import SIM_KEYS

FORMATS = ("gif", "mp4", "png")


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
    return jobs


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
    r, f = doc["random"], doc["fixed"]
    return {
        "method": doc["method"],
        "criterion": doc["criterion"],
        "fixed_intercept": f["intercept"]["estimate"],
        "fixed_slope": f["slope"]["estimate"],
        "var_intercept": r["intercept"]["var"],
        "var_slope": r["slope"]["var"],
        "corr": r["corr"],
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
    pool = ProcessPoolExecutor(max_workers=n_jobs, initializer=_ignore_sigint)
    try:
        futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
        for fut in as_completed(futures):
            rows_by_job[futures[fut]] = fut.result()
            if on_done:
                on_done(rows_by_job[futures[fut]])
    finally:
        # on Ctrl-C: scenarios already running (and the few already queued) finish all
        # their files, as workers ignore SIGINT; the rest are cancelled. Further Ctrl-Cs
        # are ignored until the workers are joined: an interrupted shutdown orphans them.
        with _sigint_ignored():
            pool.shutdown(wait=True, cancel_futures=True)
    return [rows_by_job[i] for i in range(len(jobs))]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _sigint_ignored():
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


def write_index(rows: list[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """DIR/index.json (the rows as they are) and DIR/index.csv (flattened)."""
    import csv
    import io

    from shrinkcli.output import text_output

    with text_output(str(out_dir / "index.json")) as fh:
        fh.write(json.dumps({"scenarios": rows}, indent=2) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in flat_row(row).items()})
    with text_output(str(out_dir / "index.csv")) as fh:
        fh.write(buf.getvalue())
    return out_dir / "index.json", out_dir / "index.csv"
