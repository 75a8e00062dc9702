"""Batch speed: the six scenarios in one `shrink batch` against six separate `shrink run`s.

Run: python bench/bench_batch.py [--repeats N]. Both are measured in this run, wall
clock, process start included; the target is batch <= 0.7 x the sum of the runs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHRINK = [sys.executable, "-m", "shrinkcli"]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    files = sorted((ROOT / "scenarios").glob("*.toml"))
    work = Path(tempfile.mkdtemp(prefix="shrink-bench-"))
    try:
        separate, together = [], []
        per_file: dict[str, float] = {}
        for _ in range(args.repeats):
            total = 0.0
            for f in files:
                t = timed([*SHRINK, "run", "--scenario", str(f), "-o", str(work / f"{f.stem}.gif")])
                per_file[f.stem] = min(per_file.get(f.stem, t), t)
                total += t
            separate.append(total)
            together.append(
                timed([*SHRINK, "batch", *map(str, files), "--out-dir", str(work / "b")])
            )
        print(f"{'scenario':24s} {'shrink run s':>12s}")
        for name, t in per_file.items():
            print(f"{name:24s} {t:12.2f}")
        s, b = min(separate), min(together)
        print(f"\nsum of 6 separate runs: {s:6.2f} s (best of {args.repeats})")
        print(f"one batch of 6:         {b:6.2f} s (best of {args.repeats})")
        print(f"ratio batch/separate:   {b / s:6.2f}  (target <= 0.70)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
