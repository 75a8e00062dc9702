"""What the picture shows, and how clusters map to marks: plain numpy, no matplotlib.

Transparency of a cluster's points grows with the standardised distance of its
OLS estimate from the fixed effects: per-axis z-scores against the fitted
random-effect standard deviations (sqrt of the diagonal of ``re_cov``; where a
component is zero, the spread of the OLS estimates on that axis is used instead),
combined as sqrt(z_int^2 + z_slope^2), then rescaled linearly from the smallest
distance to the 95th percentile onto alpha ALPHA_RANGE (the farthest 5% are all
opaque). The floor keeps the nearest clusters readable; without the cap one wild
OLS estimate (a cluster of two observations in the fewer-observations scenario
lies 46 SDs out) would leave every other point near the floor. The moving points
reach full colour as they arrive, so the end state shows every mixed estimate.
The correlation is left out on purpose: it keeps the distance defined for
singular fits and easy to read.

With many clusters, markers, arrows and opacity shrink by ``density`` (1 up to
100 clusters, then sqrt(100 / G), at least 0.3) so that the picture is not a
hairball.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shrinkcli import window
from shrinkcli.settings import RenderSettings

ALPHA_RANGE = (0.4, 1.0)
ALPHA_CAP_QUANTILE = 0.95  # distances beyond this quantile all get full opacity


@dataclass(frozen=True, eq=False)
class Picture:
    """What the animation shows; plain arrays, one row per cluster.

    ols: (G, 2) by-cluster OLS (intercept, slope); NaN where a cluster has no slope.
    mixed: (G, 2) mixed-model cluster estimates. fixed: (2,) fixed effects.
    re_cov: (2, 2) fitted random-effect covariance. sizes: (G,) observations per cluster.
    balanced: False maps point size to cluster size. truth: (G, 2) true effects or None.
    title, caption: texts written by the pipeline; the layout only lays them out.
    xlabel, ylabel: axis names, in the user's words for their own data.
    explanation: the highlighted clusters' data, pooled OLS and shrinkage numbers
    (explain.Explanation), needed by ``--layout explain`` and ``--story`` only.
    """

    ols: np.ndarray
    mixed: np.ndarray
    fixed: np.ndarray
    re_cov: np.ndarray
    sizes: np.ndarray
    balanced: bool = True
    truth: np.ndarray | None = None
    title: str = ""
    caption: tuple[str, ...] = ()
    xlabel: str = "Intercept"
    ylabel: str = "Slope for x"
    explanation: Any = None  # explain.Explanation: what the explaining layout and story need

    def __post_init__(self) -> None:
        for name in ("ols", "mixed", "fixed", "re_cov", "sizes", "truth"):
            value = getattr(self, name)
            if value is not None:
                value = np.array(value, dtype=float)
                value.setflags(write=False)
                object.__setattr__(self, name, value)
        object.__setattr__(self, "caption", tuple(self.caption))
        g = self.mixed.shape[0] if self.mixed.ndim == 2 else -1
        shapes = {"ols": (g, 2), "mixed": (g, 2), "fixed": (2,), "re_cov": (2, 2), "sizes": (g,)}
        if self.truth is not None:
            shapes["truth"] = (g, 2)
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(
                    f"Picture.{name} must have shape {shape}, got {getattr(self, name).shape}"
                )
        if g < 1:
            raise ValueError("Picture needs at least one cluster")
        if not np.isfinite(self.mixed).all() or not np.isfinite(self.fixed).all():
            raise ValueError("Picture.mixed and Picture.fixed must be finite")

    @property
    def n_clusters(self) -> int:
        return self.mixed.shape[0]

    @property
    def has_ols(self) -> np.ndarray:
        """(G,) True where the cluster has a full OLS estimate."""
        return np.isfinite(self.ols).all(axis=1)


# ----------------------------------------------------------------------------- mapping


def point_alpha(picture: Picture) -> np.ndarray:
    """(G,) alpha of each cluster's points, 0.1 .. 1 by standardised distance (see module)."""
    ok = picture.has_ols
    alpha = np.full(picture.n_clusters, ALPHA_RANGE[1])
    if not ok.any():
        return alpha
    dev = picture.ols[ok] - picture.fixed
    sd = np.sqrt(np.clip(np.diag(picture.re_cov), 0.0, None))
    spread = dev.std(axis=0) if dev.shape[0] > 1 else np.zeros(2)
    tiny = 1e-8 * max(1.0, float(np.abs(picture.fixed).max()))
    sd = np.where(sd > tiny, sd, np.where(spread > tiny, spread, 1.0))
    alpha[ok] = alpha_by_distance(np.sqrt(((dev / sd) ** 2).sum(axis=1)))
    return alpha


def alpha_by_distance(dist: np.ndarray) -> np.ndarray:
    """Opacity ALPHA_RANGE from the nearest distance to the ALPHA_CAP_QUANTILE (see module)."""
    lo, hi = dist.min(), np.quantile(dist, ALPHA_CAP_QUANTILE)
    dist = np.minimum(dist, hi)
    scaled = (dist - lo) / (hi - lo) if hi > lo else np.ones_like(dist)
    return ALPHA_RANGE[0] + (ALPHA_RANGE[1] - ALPHA_RANGE[0]) * scaled


def point_diameter(picture: Picture) -> np.ndarray:
    """(G,) marker diameters in points: constant, or area linear in cluster size."""
    if picture.balanced:
        return np.full(picture.n_clusters, 5.0)
    return _size_to_diameter(picture.sizes, picture.sizes)


def _size_to_diameter(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    lo, hi = float(sizes.min()), float(sizes.max())
    d_lo, d_hi = 3.0, 9.0
    if hi <= lo:
        return np.full(np.shape(values), 5.0)
    frac = (np.asarray(values, dtype=float) - lo) / (hi - lo)
    return np.sqrt(d_lo**2 + frac * (d_hi**2 - d_lo**2))


def axis_limits(picture: Picture, settings: RenderSettings) -> tuple[tuple, tuple]:
    """(xlim, ylim) of the panel for the chosen zoom (see shrinkcli.window)."""
    return window.window(zoom=settings.zoom, **_window_inputs(picture, settings))


def describe_picture(picture: Picture, settings: RenderSettings) -> dict:
    """Window, estimates beyond it and axis labels: ``"picture"`` in ``run --json``;
    with ``--layout explain`` also the highlighted clusters and the shrinkage panel's x."""
    shown = window.describe(
        zoom=settings.zoom,
        xlabel=picture.xlabel,
        ylabel=picture.ylabel,
        **_window_inputs(picture, settings),
    )
    if settings.layout == "explain" and picture.explanation is not None:
        shown["highlight"] = list(picture.explanation.labels)
        shown["shrinkage_axis"] = picture.explanation.axis
    return shown


def _window_inputs(picture: Picture, settings: RenderSettings) -> dict:
    extra = []
    if settings.truth and picture.truth is not None:
        extra.append(picture.truth)
    if settings.ellipses:
        extra.append(np.concatenate(_ellipses(picture)))
    return {
        "fixed": picture.fixed,
        "re_cov": picture.re_cov,
        "mixed": picture.mixed,
        "ols": picture.ols,
        "extra": extra,
    }


def _ellipses(picture: Picture, n: int = 181) -> list[np.ndarray]:
    return window.ellipses(picture.fixed, picture.re_cov, n)


def track_width(scale: float, dens: float) -> float:
    """The faint tracks' line width in points: 0.7 (points grow with the image already,
    so a larger image must not widen them again), at least 0.6 on a small image, thinner
    in a crowded picture."""
    return max(0.6, min(0.7 * scale, 0.7)) * max(dens, 0.6)


def density(n_clusters: int) -> float:
    """1 up to 100 clusters, then sqrt(100 / G), at least 0.3: thins a crowded picture."""
    return max(0.3, min(1.0, math.sqrt(100.0 / max(n_clusters, 1))))
