"""The second engine: statsmodels' MixedLM, converted into the same Fits object.

MixedLM's default settings stop far from the optimum on the article's baseline,
and each of its optimisers fails somewhere (bfgs and nm on the baseline, lbfgs
at singular fits), so several methods are tried and the best one kept.

Which one is "best", and the reported criterion, are judged by lme4's profiled
criterion (``shrinkcli.fit.make_criterion``) evaluated at statsmodels' own
estimate θ = chol(cov_re / scale), not by MixedLM's ``llf``. At an interior
optimum the two agree (-2 llf equals lme4's REML criterion or ML deviance to
1e-9 on the baseline), but near a singular fit ``llf`` is not profiled over σ²
and can be off by ~1e-5, and method 'nm' can even report llf = +inf at a
degenerate point.

Even the best method can stop short of the optimum, often while reporting
convergence, and where depends on the units: given the user's units it stopped
0.12 (REML) and 0.22 (ML) criterion units short on R's Orange, 0.98 on CO2 by ML
and 460 with x near 1e6; given the data scaled by powers of two, as now (so that
any units give the same answer and extreme ones no overflow), 0.018 and 0.012 on
Orange, 0.13 and 0.12 on Loblolly and 12 with x near 1e6, while CO2 reaches the
optimum. So shrink's own optimum is computed as well: the shortfall goes into
``Fits.engine_check``, and beyond SHORTFALL_TOL into a warning, with
``converged`` false.

Fixed effects, variances and cluster coefficients are statsmodels' own. The
standard errors are not MixedLM's cov_params (a different formula, up to 3% apart
on three clusters) but lme4's σ²(X'V^-1X)^-1 evaluated at statsmodels' θ and σ²
(``fit.fixed_cov_at``), so that both engines' SEs mean the same thing.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from shrinkcli.errors import FitError
from shrinkcli.fit import (
    EngineCheck,
    Fits,
    _to_user,
    cluster_fields,
    design_warnings,
    fit_mixed,
    fixed_cov_at,
    is_singular,
    make_criterion,
    singular_warning,
    sufficient_stats,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from shrinkcli.simulate import ClusteredData

METHODS = ("lbfgs", "bfgs", "powell", "nm")
SHORTFALL_TOL = 1e-4  # criterion units (-2 log-likelihood) a fit may miss the optimum by


def theta_from_cov(lam: np.ndarray) -> np.ndarray:
    """lme4's θ (lower Cholesky factor, θ1, θ3 >= 0) of a relative covariance, rank 1 allowed."""
    t1 = math.sqrt(max(float(lam[0, 0]), 0.0))
    t2 = float(lam[0, 1]) / t1 if t1 > 0 else 0.0
    t3 = math.sqrt(max(float(lam[1, 1]) - t2 * t2, 0.0))
    return np.array([t1, t2, t3])


def fit_statsmodels(
    data: ClusteredData, *, reml: bool = True, methods: Sequence[str] = METHODS
) -> Fits:
    """Fit y ~ x + (x | cluster) with MixedLM, trying ``methods`` and keeping the best.

    MixedLM gets y / 2**a and x / 2**b, the powers of two shrink's sums use (exact,
    so it fits the same data), and its estimates are scaled back: in the user's units
    its squares overflow beyond ~1e150 and it fails below ~1e-100. Warnings raised by
    statsmodels are captured and summarised in one line.
    """
    from statsmodels.regression.mixed_linear_model import MixedLM

    stats = sufficient_stats(data)
    criterion = make_criterion(stats, reml=reml)  # also rejects unusable designs
    y = np.ldexp(np.asarray(data.y, dtype=float), -stats.y_exp)
    x = np.ldexp(np.asarray(data.x, dtype=float), -stats.x_exp)
    exog = np.column_stack((np.ones(len(y)), x))
    best, best_value, caught, failed = None, math.inf, Counter(), []
    for method in methods:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            try:
                model = MixedLM(y, exog, groups=np.asarray(data.codes), exog_re=exog)
                result = model.fit(reml=reml, method=method)
                value = criterion(_theta(result, stats))
                random = _random_effects(result, stats.n_clusters)
            except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
                failed.append(f"{method} ({type(exc).__name__})")
                continue
        caught.update(f"{w.category.__name__} ({method})" for w in record)
        if not np.isfinite(value):
            failed.append(f"{method} (no finite criterion)")
        elif value < best_value:
            best, best_value, best_method = (result, random), float(value), method
    if best is None:
        raise FitError(f"statsmodels MixedLM failed with every method: {', '.join(failed)}")
    return _to_fits(
        data, stats, best, best_value, best_method, reml, caught, failed, tuple(methods)
    )


def _theta(result, stats) -> np.ndarray:
    """lme4's θ in the user's units from MixedLM's (scaled) cov_re / scale."""
    t = theta_from_cov(np.asarray(result.cov_re, dtype=float) / float(result.scale))
    return _to_user("relative covariance factor theta", t, [0, -stats.x_exp, -stats.x_exp])


def _random_effects(result, g: int) -> np.ndarray:
    random = np.zeros((g, 2))
    for code, effects in result.random_effects.items():
        random[int(code)] = np.asarray(effects, dtype=float)
    return random


def _to_fits(data, stats, best, value, method, reml, caught, failed, tried) -> Fits:
    """MixedLM's estimates in the Fits layout (cluster rows in label order), scaled
    back to the user's units."""
    result, random = best
    coef_exp = np.array([stats.y_exp, stats.y_exp - stats.x_exp])
    cov_exp = coef_exp[:, None] + coef_exp[None, :]
    # statsmodels 0.14.0 can give data without noise a residual variance of -1e-17: zero
    # within rounding, as the +1e-17 of later versions and of shrink's own engine
    scale = abs(float(result.scale))
    sigma2 = float(_to_user("residual variance", scale, 2 * stats.y_exp))
    theta = _theta(result, stats)
    fixed_s = np.asarray(result.fe_params, dtype=float)
    fixed = _to_user("fixed effects", fixed_s, coef_exp)
    mixed = _to_user("cluster estimates", fixed_s + random, coef_exp)
    re_cov = _to_user("random-effect covariance", np.asarray(result.cov_re, float), cov_exp)
    warns = design_warnings(stats.n_obs, stats.n_clusters, singular_warning(stats, theta))
    if caught or failed:
        parts = [f"{n} {name}" for name, n in sorted(caught.items())]
        parts += [f"failed: {f}" for f in failed]
        warns.append(f"statsmodels warnings while trying methods: {'; '.join(parts)}")
    check, note = engine_check(data, value, reml)
    if note:
        warns.append(note)
    return Fits(
        method="REML" if reml else "ML",
        engine="statsmodels",
        fixed=fixed,
        fixed_cov=fixed_cov_at(stats, theta, sigma2),
        theta=theta,
        re_cov=re_cov,
        sigma2=sigma2,
        criterion=value,
        singular=is_singular(theta),
        converged=bool(result.converged) and check.shortfall <= SHORTFALL_TOL,
        optimizer=f"statsmodels MixedLM: best of {', '.join(tried)} was {method}",
        warnings=tuple(warns),
        engine_check=check,
        **cluster_fields(data, stats, mixed, sigma2),
    )


def engine_check(data: ClusteredData, value: float, reml: bool) -> tuple[EngineCheck, str]:
    """shrink's optimum on the same data, and a one-line warning ('' if none) when the
    criterion ``value`` another engine reached is off it by more than SHORTFALL_TOL."""
    best = fit_mixed(data, reml=reml).criterion
    gap = value - best
    name = "REML criterion" if reml else "deviance"
    note = ""
    if gap > SHORTFALL_TOL:
        note = (
            f"statsmodels stopped {gap:.3g} short of the optimum ({name} {value:.6g}, "
            f"shrink's optimum {best:.6g}), so its estimates are not the best fit; "
            "--engine shrink reaches it"
        )
    elif gap < -SHORTFALL_TOL:
        note = (
            f"statsmodels found a {name} {-gap:.3g} below shrink's optimum ({value:.6g} vs "
            f"{best:.6g}): shrink's own optimiser missed it"
        )
    return EngineCheck(shrink_criterion=best, shortfall=gap), note
