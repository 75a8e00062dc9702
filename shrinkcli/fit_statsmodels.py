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

Even the best method can stop short of the optimum, while reporting convergence
(0.1 to 0.2 criterion units on R's Orange, 1 on CO2 by ML, 460 with x near 1e6).
So shrink's own optimum is computed as well: the shortfall goes into
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

    Warnings raised by statsmodels are captured and summarised in one line.
    """
    from statsmodels.regression.mixed_linear_model import MixedLM

    stats = sufficient_stats(data)
    criterion = make_criterion(stats, reml=reml)  # also rejects unusable designs
    y = np.asarray(data.y, dtype=float)
    exog = np.column_stack((np.ones(len(y)), np.asarray(data.x, dtype=float)))
    model = MixedLM(y, exog, groups=np.asarray(data.codes), exog_re=exog)
    best, best_value, caught, failed = None, math.inf, Counter(), []
    for method in methods:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            try:
                result = model.fit(reml=reml, method=method)
                value = criterion(_theta(result))
            except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
                failed.append(f"{method} ({type(exc).__name__})")
                continue
        caught.update(f"{w.category.__name__} ({method})" for w in record)
        if np.isfinite(value) and value < best_value:
            best, best_value, best_method = result, float(value), method
    if best is None:
        raise FitError(f"statsmodels MixedLM failed with every method: {', '.join(failed)}")
    return _to_fits(
        data, stats, best, best_value, best_method, reml, caught, failed, tuple(methods)
    )


def _theta(result) -> np.ndarray:
    return theta_from_cov(np.asarray(result.cov_re, dtype=float) / float(result.scale))


def _to_fits(data, stats, result, value, method, reml, caught, failed, tried) -> Fits:
    """MixedLM's estimates in the Fits layout (cluster rows in label order)."""
    sigma2 = float(result.scale)
    theta = _theta(result)
    fixed = np.asarray(result.fe_params, dtype=float)
    g = stats.n_clusters
    random = np.zeros((g, 2))
    for code, effects in result.random_effects.items():
        random[int(code)] = np.asarray(effects, dtype=float)
    mixed = fixed + random
    warns = design_warnings(stats.n_obs, g, singular_warning(stats, theta))
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
        re_cov=np.asarray(result.cov_re, dtype=float),
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
