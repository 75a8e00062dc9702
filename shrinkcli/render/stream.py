"""Frames for the encoders: a FrameStream draws an animation's frames one by one."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import numpy as np

from shrinkcli.render.layout import Clock, Layout
from shrinkcli.render.picture import Picture
from shrinkcli.render.style import BACKGROUND, OLIVE, ORANGE, TEXT, TICK_TEXT
from shrinkcli.settings import RenderSettings
from shrinkcli.tween import Frames, straight_frames


class FrameStream(Iterator[np.ndarray]):
    """The frames of one animation, drawn one by one on a single layout.

    Iterate to get read-only (H, W, 3) uint8 RGB arrays (views into an RGBA copy; the
    alpha channel is always 255). A frame identical to the one before (the held end)
    is the very same array object, not drawn again. ``sample`` draws chosen frames
    without advancing, which the GIF writer uses to build its palette before streaming.
    """

    def __init__(self, scene: Layout, frames: Frames) -> None:
        self.scene, self.frames, self._next = scene, frames, 0
        self.clock = Clock(frames, scene.picture)
        self._last: np.ndarray | None = None
        self.key_colors = (*self.key_colors, *scene.highlight_colors)  # exact too

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
        if self._last is not None and i > 0 and self.clock.same(i, i - 1):
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

    def draw(self, i: int) -> np.ndarray:
        """Frame ``i`` (0-based)."""
        image = self.scene.draw(self.clock.state(i))
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


def _scene(picture: Picture, settings: RenderSettings, frames: Frames | None) -> Layout:
    """The layout for these frames: with the pooling path's dial and tracks when they
    come from it, with the stage line and reveal layer when they tell a story."""
    story = frames is not None and frames.stage is not None
    moving = None if frames is None else frames.on_path
    if moving is None:
        return Layout(picture, settings, story=story)
    kappa = frames.kappa[moving]
    return Layout(
        picture,
        settings,
        kappa_max=float(kappa.max()),
        tracks=frames.positions[moving],
        straight_start=bool(np.isinf(kappa[1:]).any()),
        story=story,
    )


def render_still(
    picture: Picture, settings: RenderSettings, frames: Frames | None = None
) -> np.ndarray:
    """The final state (every moving point at its mixed estimate) as one image; with
    the pooling path's ``frames``, the faint lines follow its tracks."""
    if frames is None or (frames.kappa is None and frames.stage is None):
        frames = straight_frames(picture.ols, picture.mixed, frames=2, hold=0)
    return render_frames(picture, frames, settings).draw(frames.n_frames - 1)


def data_to_pixel(picture: Picture, settings: RenderSettings, xy: np.ndarray) -> np.ndarray:
    """Where data points (intercept, slope) land in the images: (N, 2) (column, row)."""
    return Layout(picture, settings).to_pixel(xy)
