"""The drawing, by its old name: everything now lives in the shrinkcli.render package.

Kept so that ``from shrinkcli.draw import ...`` (tests, bench, scripts) keeps working;
``Scene`` is the single-panel layout. The pipeline draws through this module too.
"""

from shrinkcli.render.canvas import Canvas
from shrinkcli.render.dial import format_kappa
from shrinkcli.render.layout import Clock, FrameState, Layout
from shrinkcli.render.layout import Layout as Scene
from shrinkcli.render.picture import (
    ALPHA_CAP_QUANTILE,
    ALPHA_RANGE,
    Picture,
    axis_limits,
    density,
    describe_picture,
    point_alpha,
    point_diameter,
)
from shrinkcli.render.plane import black_hole
from shrinkcli.render.stream import FrameStream, data_to_pixel, render_frames, render_still
from shrinkcli.render.style import (
    BACKGROUND,
    BASE_HEIGHT,
    BASE_WIDTH,
    HIGHLIGHT,
    MIN_TEXT_PX,
    OLIVE,
    ORANGE,
    TEXT,
    TICK_TEXT,
    TRUTH,
)
from shrinkcli.settings import RenderSettings

__all__ = [
    "ALPHA_CAP_QUANTILE", "ALPHA_RANGE", "BACKGROUND", "BASE_HEIGHT", "BASE_WIDTH", "Canvas",
    "Clock", "FrameState", "FrameStream", "HIGHLIGHT", "Layout", "MIN_TEXT_PX", "OLIVE", "ORANGE",
    "Picture", "RenderSettings", "Scene", "TEXT", "TICK_TEXT", "TRUTH", "axis_limits",
    "black_hole", "data_to_pixel", "density", "describe_picture", "format_kappa", "point_alpha",
    "point_diameter", "render_frames", "render_still",
]  # fmt: skip
