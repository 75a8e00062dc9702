"""Rendering speed: the blitted renderer against redrawing every frame, in one run.

Run: python bench/bench_render.py [--frames N --hold N]

Three inputs, each simulated and fitted as `shrink run` does: the article's
baseline, its obs_per_cluster=100 scenario, and 2,000 clusters. For each, the
same frames are drawn

* blitted: draw.render_frames, the static layer drawn once, only the moving
  points (and the black hole over them) drawn per frame;
* redrawn: a straightforward renderer on the same figure that removes and
  re-creates every data artist and calls ``fig.canvas.draw()`` for every frame
  (what a plotting library that re-renders the whole plot per frame does);

and the blitted frames are also encoded to a GIF (render + encode, like `shrink run`
minus simulation and fitting). "max diff" checks that both draw the same picture.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from shrinkcli.draw import Picture, RenderSettings, Scene, black_hole, render_frames
from shrinkcli.encode import write_animation
from shrinkcli.pipeline import fit_data, make_picture
from shrinkcli.scenario import Scenario
from shrinkcli.simulate import simulate
from shrinkcli.tween import Frames, straight_frames

REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "data" / "lme4"


def fitted_picture(scenario: Scenario) -> Picture:
    """The picture `shrink run` draws: simulate, fit, and the pipeline's Picture."""
    data = simulate(scenario)
    return make_picture(data, fit_data(data), scenario=scenario)


def redraw_frames(picture: Picture, frames: Frames, settings: RenderSettings):
    """Every frame drawn from scratch: re-create the data artists, full canvas draw."""
    scene = Scene(picture, settings)  # layout (title, legend, axes) as the blitted one
    ax = scene.ax
    ok = picture.has_ols
    orange, olive = np.array([244, 158, 113]) / 255, np.array([128, 129, 51]) / 255
    for i in range(frames.n_frames):
        for artist in [*ax.collections, *ax.lines]:
            artist.remove()
        scene._static_layer()
        p = float(frames.progress[i])
        colors = np.column_stack(
            [np.tile((1 - p) * orange + p * olive, (ok.sum(), 1)), scene.alpha[ok]]
        )
        pos = frames.positions[i][ok]
        ax.scatter(
            pos[:, 0], pos[:, 1], s=scene.diameter[ok] ** 2, c=colors, linewidths=0, zorder=5
        )
        black_hole(ax, picture.fixed, animated=False)
        scene.canvas.canvas.draw()
        yield np.array(scene.canvas.canvas.buffer_rgba())[:, :, :3]


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def measure(label: str, pic: Picture, settings: RenderSettings, out: Path) -> str:
    """One table row: the same frames blitted, redrawn, and blitted + GIF-encoded."""
    frames = straight_frames(pic.ols, pic.mixed, frames=settings.frames, hold=settings.hold)
    blit_s = min(timed(lambda: list(render_frames(pic, frames, settings)))[0] for _ in range(3))
    blitted = list(render_frames(pic, frames, settings))
    redraw_s, redrawn = timed(lambda: list(redraw_frames(pic, frames, settings)))
    diff = max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(blitted, redrawn, strict=True))

    def gif() -> Path:
        stream = render_frames(pic, frames, settings)
        return write_animation(stream, out, fps=settings.fps, n_frames=frames.n_frames)

    gif_s = min(timed(gif)[0] for _ in range(3))
    return (
        f"{label:22s} {pic.n_clusters:8,d} {frames.n_frames:6d} {blit_s:9.3f} "
        f"{redraw_s:9.3f} {redraw_s / blit_s:7.1f}x {diff:8d} {gif_s:7.3f} "
        f"{out.stat().st_size:10,d}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--hold", type=int, default=60)
    args = parser.parse_args()
    settings = RenderSettings(frames=args.frames, hold=args.hold)
    cases = [
        ("baseline", lambda: fitted_picture(Scenario())),
        ("obs_per_cluster=100", lambda: fitted_picture(Scenario(obs_per_cluster=100))),
        ("2,000 clusters", lambda: fitted_picture(Scenario(n_cluster=2000))),
    ]
    header = (
        f"{'case':22s} {'clusters':>8s} {'frames':>6s} {'blitted s':>9s} {'redrawn s':>9s} "
        f"{'speed-up':>8s} {'max diff':>8s} {'+GIF s':>7s} {'GIF bytes':>10s}"
    )
    print(f"{settings.width}x{settings.height}, {settings.n_frames} frames per case")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for label, make in cases:
            print(measure(label, make(), settings, Path(tmp) / "bench.gif"), flush=True)
    print("blitted/redrawn: rendering only (RGB arrays); +GIF s: blitted render + GIF encode;")
    print("max diff: largest channel difference between the two renderers' frames")


if __name__ == "__main__":
    main()
