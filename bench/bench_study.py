"""Simulation-study throughput: replications per second against R's lmer loop, one run.

Run: python bench/bench_study.py [--reps N] [--r-reps N] [--no-dask] [--no-grid]

The baseline-sized cell (50 clusters x 10 observations, the article's other
defaults) is timed, each as replications per second and per core:

* R: a loop over the article's create_data() + lme4::lmer, timed inside R (start-up
  and a warm-up excluded), where Rscript with lme4, dplyr, tibble and mvtnorm is
  installed; otherwise that row is skipped, and said so;
* shrink one replication at a time: simulate() + fit_mixed() in a Python loop;
* `shrinkcli.study.run_study` on one process, on every core, and on a Dask cluster
  of one worker per core started here on 127.0.0.1 (skipped without dask);
then the 15-cell x 500-replication study studies/small_clusters.toml on every core.

Targets: at least 10x R's replications per second per core; the 15-cell study in
under 60 s on a 2-core machine; scheduling overhead (1 - the chunks' own seconds /
(workers x wall time)) under 5%.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "studies" / "small_clusters.toml"

R_CODE = r"""
suppressPackageStartupMessages({library(lme4); library(dplyr); library(tibble)})
create_data <- function(obs_per_cluster = 10, n_cluster = 100, intercept = 1, beta = .5,
                        sigma = 1, sd_int = .5, sd_slope = .25, cor = 0, balanced = TRUE,
                        seed = 888) {
  set.seed(seed)
  cluster = rep(1:n_cluster, each = obs_per_cluster)
  N = n_cluster * obs_per_cluster
  x = rnorm(N)
  varmat = matrix(c(sd_int^2, cor, cor, sd_slope^2), 2, 2)
  re = mvtnorm::rmvnorm(n_cluster, sigma = varmat)
  colnames(re) = c('Intercept', 'x')
  y = (intercept + re[cluster, 'Intercept']) + (beta + re[cluster, 'x'])*x + rnorm(N, sd = sigma)
  df = tibble(y, x, cluster)
  sample_frac(df, balanced)
}
fit_one <- function(seed) {
  d <- create_data(n_cluster = 50, seed = seed)
  suppressMessages(REMLcrit(lmer(y ~ x + (x | cluster), data = d)))
}
n <- as.integer(commandArgs(TRUE)[1])
for (s in 1:3) fit_one(10000 + s)  # warm-up
t0 <- proc.time()[["elapsed"]]
crit <- vapply(seq_len(n), fit_one, numeric(1))
t1 <- proc.time()[["elapsed"]]
cat(sprintf('{"seconds": %.4f, "n": %d, "criterion_seed1": %.8f}\n', t1 - t0, n, crit[1]))
"""


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def r_missing() -> str | None:
    """Why R cannot be timed, or None."""
    if shutil.which("Rscript") is None:
        return "Rscript is not on PATH"
    probe = subprocess.run(
        [
            "Rscript",
            "-e",
            "quit(status = !all(sapply(c('lme4', 'dplyr', 'tibble', 'mvtnorm'), "
            "requireNamespace, quietly = TRUE)))",
        ],
        capture_output=True,
    )
    return None if probe.returncode == 0 else "R packages lme4, dplyr, tibble or mvtnorm missing"


def time_r(reps: int, work: Path) -> dict:
    script = work / "loop.R"
    script.write_text(R_CODE)
    done = subprocess.run(
        ["Rscript", str(script), str(reps)], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_loop(reps: int) -> tuple[float, float]:
    """simulate + fit_mixed one replication at a time; (seconds, criterion of seed 1)."""
    from shrinkcli.fit import fit_mixed
    from shrinkcli.scenario import Scenario
    from shrinkcli.simulate import simulate

    fit_mixed(simulate(Scenario(n_cluster=50, seed=10001)))  # warm-up
    start = time.perf_counter()
    first = None
    for seed in range(1, reps + 1):
        fits = fit_mixed(simulate(Scenario(n_cluster=50, seed=seed)))
        first = fits.criterion if first is None else first
    return time.perf_counter() - start, first


def baseline_study(reps: int, seed: int):
    from shrinkcli.study import Study

    return Study(reps=reps, seed=seed, fixed={"n-cluster": 50}, name="baseline")


def time_study(reps: int, **engine) -> tuple[float, object]:
    from shrinkcli.study import run_study

    run_study(baseline_study(50, 99), **engine)  # warm-up: imports, worker start
    start = time.perf_counter()
    summary = run_study(baseline_study(reps, 7), **engine)
    return time.perf_counter() - start, summary


class DaskCluster:
    """A scheduler and one single-threaded worker per core on 127.0.0.1, stopped on exit."""

    def __init__(self, n: int, work: Path) -> None:
        self.procs: list[subprocess.Popen] = []
        self.file = work / "scheduler.json"
        self.n, self.work = n, work

    def _start(self, args: list[str]) -> None:
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "dask", *args],
                stdout=self.log,
                stderr=self.log,
                start_new_session=True,
            )
        )

    def __enter__(self) -> str:
        self.log = open(self.work / "dask.log", "w")  # noqa: SIM115 (closed in __exit__)
        self._start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(self.file)])  # fmt: skip
        deadline = time.monotonic() + 60
        while True:  # the file can be seen half-written
            try:
                address = json.loads(self.file.read_text())["address"]
                break
            except (FileNotFoundError, json.JSONDecodeError):
                if time.monotonic() > deadline:
                    raise RuntimeError("the Dask scheduler did not start within 60 s") from None
                time.sleep(0.1)
        for _ in range(self.n):
            self._start(["worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                         "--no-dashboard", "--death-timeout", "60",
                         "--local-directory", str(self.work)])  # fmt: skip
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(self.n, timeout=60)
        return address

    def __exit__(self, *exc) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=20)
        self.log.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2000, help="replications per shrink timing")
    ap.add_argument("--loop-reps", type=int, default=200, help="one-at-a-time Python loop")
    ap.add_argument("--r-reps", type=int, default=200, help="replications in R's loop")
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--no-grid", action="store_true", help="skip the 15-cell study")
    args = ap.parse_args()
    n = cores()
    work = Path(tempfile.mkdtemp(prefix="shrink-bench-study-"))
    rows: list[tuple[str, int, float, int]] = []  # label, reps, seconds, cores used
    notes = []
    print(f"load average at the start: {os.getloadavg()[0]:.1f} on {n} cores")
    try:
        why = r_missing()
        r_crit = None
        if why is None:
            r = time_r(args.r_reps, work)
            rows.append(("R: create_data + lmer loop", args.r_reps, r["seconds"], 1))
            r_crit = r["criterion_seed1"]
        else:
            notes.append(f"R row skipped: {why}")
        sec, crit = time_loop(args.loop_reps)
        rows.append(("shrink: simulate + fit_mixed loop", args.loop_reps, sec, 1))
        if r_crit is not None:
            notes.append(f"REML criterion, seed 1: lme4 {r_crit:.6f}, shrink {crit:.6f}")
        sec, _ = time_study(args.reps, jobs=1)
        rows.append(("shrink study, 1 process", args.reps, sec, 1))
        sec, summary = time_study(args.reps, jobs=n)
        rows.append((f"shrink study, {n} processes", args.reps, sec, n))
        if not args.no_dask:
            try:
                import distributed  # noqa: F401
            except ImportError:
                notes.append("Dask row skipped: dask/distributed not installed")
            else:
                with DaskCluster(n, work) as address:
                    sec, _ = time_study(args.reps, scheduler=address)
                rows.append((f"shrink study, Dask ({n} workers)", args.reps, sec, n))
        base = rows[0] if why is None else None
        print(f"{'engine':38s} {'reps':>6s} {'seconds':>8s} {'reps/s':>8s} {'per core':>9s}"
              f" {'x R/core':>9s}")  # fmt: skip
        for label, reps, sec, used in rows:
            rate = reps / sec
            ratio = ""
            if base is not None:
                ratio = f"{(rate / used) / (base[1] / base[2]):9.1f}"
            print(f"{label:38s} {reps:6d} {sec:8.2f} {rate:8.1f} {rate / used:9.1f} {ratio:>9s}")
        if base is not None:
            one = next(r for r in rows if r[0] == "shrink study, 1 process")
            per_core = (one[1] / one[2]) / (base[1] / base[2])
            verdict = "met" if per_core >= 10 else "MISSED"
            print(f"per core, shrink study vs R: {per_core:.1f}x (target >= 10x: {verdict})")
        if not args.no_grid:
            from shrinkcli.study import run_study

            start = time.perf_counter()
            grid = run_study(STUDY, out_dir=work / "grid")
            wall = time.perf_counter() - start
            timing = pd_read(work / "grid" / "timing.csv")
            busy, cpu = float(timing["seconds"].sum()), float(timing["cpu_seconds"].sum())
            share = 1 - busy / (n * grid.attrs["seconds"])
            print(
                f"15-cell x 500 study ({STUDY.name}) on {n} processes: {wall:.1f} s wall "
                f"(target < 60 s: {'met' if wall < 60 else 'MISSED'}); its chunks took "
                f"{cpu:.1f} CPU s ({cpu / n:.1f} s a core); time outside chunks "
                f"{100 * share:.1f}% of {n} x {grid.attrs['seconds']:.1f} s (target < 5%)"
            )
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {n} cores")
        for note in notes:
            print(note)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pd_read(path: Path):
    import pandas as pd

    return pd.read_csv(path)


if __name__ == "__main__":
    main()
