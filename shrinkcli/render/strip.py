"""The random-intercept picture: one row per cluster, estimates moving along one axis.

The strip (StripPanel): the population value (fixed intercept) as a vertical line,
each cluster's faint track from its by-cluster estimate to its mixed estimate on
its row, the by-cluster points (orange), edge markers for estimates beyond the
window, the true intercepts (``--truth``), a band holding 95% of the random
intercepts (``--ellipses``), clusters without a by-cluster estimate as hollow olive
diamonds; per frame only the moving points (orange to olive). The explaining
layout adds FactorPanel: the shrinkage factor σ²/n_j / (τ² + σ²/n_j) of each
cluster against its size, the factor's curve over n, and the share of the way each
cluster has been pulled, filling in as it moves.

The layout is the plane's (render.layout) in miniature: title, a story's stage
line, caption, panels side by side; the static layer drawn once (one per story
stage), each frame a blit of the moving artists.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from matplotlib.transforms import IdentityTransform

from shrinkcli.explain import fractions
from shrinkcli.render.canvas import Canvas, dot
from shrinkcli.render.data import short
from shrinkcli.render.dial import Dial
from shrinkcli.render.layout import BaseLayout, FrameState
from shrinkcli.render.picture import ALPHA_RANGE, alpha_by_distance, density, track_width
from shrinkcli.render.plane import EstimatePanel
from shrinkcli.render.shrinkage import share_axes, show_shares
from shrinkcli.render.stream import FrameStream
from shrinkcli.render.style import (
    BACKGROUND,
    OLIVE,
    ORANGE,
    RGB,
    TEXT,
    TICK_TEXT,
    TRUTH,
    ramp,
)
from shrinkcli.settings import RenderSettings
from shrinkcli.strip import StripPicture, outside, strip_window
from shrinkcli.tween import Frames, straight_frames

EXPLAIN_SHARES = (0.6, 0.4)  # widths of the strip and the factor panel
LINE = "#000000"


def stages(what: str) -> tuple[str, str, str]:
    """The story's three lines, in the model's word (mean or intercept)."""
    return (
        f"1. Complete pooling: one {what} for every cluster, from all the data",
        f"2. No pooling: each cluster its own {what}, from its own data alone",
        f"3. Partial pooling: each {what} pulled toward the population, the less data the harder",
    )


def point_alpha(picture: StripPicture) -> np.ndarray:
    """(G,) opacity by distance of the by-cluster estimate from the population value in
    fitted SDs, ALPHA_RANGE from the nearest to the 95th percentile (as the plane's)."""
    ok = picture.has_ols
    alpha = np.full(picture.n_clusters, ALPHA_RANGE[1])
    if not ok.any():
        return alpha
    alpha[ok] = alpha_by_distance(np.abs(picture.ols[ok] - picture.fixed))
    return alpha


def strip_legend(*, no_ols: bool, truth: bool, beyond: bool, band: bool,
                 one_line: bool = False) -> tuple[list, list[str]]:  # fmt: skip
    """The strip's 'Model' legend: handles and labels of the marks it may show."""
    br = " " if one_line else "\n"
    handles = [dot(ORANGE), dot(OLIVE)]
    labels = ["by-cluster", "mixed"]
    if no_ols:
        handles.append(dot(OLIVE, marker="D", size=4.5, face="none", lw=1.0))
        labels.append(f"no by-cluster{br}estimate")
    if truth:
        handles.append(dot(TRUTH, marker="+", size=5.0, lw=0.8))
        labels.append("truth")
    handles.append(Line2D([], [], color=LINE, alpha=0.5, lw=1.2))
    labels.append("population")
    if beyond:
        handles.append(dot(TICK_TEXT, marker=">", size=4.5))
        labels.append("beyond the edge")
    if band:
        handles.append(dot((0, 0, 0, 0.12), marker="s", size=7.0))
        labels.append(f"95% of random{br}intercepts")
    return handles, labels


class StripPanel(EstimatePanel):
    """The strip, its legend column and its moving points (see module)."""

    def __init__(self, canvas: Canvas, picture: StripPicture, settings: RenderSettings, *,
                 kappa_max: float | None = None, story: bool = False,
                 limits: tuple | None = None) -> None:  # fmt: skip
        self.canvas, self.picture, self.settings = canvas, picture, settings
        self.kappa_max, self.story = kappa_max, story
        self.ax = canvas.fig.add_axes((0.1, 0.1, 0.8, 0.8))
        self.moving = picture.has_ols
        self.density = density(picture.n_clusters)
        self.alpha = point_alpha(picture) * max(self.density, 0.5)
        self.xlim = limits or strip_window(
            picture, settings.zoom, truth=settings.truth, band=settings.ellipses
        )  # a grid's is shared
        g = picture.n_clusters
        self.ylim = (-0.5 - 0.02 * g, g - 0.5 + 0.02 * g)
        self.beyond = {"by_cluster": outside(picture.ols, self.xlim),
                       "mixed": outside(picture.mixed, self.xlim)}  # fmt: skip
        self.dial: Dial | None = None
        self.reveal: list = []
        self.diameter = 5.0

    @property
    def final_alpha(self) -> float:
        return max(self.density, 0.5)

    def caption_lines(self) -> list[str]:
        from shrinkcli.window import beyond_edge_line

        lines = []
        beyond = beyond_edge_line(*(int(m.sum()) for m in self.beyond.values()))
        if beyond:
            lines.append(beyond)
        if self.kappa_max is not None:
            lines.append("Pooling path: random-intercept variance × κ; κ = ∞ no pooling, 1 the fit")
        return lines

    # -- layout

    def place(self, left: float, bottom: float, right: float, top: float) -> None:
        """Row name at the top left, legend column at the right, the estimate's name below."""
        cv, ax, s = self.canvas, self.ax, self.canvas.scale
        panel_right, panel_bottom, panel_top, xlab = self._frame(left, bottom, right, top)
        self.style(panel_top - panel_bottom)
        margin = left + 4 * s
        cv.place(ax, margin, panel_bottom, panel_right, panel_top)
        margin += self.row_label_width(margin)  # the row labels' left edge on the margin
        cv.place(ax, margin, panel_bottom, panel_right, panel_top)
        self._centre(xlab, left, right)

    def style(self, height: float, tick_size: float = 8) -> None:
        """The axes' window, look and row labels for a strip ``height`` pixels tall; its
        marks no taller than a row (with many clusters the rows overlap)."""
        cv, ax = self.canvas, self.ax
        ax.set_xlim(*self.xlim)
        ax.set_ylim(*self.ylim)
        ax.set_facecolor(BACKGROUND)
        for name, spine in ax.spines.items():
            spine.set_visible(name == "bottom")
            spine.set_color("#D9D9D9")
        ax.tick_params(length=0, labelsize=cv.fs(tick_size), labelcolor=TICK_TEXT,
                       pad=self.TICK_PAD)  # fmt: skip
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: short(v)))
        pitch = height / (self.ylim[1] - self.ylim[0])
        self._row_ticks(pitch)
        row_pt = pitch * 72.0 / cv.fig.dpi
        self.diameter = float(min(5.0 * math.sqrt(self.density), max(2.0, 1.1 * row_pt)))

    def row_label_width(self, left: float) -> float:
        """How far the row labels reach left of the axes placed at ``left`` (0: none)."""
        box = self.ax.yaxis.get_tightbbox(self.canvas.renderer)
        if box is None or box.width <= 0:
            return 0.0
        return left - box.x0

    def _row_ticks(self, pitch: float) -> None:
        """Cluster labels on the rows when they fit; else, by size, a few sizes."""
        ax, pic, cv = self.ax, self.picture, self.canvas
        order = np.argsort(pic.rows)
        label_px = cv.px(cv.fs(7.0)) * 1.15
        if pitch >= label_px and pic.n_clusters <= 60:
            ax.yaxis.set_major_locator(FixedLocator(pic.rows[order]))
            names = [pic.labels[j] for j in order]
            if pic.order == "size" and pic.sizes.min() < pic.sizes.max():
                names = [f"{n} (n={int(pic.sizes[j])})" for n, j in zip(names, order, strict=True)]
            ax.set_yticks(pic.rows[order], names)
            ax.tick_params(axis="y", labelsize=cv.fs(7.0))
            return
        if pic.order != "size" or pic.sizes.min() == pic.sizes.max():  # the name says it
            ax.yaxis.set_major_locator(NullLocator())
            return
        # one label per size, in the middle of its rows; the sizes with most rows first,
        # each kept only where it does not touch a label already kept
        sizes = pic.sizes[order]
        first = np.flatnonzero(np.r_[True, sizes[1:] != sizes[:-1]])
        last = np.r_[first[1:] - 1, len(sizes) - 1]
        kept: list[int] = []
        for k in np.argsort(-(last - first), kind="stable"):
            mid = (first[k] + last[k]) / 2
            if all(abs(mid - (first[i] + last[i]) / 2) * pitch >= label_px for i in kept):
                kept.append(int(k))
        kept.sort()
        ax.set_yticks([(first[k] + last[k]) / 2 for k in kept],
                      [f"n = {int(sizes[first[k]])}" for k in kept])  # fmt: skip

    def _legends(self, right: float, top: float) -> tuple[float, float]:
        cv, pic, st = self.canvas, self.picture, self.settings
        handles, labels = strip_legend(
            no_ols=bool((~pic.has_ols).any()),
            truth=st.truth and pic.truth is not None,
            beyond=any(m.any() for m in self.beyond.values()),
            band=st.ellipses,
        )
        model = cv.legend(handles, labels, "Model", (right, top), "upper right")
        left, bottom, _, _ = cv.box(model)
        return left, bottom

    # -- static layer

    def draw(self) -> None:
        ax, pic, st = self.ax, self.picture, self.settings
        ok = self.moving
        rows = pic.rows
        if st.ellipses:
            ax.axvspan(pic.fixed - 1.96 * pic.re_sd, pic.fixed + 1.96 * pic.re_sd,
                       color=(0, 0, 0, 0.06), lw=0, zorder=0.5)  # fmt: skip
        ax.axvline(pic.fixed, color=LINE, alpha=0.5, lw=1.2, zorder=1.5)
        if pic.order == "size" and len(np.unique(pic.sizes)) <= 12:  # between sizes, faintly
            sizes = pic.sizes[np.argsort(pic.rows)]
            for r in np.flatnonzero(sizes[1:] != sizes[:-1]):
                ax.axhline(r + 0.5, color="#D9D9D9", lw=0.6, ls=(0, (3, 3)), zorder=0.8)
        s, dens = self.canvas.scale, self.density
        if ok.any():
            segs = np.stack([np.column_stack([pic.ols[ok], rows[ok]]),
                             np.column_stack([pic.mixed[ok], rows[ok]])], axis=1)  # fmt: skip
            lw = track_width(s, dens)
            tracks = LineCollection(segs, colors="black", linewidths=lw,
                                    alpha=0.12 if dens == 1 else 0.12 * max(dens, 0.5),
                                    zorder=2)  # fmt: skip
            self._later(ax.add_collection(tracks, autolim=False))
            orange = np.column_stack([np.tile(RGB["orange"], (ok.sum(), 1)), self.alpha[ok]])
            self._later(ax.scatter(pic.ols[ok], rows[ok], s=self.diameter**2, c=orange,
                                   linewidths=0, zorder=3))  # fmt: skip
        if st.truth and pic.truth is not None:
            ax.scatter(pic.truth, rows, s=(1.2 * self.diameter) ** 2, marker="+", c=TRUTH,
                       linewidths=0.7, alpha=0.6, zorder=2.5)  # fmt: skip
        if (~ok).any():
            ax.scatter(pic.mixed[~ok], rows[~ok], s=(0.9 * self.diameter) ** 2, marker="D",
                       facecolors="none", edgecolors=OLIVE, linewidths=1.0, zorder=4)  # fmt: skip
        self._edge_markers()
        self.colors = np.zeros((int(ok.sum()), 4))
        self.points = ax.scatter(pic.mixed[ok], rows[ok], s=self.diameter**2, c=self.colors,
                                 linewidths=0, zorder=5, animated=True)  # fmt: skip

    def _edge_markers(self) -> None:
        """A triangle on the window's left or right edge, on the row, pointing outward."""
        pic, cv = self.picture, self.canvas
        x0, _, x1, _ = cv.box(self.ax)
        r = max(3.0 * cv.scale, 2.5)
        for name, values, colour in (("by_cluster", pic.ols, "orange"),
                                     ("mixed", pic.mixed, "olive")):  # fmt: skip
            out = self.beyond[name]
            if not out.any():
                continue
            rows = pic.rows[out]
            y = self.ax.transData.transform(np.column_stack([np.zeros(len(rows)), rows]))[:, 1]
            sign = np.where(values[out] > self.xlim[1], 1.0, -1.0)
            tip_x = np.where(sign > 0, x1 - 1, x0 + 1)
            base_x = tip_x - sign * 2 * r
            tris = np.stack([np.column_stack([tip_x, y]),
                             np.column_stack([base_x, y + 0.8 * r]),
                             np.column_stack([base_x, y - 0.8 * r])], axis=1)  # fmt: skip
            poly = PolyCollection(tris, facecolors=np.tile([*RGB[colour], 0.85], (len(y), 1)),
                                  edgecolors="none", transform=IdentityTransform(),
                                  zorder=4.5)  # fmt: skip
            self.ax.add_collection(poly, autolim=False)
            if name == "by_cluster":
                self._later(poly)
            self.edge = getattr(self, "edge", {}) | {name: tris}

    # -- per frame

    def update(self, positions: np.ndarray, progress: float, kappa: float | None) -> list:
        ok = self.moving
        out = []
        if ok.any():
            p = float(progress)
            self.colors[:, :3] = ramp(p)
            self.colors[:, 3] = (1 - p) * self.alpha[ok] + p * self.final_alpha
            est = np.asarray(positions)[ok, 0]
            self.points.set_offsets(np.column_stack([est, self.picture.rows[ok]]))
            self.points.set_facecolors(self.colors)
            out.append(self.points)
        if kappa is not None and self.dial is not None:
            out.extend(self.dial.update(float(kappa), float(progress)))
        return out


class FactorPanel:
    """The shrinkage factor against cluster size: the model's number for each cluster
    (hollow), its curve over n, and the share each cluster has been pulled so far
    (filled, orange to olive), which ends on the factor for y ~ 1 + (1 | g)."""

    def __init__(self, canvas: Canvas, picture: StripPicture, *, story: bool = False) -> None:
        self.canvas, self.picture, self.story = canvas, picture, story
        self.reveal: list = []
        pic = picture
        self.index = np.flatnonzero(pic.has_ols)
        hi = float(pic.sizes.max())
        self.curve_n = np.linspace(1.0, max(hi, 2.0) * 1.05, 200)
        t = (pic.re_sd / pic.sigma) ** 2 if pic.sigma > 0 else 0.0
        self.curve = 1.0 / (1.0 + t * self.curve_n)

    def caption_lines(self) -> list[str]:
        if not self.picture.slope:
            return ["Shrinkage panel: for a mean the share pulled equals the factor exactly"]
        return [
            "Shrinkage panel: the factor pulls each cluster's mean residual from the fixed line; "
            "shares measured from the by-cluster intercept differ where the slopes differ"
        ]

    def place(self, left: float, bottom: float, right: float, top: float) -> None:
        cv, s = self.canvas, self.canvas.scale
        ylab = cv.text(left, top, "Share of the way to the population", 9, ha="left",
                       va="top", color=TEXT)  # fmt: skip
        cv.fit_width(ylab, right - left)
        handles = [dot(TICK_TEXT, "o", 4.5, face="none", lw=0.8),
                   Line2D([], [], color=TEXT, lw=1.0), dot(OLIVE, "o", 4.5)]  # fmt: skip
        labels = ["factor σ²/n / (τ² + σ²/n)", "factor over n", "pulled so far"]
        leg = cv.legend(handles, labels, None, (left, cv.box(ylab)[1] - 3 * s), "upper left",
                        ncols=3, columnspacing=0.7, handletextpad=0.2,
                        fontsize=cv.fs(7.5))  # fmt: skip
        if cv.box(leg)[2] > right:  # too wide for one row: two
            leg.remove()
            leg = cv.legend(handles, labels, None, (left, cv.box(ylab)[1] - 3 * s),
                            "upper left", ncols=2, columnspacing=0.7, handletextpad=0.2,
                            fontsize=cv.fs(7.5))  # fmt: skip
        panel_top = cv.box(leg)[1] - 6 * s
        xlab = cv.text((left + right) / 2, bottom, "Cluster size n (observations)", 9,
                       ha="center", va="bottom", color=TEXT)  # fmt: skip
        cv.fit_width(xlab, right - left)
        panel_bottom = cv.box(xlab)[3] + 3 * s + cv.px(8) * 1.2 + cv.px(3)
        self.ax = ax = cv.fig.add_axes((0.1, 0.1, 0.8, 0.8))
        cv.place(ax, left + 26 * s, panel_bottom, right - 4 * s, panel_top)
        hi = float(self.curve_n.max())
        ax.set_xlim(0.0, hi + 0.03 * hi)
        share_axes(cv, ax)

    def draw(self) -> None:
        ax, pic = self.ax, self.picture
        for y in (0, 1):
            ax.axhline(y, color="#D9D9D9", lw=0.8, zorder=1)
        ax.plot(self.curve_n, self.curve, color=TEXT, lw=1.0, alpha=0.8, zorder=2)
        idx = self.index
        self.factor = ax.scatter(pic.sizes, pic.shrinkage, s=5.5**2, facecolors="none",
                                 edgecolors=TICK_TEXT, linewidths=0.7, alpha=0.9,
                                 zorder=2.5)  # fmt: skip
        g = len(idx)
        self.face, self.edge = np.zeros((g, 4)), np.zeros((g, 4))
        self.points = ax.scatter(pic.sizes[idx], np.zeros(g), s=3.8**2, linewidths=0.8,
                                 zorder=3, animated=True)  # fmt: skip

    def shares(self, positions: np.ndarray) -> np.ndarray:
        """(G',) share of the way from the by-cluster estimate to the population value
        travelled at ``positions`` (G, 2), for the clusters that have one."""
        idx = self.index
        return fractions(self.picture.ols[idx], positions[idx, 0], self.picture.fixed)

    def update(self, state: FrameState) -> list:
        if not len(self.index) or (self.story and (state.stage or 0) < 2 and state.progress == 0):
            return []
        p = min(1.0, max(0.0, float(state.progress)))
        self.face[:, :3] = ramp(p)
        self.face[:, 3] = 0.8
        show_shares(self.points, self.picture.sizes[self.index],
                    self.shares(np.asarray(state.positions)), self.face, self.edge)  # fmt: skip
        return [self.points]


class StripLayout(BaseLayout):
    """The strip (and, for ``--layout explain``, the factor panel) on one BaseLayout: title,
    story line, caption, static layers and blits as the plane's. ``to_pixel`` maps
    (estimate, row) to image (column, row) coordinates, row 0 at the top."""

    shares = EXPLAIN_SHARES

    def __init__(self, picture: StripPicture, settings: RenderSettings, *,
                 kappa_max: float | None = None, story: bool = False) -> None:  # fmt: skip
        self.kappa_max = kappa_max
        self.stage_lines = stages(picture.what)
        super().__init__(picture, settings, story=story)
        self.ax = self.strip.ax

    def _panels(self, cv: Canvas) -> list:
        self.strip = StripPanel(cv, self.picture, self.settings, kappa_max=self.kappa_max,
                                story=self.story)  # fmt: skip
        if self.settings.layout != "explain":
            return [self.strip]
        self.factor = FactorPanel(cv, self.picture, story=self.story)
        return [self.strip, self.factor]

    def to_pixel(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(N,) estimates on (N,) rows -> (N, 2) float image (column, row), row 0 at top."""
        return self._image_xy(np.column_stack([values, rows]))


def render_strip(picture: StripPicture, frames: Frames, settings: RenderSettings) -> FrameStream:
    """Every frame of the strip's animation, as an iterator of (H, W, 3) uint8 arrays."""
    if frames.n_clusters != picture.n_clusters:
        raise ValueError(
            f"frames have {frames.n_clusters} clusters, the picture {picture.n_clusters}"
        )
    story = frames.stage is not None
    moving = frames.on_path
    kappa_max = None if moving is None else float(frames.kappa[moving].max())
    return FrameStream(StripLayout(picture, settings, kappa_max=kappa_max, story=story), frames)


def render_strip_still(picture: StripPicture, settings: RenderSettings,
                       frames: Frames | None = None) -> np.ndarray:  # fmt: skip
    """The final state (every moving point at its mixed estimate) as one image."""
    if frames is None or (frames.kappa is None and frames.stage is None):
        two = np.column_stack
        zeros = np.zeros(picture.n_clusters)
        frames = straight_frames(two([picture.ols, zeros]), two([picture.mixed, zeros]),
                                 frames=2, hold=0)  # fmt: skip
    return render_strip(picture, frames, settings).draw(frames.n_frames - 1)


def strip_to_pixel(picture: StripPicture, settings: RenderSettings, values, rows) -> np.ndarray:
    """Where (estimate, row) lands in the images: (N, 2) (column, row)."""
    return StripLayout(picture, settings).to_pixel(values, rows)
