"""One chunk of a study: simulate and fit a run of replications of one cell, and score them.

``run_chunk`` is the unit of work sent to a process or a Dask worker: a plain,
picklable ChunkTask in, plain columns out. Its numbers depend on the task alone,
so a chunk computed again (a killed worker, a resumed study) gives the same bits.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

# replications.csv's columns from a chunk, in order (cell, rep and the grid values are
# added when the study is put together)
COLUMNS = (
    "seed", "status", "note", "n_obs", "n_clusters",
    "rmse_ols_intercept", "rmse_mixed_intercept", "rmse_ols_slope", "rmse_mixed_slope",
    "closer", "fixed_slope", "se_slope", "covers", "est_sd_intercept", "est_sd_slope", "est_corr",
    "est_sigma", "singular", "converged",
)  # fmt: skip
FLOATS = (
    "rmse_ols_intercept", "rmse_mixed_intercept", "rmse_ols_slope", "rmse_mixed_slope",
    "closer", "fixed_slope", "se_slope", "est_sd_intercept", "est_sd_slope", "est_corr",
    "est_sigma",
)  # fmt: skip
INTS = ("seed", "n_obs", "n_clusters", "covers", "singular", "converged")
TEXTS = ("status", "note")
_SUSPECT_PHI = 1e3  # relative sds beyond this are handed to fit_mixed (a runaway optimum?)


@dataclass(frozen=True)
class ChunkTask:
    """Replications first..first+len(seeds)-1 of one cell; ``design`` holds the
    Scenario's fields (its seed unused), ``key`` names the chunk's file."""

    key: str
    cell: int
    first: int
    seeds: tuple[int, ...]
    design: dict[str, Any]
    ml: bool


def run_chunk(task: ChunkTask) -> dict[str, Any]:
    """Simulate, fit and score the task's replications; never raises for a replication:
    one that fails is a row with status "failed" and its reason in "note"."""
    start, cpu = time.perf_counter(), time.process_time()
    from shrinkcli.scenario import Scenario

    scenario = Scenario(**task.design)
    seeds = np.asarray(task.seeds, dtype=np.int64)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            columns, suspect = _batched(scenario, seeds, not task.ml)
    except Exception:  # anything unforeseen: every replication by the reference path
        columns, suspect = _empty(len(seeds)), np.ones(len(seeds), dtype=bool)
    for r in np.flatnonzero(suspect):
        row = _one(scenario, int(seeds[r]), not task.ml)
        for name in COLUMNS:
            columns[name][r] = row[name]
    columns["seed"] = seeds.copy()
    return {
        "key": task.key,
        "cell": task.cell,
        "first": task.first,
        "count": len(seeds),
        "columns": columns,
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


def _empty(n: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in FLOATS:
        out[name] = np.full(n, np.nan)
    for name in INTS:
        out[name] = np.zeros(n, dtype=np.int64)
    for name in TEXTS:
        out[name] = np.array([""] * n, dtype=object)
    out["status"][:] = "ok"
    return out


def _batched(scenario, seeds: np.ndarray, reml: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """All replications as one problem; returns the columns and the rows that need
    fit.fit_mixed's own handling (see fitbatch)."""
    from shrinkcli.study.fitbatch import batch_core, batch_stats, fit_batch
    from shrinkcli.study.simbatch import simulate_batch

    batch = simulate_batch(scenario, seeds)
    g = scenario.n_cluster
    stats = batch_stats(batch.y, batch.x, batch.cluster - 1, g)
    core, bad = batch_core(stats)
    fit = fit_batch(stats, core, reml)
    valid_rows = stats.n > 0
    cols = _score(
        scenario,
        fixed_slope=fit.fixed[:, 1],
        se_slope=fit.se_slope,
        sds=(fit.sd_intercept, fit.sd_slope, fit.corr, fit.sigma),
        singular=fit.singular,
        converged=fit.converged,
        mixed=fit.mixed,
        ols=fit.ols,
        truth=batch.truth,
        present=valid_rows,
    )
    cols["n_obs"] = stats.n.sum(axis=1)
    cols["n_clusters"] = valid_rows.sum(axis=1)
    phi_big = ~(np.max(np.abs(fit.phi), axis=1) <= _SUSPECT_PHI)  # NaN too
    # not converged covers a runaway optimum and a single observation per cluster
    suspect = bad | ~fit.converged | phi_big | ~np.isfinite(fit.criterion)
    return cols, suspect


def _score(
    scenario, *, fixed_slope, se_slope, sds, singular, converged, mixed, ols, truth, present
) -> dict[str, np.ndarray]:
    """The columns of B replications from their fits (arrays (B,), clusters (B, G, 2)).

    RMSEs and "closer" use the clusters with an OLS intercept and slope and a mixed
    estimate (as summary.truth_rmse does); "closer" is the share of them whose mixed
    estimate lies nearer the true (intercept, slope) than the OLS one does.
    """
    n = len(fixed_slope)
    out = _empty(n)
    ok = present & np.isfinite(ols).all(axis=-1) & np.isfinite(mixed).all(axis=-1)
    count = ok.sum(axis=1)
    has = count > 0
    safe = np.maximum(count, 1)
    for est, name in ((ols, "ols"), (mixed, "mixed")):
        err = np.where(ok[..., None], est - truth, 0.0)
        msq = (err**2).sum(axis=1) / safe[:, None]
        out[f"rmse_{name}_intercept"] = np.where(has, np.sqrt(msq[:, 0]), np.nan)
        out[f"rmse_{name}_slope"] = np.where(has, np.sqrt(msq[:, 1]), np.nan)
    d_ols = np.hypot(*np.moveaxis(np.where(ok[..., None], ols - truth, 0.0), -1, 0))
    d_mixed = np.hypot(*np.moveaxis(np.where(ok[..., None], mixed - truth, 0.0), -1, 0))
    closer = ((d_mixed < d_ols) & ok).sum(axis=1) / safe
    out["closer"] = np.where(has, closer, np.nan)
    out["fixed_slope"] = np.asarray(fixed_slope, dtype=float)
    out["se_slope"] = np.asarray(se_slope, dtype=float)
    from shrinkcli.study.fitbatch import WALD_Z

    out["covers"] = (np.abs(out["fixed_slope"] - scenario.beta) <= WALD_Z * out["se_slope"]).astype(
        np.int64
    )
    for name, value in zip(
        ("est_sd_intercept", "est_sd_slope", "est_corr", "est_sigma"), sds, strict=True
    ):
        out[name] = np.asarray(value, dtype=float)
    out["singular"] = np.asarray(singular).astype(np.int64)
    out["converged"] = np.asarray(converged).astype(np.int64)
    return out


def _one(scenario, seed: int, reml: bool) -> dict[str, Any]:
    """One replication through simulate() and fit.fit_mixed(), the reference path; a
    failure becomes a row with its reason."""
    from shrinkcli.errors import ShrinkError
    from shrinkcli.fit import fit_mixed
    from shrinkcli.simulate import simulate

    row: dict[str, Any] = {name: col[0] for name, col in _empty(1).items()}
    data = None
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            data = simulate(scenario.with_changes(seed=seed))
            fits = fit_mixed(data, reml=reml)
    except Exception as exc:  # recorded, never dropped: a failure is a row with its reason
        text = str(exc) if isinstance(exc, ShrinkError) else f"{type(exc).__name__}: {exc}"
        row.update(status="failed", note=" ".join(text.split()))
        if data is not None:
            row.update(n_obs=data.n_obs, n_clusters=len(data.labels))
        return row
    g = len(data.labels)
    cols = _score(
        scenario,
        fixed_slope=fits.fixed[1:2],
        se_slope=fits.fixed_se[1:2],
        sds=([fits.re_sd[0]], [fits.re_sd[1]], [fits.re_corr], [np.sqrt(fits.sigma2)]),
        singular=[fits.singular],
        converged=[fits.converged],
        mixed=fits.mixed[None],
        ols=fits.ols[None],
        truth=data.truth[None],
        present=np.ones((1, g), dtype=bool),
    )
    row.update({name: col[0] for name, col in cols.items()})
    row.update(n_obs=data.n_obs, n_clusters=g)
    if not fits.converged:
        row["note"] = "; ".join(w for w in fits.warnings if "barely identified" not in w)
    return row
