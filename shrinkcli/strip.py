"""The random-intercept picture's numbers: one axis, one row per cluster. Plain numpy.

A model with one random effect, ``y ~ x + (1 | g)`` or ``y ~ 1 + (1 | g)``, has one
number per cluster that shrinks: its intercept (at the common slope) or its mean.
So its picture is a strip: each cluster on its own row, its no-pooling estimate
(lm(y ~ x + g)'s intercept at the within-cluster slope, or its mean) moving along
the horizontal axis to its mixed estimate, the population value (the fixed
intercept) a vertical line. Rows go by cluster size (``order="size"``, the
default: the largest cluster at the top, so the small clusters that shrink most
are at the bottom) or by the mixed estimate (``"estimate"``: the highest at the top).

The window (``window``) is the plane's (shrinkcli.window) on the estimate's axis:
the fixed intercept ± 3 fitted SDs, widened to hold every mixed estimate, plus 5%;
wild no-pooling estimates do not widen it and are drawn as edge markers.

The frames are tween.Frames whose first coordinate is the estimate (the second is
0 and unused; the drawing puts each cluster on its row), so the straight tween,
the story and the pooling path are the plane's own. The pooling path is exact: the
model with random-intercept variance κ τ² at every frame (``intercept_path``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shrinkcli import window
from shrinkcli.errors import UsageError
from shrinkcli.pipeline import KAPPA_START, spaced_path

ORDERS = ("size", "estimate")


def is_intercept_model(fits) -> bool:
    """A random-intercept fit (fit.InterceptFits) rather than the full model's Fits."""
    return hasattr(fits, "re_var")


def check_order(order: str | None) -> None:
    if order is not None and order not in ORDERS:
        raise UsageError(
            f"--order {order!r} is not known; use size (clusters by size, the largest at the "
            "top) or estimate (by mixed estimate, the highest at the top)"
        )


def check_strip(formula, settings, output) -> None:
    """What the random-intercept picture cannot show (``--highlight``), refused before
    any work; and ``--order``, which only it has. ``output`` is kept for callers."""
    intercept = formula is not None and not formula.random_slope
    if not intercept:
        if getattr(settings, "order", None) is not None:
            raise UsageError(
                "--order sorts the rows of the random-intercept picture (y ~ x + (1 | g) or "
                "y ~ 1 + (1 | g)); the plane of y ~ x + (x | g) has no rows: drop it"
            )
        return
    if getattr(settings, "highlight", None) is not None:
        raise UsageError(
            f"--highlight follows clusters in the plane's explaining layout; the picture of "
            f"{formula} shows every cluster on its own row: drop it"
        )


@dataclass(frozen=True, eq=False)
class StripPicture:
    """What the strip shows; one entry per cluster (the data's label order).

    ols: (G,) no-pooling estimate (NaN where there is none: x constant in the cluster);
    mixed: (G,) mixed estimate; fixed: the population value (fixed intercept);
    sizes: (G,); shrinkage: (G,) the factor σ²/n_j / (τ² + σ²/n_j); re_sd, sigma: τ
    and σ; pooled: the complete-pooling value (grand mean, or the pooled OLS
    intercept); truth: (G,) true intercepts (simulated data) or None; rows: (G,) the
    row of each cluster (0 at the bottom); slope: the model has a fixed slope.
    """

    ols: np.ndarray
    mixed: np.ndarray
    fixed: float
    sizes: np.ndarray
    shrinkage: np.ndarray
    re_sd: float
    sigma: float
    pooled: float
    rows: np.ndarray
    labels: tuple[str, ...]
    order: str = "size"
    slope: bool = False
    truth: np.ndarray | None = None
    title: str = ""
    caption: tuple[str, ...] = ()
    xlabel: str = "Intercept"
    ylabel: str = "Clusters by size"
    what: str = "mean"  # "mean" or "intercept": the story's word
    explanation: None = None  # the plane's Clock asks for it; the strip has none

    @property
    def n_clusters(self) -> int:
        return len(self.mixed)

    @property
    def has_ols(self) -> np.ndarray:
        return np.isfinite(self.ols)


def rows(sizes: np.ndarray, mixed: np.ndarray, order: str, ols=None) -> np.ndarray:
    """(G,) row of each cluster, 0 at the bottom: by size (ties by mixed estimate), the
    largest at the top; or by mixed estimate (ties by size), the highest at the top.
    Remaining ties (a singular fit's equal mixed estimates) go by ``ols``, if given."""
    sizes, mixed = np.asarray(sizes, dtype=float), np.asarray(mixed, dtype=float)
    ols = np.zeros_like(mixed) if ols is None else np.asarray(ols, dtype=float)
    keys = (ols, mixed, sizes) if order == "size" else (ols, sizes, mixed)
    rank = np.lexsort(keys)  # last key first: size (or estimate) ascending
    out = np.empty(len(sizes), dtype=float)
    out[rank] = np.arange(len(sizes), dtype=float)
    return out


def strip_window(picture: StripPicture, zoom: str, *, truth: bool = False, band: bool = False):
    """(lo, hi) of the estimate's axis: shrinkcli.window on its first coordinate."""
    extra = []
    if truth and picture.truth is not None:
        extra.append(np.column_stack([picture.truth, np.zeros(picture.n_clusters)]))
    if band:
        extra.append(np.array([[picture.fixed - 1.96 * picture.re_sd, 0.0],
                               [picture.fixed + 1.96 * picture.re_sd, 0.0]]))  # fmt: skip
    xlim, _ = window.window(
        zoom=zoom,
        fixed=np.array([picture.fixed, 0.0]),
        re_cov=np.diag([picture.re_sd**2, 0.0]),
        mixed=np.column_stack([picture.mixed, np.zeros(picture.n_clusters)]),
        ols=np.column_stack([picture.ols, np.zeros(picture.n_clusters)]),
        extra=extra,
    )
    return xlim


def outside(values: np.ndarray, xlim) -> np.ndarray:
    """(G,) True where a finite value lies beyond the window."""
    v = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(v) & ((v < xlim[0]) | (v > xlim[1]))


def describe(picture: StripPicture, settings) -> dict:
    """``"picture"`` in ``shrink run --json`` for the strip: the estimate's window, the
    estimates beyond it, the axis labels and the rows' order."""
    xlim = strip_window(picture, settings.zoom, truth=settings.truth, band=settings.ellipses)
    out = {
        "zoom": settings.zoom,
        "kind": "strip",
        "window": {"estimate": list(xlim), "rows": [0, picture.n_clusters - 1]},
        "outside": {
            "by_cluster": int(outside(picture.ols, xlim).sum()),
            "mixed": int(outside(picture.mixed, xlim).sum()),
        },
        "axis_labels": {"x": picture.xlabel, "y": picture.ylabel},
        "order": picture.order,
    }
    if settings.layout == "explain":
        out["shrinkage_axis"] = "size"
    return out


# ------------------------------------------------------------------------ the picture


def draw_strip(data, fits, *, scenario=None, title: str = "", settings, output, progress=None):
    """Draw the strip of a random-intercept fit to ``output`` (.gif, .mp4, .png, or the
    interactive .html page; written atomically). Returns (path, the JSON description)."""
    from pathlib import Path

    from shrinkcli.encode import write_animation, write_still
    from shrinkcli.render.strip import render_strip, render_strip_still

    picture = strip_picture(data, fits, scenario=scenario, title=title, settings=settings)
    output = Path(output)
    if output.suffix.lower() == ".html":  # the slider runs along the exact pooling path
        from shrinkcli.pipeline import page_settings
        from shrinkcli.strip_page import write_strip_page

        page = page_settings(settings)
        path = write_strip_page(picture, strip_frames(data, fits, picture, page), page, output)
        return path, describe(picture, settings)
    frames = strip_frames(data, fits, picture, settings)
    if output.suffix.lower() == ".png":
        path = write_still(render_strip_still(picture, settings, frames), output)
    else:
        path = write_animation(render_strip(picture, frames, settings), output, fps=settings.fps,
                               n_frames=frames.n_frames, progress=progress)  # fmt: skip
    return path, describe(picture, settings)


def strip_picture(data, fits, *, scenario=None, title: str = "", settings=None) -> StripPicture:
    """The strip of one random-intercept fit, with its title and caption."""
    from shrinkcli.fit import sufficient_stats
    from shrinkcli.pipeline import describe as describe_run

    order = (getattr(settings, "order", None) if settings is not None else None) or "size"
    ols, mixed = fits.ols[:, 0], fits.mixed[:, 0]
    y, x, _ = data.names
    slope = bool(fits.slope)
    if data.truth is not None:
        xlabel = "Intercept" if slope else "Cluster mean"
    elif slope:
        xlabel = f"Intercept ({y} at {x} = 0)"
    else:
        xlabel = f"Mean of {y}"
    sizes = np.asarray(fits.sizes)
    if order == "estimate":
        ylabel = "Clusters by mixed estimate (highest at the top)"
    elif sizes.min() == sizes.max():  # by size, ties by estimate: by estimate
        ylabel = f"Clusters (all of size {int(sizes[0])}) by mixed estimate (highest at the top)"
    else:
        ylabel = "Clusters by size (largest at the top)"
    stats = sufficient_stats(data)
    truth = None if data.truth is None else np.asarray(data.truth, dtype=float)[:, 0]
    picture = StripPicture(
        ols=np.array(ols, dtype=float),
        mixed=np.array(mixed, dtype=float),
        fixed=float(fits.fixed[0]),
        sizes=np.asarray(fits.sizes, dtype=float),
        shrinkage=np.asarray(fits.shrinkage, dtype=float),
        re_sd=float(fits.re_sd),
        sigma=math.sqrt(fits.sigma2),
        pooled=complete_pooling(stats, slope),
        rows=rows(fits.sizes, mixed, order, ols),
        labels=tuple(str(v) for v in np.asarray(data.labels).tolist()),
        order=order,
        slope=slope,
        truth=truth,
        title=title or describe_run(scenario, data),
        xlabel=xlabel,
        ylabel=ylabel,
        what="intercept" if slope else "mean",
    )
    import dataclasses

    return dataclasses.replace(picture, caption=caption_lines(fits, picture, data))


def complete_pooling(stats, slope: bool) -> float:
    """The one value for every cluster: the grand mean, or lm(y ~ x)'s intercept."""
    if slope:
        from shrinkcli.explain import pooled_ols

        return float(pooled_ols(stats)[0])
    n = stats.n.astype(float)
    return math.ldexp(float((n * stats.y_mean).sum() / n.sum()), stats.y_exp)


def truth_rmse(picture: StripPicture) -> tuple[float, float] | None:
    """(by-cluster, mixed) RMSE against the true intercepts over the clusters with a
    by-cluster estimate; None without truth (data from a file) or such clusters."""
    if picture.truth is None:
        return None
    ok = picture.has_ols & np.isfinite(picture.mixed)
    if not ok.any():
        return None
    o = float(np.sqrt(np.mean((picture.ols[ok] - picture.truth[ok]) ** 2)))
    m = float(np.sqrt(np.mean((picture.mixed[ok] - picture.truth[ok]) ** 2)))
    return o, m


def caption_lines(fits, picture: StripPicture, data) -> tuple[str, ...]:
    """Fitted SDs (τ, σ); truth RMSE for simulated data; what no pooling means here."""
    from shrinkcli.pipeline import short_number as f

    lines = [
        f"{fits.method} fit: SD of the cluster {picture.what}s τ = {f(picture.re_sd)}, "
        f"residual SD σ = {f(picture.sigma)}" + (" (singular)" if fits.singular else "")
    ]
    rmse = truth_rmse(picture)
    if rmse is not None:
        lines.append(f"RMSE vs true intercept, by-cluster -> mixed: {f(rmse[0])} -> {f(rmse[1])}")
    if picture.slope:
        x = data.names[1]
        lines.append(
            f"By-cluster: each cluster's intercept at the common within-cluster slope of {x}; "
            f"mixed: at the fixed slope {f(float(fits.fixed[1]))}"
        )
    missing = int((~picture.has_ols).sum())
    if missing:
        lines.append(
            f"{missing} cluster{'s' if missing > 1 else ''} where {data.names[1]} never varies "
            "shown at the mixed estimate only"
        )
    return tuple(lines)


# ------------------------------------------------------------------------- the frames


def _two(values: np.ndarray) -> np.ndarray:
    """(G,) -> (G, 2): the estimate and an unused 0, the shape tween.Frames holds."""
    v = np.asarray(values, dtype=float)
    return (
        np.column_stack([v, np.zeros(v.shape[-1])])
        if v.ndim == 1
        else np.stack([v, np.zeros_like(v)], axis=-1)
    )


def strip_frames(data, fits, picture: StripPicture, settings):
    """The moving estimates (first coordinate of tween.Frames): straight, or the exact
    pooling path; with ``settings.story`` after complete pooling and the fan-out."""
    from shrinkcli.tween import path_frames, story_frames, story_hold, straight_frames

    if settings.path == "straight":
        pull = straight_frames(_two(picture.ols), _two(picture.mixed), frames=settings.frames,
                               hold=settings.hold, ease=settings.ease)  # fmt: skip
    else:
        kappas, path = path_samples(data, fits, picture, settings.frames)
        pull = path_frames(_two(path), kappas, frames=settings.frames, hold=settings.hold,
                           ease=settings.ease)  # fmt: skip
    if not settings.story:
        return pull
    return story_frames(np.array([picture.pooled, 0.0]), _two(picture.ols), pull,
                        frames=settings.frames, hold=story_hold(settings.fps),
                        ease=settings.ease)  # fmt: skip


def intercept_path(data, fits, kappas: np.ndarray) -> np.ndarray:
    """(K, G) the mixed estimate of every cluster in the model whose random-intercept
    variance is κ τ² (the fixed effects re-estimated), for each κ in ``kappas``.

    With t = κ θ² and a_j = n_j / (1 + t n_j) the fixed effects are the GLS solution
    with cluster weights a_j (plus the within-cluster sums for the slope), and the
    cluster's estimate is β0 + t a_j e_j, e_j = ȳ_j - β0 - β1 x̄_j. At κ = 1 this is
    fits.mixed (tested); as κ grows it tends to the no-pooling estimate.
    """
    from shrinkcli.fit import sufficient_stats

    stats = sufficient_stats(data)
    n = stats.n.astype(float)
    yb = np.ldexp(stats.y_mean, stats.y_exp)
    t = np.asarray(kappas, dtype=float)[:, None] * float(fits.theta[0]) ** 2
    a = n / (1.0 + t * n)
    s0 = a.sum(axis=1, keepdims=True)
    ybar = (a * yb).sum(axis=1, keepdims=True) / s0
    if fits.slope:
        xb = np.ldexp(stats.x_mean, stats.x_exp)
        scale = math.ldexp(1.0, stats.x_exp)
        sxx = float(np.where(stats.x_varies, stats.cxx, 0.0).sum()) * scale * scale
        sxy = (
            float(np.where(stats.x_varies, stats.cxy, 0.0).sum())
            * scale
            * math.ldexp(1.0, stats.y_exp)
        )
        m = (a * xb).sum(axis=1, keepdims=True) / s0
        dev = xb - m
        b1 = ((a * dev * yb).sum(axis=1, keepdims=True) + sxy) / ((a * dev * dev).sum(
            axis=1, keepdims=True) + sxx)  # fmt: skip
        b0 = ybar - m * b1
        e = yb - b0 - b1 * xb
    else:
        b0, e = ybar, yb - ybar
    return b0 + t * a * e


def path_samples(data, fits, picture: StripPicture, n: int):
    """n estimates along the pooling path, spaced so that every step moves the points
    equally on average (as pipeline.pooling_path_frames): (kappas (n,), path (n, G)).

    Frame 0 is the no-pooling estimate (κ = ∞; a cluster without one starts at the
    model at KAPPA_START); a singular fit's models never leave the population value,
    so its κ = ∞ part is a straight line from the no-pooling estimates to them.
    """
    dense_k = np.geomspace(KAPPA_START, 1.0, 241)
    dense = intercept_path(data, fits, dense_k)
    dense[-1] = picture.mixed  # exact
    start = np.where(picture.has_ols, picture.ols, dense[0])
    kappas, path = spaced_path(start[:, None], dense[..., None], dense_k, picture.mixed[:, None],
                               lambda k: intercept_path(data, fits, k)[..., None], n)  # fmt: skip
    return kappas, path[..., 0]
