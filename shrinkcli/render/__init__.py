"""Drawing the animation's frames: one module per panel, a layout, one canvas.

Where each part is drawn:

- ``plane``: the (intercept, slope) plane, estimates travelling OLS -> mixed
  (``dial``: the pooling path's κ dial beside it);
- ``data``: the highlighted clusters' raw points and their lines morphing;
- ``shrinkage``: how far each cluster was pulled, against its size or information;
- ``layout``: title, stage line and caption, where the panels go, the frame clock;
- ``canvas``: the shared figure, text in pixels, static layers and blits;
- ``stream``: FrameStream, the frames the encoders consume; render_frames/render_still;
- ``picture``: what is shown (Picture) and the marks' opacity and size; ``style``: colours.
"""

from shrinkcli.render.layout import Clock, FrameState, Layout
from shrinkcli.render.picture import (
    Picture,
    axis_limits,
    density,
    describe_picture,
    point_alpha,
    point_diameter,
)
from shrinkcli.render.stream import FrameStream, data_to_pixel, render_frames, render_still

__all__ = [
    "Clock",
    "FrameState",
    "FrameStream",
    "Layout",
    "Picture",
    "axis_limits",
    "data_to_pixel",
    "density",
    "describe_picture",
    "point_alpha",
    "point_diameter",
    "render_frames",
    "render_still",
]
