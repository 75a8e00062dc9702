"""Simulation speed: 1,000,000 observations in 100,000 clusters.

Run: python bench/bench_simulate.py. Reports wall and CPU time (best of 5) and,
as a same-run baseline, the cost of the unavoidable part: numpy drawing the same
number of raw 32-bit values.
"""

from __future__ import annotations

import time

import numpy as np

from shrinkcli.scenario import Scenario
from shrinkcli.simulate import simulate


def best(fn, repeats: int = 5) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def main() -> None:
    rows = []
    for label, s in [
        ("baseline (1,000 obs)", Scenario()),
        ("1,000,000 obs, balanced=1", Scenario(n_cluster=100_000)),
        ("1,000,000 obs, balanced=.5", Scenario(n_cluster=100_000, balanced=0.5)),
    ]:
        wall, cpu = best(lambda s=s: simulate(s))
        raw_wall, _ = best(lambda s=s: np.random.MT19937(1).random_raw(6 * s.n_obs))
        rows.append((label, wall, cpu, raw_wall))
    print(f"{'case':30s} {'wall s':>8s} {'cpu s':>8s} {'raw draws s':>12s} {'ratio':>6s}")
    for label, wall, cpu, raw in rows:
        print(f"{label:30s} {wall:8.3f} {cpu:8.3f} {raw:12.3f} {wall / raw:6.1f}")


if __name__ == "__main__":
    main()
