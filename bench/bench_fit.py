"""Fitting speed: the baseline, 40,000 observations against statsmodels, and a million.

Run: python bench/bench_fit.py. In one run it measures (wall and CPU time, best
of several repeats) `fit_mixed` on the article's baseline (1,000 observations,
100 clusters); on 40,000 observations in 2,000 clusters against statsmodels'
MixedLM on the same data (method='lbfgs', its fastest method that reaches the
optimum on these data; timed once, it takes seconds); and on 1,000,000
observations in 100,000 clusters, in a fresh subprocess so that its peak memory
(max RSS, which includes the interpreter, numpy/scipy and the simulated data,
plus the fit's own peak traced by tracemalloc) is not mixed up with the rest.
Targets: baseline < 50 ms compute; 40k at least 20x faster than statsmodels;
1M under 3 s and under 1 GB.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np

from shrinkcli.fit import fit_mixed
from shrinkcli.scenario import Scenario
from shrinkcli.simulate import simulate

BASELINE = Scenario()
MEDIUM = Scenario(n_cluster=2_000, obs_per_cluster=20, seed=5)
LARGE = Scenario(n_cluster=100_000, obs_per_cluster=10, seed=6)


def best(fn, repeats: int) -> tuple[float, float, object]:
    """Best wall and best CPU time over repeats, and the last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus), out


def statsmodels_fit(data) -> float:
    """MixedLM's REML fit, its own -2 log-likelihood returned as the criterion."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    exog = np.column_stack((np.ones(data.n_obs), data.x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = MixedLM(data.y, exog, groups=data.codes, exog_re=exog).fit(method="lbfgs")
    return -2.0 * float(result.llf)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def large_child() -> None:
    """Runs in the subprocess: time the 1M fit, then trace its allocations."""
    data = simulate(LARGE)
    rss_data = max_rss_mb()
    wall, cpu, fits = best(lambda: fit_mixed(data), repeats=3)
    tracemalloc.start()
    fit_mixed(data)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "criterion": fits.criterion,
                "rss_data_mb": rss_data,
                "rss_mb": max_rss_mb(),
                "traced_mb": traced / 2**20,
                "optimizer": fits.optimizer,
            }
        )
    )


def main() -> None:
    rows = []
    data = simulate(BASELINE)
    wall, cpu, fits = best(lambda: fit_mixed(data), repeats=20)
    rows.append(("baseline", data.n_obs, data.n_clusters, wall, cpu, "", "", wall < 0.05))

    data = simulate(MEDIUM)
    wall, cpu, fits = best(lambda: fit_mixed(data), repeats=5)
    sm_wall, sm_cpu, sm_crit = best(lambda: statsmodels_fit(data), repeats=1)
    ratio = sm_wall / wall
    rows.append(("40k vs statsmodels", data.n_obs, data.n_clusters, wall, cpu, "", "", ratio >= 20))
    rows.append(("  statsmodels lbfgs", data.n_obs, data.n_clusters, sm_wall, sm_cpu, "", "", None))
    medium_note = (
        f"40k: shrink is {ratio:.0f}x faster than statsmodels (wall; "
        f"{sm_cpu / cpu:.0f}x CPU); criterion shrink {fits.criterion:.6f}, "
        f"statsmodels {sm_crit:.6f}"
    )

    child = subprocess.run(
        [sys.executable, __file__, "--large-child"], capture_output=True, text=True, check=True
    )
    big = json.loads(child.stdout.strip().splitlines()[-1])
    ok = big["wall"] < 3 and big["rss_mb"] < 1024
    peak = f"{big['rss_mb']:.0f}"
    traced = f"{big['traced_mb']:.0f}"
    rows.append(("1M obs", LARGE.n_obs, LARGE.n_cluster, big["wall"], big["cpu"], peak, traced, ok))

    head = f"{'case':20s} {'obs':>9s} {'clusters':>8s} {'wall s':>8s} {'cpu s':>8s}"
    print(head + f" {'maxRSS MB':>9s} {'fit MB':>7s}  target")
    for label, n, g, w, c, rss, tr, hit in rows:
        mark = "" if hit is None else ("met" if hit else "MISSED")
        print(f"{label:20s} {n:9,d} {g:8,d} {w:8.3f} {c:8.3f} {rss:>9s} {tr:>7s}  {mark}")
    print(medium_note)
    print(
        f"1M: max RSS {big['rss_mb']:.0f} MB of which {big['rss_data_mb']:.0f} MB before the fit "
        f"(interpreter, libraries, simulated data); fit's own peak {big['traced_mb']:.0f} MB "
        "(tracemalloc)"
    )
    print(f"1M optimiser: {big['optimizer']}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--large-child"]:
        large_child()
    else:
        main()
