"""End-to-end `shrink run` against a redraw-every-frame pipeline, in one run.

Run: python bench/bench_run.py [--repeats N]

Both sides are whole processes, start-up included, making the same 120-frame
600x450 GIF from the same simulated data and fits:

* shrink: `shrink run -o out.gif -q` (static layer drawn once, moving points
  blitted, one shared palette);
* redrawn: a process that runs the same simulate -> fit -> frames, then draws every
  frame from scratch (bench_render.redraw_frames: artists re-created, full canvas
  draw) and encodes with the same GIF writer.

The article's R pipeline (lme4 + gganimate + magick) takes about 30 s for the
baseline on this kind of machine (DESIGN.md); R is not installed here, so that
figure is quoted, not measured.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = [
    ("baseline", []),
    ("obs-per-cluster 100", ["--obs-per-cluster", "100"]),
    ("2,000 clusters", ["--n-cluster", "2000"]),
]

NAIVE = """
import sys
sys.path.insert(0, {here!r})
from bench_render import redraw_frames
from shrinkcli.cli import _lighter_matplotlib
from shrinkcli.draw import RenderSettings
from shrinkcli.encode import write_animation
from shrinkcli.pipeline import fit_data, make_frames, make_picture
from shrinkcli.scenario import Scenario
from shrinkcli.simulate import simulate

_lighter_matplotlib()  # the same import as shrink run, so only the drawing differs
scenario = Scenario().with_changes(**{changes!r})
data = simulate(scenario)
fits = fit_data(data)
settings = RenderSettings()
frames = make_frames(data, fits, settings)
picture = make_picture(data, fits, scenario=scenario)
write_animation(redraw_frames(picture, frames, settings), {out!r}, fps=10, n_frames=120)
"""


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def changes(flags: list[str]) -> dict[str, int]:
    return {flags[i][2:].replace("-", "_"): int(flags[i + 1]) for i in range(0, len(flags), 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive-repeats", type=int, default=1)
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="shrink-bench-"))
    print(f"{'case':22s} {'shrink run s':>12s} {'redrawn s':>10s} {'ratio':>6s} {'GIF bytes':>10s}")
    for label, flags in CASES:
        gif = out / "fast.gif"
        fast = min(
            wall([sys.executable, "-m", "shrinkcli", "run", *flags, "-o", str(gif), "-q"])
            for _ in range(args.repeats)
        )
        code = NAIVE.format(here=str(HERE), changes=changes(flags), out=str(out / "slow.gif"))
        slow = min(wall([sys.executable, "-c", code]) for _ in range(args.naive_repeats))
        print(f"{label:22s} {fast:12.2f} {slow:10.2f} {slow / fast:6.1f} {gif.stat().st_size:10,d}")
    print("\nR pipeline (quoted from DESIGN.md, not measured here): ~30 s for the baseline")


if __name__ == "__main__":
    main()
