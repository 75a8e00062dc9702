"""The random-intercept models y ~ x + (1 | g) and y ~ 1 + (1 | g) against lme4.

References (R is not needed here): tests/data/lme4/<scenario>/random_intercept.json for
the article's six scenarios and lme4's sleepstudy, and the "random_intercept" block of
tests/data/real/<name>/lme4.json for ChickWeight, Orange, CO2 and Loblolly; each holds
lme4's default fit and the best of tight bobyqa/Nelder_Mead runs by REML and ML
(tests/data/lme4/make_ri_refs.R and tests/data/real/make_refs.R made them), and the first
also lme4's printed summaries (printed_real.json for the four R data sets).

The tolerances are those of test_lme4_real.py for the full model; the largest
differences seen are in brackets. lme4's fits of y ~ 1 + (1 | Tree) on Orange and
y ~ 1 + (1 | Seed) on Loblolly are singular: shrink puts θ exactly at 0, lme4's
bobyqa stops at 0 or within 1e-9 of it, with the same criterion.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from shrinkcli.data import read_csv
from shrinkcli.errors import DataError
from shrinkcli.fit import (
    SINGULAR_TOL,
    InterceptFits,
    _intercept_core,
    _intercept_solve,
    fit_intercept,
    intercept_criterion,
    sufficient_stats,
)
from shrinkcli.formula import Formula
from shrinkcli.simulate import ClusteredData
from shrinkcli.summary import estimates_columns, to_json, to_text

DATA = Path(__file__).parent / "data"
SCENARIOS = ["baseline", "more_subject_variance", "more_slope_variance", "fewer_obs",
             "more_obs", "unbalanced", "sleepstudy"]  # fmt: skip
REAL = ["ChickWeight", "Orange", "CO2", "Loblolly"]
MODELS = {"y ~ x + (1 | g)": True, "y ~ 1 + (1 | g)": False}  # model -> has a fixed slope
METHODS = ["REML", "ML"]
CASES = [(d, m, r) for d in SCENARIOS + REAL for m in MODELS for r in METHODS]
IDS = [f"{d}-{'slope' if MODELS[m] else 'mean'}-{r}" for d, m, r in CASES]

# The full model's tolerances (test_lme4_real.py); largest differences seen in brackets.
CRITERION_ATOL = 1e-6  # [6.2e-11]
FIXED_RTOL = 1e-8  # [1.5e-9]
SE_RTOL = 1e-6  # [7e-8]
COV_RTOL = 1e-5  # fixed_cov and the intercept variance [2.5e-7]
SIGMA2_RTOL = 1e-6  # [2e-8]
THETA_TOL = 2e-6  # relative [1.3e-7]
COEF_RTOL = 2e-6  # per-cluster coef() of lmer [1.6e-6]


@functools.cache
def reference(name: str) -> dict:
    """The reference JSON: "random_intercept", "y", "x", "cluster", maybe "printed"."""
    if name in REAL:
        ref = json.loads((DATA / "real" / name / "lme4.json").read_text())
        printed = json.loads((DATA / "lme4" / "printed_real.json").read_text())["printed"]
        return {**ref, "printed": printed[name]}
    return json.loads((DATA / "lme4" / name / "random_intercept.json").read_text())


@functools.cache
def data(name: str) -> ClusteredData:
    ref = reference(name)
    folder = DATA / ("real" if name in REAL else "lme4") / name
    return read_csv(folder / "data.csv", y=ref["y"], x=ref["x"], cluster=ref["cluster"])


def formula(name: str, model: str) -> Formula:
    ref = reference(name)
    return Formula(ref["y"], ref["x"] if MODELS[model] else None, ref["cluster"], False)


@functools.cache
def fitted(name: str, model: str, method: str) -> InterceptFits:
    return fit_intercept(data(name), reml=method == "REML", formula=formula(name, model))


def lme4_fits(name: str, model: str, method: str) -> dict:
    return reference(name)["random_intercept"][model][method]


def best_lme4(name: str, model: str, method: str) -> dict:
    return min(lme4_fits(name, model, method).values(), key=lambda f: f["criterion"])


def by_label(name: str, coef: dict, slope: bool) -> np.ndarray:
    """lme4's coef() rows in shrink's cluster order (R's factor order differs: by label)."""
    row = {label: i for i, label in enumerate(coef["cluster"])}
    idx = [row[str(label)] for label in data(name).labels]
    cols = [coef["intercept"]] + ([coef["slope"]] if slope else [])
    return np.column_stack(cols)[idx]


# --------------------------------------------------------------------------------------
# Agreement with lme4


def test_references_cover_the_data_sets():
    for name in SCENARIOS + REAL:
        d, ref = data(name), reference(name)
        assert (d.n_obs, d.n_clusters) == (ref["n_obs"], ref["n_clusters"])
        for model in MODELS:
            for method in METHODS:
                fits = lme4_fits(name, model, method)
                assert set(fits) == {"default", "tight"}
                assert sorted(fits["tight"]["coef"]["cluster"]) == sorted(map(str, d.labels))


@pytest.mark.parametrize(("name", "model", "method"), CASES, ids=IDS)
def test_never_worse_than_lme4_and_same_criterion(name, model, method):
    fits = fitted(name, model, method)
    lowest = best_lme4(name, model, method)["criterion"]
    assert fits.criterion <= lowest + CRITERION_ATOL
    assert fits.criterion == pytest.approx(lowest, abs=CRITERION_ATOL, rel=0)
    assert fits.converged and fits.method == method and fits.engine == "shrink"


@pytest.mark.parametrize(("name", "model", "method"), CASES, ids=IDS)
def test_fixed_effects_and_standard_errors(name, model, method):
    ref, fits = best_lme4(name, model, method), fitted(name, model, method)
    assert len(fits.fixed) == (2 if MODELS[model] else 1) == len(ref["fixed"])
    np.testing.assert_allclose(fits.fixed, ref["fixed"], rtol=FIXED_RTOL, atol=0)
    np.testing.assert_allclose(fits.fixed_se, ref["se"], rtol=SE_RTOL, atol=0)
    np.testing.assert_allclose(
        fits.fixed_cov, np.reshape(ref["fixed_cov"], fits.fixed_cov.shape), rtol=COV_RTOL, atol=0
    )


@pytest.mark.parametrize(("name", "model", "method"), CASES, ids=IDS)
def test_variance_components(name, model, method):
    ref, fits = best_lme4(name, model, method), fitted(name, model, method)
    assert fits.sigma2 == pytest.approx(ref["sigma2"], rel=SIGMA2_RTOL, abs=0)
    assert fits.singular == ref["singular"]
    (theta,) = ref["theta"]
    if ref["singular"]:  # exactly on the boundary; lme4 stops at or next to it
        assert fits.theta[0] == 0.0 and fits.re_var == 0.0
        assert theta < 1e-8 and ref["re_var"] < 1e-8 * ref["sigma2"]
        return
    assert fits.theta[0] == pytest.approx(theta, rel=THETA_TOL, abs=0)
    assert fits.re_var == pytest.approx(ref["re_var"], rel=COV_RTOL, abs=0)
    assert fits.re_var == pytest.approx(fits.theta[0] ** 2 * fits.sigma2, rel=1e-13)


@pytest.mark.parametrize(("name", "model", "method"), CASES, ids=IDS)
def test_cluster_coefficients_match_coef_of_lmer(name, model, method):
    ref, fits = best_lme4(name, model, method), fitted(name, model, method)
    expected = by_label(name, ref["coef"], MODELS[model])
    np.testing.assert_allclose(fits.mixed, expected, rtol=COEF_RTOL, atol=0)


@pytest.mark.parametrize(("name", "model", "method"), CASES, ids=IDS)
def test_criterion_at_lme4s_theta_is_lme4s(name, model, method):
    """The criterion itself, apart from the search: at each of lme4's two fits."""
    stats = sufficient_stats(data(name))
    for ref in lme4_fits(name, model, method).values():
        got = intercept_criterion(
            stats, ref["theta"][0], reml=method == "REML", slope=MODELS[model]
        )
        assert got == pytest.approx(ref["criterion"], abs=1e-9 * abs(ref["criterion"]), rel=0)


def test_lme4_singular_fits_are_where_recorded():
    singular = {(n, m, r) for n, m, r in CASES if best_lme4(n, m, r)["singular"]}
    assert singular == {(n, "y ~ 1 + (1 | g)", r) for n in ("Orange", "Loblolly") for r in METHODS}
    assert best_lme4("Orange", "y ~ 1 + (1 | g)", "REML")["theta"][0] > 0  # lme4 stops short


# --------------------------------------------------------------------------------------
# lme4's printed summary


def _printed_lines(lines: list[str]) -> list[str]:
    """R's lines, trailing spaces dropped, without what shrink does not print: the call's
    Data and Control lines (names of R variables), the optimizer's name, trailing blanks."""
    skip = ("   Data:", "Control:", "optimizer (nloptwrap)")
    out = [line.rstrip() for line in lines if not line.startswith(skip)]
    while out and out[-1] == "":
        out.pop()
    return out


@pytest.mark.parametrize(("name", "model", "method"), CASES, ids=IDS)
def test_summary_prints_lme4s_layout(name, model, method):
    """Every line as lme4 prints it. For singular fits lme4's own (not exactly zero)
    variance goes into the print, so its scientific notation is checked too."""
    fits = fitted(name, model, method)
    ref = best_lme4(name, model, method)
    if ref["singular"]:
        fits = dataclasses.replace(fits, re_var=ref["re_var"], sigma2=ref["sigma2"])
    ours = [line.rstrip() for line in to_text(fits, source="d").splitlines()]
    ours = [line for line in ours if not line.startswith("   Data:")]
    assert ours == _printed_lines(reference(name)["printed"][model][method])


def test_summary_names_the_users_columns_and_source():
    text = to_text(fitted("sleepstudy", "y ~ x + (1 | g)", "REML"), source="sleep.csv")
    assert text.startswith(
        "Linear mixed model fit by REML ['lmerMod']\n"
        "Formula: Reaction ~ Days + (1 | Subject)\n"
        "   Data: sleep.csv\n"
    )
    assert " Subject  (Intercept) 1378.2   37.12\n Residual              960.5   30.99\n" in text
    assert "Days         10.4673     0.8042   13.02\n" in text
    ml = to_text(fitted("sleepstudy", "y ~ 1 + (1 | g)", "ML"))
    assert "maximum likelihood  ['lmerMod']" in ml and "Days" not in ml


def test_json_and_estimates_of_a_random_intercept_fit():
    fits = fitted("sleepstudy", "y ~ x + (1 | g)", "REML")
    doc = json.loads(json.dumps(to_json(fits, source="s.csv")))
    assert doc["model"] == "y ~ x + (1 | g)"
    assert doc["formula"] == "Reaction ~ Days + (1 | Subject)"
    assert set(doc["fixed"]) == {"intercept", "slope"}
    assert set(doc["random"]) == {"intercept", "residual"}
    assert doc["random"]["intercept"]["var"] == pytest.approx(1378.1786, abs=1e-3)
    assert doc["fixed"]["slope"]["estimate"] == pytest.approx(10.46729, abs=1e-5)
    assert doc["theta"] == [pytest.approx(1.19788, abs=1e-5)] and doc["singular"] is False
    cols = estimates_columns(fits, data("sleepstudy").labels, None)
    assert list(cols) == ["cluster", "n", "ols_intercept", "ols_slope", "mixed_intercept",
                          "mixed_slope", "shrinkage"]  # fmt: skip
    mean = estimates_columns(fitted("sleepstudy", "y ~ 1 + (1 | g)", "REML"), [], None)
    assert list(mean) == ["cluster", "n", "ols_intercept", "mixed_intercept", "shrinkage"]
    assert "slope" not in to_json(fitted("sleepstudy", "y ~ 1 + (1 | g)", "REML"))["fixed"]


# --------------------------------------------------------------------------------------
# No pooling, shrinkage and the optimum


@pytest.mark.parametrize("name", ["baseline", "unbalanced", "sleepstudy", "CO2"])
def test_no_pooling_is_lm_with_a_dummy_per_cluster(name):
    """ols of y ~ x + (1 | g) is lm(y ~ x + g): cluster intercepts at the common within
    slope; of y ~ 1 + (1 | g) the cluster means."""
    d = data(name)
    dummies = (d.codes[:, None] == np.arange(d.n_clusters)).astype(float)
    coef, *_ = np.linalg.lstsq(np.column_stack((dummies, d.x)), d.y, rcond=None)
    ols = fitted(name, "y ~ x + (1 | g)", "REML").ols
    np.testing.assert_allclose(ols[:, 0], coef[:-1], rtol=1e-10, atol=1e-10 * np.abs(d.y).max())
    np.testing.assert_allclose(ols[:, 1], coef[-1], rtol=1e-10)
    means = np.bincount(d.codes, d.y) / np.bincount(d.codes)
    np.testing.assert_allclose(fitted(name, "y ~ 1 + (1 | g)", "ML").ols[:, 0], means, rtol=1e-13)


@pytest.mark.parametrize(("name", "model", "method"), CASES, ids=IDS)
def test_mixed_is_the_shrinkage_factor_of_the_way_to_the_population(name, model, method):
    """b_j = (1 - B_j)(ȳ_j - β1 x̄_j - β0) with B_j = σ²/n_j / (τ² + σ²/n_j)."""
    fits, d = fitted(name, model, method), data(name)
    n = np.bincount(d.codes).astype(float)
    b = fits.sigma2 / n / (fits.re_var + fits.sigma2 / n)
    np.testing.assert_allclose(fits.shrinkage, b, rtol=1e-12)
    own = np.bincount(d.codes, d.y) / n
    if MODELS[model]:
        own = own - fits.fixed[1] * np.bincount(d.codes, d.x) / n
        np.testing.assert_array_equal(fits.mixed[:, 1], fits.fixed[1])
    scale = np.abs(d.y).max()
    np.testing.assert_allclose(
        fits.mixed[:, 0] - fits.fixed[0], (1 - b) * (own - fits.fixed[0]), atol=1e-10 * scale
    )
    assert np.all((b > 0) & (b <= 1))


@pytest.mark.parametrize("name", ["fewer_obs", "CO2", "Orange", "Loblolly"])
@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("method", METHODS)
def test_optimum_is_global_on_a_dense_grid(name, model, method):
    fits = fitted(name, model, method)
    stats = sufficient_stats(data(name))
    grid = np.concatenate([[0.0], np.geomspace(1e-5, 1e3, 4001)])
    values = intercept_criterion(stats, grid, reml=method == "REML", slope=MODELS[model])
    assert fits.criterion <= values.min() + 1e-9


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("slope", [True, False])
def test_derivatives_match_finite_differences(reml, slope):
    core = _intercept_core(sufficient_stats(data("unbalanced")), slope)
    for t in (0.0, 0.03, 0.4, 2.5, 40.0):
        h = 1e-6 * max(t, 1e-3)
        s, up, down = (_intercept_solve(core, np.array([v]), reml) for v in (t, t + h, t - h))
        if t == 0.0:  # one-sided at the boundary
            assert s.d1[0] == pytest.approx((up.value[0] - s.value[0]) / h, rel=1e-4)
            continue
        assert s.d1[0] == pytest.approx((up.value[0] - down.value[0]) / (2 * h), rel=1e-6)
        assert s.d2[0] == pytest.approx((up.d1[0] - down.d1[0]) / (2 * h), rel=1e-5)


@pytest.mark.parametrize("slope", [True, False])
def test_any_units(slope):
    """y in 1e60 and x in 1e-60 units: θ unchanged, estimates scaled (relative 1e-12),
    the criterion moved by the known constant."""
    d = data("sleepstudy")
    ky, kx = 1e60, 1e-60
    big = dataclasses.replace(d, y=d.y * ky, x=d.x * kx)
    for reml in (True, False):
        a = fit_intercept(d, reml=reml, slope=slope)
        b = fit_intercept(big, reml=reml, slope=slope)
        assert b.theta[0] == pytest.approx(a.theta[0], rel=1e-12)
        scale = np.array([ky, ky / kx])[: len(a.fixed)]
        np.testing.assert_allclose(b.fixed, a.fixed * scale, rtol=1e-12)
        np.testing.assert_allclose(b.mixed, a.mixed * scale, rtol=1e-12)
        np.testing.assert_allclose(b.fixed_cov, a.fixed_cov * np.outer(scale, scale), rtol=1e-11)
        assert b.re_var == pytest.approx(a.re_var * ky**2, rel=1e-12)
        assert b.sigma2 == pytest.approx(a.sigma2 * ky**2, rel=1e-12)
        p = len(a.fixed)
        shift = 2 * (d.n_obs - p if reml else d.n_obs) * math.log(ky)
        if reml and slope:
            shift += 2 * math.log(kx)
        assert b.criterion == pytest.approx(a.criterion + shift, abs=1e-8 * abs(shift))


# --------------------------------------------------------------------------------------
# Designs that are hard or impossible


def small(y, x, cluster) -> ClusteredData:
    cluster = np.asarray(cluster)
    labels, codes = np.unique(cluster, return_inverse=True)
    return ClusteredData(y=np.asarray(y, float), x=np.asarray(x, float), cluster=cluster,
                         codes=codes, labels=labels, source="test")  # fmt: skip


def test_singular_fit_is_exactly_zero_and_says_so():
    rng = np.random.default_rng(4)
    cluster = np.repeat(np.arange(20), 5)
    d = small(rng.normal(size=100), rng.normal(size=100), cluster)  # no cluster effect
    fits = fit_intercept(d)
    assert fits.singular and fits.theta[0] < SINGULAR_TOL
    if fits.theta[0] == 0.0:
        np.testing.assert_allclose(fits.mixed[:, 0], fits.fixed[0], rtol=1e-14)
        assert np.all(fits.shrinkage == 1.0)
    assert any(w.startswith("boundary (singular) fit") for w in fits.warnings)
    assert "boundary (singular) fit: see help('isSingular')" in to_text(fits)


def test_single_observation_clusters_fit_but_say_there_is_no_optimum():
    d = small([1.0, 3.0, 2.0, 5.0, 4.0], [0.1, 0.5, 0.2, 0.9, 0.4], [1, 2, 3, 4, 5])
    fits = fit_intercept(d, slope=True)
    assert not fits.converged and np.isfinite(fits.mixed).all()
    assert any("every cluster has a single observation" in w for w in fits.warnings)
    assert any("5 observations for 5 random effects" in w for w in fits.warnings)


def test_clusters_that_never_vary_inside_run_away():
    """y constant inside every cluster: the intercepts explain everything and σ² -> 0."""
    d = small([1.0, 1.0, 2.0, 2.0, 4.0, 4.0], [1.0, 2.0, 1.0, 3.0, 2.0, 5.0], [1, 1, 2, 2, 3, 3])
    fits = fit_intercept(d, slope=False)
    assert not fits.converged
    assert any("absorb the data" in w for w in fits.warnings)


def test_x_constant_within_every_cluster_fits_without_a_no_pooling_slope():
    d = small([1.0, 1.5, 2.0, 2.2, 4.0, 3.1, 5.0, 5.5],
              [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0], [1, 1, 2, 2, 3, 3, 4, 4])  # fmt: skip
    fits = fit_intercept(d, slope=True)
    assert np.isfinite(fits.fixed).all() and np.isfinite(fits.mixed).all()
    assert np.isnan(fits.ols).all()  # lm(y ~ x + g) has no x coefficient: x is in g


@pytest.mark.parametrize(
    ("y", "x", "cluster", "slope", "message"),
    [
        ([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0], [1, 1, 2, 2], True, "x is constant"),
        ([2.0, 2.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2], False, "y is constant"),
        ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1], False, "at least two"),
        ([1.0, 2.0], [1.0, 2.0], [1, 2], True, "at least 3 are needed"),
        ([1.0, np.inf, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2], False, "column y has 1"),
    ],
)
def test_bad_designs_raise_data_error(y, x, cluster, slope, message):
    with pytest.raises(DataError, match=message):
        fit_intercept(small(y, x, cluster), slope=slope)


def test_mean_model_ignores_x_entirely():
    d = data("fewer_obs")
    a = fit_intercept(d, slope=False)
    b = fit_intercept(dataclasses.replace(d, x=np.zeros(d.n_obs)), slope=False)
    assert a.criterion == b.criterion and np.array_equal(a.mixed, b.mixed)
