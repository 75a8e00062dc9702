"""The six scenarios as one grid against six separate `shrink run`s, in one run.

Run: python bench/bench_grid.py [--repeats N]

Rows: `shrink grid scenarios/*.toml` at 1200x800 with 120 frames (60 moving, 60
held), as issue 13 asks (under 5 s wall, GIF under 3 MB); the same as MP4; and the
baseline made of six `shrink run --scenario FILE` processes one after another (the
article's way: six GIFs at 600x450). Each is whole processes, start-up included,
the best of N (wall and CPU); the ratio is the grid's wall time over the six runs'
measured in this run, so the shared machine's load cancels out.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIX = sorted(str(p) for p in (ROOT / "scenarios").glob("*.toml"))
SHRINK = [sys.executable, "-m", "shrinkcli"]


def timed(cmds: list[list[str]]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the children) for commands run in turn."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(cmds: list[list[str]], repeats: int) -> tuple[float, float]:
    runs = [timed(cmds) for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="shrink-bench-grid-"))
    size = ["--width", "1200", "--height", "800", "--frames", "60", "--hold", "60"]
    cases = {
        "grid 1200x800 GIF": [[*SHRINK, "grid", *SIX, "-o", str(out / "six.gif"), *size]],
        "grid 1200x800 MP4": [[*SHRINK, "grid", *SIX, "-o", str(out / "six.mp4"), *size]],
        "six shrink run GIFs": [
            [*SHRINK, "run", "--scenario", f, "-o", str(out / f"{Path(f).stem}.gif")] for f in SIX
        ],
    }
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"the article's six scenarios; whole processes, best of {args.repeats}; load {load}")
    print(f"{'case':22s} {'wall s':>7s} {'cpu s':>6s} {'bytes':>10s} {'vs six runs':>11s}")
    results = {name: best(cmds, args.repeats) for name, cmds in cases.items()}
    base = results["six shrink run GIFs"][0]
    sizes = {
        "grid 1200x800 GIF": (out / "six.gif").stat().st_size,
        "grid 1200x800 MP4": (out / "six.mp4").stat().st_size,
        "six shrink run GIFs": sum((out / f"{Path(f).stem}.gif").stat().st_size for f in SIX),
    }
    for name, (wall, cpu) in results.items():
        print(f"{name:22s} {wall:7.2f} {cpu:6.2f} {sizes[name]:10d} {wall / base:10.2f}x")


if __name__ == "__main__":
    main()
