"""One reusable Agg canvas: text and legends placed in pixels, layers drawn once, blits.

The technique every panel shares: everything that does not move is drawn once
and saved as a background ("layer"); each frame restores a layer and draws only
the moving artists on it (``blit``), then copies the pixels out. A later layer is
an earlier one with a few more artists drawn on it (the story reveals the OLS
estimates only when the clusters reach them), so it costs a few artists, not a
full draw. Text never falls below MIN_TEXT_PX pixels, whatever the image size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from shrinkcli.render.style import (
    BACKGROUND,
    BASE_HEIGHT,
    BASE_WIDTH,
    MIN_TEXT_PX,
    TEXT,
    TICK_TEXT,
    TITLE,
)


def _inches(pixels: int, dpi: float) -> float:
    """The figure size in inches that makes exactly `pixels` pixels at `dpi`.

    Older matplotlib (3.7 among them) truncates size * dpi, so 226 / 50 * 50 =
    225.99... would be 225 pixels there; the next float up is 226 in every version.
    """
    size = pixels / dpi
    while size * dpi < pixels:
        size = math.nextafter(size, math.inf)
    return size


def dot(color, marker="o", size=5.0, face=None, lw=0.0) -> Line2D:
    """A legend handle: one marker."""
    return Line2D([], [], linestyle="", marker=marker, markersize=size,
                  markerfacecolor=color if face is None else face, markeredgecolor=color,
                  markeredgewidth=lw)  # fmt: skip


class Canvas:
    """A figure of exactly width x height pixels; sizes in points scale with the image."""

    def __init__(self, width: int, height: int, scale: float | None = None) -> None:
        self.width, self.height = w, h = width, height
        # text and marks sized for the whole image, or for one panel of a grid (``scale``)
        self.scale = min(w / BASE_WIDTH, h / BASE_HEIGHT) if scale is None else scale
        dpi = 100.0 * self.scale  # text and markers (sized in points) scale with the image
        self.fig = Figure(figsize=(_inches(w, dpi), _inches(h, dpi)), dpi=dpi, facecolor=BACKGROUND)
        self.canvas = FigureCanvasAgg(self.fig)
        if self.canvas.get_width_height(physical=True) != (w, h):
            raise RuntimeError(f"canvas is {self.canvas.get_width_height()}, wanted {(w, h)}")
        self.layers: list = []

    # -- sizes and text

    def px(self, points: float) -> float:
        """Pixels for a length in points."""
        return points * self.fig.dpi / 72.0

    def fs(self, points: float) -> float:
        """A font size in points, never below MIN_TEXT_PX pixels on the image."""
        return max(points, MIN_TEXT_PX * 72.0 / self.fig.dpi)

    @property
    def renderer(self):
        return self.canvas.get_renderer()

    def box(self, artist) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of an artist in pixels, y up."""
        box = artist.get_window_extent(self.renderer)
        return box.x0, box.y0, box.x1, box.y1

    def fit_width(self, artist, max_width: float) -> bool:
        """Shrink a text's font until it is at most max_width pixels wide, but not below
        the smallest legible size; False if it still does not fit."""
        floor = self.fs(0)
        for _ in range(20):
            x0, _, x1, _ = self.box(artist)
            if x1 - x0 <= max_width:
                return True
            if artist.get_fontsize() <= floor:
                return False
            artist.set_fontsize(max(floor, artist.get_fontsize() * max_width / (x1 - x0)))
        return False

    def text(self, x: float, y: float, text: str, fontsize: float, **kw):
        """A figure text placed in pixels, as plain text (no mathtext: '$' is a dollar)."""
        return self.fig.text(x / self.width, y / self.height, text, fontsize=self.fs(fontsize),
                             usetex=False, parse_math=False, **kw)  # fmt: skip

    def one_line(self, x: float, y: float, text: str, fontsize: float, width: float, **kw):
        """A text on one line, shortened with '…' if it cannot fit ``width`` pixels."""
        text = " ".join(text.split())  # a newline would overlap what is below
        artist = self.text(x, y, text, fontsize, **kw)
        while not self.fit_width(artist, width) and len(text) > 1:
            text = text[: max(1, int(len(text) * 0.9))].rstrip()
            artist.set_text(text + "…")
        return artist

    def title(self, text: str, pad: float, gap: float) -> float:
        """A picture's title on one line across the top; returns where what follows
        may start (``gap`` below it; without a title, ``pad`` below the top)."""
        top = self.height - pad
        if not text:
            return top
        title = self.one_line(pad, top, text, 10.5, self.width - 2 * pad, ha="left", va="top",
                              color=TITLE)  # fmt: skip
        return self.box(title)[1] - gap

    def caption(self, lines, pad: float, room: float) -> float | None:
        """Caption lines at the bottom left; returns their top, or None when there are
        none or they cannot be legible (wider than the picture, or taller than
        ``room`` of its height: then they are not drawn)."""
        if not lines:
            return None
        cap = self.text(pad, pad, "\n".join(lines), 7.5, ha="left", va="bottom",
                        color=TICK_TEXT, linespacing=1.35)  # fmt: skip
        if not self.fit_width(cap, self.width - 2 * pad) or self.box(cap)[3] > room * self.height:
            cap.remove()
            return None
        return self.box(cap)[3]

    def legend(self, handles, labels, title, anchor, loc, **kw):
        """A frameless legend in the picture's grey, anchored at a pixel position."""
        style = dict(frameon=False, fontsize=self.fs(8), title_fontsize=self.fs(8.5),
                     labelcolor=TEXT, alignment="left", borderaxespad=0, borderpad=0,
                     handletextpad=0.4, labelspacing=0.45, handlelength=1.2)  # fmt: skip
        style.update(kw)
        leg = self.fig.legend(handles, labels, title=title, loc=loc,
                              bbox_to_anchor=(anchor[0] / self.width, anchor[1] / self.height),
                              **style)  # fmt: skip
        leg.get_title().set_color(TEXT)
        return leg

    def place(self, ax, left: float, bottom: float, right: float, top: float) -> None:
        """Put an axes' data area at a pixel rectangle (at least one pixel each way)."""
        w, h = self.width, self.height
        ax.set_position(
            (left / w, bottom / h, max(right - left, 1.0) / w, max(top - bottom, 1.0) / h)
        )

    # -- layers and blits

    def save_layer(self, artists: Iterable = (), base: int = -1) -> int:
        """Save a background frames start from; returns its number.

        The first layer is a full draw of every artist that is not animated; each
        later one is layer ``base`` (the last, by default) with ``artists`` (animated
        ones) drawn on it.
        """
        if not self.layers:
            self.canvas.draw()
        else:
            self.canvas.restore_region(self.layers[base])
            renderer = self.renderer
            for artist in artists:
                artist.draw(renderer)
        self.layers.append(self.canvas.copy_from_bbox(self.fig.bbox))
        return len(self.layers) - 1

    def blit(self, layer: int, artists: Iterable) -> np.ndarray:
        """Layer ``layer`` with ``artists`` drawn on it, as an (H, W, 3) uint8 RGB array.

        A view into a copy of the RGBA buffer: a contiguous copy is ~40x faster than a
        strided RGB one, and encode.py feeds the RGBA base to Pillow/ffmpeg.
        """
        self.canvas.restore_region(self.layers[layer])
        renderer = self.renderer
        for artist in artists:
            artist.draw(renderer)
        return np.array(self.canvas.buffer_rgba())[:, :, :3]


class Reveals:
    """A panel whose by-cluster marks a story holds back until the clusters reach them
    (the story's reveal layer); the panel sets ``story`` and ``reveal``."""

    story: bool
    reveal: list

    def _later(self, artist):
        """In a story, hold a static artist back for the reveal layer."""
        if self.story:
            artist.set_animated(True)
            self.reveal.append(artist)
        return artist
