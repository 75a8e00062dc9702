"""Rendering speed: the blitted renderer against redrawing every frame, in one run.

Run: python bench/bench_render.py [--frames N --hold N]

Three inputs: the article's baseline and its obs_per_cluster=100 scenario (lme4's
reference estimates from tests/data), and 2,000 simulated clusters (OLS per
cluster and the mixed-model BLUPs computed here with the true variance
components, which is all the drawing needs). For each, the same frames are drawn

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
import pandas as pd

from shrinkcli.draw import Picture, RenderSettings, Scene, render_frames
from shrinkcli.encode import write_animation
from shrinkcli.scenario import Scenario
from shrinkcli.simulate import simulate
from shrinkcli.tween import Frames, straight_frames

REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "data" / "lme4"


def reference_picture(scenario: str) -> Picture:
    d = REFERENCE / scenario
    ols = pd.read_csv(d / "ols_coef.csv")
    blup = pd.read_csv(d / "blup_coef.csv").set_index("cluster")
    summ = pd.read_csv(d / "summary.csv").iloc[0]
    sizes = pd.read_csv(d / "data.csv").groupby("cluster").size()
    order = ols["cluster"].to_numpy()
    cov = summ["corr"] * np.sqrt(summ["var_int"] * summ["var_x"])
    return Picture(
        ols=ols[["(Intercept)", "x"]].to_numpy(),
        mixed=blup.loc[order, ["(Intercept)", "x"]].to_numpy(),
        fixed=np.array([summ["fixef_int"], summ["fixef_x"]]),
        re_cov=np.array([[summ["var_int"], cov], [cov, summ["var_x"]]]),
        sizes=sizes.reindex(order).to_numpy(),
        balanced=sizes.nunique() == 1,
        title=f"{scenario} (lme4 reference estimates)",
        caption=(f"REML fit: SD intercept {np.sqrt(summ['var_int']):.3f}",),
    )


def simulated_picture(n_cluster: int) -> Picture:
    """OLS per cluster and BLUPs given the true variance components."""
    s = Scenario(n_cluster=n_cluster)
    data = simulate(s)
    g = data.n_clusters
    x, y, c = data.x, data.y, data.codes
    n = np.bincount(c, minlength=g).astype(float)
    sx, sy = np.bincount(c, x, g), np.bincount(c, y, g)
    sxx, sxy = np.bincount(c, x * x, g), np.bincount(c, x * y, g)
    xtx = np.stack([np.stack([n, sx], -1), np.stack([sx, sxx], -1)], -2)  # (G, 2, 2)
    xty = np.stack([sy, sxy], -1)
    ols = np.linalg.solve(xtx, xty[..., None])[..., 0]
    beta = np.array([s.intercept, s.beta])
    d_inv = np.linalg.inv(np.diag([s.sd_int**2, s.sd_slope**2]))
    prec = d_inv[None] + xtx / s.sigma**2
    rhs = (xtx / s.sigma**2) @ (ols - beta)[..., None]
    mixed = beta + np.linalg.solve(prec, rhs)[..., 0]
    return Picture(
        ols=ols,
        mixed=mixed,
        fixed=beta,
        re_cov=np.diag([s.sd_int**2, s.sd_slope**2]),
        sizes=n,
        balanced=True,
        title=f"{n_cluster:,} simulated clusters",
        caption=("BLUPs with the true variance components",),
    )


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
        fx, fy = picture.fixed
        ax.scatter(
            [fx, fx],
            [fy, fy],
            s=[15.0**2, 6.0**2],
            c=[(0, 0, 0, 0.25), (0, 0, 0, 0.5)],
            linewidths=0,
            zorder=6,
        )
        scene.canvas.draw()
        yield np.array(scene.canvas.buffer_rgba())[:, :, :3]


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
        ("baseline", lambda: reference_picture("baseline")),
        ("obs_per_cluster=100", lambda: reference_picture("more_obs")),
        ("2,000 clusters", lambda: simulated_picture(2000)),
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
