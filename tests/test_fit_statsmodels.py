"""The second engine tells the truth: its shortfall against shrink's optimum is measured,
warned about in one line and put in the JSON; its standard errors are lme4's formula."""

from __future__ import annotations

import functools
import json
import math
import warnings

import numpy as np
import pytest
from test_fit import (
    CASES,
    IDS,
    _ref,
    fitted,
    make_data,
    real_data,
    real_reference,
    reference_data,
)

from shrinkcli.fit import fit_mixed, fixed_cov_at, sufficient_stats
from shrinkcli.fit_statsmodels import SHORTFALL_TOL, fit_statsmodels
from shrinkcli.scenario import Scenario
from shrinkcli.simulate import simulate
from shrinkcli.summary import to_json, to_text


@functools.cache
def statsmodels_fit(name: str, reml: bool, methods: tuple[str, ...] | None = None):
    data = real_data(name)
    kwargs = {} if methods is None else {"methods": methods}
    return data, fit_statsmodels(data, reml=reml, **kwargs)


# --------------------------------------------------------------------------------------
# Standard errors: lme4's sigma^2 (X'V^-1X)^-1


@pytest.mark.parametrize(("name", "reml"), CASES, ids=IDS)
def test_lme4_se_formula_at_shrinks_optimum_matches_lme4(name, reml):
    """At shrink's optimum the formula the statsmodels engine uses and shrink's own SEs
    are one number, and both are lme4's (which stops ~1e-8 off the optimum)."""
    ref, fits = _ref(name, reml), fitted(name, reml)
    cov = fixed_cov_at(sufficient_stats(reference_data(name)), fits.theta, fits.sigma2)
    np.testing.assert_allclose(cov, fits.fixed_cov, rtol=1e-12)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), [ref["se_int"], ref["se_x"]], rtol=2e-4)


@pytest.mark.parametrize("name", ["ChickWeight", "Orange", "CO2", "Loblolly"])
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("fit", ["default", "tight"])
def test_lme4_se_formula_at_lme4s_theta_is_lme4s_vcov(name, method, fit):
    """Evaluated at lme4's own θ and σ², the formula reproduces lme4's vcov() to the
    digits stored, wherever lme4 stopped (default fits stop short on three of them)."""
    ref = real_reference(name)["fits"][method][fit]
    stats = sufficient_stats(real_data(name))
    cov = fixed_cov_at(stats, np.array(ref["theta"]), ref["sigma2"])
    np.testing.assert_allclose(cov, np.array(ref["fixed_cov"]), rtol=1e-9)


def test_statsmodels_ses_are_lme4s_formula_at_its_estimates():
    data, fits = statsmodels_fit("ChickWeight", True, ("lbfgs",))
    cov = fixed_cov_at(sufficient_stats(data), fits.theta, fits.sigma2)
    np.testing.assert_array_equal(fits.fixed_cov, cov)
    ours = fit_mixed(data)
    assert fits.engine_check.shortfall < 1e-5  # statsmodels all but reaches the optimum,
    # where the criterion is flat: θ, and so the SEs, agree to ~1e-4, not to rounding
    np.testing.assert_allclose(fits.fixed_se, ours.fixed_se, rtol=1e-3)


# --------------------------------------------------------------------------------------
# The shortfall


def check_is_consistent(data, fits, reml: bool) -> None:
    ours = fit_mixed(data, reml=reml)
    check = fits.engine_check
    assert check.shrink_criterion == pytest.approx(ours.criterion, abs=1e-9)
    assert check.shortfall == fits.criterion - check.shrink_criterion
    notes = [w for w in fits.warnings if w.startswith("statsmodels stopped")]
    assert len(notes) == int(check.shortfall > SHORTFALL_TOL)
    assert all("\n" not in w for w in fits.warnings)
    doc = json.loads(json.dumps(to_json(fits)))
    assert doc["engine_check"] == {
        "shrink_criterion": check.shrink_criterion,
        "shortfall": check.shortfall,
    }
    assert doc["converged"] == (fits.converged and check.shortfall <= SHORTFALL_TOL)


@pytest.mark.parametrize(
    ("name", "reml"), [("Orange", True), ("Orange", False), ("Loblolly", True), ("Loblolly", False)]
)
def test_shortfall_on_r_data_is_warned_and_in_the_json(name, reml):
    """statsmodels' best method stops 0.018 and 0.012 (Orange REML, ML) and 0.13 and 0.12
    (Loblolly) criterion units short; it used to report converged: true on such fits."""
    data, fits = statsmodels_fit(name, reml)
    check_is_consistent(data, fits, reml)
    assert fits.engine_check.shortfall > 0.01
    assert not fits.converged
    (note,) = [w for w in fits.warnings if w.startswith("statsmodels stopped")]
    assert f"{fits.engine_check.shortfall:.3g} short of the optimum" in note
    assert "REML criterion" in note if reml else "deviance" in note
    assert f"statsmodels is {fits.engine_check.shortfall:.3g} above it" in to_text(fits)


def test_shortfall_with_x_near_a_million():
    """x + 1e6: statsmodels stops criterion units short (2.3 here, 12 on the baseline)."""
    base = simulate(Scenario(n_cluster=30, seed=7))
    data = make_data(base.y, base.x + 1e6, base.cluster)
    fits = fit_statsmodels(data, methods=("lbfgs",))
    check_is_consistent(data, fits, True)
    assert fits.engine_check.shortfall > 1 and not fits.converged


@pytest.mark.parametrize(
    ("name", "reml", "methods"), [("baseline", True, ("lbfgs",)), ("CO2", False, None)]
)
def test_no_warning_when_statsmodels_reaches_the_optimum(name, reml, methods):
    data = reference_data(name) if name == "baseline" else real_data(name)
    fits = fit_statsmodels(data, reml=reml, **({"methods": methods} if methods else {}))
    check_is_consistent(data, fits, reml)
    assert abs(fits.engine_check.shortfall) <= SHORTFALL_TOL
    assert not any("short of the optimum" in w for w in fits.warnings)


def test_statsmodels_in_any_units():
    """Data in units 2**-300 and 2**200 reach statsmodels as the same numbers (powers of
    two), so it gives the same fit, scaled; in the user's units it used to overflow or
    fail."""
    data = real_data("Loblolly")
    base = fit_statsmodels(data, methods=("lbfgs",))
    a, b = 2.0**-300, 2.0**200
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fits = fit_statsmodels(make_data(data.y * a, data.x * b, data.cluster), methods=("lbfgs",))
    np.testing.assert_array_equal(fits.mixed, base.mixed * [a, a / b])
    np.testing.assert_array_equal(fits.theta, base.theta * [1, 1 / b, 1 / b])
    np.testing.assert_allclose(fits.fixed_se, base.fixed_se * [a, a / b], rtol=1e-13)
    assert fits.engine_check.shortfall == pytest.approx(base.engine_check.shortfall, abs=1e-8)


def test_shrink_engine_has_no_engine_check():
    fits = fitted("baseline", True)
    assert fits.engine_check is None
    assert "engine_check" not in to_json(fits)
    assert "shrink's optimum" not in to_text(fits)
    assert math.isfinite(fits.criterion)
