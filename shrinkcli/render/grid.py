"""Small multiples: several planes on shared axes, moving in step (``shrink grid``).

One canvas: the title and one legend across the top, the y label above the first
column and the x label under the grid, the cells in rows and columns. A cell is
a plane.PlanePanel placed by this module: its title on top, its axes in the
shared window (y tick labels in the first column only, x tick labels in every
cell), two caption lines under it (fitted SDs; truth RMSE). Every cell's static
layer is drawn once; each frame moves every panel's points and blits them all.
Text and marks are sized for a cell, not for the whole image.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.lines import Line2D

from shrinkcli.render.canvas import Canvas, dot
from shrinkcli.render.layout import FrameState
from shrinkcli.render.picture import Picture, _size_to_diameter
from shrinkcli.render.plane import PlanePanel, model_legend
from shrinkcli.render.stream import FrameStream
from shrinkcli.render.style import BACKGROUND, TEXT, TICK_TEXT, TITLE
from shrinkcli.settings import RenderSettings
from shrinkcli.tween import Frames

CELL = (420, 380)  # a cell of this many pixels draws text and marks at scale 1
FRAME = "#E6E6DC"  # a faint frame around each cell's axes


class GridLayout:
    """Panels (one Picture each) on one canvas in ``shape`` (rows, cols), in the
    shared ``limits`` (xlim, ylim). ``captions`` are each panel's lines under it;
    ``caption`` the grid's lines at the bottom. ``tracks`` (per panel, or None)
    are the pooling path's tracks for the faint lines."""

    def __init__(self, pictures: list[Picture], settings: RenderSettings, *,
                 shape: tuple[int, int], limits: tuple, title: str = "",
                 captions: list[tuple[str, ...]] | None = None, caption: tuple[str, ...] = (),
                 tracks: list | None = None) -> None:  # fmt: skip
        rows, cols = shape
        if rows * cols < len(pictures):
            raise ValueError(f"{len(pictures)} panels do not fit {rows} x {cols}")
        w, h = settings.width, settings.height
        scale = min(w / cols / CELL[0], (h - 90) / rows / CELL[1])
        self.canvas = cv = Canvas(w, h, scale=max(scale, 0.35))
        self.fig = cv.fig
        self.pictures, self.settings, self.shape, self.limits = pictures, settings, shape, limits
        self.title, self.caption = title, tuple(caption)
        self.captions = captions or [() for _ in pictures]
        self.panels = self._make_panels(tracks or [None] * len(pictures))
        self._common_sizes()
        self._place()
        for panel in self.panels:
            panel.draw()
        self.layer = cv.save_layer()

    def _make_panels(self, tracks: list) -> list:
        return [
            PlanePanel(self.canvas, pic, self.settings, tracks=tr, limits=self.limits)
            for pic, tr in zip(self.pictures, tracks, strict=True)
        ]

    def _common_sizes(self) -> None:
        """Unbalanced panels map cluster size to point area on one scale, so that one
        legend reads for all of them."""
        self.unbalanced = [p for p in self.panels if not p.picture.balanced]
        if not self.unbalanced:
            return
        self.all_sizes = np.concatenate([p.picture.sizes for p in self.unbalanced])
        for p in self.unbalanced:
            p.diameter = _size_to_diameter(p.picture.sizes, self.all_sizes) * math.sqrt(p.density)

    # -- placement

    def _place(self) -> None:
        cv, s = self.canvas, self.canvas.scale
        w = cv.width
        pad = 8 * s
        top = self._legend(pad, cv.title(self.title, pad, 6 * s)) - 6 * s
        cap_top = cv.caption(self.caption, pad, 0.25)
        bottom = pad if cap_top is None else cap_top + 4 * s
        pic = self.pictures[0]
        self.xlabel = cv.text(w / 2, bottom, pic.xlabel, 9, ha="center", va="bottom", color=TEXT)
        bottom = cv.box(self.xlabel)[3] + 4 * s
        self._cells(pad, bottom, w - pad, top)

    def _legend_items(self) -> tuple[list, list[str]]:
        """The one legend's handles and labels: the marks any panel shows."""
        st = self.settings
        beyond = any(m.any() for p in self.panels for m in p.beyond.values())
        handles, labels = model_legend(
            no_ols=any(bool((~p.has_ols).any()) for p in self.pictures),
            truth=st.truth and all(p.truth is not None for p in self.pictures),
            beyond=beyond,
            ellipses=st.ellipses,
            one_line=True,
        )
        if self.unbalanced:
            if len(self.unbalanced) < len(self.panels):  # balanced panels: one dot size
                handles.append(Line2D([], [], linestyle="", marker=""))
                labels.append("size in unbalanced panels:")
            sizes = np.unique(np.round(np.quantile(self.all_sizes, [0, 0.5, 1])).astype(int))
            dens = math.sqrt(min(p.density for p in self.unbalanced))
            for v, d in zip(sizes, _size_to_diameter(sizes, self.all_sizes) * dens, strict=True):
                handles.append(dot(TICK_TEXT, size=float(d)))
                labels.append(f"{v} obs")
        return handles, labels

    def _legend(self, pad: float, top: float) -> float:
        """The y label at the left and one legend across the rest; returns their bottom."""
        cv, s = self.canvas, self.canvas.scale
        handles, labels = self._legend_items()
        leg = cv.legend(handles, labels, None, (cv.width - pad, top), "upper right",
                        ncol=len(handles), columnspacing=1.1)  # fmt: skip
        x0, y0, _, y1 = cv.box(leg)
        ylab = cv.text(pad, top, self.pictures[0].ylabel, 9, ha="left", va="top", color=TEXT)
        room = x0 - pad - 12 * s
        if room < 0.2 * cv.width:  # no room beside the legend: the y label goes under it
            ylab.set_y((y0 - 4 * s) / cv.height)
        cv.fit_width(ylab, max(room, cv.width - 2 * pad) if room < 0.2 * cv.width else room)
        self.ylabel = ylab
        return min(y0, cv.box(ylab)[1])

    def _cells(self, left: float, bottom: float, right: float, top: float) -> None:
        """Cells in rows and columns; every axes the same size."""
        cv, s = self.canvas, self.canvas.scale
        rows, cols = self.shape
        gap_x, gap_y = 14 * s, 10 * s
        probe = cv.text(0, 0, "0.5", 7.5, va="bottom")
        x0, y0, x1, y1 = cv.box(probe)
        line = y1 - y0
        probe.remove()
        n_cap = max((len(c) for c in self.captions), default=0)
        head = line * 1.25 + 3 * s  # the cell's title
        foot = line * 1.1 + cv.px(3) + n_cap * line * 1.3 + 4 * s  # ticks, caption
        cell_h = (top - bottom - gap_y * (rows - 1)) / rows
        lead, each = self._margins(cell_h - head - foot)
        cell_w = (right - left - lead - cols * each - gap_x * (cols - 1)) / cols
        for k, panel in enumerate(self.panels):
            r, c = divmod(k, cols)
            l_ = left + lead + c * (cell_w + gap_x + each) + each
            t_ = top - r * (cell_h + gap_y)
            b_ = t_ - cell_h
            cv.place(panel.ax, l_, b_ + foot, l_ + cell_w, t_ - head)
            self._style_cell(panel, first=c == 0)
            l_, width = l_ - each, cell_w + each  # text from the cell's left edge
            cv.one_line(l_, t_, panel.picture.title, 8.5, width, ha="left", va="top",
                        color=TITLE)  # fmt: skip
            for j, text in enumerate(reversed(self.captions[k])):  # bottom line first
                cv.one_line(l_, b_ + j * line * 1.3, text, 7, width, ha="left", va="bottom",
                            color=TICK_TEXT)  # fmt: skip

    def _margins(self, height: float) -> tuple[float, float]:
        """(left of the first column, left of every cell) kept for tick labels: the
        planes' y tick labels stand in the first column only."""
        return self._tick_margin(), 0.0

    def _style_cell(self, panel, *, first: bool) -> None:
        self._style(panel.ax, first=first)

    def _style(self, ax, *, first: bool) -> None:
        cv = self.canvas
        ax.set_xlim(*self.limits[0])
        ax.set_ylim(*self.limits[1])
        ax.set_facecolor(BACKGROUND)
        for spine in ax.spines.values():
            spine.set_color(FRAME)
            spine.set_linewidth(0.8)  # points: they grow with the image already
        ax.tick_params(length=0, labelsize=cv.fs(7.5), labelcolor=TICK_TEXT, pad=3.0,
                       labelleft=first)  # fmt: skip

    def _tick_margin(self) -> float:
        """Width of the first column's y tick labels (measured on a laid-out axes)."""
        cv = self.canvas
        ax = self.panels[0].ax
        self._style(ax, first=True)
        cv.place(ax, 0.3 * cv.width, 0.3 * cv.height, 0.6 * cv.width, 0.6 * cv.height)
        box = ax.yaxis.get_tightbbox(cv.renderer)
        return 4 * cv.scale + (0.0 if box is None else max(0.3 * cv.width - box.x0, 0.0))

    # -- frames

    def draw(self, states: list[FrameState]) -> np.ndarray:
        """The (H, W, 3) uint8 image with every panel in its state."""
        artists = []
        for panel, state in zip(self.panels, states, strict=True):
            artists += panel.update(state.positions, state.progress, None)
        return self.canvas.blit(self.layer, artists)

    def to_pixel(self, k: int, xy: np.ndarray) -> np.ndarray:
        """(N, 2) data of panel k -> (N, 2) float image (column, row)."""
        disp = self.panels[k].ax.transData.transform(np.asarray(xy, dtype=float).reshape(-1, 2))
        return np.column_stack([disp[:, 0], self.canvas.height - disp[:, 1]])


class _Clocks:
    """Frame index -> every panel's FrameState; panels share the frame count."""

    def __init__(self, frames: list[Frames], pictures: list[Picture]) -> None:
        self.frames, self.pictures = frames, pictures

    def state(self, i: int) -> list[FrameState]:
        return [
            FrameState(f.positions[i], float(f.progress[i]), toward=p.fixed)
            for f, p in zip(self.frames, self.pictures, strict=True)
        ]

    def same(self, i: int, j: int) -> bool:
        return all(
            f.progress[i] == f.progress[j] and np.array_equal(f.positions[i], f.positions[j])
            for f in self.frames
        )


class GridStream(FrameStream):
    """The grid's frames for the encoders: FrameStream's interface, every panel at once."""

    def __init__(self, scene: GridLayout, frames: list[Frames]) -> None:
        counts = {(f.n_frames, f.n_move) for f in frames}
        if len(counts) != 1:
            raise ValueError(f"panels must share frame counts, got {sorted(counts)}")
        self.scene, self.frames, self._next, self._last = scene, frames[0], 0, None
        self.clock = _Clocks(frames, scene.pictures)


def tracks_of(frames: Frames) -> np.ndarray | None:
    """The pooling path's moving frames (the faint lines follow them), else None."""
    moving = frames.on_path
    return None if moving is None else frames.positions[moving]
