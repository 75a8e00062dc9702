"""The fit's views: the correlation stays a correlation, and the engine check is shown."""

from __future__ import annotations

import dataclasses
import json
import math
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fit import fitted, real_data

from shrinkcli.fit import EngineCheck, fit_mixed
from shrinkcli.summary import to_json, to_text


def test_perfect_correlation_prints_as_exactly_minus_one():
    """Orange is singular with correlation -1; from re_cov the ratio rounds to
    -1.0000000000000027 in some units, from θ it is exact."""
    fits = fit_mixed(real_data("Orange"))
    cov = fits.re_cov.copy()
    cov[0, 1] = cov[1, 0] = -1.0000000000000027 * math.sqrt(cov[0, 0] * cov[1, 1])
    odd = dataclasses.replace(fits, re_cov=cov)
    for f in (fits, odd):
        assert to_json(f)["random"]["corr"] == -1.0
        assert " -1.00" in to_text(f)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    t1=st.floats(-1e3, 1e3, allow_subnormal=False),
    t2=st.floats(-1e3, 1e3, allow_subnormal=False),
    t3=st.floats(-1e3, 1e3, allow_subnormal=False),
)
def test_json_correlation_is_in_minus_one_to_one(t1, t2, t3):
    fits = dataclasses.replace(fitted("baseline", True), theta=np.array([t1, t2, t3]))
    corr = json.loads(json.dumps(to_json(fits)))["random"]["corr"]
    if t1 == 0 or (t2 == 0 and t3 == 0):
        assert corr is None
        return
    assert -1.0 <= corr <= 1.0
    d1, d2, d3 = (Decimal(v) for v in (t1, t2, t3))  # Λ = T T' exactly, then its correlation
    exact = (d1 * d2) / ((d1 * d1) * (d2 * d2 + d3 * d3)).sqrt()
    assert math.isclose(corr, float(exact), rel_tol=1e-14, abs_tol=1e-300)


def test_engine_check_in_json_and_text():
    fits = dataclasses.replace(
        fitted("baseline", True),
        engine="statsmodels",
        engine_check=EngineCheck(shrink_criterion=3012.189508, shortfall=0.25),
    )
    doc = to_json(fits)
    assert doc["engine_check"] == {"shrink_criterion": 3012.189508, "shortfall": 0.25}
    assert "REML criterion at shrink's optimum: 3012.19 (statsmodels is 0.25 above it)" in (
        to_text(fits)
    )
    assert "engine_check" not in to_json(fitted("baseline", True))
