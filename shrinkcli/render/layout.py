"""Where the panels go, and what each frame shows (the frame clock).

A layout puts the title at the top (and a story's stage line under it), the
caption at the bottom, and the panels side by side in between: the plane alone
(``single``, the article's picture), or the plane, the data behind the
highlighted clusters and the shrinkage panel (``explain``). It draws every
panel's static layer once (in a story, one layer per stage line, with the OLS
estimates revealed from no pooling on: text is slow to draw, so the stage line
is never drawn per frame), then draws frame i by asking each panel for its moving
artists in the state the clock gives for i, and blitting them (canvas.Canvas).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shrinkcli.errors import UsageError
from shrinkcli.render.canvas import Canvas
from shrinkcli.render.picture import Picture
from shrinkcli.render.plane import PlanePanel
from shrinkcli.render.style import HIGHLIGHT, TEXT
from shrinkcli.settings import RenderSettings
from shrinkcli.tween import Frames

STAGES = (
    "1. Complete pooling: one line for every cluster, fitted to all the data",
    "2. No pooling: each cluster its own line, from its own data alone",
    "3. Partial pooling: each line pulled toward the average, the less data the harder",
)
EXPLAIN_SHARES = (0.42, 0.27, 0.31)  # widths of the plane, data and shrinkage panels


@dataclass(frozen=True, eq=False)
class FrameState:
    """What one frame shows.

    positions (G, 2) of the moving points; progress (colour, 0 by-cluster .. 1 mixed);
    kappa on the pooling path (None or NaN: no dial); stage, the story's line
    (None outside a story); revealed, whether a story shows the OLS estimates yet;
    toward (2,), what the pull is measured toward: the pooled OLS estimate while a
    story fans out from it, else the fixed effects.
    """

    positions: np.ndarray
    progress: float
    kappa: float | None = None
    stage: int | None = None
    revealed: bool = False
    toward: np.ndarray | None = None


class Clock:
    """Frame index -> FrameState, for one animation's Frames."""

    def __init__(self, frames: Frames, picture: Picture) -> None:
        self.frames, self.picture = frames, picture
        ex = picture.explanation
        self.pooled = None if ex is None else ex.pooled

    def state(self, i: int) -> FrameState:
        f = self.frames
        kappa = None if f.kappa is None else float(f.kappa[i])
        if f.stage is None:
            return FrameState(f.positions[i], float(f.progress[i]), kappa,
                              toward=self.picture.fixed)  # fmt: skip
        s = float(f.stage[i])
        stage = 0 if s <= 0 else 1 if s <= 1 else 2
        toward = self.picture.fixed if s > 1 or self.pooled is None else self.pooled
        return FrameState(f.positions[i], float(f.progress[i]), kappa, stage=stage,
                          revealed=s >= 1, toward=toward)  # fmt: skip

    def same(self, i: int, j: int) -> bool:
        """Frames i and j look the same (a held frame)."""
        f = self.frames
        return (
            f.progress[i] == f.progress[j]
            and (f.kappa is None or np.array_equal(f.kappa[[i]], f.kappa[[j]], equal_nan=True))
            and (f.stage is None or f.stage[i] == f.stage[j])
            and np.array_equal(f.positions[i], f.positions[j])
        )


class BaseLayout:
    """One figure with every panel's static layer drawn; draws any frame by blitting.

    What the plane's picture (Layout) and the strip's (render.strip.StripLayout) share:
    the title at the top (and a story's stage line under it), the caption at the
    bottom, the panels side by side in between (``shares`` of the width), every
    panel's static layer drawn once (in a story, one layer per stage line, with the
    OLS estimates revealed from no pooling on: text is slow to draw, so the stage line
    is never drawn per frame), and frame i drawn by asking each panel for its moving
    artists and blitting them (canvas.Canvas). Panels share one interface:
    ``caption_lines()``, ``place(left, bottom, right, top)``, ``draw()``, ``reveal``
    and ``update(state)``; the first panel's takes positions, progress and kappa.
    Subclasses build the panels (``_panels``) and may set ``stage_lines``.
    """

    shares: tuple[float, ...] = EXPLAIN_SHARES
    stage_lines: tuple[str, str, str] = STAGES
    highlight_colors: tuple[str, ...] = ()  # colours the GIF palette must hold exactly

    def __init__(self, picture, settings: RenderSettings, *, story: bool = False) -> None:
        if settings.truth and picture.truth is None:
            raise UsageError(
                "--truth needs the true cluster effects, which only simulated "
                "data have; drop --truth for data read from a file"
            )
        self.picture, self.settings, self.story = picture, settings, story
        self.canvas = cv = Canvas(settings.width, settings.height)
        self.fig = cv.fig
        self.panels: list = self._panels(cv)
        self._place()
        for panel in self.panels:
            panel.draw()
        self.layers = {(None, False): cv.save_layer()}
        if story:  # the stage lines, and the OLS estimates once the clusters reach them
            reveal = sorted((a for p in self.panels for a in p.reveal), key=lambda a: a.zorder)
            for stage, revealed in ((0, False), (1, False), (1, True), (2, True)):
                self.stage_text.set_text(self.stage_lines[stage])
                shown = [self.stage_text, *(reveal if revealed else ())]
                self.layers[stage, revealed] = cv.save_layer(shown, base=0)

    def _panels(self, canvas: Canvas) -> list:
        raise NotImplementedError

    def _place(self) -> None:
        """Title, stage line and caption across the picture; the panels get the rest."""
        cv, pic, s = self.canvas, self.picture, self.canvas.scale
        w = cv.width
        pad = 8 * s
        top = cv.title(pic.title, pad, 5 * s)
        self.stage_text = None
        if self.story:
            top = self._stage_line(pad, top, w - 2 * pad) - 6 * s
        bottom = self._caption(pad) + 5 * s
        if len(self.panels) == 1:
            self.panels[0].place(pad, bottom, w - pad, top)
            return
        gap = 18 * s
        room = w - 2 * pad - gap * (len(self.panels) - 1)
        left = pad
        for panel, share in zip(self.panels, self.shares, strict=True):
            panel.place(left, bottom, left + share * room, top)
            left += share * room + gap

    def _stage_line(self, x: float, top: float, width: float) -> float:
        """The story's stage, one line (drawn into each stage's layer); returns its bottom."""
        cv = self.canvas
        text = cv.text(x, top, max(self.stage_lines, key=len), 9.5, ha="left", va="top",
                       color=TEXT, fontweight="bold", animated=True)  # fmt: skip
        cv.fit_width(text, width)
        self.stage_text = text
        return cv.box(text)[1]

    def _caption(self, pad: float) -> float:
        """The caption lines at the bottom; returns the top of what it took (pad if dropped)."""
        lines = [*self.picture.caption, *(ln for p in self.panels for ln in p.caption_lines())]
        top = self.canvas.caption(lines, pad, 0.3)
        return pad if top is None else top

    # -- frames

    def _image_xy(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) data of the first panel -> (N, 2) float image (column, row), row 0 at top."""
        disp = self.panels[0].ax.transData.transform(np.asarray(xy, dtype=float).reshape(-1, 2))
        return np.column_stack([disp[:, 0], self.canvas.height - disp[:, 1]])

    def draw(self, state: FrameState) -> np.ndarray:
        """The (H, W, 3) uint8 image of one frame."""
        kappa = None if state.kappa is None or np.isnan(state.kappa) else state.kappa
        artists = self.panels[0].update(state.positions, state.progress, kappa)
        for panel in self.panels[1:]:
            artists += panel.update(state)
        layer = self.layers[state.stage, state.revealed] if self.story else 0
        return self.canvas.blit(layer, artists)


class Layout(BaseLayout):
    """The plane alone (``single``, the article's picture), or the plane, the data
    behind the highlighted clusters and the shrinkage panel (``explain``).

    ``to_pixel`` maps plane coordinates to image (column, row) coordinates, row 0 at
    top. ``kappa_max``, ``tracks`` and ``straight_start`` describe the pooling path
    (see plane.PlanePanel); ``story`` adds the stage line and a layer per stage.
    """

    def __init__(self, picture: Picture, settings: RenderSettings, *,
                 kappa_max: float | None = None, tracks: np.ndarray | None = None,
                 straight_start: bool = False, story: bool = False) -> None:  # fmt: skip
        explain = settings.layout == "explain"
        if (explain or story) and picture.explanation is None:
            raise ValueError("the explaining layout and the story need picture.explanation")
        self.path = {"kappa_max": kappa_max, "tracks": tracks, "straight_start": straight_start}
        self.highlight: tuple = ()
        if explain:
            self.highlight = tuple(zip(picture.explanation.highlight, HIGHLIGHT, strict=False))
            self.highlight_colors = tuple(c for _, c in self.highlight)
        super().__init__(picture, settings, story=story)
        # what single-panel callers (tests, bench) know a scene by
        self.ax, self.alpha, self.diameter = self.plane.ax, self.plane.alpha, self.plane.diameter
        self.moving, self.density = self.plane.moving, self.plane.density

    def _panels(self, cv: Canvas) -> list:
        self.plane = PlanePanel(cv, self.picture, self.settings, highlight=self.highlight,
                                story=self.story, **self.path)  # fmt: skip
        if self.settings.layout != "explain":
            return [self.plane]
        from shrinkcli.render.data import DataPanel
        from shrinkcli.render.shrinkage import ShrinkagePanel

        self.data = DataPanel(cv, self.picture, self.highlight, story=self.story)
        self.shrinkage = ShrinkagePanel(cv, self.picture, self.highlight, story=self.story)
        return [self.plane, self.data, self.shrinkage]

    def to_pixel(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) data (intercept, slope) -> (N, 2) float image (column, row)."""
        return self._image_xy(xy)

    def frame(self, positions: np.ndarray, progress: float, kappa: float | None = None):
        """The image with the moving points at ``positions`` (G, 2) and colour ``progress``."""
        state = FrameState(np.asarray(positions), float(progress), kappa, toward=self.picture.fixed)
        return self.draw(state)

    @property
    def final_alpha(self) -> float:
        return self.plane.final_alpha

    def _static_layer(self) -> None:
        """Draw the plane's static artists again (bench_render's redraw-everything renderer)."""
        self.plane.static_layer()
