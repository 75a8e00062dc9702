"""The second engine tells the truth: its shortfall against shrink's optimum is measured,
warned about in one line and put in the JSON; its standard errors are lme4's formula."""

from __future__ import annotations

import functools
import json
import math

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
    assert fits.engine_check.shortfall < 1e-6  # statsmodels reaches the optimum here
    np.testing.assert_allclose(fits.fixed_se, ours.fixed_se, rtol=1e-5)


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


@pytest.mark.parametrize(("name", "reml"), [("Orange", True), ("Orange", False), ("CO2", False)])
def test_shortfall_on_r_data_is_warned_and_in_the_json(name, reml):
    """statsmodels' best method stops 0.12 (Orange REML), 0.22 (Orange ML) and 0.98 (CO2
    ML) criterion units short, and used to report converged: true."""
    data, fits = statsmodels_fit(name, reml)
    check_is_consistent(data, fits, reml)
    assert fits.engine_check.shortfall > 0.05
    assert not fits.converged
    (note,) = [w for w in fits.warnings if w.startswith("statsmodels stopped")]
    assert f"{fits.engine_check.shortfall:.3g} short of the optimum" in note
    assert "REML criterion" in note if reml else "deviance" in note
    assert f"statsmodels is {fits.engine_check.shortfall:.3g} above it" in to_text(fits)


def test_shortfall_with_x_near_a_million():
    """x + 1e6: statsmodels stops hundreds of criterion units short."""
    base = simulate(Scenario(n_cluster=30, seed=7))
    data = make_data(base.y, base.x + 1e6, base.cluster)
    fits = fit_statsmodels(data, methods=("lbfgs",))
    check_is_consistent(data, fits, True)
    assert fits.engine_check.shortfall > 10 and not fits.converged


def test_no_warning_when_statsmodels_reaches_the_optimum():
    data = reference_data("baseline")
    fits = fit_statsmodels(data, methods=("lbfgs",))
    check_is_consistent(data, fits, True)
    assert abs(fits.engine_check.shortfall) <= SHORTFALL_TOL and fits.converged
    assert not any("short of the optimum" in w for w in fits.warnings)


def test_shrink_engine_has_no_engine_check():
    fits = fitted("baseline", True)
    assert fits.engine_check is None
    assert "engine_check" not in to_json(fits)
    assert "shrink's optimum" not in to_text(fits)
    assert math.isfinite(fits.criterion)
