"""The mixed-model engine against lme4's reference numbers, and the algebra behind it."""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pytest

from shrinkcli.errors import DataError
from shrinkcli.fit import (
    Fits,
    _core,
    _value_grad,
    criterion,
    fit_mixed,
    fit_ols,
    make_criterion,
    sufficient_stats,
)
from shrinkcli.scenario import Scenario
from shrinkcli.simulate import ClusteredData, simulate

REFERENCE = Path(__file__).parent / "data" / "lme4"
SCENARIOS = [
    "baseline",
    "more_subject_variance",
    "more_slope_variance",
    "fewer_obs",
    "more_obs",
    "unbalanced",
]
QUANTILES = ["resid_min", "resid_q1", "resid_median", "resid_q3", "resid_max"]


def make_data(y, x, cluster) -> ClusteredData:
    """ClusteredData from columns, as a CSV reader would build it (labels sorted)."""
    cluster = np.asarray(cluster)
    labels, codes = np.unique(cluster, return_inverse=True)
    return ClusteredData(
        y=np.asarray(y, dtype=float),
        x=np.asarray(x, dtype=float),
        cluster=cluster,
        codes=codes,
        labels=labels,
        truth=None,
        source="test",
    )


@functools.cache
def reference_data(name: str) -> ClusteredData:
    table = np.loadtxt(REFERENCE / name / "data.csv", delimiter=",", skiprows=1)
    return make_data(table[:, 0], table[:, 1], table[:, 2].astype(np.int64))


def reference_row(name: str, file: str) -> dict[str, float]:
    with open(REFERENCE / name / file, newline="") as fh:
        row = next(csv.DictReader(fh))
    flags = {"TRUE": 1.0, "FALSE": 0.0}
    return {k: flags[v] if v in flags else float(v) for k, v in row.items()}


def reference_coef(name: str, file: str) -> np.ndarray:
    """(G, 2) coefficients in numeric cluster order, NA as NaN."""
    with open(REFERENCE / name / file, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows.sort(key=lambda r: int(r["cluster"]))
    val = lambda s: np.nan if s == "NA" else float(s)  # noqa: E731
    return np.array([[val(r["(Intercept)"]), val(r["x"])] for r in rows])


@functools.cache
def fitted(name: str, reml: bool) -> Fits:
    return fit_mixed(reference_data(name), reml=reml)


REAL = Path(__file__).parent / "data" / "real"


@functools.cache
def real_reference(name: str) -> dict:
    """lme4's results on one of R's data sets (tests/data/real/<name>/lme4.json)."""
    with open(REAL / name / "lme4.json") as fh:
        return json.load(fh)


@functools.cache
def real_data(name: str) -> ClusteredData:
    """One of R's data sets (ChickWeight, Orange, CO2, Loblolly) as ClusteredData."""
    ref = real_reference(name)
    with open(REAL / name / "data.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    y = [float(r[ref["y"]]) for r in rows]
    x = [float(r[ref["x"]]) for r in rows]
    return make_data(y, x, [r[ref["cluster"]] for r in rows])


CASES = [(name, reml) for name in SCENARIOS for reml in (True, False)]
IDS = [f"{name}-{'REML' if reml else 'ML'}" for name, reml in CASES]


def _ref(name: str, reml: bool) -> dict[str, float]:
    return reference_row(name, "summary.csv" if reml else "summary_ml.csv")


# --------------------------------------------------------------------------------------
# Agreement with lme4


@pytest.mark.parametrize(("name", "reml"), CASES, ids=IDS)
def test_criterion_at_least_as_good_as_lme4(name, reml):
    ref = _ref(name, reml)
    target = ref["reml"] if reml else ref["deviance"]
    fits = fitted(name, reml)
    assert fits.criterion <= target + 1e-6
    assert fits.criterion >= target - 1e-3
    assert fits.method == ("REML" if reml else "ML")
    assert fits.converged


@pytest.mark.parametrize(("name", "reml"), CASES, ids=IDS)
def test_fixed_effects_and_standard_errors(name, reml):
    ref, fits = _ref(name, reml), fitted(name, reml)
    np.testing.assert_allclose(fits.fixed, [ref["fixef_int"], ref["fixef_x"]], rtol=1e-5)
    np.testing.assert_allclose(fits.fixed_se, [ref["se_int"], ref["se_x"]], rtol=2e-4)


@pytest.mark.parametrize(("name", "reml"), CASES, ids=IDS)
def test_variance_components(name, reml):
    ref, fits = _ref(name, reml), fitted(name, reml)
    got = [fits.re_cov[0, 0], fits.re_cov[1, 1], fits.sigma2]
    np.testing.assert_allclose(got, [ref["var_int"], ref["var_x"], ref["var_resid"]], rtol=1e-3)
    assert abs(fits.re_corr - ref["corr"]) <= 1e-3
    assert fits.singular == bool(ref["singular"])


@pytest.mark.parametrize("name", SCENARIOS)
def test_cluster_coefficients_match_coef_of_lmer(name):
    blup = reference_coef(name, "blup_coef.csv")
    np.testing.assert_allclose(fitted(name, True).mixed, blup, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", SCENARIOS)
def test_ols_matches_lmlist(name):
    ols = reference_coef(name, "ols_coef.csv")
    got = fit_ols(sufficient_stats(reference_data(name)))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ols))
    np.testing.assert_allclose(got, ols, rtol=0, atol=1e-10, equal_nan=True)


def test_baseline_summary_numbers():
    """The article's numbers, at the exact optimum (lme4 stops 1.5e-8 above it)."""
    ref, fits = _ref("baseline", True), fitted("baseline", True)
    np.testing.assert_allclose(fits.resid_quantiles, [ref[q] for q in QUANTILES], atol=1e-4)
    assert fits.criterion == pytest.approx(3012.189508088, abs=1e-8)
    assert fits.re_cov[1, 1] == pytest.approx(0.0598637, abs=1e-7)
    assert fits.resid_quantiles[1] == pytest.approx(-0.635252, abs=1e-6)
    assert (fits.n_obs, fits.n_clusters) == (1000, 100)
    assert fits.sizes.tolist() == [10] * 100
    assert fits.warnings == ()
    assert fits.engine == "shrink"


def test_criterion_function_reproduces_the_fit():
    data = reference_data("unbalanced")
    stats = sufficient_stats(data)
    fits = fitted("unbalanced", True)
    assert criterion(stats, fits.theta) == pytest.approx(fits.criterion, abs=1e-9)
    thetas = np.array([fits.theta, [1.0, 0.0, 1.0], [0.0, 0.3, 0.0], [-0.5, 0.2, -1.0]])
    batch = make_criterion(stats)(thetas)
    single = [criterion(stats, t) for t in thetas]
    np.testing.assert_allclose(batch, single, rtol=1e-13)
    assert batch[3] == pytest.approx(criterion(stats, [0.5, -0.2, 1.0]), rel=1e-12)  # T D
    assert np.all(batch[1:] > fits.criterion)


@pytest.mark.parametrize("reml", [True, False])
def test_gradient_matches_finite_differences(reml):
    core = _core(sufficient_stats(reference_data("fewer_obs")))
    rng = np.random.default_rng(3)
    for phi in rng.normal(size=(4, 3)):
        _, grad = _value_grad(core, phi, reml)
        h = 1e-6
        fd = [
            (_value_grad(core, phi + h * e, reml)[0] - _value_grad(core, phi - h * e, reml)[0])
            / (2 * h)
            for e in np.eye(3)
        ]
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-5)


def test_shifting_x_changes_only_the_intercepts():
    """x in 'years' (x + 2000): same criterion, same slopes, intercepts moved by slope*2000."""
    data = reference_data("baseline")
    moved = make_data(data.y, data.x + 2000.0, data.cluster)
    a, b = fitted("baseline", True), fit_mixed(moved)
    assert b.criterion == pytest.approx(a.criterion, abs=1e-6)
    np.testing.assert_allclose(b.mixed[:, 1], a.mixed[:, 1], atol=1e-6)
    np.testing.assert_allclose(b.mixed[:, 0] + 2000.0 * b.mixed[:, 1], a.mixed[:, 0], atol=1e-5)
    assert b.re_cov[1, 1] == pytest.approx(a.re_cov[1, 1], rel=1e-5)


# --------------------------------------------------------------------------------------
# Sufficient statistics and OLS by hand


def small_data() -> ClusteredData:
    # a: a proper line; b: one observation; c: constant x
    return make_data(
        y=[2.0, 1.0, 4.0, 3.0, 7.0, 1.0],
        x=[1.0, 5.0, 2.0, 2.0, 3.0, 2.0],
        cluster=["a", "b", "a", "c", "a", "c"],
    )


def test_sufficient_stats_by_hand():
    """The sums are kept in units of 2**x_exp and 2**y_exp (here 8: max |x| = 5, |y| = 7)."""
    stats = sufficient_stats(small_data())
    assert (stats.x_exp, stats.y_exp) == (3, 3)
    sx, sy = 2.0**stats.x_exp, 2.0**stats.y_exp
    assert stats.n.tolist() == [3, 1, 2]
    np.testing.assert_allclose(stats.x_mean * sx, [2.0, 5.0, 2.0])
    np.testing.assert_allclose(stats.y_mean * sy, [13 / 3, 1.0, 2.0])
    np.testing.assert_allclose(stats.cxx * sx**2, [2.0, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(stats.cxy * sx * sy, [5.0, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(stats.cyy * sy**2, [38 / 3, 0.0, 2.0])
    np.testing.assert_allclose(stats.sum_x * sx, [6.0, 5.0, 4.0])
    np.testing.assert_allclose(stats.sum_xx * sx**2, [14.0, 25.0, 8.0])
    np.testing.assert_allclose(stats.sum_y * sy, [13.0, 1.0, 4.0])
    np.testing.assert_allclose(stats.sum_xy * sx * sy, [31.0, 5.0, 8.0])
    np.testing.assert_allclose(stats.sum_yy * sy**2, [69.0, 1.0, 10.0])
    assert stats.x_varies.tolist() == [True, False, False]


def test_ols_by_hand():
    ols = fit_ols(sufficient_stats(small_data()))
    np.testing.assert_allclose(ols[0], [-2 / 3, 2.5])
    assert ols[1, 0] == 1.0 and np.isnan(ols[1, 1])
    assert ols[2, 0] == 2.0 and np.isnan(ols[2, 1])


def test_constant_x_detected_despite_rounding():
    data = make_data(y=[1.0, 2.0, 3.0, 4.0], x=[0.1, 0.1, 0.1, 0.7], cluster=[1, 1, 1, 2])
    stats = sufficient_stats(data)
    assert stats.x_varies.tolist() == [False, False]
    assert np.isnan(fit_ols(stats)[:, 1]).all()


def test_single_observation_and_constant_x_clusters_fit():
    base = reference_data("baseline")
    keep = (base.cluster != 1) | (np.cumsum(base.cluster == 1) == 1)  # cluster 1: one row
    x = np.where(base.cluster == 2, 0.3, base.x)  # cluster 2: constant x
    data = make_data(base.y[keep], x[keep], base.cluster[keep])
    fits = fit_mixed(data)
    assert fits.sizes[0] == 1
    assert np.isnan(fits.ols[:2, 1]).all() and np.isfinite(fits.ols[2:]).all()
    assert fits.ols[0, 0] == base.y[(base.cluster == 1)][0]
    assert np.isfinite(fits.mixed).all()
    assert fits.criterion < fitted("baseline", True).criterion  # fewer rows


# --------------------------------------------------------------------------------------
# Shrinkage: what the mixed estimates are, and what property they truly have


def shrinkage_parts(data: ClusteredData, fits: Fits):
    stats = sufficient_stats(data)
    lam = fits.re_cov / fits.sigma2
    sx = 2.0**stats.x_exp  # the sums are in units of 2**x_exp
    s = np.stack(
        [
            np.stack([stats.n, stats.sum_x * sx], -1),
            np.stack([stats.sum_x * sx, stats.sum_xx * sx**2], -1),
        ],
        -2,
    ).astype(float)
    return stats, lam, s


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario(seed=21),
        Scenario(seed=22, obs_per_cluster=4, sd_int=1.0, sd_slope=0.8, cor=0.6),
        Scenario(seed=23, obs_per_cluster=6, n_cluster=40, balanced=0.6),
        Scenario(seed=25, obs_per_cluster=3, n_cluster=50, sd_slope=0.6, cor=-0.7),
        Scenario(seed=24, obs_per_cluster=3, n_cluster=50, sd_slope=0.6, cor=-0.7),
    ],
    ids=["baseline-like", "correlated", "unbalanced", "few-obs", "few-obs-singular"],
)
def test_mixed_estimates_shrink_ols_toward_the_fixed_effects(scenario):
    """c_j = β + H_j (ĉ_j - β) with H_j = Λ (Λ + S_j^-1)^-1, a contraction in the S_j norm;
    for a non-singular Λ also in the Λ^-1 norm and, along the eigen-directions of the
    whitened H_j, a move that stays between ĉ_j and β. Componentwise betweenness does not
    hold in 2-D (an intercept can move away from the fixed one), so it is not asserted.
    """
    data = simulate(scenario)
    fits = fit_mixed(data)
    stats, lam, s = shrinkage_parts(data, fits)
    full = stats.x_varies
    assert full.sum() > 10
    d = fits.ols[full] - fits.fixed
    b = fits.mixed[full] - fits.fixed
    s_full = s[full]
    h = lam @ np.linalg.inv(lam + np.linalg.inv(s_full))  # (G, 2, 2)
    np.testing.assert_allclose(b, np.einsum("gij,gj->gi", h, d), atol=1e-8)
    sd = np.einsum("gi,gij,gj->g", d, s_full, d)
    sb = np.einsum("gi,gij,gj->g", b, s_full, b)
    assert np.all(sb <= sd * (1 + 1e-12))
    assert fits.singular == (scenario.seed == 24)
    if fits.singular:
        return
    lam_inv = np.linalg.inv(lam)
    quad = lambda v: np.einsum("gi,ij,gj->g", v, lam_inv, v)  # noqa: E731
    assert np.all(quad(b) <= quad(d))
    vals, vecs = np.linalg.eigh(lam)
    root = vecs * np.sqrt(vals) @ vecs.T
    white = np.linalg.inv(root)
    for k in range(len(d)):
        p = white @ h[k] @ root  # symmetric, eigenvalues in [0, 1)
        ev, ew = np.linalg.eigh((p + p.T) / 2)
        assert np.all((ev >= -1e-12) & (ev < 1))
        dk, bk = ew.T @ white @ d[k], ew.T @ white @ b[k]
        assert np.all(bk * dk >= -1e-12) and np.all(np.abs(bk) <= np.abs(dk) + 1e-12)


# --------------------------------------------------------------------------------------
# Warnings, bad designs, the second engine


def test_two_observations_per_cluster_fits_with_a_warning():
    data = simulate(Scenario(obs_per_cluster=2, n_cluster=40, seed=5))
    fits = fit_mixed(data)
    assert np.isfinite(fits.criterion) and np.isfinite(fits.mixed).all()
    assert any("80 observations for 80 random effects" in w for w in fits.warnings)


def test_single_observation_clusters_only_fit_but_say_there_is_no_optimum():
    """Every cluster one row: the criterion falls without end as the random effects take
    over from σ² (lme4 refuses such data); the fit returns, flagged and explained."""
    data = simulate(
        Scenario(obs_per_cluster=1, n_cluster=13, sigma=3.0, sd_slope=0.3, cor=1.0, seed=774227)
    )
    fits = fit_mixed(data, reml=False)
    assert not fits.converged
    assert np.isfinite(fits.mixed).all() and np.isnan(fits.ols[:, 1]).all()
    assert any("every cluster has a single observation" in w for w in fits.warnings)
    assert any("13 observations for 26 random effects" in w for w in fits.warnings)


def test_singular_fit_warns_and_reports_nan_correlation_when_a_sd_is_zero():
    data = simulate(Scenario(sd_slope=0.01, obs_per_cluster=5, n_cluster=30, seed=3))
    fits = fit_mixed(data)
    assert fits.singular and fits.theta[2] == 0.0
    assert any(w.startswith("boundary (singular) fit") for w in fits.warnings)
    assert abs(fits.re_corr) == pytest.approx(1.0)
    for theta in ([0.0, 0.3, 0.0], [0.5, 0.0, 0.0]):  # no intercept, no slope variance
        assert np.isnan(dataclasses.replace(fits, theta=np.array(theta)).re_corr)
    assert dataclasses.replace(fits, theta=np.array([0.5, -0.3, 0.4])).re_corr == -0.6


@pytest.mark.parametrize(
    ("y", "x", "cluster", "message"),
    [
        ([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0], [1, 1, 2, 2], "x is constant"),
        ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1], "at least two"),
        ([1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2], "column y has 1"),
        ([1.0, 2.0], [1.0, 2.0], [1, 2], "at least three"),
        ([2.0, 2.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2], "y is constant"),
    ],
)
def test_bad_designs_raise_data_error(y, x, cluster, message):
    with pytest.raises(DataError, match=message):
        fit_mixed(make_data(y, x, cluster))


def test_statsmodels_engine_agrees_on_the_baseline():
    from shrinkcli.fit_statsmodels import fit_statsmodels

    ours = fitted("baseline", True)
    theirs = fit_statsmodels(reference_data("baseline"), methods=("lbfgs",))
    assert theirs.converged and theirs.engine == "statsmodels"
    assert abs(theirs.criterion - ours.criterion) <= 1e-3
    assert theirs.criterion >= ours.criterion - 1e-6
    np.testing.assert_allclose(theirs.fixed, ours.fixed, atol=1e-4)
    np.testing.assert_allclose(theirs.mixed, ours.mixed, atol=1e-3)
    np.testing.assert_allclose(theirs.re_cov, ours.re_cov, atol=1e-3)
    np.testing.assert_array_equal(theirs.ols, ours.ols)
    assert theirs.singular == ours.singular
