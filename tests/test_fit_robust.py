"""The optimum is trustworthy where a single local search is not.

On generated data that push the model to its edges (two observations per
cluster, a tiny slope variance, perfectly correlated random effects, unbalanced
data with single-observation clusters), the engine's criterion must be no worse
(beyond 1e-6) than a dense multistart search of the same criterion and than
statsmodels' best over several methods, judged on the same criterion.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.stats import qmc

from shrinkcli.errors import DataError
from shrinkcli.fit import (
    BOUNDARY_WARNING,
    criterion,
    fit_mixed,
    is_singular,
    make_criterion,
    singular_warning,
    sufficient_stats,
)
from shrinkcli.scenario import Scenario
from shrinkcli.simulate import ClusteredData, simulate

CASES = {
    "two-obs": Scenario(obs_per_cluster=2, n_cluster=40, seed=11),
    "two-obs-100": Scenario(obs_per_cluster=2, n_cluster=100, seed=1),
    "tiny-slope": Scenario(sd_slope=0.01, obs_per_cluster=5, n_cluster=40, seed=3),
    "tiny-slope-100": Scenario(sd_slope=0.01, seed=2),
    "cor-1": Scenario(cor=1.0, obs_per_cluster=4, n_cluster=40, seed=4),
    "cor-1-100": Scenario(cor=1.0, seed=3),
    "unbalanced-singles": Scenario(balanced=0.3, obs_per_cluster=3, n_cluster=60, seed=5),
    "unbalanced-singles-100": Scenario(balanced=0.3, obs_per_cluster=3, seed=4),
}
SMALL = [name for name in CASES if not name.endswith("-100")]


@functools.cache
def data_for(name: str) -> ClusteredData:
    return simulate(CASES[name])


def dense_search(data: ClusteredData, reml: bool, starts: int = 50) -> float:
    """The best criterion found by brute force, independent of the engine's optimiser.

    A 14^3 grid on lme4's θ, then L-BFGS-B (lme4's bounds, central-difference
    gradient evaluated as one batch) from `starts` points (quasi-random plus the
    best grid points), then Nelder-Mead (unbounded) from the three best results.
    """
    crit = make_criterion(sufficient_stats(data), reml=reml)
    h = 1e-7
    steps = np.vstack((np.zeros(3), h * np.eye(3), -h * np.eye(3)))

    def value_and_gradient(theta):
        v = crit(theta + steps)
        return v[0], (v[1:4] - v[4:7]) / (2 * h)

    axes = (np.linspace(0, 4, 14), np.linspace(-3, 3, 14), np.linspace(0, 4, 14))
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    values = crit(grid)
    n_grid = starts // 5
    halton = qmc.scale(qmc.Halton(d=3, seed=0).random(starts - n_grid), [0, -3, 0], [4, 3, 4])
    x0s = np.vstack((grid[np.argsort(values)[:n_grid]], halton))
    bounds = [(0, None), (None, None), (0, None)]
    found = [
        minimize(value_and_gradient, x0, jac=True, method="L-BFGS-B", bounds=bounds) for x0 in x0s
    ]
    found.sort(key=lambda r: r.fun)
    options = {"xatol": 1e-10, "fatol": 1e-12, "maxfev": 2000}
    polish = [minimize(crit, r.x, method="Nelder-Mead", options=options) for r in found[:3]]
    return min(min(r.fun for r in found), min(r.fun for r in polish), float(values.min()))


DENSE = [(name, True) for name in CASES] + [(name, False) for name in SMALL]


@pytest.mark.parametrize(
    ("name", "reml"), DENSE, ids=[f"{n}-{'REML' if r else 'ML'}" for n, r in DENSE]
)
def test_never_worse_than_a_dense_multistart(name, reml):
    data = data_for(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no floating-point noise from far-out trial steps
        fits = fit_mixed(data, reml=reml)
    best = dense_search(data, reml)
    assert fits.criterion <= best + 1e-6
    assert fits.converged
    assert criterion(sufficient_stats(data), fits.theta, reml) == pytest.approx(
        fits.criterion, abs=1e-8
    )


@pytest.mark.parametrize("name", SMALL)
def test_never_worse_than_statsmodels_best_method(name):
    """statsmodels' estimates judged on the same (lme4) criterion at its own θ."""
    from shrinkcli.fit_statsmodels import fit_statsmodels

    data = data_for(name)
    ours = fit_mixed(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the engine must capture statsmodels' warnings
        theirs = fit_statsmodels(data, methods=("lbfgs", "powell", "cg"))
    assert theirs.criterion == pytest.approx(
        criterion(sufficient_stats(data), theirs.theta), abs=1e-9
    )
    assert ours.criterion <= theirs.criterion + 1e-6


def test_the_cases_are_what_they_claim():
    """Guards the generated data: each case really has its difficult feature."""
    two = fit_mixed(data_for("two-obs"))
    assert any("80 observations for 80 random effects" in w for w in two.warnings)
    assert data_for("unbalanced-singles").sizes().min() == 1
    assert data_for("unbalanced-singles-100").sizes().min() == 1
    assert fit_mixed(data_for("tiny-slope")).singular
    cor = fit_mixed(data_for("cor-1"))
    assert cor.singular and abs(cor.re_corr) == pytest.approx(1.0)
    truth = data_for("cor-1-100").truth
    assert np.corrcoef(truth.T)[0, 1] == pytest.approx(1.0)


# --------------------------------------------------------------------------------------
# Any units give the same answer


@functools.cache
def units_case(name: str, reml: bool):
    """The data and their fit in the original units; the article's baseline, R's
    ChickWeight (not singular; x = days, y = grams) and Orange (singular: θ3 = 0)."""
    from test_fit import real_data

    data = simulate(Scenario()) if name == "baseline" else real_data(name)
    return data, fit_mixed(data, reml=reml)


def scaled(data: ClusteredData, a: float, b: float) -> ClusteredData:
    return ClusteredData(
        y=data.y * a, x=data.x * b, cluster=data.cluster, codes=data.codes, labels=data.labels
    )


def expected_log10(fits, log_a: float, log_b: float) -> np.ndarray:
    """log10 |value| in the new units of every nonzero number the fit reports."""
    parts = [
        (fits.fixed, [1, 1], [0, 1]),
        (fits.fixed_cov.ravel(), [2, 2, 2, 2], [0, 1, 1, 2]),
        (fits.re_cov.ravel(), [2, 2, 2, 2], [0, 1, 1, 2]),
        (np.array([fits.sigma2]), [2], [0]),
        (fits.mixed.ravel(), [1, 1] * fits.n_clusters, [0, 1] * fits.n_clusters),
        (fits.ols.ravel(), [1, 1] * fits.n_clusters, [0, 1] * fits.n_clusters),
        (fits.theta, [0, 0, 0], [0, 1, 1]),
    ]
    out = []
    for values, ka, kb in parts:
        ok = np.isfinite(values) & (values != 0)
        logs = np.log10(np.abs(values[ok])) + np.asarray(ka)[ok] * log_a
        out.append(logs - (np.asarray(kb)[ok] * log_b))
    return np.concatenate(out)


def close(got, want, rtol: float = 1e-9) -> None:
    """Elementwise relative agreement; near-zero entries judged against their column's size."""
    got, want = np.asarray(got, float), np.asarray(want, float)
    size = np.nanmax(np.abs(want), axis=0) if want.ndim > 1 else np.nanmax(np.abs(want))
    assert np.array_equal(np.isnan(got), np.isnan(want))
    err = np.abs(got - want) - rtol * np.abs(want) - 1e-12 * size
    assert not np.any(err > 0), (got, want, np.nanmax(np.abs(got - want) / np.abs(want)))


LIMIT_HI, LIMIT_LO = math.log10(np.finfo(float).max), math.log10(np.finfo(float).tiny)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(
    name=st.sampled_from(["baseline", "ChickWeight", "Orange"]),
    reml=st.booleans(),
    log_a=st.floats(-150, 150),
    log_b=st.floats(-150, 150),
)
def test_any_units_give_the_same_answer(name, reml, log_a, log_b):
    """(a y, b x) for a, b in 1e-150..1e150: every estimate scales as it must, the
    correlation, the shrinkage and the residual quantiles do not change, the criterion
    moves by its known constant, and nothing warns; a result a double cannot hold in the
    new units is refused with one plain line."""
    data, base = units_case(name, reml)
    a, b = 10.0**log_a, 10.0**log_b
    logs = expected_log10(base, log_a, log_b)
    out = (logs > LIMIT_HI) | (logs < LIMIT_LO)
    assume(
        not np.any(np.abs(logs - LIMIT_HI) < 0.01) and not np.any(np.abs(logs - LIMIT_LO) < 0.01)
    )
    theta3 = base.theta[2] / b
    assume(theta3 == 0 or abs(math.log10(theta3) + 4) > 0.01)  # not on lme4's threshold
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if out.any():
            event("refused: a value beyond a double")
            with pytest.raises(DataError, match="beyond the range of a double") as info:
                fit_mixed(scaled(data, a, b), reml=reml)
            assert "\n" not in str(info.value)
            return
        fits = fit_mixed(scaled(data, a, b), reml=reml)
    sl = np.array([a, a / b])  # (intercept, slope) units
    close(fits.fixed, base.fixed * sl)
    close(fits.mixed, base.mixed * sl)
    close(fits.ols, base.ols * sl)
    close(fits.fixed_se, base.fixed_se * sl)
    close(fits.re_sd, base.re_sd * sl)
    close(math.sqrt(fits.sigma2), math.sqrt(base.sigma2) * a)
    close(fits.theta, base.theta * np.array([1.0, 1.0 / b, 1.0 / b]))
    close(fits.resid_quantiles, base.resid_quantiles)
    if math.isnan(base.re_corr):
        assert math.isnan(fits.re_corr)
    else:
        assert fits.re_corr == pytest.approx(base.re_corr, abs=1e-12)
    shrink = (fits.mixed - fits.fixed) / (fits.ols - fits.fixed)  # the share kept: unitless
    close(shrink, (base.mixed - base.fixed) / (base.ols - base.fixed))
    dof = base.n_obs - 2 if reml else base.n_obs
    moved = 2 * dof * math.log(a) + (2 * math.log(b) if reml else 0.0)
    assert fits.criterion == pytest.approx(base.criterion + moved, rel=1e-13, abs=1e-9)
    flagged = [w for w in fits.warnings if "singularity threshold only because" in w]
    if name == "Orange":  # on the boundary in any units
        assert fits.singular and BOUNDARY_WARNING in fits.warnings and not flagged
    else:
        assert fits.singular == (theta3 < 1e-4)
        assert BOUNDARY_WARNING not in fits.warnings
        assert len(flagged) == int(fits.singular)
        if flagged:
            event("singular only by the units of x")
            assert "x is measured in large units" in flagged[0]
            assert "the fit in standardised units is not singular" in flagged[0]


def test_the_issue_examples():
    """x 1e-100, x 1e100 and x 1e-200 on the baseline (both y and x): the first two give
    the original correlation 0.297 and residual SD; the last cannot hold its variances
    (about 1e-400) in a double and says so, instead of calling x constant."""
    data, base = units_case("baseline", True)
    assert base.re_corr == pytest.approx(0.29747, abs=1e-5)
    for f in (1e-100, 1e100):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fits = fit_mixed(scaled(data, f, f))
        assert fits.re_corr == pytest.approx(base.re_corr, abs=1e-13)
        assert math.sqrt(fits.sigma2) == pytest.approx(math.sqrt(base.sigma2) * f, rel=1e-12)
    with pytest.raises(DataError, match="beyond the range of a double"):
        fit_mixed(scaled(data, 1e-200, 1e-200))
    with pytest.raises(DataError, match=r"variance .* about 1e39\d, beyond the range"):
        fit_mixed(scaled(data, 1.0, 1e-200))  # slopes ~1e200: their variances ~1e398


def test_x_far_from_zero_names_the_origin():
    """x + 1e4: θ3 (the slope's sd given the intercept at x = 0) falls below 1e-4 because
    x = 0 lies far from the data; the warning says so, not that the model is unsupported."""
    data, base = units_case("baseline", True)
    moved = ClusteredData(
        y=data.y, x=data.x + 1e4, cluster=data.cluster, codes=data.codes, labels=data.labels
    )
    fits = fit_mixed(moved)
    assert fits.singular and fits.theta[2] < 1e-4
    assert fits.criterion == pytest.approx(base.criterion, abs=1e-8)
    (note,) = [w for w in fits.warnings if "singularity threshold" in w]
    assert "only because of the units and origin of x" in note
    assert BOUNDARY_WARNING not in fits.warnings


def test_singular_only_in_standardised_units_is_said():
    """θ3 = 5e-3 with x in units 1e-6: lme4's test passes, but in standardised units the
    slope's relative sd is ~1e-6, on the boundary; the warning says so."""
    from test_fit import real_data

    data = real_data("CO2")
    small = scaled(data, 1.0, 1e-6)
    stats = sufficient_stats(small)
    theta = np.array([0.857, 1150.0, 5e-3])
    assert not is_singular(theta)
    note = singular_warning(stats, theta)
    assert note is not None and note.startswith("boundary (singular) fit in standardised units")
    assert singular_warning(stats, np.array([0.857, 1150.0, 50.0])) is None
    assert singular_warning(stats, np.array([0.857, 1150.0, 0.0])) == BOUNDARY_WARNING


def test_huge_random_slopes_are_a_proper_optimum_and_barely_pooled():
    """Slope SD 10⁶ times σ: a real optimum (no 'residual variance almost zero' warning),
    and the mixed slopes stay next to OLS instead of losing digits to cancellation."""
    from shrinkcli.scenario import Scenario
    from shrinkcli.simulate import simulate
    from shrinkcli.summary import truth_rmse

    data = simulate(Scenario(sd_slope=1e6))
    fits = fit_mixed(data)
    assert fits.converged and not any("residual variance" in w for w in fits.warnings)
    assert 0.5e6 < fits.re_sd[1] < 2e6 and 0.9 < fits.sigma2 < 1.2
    rmse = truth_rmse(fits, data.truth)
    assert rmse["mixed"]["slope"] < 1.1 * rmse["ols"]["slope"]
    assert np.abs(fits.mixed[:, 1] - fits.ols[:, 1]).max() < 1e-3 * np.abs(fits.ols[:, 1]).max()
