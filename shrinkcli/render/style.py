"""Colours and sizes shared by every panel (the article's, plus the highlight palette)."""

from __future__ import annotations

import numpy as np

ORANGE = "#F49E71"  # by-cluster (OLS)
OLIVE = "#808133"  # mixed model
BACKGROUND = "#fffff8"
TEXT = "#4D4D4D"  # ggplot's grey30
TICK_TEXT = "#7F7F7F"  # ggplot's grey50
TRUTH = "#333333"
TITLE = "#333333"
MIN_TEXT_PX = 8.0  # smallest text height in pixels (font size in points at 72 dpi)
BASE_WIDTH, BASE_HEIGHT = 600, 450  # text and marker sizes scale from this size

# Highlighted clusters: Okabe-Ito blue, reddish purple and bluish green first, then
# three more; none near the article's orange and olive, all legible on the paper.
HIGHLIGHT = ("#0072B2", "#CC79A7", "#009E73", "#6A3D9A", "#56B4E9", "#882255")


def rgb(colour: str) -> np.ndarray:
    """'#rrggbb' -> (3,) floats in [0, 1]."""
    return np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])


RGB = {"orange": rgb(ORANGE), "olive": rgb(OLIVE)}


def ramp(progress: float) -> np.ndarray:
    """(3,) the moving points' colour: orange (by-cluster) at 0, olive (mixed) at 1."""
    p = float(progress)
    return (1 - p) * RGB["orange"] + p * RGB["olive"]
