"""Shrinkage against information: how far each cluster has been pulled, per coefficient.

x is the cluster's size n_j when sizes vary, else its information n_j var(x_j)
(explain.Explanation.axis). y is the share of the way from the cluster's OLS
estimate to the population average that its moving point has travelled in this
frame, (ols - position) / (ols - average), for the intercept (circles) and the
slope (triangles); at the last frame it is the observed shrinkage. Beside each
point, hollow, is what the model predicts, diag(I - R_j); the lines are a typical
cluster's prediction along the axis (explain.typical_curve). Points beyond the
panel's range sit hollow on its edge. With integer sizes the intercept's marks
sit OFFSET left of the size and the slope's right, so that both stay visible.

In a story the average is the pooled OLS estimate until the pull starts: every
cluster is at 1 (complete pooling), falls to 0 as it fans out (no pooling), then
rises to its share of partial pooling.
"""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from shrinkcli.explain import fractions
from shrinkcli.render.canvas import Canvas, dot
from shrinkcli.render.data import short
from shrinkcli.render.picture import Picture
from shrinkcli.render.style import BACKGROUND, TEXT, TICK_TEXT, ramp, rgb

YLIM = (-0.3, 1.3)
EDGE = 0.03  # clipped points sit this far inside the range
OFFSET = 0.15  # on the size axis, in observations
MARKERS = ("o", "^")  # intercept, slope
CURVE_STYLES = ("-", "--")
POINT_ALPHA = 0.55
REFS = ("own OLS", "average")  # what 0 and 1 mean


def on_panel(share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where shares are drawn, and which are beyond YLIM: those sit EDGE inside it."""
    with np.errstate(invalid="ignore"):
        beyond = (share < YLIM[0]) | (share > YLIM[1])
    shown = np.where(beyond, np.clip(share, YLIM[0] + EDGE, YLIM[1] - EDGE), share)
    return shown, beyond


def share_axes(cv: Canvas, ax) -> None:
    """The look of a panel of shares: 0 (own estimate) to 1 (the average) on y."""
    ax.set_ylim(*YLIM)
    ax.set_facecolor(BACKGROUND)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0, labelsize=cv.fs(8), labelcolor=TICK_TEXT, pad=3.0)
    ax.set_yticks([0, 0.5, 1])
    ax.set_yticklabels(["0", "½", "1"])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: short(v)))  # no "1e6" aside


def show_shares(scatter, x: np.ndarray, share: np.ndarray, face: np.ndarray,
                edge: np.ndarray) -> None:  # fmt: skip
    """Move a scatter's points to their shares; those beyond the panel hollow on its
    edge (only they get an outline: outlines cost time). ``face`` is set in place."""
    shown, clipped = on_panel(share)  # a NaN is no point at all
    edge[:] = face
    face[clipped, 3] = 0.0
    scatter.set_offsets(np.column_stack([x, shown]))
    scatter.set_facecolors(face)
    scatter.set_edgecolors(edge)
    scatter.set_linewidths(np.where(clipped, 0.8, 0.0))


class ShrinkagePanel:
    """The shrinkage panel (see module)."""

    def __init__(self, canvas: Canvas, picture: Picture, highlight: tuple, *, story: bool) -> None:
        self.canvas, self.picture, self.story = canvas, picture, story
        ex = picture.explanation
        self.ex = ex
        marked = [j for j, _ in highlight]
        others = [j for j in np.flatnonzero(picture.has_ols) if j not in marked]
        self.index = np.array([*others, *marked], dtype=int)  # highlighted drawn last
        self.colours = [c for _, c in highlight]
        self.n_marked = len(marked)
        self.offset = OFFSET if ex.axis == "size" else 0.0
        self.x = [ex.x[self.index] - self.offset, ex.x[self.index] + self.offset]
        self.reveal: list = []
        self.scatters: list = []

    def caption_lines(self) -> list[str]:
        obs = self.ex.shrinkage.observed[self.index]
        out = int(((obs < YLIM[0]) | (obs > YLIM[1])).sum())
        if not out:
            return []
        return [
            f"Shrinkage panel: {out} shares beyond {YLIM[0]:g}..{YLIM[1]:g} hollow at its edge "
            "(a coefficient that starts near the average has little way to go)"
        ]

    def place(self, left: float, bottom: float, right: float, top: float) -> None:
        cv, s = self.canvas, self.canvas.scale
        ylab = cv.text(left, top, "Share of the way to the average", 9, ha="left", va="top",
                       color=TEXT)  # fmt: skip
        cv.fit_width(ylab, right - left)
        handles = [dot(TEXT, MARKERS[0], 4.5), dot(TEXT, MARKERS[1], 4.5),
                   dot(TEXT, "o", 4.5, face="none", lw=0.8),
                   Line2D([], [], color=TEXT, lw=1.0, ls=CURVE_STYLES[0])]  # fmt: skip
        labels = ["intercept", "slope", "predicted", "typical cluster"]
        leg = cv.legend(handles, labels, None, (left, cv.box(ylab)[1] - 3 * s), "upper left",
                        ncols=4, columnspacing=0.7, handletextpad=0.2,
                        fontsize=cv.fs(7.5))  # fmt: skip
        panel_top = cv.box(leg)[1] - 6 * s
        name = "Cluster size (observations)" if self.ex.axis == "size" else (
            f"Information: n × variance of {self.ex.names[1]} in the cluster")  # fmt: skip
        xlab = cv.text((left + right) / 2, bottom, name, 9, ha="center", va="bottom", color=TEXT)
        cv.fit_width(xlab, right - left)
        panel_bottom = cv.box(xlab)[3] + 3 * s + cv.px(8) * 1.2 + cv.px(3)
        self.ax = ax = cv.fig.add_axes((0.1, 0.1, 0.8, 0.8))
        words = [cv.text(right, 0, w, 7, ha="right", va="center", color=TICK_TEXT) for w in REFS]
        room = max(cv.box(t)[2] - cv.box(t)[0] for t in words) + 4 * s
        cv.place(ax, left + 26 * s, panel_bottom, right - room, panel_top)
        ax.set_xlim(*self._xlim())
        share_axes(cv, ax)
        for y, t in zip((0, 1), words, strict=True):  # the meaning of 0 and 1, right of the axes
            t.set_y(ax.transData.transform((0, y))[1] / cv.height)

    def _xlim(self) -> tuple[float, float]:
        lo, hi = float(self.ex.curve_x.min()), float(self.ex.curve_x.max())
        if self.index.size:
            lo = min(lo, float(self.ex.x[self.index].min()))
            hi = max(hi, float(self.ex.x[self.index].max()))
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        pad = max(pad, 2 * self.offset)
        return lo - pad, hi + pad

    def draw(self) -> None:
        ax, ex = self.ax, self.ex
        for y in (0, 1):
            ax.axhline(y, color="#D9D9D9", lw=0.8, zorder=1)
        for c in (0, 1):
            ax.plot(ex.curve_x, ex.curve[:, c], color=TEXT, lw=1.0, ls=CURVE_STYLES[c], alpha=0.8,
                    zorder=2)  # fmt: skip
        pred = ex.shrinkage.predicted[self.index]
        for c in (0, 1):
            y = on_panel(pred[:, c])[0]
            ax.scatter(self.x[c], y, s=4.5**2, marker=MARKERS[c], facecolors="none",
                       edgecolors=TICK_TEXT, linewidths=0.6, alpha=0.8, zorder=2.5)  # fmt: skip
        g = len(self.index)
        size = np.full(g, 4.0**2)
        size[g - self.n_marked :] = 6.5**2
        self.faces = [np.zeros((g, 4)), np.zeros((g, 4))]
        self.edges = [np.zeros((g, 4)), np.zeros((g, 4))]
        for c in (0, 1):
            self.scatters.append(
                ax.scatter(
                    self.x[c],
                    np.zeros(g),
                    s=size,
                    marker=MARKERS[c],
                    linewidths=0.8,
                    zorder=3,
                    animated=True,
                )  # fmt: skip
            )
        self._marked = np.array([[*rgb(col), 1.0] for col in self.colours]).reshape(-1, 4)

    def update(self, state) -> list:
        """Each cluster's share of the way at this frame, filled in its colour."""
        pic, idx = self.picture, self.index
        share = fractions(pic.ols[idx], state.positions[idx], state.toward)
        p = min(1.0, max(0.0, float(state.progress)))
        colour = np.array([*ramp(p), POINT_ALPHA])
        m = self.n_marked
        for c, scatter in enumerate(self.scatters):
            face = self.faces[c]
            face[:] = colour
            if m:
                face[len(idx) - m :] = self._marked
            show_shares(scatter, self.x[c], share[:, c], face, self.edges[c])
        return list(self.scatters)
