"""Drawing the animation's frames on one reusable Agg canvas.

Everything that does not move (labels, legend, the by-cluster points, the faint
arrows, the optional ellipses and true effects) is drawn once into a background
buffer. Each frame restores that buffer and draws only the moving points, the
black hole on top of them, and the kappa label on the pooling path; the result
is copied out of the canvas as an (H, W, 3) uint8 RGB array.

Transparency of a cluster's points grows with the standardised distance of its
OLS estimate from the fixed effects: per-axis z-scores against the fitted
random-effect standard deviations (sqrt of the diagonal of ``re_cov``; where a
component is zero, the spread of the OLS estimates on that axis is used instead),
combined as sqrt(z_int^2 + z_slope^2), then rescaled linearly from the smallest
distance to the 95th percentile onto alpha 0.1 .. 1 (the farthest 5% are all
opaque). Without that cap one wild OLS estimate (a cluster of two observations in
the fewer-observations scenario lies 46 SDs out) would leave every other point
near alpha 0.1. The correlation is left out on purpose: it keeps the distance
defined for singular fits and easy to read.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import IdentityTransform

from shrinkcli.errors import UsageError
from shrinkcli.tween import EASINGS, Frames, straight_frames

ORANGE = "#F49E71"  # by-cluster (OLS)
OLIVE = "#808133"  # mixed model
BACKGROUND = "#fffff8"
TEXT = "#4D4D4D"  # ggplot's grey30
TICK_TEXT = "#7F7F7F"  # ggplot's grey50
TRUTH = "#333333"
BASELINE_SD = (0.5, 0.25)  # the article's zoom: fixed effects +- 3 baseline SDs
ZOOM_SDS = 3.0
EXPAND = 0.05  # each side, of the range: ggplot's default, so edge points are not cut
ELLIPSE_LEVELS = (0.5, 0.8, 0.95)
ALPHA_RANGE = (0.1, 1.0)
ALPHA_CAP_QUANTILE = 0.95  # distances beyond this quantile all get full opacity
BASE_WIDTH, BASE_HEIGHT = 600, 450  # text and marker sizes scale from this size

_RGB = {
    name: np.array([int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    for name, c in (("orange", ORANGE), ("olive", OLIVE))
}


@dataclass(frozen=True, eq=False)
class Picture:
    """What the animation shows; plain arrays, one row per cluster.

    ols: (G, 2) by-cluster OLS (intercept, slope); NaN where a cluster has no slope.
    mixed: (G, 2) mixed-model cluster estimates. fixed: (2,) fixed effects.
    re_cov: (2, 2) fitted random-effect covariance. sizes: (G,) observations per cluster.
    balanced: False maps point size to cluster size. truth: (G, 2) true effects or None.
    title, caption: texts written by the pipeline; this module only lays them out.
    """

    ols: np.ndarray
    mixed: np.ndarray
    fixed: np.ndarray
    re_cov: np.ndarray
    sizes: np.ndarray
    balanced: bool = True
    truth: np.ndarray | None = None
    title: str = ""
    caption: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("ols", "mixed", "fixed", "re_cov", "sizes", "truth"):
            value = getattr(self, name)
            if value is not None:
                value = np.array(value, dtype=float)
                value.setflags(write=False)
                object.__setattr__(self, name, value)
        object.__setattr__(self, "caption", tuple(self.caption))
        g = self.mixed.shape[0] if self.mixed.ndim == 2 else -1
        shapes = {"ols": (g, 2), "mixed": (g, 2), "fixed": (2,), "re_cov": (2, 2), "sizes": (g,)}
        if self.truth is not None:
            shapes["truth"] = (g, 2)
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(
                    f"Picture.{name} must have shape {shape}, got {getattr(self, name).shape}"
                )
        if g < 1:
            raise ValueError("Picture needs at least one cluster")
        if not np.isfinite(self.mixed).all() or not np.isfinite(self.fixed).all():
            raise ValueError("Picture.mixed and Picture.fixed must be finite")

    @property
    def n_clusters(self) -> int:
        return self.mixed.shape[0]

    @property
    def has_ols(self) -> np.ndarray:
        """(G,) True where the cluster has a full OLS estimate."""
        return np.isfinite(self.ols).all(axis=1)


@dataclass(frozen=True)
class RenderSettings:
    """How to draw: size, timing, easing and the optional layers. Validated here."""

    width: int = 600
    height: int = 450
    fps: float = 10
    frames: int = 60
    hold: int = 60
    ease: str = "linear"
    ellipses: bool = False
    truth: bool = False
    zoom: str = "baseline"
    path: str = "straight"

    def __post_init__(self) -> None:
        for name, low, high in (("width", 100, 8192), ("height", 100, 8192)):
            value = getattr(self, name)
            if not _is_int(value) or not low <= value <= high:
                raise UsageError(
                    f"--{name} {value} must be a whole number of pixels from {low} to {high}"
                )
        if not _is_int(self.frames) or not 2 <= self.frames <= 10_000:
            raise UsageError(f"--frames {self.frames} must be a whole number from 2 to 10000")
        if not _is_int(self.hold) or not 0 <= self.hold <= 10_000:
            raise UsageError(f"--hold {self.hold} must be a whole number from 0 to 10000")
        fps = self.fps
        if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0.1 <= fps <= 100:
            raise UsageError(f"--fps {fps} must be a number from 0.1 to 100")
        if self.ease not in EASINGS:
            raise UsageError(f"--ease {self.ease!r} is not known; use one of " + ", ".join(EASINGS))
        if self.zoom not in ("baseline", "data"):
            raise UsageError(f"--zoom {self.zoom!r} is not known; use baseline or data")
        if self.path not in ("straight", "pooling"):
            raise UsageError(f"--path {self.path!r} is not known; use straight or pooling")

    @property
    def n_frames(self) -> int:
        """Frames in the animation: movement plus hold."""
        return self.frames + self.hold


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


# ----------------------------------------------------------------------------- mapping


def point_alpha(picture: Picture) -> np.ndarray:
    """(G,) alpha of each cluster's points, 0.1 .. 1 by standardised distance (see module)."""
    ok = picture.has_ols
    alpha = np.full(picture.n_clusters, ALPHA_RANGE[1])
    if not ok.any():
        return alpha
    dev = picture.ols[ok] - picture.fixed
    sd = np.sqrt(np.clip(np.diag(picture.re_cov), 0.0, None))
    spread = dev.std(axis=0) if dev.shape[0] > 1 else np.zeros(2)
    tiny = 1e-8 * max(1.0, float(np.abs(picture.fixed).max()))
    sd = np.where(sd > tiny, sd, np.where(spread > tiny, spread, 1.0))
    dist = np.sqrt(((dev / sd) ** 2).sum(axis=1))
    lo, hi = dist.min(), np.quantile(dist, ALPHA_CAP_QUANTILE)
    dist = np.minimum(dist, hi)
    scaled = (dist - lo) / (hi - lo) if hi > lo else np.ones_like(dist)
    alpha[ok] = ALPHA_RANGE[0] + (ALPHA_RANGE[1] - ALPHA_RANGE[0]) * scaled
    return alpha


def point_diameter(picture: Picture) -> np.ndarray:
    """(G,) marker diameters in points: constant, or area linear in cluster size."""
    if picture.balanced:
        return np.full(picture.n_clusters, 5.0)
    return _size_to_diameter(picture.sizes, picture.sizes)


def _size_to_diameter(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    lo, hi = float(sizes.min()), float(sizes.max())
    d_lo, d_hi = 3.0, 9.0
    if hi <= lo:
        return np.full(np.shape(values), 5.0)
    frac = (np.asarray(values, dtype=float) - lo) / (hi - lo)
    return np.sqrt(d_lo**2 + frac * (d_hi**2 - d_lo**2))


def axis_limits(picture: Picture, settings: RenderSettings) -> tuple[tuple, tuple]:
    """(xlim, ylim) of the panel for the chosen zoom."""
    fx, fy = picture.fixed
    if settings.zoom == "baseline":  # plus ggplot's default 5% expansion, as in the article
        dx, dy = ((1 + 2 * EXPAND) * ZOOM_SDS * s for s in BASELINE_SD)
        return (fx - dx, fx + dx), (fy - dy, fy + dy)
    pts = [picture.ols, picture.mixed, picture.fixed[None]]
    if settings.truth and picture.truth is not None:
        pts.append(picture.truth)
    if settings.ellipses:
        pts.append(np.concatenate(_ellipses(picture)))
    allp = np.concatenate(pts)
    allp = allp[np.isfinite(allp).all(axis=1)]
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    lo, hi = lo - EXPAND * span, hi + EXPAND * span
    return (lo[0], hi[0]), (lo[1], hi[1])


def _ellipses(picture: Picture, n: int = 181) -> list[np.ndarray]:
    """Contours of N(fixed, re_cov) holding ELLIPSE_LEVELS of the distribution."""
    vals, vecs = np.linalg.eigh(picture.re_cov)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    t = np.linspace(0, 2 * np.pi, n)
    circle = np.stack([np.cos(t), np.sin(t)])
    out = []
    for level in ELLIPSE_LEVELS:
        r = math.sqrt(-2 * math.log(1 - level))  # chi-square(2) quantile, square-rooted
        out.append(picture.fixed + r * (root @ circle).T)
    return out


def format_kappa(kappa: float) -> str:
    """The kappa label: '∞ (no pooling)', '10,000', '316', '3.16', '1'."""
    if math.isinf(kappa):
        return "∞ (no pooling)"
    if kappa >= 100:
        return f"{kappa:,.0f}"
    return f"{kappa:.3g}"


# ----------------------------------------------------------------------------- scene


def black_hole(ax, fixed: np.ndarray, *, animated: bool):
    """The population average: a faint halo and a darker core, as one collection.

    Drawn per frame on top of the moving points; one two-point scatter, because a
    single-point scatter takes matplotlib's slow path.
    """
    fx, fy = fixed
    return ax.scatter(
        [fx, fx],
        [fy, fy],
        s=[15.0**2, 6.0**2],
        c=[(0, 0, 0, 0.25), (0, 0, 0, 0.5)],
        linewidths=0,
        zorder=6,
        animated=animated,
    )


class Scene:
    """One figure with its static layer drawn; draws any frame by blitting the moving points.

    ``to_pixel`` maps data coordinates to image (column, row) coordinates, row 0 at top.
    ``kappa_max``, when given, adds the pooling-path dial (kappa from kappa_max down to 1).
    """

    def __init__(
        self, picture: Picture, settings: RenderSettings, *, kappa_max: float | None = None
    ) -> None:
        if settings.truth and picture.truth is None:
            raise UsageError(
                "--truth needs the true cluster effects, which only simulated "
                "data have; drop --truth for data read from a file"
            )
        self.picture, self.settings, self.kappa_max = picture, settings, kappa_max
        w, h = settings.width, settings.height
        self.scale = min(w / BASE_WIDTH, h / BASE_HEIGHT)
        dpi = 100.0 * self.scale  # text and markers (sized in points) scale with the image
        self.fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi, facecolor=BACKGROUND)
        self.canvas = FigureCanvasAgg(self.fig)
        if self.canvas.get_width_height(physical=True) != (w, h):
            raise RuntimeError(f"canvas is {self.canvas.get_width_height()}, wanted {(w, h)}")
        self.ax = self.fig.add_axes((0.1, 0.1, 0.8, 0.8))
        self.moving = picture.has_ols
        self.alpha = point_alpha(picture)
        self.diameter = point_diameter(picture)
        self._layout()
        self._static_layer()
        self._moving_layer()
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    # -- geometry

    def px(self, points: float) -> float:
        """Pixels for a length in points."""
        return points * self.fig.dpi / 72.0

    def to_pixel(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) data (intercept, slope) -> (N, 2) float image (column, row)."""
        disp = self.ax.transData.transform(np.asarray(xy, dtype=float).reshape(-1, 2))
        return np.column_stack([disp[:, 0], self.settings.height - disp[:, 1]])

    def _box(self, artist) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of an artist in pixels, y up."""
        box = artist.get_window_extent(self.canvas.get_renderer())
        return box.x0, box.y0, box.x1, box.y1

    def _fit_width(self, artist, max_width: float, min_size: float = 5.0) -> None:
        """Shrink a text's font until it is at most max_width pixels wide."""
        for _ in range(20):
            x0, _, x1, _ = self._box(artist)
            if x1 - x0 <= max_width or artist.get_fontsize() <= min_size:
                return
            artist.set_fontsize(max(min_size, artist.get_fontsize() * max_width / (x1 - x0)))

    def _text(self, x: float, y: float, text: str, **kw):
        """A figure text placed in pixels."""
        w, h = self.settings.width, self.settings.height
        return self.fig.text(x / w, y / h, text, **kw)

    def _layout(self) -> None:
        """Place title, y label, legend, caption and x label; the panel gets the rest."""
        ax, pic, s = self.ax, self.picture, self.scale
        w, h = self.settings.width, self.settings.height
        pad = 8 * s
        top = h - pad
        if pic.title:
            title = self._text(
                pad, top, pic.title, ha="left", va="top", fontsize=10.5, color="#333333"
            )
            self._fit_width(title, w - 2 * pad)
            top = self._box(title)[1] - 5 * s
        ylab = self._text(pad, top, "Slope for x", ha="left", va="top", fontsize=9, color=TEXT)
        panel_top = self._box(ylab)[1] - 5 * s

        column_left, column_bottom = self._legends(w - pad, panel_top)
        if self.kappa_max is not None:
            column_bottom = self._dial_layout(column_left, column_bottom - 12 * s, w - pad)
        panel_right = column_left - 12 * s

        bottom = pad
        if pic.caption:
            cap = self._text(
                pad,
                bottom,
                "\n".join(pic.caption),
                ha="left",
                va="bottom",
                fontsize=7.5,
                color=TICK_TEXT,
                linespacing=1.35,
            )
            self._fit_width(cap, w - 2 * pad)
            bottom = self._box(cap)[3] + 5 * s
        xlab = self._text(
            pad, bottom, "Intercept", ha="center", va="bottom", fontsize=9, color=TEXT
        )
        probe = self._text(0, 0, "0.5", fontsize=8, va="bottom")
        tick_h = self._box(probe)[3] - self._box(probe)[1]
        probe.remove()
        tick_pad = 3.0  # points
        panel_bottom = self._box(xlab)[3] + 3 * s + tick_h + self.px(tick_pad)

        xlim, ylim = axis_limits(pic, self.settings)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_facecolor(BACKGROUND)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(length=0, labelsize=8, labelcolor=TICK_TEXT, pad=tick_pad)

        def place(left: float) -> None:
            ax.set_position(
                (
                    left / w,
                    panel_bottom / h,
                    (panel_right - left) / w,
                    (panel_top - panel_bottom) / h,
                )
            )

        place(pad + 30 * s)
        # the y tick labels decide the left edge: measure them at the final height
        # (laying the axis out is enough; a full canvas draw would cost twice as much)
        box = ax.yaxis.get_tightbbox(self.canvas.get_renderer())
        if box is not None and box.width > 0:  # move the labels' left edge onto the margin
            place(pad + 30 * s - (box.x0 - pad))
        x0, _, x1, _ = self._box(ax)
        xlab.set_x((x0 + x1) / 2 / w)

    def _legends(self, right: float, top: float) -> tuple[float, float]:
        """'Model' (and 'Cluster size' when unbalanced) legends in a right-hand column.

        Returns the column's left edge and bottom, in pixels.
        """
        pic, st = self.picture, self.settings

        def dot(color, marker="o", size=5.0, face=None, lw=0.0):
            return Line2D(
                [],
                [],
                linestyle="",
                marker=marker,
                markersize=size,
                markerfacecolor=color if face is None else face,
                markeredgecolor=color,
                markeredgewidth=lw,
            )

        handles = [dot(ORANGE), dot(OLIVE)]
        labels = ["by-cluster", "mixed"]
        if (~pic.has_ols).any():
            handles.append(dot(OLIVE, marker="D", size=4.5, face="none", lw=1.0))
            labels.append("no OLS slope")
        if st.truth and pic.truth is not None:
            handles.append(dot(TRUTH, marker="+", size=5.0, lw=0.8))
            labels.append("truth")
        handles.append((dot((0, 0, 0, 0.25), size=8.5), dot((0, 0, 0, 0.5), size=3.5)))
        labels.append("average")
        if st.ellipses:
            handles.append(Line2D([], [], color=TICK_TEXT, lw=0.8))
            labels.append("50/80/95% of\nrandom effects")
        model = self._legend(handles, labels, "Model", (right, top), "upper right")
        left, bottom, _, _ = self._box(model)
        if not pic.balanced:
            sizes = np.unique(np.round(np.quantile(pic.sizes, [0, 0.5, 1])).astype(int))
            diam = _size_to_diameter(sizes, pic.sizes)
            handles = [dot(TICK_TEXT, size=float(dd)) for dd in diam]
            size = self._legend(
                handles,
                [str(v) for v in sizes],
                "Cluster size",
                (left, bottom - 8 * self.scale),
                "upper left",
            )
            bottom = self._box(size)[1]
        return left, bottom

    def _legend(self, handles, labels, title, anchor, loc):
        w, h = self.settings.width, self.settings.height
        leg = self.fig.legend(
            handles,
            labels,
            title=title,
            loc=loc,
            bbox_to_anchor=(anchor[0] / w, anchor[1] / h),
            frameon=False,
            fontsize=8,
            title_fontsize=8.5,
            labelcolor=TEXT,
            alignment="left",
            borderaxespad=0,
            borderpad=0,
            handletextpad=0.4,
            labelspacing=0.45,
            handlelength=1.2,
        )
        leg.get_title().set_color(TEXT)
        return leg

    def _dial_layout(self, left: float, top: float, right: float) -> float:
        """The pooling-path dial under the legends: title, kappa, a track from 'none' to
        'fitted'; returns its bottom. The kappa value and the knob are drawn per frame."""
        s = self.scale
        head = self._text(left, top, "Pooling path", ha="left", va="top", fontsize=8.5, color=TEXT)
        y = self._box(head)[1] - 4 * s
        self.kappa_text = self._text(
            left, y, "κ = 10,000", ha="left", va="top", fontsize=8, color=TEXT, animated=True
        )
        y = self._box(self.kappa_text)[1] - 7 * s
        self.dial = (left + 3 * s, right - 3 * s, y)
        self.fig.add_artist(
            Line2D(
                [left + 3 * s, right - 3 * s],
                [y, y],
                color=TICK_TEXT,
                lw=1.0,
                alpha=0.6,
                transform=IdentityTransform(),
            )
        )
        ends = [
            self._text(left, y - 5 * s, "none", ha="left", va="top", fontsize=6.5, color=TICK_TEXT),
            self._text(
                right, y - 5 * s, "fitted", ha="right", va="top", fontsize=6.5, color=TICK_TEXT
            ),
        ]
        self.knob = Line2D(
            [left],
            [y],
            marker="o",
            markersize=5,
            color=OLIVE,
            linestyle="",
            transform=IdentityTransform(),
            animated=True,
        )
        self.fig.add_artist(self.knob)
        return min(self._box(t)[1] for t in ends)

    # -- layers

    def _static_layer(self) -> None:
        ax, pic, st = self.ax, self.picture, self.settings
        ok = self.moving
        if st.ellipses:
            for contour in _ellipses(pic):
                ax.plot(contour[:, 0], contour[:, 1], color=TICK_TEXT, lw=0.8, alpha=0.6, zorder=1)
        self._arrows(ok)
        if ok.any():
            orange = np.column_stack([np.tile(_RGB["orange"], (ok.sum(), 1)), self.alpha[ok]])
            ax.scatter(
                pic.ols[ok, 0],
                pic.ols[ok, 1],
                s=self.diameter[ok] ** 2,
                c=orange,
                linewidths=0,
                zorder=3,
            )
        if st.truth and pic.truth is not None:
            ax.scatter(
                pic.truth[:, 0],
                pic.truth[:, 1],
                s=5.0**2,
                marker="+",
                c=TRUTH,
                linewidths=0.7,
                alpha=0.55,
                zorder=2.5,
            )
        if (~ok).any():
            ax.scatter(
                pic.mixed[~ok, 0],
                pic.mixed[~ok, 1],
                s=(0.9 * self.diameter[~ok]) ** 2,
                marker="D",
                facecolors="none",
                edgecolors=OLIVE,
                linewidths=1.0,
                zorder=4,
            )

    def _arrows(self, ok: np.ndarray) -> None:
        """Faint lines OLS -> mixed with a small head touching the mixed point's edge."""
        if not ok.any():
            return
        start = self.ax.transData.transform(self.picture.ols[ok])
        end = self.ax.transData.transform(self.picture.mixed[ok])
        vec = end - start
        length = np.hypot(vec[:, 0], vec[:, 1])
        unit = vec / np.where(length > 0, length, 1.0)[:, None]
        radius = self.px(self.diameter[ok] / 2) + 0.5 * self.scale
        head_len, head_half = 5.0 * self.scale, 2.2 * self.scale
        tip = end - unit * radius[:, None]
        has_head = length > radius + head_len
        tip = np.where(has_head[:, None], tip, end)
        lines = LineCollection(
            np.stack([start, tip], axis=1),
            colors="black",
            alpha=0.1,
            linewidths=0.7 * self.scale,
            transform=IdentityTransform(),
            zorder=2,
        )
        self.ax.add_collection(lines, autolim=False)
        if has_head.any():
            u, t = unit[has_head], tip[has_head]
            normal = np.column_stack([-u[:, 1], u[:, 0]])
            base = t - u * head_len
            heads = np.stack([t, base + normal * head_half, base - normal * head_half], axis=1)
            poly = PolyCollection(
                heads,
                facecolors="black",
                edgecolors="none",
                alpha=0.3,
                transform=IdentityTransform(),
                zorder=2,
            )
            self.ax.add_collection(poly, autolim=False)

    def _moving_layer(self) -> None:
        ax, pic = self.ax, self.picture
        ok = self.moving
        self.colors = np.zeros((int(ok.sum()), 4))
        self.colors[:, 3] = self.alpha[ok]
        self.points = ax.scatter(
            pic.mixed[ok, 0],
            pic.mixed[ok, 1],
            s=self.diameter[ok] ** 2,
            c=self.colors,
            linewidths=0,
            zorder=5,
            animated=True,
        )
        self.hole = black_hole(ax, pic.fixed, animated=True)

    # -- frames

    def frame(
        self, positions: np.ndarray, progress: float, kappa: float | None = None
    ) -> np.ndarray:
        """The (H, W, 3) uint8 image with the moving points at ``positions`` (G, 2)."""
        self.canvas.restore_region(self.background)
        ok = self.moving
        if ok.any():
            p = float(progress)
            self.colors[:, :3] = (1 - p) * _RGB["orange"] + p * _RGB["olive"]
            self.points.set_offsets(np.asarray(positions)[ok])
            self.points.set_facecolors(self.colors)
            self.ax.draw_artist(self.points)
        self.ax.draw_artist(self.hole)
        if kappa is not None and self.kappa_max is not None:
            self.kappa_text.set_text(f"κ = {format_kappa(float(kappa))}")
            self.fig.draw_artist(self.kappa_text)
            x0, x1, y = self.dial
            # the knob shows how far along the path the frame is: the pipeline spaces
            # kappa so that equal steps of progress are equal amounts of movement
            frac = min(1.0, max(0.0, float(progress)))
            self.knob.set_data([x0 + frac * (x1 - x0)], [y])
            self.fig.draw_artist(self.knob)
        # An (H, W, 3) view into a copy of the RGBA buffer: a contiguous copy is ~40x
        # faster than a strided RGB one, and encode.py feeds the RGBA base to Pillow/ffmpeg.
        return np.array(self.canvas.buffer_rgba())[:, :, :3]


class FrameStream(Iterator[np.ndarray]):
    """The frames of one animation, drawn one by one on a single scene.

    Iterate to get read-only (H, W, 3) uint8 RGB arrays (views into an RGBA copy; the
    alpha channel is always 255). A frame identical to the one before (the held end)
    is the very same array object, not drawn again. ``sample`` draws chosen frames
    without advancing, which the GIF writer uses to build its palette before streaming.
    """

    def __init__(self, scene: Scene, frames: Frames) -> None:
        self.scene, self.frames, self._next = scene, frames, 0
        self._last: np.ndarray | None = None

    # colours the GIF palette must hold exactly (the legend's, text, the black hole)
    key_colors = (ORANGE, OLIVE, TEXT, TICK_TEXT, "#000000", BACKGROUND)

    def __len__(self) -> int:
        return self.frames.n_frames

    def __iter__(self) -> FrameStream:
        return self

    def __next__(self) -> np.ndarray:
        if self._next >= self.frames.n_frames:
            raise StopIteration
        i = self._next
        self._next += 1
        if self._last is not None and self._same_as_previous(i):
            return self._last
        was_enabled = gc.isenabled()  # see encode._gc_paused: collections cost more than
        gc.disable()  # drawing here; reference counting still frees each frame's objects
        try:
            self._last = self.draw(i)
        finally:
            if was_enabled:
                gc.enable()
        return self._last

    def seek(self, i: int) -> None:
        """Continue from frame ``i`` (the GIF writer hands half the frames to a second
        process, which starts here)."""
        self._next, self._last = i, None

    def _same_as_previous(self, i: int) -> bool:
        f = self.frames
        return (
            i > 0
            and f.progress[i] == f.progress[i - 1]
            and (f.kappa is None or f.kappa[i] == f.kappa[i - 1])
            and np.array_equal(f.positions[i], f.positions[i - 1])
        )

    def draw(self, i: int) -> np.ndarray:
        """Frame ``i`` (0-based)."""
        f = self.frames
        image = self.scene.frame(
            f.positions[i], f.progress[i], None if f.kappa is None else f.kappa[i]
        )
        image.flags.writeable = False
        return image

    def sample(self, indices) -> list[np.ndarray]:
        return [self.draw(int(i)) for i in indices]

    def palette_sample(self, k: int = 6) -> list[np.ndarray]:
        """A few frames spread over the movement (and the last) for a shared palette."""
        n_move = self.frames.n_move
        idx = np.unique(np.round(np.linspace(0, n_move - 1, k)).astype(int))
        return self.sample([*idx, self.frames.n_frames - 1])


def render_frames(picture: Picture, frames: Frames, settings: RenderSettings) -> FrameStream:
    """Every frame of the animation, as an iterator of (H, W, 3) uint8 RGB arrays."""
    if frames.n_clusters != picture.n_clusters:
        raise ValueError(
            f"frames have {frames.n_clusters} clusters, the picture {picture.n_clusters}"
        )
    kappa_max = None if frames.kappa is None else float(frames.kappa.max())
    return FrameStream(Scene(picture, settings, kappa_max=kappa_max), frames)


def render_still(picture: Picture, settings: RenderSettings) -> np.ndarray:
    """The final state (every moving point at its mixed estimate) as one image."""
    last = straight_frames(picture.ols, picture.mixed, frames=2, hold=0)
    return Scene(picture, settings).frame(last.positions[-1], 1.0)


def data_to_pixel(picture: Picture, settings: RenderSettings, xy: np.ndarray) -> np.ndarray:
    """Where data points (intercept, slope) land in the images: (N, 2) (column, row)."""
    return Scene(picture, settings).to_pixel(xy)
