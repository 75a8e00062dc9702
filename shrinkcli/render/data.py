"""The data behind the estimates: each highlighted cluster's raw points and its line.

One small panel per highlighted cluster (shared axes), in the cluster's colour:
its observations, its OLS line (faint), the population line (the fixed effects,
grey dashed) and the line of the frame, which is exactly intercept + slope x of
the cluster's moving point in the plane: it morphs from the OLS line to the mixed
one as the point travels. In a story the one line of complete pooling (dotted)
is there from the start, and the OLS and population lines are revealed with the
OLS estimates.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.lines import Line2D

from shrinkcli.render.canvas import Canvas
from shrinkcli.render.picture import Picture
from shrinkcli.render.style import BACKGROUND, TEXT, TICK_TEXT

POOLED = "#222222"
TITLE_ROOM = 0.3  # of the data's span, kept free above it for each small panel's title


def line_ends(coef: np.ndarray, xlim: tuple[float, float]) -> tuple[list, list]:
    """The line y = intercept + slope x across ``xlim``: (xdata, ydata)."""
    x0, x1 = float(xlim[0]), float(xlim[1])
    a, b = float(coef[0]), float(coef[1])
    return [x0, x1], [a + b * x0, a + b * x1]


def short(v: float) -> str:
    """Three significant digits, with a short exponent: 2.63, 18.2, 1.65e6."""
    text = f"{v:.3g}"
    return text.replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def grid_shape(k: int) -> tuple[int, int]:
    """Rows and columns of the small panels: a column up to three, then two columns."""
    return (k, 1) if k <= 3 else (math.ceil(k / 2), 2)


class DataPanel:
    """Small panels of the highlighted clusters' data and lines (see module)."""

    def __init__(self, canvas: Canvas, picture: Picture, highlight: tuple, *, story: bool) -> None:
        self.canvas, self.picture, self.story = canvas, picture, story
        self.highlight = highlight  # (cluster index, colour) pairs
        ex = picture.explanation
        self.points = ex.points
        self.labels = ex.labels
        self.names = ex.names
        self.pooled = ex.pooled
        self.info = ex.x if ex.axis == "information" else None
        self.axes: list = []
        self.lines: list = []
        self.reveal: list = []
        self.xlim, self.ylim = self._limits()

    def caption_lines(self) -> list[str]:
        return []

    def _limits(self) -> tuple[tuple, tuple]:
        pic = self.picture
        if not self.points:
            return (0.0, 1.0), (0.0, 1.0)
        xy = np.concatenate(self.points)
        lo, hi = float(xy[:, 0].min()), float(xy[:, 0].max())
        pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo), 1.0) * 0.5
        xlim = (lo - pad, hi + pad)
        ys = [xy[:, 1]]
        coefs = [pic.fixed] + [pic.mixed[j] for j, _ in self.highlight]
        if self.story:
            coefs.append(self.pooled)
        for coef in coefs:
            ys.append(np.array(line_ends(coef, xlim)[1]))
        ys = np.concatenate(ys)
        lo, hi = float(ys.min()), float(ys.max())
        span = hi - lo if hi > lo else max(abs(lo), 1.0)
        return xlim, (lo - 0.08 * span, hi + TITLE_ROOM * span)  # the title sits on top

    def place(self, left: float, bottom: float, right: float, top: float) -> None:
        """Y name at the top left, the legend beside it, the small panels, the x name."""
        cv, s = self.canvas, self.canvas.scale
        ylab = cv.text(left, top, self.names[0], 9, ha="left", va="top", color=TEXT)
        cv.fit_width(ylab, 0.4 * (right - left))
        handles = [Line2D([], [], color=TEXT, lw=1.8),
                   Line2D([], [], color=TICK_TEXT, lw=1, ls="--")]  # fmt: skip
        labels = ["its line now", "average line"]
        if self.story:
            handles.append(Line2D([], [], color=POOLED, lw=1, ls=":"))
            labels.append("one line for all")
        style = dict(ncols=len(labels), columnspacing=0.8, handlelength=1.6, fontsize=cv.fs(7.5))
        leg = cv.legend(handles, labels, None, (right, top), "upper right", **style)
        if cv.box(leg)[0] < cv.box(ylab)[2] + 8 * s:  # no room beside the name: below it
            leg.remove()
            anchor = (right, cv.box(ylab)[1] - 3 * s)
            leg = cv.legend(handles, labels, None, anchor, "upper right", **style)
        head_bottom = min(cv.box(ylab)[1], cv.box(leg)[1]) - 6 * s
        xlab = cv.text((left + right) / 2, bottom, self.names[1], 9, ha="center", va="bottom",
                       color=TEXT)  # fmt: skip
        tick_h = cv.px(7.5) * 1.2
        grid_bottom = cv.box(xlab)[3] + 3 * s + tick_h + cv.px(3)
        rows, cols = grid_shape(len(self.highlight))
        tick_w = 30 * s  # room for the y tick labels of the left column
        gap_x, gap_y = 10 * s, 6 * s
        width = (right - left - tick_w - gap_x * (cols - 1)) / cols
        height = (head_bottom - grid_bottom - gap_y * (rows - 1)) / rows
        for n in range(len(self.highlight)):
            r, c = divmod(n, cols)
            x0 = left + tick_w + c * (width + gap_x)
            y1 = head_bottom - r * (height + gap_y)
            ax = cv.fig.add_axes((0.1, 0.1, 0.8, 0.8))
            cv.place(ax, x0, y1 - height, x0 + width, y1)
            self._style(ax, bottom_row=r == rows - 1 or n + cols >= len(self.highlight),
                        left_column=c == 0)  # fmt: skip
            self.axes.append(ax)

    def _style(self, ax, *, bottom_row: bool, left_column: bool) -> None:
        cv = self.canvas
        ax.set_xlim(*self.xlim)
        ax.set_ylim(*self.ylim)
        ax.set_facecolor(BACKGROUND)
        for name, spine in ax.spines.items():
            spine.set_visible(name in ("left", "bottom"))
            spine.set_color("#D9D9D9")
        ax.tick_params(length=0, labelsize=cv.fs(7.5), labelcolor=TICK_TEXT, pad=2.0,
                       labelbottom=bottom_row, labelleft=left_column)  # fmt: skip
        ax.locator_params(nbins=4)

    def draw(self) -> None:
        """Observations, the static lines, and the moving line of each cluster."""
        pic = self.picture
        for ax, (j, colour), xy, label in zip(
            self.axes, self.highlight, self.points, self.labels, strict=True
        ):
            self._title(ax, j, label, len(xy), colour)
            if self.story:
                ax.plot(*line_ends(self.pooled, self.xlim), color=POOLED, lw=1.0, ls=":", zorder=2)
            (avg,) = ax.plot(*line_ends(pic.fixed, self.xlim), color=TICK_TEXT, lw=1.0, ls="--",
                             zorder=2)  # fmt: skip
            (ols,) = ax.plot(*line_ends(pic.ols[j], self.xlim), color=colour, lw=1.0, alpha=0.35,
                             zorder=2.5)  # fmt: skip
            if self.story:
                for artist in (avg, ols):
                    artist.set_animated(True)
                    self.reveal.append(artist)
            ax.scatter(xy[:, 0], xy[:, 1], s=16, c=colour, alpha=0.75, linewidths=0, zorder=3)
            (line,) = ax.plot(*line_ends(pic.mixed[j], self.xlim), color=colour, lw=1.8,
                              zorder=4, animated=True)  # fmt: skip
            self.lines.append(line)

    def _title(self, ax, j: int, label: str, n: int, colour: str) -> None:
        """'cluster 17: n = 10' (and its information, the shrinkage panel's x, when
        that is not the size) at the top left, shortened to fit the small panel."""
        cv = self.canvas
        words = [f"cluster {label}, n = {n}"]  # a bold colon reads as 'ı' at small sizes
        if self.info is not None:
            words.insert(0, f"{words[0]}, n·var({self.names[1]}) = {short(self.info[j])}")
        x0, _, x1, _ = cv.box(ax)
        for k, text in enumerate(words):
            title = ax.text(0.02, 0.96, text, transform=ax.transAxes, ha="left", va="top",
                            color=colour, fontsize=cv.fs(7.5), fontweight="bold",
                            parse_math=False)  # fmt: skip
            if cv.fit_width(title, 0.96 * (x1 - x0)) or k == len(words) - 1:
                return
            title.remove()

    def update(self, state) -> list:
        """Each cluster's line through its moving point of this frame."""
        for line, (j, _) in zip(self.lines, self.highlight, strict=True):
            line.set_data(*line_ends(state.positions[j], self.xlim))
        return list(self.lines)
