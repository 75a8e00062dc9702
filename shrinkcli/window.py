"""Which part of the (intercept, slope) plane a picture shows, and what falls outside it.

Plain numpy, no matplotlib: the JSON description of a picture (``shrink run
--json``) and the drawing use the same window, so scripts can check what a
picture shows without reading pixels.

Zooms:

- ``auto`` (default): from the fitted random-effect distribution. On each axis the
  fixed effect ± 3 fitted SDs, widened to hold every mixed estimate, plus a margin
  of 5% of the span on each side (ggplot's default expansion). By-cluster OLS
  estimates do not widen it: with three observations a cluster they fly to ±10
  and would squeeze the mixed cloud into a blob. They are drawn as markers on the
  window's edge instead. Where a fitted SD is zero and the mixed estimates do not
  spread (a singular fit), the robust spread of the OLS estimates stands in.
- ``article`` (alias ``baseline``): the article's fixed window, fixed effects ± 3
  of the baseline SDs (0.5, 0.25) plus 5%, in absolute units, for comparability
  between its scenarios; meaningless for data on another scale.
- ``data``: everything (OLS and mixed estimates, truth and ellipses when drawn).
"""

from __future__ import annotations

import math

import numpy as np

ZOOMS = ("auto", "article", "data")
ZOOM_ALIASES = {"baseline": "article"}
BASELINE_SD = (0.5, 0.25)  # the article's zoom: fixed effects +- 3 baseline SDs
ZOOM_SDS = 3.0
EXPAND = 0.05  # each side, of the span: ggplot's default, so edge points are not cut
ELLIPSE_LEVELS = (0.5, 0.8, 0.95)


def canonical_zoom(zoom: str) -> str:
    """'baseline' is the article's window by its old name."""
    return ZOOM_ALIASES.get(zoom, zoom)


def ellipses(fixed: np.ndarray, re_cov: np.ndarray, n: int = 181) -> list[np.ndarray]:
    """Contours of N(fixed, re_cov) holding ELLIPSE_LEVELS of the distribution."""
    vals, vecs = np.linalg.eigh(np.asarray(re_cov, dtype=float))
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    t = np.linspace(0, 2 * np.pi, n)
    circle = np.stack([np.cos(t), np.sin(t)])
    out = []
    for level in ELLIPSE_LEVELS:
        r = math.sqrt(-2 * math.log(1 - level))  # chi-square(2) quantile, square-rooted
        out.append(fixed + r * (root @ circle).T)
    return out


def window(
    *,
    zoom: str,
    fixed: np.ndarray,
    re_cov: np.ndarray,
    mixed: np.ndarray,
    ols: np.ndarray,
    extra: list[np.ndarray] = (),
) -> tuple[tuple[float, float], tuple[float, float]]:
    """(xlim, ylim): the intercept and slope ranges shown. ``extra`` are more points the
    ``data`` zoom must hold (truth, ellipses)."""
    zoom = canonical_zoom(zoom)
    fixed = np.asarray(fixed, dtype=float)
    if zoom == "article":
        half = (1 + 2 * EXPAND) * ZOOM_SDS * np.array(BASELINE_SD)
        lo, hi = fixed - half, fixed + half
    elif zoom == "data":
        pts = np.concatenate([ols, mixed, fixed[None], *extra])
        pts = pts[np.isfinite(pts).all(axis=1)]
        lo, hi = _expand(pts.min(axis=0), pts.max(axis=0), fixed, ols)
    else:
        sd = np.sqrt(np.clip(np.diag(np.asarray(re_cov, dtype=float)), 0.0, None))
        lo = np.minimum(fixed - ZOOM_SDS * sd, mixed.min(axis=0))
        hi = np.maximum(fixed + ZOOM_SDS * sd, mixed.max(axis=0))
        lo, hi = _expand(lo, hi, fixed, ols)
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def _expand(lo: np.ndarray, hi: np.ndarray, fixed: np.ndarray, ols: np.ndarray):
    """Add the margin; an axis with no span gets one from the OLS spread or the value."""
    lo, hi = lo.astype(float), hi.astype(float)
    for k in range(2):
        if not hi[k] - lo[k] > 1e-12 * max(abs(lo[k]), abs(hi[k])):
            half = ZOOM_SDS * _robust_spread(ols[:, k])
            if not half > 1e-12 * abs(fixed[k]):
                half = 0.5 * abs(fixed[k]) or 1.0
            lo[k], hi[k] = min(lo[k], fixed[k] - half), max(hi[k], fixed[k] + half)
    span = hi - lo
    return lo - EXPAND * span, hi + EXPAND * span


def _robust_spread(values: np.ndarray) -> float:
    """An SD that wild values do not inflate: the interquartile range / 1.349."""
    v = values[np.isfinite(values)]
    if len(v) < 2:
        return 0.0
    q1, q3 = np.quantile(v, [0.25, 0.75])
    return float(q3 - q1) / 1.349


def outside(points: np.ndarray, xlim, ylim) -> np.ndarray:
    """(N,) True where a finite point lies beyond the window."""
    p = np.asarray(points, dtype=float)
    finite = np.isfinite(p).all(axis=1)
    with np.errstate(invalid="ignore"):
        inside = (xlim[0] <= p[:, 0]) & (p[:, 0] <= xlim[1])
        inside &= (ylim[0] <= p[:, 1]) & (p[:, 1] <= ylim[1])
    return finite & ~inside


def edge_points(points: np.ndarray, origins: np.ndarray, xlim, ylim) -> np.ndarray:
    """(N, 2) where the segment from each origin (inside) to its point leaves the box.

    Works in any coordinates (the drawing passes pixels, with the box drawn in by a
    marker's radius). Origins outside the box are replaced by the box's centre.
    """
    p = np.asarray(points, dtype=float)
    lo = np.array([min(xlim), min(ylim)], dtype=float)
    hi = np.array([max(xlim), max(ylim)], dtype=float)
    o = np.asarray(origins, dtype=float).copy()
    bad = ~((o >= lo) & (o <= hi)).all(axis=1)
    o[bad] = (lo + hi) / 2
    d = p - o
    with np.errstate(divide="ignore", invalid="ignore"):
        t_hi = np.where(d > 0, (hi - o) / d, np.inf)
        t_lo = np.where(d < 0, (lo - o) / d, np.inf)
    t = np.minimum(np.minimum(t_hi, t_lo).min(axis=1), 1.0)
    return np.clip(o + t[:, None] * d, lo, hi)


def describe(*, zoom: str, fixed, re_cov, mixed, ols, xlabel: str, ylabel: str, extra=()) -> dict:
    """The picture's window, how many estimates lie beyond it, and its axis labels.

    This is ``"picture"`` in ``shrink run --json``; the drawing uses the same counts.
    """
    xlim, ylim = window(zoom=zoom, fixed=fixed, re_cov=re_cov, mixed=mixed, ols=ols, extra=extra)
    return {
        "zoom": canonical_zoom(zoom),
        "window": {"intercept": list(xlim), "slope": list(ylim)},
        "outside": {
            "by_cluster": int(outside(ols, xlim, ylim).sum()),
            "mixed": int(outside(mixed, xlim, ylim).sum()),
        },
        "axis_labels": {"x": xlabel, "y": ylabel},
    }


def beyond_edge_line(by_cluster: int, mixed: int) -> str | None:
    """The caption's count of estimates drawn as edge markers, or None."""
    parts = []
    for n, what in ((by_cluster, "by-cluster"), (mixed, "mixed")):
        if n:
            parts.append(f"{n} {what} estimate{'s' if n > 1 else ''}")
    if not parts:
        return None
    return " and ".join(parts) + " beyond the edge (marked there)"
