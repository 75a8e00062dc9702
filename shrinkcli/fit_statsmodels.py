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
degenerate point. Every other number is statsmodels' own: fixed effects, their
covariance (MixedLM's cov_params, which on the baseline differs from lme4's
σ² XtX*^-1 by ~3e-4 relative), variances, cluster coefficients.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from shrinkcli.errors import FitError
from shrinkcli.fit import (
    Fits,
    cluster_fields,
    design_warnings,
    is_singular,
    make_criterion,
    sufficient_stats,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from shrinkcli.simulate import ClusteredData

METHODS = ("lbfgs", "bfgs", "powell", "nm")


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
    singular = is_singular(theta)
    warns = design_warnings(stats.n_obs, g, singular)
    if caught or failed:
        parts = [f"{n} {name}" for name, n in sorted(caught.items())]
        parts += [f"failed: {f}" for f in failed]
        warns.append(f"statsmodels warnings while trying methods: {'; '.join(parts)}")
    return Fits(
        method="REML" if reml else "ML",
        engine="statsmodels",
        fixed=fixed,
        fixed_cov=np.asarray(result.cov_params(), dtype=float)[:2, :2],
        theta=theta,
        re_cov=np.asarray(result.cov_re, dtype=float),
        sigma2=sigma2,
        criterion=value,
        singular=singular,
        converged=bool(result.converged),
        optimizer=f"statsmodels MixedLM: best of {', '.join(tried)} was {method}",
        warnings=tuple(warns),
        **cluster_fields(data, stats, mixed, sigma2),
    )
