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
distance to the 95th percentile onto alpha ALPHA_RANGE (the farthest 5% are all
opaque). The floor keeps the nearest clusters readable; without the cap one wild
OLS estimate (a cluster of two observations in the fewer-observations scenario
lies 46 SDs out) would leave every other point near the floor. The moving points
reach full colour as they arrive, so the end state shows every mixed estimate.
The correlation is left out on purpose: it keeps the distance defined for
singular fits and easy to read.

With many clusters, markers, arrows and opacity shrink by ``density`` (1 up to
100 clusters, then sqrt(100 / G), at least 0.3) so that the picture is not a
hairball. Text never falls below MIN_TEXT_PX pixels, whatever the image size; a
caption that cannot fit at that size is dropped.
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

from shrinkcli import window
from shrinkcli.errors import UsageError
from shrinkcli.settings import RenderSettings
from shrinkcli.tween import Frames, straight_frames

ORANGE = "#F49E71"  # by-cluster (OLS)
OLIVE = "#808133"  # mixed model
BACKGROUND = "#fffff8"
TEXT = "#4D4D4D"  # ggplot's grey30
TICK_TEXT = "#7F7F7F"  # ggplot's grey50
TRUTH = "#333333"
ALPHA_RANGE = (0.4, 1.0)
MIN_TEXT_PX = 8.0  # smallest text height in pixels (font size in points at 72 dpi)
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
    xlabel, ylabel: axis names, in the user's words for their own data.
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
    xlabel: str = "Intercept"
    ylabel: str = "Slope for x"

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
    """(xlim, ylim) of the panel for the chosen zoom (see shrinkcli.window)."""
    return window.window(zoom=settings.zoom, **_window_inputs(picture, settings))


def describe_picture(picture: Picture, settings: RenderSettings) -> dict:
    """Window, estimates beyond it and axis labels: ``"picture"`` in ``run --json``."""
    return window.describe(
        zoom=settings.zoom,
        xlabel=picture.xlabel,
        ylabel=picture.ylabel,
        **_window_inputs(picture, settings),
    )


def _window_inputs(picture: Picture, settings: RenderSettings) -> dict:
    extra = []
    if settings.truth and picture.truth is not None:
        extra.append(picture.truth)
    if settings.ellipses:
        extra.append(np.concatenate(_ellipses(picture)))
    return {
        "fixed": picture.fixed,
        "re_cov": picture.re_cov,
        "mixed": picture.mixed,
        "ols": picture.ols,
        "extra": extra,
    }


def _ellipses(picture: Picture, n: int = 181) -> list[np.ndarray]:
    return window.ellipses(picture.fixed, picture.re_cov, n)


def density(n_clusters: int) -> float:
    """1 up to 100 clusters, then sqrt(100 / G), at least 0.3: thins a crowded picture."""
    return max(0.3, min(1.0, math.sqrt(100.0 / max(n_clusters, 1))))


def format_kappa(kappa: float) -> str:
    """The kappa label: '∞', '10,000', '316', '3.16', '1' (the caption says what ∞ means)."""
    if math.isinf(kappa):
        return "∞"
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
    ``tracks`` (F, G, 2), when given, are the paths the points really follow (the
    pooling path curves); the faint lines follow them instead of running straight.
    ``straight_start`` says the path begins with frames that are not models (κ = ∞
    after the first: a singular fit's straight step from OLS), which the caption explains.
    """

    def __init__(
        self,
        picture: Picture,
        settings: RenderSettings,
        *,
        kappa_max: float | None = None,
        tracks: np.ndarray | None = None,
        straight_start: bool = False,
    ) -> None:
        if settings.truth and picture.truth is None:
            raise UsageError(
                "--truth needs the true cluster effects, which only simulated "
                "data have; drop --truth for data read from a file"
            )
        self.picture, self.settings, self.kappa_max = picture, settings, kappa_max
        self.tracks = tracks
        self._straight_start = straight_start
        w, h = settings.width, settings.height
        self.scale = min(w / BASE_WIDTH, h / BASE_HEIGHT)
        dpi = 100.0 * self.scale  # text and markers (sized in points) scale with the image
        self.fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi, facecolor=BACKGROUND)
        self.canvas = FigureCanvasAgg(self.fig)
        if self.canvas.get_width_height(physical=True) != (w, h):
            raise RuntimeError(f"canvas is {self.canvas.get_width_height()}, wanted {(w, h)}")
        self.ax = self.fig.add_axes((0.1, 0.1, 0.8, 0.8))
        self.moving = picture.has_ols
        self.density = density(picture.n_clusters)
        self.alpha = point_alpha(picture) * max(self.density, 0.5)
        self.diameter = point_diameter(picture) * math.sqrt(self.density)
        self.xlim, self.ylim = axis_limits(picture, settings)
        self.beyond = {
            "by_cluster": window.outside(picture.ols, self.xlim, self.ylim),
            "mixed": window.outside(picture.mixed, self.xlim, self.ylim),
        }
        self._layout()
        self._static_layer()
        self._moving_layer()
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    # -- geometry

    def px(self, points: float) -> float:
        """Pixels for a length in points."""
        return points * self.fig.dpi / 72.0

    def fs(self, points: float) -> float:
        """A font size in points, never below MIN_TEXT_PX pixels on the image."""
        return max(points, MIN_TEXT_PX * 72.0 / self.fig.dpi)

    def to_pixel(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) data (intercept, slope) -> (N, 2) float image (column, row)."""
        disp = self.ax.transData.transform(np.asarray(xy, dtype=float).reshape(-1, 2))
        return np.column_stack([disp[:, 0], self.settings.height - disp[:, 1]])

    def _box(self, artist) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of an artist in pixels, y up."""
        box = artist.get_window_extent(self.canvas.get_renderer())
        return box.x0, box.y0, box.x1, box.y1

    def _fit_width(self, artist, max_width: float) -> bool:
        """Shrink a text's font until it is at most max_width pixels wide, but not below
        the smallest legible size; False if it still does not fit."""
        floor = self.fs(0)
        for _ in range(20):
            x0, _, x1, _ = self._box(artist)
            if x1 - x0 <= max_width:
                return True
            if artist.get_fontsize() <= floor:
                return False
            artist.set_fontsize(max(floor, artist.get_fontsize() * max_width / (x1 - x0)))
        return False

    def _text(self, x: float, y: float, text: str, fontsize: float, **kw):
        """A figure text placed in pixels, as plain text (no mathtext: '$' is a dollar)."""
        w, h = self.settings.width, self.settings.height
        return self.fig.text(x / w, y / h, text, fontsize=self.fs(fontsize), usetex=False,
                             parse_math=False, **kw)  # fmt: skip

    def _title(self, pad: float, top: float) -> float:
        """The title on one line, shortened with '…' if it cannot fit; returns its bottom."""
        w = self.settings.width
        text = " ".join(self.picture.title.split())  # a newline would overlap the label
        title = self._text(pad, top, text, 10.5, ha="left", va="top", color="#333333")
        while not self._fit_width(title, w - 2 * pad) and len(text) > 1:
            text = text[: max(1, int(len(text) * 0.9))].rstrip()
            title.set_text(text + "…")
        return self._box(title)[1]

    def _caption(self, pad: float) -> float:
        """The caption lines at the bottom; returns the top of what it took (pad if dropped)."""
        w = self.settings.width
        lines = list(self.picture.caption)
        beyond = window.beyond_edge_line(*(int(m.sum()) for m in self.beyond.values()))
        if beyond:
            lines.append(beyond)
        if self.kappa_max is not None:
            lines.append("Pooling path: random-effect covariance × κ; κ = ∞ no pooling, 1 the fit")
        if self.tracks is not None and np.isinf(self.kappa_max or 0) and self._straight_start:
            lines.append(
                "Singular fit: no κ reaches the OLS estimates, so the κ = ∞ part runs straight "
                "from them onto the fit's zero-variance direction (it is not a model)"
            )
        if not lines:
            return pad
        cap = self._text(pad, pad, "\n".join(lines), 7.5, ha="left", va="bottom",
                         color=TICK_TEXT, linespacing=1.35)  # fmt: skip
        if not self._fit_width(cap, w - 2 * pad) or self._box(cap)[3] > 0.3 * self.settings.height:
            cap.remove()  # too small an image for the caption to be legible
            return pad
        return self._box(cap)[3]

    def _layout(self) -> None:
        """Place title, y label, legend, caption and x label; the panel gets the rest."""
        ax, pic, s = self.ax, self.picture, self.scale
        w, h = self.settings.width, self.settings.height
        pad = 8 * s
        top = h - pad
        if pic.title:
            top = self._title(pad, top) - 5 * s
        ylab = self._text(pad, top, pic.ylabel, 9, ha="left", va="top", color=TEXT)
        self._fit_width(ylab, w - 2 * pad)
        panel_top = self._box(ylab)[1] - 5 * s

        column_left, column_bottom = self._legends(w - pad, panel_top)
        if self.kappa_max is not None:
            column_bottom = self._dial_layout(column_left, column_bottom - 12 * s, w - pad)
        panel_right = column_left - 12 * s

        bottom = self._caption(pad) + 5 * s
        xlab = self._text(pad, bottom, pic.xlabel, 9, ha="center", va="bottom", color=TEXT)
        probe = self._text(0, 0, "0.5", 8, va="bottom")
        tick_h = self._box(probe)[3] - self._box(probe)[1]
        probe.remove()
        tick_pad = 3.0  # points
        panel_bottom = self._box(xlab)[3] + 3 * s + tick_h + self.px(tick_pad)

        ax.set_xlim(*self.xlim)
        ax.set_ylim(*self.ylim)
        ax.set_facecolor(BACKGROUND)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(length=0, labelsize=self.fs(8), labelcolor=TICK_TEXT, pad=tick_pad)

        def place(left: float) -> None:
            ax.set_position(
                (
                    left / w,
                    panel_bottom / h,
                    max(panel_right - left, 1.0) / w,
                    max(panel_top - panel_bottom, 1.0) / h,
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
        self._fit_width(xlab, w - 2 * pad)

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
        if any(m.any() for m in self.beyond.values()):
            handles.append(dot(TICK_TEXT, marker=">", size=4.5))
            labels.append("beyond the edge")
        if st.ellipses:
            handles.append(Line2D([], [], color=TICK_TEXT, lw=0.8))
            labels.append("50/80/95% of\nrandom effects")
        model = self._legend(handles, labels, "Model", (right, top), "upper right")
        left, bottom, _, _ = self._box(model)
        if not pic.balanced:
            sizes = np.unique(np.round(np.quantile(pic.sizes, [0, 0.5, 1])).astype(int))
            diam = _size_to_diameter(sizes, pic.sizes) * math.sqrt(self.density)
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
            fontsize=self.fs(8),
            title_fontsize=self.fs(8.5),
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
        head = self._text(left, top, "Pooling path", 8.5, ha="left", va="top", color=TEXT)
        y = self._box(head)[1] - 4 * s
        self.kappa_text = self._text(
            left, y, "κ = 10,000", 8, ha="left", va="top", color=TEXT, animated=True
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
            self._text(left, y - 5 * s, "none", 6.5, ha="left", va="top", color=TICK_TEXT),
            self._text(right, y - 5 * s, "fitted", 6.5, ha="right", va="top", color=TICK_TEXT),
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
                s=(5.0 * math.sqrt(self.density)) ** 2,
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
        self._edge_markers()

    def _pixels(self, xy: np.ndarray) -> np.ndarray:
        """Data -> display pixels (y up), for artists drawn with IdentityTransform."""
        return self.ax.transData.transform(np.asarray(xy, dtype=float).reshape(-1, 2))

    def _edge_markers(self) -> None:
        """Estimates beyond the window: a small triangle on the edge, pointing at them.

        A by-cluster estimate's marker sits where its faint line leaves the window;
        a mixed estimate's (possible only with --zoom article) on the line from the
        window's centre.
        """
        pic, s = self.picture, self.scale
        x0, y0, x1, y1 = self._box(self.ax)
        r = max(3.0 * s, 2.5)  # the marker's half-size, in pixels
        box = ((x0 + r + 1, x1 - r - 1), (y0 + r + 1, y1 - r - 1))
        centre = self._pixels(pic.fixed)
        tris, colours = [], []
        for name, points, rgb in (("by_cluster", pic.ols, "orange"), ("mixed", pic.mixed, "olive")):
            out = self.beyond[name]
            if not out.any():
                continue
            target = self._pixels(points[out])
            origin = self._pixels(pic.mixed[out]) if name == "by_cluster" else centre
            origin = np.broadcast_to(origin, target.shape)
            at = window.edge_points(target, origin, *box)
            vec = target - at
            unit = vec / np.maximum(np.hypot(vec[:, 0], vec[:, 1]), 1e-9)[:, None]
            normal = np.column_stack([-unit[:, 1], unit[:, 0]])
            tip, base = at + unit * r, at - unit * r
            tris.append(np.stack([tip, base + normal * r * 0.8, base - normal * r * 0.8], axis=1))
            colours.append(np.tile([*_RGB[rgb], 0.85], (len(at), 1)))
        if tris:
            self.ax.add_collection(
                PolyCollection(
                    np.concatenate(tris),
                    facecolors=np.concatenate(colours),
                    edgecolors="none",
                    transform=IdentityTransform(),
                    zorder=4.5,
                ),
                autolim=False,
            )

    def _arrows(self, ok: np.ndarray) -> None:
        """Faint lines OLS -> mixed (along the real track on the pooling path) with a
        small head touching the mixed point's edge."""
        if not ok.any():
            return
        if self.tracks is not None:
            tracks = self.tracks[:, ok]  # (F, G', 2)
        else:
            tracks = np.stack([self.picture.ols[ok], self.picture.mixed[ok]])
        f, g = tracks.shape[:2]
        pix = self._pixels(tracks.reshape(-1, 2)).reshape(f, g, 2)
        end = pix[-1]
        # the head points along the last visible piece of the track
        before = pix[-2].copy()
        for k in range(f - 3, -1, -1):  # skip pieces too short to give a direction
            short = np.hypot(*(end - before).T) < 1.0
            if not short.any():
                break
            before[short] = pix[k][short]
        vec = end - before
        length = np.hypot(vec[:, 0], vec[:, 1])
        unit = vec / np.where(length > 0, length, 1.0)[:, None]
        radius = self.px(self.diameter[ok] / 2) + 0.5 * self.scale
        head_len, head_half = max(5.0 * self.scale, 3.5), max(2.2 * self.scale, 1.6)
        total = np.hypot(*(pix[-1] - pix[0]).T) if f == 2 else np.inf
        has_head = (length > 0) & (total > radius + head_len)
        tip = np.where(has_head[:, None], end - unit * radius[:, None], end)
        pix[-1] = tip
        lw = max(0.7 * self.scale, 0.6) * max(self.density, 0.6)
        lines = LineCollection(
            np.swapaxes(pix, 0, 1),
            colors="black",
            alpha=0.1 if self.density == 1 else 0.1 * max(self.density, 0.5),
            linewidths=lw,
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
                alpha=0.3 * max(self.density, 0.5),
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
        """The (H, W, 3) uint8 image with the moving points at ``positions`` (G, 2).

        Colour runs from orange to olive and opacity from the cluster's own to full
        with ``progress``, so the end state shows every mixed estimate plainly.
        """
        self.canvas.restore_region(self.background)
        ok = self.moving
        if ok.any():
            p = float(progress)
            self.colors[:, :3] = (1 - p) * _RGB["orange"] + p * _RGB["olive"]
            self.colors[:, 3] = (1 - p) * self.alpha[ok] + p * self.final_alpha
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

    @property
    def final_alpha(self) -> float:
        """Opacity of every mixed point at the end: full, less in a crowded picture."""
        return max(self.density, 0.5)


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
    return FrameStream(_scene(picture, settings, frames), frames)


def _scene(picture: Picture, settings: RenderSettings, frames: Frames | None) -> Scene:
    """The scene for these frames: with the pooling path's dial and tracks when they
    come from it."""
    if frames is None or frames.kappa is None:
        return Scene(picture, settings)
    return Scene(
        picture,
        settings,
        kappa_max=float(frames.kappa.max()),
        tracks=frames.positions[: frames.n_move],
        straight_start=bool(np.isinf(frames.kappa[1 : frames.n_move]).any()),
    )


def render_still(
    picture: Picture, settings: RenderSettings, frames: Frames | None = None
) -> np.ndarray:
    """The final state (every moving point at its mixed estimate) as one image; with
    the pooling path's ``frames``, the faint lines follow its tracks."""
    if frames is not None and frames.kappa is not None:
        return _scene(picture, settings, frames).frame(frames.positions[-1], 1.0, 1.0)
    last = straight_frames(picture.ols, picture.mixed, frames=2, hold=0)
    return Scene(picture, settings).frame(last.positions[-1], 1.0)


def data_to_pixel(picture: Picture, settings: RenderSettings, xy: np.ndarray) -> np.ndarray:
    """Where data points (intercept, slope) land in the images: (N, 2) (column, row)."""
    return Scene(picture, settings).to_pixel(xy)
