"""The explaining layout and the story against the single-panel default, in one run.

Run: python bench/bench_explain.py [--repeats N]

Every row is the article's baseline, simulated, fitted, drawn and written as a GIF
by a whole `shrink run` process (start-up included; the best of N, wall and CPU),
and its file size. The explaining layout is timed at 1200x450 with 120 frames (60 moving, 60
held), as issue 10 asks (under 3 s wall, GIF under 1.5 MB). "render s" is the
drawing alone in this process (layout built once, every frame drawn, no encoding),
the best of N, so the panels' cost can be read apart from start-up and encoding.
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

CASES = [
    ("single 600x450", []),
    ("explain 1200x450", ["--layout", "explain", "--width", "1200", "--height", "450"]),
    ("story single 600x450", ["--story"]),
    ("story explain 1200x450", ["--story", "--layout", "explain", "--width", "1200"]),
]


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the process and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def render_seconds(flags: list[str], repeats: int) -> tuple[float, int]:
    """Best time to build the layout and draw every frame, and the frame count."""
    from shrinkcli.draw import render_frames
    from shrinkcli.pipeline import fit_data, make_frames, make_picture
    from shrinkcli.scenario import Scenario
    from shrinkcli.settings import RenderSettings
    from shrinkcli.simulate import simulate

    keys = {"--layout": "layout", "--width": "width", "--height": "height"}
    values: dict = {"story": "--story" in flags}
    for flag, key in keys.items():
        if flag in flags:
            raw = flags[flags.index(flag) + 1]
            values[key] = int(raw) if raw.isdigit() else raw
    settings = RenderSettings(**values)
    data = simulate(Scenario())
    fits = fit_data(data)
    picture = make_picture(data, fits, settings=settings)
    frames = make_frames(data, fits, settings)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in render_frames(picture, frames, settings):
            pass
        best = min(best, time.perf_counter() - start)
    return best, frames.n_frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="shrink-bench-explain-"))
    head = (
        f"{'case':24s} {'frames':>6s} {'shrink run s':>12s} {'cpu s':>6s} {'render s':>9s} "
        f"{'GIF bytes':>10s}"
    )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"the article's baseline; shrink run: whole process, best of {args.repeats}")
    print(f"{os.cpu_count()} cores, load average {load} before the run")
    print(head)
    print("-" * len(head))
    for label, flags in CASES:
        gif = out / "bench.gif"
        cmd = [sys.executable, "-m", "shrinkcli", "run", *flags, "-o", str(gif), "-q"]
        runs = [timed(cmd) for _ in range(args.repeats)]
        run_s, cpu_s = min(r[0] for r in runs), min(r[1] for r in runs)
        render_s, n = render_seconds(flags, args.repeats)
        print(f"{label:24s} {n:6d} {run_s:12.2f} {cpu_s:6.2f} {render_s:9.3f} "
              f"{gif.stat().st_size:10,d}", flush=True)  # fmt: skip
    print("cpu s: user + system seconds of the process and its GIF-encoding child (best of N),")
    print("steadier than wall time when other work shares the machine")
    print("story: 25-frame holds (2.5 s at 10 fps) at complete and no pooling, 60 frames")
    print("for each move, 60 held at the end: 230 frames")


if __name__ == "__main__":
    main()
