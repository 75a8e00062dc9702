"""Why each cluster moves as it does: the numbers behind the explaining pictures.

For a cluster with an OLS estimate the mixed estimate is exactly

    mixed_j = fixed + R_j (ols_j - fixed),   R_j = (S_j/σ² + Σ⁻¹)⁻¹ S_j/σ²

with S_j = X_j'X_j and Σ the random-effect covariance. Written with lme4's relative
covariance Λ = T T' = Σ/σ² it needs no inverse of Σ, so singular fits are fine:

    R_j = (I + Λ S_j)⁻¹ Λ S_j.

I - R_j is the shrinkage the model predicts: large where a cluster carries little
information (few rows, little spread in x) relative to the spread of the random
effects. Its diagonal is the same in any units of x (a diagonal change of
coordinates), so it is computed on the sums fit.sufficient_stats keeps, with x
scaled by a power of two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shrinkcli.errors import UsageError
from shrinkcli.fit import cluster_blocks, relative_factor_cov


@dataclass(frozen=True, eq=False)
class Shrinkage:
    """Per cluster: size, information about the slope, the model's predicted shrinkage
    diag(I - R_j) and the observed fraction of the way pulled toward the fixed effects.

    predicted and observed are (G, 2) (intercept, slope); observed is NaN where the
    cluster has no OLS estimate or its OLS coefficient equals the fixed effect.
    """

    sizes: np.ndarray
    information: np.ndarray
    predicted: np.ndarray
    observed: np.ndarray


def _pull(lam: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """(K, 2, 2) R = (I + Λ S)⁻¹ Λ S for each S in ``blocks`` (one coordinate system)."""
    ls = lam[None] @ blocks
    return np.linalg.solve(np.eye(2)[None] + ls, ls)


def pull_matrices(stats, fits) -> np.ndarray:
    """(G, 2, 2) R_j in the user's units: mixed_j - fixed = R_j (ols_j - fixed).

    Computed in the coordinates the sums are kept in (x / 2**x_exp: fit.cluster_blocks),
    where R' = A⁻¹ R A with A = diag(1, 2**-x_exp), then brought back.
    """
    r = _pull(relative_factor_cov(stats, fits.theta), cluster_blocks(stats))
    s = math.ldexp(1.0, stats.x_exp)
    a, a_inv = np.diag([1.0, 1.0 / s]), np.diag([1.0, s])
    return a[None] @ r @ a_inv[None]


def shrinkage(stats, fits) -> Shrinkage:
    """What each cluster's numbers say about why it moved (see the module)."""
    r = pull_matrices(stats, fits)
    predicted = 1.0 - np.stack([r[:, 0, 0], r[:, 1, 1]], axis=1)
    away = fits.ols - fits.fixed
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = (fits.ols - fits.mixed) / away
    observed[~np.isfinite(observed)] = np.nan
    return Shrinkage(
        sizes=stats.n.copy(),
        information=np.ldexp(stats.cxx, 2 * stats.x_exp),  # n_j var(x_j), x's units squared
        predicted=predicted,
        observed=observed,
    )


def typical_curve(stats, fits, sizes: np.ndarray, spreads: np.ndarray | None = None) -> np.ndarray:
    """(K, 2) diag(I - R) for a cluster of each size with the average x.

    Its x varies as much as the data's do on average (the pooled within-cluster
    variance), or, given ``spreads`` (K,), with each its own variance of x (in x's
    units squared): a cluster of information ``sizes * spreads``.
    """
    n = stats.n.astype(float)
    s = math.ldexp(1.0, stats.x_exp)
    mean = float((n * stats.x_mean).sum() / n.sum())  # in the scaled units of the sums
    k = np.asarray(sizes, dtype=float)
    if spreads is None:
        var = np.full(k.shape, float(stats.cxx.sum() / n.sum()))
    else:
        var = np.asarray(spreads, dtype=float) / (s * s)
    k, var = np.broadcast_arrays(k, var)
    typical = np.empty((len(k), 2, 2))
    typical[:, 0, 0] = k
    typical[:, 0, 1] = typical[:, 1, 0] = k * mean
    typical[:, 1, 1] = k * (var + mean * mean)
    r = _pull(relative_factor_cov(stats, fits.theta), typical)
    return 1.0 - np.stack([r[:, 0, 0], r[:, 1, 1]], axis=1)


def pooled_ols(stats) -> np.ndarray:
    """(2,) complete pooling: one OLS line through every observation, in the user's units."""
    n = stats.n.astype(float)
    x_bar = float((n * stats.x_mean).sum() / n.sum())
    y_bar = float((n * stats.y_mean).sum() / n.sum())
    dx = stats.x_mean - x_bar
    sxx = float(stats.cxx.sum() + (n * dx * dx).sum())
    sxy = float(stats.cxy.sum() + (n * dx * (stats.y_mean - y_bar)).sum())
    slope = sxy / sxx  # in the units the sums are kept in (powers of two)
    return np.array(
        [
            math.ldexp(y_bar - slope * x_bar, stats.y_exp),
            math.ldexp(slope, stats.y_exp - stats.x_exp),
        ]
    )


def choose_highlights(
    fits, labels: np.ndarray, chosen: str | None = None, k: int = 3, *,
    information: np.ndarray | None = None, inside: np.ndarray | None = None,
) -> list[int]:  # fmt: skip
    """Clusters to follow: the given labels, or the one that moves most, the smallest
    and the largest (distinct; the next in line where they coincide).

    Where every cluster has the same size, smallest and largest go by ``information``
    (n_j var(x_j)) when given. With ``inside`` (G,) only clusters whose OLS estimate
    is in view are chosen, if there are any.
    """
    text = [str(v) for v in np.asarray(labels).tolist()]
    if chosen:
        index = {t: i for i, t in enumerate(text)}
        out = []
        for label in (p.strip() for p in chosen.split(",")):
            if label not in index:
                some = ", ".join(text[:5]) + (", ..." if len(text) > 5 else "")
                raise UsageError(f"--highlight {label!r} is not a cluster label; labels are {some}")
            if index[label] not in out:
                out.append(index[label])
        if len(out) > 6:
            raise UsageError("--highlight names more than 6 clusters; choose at most 6")
        return out
    has = np.isfinite(fits.ols).all(axis=1)
    if not has.any():
        return []
    sd = np.sqrt(np.clip(np.diag(fits.re_cov), 0, None))
    spread = np.nanstd(fits.ols[has], axis=0)
    sd = np.where(sd > 0, sd, np.where(spread > 0, spread, 1.0))
    move = np.where(has, np.hypot(*((fits.ols - fits.mixed) / sd).T), -np.inf)
    if inside is not None and (has & inside).any():
        has = has & inside
        move = np.where(has, move, -np.inf)
    order_move = np.argsort(-move, kind="stable")
    size = np.asarray(fits.sizes, dtype=float)
    if information is not None and np.all(size[has] == size[has][0]):
        size = np.asarray(information, dtype=float)
    order_small = np.lexsort((-move, np.where(has, size, np.inf)))
    order_large = np.lexsort((-move, np.where(has, -size, np.inf)))
    out: list[int] = []
    for order in (order_move, order_small, order_large):
        for j in order:
            if has[j] and int(j) not in out:
                out.append(int(j))
                break
    return out[:k]


@dataclass(frozen=True, eq=False)
class Explanation:
    """What the explaining layout and the story draw, as plain arrays.

    highlight: cluster indices to follow (at most 6), with their ``labels`` and their
    raw ``points`` ((n_j, 2) x, y each). pooled: (2,) the complete-pooling line.
    shrinkage: every cluster's numbers (see Shrinkage). axis: what the shrinkage
    panel's x is: "size" (n_j, when sizes vary) or "information" (n_j var(x_j)); ``x``
    (G,) its values. curve_x (K,) and curve (K, 2): the typical cluster's diag(I - R)
    along that axis. names: the columns y and x came from.
    """

    highlight: tuple[int, ...]
    labels: tuple[str, ...]
    points: tuple[np.ndarray, ...]
    pooled: np.ndarray
    shrinkage: Shrinkage
    axis: str
    x: np.ndarray
    curve_x: np.ndarray
    curve: np.ndarray
    names: tuple[str, str] = ("y", "x")


CURVE_POINTS = 121


def explanation(
    data, fits, highlight: str | None = None, inside: np.ndarray | None = None
) -> Explanation:
    """The numbers behind ``--layout explain`` and ``--story`` for one fit; ``inside``
    (G,) marks the OLS estimates in view, from which highlights are chosen."""
    from shrinkcli.fit import sufficient_stats

    stats = sufficient_stats(data)
    numbers = shrinkage(stats, fits)
    chosen = choose_highlights(
        fits, data.labels, highlight, information=numbers.information, inside=inside
    )
    x, y = np.asarray(data.x, dtype=float), np.asarray(data.y, dtype=float)
    codes = np.asarray(data.codes)
    points = tuple(np.column_stack([x[codes == j], y[codes == j]]) for j in chosen)
    has = np.isfinite(fits.ols).all(axis=1)
    sizes = numbers.sizes.astype(float)
    shown = sizes[has] if has.any() else sizes
    if shown.min() < shown.max():
        axis, values = "size", sizes
        grid = np.linspace(shown.min(), shown.max(), CURVE_POINTS)
        curve = typical_curve(stats, fits, grid)
    else:
        axis, values = "information", numbers.information
        info = values[has] if has.any() else values
        lo, hi = float(info.min()), float(info.max())
        if not hi > lo:
            lo, hi = 0.5 * lo, 1.5 * hi if hi > 0 else 1.0
        grid = np.linspace(lo, hi, CURVE_POINTS)
        n = float(shown[0])
        curve = typical_curve(stats, fits, np.full(len(grid), n), grid / n)
    return Explanation(
        highlight=tuple(chosen),
        labels=tuple(str(v) for v in np.asarray(data.labels)[chosen].tolist()) if chosen else (),
        points=points,
        pooled=pooled_ols(stats),
        shrinkage=numbers,
        axis=axis,
        x=np.asarray(values, dtype=float),
        curve_x=grid,
        curve=curve,
        names=(data.names[0], data.names[1]),
    )


def fractions(ols: np.ndarray, positions: np.ndarray, toward) -> np.ndarray:
    """Share of the way from ``ols`` to ``toward`` travelled at ``positions`` (any
    shape); NaN where the OLS estimate has no way to go (it equals ``toward``, or is
    NaN). At the mixed estimates it is how far each cluster was pulled."""
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (ols - positions) / (ols - toward)
    share[~np.isfinite(share)] = np.nan
    return share
