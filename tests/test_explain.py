"""Why clusters move: the identity mixed = fixed + R_j (ols - fixed), exactly."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA, SCENARIOS

from shrinkcli.data import read_csv
from shrinkcli.errors import UsageError
from shrinkcli.explain import (
    choose_highlights,
    pooled_ols,
    pull_matrices,
    shrinkage,
    typical_curve,
)
from shrinkcli.fit import fit_mixed, sufficient_stats
from shrinkcli.scenario import Scenario
from shrinkcli.simulate import simulate

REAL = {
    "ChickWeight": ("weight", "Time", "Chick"),
    "Orange": ("circumference", "age", "Tree"),
    "CO2": ("uptake", "conc", "Plant"),
    "Loblolly": ("height", "age", "Seed"),
}


def _case(name: str):
    if name in SCENARIOS:
        data = simulate(Scenario(**SCENARIOS[name]))
    else:
        y, x, g = REAL[name]
        data = read_csv(DATA / "real" / name / "data.csv", y=y, x=x, cluster=g)
    return data, fit_mixed(data)


@pytest.mark.parametrize("name", [*SCENARIOS, *REAL])
def test_mixed_estimates_are_fixed_plus_r_times_ols_deviation(name):
    data, fits = _case(name)
    stats = sufficient_stats(data)
    r = pull_matrices(stats, fits)
    has = np.isfinite(fits.ols).all(axis=1)
    want = fits.fixed + np.einsum("gij,gj->gi", r[has], fits.ols[has] - fits.fixed)
    scale = np.abs(fits.mixed[has]).max(axis=0) + np.abs(fits.ols[has] - fits.fixed).max(axis=0)
    assert (np.abs(want - fits.mixed[has]) < 1e-10 * scale).all()


@pytest.mark.parametrize("name", ["baseline", "unbalanced", "ChickWeight", "CO2"])
def test_predicted_shrinkage_is_diag_of_i_minus_r_by_hand(name):
    data, fits = _case(name)
    stats = sufficient_stats(data)
    out = shrinkage(stats, fits)
    # by hand, in the user's units, with Σ⁻¹ where the fit is not singular
    sig2, cov = fits.sigma2, fits.re_cov
    for j in range(0, fits.n_clusters, max(1, fits.n_clusters // 7)):
        xj = np.asarray(data.x)[np.asarray(data.codes) == j]
        s = np.array([[len(xj), xj.sum()], [xj.sum(), (xj * xj).sum()]])
        lam = cov / sig2
        r = np.linalg.solve(np.eye(2) + lam @ s, lam @ s)
        np.testing.assert_allclose(out.predicted[j], 1 - np.diag(r), atol=1e-9)
    # the observed pull is the fraction of the way to the fixed effects
    has = np.isfinite(out.observed)
    k = np.argwhere(has)[0]
    j, c = k
    frac = (fits.ols[j, c] - fits.mixed[j, c]) / (fits.ols[j, c] - fits.fixed[c])
    assert out.observed[j, c] == pytest.approx(frac)


def test_small_clusters_are_pulled_hardest_in_the_unbalanced_scenario():
    data, fits = _case("unbalanced")
    stats = sufficient_stats(data)
    curve = typical_curve(stats, fits, np.array([1, 2, 5, 10, 20]))
    assert np.all(np.diff(curve, axis=0) < 0)  # more rows, less shrinkage
    assert np.all((curve > 0) & (curve < 1))
    out = shrinkage(stats, fits)
    small, large = stats.n <= 3, stats.n >= 7
    assert out.predicted[small, 1].mean() > 3 * out.predicted[large, 1].mean()


def test_typical_curve_matches_a_cluster_of_that_design():
    data, fits = _case("baseline")
    stats = sufficient_stats(data)
    x, codes = np.asarray(data.x), np.asarray(data.codes)
    x_bar = x.mean()
    var = sum(((x[codes == j] - x[codes == j].mean()) ** 2).sum() for j in range(100)) / len(x)
    s = 10 * np.array([[1, x_bar], [x_bar, var + x_bar**2]])
    lam = fits.re_cov / fits.sigma2
    r = np.linalg.solve(np.eye(2) + lam @ s, lam @ s)
    np.testing.assert_allclose(typical_curve(stats, fits, np.array([10]))[0], 1 - np.diag(r))


def test_pooled_ols_is_one_line_through_every_observation():
    data, _ = _case("baseline")
    slope, intercept = np.polyfit(data.x, data.y, 1)
    np.testing.assert_allclose(pooled_ols(sufficient_stats(data)), [intercept, slope], rtol=1e-10)


def test_highlights_are_the_mover_the_smallest_and_the_largest():
    data, fits = _case("unbalanced")
    chosen = choose_highlights(fits, data.labels)
    assert len(chosen) == 3 and len(set(chosen)) == 3
    has = np.isfinite(fits.ols).all(axis=1)
    assert fits.sizes[chosen[1]] == fits.sizes[has].min()
    assert fits.sizes[chosen[2]] == fits.sizes[has].max()
    by_hand = choose_highlights(fits, data.labels, "3, 7,3")
    assert by_hand == [
        int(np.flatnonzero(data.labels == 3)[0]),
        int(np.flatnonzero(data.labels == 7)[0]),
    ]
    with pytest.raises(UsageError, match="--highlight 'nope'"):
        choose_highlights(fits, data.labels, "nope")


def test_typical_curve_with_spreads_is_a_cluster_of_that_information():
    data, fits = _case("baseline")
    stats = sufficient_stats(data)
    # the pooled within-cluster variance is the default spread
    var = float(np.ldexp(stats.cxx.sum() / stats.n.sum(), 2 * stats.x_exp))
    default = typical_curve(stats, fits, np.array([4.0, 10.0]))
    given = typical_curve(stats, fits, np.array([4.0, 10.0]), np.array([var, var]))
    np.testing.assert_allclose(given, default, rtol=1e-12)
    # twice the spread is more information about the slope: less shrinkage of it
    wider = typical_curve(stats, fits, np.array([10.0]), np.array([2 * var]))
    assert wider[0, 1] < default[1, 1]
