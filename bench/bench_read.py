"""Reading a big CSV and fitting it: `shrink fit --data` against R's lmer, in one run.

Run: python bench/bench_read.py [--repeats N] [--r-repeats N] [--keep]

Writes a 1,000,000-row CSV (100,000 clusters of 10 rows, `shrink simulate
--n-cluster 100000 --obs-per-cluster 10 -o big.csv`) into a temporary folder,
then times, as the median of several runs:

* pandas.read_csv alone, with the options shrink uses: the floor for the reader
  (parsing the file, no checks);
* shrinkcli.data.read_csv: parsing plus every check, cluster codes and labels;
* shrinkcli.fit.fit_mixed on the data read: the fit alone;
* the whole `shrink fit --data big.csv` process, start-up to exit;
* when Rscript and lme4 are installed, the whole Rscript process running
  `lme4::lmer(y ~ x + (x | cluster), data = read.csv(...))` (R's own read.csv and
  lmer times are printed too). Otherwise the R column is skipped, and said so.

Targets: the reader within 3x of pandas.read_csv alone; the whole command at
least 20x faster than lmer (lme4 takes about 50 s on this file).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_CLUSTER, OBS_PER_CLUSTER = 100_000, 10

R_CODE = """
suppressMessages(library(lme4))
t0 <- proc.time()[["elapsed"]]
d <- read.csv(commandArgs(TRUE)[1])
t1 <- proc.time()[["elapsed"]]
m <- lmer(y ~ x + (x | cluster), data = d)
t2 <- proc.time()[["elapsed"]]
cat(sprintf('{"read": %.4f, "fit": %.4f, "criterion": %.6f}\\n', t1 - t0, t2 - t1, REMLcrit(m)))
"""


def median_time(fn, repeats: int) -> tuple[float, object]:
    """Median wall time over repeats (after one untimed warm-up run), and the last result."""
    fn()
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


def r_available() -> str | None:
    """Why R cannot be timed, or None when Rscript and lme4 are both there."""
    if shutil.which("Rscript") is None:
        return "Rscript is not on PATH"
    probe = subprocess.run(
        ["Rscript", "-e", "quit(status = !requireNamespace('lme4', quietly = TRUE))"],
        capture_output=True,
    )
    return None if probe.returncode == 0 else "R package lme4 is not installed"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5, help="runs of each Python timing")
    ap.add_argument("--r-repeats", type=int, default=1, help="runs of R (about 50 s each)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()

    import pandas as pd

    from shrinkcli.data import read_csv
    from shrinkcli.fit import fit_mixed

    out = Path(tempfile.mkdtemp(prefix="shrink-bench-read-"))
    big = out / "big.csv"
    shrink = [sys.executable, "-m", "shrinkcli"]
    sizes = ["--n-cluster", str(N_CLUSTER), "--obs-per-cluster", str(OBS_PER_CLUSTER)]
    run([*shrink, "simulate", *sizes, "-o", str(big)])
    print(
        f"data: {big} ({big.stat().st_size / 2**20:.0f} MB, {N_CLUSTER * OBS_PER_CLUSTER:,} rows)"
    )

    floor, _ = median_time(
        lambda: pd.read_csv(big, skipinitialspace=True, index_col=False), args.repeats
    )
    read, data = median_time(lambda: read_csv(big), args.repeats)
    fit, fits = median_time(lambda: fit_mixed(data), args.repeats)
    whole, _ = median_time(lambda: run([*shrink, "fit", "--data", str(big)]), args.repeats)
    rows = [
        ("pandas.read_csv alone", floor, "floor"),
        ("read_csv (shrink)", read, f"{read / floor:.1f}x the floor"),
        ("fit_mixed", fit, ""),
        ("shrink fit --data (process)", whole, ""),
    ]

    why_not = r_available()
    r_note = f"R column skipped: {why_not}"
    if why_not is None:
        script = out / "lmer.R"
        script.write_text(R_CODE)
        times, inner = [], {}
        for _ in range(args.r_repeats):
            start = time.perf_counter()
            done = run(["Rscript", str(script), str(big)])
            times.append(time.perf_counter() - start)
            inner = json.loads(done.stdout.strip().splitlines()[-1])
        r_whole = statistics.median(times)
        rows.append(("  R read.csv", inner["read"], ""))
        rows.append(("  R lmer", inner["fit"], ""))
        rows.append(("Rscript lmer (process)", r_whole, ""))
        ratio = r_whole / whole
        verdict = "met" if ratio >= 20 else "MISSED"
        r_note = (
            f"whole command: shrink is {ratio:.1f}x faster than R's lmer (target 20x: {verdict}); "
            f"REML criterion shrink {fits.criterion:.6f}, lme4 {inner['criterion']:.6f}"
        )

    print(f"{'step':30s} {'median s':>9s}  note")
    for label, seconds, note in rows:
        print(f"{label:30s} {seconds:9.3f}  {note}")
    print(
        f"reader target (within 3x of pandas.read_csv): {'met' if read <= 3 * floor else 'MISSED'}"
    )
    print(r_note)
    if args.keep:
        print(f"kept {out}")
    else:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
