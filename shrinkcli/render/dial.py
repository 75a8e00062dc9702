"""The pooling-path dial under the plane's legends: κ now, and a knob from none to fitted."""

from __future__ import annotations

import math

from matplotlib.lines import Line2D
from matplotlib.transforms import IdentityTransform

from shrinkcli.render.canvas import Canvas
from shrinkcli.render.style import OLIVE, TEXT, TICK_TEXT


def format_kappa(kappa: float) -> str:
    """The kappa label: '∞', '10,000', '316', '3.16', '1' (the caption says what ∞ means)."""
    if math.isinf(kappa):
        return "∞"
    if kappa >= 100:
        return f"{kappa:,.0f}"
    return f"{kappa:.3g}"


class Dial:
    """Title, kappa, a track from 'none' to 'fitted' at (left, top) .. right, in pixels.

    The kappa value and the knob are drawn per frame; ``bottom`` is where it ends.
    """

    def __init__(self, canvas: Canvas, left: float, top: float, right: float) -> None:
        cv, s = canvas, canvas.scale
        head = cv.text(left, top, "Pooling path", 8.5, ha="left", va="top", color=TEXT)
        y = cv.box(head)[1] - 4 * s
        self.kappa_text = cv.text(left, y, "κ = 10,000", 8, ha="left", va="top", color=TEXT,
                                  animated=True)  # fmt: skip
        y = cv.box(self.kappa_text)[1] - 7 * s
        self.track = (left + 3 * s, right - 3 * s, y)
        cv.fig.add_artist(Line2D([left + 3 * s, right - 3 * s], [y, y], color=TICK_TEXT, lw=1.0,
                                 alpha=0.6, transform=IdentityTransform()))  # fmt: skip
        ends = [
            cv.text(left, y - 5 * s, "none", 6.5, ha="left", va="top", color=TICK_TEXT),
            cv.text(right, y - 5 * s, "fitted", 6.5, ha="right", va="top", color=TICK_TEXT),
        ]
        self.knob = Line2D([left], [y], marker="o", markersize=5, color=OLIVE, linestyle="",
                           transform=IdentityTransform(), animated=True)  # fmt: skip
        cv.fig.add_artist(self.knob)
        self.bottom = min(cv.box(t)[1] for t in ends)

    def update(self, kappa: float, progress: float) -> list:
        """Set κ and the knob; the artists to draw."""
        self.kappa_text.set_text(f"κ = {format_kappa(kappa)}")
        x0, x1, y = self.track
        # the knob shows how far along the path the frame is: the pipeline spaces
        # kappa so that equal steps of progress are equal amounts of movement
        frac = min(1.0, max(0.0, progress))
        self.knob.set_data([x0 + frac * (x1 - x0)], [y])
        return [self.kappa_text, self.knob]
