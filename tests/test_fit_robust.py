"""The optimum is trustworthy where a single local search is not.

On generated data that push the model to its edges (two observations per
cluster, a tiny slope variance, perfectly correlated random effects, unbalanced
data with single-observation clusters), the engine's criterion must be no worse
(beyond 1e-6) than a dense multistart search of the same criterion and than
statsmodels' best over several methods, judged on the same criterion.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import qmc

from shrinkcli.fit import criterion, fit_mixed, make_criterion, sufficient_stats
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
