"""No-pooling OLS and lme4's mixed model ``y ~ x + (x | cluster)`` from per-cluster sums;
the random-intercept models ``y ~ x + (1 | cluster)`` and ``y ~ 1 + (1 | cluster)`` at
the end (fit_intercept).

Called, this module is the notebook API: ``shrinkcli.fit(df, formula=...)`` is
shrinkcli.api.fit (see _CallableModule at the end).

One O(N) pass turns the data into per-cluster sums; everything after that costs
O(clusters) per evaluation, every 2x2 block written out in closed form and
vectorised over clusters (no Python loop per cluster).

Units never matter. The sums are taken on x / 2**a and y / 2**b, powers of two
that bring the largest |x| and |y| into [0.5, 1): exact, and no square can
overflow or underflow. The fit then works in standardised coordinates
(x' = (x - mean) / sd, y' = (y - mean) / sd), each cluster compressed to its 2x2
Cholesky factor ``L_j`` (``X_j'X_j = L_j L_j'``), ``z_j = L_j^-1 X_j'y_j`` and its
OLS residual sum of squares. lme4's profiled criterion is invariant under that
change of coordinates up to a known constant (2 (n - p) log sd(y), plus 2 log sd(x)
for REML), which is added back, so the numbers are lme4's; and data (a y, b x)
give the fit of (y, x) with every estimate scaled as it should be (exactly so
when a and b are powers of two). A result a double cannot hold in the user's
units is refused with a DataError. ``theta`` is always reported on lme4's scale.

The optimum is searched over the relative covariance ``Lambda = T T'`` with T
lower triangular and *unconstrained* entries: flipping the sign of a column of T
leaves Lambda unchanged, so lme4's bounds (0, -inf, 0) only pick one of
equivalent points, and a boundary optimum is an ordinary critical point. A
bounded optimiser, in contrast, can land on a face where the even symmetry makes
the gradient vanish and stop there (the baseline's wrong basin at 3012 + 7.8).
To make the optimum trustworthy, a 3-number BFGS with the exact gradient runs from
lme4's start (1, 0, 1) taken in standardised units (so that the search, like the
result, does not depend on the units of x), from the best points of a 85-point
grid (evaluated as one vectorised batch) and on the two boundary faces
(correlation ±1; no intercept variance), and the best result wins; Newton steps
then polish it to rounding. Tests check it against dense multistart searches and
statsmodels on data built to be hard.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from shrinkcli.errors import DataError, FitError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from shrinkcli.formula import Formula
    from shrinkcli.simulate import ClusteredData

SINGULAR_TOL = 1e-4  # lme4's isSingular(): a bounded theta within this of 0
_CHUNK = 400_000  # elements per (thetas x clusters) block, to bound memory
_SUBSET = 2_000  # clusters used to locate the basin on very large data
_LOG_2PI = math.log(2 * math.pi)
_LN2 = math.log(2.0)
_START = np.array([1.0, 0.0, 1.0])  # lme4's start, in standard coordinates


@dataclass(frozen=True)
class SufficientStats:
    """Per-cluster counts, means and centred sums of squares and products, in units
    of 2**x_exp (x) and 2**y_exp (y).

    The powers of two bring the largest |x| and |y| into [0.5, 1), so the scaling
    is exact and no square overflows or underflows, whatever the user's units.
    Centred sums (two-pass with correction) keep full precision where the raw sums
    Σx², Σxy, Σy² would cancel; the raw sums are available as properties (same units).
    """

    n: np.ndarray
    x_mean: np.ndarray
    y_mean: np.ndarray
    cxx: np.ndarray  # Σ (x - x̄)²
    cxy: np.ndarray  # Σ (x - x̄)(y - ȳ)
    cyy: np.ndarray  # Σ (y - ȳ)²
    x_exp: int = 0  # x = 2**x_exp * (x in these units)
    y_exp: int = 0

    @property
    def n_obs(self) -> int:
        return int(self.n.sum())

    @property
    def n_clusters(self) -> int:
        return len(self.n)

    @property
    def sum_x(self) -> np.ndarray:
        return self.n * self.x_mean

    @property
    def sum_y(self) -> np.ndarray:
        return self.n * self.y_mean

    @property
    def sum_xx(self) -> np.ndarray:
        return self.cxx + self.n * self.x_mean**2

    @property
    def sum_xy(self) -> np.ndarray:
        return self.cxy + self.n * self.x_mean * self.y_mean

    @property
    def sum_yy(self) -> np.ndarray:
        return self.cyy + self.n * self.y_mean**2

    @property
    def x_varies(self) -> np.ndarray:
        """Clusters whose x is not constant (beyond rounding of the mean): they have a slope."""
        scale = 1e-13 * np.maximum(np.abs(self.x_mean), 2.0**-500)
        return self.cxx > self.n * scale**2


def _exponent(v: np.ndarray) -> int:
    """e with max|v| / 2**e in [0.5, 1) (0 for all-zero v)."""
    big = float(np.max(np.abs(v))) if len(v) else 0.0
    return int(np.frexp(big)[1]) if big > 0 else 0


def sufficient_stats(data: ClusteredData) -> SufficientStats:
    """The per-cluster sums in two vectorised passes (np.bincount), O(N)."""
    y = np.asarray(data.y, dtype=float)
    x = np.asarray(data.x, dtype=float)
    codes = np.asarray(data.codes, dtype=np.intp)
    g = len(data.labels)
    for name, v in (("y", y), ("x", x)):
        bad = int(np.count_nonzero(~np.isfinite(v)))
        if bad:
            raise DataError(f"column {name} has {bad} missing or non-finite values")
    x_exp, y_exp = _exponent(x), _exponent(y)
    x, y = np.ldexp(x, -x_exp), np.ldexp(y, -y_exp)  # exact: powers of two
    n = np.bincount(codes, minlength=g)
    if len(n) != g or (n == 0).any():
        raise DataError("every cluster label needs at least one observation")
    x_mean = np.bincount(codes, x, g) / n
    y_mean = np.bincount(codes, y, g) / n
    dx = x - x_mean[codes]
    dy = y - y_mean[codes]
    # fold the rounding left in the first means back in (corrected two-pass)
    ex = np.bincount(codes, dx, g) / n
    ey = np.bincount(codes, dy, g) / n
    dx -= ex[codes]
    dy -= ey[codes]
    return SufficientStats(
        n=n.astype(np.int64),
        x_mean=x_mean + ex,
        y_mean=y_mean + ey,
        cxx=np.bincount(codes, dx * dx, g),
        cxy=np.bincount(codes, dx * dy, g),
        cyy=np.bincount(codes, dy * dy, g),
        x_exp=x_exp,
        y_exp=y_exp,
    )


def _to_user(what: str, scaled, exp) -> np.ndarray:
    """scaled * 2**exp (exact), or a DataError where a double cannot hold the result.

    A value overflows, or underflows to zero or a subnormal (lost precision), only
    in extreme units, e.g. a slope variance with y in 1e150 and x in 1e-150 units.
    """
    scaled = np.asarray(scaled, dtype=float)
    exp = np.asarray(exp, dtype=np.int64)
    with np.errstate(over="ignore", under="ignore"):
        out = np.ldexp(scaled, exp)
    lost = np.isfinite(scaled) & (
        ~np.isfinite(out) | ((scaled != 0) & (np.abs(out) < np.finfo(float).tiny))
    )
    if lost.any():
        i = np.unravel_index(np.flatnonzero(lost)[0], lost.shape)
        e = np.broadcast_to(exp, lost.shape)[i]
        size = math.log10(abs(float(scaled[i]))) + float(e) * math.log10(2.0)
        raise DataError(
            f"in these units the {what} would be about 1e{size:.0f}, beyond the range of a "
            "double; rescale y or x (measure them in other units)"
        )
    return out


def _ols_scaled(stats: SufficientStats) -> np.ndarray:
    has = stats.x_varies
    slope = np.full(stats.n_clusters, np.nan)
    slope[has] = stats.cxy[has] / stats.cxx[has]
    intercept = np.where(has, stats.y_mean - np.where(has, slope, 0.0) * stats.x_mean, stats.y_mean)
    return np.column_stack((intercept, slope))


def fit_ols(stats: SufficientStats) -> np.ndarray:
    """Per-cluster OLS (intercept, slope); slope NaN for one observation or constant x."""
    exp = [stats.y_exp, stats.y_exp - stats.x_exp]
    return _to_user("by-cluster OLS estimates", _ols_scaled(stats), exp)


# --------------------------------------------------------------------------------------
# The profiled criterion on compressed clusters


class _Coords:
    """The way from a core's standard coordinates back to the user's units, for the
    dataclasses below with fields shift, scale, y_shift, y_scale, x_exp, y_exp, n_obs
    (a core without x has shift 0 and scale 1)."""

    @property
    def a_inv(self) -> np.ndarray:
        """Standard-coordinate coefficients (per unit of y') to the stats' units."""
        return np.array([[1.0, -self.shift / self.scale], [0.0, 1.0 / self.scale]])

    @property
    def coef_exp(self) -> np.ndarray:
        """Powers of two from the stats' units to the user's: (intercept, slope)."""
        return np.array([self.y_exp, self.y_exp - self.x_exp])

    @property
    def cov_exp(self) -> np.ndarray:
        return self.coef_exp[:, None] + self.coef_exp[None, :]

    def _offset(self, reml: bool, p: int) -> float:
        """What the criterion in standard coordinates lacks on the user's scale, with p
        fixed effects: 2 (n - p) log sd(y), plus 2 log sd(x) for REML with a slope
        (log|X'V^-1X| changes with x)."""
        dof = self.n_obs - p if reml else self.n_obs
        out = 2.0 * dof * (self.y_exp * _LN2 + math.log(self.y_scale))
        if reml and p == 2:
            out += 2.0 * (self.x_exp * _LN2 + math.log(self.scale))
        return out


@dataclass(frozen=True)
class _Core(_Coords):
    """Clusters compressed to L_j = [[l11, 0], [l21, l22]], z_j and the OLS RSS, in
    standardised coordinates x' = (x - shift) / scale, y' = (y - y_shift) / y_scale,
    where x and y are in the units of SufficientStats (2**x_exp, 2**y_exp)."""

    l11: np.ndarray
    l21: np.ndarray
    l22: np.ndarray
    z1: np.ndarray
    z2: np.ndarray
    rss: float
    n_obs: int
    shift: float
    scale: float
    y_shift: float
    y_scale: float
    x_exp: int
    y_exp: int

    def subset(self, idx: np.ndarray, rss: float) -> _Core:
        n_obs = int(np.rint((self.l11[idx] ** 2).sum()))
        return _Core(
            self.l11[idx], self.l21[idx], self.l22[idx], self.z1[idx], self.z2[idx],
            rss, n_obs, self.shift, self.scale, self.y_shift, self.y_scale, self.x_exp,
            self.y_exp,
        )  # fmt: skip

    def offset(self, reml: bool) -> float:
        return self._offset(reml, 2)


def _core(stats: SufficientStats) -> _Core:
    n_obs = int(stats.n.sum())
    if stats.n_clusters < 2:
        raise DataError(f"the data have {stats.n_clusters} cluster; at least two are needed")
    if n_obs < 3:
        raise DataError(f"the data have {n_obs} observations; at least three are needed")
    shift, total = _spread(stats.n, stats.x_mean, stats.cxx, n_obs)
    if _constant(total, shift, n_obs):
        raise DataError("x is constant in every row, so no slope can be estimated")
    y_shift, y_total = _spread(stats.n, stats.y_mean, stats.cyy, n_obs)
    if _constant(y_total, y_shift, n_obs):
        raise DataError("y is constant in every row, so there is nothing to model")
    scale, y_scale = math.sqrt(total / n_obs), math.sqrt(y_total / n_obs)
    return _compress(stats, n_obs, shift, scale, y_shift, y_scale)


def _spread(n: np.ndarray, mean: np.ndarray, css: np.ndarray, n_obs) -> tuple:
    """A column's pooled mean and total centred sum of squares from the per-cluster
    counts, means and centred sums; arrays (G,) give floats, (B, G) arrays (B,)."""
    shift = (n * mean).sum(axis=-1) / n_obs
    total = css.sum(axis=-1) + (n * (mean - np.expand_dims(shift, -1)) ** 2).sum(axis=-1)
    if np.ndim(shift) == 0:
        return float(shift), float(total)
    return shift, total


def _constant(total, shift, n_obs):
    """Whether a column is constant in every row (beyond rounding of its mean)."""
    return ~(total > n_obs * (1e-13 * np.maximum(np.abs(shift), 2.0**-500)) ** 2)


def _compress(stats, n_obs, shift, scale, y_shift, y_scale) -> _Core:
    """The _Core of per-cluster sums in the standard coordinates (shift, scale, y_shift,
    y_scale): stats of one data set (arrays (G,), floats), or of many (SufficientStats-
    like arrays (B, G), the rest (B,)), as study.fitbatch stacks them."""

    def col(v):  # a per-data-set value against the cluster axis
        return np.expand_dims(v, -1)

    varies = stats.x_varies
    cxx = np.where(varies, stats.cxx, 0.0)
    l11 = np.sqrt(stats.n.astype(float))
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = np.where(varies, stats.cxy / np.sqrt(cxx), 0.0) / col(y_scale)
        rss_j = np.where(varies, stats.cyy - stats.cxy**2 / cxx, stats.cyy)
    rss = np.maximum(rss_j, 0.0).sum(axis=-1) / y_scale**2
    return _Core(
        l11=l11,
        l21=l11 * (stats.x_mean - col(shift)) / col(scale),
        l22=np.sqrt(cxx) / col(scale),
        z1=l11 * (stats.y_mean - col(y_shift)) / col(y_scale),
        z2=z2,
        rss=float(rss) if np.ndim(rss) == 0 else rss,
        n_obs=n_obs,
        shift=shift,
        scale=scale,
        y_shift=y_shift,
        y_scale=y_scale,
        x_exp=stats.x_exp,
        y_exp=stats.y_exp,
    )


@dataclass
class _Solved:
    """Everything the criterion, its gradient and the estimates need, for B Lambdas."""

    value: np.ndarray  # (B,), or a scalar when Λ is given as floats
    beta: np.ndarray  # (B, 2) or (2,)
    r2: np.ndarray  # (B,) or scalar
    vinv: tuple  # V^-1 entries (i11, i12, i22), each (B,) or scalar
    w: tuple  # W_j = L N^-1 L' entries (W11, W12, W22), each (B, G) or (G,)
    g: tuple  # g_j = L N^-1 e_j, each (B, G) or (G,)
    dof: int


def _solve(core: _Core, lam: tuple, reml: bool) -> _Solved:
    """_solve_raw without floating-point warnings: far-out trial θ overflow harmlessly
    to inf (the optimisers step back) and a non-finite final result raises FitError."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _solve_raw(core, lam, reml)


def _solve_raw(core: _Core, lam: tuple, reml: bool) -> _Solved:
    """lme4's block formulas for B relative covariances Lambda (std coordinates).

    ``lam`` = (λ11, λ12, λ22, det Λ), each of shape (B, 1); det Λ is passed
    separately because it is exact from T (λ11 λ22 - λ12² cancels near rank 1).
    N_j = I + L_j'ΛL_j, V = Σ L_j N_j^-1 L_j' (lme4's XtX*), β = V^-1 Σ L_j N_j^-1 z_j,
    r² = RSS + Σ e_j'N_j^-1 e_j with e_j = z_j - L_j'β. ``value`` is the criterion of
    the standardised data; ``core.offset`` takes it to the user's units.
    """
    a, b, c, det = lam
    l11, l21, l22, z1, z2 = core.l11, core.l21, core.l22, core.z1, core.z2
    u2 = b * l11 + c * l21
    c11 = l11 * (a * l11 + b * l21) + l21 * u2
    c12 = l22 * u2
    c22 = c * (l22 * l22)
    det_n = 1.0 + c11 + c22 + det * (l11 * l22) ** 2
    inv = 1.0 / det_n
    a11, a12, a22 = (1.0 + c22) * inv, -c12 * inv, (1.0 + c11) * inv
    p21 = l21 * a11 + l22 * a12
    p22 = l21 * a12 + l22 * a22
    w11, w12, w22 = l11 * l11 * a11, l11 * p21, l21 * p21 + l22 * p22
    y1 = a11 * z1 + a12 * z2
    y2 = a12 * z1 + a22 * z2
    v11, v12, v22 = w11.sum(-1), w12.sum(-1), w22.sum(-1)
    x1, x2 = (l11 * y1).sum(-1), (l21 * y1 + l22 * y2).sum(-1)
    det_v = v11 * v22 - v12 * v12
    i11, i12, i22 = v22 / det_v, -v12 / det_v, v11 / det_v
    beta0, beta1 = i11 * x1 + i12 * x2, i12 * x1 + i22 * x2
    b0, b1 = np.expand_dims(beta0, -1), np.expand_dims(beta1, -1)
    e1 = z1 - l11 * b0 - l21 * b1
    e2 = z2 - l22 * b1
    wv1, wv2 = a11 * e1 + a12 * e2, a12 * e1 + a22 * e2
    r2 = core.rss + (e1 * wv1 + e2 * wv2).sum(-1)
    dof = core.n_obs - 2 if reml else core.n_obs
    value = np.log(det_n).sum(-1) + dof * (1.0 + _LOG_2PI + np.log(r2 / dof))
    if reml:
        value = value + np.log(det_v)
    return _Solved(
        value=value,
        beta=np.stack((beta0, beta1), axis=-1),
        r2=r2,
        vinv=(i11, i12, i22),
        w=(w11, w12, w22),
        g=(l11 * wv1, l21 * wv1 + l22 * wv2),
        dof=dof,
    )


def _lam_from_phi(phi: np.ndarray) -> tuple:
    """Λ = T T' for T = [[φ1, 0], [φ2, φ3]], rows of phi (B, 3) -> entries (B, 1)."""
    p1, p2, p3 = (phi[:, k : k + 1] for k in range(3))
    return p1 * p1, p1 * p2, p2 * p2 + p3 * p3, (p1 * p3) ** 2


def _lam_scalar(phi: np.ndarray) -> tuple[float, float, float, float]:
    """Λ entries for one φ as Python floats (cheapest to broadcast)."""
    p1, p2, p3 = (float(v) for v in phi)
    return p1 * p1, p1 * p2, p2 * p2 + p3 * p3, (p1 * p3) ** 2


def _value_grad(core: _Core, phi: np.ndarray, reml: bool) -> tuple[float, np.ndarray]:
    """The criterion and its exact gradient in φ (standard coordinates).

    d/dΛ = Σ W_j - [REML] Σ W_j V^-1 W_j - (dof / r²) Σ g_j g_j', then d/dT = 2 (d/dΛ) T.
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _value_grad_raw(core, phi, reml)


def _value_grad_raw(core: _Core, phi: np.ndarray, reml: bool) -> tuple[float, np.ndarray]:
    s = _solve_raw(core, _lam_scalar(phi), reml)
    (w11, w12, w22), (g1, g2) = s.w, s.g
    k = float(s.dof / s.r2)
    d11 = w11.sum() - k * (g1 * g1).sum()
    d12 = w12.sum() - k * (g1 * g2).sum()
    d22 = w22.sum() - k * (g2 * g2).sum()
    if reml:
        i11, i12, i22 = s.vinv
        m11, m12, m22 = (w11 * w11).sum(), (w11 * w12).sum(), (w12 * w12).sum()
        m13, m23, m33 = (w11 * w22).sum(), (w12 * w22).sum(), (w22 * w22).sum()
        d11 -= i11 * m11 + 2 * i12 * m12 + i22 * m22
        d12 -= i11 * m12 + i12 * (m13 + m22) + i22 * m23
        d22 -= i11 * m22 + 2 * i12 * m23 + i22 * m33
    p1, p2, p3 = phi
    grad = 2.0 * np.array([d11 * p1 + d12 * p2, d12 * p1 + d22 * p2, d22 * p3])
    return float(s.value), grad


def _values(core: _Core, phis: np.ndarray, reml: bool) -> np.ndarray:
    """The criterion at many φ at once, in blocks that bound memory."""
    step = max(1, _CHUNK // len(core.l11))
    out = [
        _solve(core, _lam_from_phi(phis[i : i + step]), reml).value
        for i in range(0, len(phis), step)
    ]
    return np.concatenate(out)


# --------------------------------------------------------------------------------------
# Coordinates: lme4's theta <-> standard-coordinate phi


def _phi_from_theta(core: _Core, theta: np.ndarray) -> np.ndarray:
    """lme4's θ to φ: chol(A T T' A') with A = [[1, shift], [0, scale]] after taking θ's
    slope row to the stats' units (exact: a power of two); rank-deficient cases kept exact."""
    t2, t3 = (float(np.ldexp(theta[k], core.x_exp)) for k in (1, 2))
    t = np.array([[theta[0], 0.0], [t2, t3]])
    a = np.array([[1.0, core.shift], [0.0, core.scale]])
    return _chol(a @ t, core.scale * theta[0] * t3)


def _theta_from_phi(core: _Core, phi: np.ndarray) -> np.ndarray:
    """φ to lme4's θ (θ1, θ3 >= 0), the lower Cholesky factor of A^-1 T T' A^-T."""
    m = core.a_inv @ np.array([[phi[0], 0.0], [phi[1], phi[2]]])
    t = _chol(m, phi[0] * phi[2] / core.scale)
    return _to_user("relative covariance factor theta", t, [0, -core.x_exp, -core.x_exp])


def _chol(m: np.ndarray, det: float) -> np.ndarray:
    """(θ1, θ2, θ3) of the lower Cholesky factor of M M' (M any 2x2, det M given exactly)."""
    t1 = math.hypot(m[0, 0], m[0, 1])
    if t1 == 0.0:
        return np.array([0.0, 0.0, math.hypot(m[1, 0], m[1, 1])])
    t2 = (m[0, 0] * m[1, 0] + m[0, 1] * m[1, 1]) / t1
    t3 = abs(det) / t1
    return np.array([t1, t2, t3])


def make_criterion(stats: SufficientStats, *, reml: bool = True) -> Callable:
    """A function θ -> criterion (REML criterion or ML deviance, lme4's scale).

    θ is lme4's (θ1, θ2, θ3), one (3,) vector or a (B, 3) array; any real θ is
    accepted (only T T' matters). The sums are compressed once, so calls are cheap.
    """
    core = _core(stats)
    offset = core.offset(reml)
    a01, a11 = core.shift, core.scale

    def criterion_at(theta: np.ndarray) -> float | np.ndarray:
        th = np.asarray(theta, dtype=float)
        rows = np.atleast_2d(th)
        with np.errstate(over="ignore", under="ignore"):
            t2, t3 = np.ldexp(rows[:, 1], core.x_exp), np.ldexp(rows[:, 2], core.x_exp)
        m11 = rows[:, 0] + a01 * t2  # A T, column by column
        m12 = a01 * t3
        m21, m22 = a11 * t2, a11 * t3
        lam = (
            (m11 * m11 + m12 * m12)[:, None],
            (m11 * m21 + m12 * m22)[:, None],
            (m21 * m21 + m22 * m22)[:, None],
            ((a11 * rows[:, 0] * t3) ** 2)[:, None],
        )
        step = max(1, _CHUNK // len(core.l11))
        out = np.concatenate(
            [
                _solve(core, tuple(v[i : i + step] for v in lam), reml).value
                for i in range(0, len(rows), step)
            ]
        )
        out = out + offset
        return float(out[0]) if th.ndim == 1 else out

    return criterion_at


def criterion(stats: SufficientStats, theta: np.ndarray, reml: bool = True) -> float | np.ndarray:
    """lme4's REML criterion (or ML deviance) at θ; see make_criterion for repeated use."""
    return make_criterion(stats, reml=reml)(theta)


# --------------------------------------------------------------------------------------
# A robust optimum


@dataclass(frozen=True)
class _Optimum:
    phi: np.ndarray
    value: float
    success: bool
    nfev: int
    label: str


def _grid() -> np.ndarray:
    """Starting points in φ: sds 0.1-5 (relative to σ, x standardised), corr -0.8, 0, 0.8,
    and the faces: perfectly correlated (φ3 = 0), no intercept variance, none at all."""
    sds = (0.1, 0.4, 1.5, 5.0)
    pts = [
        (s1, r * s2, s2 * math.sqrt(1 - r * r)) for s1 in sds for s2 in sds for r in (-0.8, 0, 0.8)
    ]
    pts += [(s1, r * s2, 0.0) for s1 in sds for s2 in sds for r in (-1, 1)]
    pts += [(0.0, s2, 0.0) for s2 in sds] + [(0.0, 0.0, 0.0)]
    return np.array(pts)


_FACES = {"interior": (0, 1, 2), "corr=±1": (0, 1), "intercept var=0": (1,)}


def _local(core: _Core, reml: bool, x0: np.ndarray, face: str) -> _Optimum:
    """A tight local search with the exact gradient over the free φ of a face."""
    free = list(_FACES[face])
    base = np.zeros(3)
    count = [0]

    def fun(p: np.ndarray) -> tuple[float, np.ndarray]:
        count[0] += 1
        phi = base.copy()
        phi[free] = p
        value, grad = _value_grad(core, phi, reml)
        if not np.isfinite(value):
            return math.inf, np.zeros(len(free))
        return value, grad[free]

    x, value, ok = _bfgs(fun, np.asarray(x0, dtype=float)[free])
    phi = base.copy()
    phi[free] = x
    return _Optimum(phi, value, ok, count[0], face)


def _bfgs(fun: Callable, x0: np.ndarray, *, max_iter: int = 400) -> tuple[np.ndarray, float, bool]:
    """BFGS with backtracking (Armijo) line search; stops like L-BFGS-B with ftol = 1e-15.

    Written out because the problem has at most three unknowns and scipy's L-BFGS-B
    wakes OpenBLAS worker threads that then spin on the second core, doubling the
    CPU time of a 20 ms fit. Returns (x, f, converged).
    """
    x = x0.copy()
    f, g = fun(x)
    eye = np.eye(len(x))
    h = eye / max(1.0, float(np.abs(g).max()))  # first step at most 1 in each φ
    scaled = False
    for _ in range(max_iter):
        if not np.abs(g).max() > 1e-10:
            return x, f, True
        p = -(h @ g)
        slope = float(g @ p)
        if not slope < 0:  # lost descent: restart from steepest descent
            h, scaled = eye / max(1.0, float(np.abs(g).max())), False
            p = -(h @ g)
            slope = float(g @ p)
        t = 1.0
        for _ in range(60):
            fn, gn = fun(x + t * p)
            if fn <= f + 1e-4 * t * slope:
                break
            curv = fn - f - slope * t  # quadratic interpolation, safeguarded
            t_new = -slope * t * t / (2 * curv) if math.isfinite(curv) and curv > 0 else 0.1 * t
            t = min(max(t_new, 0.1 * t), 0.5 * t)
        else:
            return x, f, bool(np.abs(g).max() < 1e-3)  # no decrease left: numerically optimal
        s, y = t * p, gn - g
        sy = float(s @ y)
        x, f_old, f, g = x + s, f, fn, gn
        if f_old - f <= 1e-15 * max(abs(f_old), abs(f), 1.0):
            return x, f, True
        if sy > 1e-12 * math.sqrt(float(s @ s) * float(y @ y)):
            if not scaled:  # Nocedal & Wright (6.20): scale before the first update
                h, scaled = eye * (sy / float(y @ y)), True
            hy = h @ y
            h = h + ((sy + float(y @ hy)) / sy**2) * np.outer(s, s)
            h = h - (np.outer(hy, s) + np.outer(s, hy)) / sy
    return x, f, False


def _search(core: _Core, reml: bool, *, starts: int = 3) -> list[_Optimum]:
    """Local searches from lme4's start (in standard units), the best grid points and on
    each boundary face."""
    grid = _grid()
    values = _values(core, grid, reml)
    interior = np.flatnonzero(grid[:, 2] != 0)
    picks = [_START.copy()]
    picks += [grid[i] for i in interior[np.argsort(values[interior])][:starts]]
    seen: list[np.ndarray] = []
    runs = []
    for x0 in picks:
        if any(np.max(np.abs(x0 - s)) < 1e-3 for s in seen):
            continue
        seen.append(x0)
        runs.append(_local(core, reml, x0, "interior"))
    for face, mask in (("corr=±1", grid[:, 2] == 0), ("intercept var=0", grid[:, 0] == 0)):
        idx = np.flatnonzero(mask)
        runs.append(_local(core, reml, grid[idx[np.argmin(values[idx])]], face))
    runs.append(_Optimum(np.zeros(3), float(values[-1]), True, 0, "no random effects"))
    return runs


def _optimise(core: _Core, reml: bool) -> tuple[_Optimum, str]:
    """The best of several local searches.

    On very large data (more than 4,000 clusters) the grid and the multistart run
    on a deterministic subset of 2,000 clusters; the full data are then searched
    from the subset's optimum and from lme4's start, and on the boundary faces
    too when the subset's optimum is near one.
    """
    g = len(core.l11)
    if g <= 2 * _SUBSET:
        runs = _search(core, reml)
        note = f"BFGS from lme4's start, grid starts and boundary faces: {len(runs)} searches"
    else:
        idx = np.unique(np.linspace(0, g - 1, _SUBSET).round().astype(np.intp))
        share = core.rss * (core.l11[idx] ** 2).sum() / (core.l11**2).sum()
        sub = sorted(_search(core.subset(idx, share), reml), key=lambda r: r.value)
        runs = [_local(core, reml, x0, "interior") for x0 in (sub[0].phi, _START)]
        if min(abs(sub[0].phi[0]), abs(sub[0].phi[2])) < 0.05:
            faces = [r for r in sub if r.label in ("corr=±1", "intercept var=0")]
            runs += [_local(core, reml, r.phi, r.label) for r in faces]
        note = (
            f"BFGS: basin located on {len(idx)} of {g} clusters ({len(sub)} searches, "
            f"{sum(r.nfev for r in sub)} evaluations), then {len(runs)} searches on all"
        )
    best = min(runs, key=lambda r: r.value)
    # an exact boundary optimum is preferred to an interior point that only approaches it
    faces = [r for r in runs if r.label != "interior" and r.value <= best.value + 1e-10]
    if faces:
        best = min(faces, key=lambda r: r.value)
    polished = _polish(core, reml, best)
    note += (
        f", {sum(r.nfev for r in runs)} evaluations; best: {best.label}, then Newton "
        f"({polished.nfev - best.nfev} evaluations)"
    )
    best = polished
    return best, note


def _polish(core: _Core, reml: bool, best: _Optimum, *, steps: int = 8) -> _Optimum:
    """Newton steps (exact gradient, central-difference Hessian) on the optimum's face.

    BFGS stops when the criterion no longer falls in its 15th digit, which leaves φ
    uncertain in about its 8th; a few Newton steps pin it down to rounding, so that
    the same data in other units give the same estimates to ~1e-12, not ~1e-7. A
    step is kept only if it shrinks the gradient without raising the criterion.
    """
    free = list(_FACES.get(best.label, ()))
    if not free:
        return best
    phi, value = best.phi.copy(), best.value
    _, grad = _value_grad(core, phi, reml)
    g, count = grad[free], 1
    for _ in range(steps):
        size = float(np.max(np.abs(g)))
        if not size > 0:
            break
        h = 1e-5 * np.maximum(1.0, np.abs(phi[free]))
        hess = np.empty((len(free), len(free)))
        for k, i in enumerate(free):
            e = np.zeros(3)
            e[i] = h[k]
            up, down = _value_grad(core, phi + e, reml)[1], _value_grad(core, phi - e, reml)[1]
            hess[:, k] = (up - down)[free] / (2 * h[k])
        count += 2 * len(free)
        hess = (hess + hess.T) / 2
        if not (np.all(np.isfinite(hess)) and np.linalg.eigvalsh(hess)[0] > 0):
            break
        trial = phi.copy()
        trial[free] -= np.linalg.solve(hess, g)
        v, gr = _value_grad(core, trial, reml)
        count += 1
        if not (v <= value + 1e-13 * max(1.0, abs(value)) and np.max(np.abs(gr[free])) < size):
            break
        moved = float(np.max(np.abs(trial - phi)))
        phi, value, g = trial, v, gr[free]
        if moved <= 1e-15 * max(1.0, float(np.max(np.abs(phi)))):
            break
    return _Optimum(phi, value, best.success, best.nfev + count, best.label)


# --------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class EngineCheck:
    """Another engine's criterion judged against shrink's own optimum on the same data."""

    shrink_criterion: float
    shortfall: float  # the engine's criterion minus shrink's: > 0 means it stopped short


@dataclass(frozen=True)
class Fits:
    """A fitted model as plain arrays; cluster rows follow ``ClusteredData.labels``.

    ``criterion`` is lme4's REML criterion (REML) or deviance (ML); ``theta`` is
    lme4's θ (relative Cholesky factor), ``re_cov`` = σ² T T'; ``mixed`` = fixed +
    random per cluster; ``ols`` has NaN slopes where a cluster has none;
    ``engine_check`` is set when an engine other than shrink fitted the model.
    """

    method: str
    engine: str
    fixed: np.ndarray
    fixed_cov: np.ndarray
    theta: np.ndarray
    re_cov: np.ndarray
    sigma2: float
    criterion: float
    singular: bool
    converged: bool
    optimizer: str
    mixed: np.ndarray
    ols: np.ndarray
    sizes: np.ndarray
    resid_quantiles: np.ndarray
    warnings: tuple[str, ...]
    n_obs: int
    n_clusters: int
    engine_check: EngineCheck | None = None
    formula: Formula | None = None  # the formula asked for (None: y ~ x + (x | cluster))

    @property
    def fixed_se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.fixed_cov))

    @property
    def re_sd(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.re_cov), 0.0))

    @property
    def re_corr(self) -> float:
        """The correlation from θ: θ2 / hypot(θ2, θ3), exact and in [-1, 1] in any units
        (from re_cov it can round to -1.0000000000000027); NaN when a variance is 0."""
        t1, t2, t3 = (float(v) for v in self.theta)
        h = math.hypot(t2, t3)
        if t1 == 0 or h == 0:
            return math.nan
        return float(np.clip(math.copysign(1.0, t1) * t2 / h, -1.0, 1.0))


def is_singular(theta: np.ndarray) -> bool:
    """lme4's isSingular(): a bounded θ (θ1 or θ3) within 1e-4 of zero."""
    return bool(abs(theta[0]) < SINGULAR_TOL or abs(theta[2]) < SINGULAR_TOL)


BOUNDARY_WARNING = (
    "boundary (singular) fit: a random-effect variance is estimated as zero or the "
    "intercept-slope correlation as ±1; the data do not support the full model"
)


def singular_warning(stats: SufficientStats, theta: np.ndarray) -> str | None:
    """What to say about a boundary fit, or None; see _singular_warning."""
    return _singular_warning(_core(stats), np.asarray(theta, dtype=float))


def _singular_warning(core: _Core, theta: np.ndarray) -> str | None:
    """lme4's test looks at θ on the user's scale, where θ2 and θ3 carry the units of x
    (θ3 = sd of the slope given the intercept at x = 0, relative to σ): with x in large
    units, or far from 0, θ3 drops below 1e-4 although nothing is on the boundary. So
    the verdict is checked in standardised units (x and y centred and scaled)."""
    lme4 = is_singular(theta)
    std = is_singular(_phi_from_theta(core, theta))
    if lme4 and (std or abs(theta[0]) < SINGULAR_TOL):
        return BOUNDARY_WARNING
    sd = math.ldexp(core.scale, core.x_exp)
    if lme4:
        if abs(theta[2]) * sd >= SINGULAR_TOL:
            cause = f"x is measured in large units (sd {sd:.3g})"
        else:
            mean = math.ldexp(core.shift, core.x_exp)
            cause = f"of the units and origin of x (mean {mean:.3g}, sd {sd:.3g})"
        return (
            f"theta[3] = {theta[2]:.3g} is below lme4's 1e-4 singularity threshold only "
            f"because {cause}; the fit in standardised units is not singular"
        )
    if std:
        return (
            "boundary (singular) fit in standardised units (a relative sd within 1e-4 of 0), "
            "although lme4's test, which depends on the units of x, does not flag it; the "
            "data barely support the full model"
        )
    return None


def design_warnings(n_obs: int, n_clusters: int, singular: str | None) -> list[str]:
    """Plain-English warnings shared by both engines (lme4 refuses the first case);
    ``singular`` is the boundary warning from singular_warning, if any."""
    out = []
    if n_obs <= 2 * n_clusters:
        out.append(
            f"the data have {n_obs} observations for {2 * n_clusters} random effects, so the "
            "random-effect variances are barely identified; estimates are fragile"
        )
    if singular:
        out.append(singular)
    return out


def cluster_fields(
    data: ClusteredData,
    stats: SufficientStats,
    mixed: np.ndarray,
    sigma2: float,
    ols: np.ndarray | None = None,
) -> dict:
    """The Fits fields every engine fills the same way from its cluster estimates."""
    return {
        "mixed": mixed,
        "ols": fit_ols(stats) if ols is None else ols,
        "sizes": stats.n.copy(),
        "resid_quantiles": scaled_resid_quantiles(data, stats, mixed, sigma2),
        "n_obs": stats.n_obs,
        "n_clusters": stats.n_clusters,
    }


def scaled_resid_quantiles(
    data: ClusteredData, stats: SufficientStats, coef: np.ndarray, sigma2: float
) -> np.ndarray:
    """min, quartiles and max of (y - X_j coef_j) / σ (numpy's default = R's type 7),
    computed in the units of ``stats`` (exact powers of two) so no product overflows."""
    kx, ky = stats.x_exp, stats.y_exp
    codes = np.asarray(data.codes, dtype=np.intp)
    y = np.ldexp(np.asarray(data.y, float), -ky)
    x = np.ldexp(np.asarray(data.x, float), -kx)
    c = np.ldexp(np.asarray(coef, float), np.array([-ky, kx - ky]))
    resid = y - c[codes, 0] - c[codes, 1] * x
    sd = math.sqrt(math.ldexp(sigma2, -2 * ky))
    return np.quantile(resid / sd, [0.0, 0.25, 0.5, 0.75, 1.0])


def _coef_scaled(core: _Coords, coef: np.ndarray) -> np.ndarray:
    """Coefficients (..., 2), or intercepts alone (..., 1), in standard coordinates to
    the stats' units."""
    intercept = coef[..., 0] * core.y_scale + core.y_shift
    if coef.shape[-1] == 1:
        return intercept[..., None]
    slope = coef[..., 1] * (core.y_scale / core.scale)
    return np.stack((intercept - core.shift * slope, slope), axis=-1)


def _cov_scaled(core: _Coords, rel: np.ndarray, sigma2_std: float) -> np.ndarray:
    """σ² times a relative covariance (2x2, or 1x1 for intercepts alone) in standard
    coordinates, in the stats' units."""
    p = len(rel)
    a_inv = core.a_inv[:p, :p]
    return (sigma2_std * core.y_scale**2) * (a_inv @ rel @ a_inv.T)


def _blups(lam: tuple, s: _Solved) -> np.ndarray:
    """Cluster coefficients β + Λ g_j (b_j = T u_j), (B, G, 2) or (G, 2), standard coordinates."""
    g1, g2 = s.g
    c0 = s.beta[..., :1] + lam[0] * g1 + lam[1] * g2
    c1 = s.beta[..., 1:] + lam[1] * g1 + lam[2] * g2
    return np.stack((c0, c1), axis=-1)


def fit_mixed(data: ClusteredData, *, reml: bool = True) -> Fits:
    """Fit y ~ x + (x | cluster) by REML (default) or ML, with lme4's criterion."""
    stats = sufficient_stats(data)
    core = _core(stats)
    best, note = _optimise(core, reml)
    phi = best.phi
    lam = _lam_scalar(phi)
    s = _solve(core, lam, reml)
    if not np.isfinite(s.value):
        raise FitError("the mixed model could not be evaluated at its optimum")
    sigma2_std = float(s.r2 / s.dof)
    theta = _theta_from_phi(core, phi)
    _, grad = _value_grad(core, phi, reml)
    converged = bool(best.success or np.max(np.abs(grad)) < 1e-3)
    i11, i12, i22 = (float(v) for v in s.vinv)
    vinv = np.array([[i11, i12], [i12, i22]])
    lam2 = np.array([[lam[0], lam[1]], [lam[1], lam[2]]])
    fixed = _to_user("fixed effects", _coef_scaled(core, s.beta), core.coef_exp)
    fixed_cov = _to_user(
        "variance of the fixed effects", _cov_scaled(core, vinv, sigma2_std), core.cov_exp
    )
    re_cov = _to_user("random-effect covariance", _cov_scaled(core, lam2, sigma2_std), core.cov_exp)
    sigma2 = float(_to_user("residual variance", sigma2_std * core.y_scale**2, 2 * core.y_exp))
    mixed = _to_user("cluster estimates", _coef_scaled(core, _blups(lam, s)), core.coef_exp)
    ols = fit_ols(stats)
    mixed = _weakly_pooled(stats, theta, fixed, mixed, ols)
    warns = design_warnings(core.n_obs, len(core.l11), _singular_warning(core, theta))
    if stats.n.max() == 1:
        converged = False
        warns.append(
            "every cluster has a single observation, so the random effects cannot be told "
            "apart from the residual: the criterion has no proper optimum and the estimates "
            "are arbitrary"
        )
    elif not converged and _runaway(phi, sigma2_std):
        converged = False
        warns.append(
            "the residual variance is estimated at almost zero because the random effects "
            f"absorb the data (largest relative sd {np.max(np.abs(phi)):.3g}): the criterion "
            "has no proper optimum here and the estimates are not meaningful"
        )
    elif not converged:
        worst = np.max(np.abs(grad))
        warns.append(f"the optimiser did not converge (largest gradient {worst:.2g})")
    return Fits(
        method="REML" if reml else "ML",
        engine="shrink",
        fixed=fixed,
        fixed_cov=fixed_cov,
        theta=theta,
        re_cov=re_cov,
        sigma2=sigma2,
        criterion=float(s.value) + core.offset(reml),
        singular=is_singular(theta),
        converged=converged,
        optimizer=note,
        warnings=tuple(warns),
        **cluster_fields(data, stats, mixed, sigma2, ols),
    )


def fixed_cov_at(stats: SufficientStats, theta: np.ndarray, sigma2: float) -> np.ndarray:
    """lme4's covariance of the fixed effects, σ² (X'V^-1X)^-1 with V = I + Z Λ(θ) Z',
    at any θ and σ² (lme4's θ and the user's units): what vcov() reports at lme4's fit."""
    core = _core(stats)
    phi = _phi_from_theta(core, np.asarray(theta, dtype=float))
    s = _solve(core, _lam_scalar(phi), reml=True)
    i11, i12, i22 = (float(v) for v in s.vinv)
    sigma2_std = math.ldexp(float(sigma2), -2 * core.y_exp) / core.y_scale**2
    cov = _cov_scaled(core, np.array([[i11, i12], [i12, i22]]), sigma2_std)
    return _to_user("variance of the fixed effects", cov, core.cov_exp)


def cluster_blocks(stats: SufficientStats) -> np.ndarray:
    """(G, 2, 2) S_j = X_j'X_j in coordinates (1, x / 2**x_exp), the units ``stats`` keeps."""
    n = stats.n.astype(float)
    blocks = np.empty((len(n), 2, 2))
    blocks[:, 0, 0] = n
    blocks[:, 0, 1] = blocks[:, 1, 0] = n * stats.x_mean
    blocks[:, 1, 1] = stats.sum_xx
    return blocks


def relative_factor_cov(stats: SufficientStats, theta: np.ndarray) -> np.ndarray:
    """lme4's Λ = T T' in the coordinates of ``cluster_blocks`` (x / 2**x_exp)."""
    t = np.array([[theta[0], 0.0], [theta[1], theta[2]]], dtype=float)
    t[1] = np.ldexp(t[1], stats.x_exp)  # the slope row: b' = diag(1, 2**x_exp) b
    return t @ t.T


def _weakly_pooled(
    stats: SufficientStats,
    theta: np.ndarray,
    fixed: np.ndarray,
    mixed: np.ndarray,
    ols: np.ndarray,
) -> np.ndarray:
    """Cluster estimates where the random effects dwarf the residual, recomputed stably.

    mixed_j = ols_j - (I + Λ S_j)⁻¹ (ols_j - fixed) is the same number as fixed +
    Λ g_j, but where Λ S_j is large (little pooling: e.g. slope SDs 10⁶ times σ) the
    latter cancels catastrophically (slope errors of 10³ seen) while the former does
    not. Clusters without an OLS estimate, or with strong pooling, keep ``mixed``.
    """
    blocks = cluster_blocks(stats)
    lam = relative_factor_cov(stats, theta)
    ls = lam[None] @ blocks
    weak = np.isfinite(ols).all(axis=1) & (np.trace(ls, axis1=1, axis2=2) > 1.0)
    if not weak.any():
        return mixed
    scale = np.array([1.0, math.ldexp(1.0, stats.x_exp)])  # b' = b * scale (per column)
    with np.errstate(over="ignore", invalid="ignore"):
        dev = (ols[weak] - fixed) * scale
        keep = np.linalg.solve(np.eye(2)[None] + ls[weak], dev[..., None])[..., 0] / scale
        stable = ols[weak] - keep
    out = mixed.copy()
    ok = np.isfinite(stable).all(axis=1)
    out[np.flatnonzero(weak)[ok]] = stable[ok]
    return out


def _runaway(phi: np.ndarray, sigma2_std: float) -> bool:
    """The optimum is at infinity: relative sds beyond 1e4, or σ² below 1e-10 of var(y)
    (var(y) is 1 in standard coordinates).

    Seen only in designs lme4 refuses (e.g. every cluster a single observation),
    where the criterion keeps falling as the random effects take over from σ².
    """
    return bool(np.max(np.abs(phi)) > 1e4 or sigma2_std < 1e-10)


# --------------------------------------------------------------------------------------
# The pooling path


def pooling_path(stats: SufficientStats, fits: Fits, kappas) -> np.ndarray:
    """Cluster coefficients (K, G, 2) of the models with relative covariance κ·T T'.

    T is lme4's relative covariance factor (``fits.theta``); κ = 1 gives
    ``fits.mixed``, κ -> 0 complete pooling (every cluster at the pooled OLS line).
    Every κ (finite, > 0) is exactly that model: β(κ) and the BLUPs are re-solved
    with the block formulas, with no ridge; σ² plays no part. As κ -> ∞ the models
    tend to no pooling (each cluster's OLS, where X_j has full rank) when T T' has
    full rank; for a singular fit they do not: along the zero-variance direction
    every cluster stays pooled at any κ (see pipeline.pooling_path_frames).

    The formulas run in the principal axes of T T' (standard coordinates), where a
    zero variance is an exact zero: computed in the original axes, the O(1/κ) part
    along the zero-variance direction is a difference of O(1) numbers, which cost
    CO2's path ~1e-7 relative at κ = 1e8.
    """
    k = np.asarray(kappas, dtype=float).reshape(-1)
    if not np.all(np.isfinite(k) & (k > 0)):
        raise UsageError("the pooling path needs finite positive values of kappa")
    core = _core(stats)
    phi = _phi_from_theta(core, np.asarray(fits.theta, dtype=float))
    rot, lam_rot, det = _principal_axes(phi)
    turned = _rotate(core, rot)
    kk = k[:, None]
    lams = (kk * lam_rot[0], kk * lam_rot[1], kk * lam_rot[2], kk * kk * det)
    step = max(1, _CHUNK // len(core.l11))
    out = []
    for i in range(0, len(k), step):
        part = tuple(v[i : i + step] for v in lams)
        coef = _blups(part, _solve(turned, part, reml=fits.method == "REML")) @ rot.T
        out.append(_to_user("pooling path", _coef_scaled(core, coef), core.coef_exp))
    return np.concatenate(out)


def _principal_axes(phi: np.ndarray) -> tuple[np.ndarray, tuple, float]:
    """R (rotation) with R'ΛR as diagonal as rounding allows, its entries and det Λ.

    For rank-1 Λ = v v' (φ3 = 0) R'ΛR = diag(|v|², 0) is built exactly.
    """
    p1, p2, p3 = (float(v) for v in phi)
    if p3 == 0.0 or p1 == 0.0:
        v = (p1, p2) if p1 != 0.0 else (0.0, math.hypot(p2, p3))
        nv = math.hypot(*v)
        if nv == 0.0:
            return np.eye(2), (0.0, 0.0, 0.0), 0.0
        rot = np.array([[v[0], -v[1]], [v[1], v[0]]]) / nv
        return rot, (nv * nv, 0.0, 0.0), 0.0
    t = np.array([[p1, 0.0], [p2, p3]])
    lam = t @ t.T
    angle = 0.5 * math.atan2(2.0 * lam[0, 1], lam[0, 0] - lam[1, 1])
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    u = rot.T @ t
    m = u @ u.T
    return rot, (m[0, 0], m[0, 1], m[1, 1]), (p1 * p3) ** 2


def _rotate(core: _Core, rot: np.ndarray) -> _Core:
    """The same clusters in coordinates c' = R'c: X_j R = Q_j L'_j with L'_j lower
    triangular (a Givens rotation per cluster of L_j'R), z'_j = Q_j'z_j."""
    l11, l21, l22 = core.l11, core.l21, core.l22
    b11 = l11 * rot[0, 0] + l21 * rot[1, 0]
    b12 = l11 * rot[0, 1] + l21 * rot[1, 1]
    b21, b22 = l22 * rot[1, 0], l22 * rot[1, 1]
    r = np.hypot(b11, b21)
    safe = np.where(r > 0, r, 1.0)
    c = np.where(r > 0, b11 / safe, 1.0)
    s = np.where(r > 0, b21 / safe, 0.0)
    return dataclasses.replace(
        core,
        l11=r,
        l21=c * b12 + s * b22,
        l22=c * b22 - s * b12,
        z1=c * core.z1 + s * core.z2,
        z2=c * core.z2 - s * core.z1,
    )


# --------------------------------------------------------------------------------------
# Random intercepts: y ~ x + (1 | cluster) and y ~ 1 + (1 | cluster)
#
# One variance parameter t = θ² (the intercept variance relative to σ²). Cluster j
# enters through a_j = n_j / (1 + t n_j) only: with u_j = (1, x̄_j),
#     X'V⁻¹X = Σ a_j u_j u_j' + diag(0, Sxx),  X'V⁻¹y = Σ a_j u_j ȳ_j + (0, Sxy),
#     r² = RSS_within(β1) + Σ a_j e_j²,  e_j = ȳ_j - u_j'β,
# where Sxx, Sxy are the pooled within-cluster sums. The criterion, its first and
# second derivatives in t are closed forms (da_j/dt = -a_j²); every local minimum is
# bracketed by a sign change of the exact derivative on a grid of t and pinned down
# by safeguarded Newton steps, and t = 0 (a singular fit) is a candidate whenever
# the derivative there is not negative. So the optimum is found exactly.

_RI_GRID = np.concatenate([[0.0], np.logspace(-12.0, 12.0, 97)])  # t = θ², θ in 1e-6..1e6


@dataclass(frozen=True)
class _InterceptCore(_Coords):
    """Clusters reduced to counts and standardised means, plus the pooled within-cluster
    sums (standard coordinates as in _Core; p = 2 with a fixed slope, 1 without)."""

    n: np.ndarray
    xb: np.ndarray  # (x̄_j - shift) / scale; zeros when p = 1
    yb: np.ndarray  # (ȳ_j - y_shift) / y_scale
    sxx: float  # Σ_j Σ_i (x - x̄_j)², standardised (0 when p = 1)
    sxy: float
    rss_within: float  # Σ (y - ȳ_j - βw (x - x̄_j))² at the within slope βw (p = 2)
    p: int
    n_obs: int
    shift: float
    scale: float
    y_shift: float
    y_scale: float
    x_exp: int
    y_exp: int

    @property
    def beta_within(self) -> float:
        """The no-pooling slope, lm(y ~ x + cluster): NaN when x never varies in a cluster."""
        return self.sxy / self.sxx if self.sxx > 0 else math.nan

    def offset(self, reml: bool) -> float:
        return self._offset(reml, self.p)


def _intercept_core(stats: SufficientStats, slope: bool) -> _InterceptCore:
    n = stats.n.astype(float)
    n_obs = int(stats.n.sum())
    p = 2 if slope else 1
    if stats.n_clusters < 2:
        raise DataError(f"the data have {stats.n_clusters} cluster; at least two are needed")
    if n_obs <= p:
        raise DataError(f"the data have {n_obs} observations; at least {p + 1} are needed")
    y_shift, y_total = _spread(stats.n, stats.y_mean, stats.cyy, n_obs)
    if _constant(y_total, y_shift, n_obs):
        raise DataError("y is constant in every row, so there is nothing to model")
    y_scale = math.sqrt(y_total / n_obs)
    yb = (stats.y_mean - y_shift) / y_scale
    syy = float(stats.cyy.sum()) / y_scale**2
    if not slope:
        return _InterceptCore(
            n, np.zeros_like(n), yb, 0.0, 0.0, syy, 1, n_obs, 0.0, 1.0, y_shift, y_scale,
            stats.x_exp, stats.y_exp,
        )  # fmt: skip
    shift, total = _spread(stats.n, stats.x_mean, stats.cxx, n_obs)
    if _constant(total, shift, n_obs):
        raise DataError("x is constant in every row, so no slope can be estimated")
    scale = math.sqrt(total / n_obs)
    varies = stats.x_varies
    sxx = float(np.where(varies, stats.cxx, 0.0).sum()) / scale**2
    sxy = float(np.where(varies, stats.cxy, 0.0).sum()) / (scale * y_scale)
    rss = max(syy - sxy * sxy / sxx, 0.0) if sxx > 0 else syy
    return _InterceptCore(
        n, (stats.x_mean - shift) / scale, yb, sxx, sxy, rss, 2, n_obs, shift, scale, y_shift,
        y_scale, stats.x_exp, stats.y_exp,
    )  # fmt: skip


@dataclass
class _InterceptSolved:
    value: np.ndarray  # criterion (standard coordinates), (B,)
    d1: np.ndarray  # its derivative in t
    d2: np.ndarray  # its second derivative in t
    beta: np.ndarray  # (B, p), standard coordinates
    c: np.ndarray  # (B, p): X'V⁻¹X in the weighted-centred basis is diag(c)
    mean: np.ndarray  # (B,): Σ a x̄ / Σ a, the centring of that basis
    r2: np.ndarray
    e: np.ndarray  # (B, G): ȳ_j - u_j'β
    a: np.ndarray  # (B, G)


def _intercept_solve(core: _InterceptCore, t: np.ndarray, reml: bool) -> _InterceptSolved:
    """Criterion, first and second derivatives in t, β and r² for many t at once.

    The fixed effects are solved in the basis (1, x̄_j - m) with m the a-weighted mean
    of x̄_j, where X'V⁻¹X is diagonal, so no 2x2 determinant cancels.
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        t = np.asarray(t, dtype=float).reshape(-1, 1)
        n, xb, yb = core.n, core.xb, core.yb
        a = n / (1.0 + t * n)
        a2, a3 = a * a, a * a * a
        s0 = a.sum(-1)
        y0 = (a * yb).sum(-1) / s0
        if core.p == 2:
            m = (a * xb).sum(-1) / s0
            dev = xb - m[:, None]
            c1 = (a * dev * dev).sum(-1) + core.sxx
            b1 = ((a * dev * yb).sum(-1) + core.sxy) / c1
            b0 = y0 - m * b1
            e = yb - b0[:, None] - b1[:, None] * xb
            bw = core.beta_within if core.sxx > 0 else 0.0
            r2 = core.rss_within + core.sxx * (b1 - bw) ** 2 + (a * e * e).sum(-1)
            h = 1.0 / s0[:, None] + dev * dev / c1[:, None]
            logdet = np.log(s0) + np.log(c1)
            d00, d01, d11 = a2.sum(-1), (a2 * dev).sum(-1), (a2 * dev * dev).sum(-1)
            trdd = (d00 / s0) ** 2 + 2 * d01 * d01 / (s0 * c1) + (d11 / c1) ** 2
            q0, q1 = (a2 * e).sum(-1), (a2 * dev * e).sum(-1)
            qcq = q0 * q0 / s0 + q1 * q1 / c1
            beta = np.stack((b0, b1), -1)
            c = np.stack((s0, c1), -1)
        else:
            m = np.zeros_like(s0)
            e = yb - y0[:, None]
            r2 = core.rss_within + (a * e * e).sum(-1)
            h = 1.0 / s0[:, None]
            logdet = np.log(s0)
            trdd = (a2.sum(-1) / s0) ** 2
            q0 = (a2 * e).sum(-1)
            qcq = q0 * q0 / s0
            beta = y0[:, None]
            c = s0[:, None]
        k = core.n_obs - core.p if reml else core.n_obs
        r1 = -(a2 * e * e).sum(-1)
        r2nd = 2.0 * (a3 * e * e).sum(-1) - 2.0 * qcq
        value = np.log1p(t * n).sum(-1) + k * (1.0 + _LOG_2PI + np.log(r2 / k))
        d1 = s0 + k * r1 / r2
        d2 = -a2.sum(-1) + k * (r2nd / r2 - (r1 / r2) ** 2)
        if reml:
            value = value + logdet
            d1 = d1 - (a2 * h).sum(-1)
            d2 = d2 + 2.0 * (a3 * h).sum(-1) - trdd
    return _InterceptSolved(value, d1, d2, beta, c, m, r2, e, a)


def _intercept_values(core: _InterceptCore, t: np.ndarray, reml: bool):
    """(value, d1) at many t, in blocks that bound memory."""
    step = max(1, _CHUNK // len(core.n))
    parts = [_intercept_solve(core, t[i : i + step], reml) for i in range(0, len(t), step)]
    return np.concatenate([s.value for s in parts]), np.concatenate([s.d1 for s in parts])


def _root(core: _InterceptCore, reml: bool, lo: float, hi: float) -> tuple[float, int]:
    """The zero of the criterion's derivative in [lo, hi] (negative at lo, positive at
    hi): Newton steps with the exact second derivative, bisection where Newton would
    leave the bracket, until the bracket or the step is at rounding level."""
    t = math.sqrt(lo * hi) if lo > 0 else hi / 2
    count = 0
    for _ in range(200):
        s = _intercept_solve(core, np.array([t]), reml)
        count += 1
        g, h = float(s.d1[0]), float(s.d2[0])
        if g == 0.0 or not math.isfinite(g):
            break
        if g < 0:
            lo = t
        else:
            hi = t
        step = g / h if h > 0 else math.nan
        new = t - step
        if not lo < new < hi:
            new = math.sqrt(lo * hi) if lo > 0 and hi / lo > 4 else (lo + hi) / 2
        if abs(new - t) <= 4 * np.finfo(float).eps * t or hi - lo <= 4 * np.finfo(float).eps * hi:
            t = new
            break
        t = new
    return t, count


def _intercept_optimum(core: _InterceptCore, reml: bool) -> tuple[float, bool, str]:
    """The t = θ² of the lowest criterion: (t, at infinity, description)."""
    values, d1 = _intercept_values(core, _RI_GRID, reml)
    candidates: list[tuple[float, float, str]] = []
    if not d1[0] < 0:  # no descent from t = 0: a boundary minimum
        candidates.append((float(values[0]), 0.0, "boundary t = 0"))
    count = len(_RI_GRID)
    down = np.flatnonzero((d1[:-1] < 0) & (d1[1:] >= 0))
    for i in down:
        t, used = _root(core, reml, float(_RI_GRID[i]), float(_RI_GRID[i + 1]))
        count += used
        v = float(_intercept_solve(core, np.array([t]), reml).value[0])
        candidates.append((v, t, "interior"))
    runaway = bool(d1[-1] < 0)
    if runaway or not candidates:
        candidates.append((float(values[-1]), float(_RI_GRID[-1]), "end of the grid"))
    finite = [c for c in candidates if math.isfinite(c[0])] or candidates
    best = min(finite, key=lambda c: c[0])
    zero = [c for c in finite if c[1] == 0.0 and c[0] <= best[0] + 1e-10]
    if zero:  # an exact boundary optimum is preferred to an interior point next to it
        best = zero[0]
    note = (
        f"exact 1-D search: derivative on a {len(_RI_GRID)}-point grid of theta^2, "
        f"{len(down)} bracketed minimum(s) solved by safeguarded Newton, t = 0 checked; "
        f"{count} evaluations; best: {best[2]}"
    )
    return best[1], runaway and best[1] == _RI_GRID[-1], note


@dataclass(frozen=True)
class InterceptFits:
    """A fitted random-intercept model, y ~ x + (1 | cluster) or y ~ 1 + (1 | cluster).

    Arrays have p = 2 columns (intercept, slope) with a fixed slope and 1 without;
    cluster rows follow ``ClusteredData.labels``. ``theta`` is lme4's θ (one number:
    the intercept sd relative to σ), ``re_var`` = σ² θ². ``mixed`` is coef() of lmer
    (intercept β0 + b_j; the slope is the common fixed slope). ``ols`` is no pooling:
    lm(y ~ x + cluster) (each cluster's intercept at the common within-cluster slope),
    or each cluster's mean for y ~ 1 + (1 | cluster); NaN where x never varies within a
    cluster (no within slope). ``shrinkage`` is σ²/n_j / (τ² + σ²/n_j) per cluster.
    """

    formula: Formula
    method: str
    engine: str
    fixed: np.ndarray
    fixed_cov: np.ndarray
    theta: np.ndarray
    re_var: float
    sigma2: float
    criterion: float
    singular: bool
    converged: bool
    optimizer: str
    mixed: np.ndarray
    ols: np.ndarray
    sizes: np.ndarray
    resid_quantiles: np.ndarray
    warnings: tuple[str, ...]
    n_obs: int
    n_clusters: int
    engine_check: EngineCheck | None = None

    @property
    def slope(self) -> bool:
        """True for y ~ x + (1 | cluster) (a fixed slope), False for y ~ 1 + (1 | cluster)."""
        return len(self.fixed) == 2

    @property
    def fixed_se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.fixed_cov))

    @property
    def re_sd(self) -> float:
        return math.sqrt(max(self.re_var, 0.0))

    @property
    def re_cov(self) -> np.ndarray:
        """The 1x1 random-effect covariance, [[τ²]]."""
        return np.array([[self.re_var]])

    @property
    def shrinkage(self) -> np.ndarray:
        """σ²/n_j / (τ² + σ²/n_j): the share of the way from a cluster's own estimate to
        the population value that its mixed estimate goes (1 for a singular fit)."""
        t = float(self.theta[0]) ** 2
        return 1.0 / (1.0 + t * self.sizes.astype(float))


def fit_intercept(
    data: ClusteredData, *, reml: bool = True, slope: bool = True, formula: Formula | None = None
) -> InterceptFits:
    """Fit y ~ x + (1 | cluster) (``slope``) or y ~ 1 + (1 | cluster) by REML or ML.

    ``formula`` (a random-intercept shrinkcli.formula.Formula) decides ``slope`` and
    names the columns in the summary; without it the data's column names are used.
    """
    from shrinkcli.formula import Formula

    if formula is not None:
        if formula.random_slope:
            raise UsageError(f"{formula} has a random slope: fit it with fit_mixed")
        slope = formula.x is not None
    else:
        y, x, g = data.names
        formula = Formula(y, x if slope else None, g, False)
    stats = sufficient_stats(data)
    core = _intercept_core(stats, slope)
    t, runaway, note = _intercept_optimum(core, reml)
    s = _intercept_solve(core, np.array([t]), reml)
    if not np.isfinite(s.value[0]):
        raise FitError("the mixed model could not be evaluated at its optimum")
    dof = core.n_obs - core.p if reml else core.n_obs
    sigma2_std = float(s.r2[0]) / dof
    theta = np.array([math.sqrt(t)])
    beta = s.beta[0]
    e = s.e[0]
    blup = t * s.a[0] * e  # b_j = θ² n_j / (1 + θ² n_j) e_j
    # fixed-effect covariance: diag(c) in the basis (1, x̄ - m), taken back to (1, x̄)
    if core.p == 2:
        m = float(s.mean[0])
        c0, c1 = (float(v) for v in s.c[0])
        vinv = np.array([[1 / c0 + m * m / c1, -m / c1], [-m / c1, 1 / c1]])
    else:
        vinv = np.array([[1 / float(s.c[0, 0])]])
    p = core.p
    exp = core.coef_exp[:p]
    y_scale = core.y_scale
    fixed = _to_user("fixed effects", _coef_scaled(core, beta), exp)
    fixed_cov = _to_user(
        "variance of the fixed effects", _cov_scaled(core, vinv, sigma2_std), core.cov_exp[:p, :p]
    )
    sigma2 = float(_to_user("residual variance", sigma2_std * y_scale**2, 2 * core.y_exp))
    re_var = float(_to_user("random-intercept variance", t * sigma2_std * y_scale**2,
                            2 * core.y_exp))  # fmt: skip
    cl = np.tile(beta, (len(core.n), 1))
    cl[:, 0] += blup
    mixed = _to_user("cluster estimates", _coef_scaled(core, cl), exp)
    bw = core.beta_within
    if p == 2:
        nopool = np.column_stack((core.yb - bw * core.xb, np.full(len(core.n), bw)))
    else:
        nopool = core.yb[:, None]
    ols = _to_user("no-pooling estimates", _coef_scaled(core, nopool), exp)
    warns = []
    if core.n_obs <= len(core.n):
        warns.append(
            f"the data have {core.n_obs} observations for {len(core.n)} random effects, so the "
            "random-intercept variance is barely identified; estimates are fragile"
        )
    singular = bool(theta[0] < SINGULAR_TOL)
    if singular:
        warns.append(
            "boundary (singular) fit: the random-intercept variance is estimated as zero; the "
            "clusters differ no more than the residual noise explains"
        )
    converged = True
    if stats.n.max() == 1:
        converged = False
        warns.append(
            "every cluster has a single observation, so the random effects cannot be told "
            "apart from the residual: the criterion has no proper optimum and the estimates "
            "are arbitrary"
        )
    elif runaway:
        converged = False
        warns.append(
            "the residual variance is estimated at almost zero because the random intercepts "
            "absorb the data: the criterion has no proper optimum here and the estimates are "
            "not meaningful"
        )
    coef2 = mixed if p == 2 else np.column_stack((mixed[:, 0], np.zeros(len(mixed))))
    return InterceptFits(
        formula=formula,
        method="REML" if reml else "ML",
        engine="shrink",
        fixed=fixed,
        fixed_cov=fixed_cov,
        theta=theta,
        re_var=re_var,
        sigma2=sigma2,
        criterion=float(s.value[0]) + core.offset(reml),
        singular=singular,
        converged=converged,
        optimizer=note,
        mixed=mixed,
        ols=ols,
        sizes=stats.n.copy(),
        resid_quantiles=scaled_resid_quantiles(data, stats, coef2, sigma2),
        warnings=tuple(warns),
        n_obs=stats.n_obs,
        n_clusters=stats.n_clusters,
    )


def intercept_criterion(
    stats: SufficientStats, theta, *, reml: bool = True, slope: bool = True
) -> float | np.ndarray:
    """lme4's REML criterion (or ML deviance) of a random-intercept model at θ (one
    number or an array of them; only θ² matters), on lme4's scale."""
    core = _intercept_core(stats, slope)
    th = np.asarray(theta, dtype=float)
    values, _ = _intercept_values(core, th.reshape(-1) ** 2, reml)
    out = values + core.offset(reml)
    return float(out[0]) if th.ndim == 0 else out.reshape(th.shape)


# --------------------------------------------------------------------------------------
# shrinkcli.fit(df, formula=...): this module, called, is the notebook API


class _CallableModule(types.ModuleType):
    """``shrinkcli.fit`` names this module as soon as it is imported (Python sets the
    package attribute to the submodule), so a function of that name would be replaced;
    instead the module itself, called, is shrinkcli.api.fit."""

    def __call__(self, data, formula=None, **kwargs):
        from shrinkcli.api import fit

        return fit(data, formula, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
