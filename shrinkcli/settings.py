"""How to draw (size, timing, easing, layers, zoom, path, layout, story), validated once.

Kept apart from draw.py so that checking a run's flags never imports matplotlib:
`shrink fit` validates the same values without drawing anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shrinkcli import window
from shrinkcli.errors import UsageError
from shrinkcli.tween import EASINGS

LAYOUTS = ("single", "explain")
EXPLAIN_MIN = (640, 240)  # pixels: below this the explaining layout's text cannot fit


@dataclass(frozen=True)
class RenderSettings:
    """How to draw: size, timing, easing and the optional layers. Validated here.

    ``layout`` "single" is the article's plane; "explain" adds the highlighted
    clusters' data and the shrinkage panel beside it (``highlight``: their labels,
    comma-separated; default: the one that moves most, the smallest, the largest).
    Its width defaults to 1200 (600 for the plane alone). ``story`` tells complete
    -> no -> partial pooling as one animation.
    """

    width: int | None = None  # 600, or 1200 for the explaining layout
    height: int = 450
    fps: float = 10
    frames: int = 60
    hold: int = 60
    ease: str = "linear"
    ellipses: bool = False
    truth: bool = False
    zoom: str = "auto"
    path: str = "straight"
    layout: str = "single"
    story: bool = False
    highlight: str | None = None
    order: str | None = None  # the random-intercept picture's rows: size (default), estimate

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise UsageError(
                f"--layout {self.layout!r} is not known; use single (the plane alone) or "
                "explain (the plane, the highlighted clusters' data and the shrinkage panel)"
            )
        if self.width is None:
            object.__setattr__(self, "width", 1200 if self.layout == "explain" else 600)
        if not isinstance(self.story, bool):
            raise UsageError(f"--story {self.story!r} must be true or false")
        if self.highlight is not None:
            if not isinstance(self.highlight, str) or not self.highlight.strip(" ,"):
                raise UsageError("--highlight needs cluster labels, comma-separated")
            if self.layout != "explain":
                raise UsageError("--highlight marks clusters in --layout explain; add it")
        for name, low, high in (("width", 100, 8192), ("height", 100, 8192)):
            value = getattr(self, name)
            if not _is_int(value) or not low <= value <= high:
                raise UsageError(
                    f"--{name} {value} must be a whole number of pixels from {low} to {high}"
                )
        if not _is_int(self.frames) or not 2 <= self.frames <= 10_000:
            raise UsageError(f"--frames {self.frames} must be a whole number from 2 to 10000")
        if not _is_int(self.hold) or not 0 <= self.hold <= 10_000:
            raise UsageError(f"--hold {self.hold} must be a whole number from 0 to 10000")
        fps = self.fps
        if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0.1 <= fps <= 100:
            raise UsageError(f"--fps {fps} must be a number from 0.1 to 100")
        if self.ease not in EASINGS:
            raise UsageError(f"--ease {self.ease!r} is not known; use one of " + ", ".join(EASINGS))
        if window.canonical_zoom(self.zoom) not in window.ZOOMS:
            raise UsageError(
                f"--zoom {self.zoom!r} is not known; use auto (fit the mixed estimates), "
                "article (the article's fixed window; alias baseline) or data (every point)"
            )
        object.__setattr__(self, "zoom", window.canonical_zoom(self.zoom))
        if self.path not in ("straight", "pooling"):
            raise UsageError(f"--path {self.path!r} is not known; use straight or pooling")
        from shrinkcli.strip import check_order

        check_order(self.order)

        if self.layout == "explain" and (
            self.width < EXPLAIN_MIN[0] or self.height < EXPLAIN_MIN[1]
        ):
            raise UsageError(
                f"--layout explain needs at least {EXPLAIN_MIN[0]}x{EXPLAIN_MIN[1]} pixels for "
                f"its three panels, got {self.width}x{self.height}; give a larger --width/--height"
            )

    @property
    def n_frames(self) -> int:
        """Frames in the animation: movement plus hold."""
        return self.frames + self.hold


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)
