"""The (intercept, slope) plane: each cluster's OLS estimate travelling to its mixed one.

Static: the optional ellipses, faint arrows OLS -> mixed (or the pooling path's
tracks), the by-cluster points, the true effects, clusters without an OLS slope
(hollow olive diamonds) and edge markers for estimates beyond the window; beside
the axes a legend column ('Model', 'Cluster size' when unbalanced, the pooling
dial). Per frame: the moving points (orange to olive, own opacity to full), the
highlighted clusters' rings, the black hole on top and the dial's knob.

In a story the OLS points, arrows and their edge markers are not static: they
are the ``reveal`` layer, shown once the clusters have fanned out to them.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D
from matplotlib.transforms import IdentityTransform

from shrinkcli import window
from shrinkcli.render.canvas import Canvas, Reveals, dot
from shrinkcli.render.dial import Dial
from shrinkcli.render.picture import (
    Picture,
    _ellipses,
    _size_to_diameter,
    axis_limits,
    density,
    point_alpha,
    point_diameter,
    track_width,
)
from shrinkcli.render.style import BACKGROUND, OLIVE, ORANGE, RGB, TEXT, TICK_TEXT, TRUTH, ramp
from shrinkcli.settings import RenderSettings


def black_hole(ax, fixed: np.ndarray, *, animated: bool):
    """The population average: a faint halo and a darker core, as one collection.

    Drawn per frame on top of the moving points; one two-point scatter, because a
    single-point scatter takes matplotlib's slow path.
    """
    fx, fy = fixed
    return ax.scatter([fx, fx], [fy, fy], s=[15.0**2, 6.0**2], c=[(0, 0, 0, 0.25), (0, 0, 0, 0.5)],
                      linewidths=0, zorder=6, animated=animated)  # fmt: skip


def model_legend(*, no_ols: bool, truth: bool, beyond: bool, ellipses: bool,
                 one_line: bool = False) -> tuple[list, list[str]]:  # fmt: skip
    """The 'Model' legend's handles and labels: the marks a plane may show."""
    handles = [dot(ORANGE), dot(OLIVE)]
    labels = ["by-cluster", "mixed"]
    if no_ols:
        handles.append(dot(OLIVE, marker="D", size=4.5, face="none", lw=1.0))
        labels.append("no OLS slope")
    if truth:
        handles.append(dot(TRUTH, marker="+", size=5.0, lw=0.8))
        labels.append("truth")
    handles.append((dot((0, 0, 0, 0.25), size=8.5), dot((0, 0, 0, 0.5), size=3.5)))
    labels.append("average")
    if beyond:
        handles.append(dot(TICK_TEXT, marker=">", size=4.5))
        labels.append("beyond the edge")
    if ellipses:
        handles.append(Line2D([], [], color=TICK_TEXT, lw=0.8))
        labels.append("50/80/95% of random effects" if one_line else "50/80/95% of\nrandom effects")
    return handles, labels


class EstimatePanel(Reveals):
    """What the plane's and the strip's panels share around their axes: the y label on
    top, the legend column at the right with the pooling dial under it, the x label
    at the bottom, centred under the axes. A subclass gives ``_legends(right, top)``
    (returns the column's left edge and bottom) and ``kappa_max``."""

    TICK_PAD = 3.0  # points between the tick labels and the axes

    def _frame(self, left: float, bottom: float, right: float, top: float):
        """Labels, legend column and dial; returns (the axes' right, bottom and top,
        the x label)."""
        cv, pic, s = self.canvas, self.picture, self.canvas.scale
        ylab = cv.text(left, top, pic.ylabel, 9, ha="left", va="top", color=TEXT)
        cv.fit_width(ylab, right - left)
        panel_top = cv.box(ylab)[1] - 5 * s
        column_left, column_bottom = self._legends(right, panel_top)
        if self.kappa_max is not None:
            self.dial = Dial(cv, column_left, column_bottom - 12 * s, right)
        xlab = cv.text(left, bottom, pic.xlabel, 9, ha="center", va="bottom", color=TEXT)
        probe = cv.text(0, 0, "0.5", 8, va="bottom")
        tick_h = cv.box(probe)[3] - cv.box(probe)[1]
        probe.remove()
        panel_bottom = cv.box(xlab)[3] + 3 * s + tick_h + cv.px(self.TICK_PAD)
        return column_left - 12 * s, panel_bottom, panel_top, xlab

    def _centre(self, xlab, left: float, right: float) -> None:
        """The x label centred under the placed axes, within the panel's width."""
        cv = self.canvas
        x0, _, x1, _ = cv.box(self.ax)
        xlab.set_x((x0 + x1) / 2 / cv.width)
        cv.fit_width(xlab, right - left)


class PlanePanel(EstimatePanel):
    """The plane, its legend column and its moving points on a shared Canvas.

    ``kappa_max``, when given, adds the pooling-path dial (kappa from kappa_max down to 1).
    ``tracks`` (F, G, 2), when given, are the paths the points really follow (the
    pooling path curves); the faint lines follow them instead of running straight.
    ``straight_start`` says the path begins with frames that are not models (κ = ∞
    after the first: a singular fit's straight step from OLS), which the caption explains.
    ``highlight`` lists (cluster index, colour) pairs ringed in every frame; ``story``
    holds the OLS points and arrows back for the ``reveal`` layer.
    """

    def __init__(self, canvas: Canvas, picture: Picture, settings: RenderSettings, *,
                 kappa_max: float | None = None, tracks: np.ndarray | None = None,
                 straight_start: bool = False, highlight: tuple = (),
                 story: bool = False, limits: tuple | None = None) -> None:  # fmt: skip
        self.canvas, self.picture, self.settings = canvas, picture, settings
        self.kappa_max, self.tracks, self.straight_start = kappa_max, tracks, straight_start
        self.highlight, self.story = tuple(highlight), story
        self.ax = canvas.fig.add_axes((0.1, 0.1, 0.8, 0.8))
        self.moving = picture.has_ols
        self.density = density(picture.n_clusters)
        self.alpha = point_alpha(picture) * max(self.density, 0.5)
        self.diameter = point_diameter(picture) * math.sqrt(self.density)
        self.xlim, self.ylim = limits or axis_limits(picture, settings)  # a grid's are shared
        self.beyond = {
            "by_cluster": window.outside(picture.ols, self.xlim, self.ylim),
            "mixed": window.outside(picture.mixed, self.xlim, self.ylim),
        }
        self.dial: Dial | None = None
        self.reveal: list = []  # the story's second layer

    @property
    def final_alpha(self) -> float:
        """Opacity of every mixed point at the end: full, less in a crowded picture."""
        return max(self.density, 0.5)

    def caption_lines(self) -> list[str]:
        """What the caption must say about this panel: estimates beyond its edge, the path."""
        lines = []
        beyond = window.beyond_edge_line(*(int(m.sum()) for m in self.beyond.values()))
        if beyond:
            lines.append(beyond)
        if self.kappa_max is not None:
            lines.append("Pooling path: random-effect covariance × κ; κ = ∞ no pooling, 1 the fit")
        if self.tracks is not None and np.isinf(self.kappa_max or 0) and self.straight_start:
            lines.append(
                "Singular fit: no κ reaches the OLS estimates, so the κ = ∞ part runs straight "
                "from them onto the fit's zero-variance direction (it is not a model)"
            )
        return lines

    # -- layout

    def place(self, left: float, bottom: float, right: float, top: float) -> None:
        """Lay out y label, legend column, x label and axes in a pixel rectangle."""
        cv, ax, s = self.canvas, self.ax, self.canvas.scale
        panel_right, panel_bottom, panel_top, xlab = self._frame(left, bottom, right, top)
        ax.set_xlim(*self.xlim)
        ax.set_ylim(*self.ylim)
        ax.set_facecolor(BACKGROUND)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(length=0, labelsize=cv.fs(8), labelcolor=TICK_TEXT, pad=self.TICK_PAD)
        margin = left + 30 * s
        cv.place(ax, margin, panel_bottom, panel_right, panel_top)
        # the y tick labels decide the left edge: measure them at the final height
        # (laying the axis out is enough; a full canvas draw would cost twice as much)
        box = ax.yaxis.get_tightbbox(cv.renderer)
        if box is not None and box.width > 0:  # move the labels' left edge onto the margin
            cv.place(ax, margin - (box.x0 - left), panel_bottom, panel_right, panel_top)
        self._centre(xlab, left, right)

    def _legends(self, right: float, top: float) -> tuple[float, float]:
        """'Model' (and 'Cluster size' when unbalanced) legends in a right-hand column.

        Returns the column's left edge and bottom, in pixels.
        """
        cv, pic, st = self.canvas, self.picture, self.settings
        handles, labels = model_legend(
            no_ols=bool((~pic.has_ols).any()),
            truth=st.truth and pic.truth is not None,
            beyond=any(m.any() for m in self.beyond.values()),
            ellipses=st.ellipses,
        )
        model = cv.legend(handles, labels, "Model", (right, top), "upper right")
        left, bottom, _, _ = cv.box(model)
        if not pic.balanced:
            sizes = np.unique(np.round(np.quantile(pic.sizes, [0, 0.5, 1])).astype(int))
            diam = _size_to_diameter(sizes, pic.sizes) * math.sqrt(self.density)
            handles = [dot(TICK_TEXT, size=float(dd)) for dd in diam]
            size = cv.legend(handles, [str(v) for v in sizes], "Cluster size",
                             (left, bottom - 8 * cv.scale), "upper left")  # fmt: skip
            bottom = cv.box(size)[1]
        return left, bottom

    # -- static layer

    def draw(self) -> None:
        """The static layer (and the story's reveal layer), then the moving artists."""
        self.static_layer()
        self._moving_layer()

    def static_layer(self) -> None:
        """Everything that does not move (in a story, the reveal layer's artists too)."""
        ax, pic, st = self.ax, self.picture, self.settings
        ok = self.moving
        if st.ellipses:
            for contour in _ellipses(pic):
                ax.plot(contour[:, 0], contour[:, 1], color=TICK_TEXT, lw=0.8, alpha=0.6, zorder=1)
        self._arrows(ok)
        if ok.any():
            orange = np.column_stack([np.tile(RGB["orange"], (ok.sum(), 1)), self.alpha[ok]])
            self._later(ax.scatter(pic.ols[ok, 0], pic.ols[ok, 1], s=self.diameter[ok] ** 2,
                                   c=orange, linewidths=0, zorder=3))  # fmt: skip
        if st.truth and pic.truth is not None:
            ax.scatter(pic.truth[:, 0], pic.truth[:, 1], s=(5.0 * math.sqrt(self.density)) ** 2,
                       marker="+", c=TRUTH, linewidths=0.7, alpha=0.55, zorder=2.5)  # fmt: skip
        if (~ok).any():
            ax.scatter(pic.mixed[~ok, 0], pic.mixed[~ok, 1], s=(0.9 * self.diameter[~ok]) ** 2,
                       marker="D", facecolors="none", edgecolors=OLIVE, linewidths=1.0,
                       zorder=4)  # fmt: skip
        self._edge_markers()
        if self.highlight:
            self._later(self._rings(pic.ols, animated=False))

    def _rings(self, points: np.ndarray, *, animated: bool):
        """Rings in their colours around the highlighted clusters at ``points`` (G, 2)."""
        idx = [j for j, _ in self.highlight]
        size = (self.diameter[idx] + 5.0 * math.sqrt(self.density)) ** 2
        return self.ax.scatter(points[idx, 0], points[idx, 1], s=size, facecolors="none",
                               edgecolors=[c for _, c in self.highlight], linewidths=1.4,
                               zorder=5.5, animated=animated)  # fmt: skip

    def _pixels(self, xy: np.ndarray) -> np.ndarray:
        """Data -> display pixels (y up), for artists drawn with IdentityTransform."""
        return self.ax.transData.transform(np.asarray(xy, dtype=float).reshape(-1, 2))

    def _edge_markers(self) -> None:
        """Estimates beyond the window: a small triangle on the edge, pointing at them.

        A by-cluster estimate's marker sits where its faint line leaves the window;
        a mixed estimate's (possible only with --zoom article) on the line from the
        window's centre.
        """
        pic, s = self.picture, self.canvas.scale
        x0, y0, x1, y1 = self.canvas.box(self.ax)
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
            colours.append(np.tile([*RGB[rgb], 0.85], (len(at), 1)))
            if self.story and name == "by_cluster":  # revealed with the OLS points
                self._later(self._triangles(tris.pop(), colours.pop()))
        if tris:
            self._triangles(np.concatenate(tris), np.concatenate(colours))

    def _triangles(self, tris: np.ndarray, colours: np.ndarray):
        return self.ax.add_collection(
            PolyCollection(tris, facecolors=colours, edgecolors="none",
                           transform=IdentityTransform(), zorder=4.5),
            autolim=False,
        )  # fmt: skip

    def _arrows(self, ok: np.ndarray) -> None:
        """Faint lines OLS -> mixed (along the real track on the pooling path) with a
        small head touching the mixed point's edge."""
        if not ok.any():
            return
        s, dens = self.canvas.scale, self.density
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
        radius = self.canvas.px(self.diameter[ok] / 2) + 0.5 * s
        head_len, head_half = max(5.0 * s, 3.5), max(2.2 * s, 1.6)
        total = np.hypot(*(pix[-1] - pix[0]).T) if f == 2 else np.inf
        has_head = (length > 0) & (total > radius + head_len)
        tip = np.where(has_head[:, None], end - unit * radius[:, None], end)
        pix[-1] = tip
        lw = track_width(s, dens)
        lines = LineCollection(np.swapaxes(pix, 0, 1), colors="black",
                               alpha=0.1 if dens == 1 else 0.1 * max(dens, 0.5), linewidths=lw,
                               transform=IdentityTransform(), zorder=2)  # fmt: skip
        self._later(self.ax.add_collection(lines, autolim=False))
        if has_head.any():
            u, t = unit[has_head], tip[has_head]
            normal = np.column_stack([-u[:, 1], u[:, 0]])
            base = t - u * head_len
            heads = np.stack([t, base + normal * head_half, base - normal * head_half], axis=1)
            poly = PolyCollection(heads, facecolors="black", edgecolors="none",
                                  alpha=0.3 * max(dens, 0.5), transform=IdentityTransform(),
                                  zorder=2)  # fmt: skip
            self._later(self.ax.add_collection(poly, autolim=False))

    # -- moving layer

    def _moving_layer(self) -> None:
        ax, pic = self.ax, self.picture
        ok = self.moving
        self.colors = np.zeros((int(ok.sum()), 4))
        self.colors[:, 3] = self.alpha[ok]
        self.points = ax.scatter(pic.mixed[ok, 0], pic.mixed[ok, 1], s=self.diameter[ok] ** 2,
                                 c=self.colors, linewidths=0, zorder=5, animated=True)  # fmt: skip
        self.rings = self._rings(pic.mixed, animated=True) if self.highlight else None
        self.hole = black_hole(ax, pic.fixed, animated=True)

    def update(self, positions: np.ndarray, progress: float, kappa: float | None) -> list:
        """Move the points to ``positions`` (G, 2); the artists to draw, in order.

        Colour runs from orange to olive and opacity from the cluster's own to full
        with ``progress``, so the end state shows every mixed estimate plainly.
        """
        out = []
        ok = self.moving
        if ok.any():
            p = float(progress)
            self.colors[:, :3] = ramp(p)
            self.colors[:, 3] = (1 - p) * self.alpha[ok] + p * self.final_alpha
            self.points.set_offsets(np.asarray(positions)[ok])
            self.points.set_facecolors(self.colors)
            out.append(self.points)
        if self.rings is not None:
            self.rings.set_offsets(np.asarray(positions)[[j for j, _ in self.highlight]])
            out.append(self.rings)
        out.append(self.hole)
        if kappa is not None and self.dial is not None:
            out.extend(self.dial.update(float(kappa), float(progress)))
        return out
