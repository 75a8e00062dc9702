"""The pooling path: every frame with a finite kappa is exactly the model with relative
covariance kappa * T T' (T lme4's factor), checked against dense GLS in 60-digit decimal
arithmetic; a singular fit's straight start is marked (kappa = inf) and honest."""

from __future__ import annotations

import functools
import warnings
from decimal import Decimal, localcontext

import numpy as np
import pytest
from test_fit import fitted, make_data, real_data, reference_data

from shrinkcli.errors import UsageError
from shrinkcli.fit import fit_mixed, pooling_path, sufficient_stats
from shrinkcli.pipeline import KAPPA_START, pooling_path_frames
from shrinkcli.scenario import Scenario
from shrinkcli.simulate import simulate
from shrinkcli.tween import path_frames


def _solve(a: list, b: list) -> list:
    """Gauss-Jordan elimination with partial pivoting on lists of Decimals."""
    n = len(a)
    rows = [list(a[i]) + list(b[i]) for i in range(n)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(rows[r][c]))
        rows[c], rows[p] = rows[p], rows[c]
        rows[c] = [v / rows[c][c] for v in rows[c]]
        for r in range(n):
            if r != c and rows[r][c] != 0:
                f = rows[r][c]
                rows[r] = [vr - f * vc for vr, vc in zip(rows[r], rows[c], strict=True)]
    return [row[n:] for row in rows]


def dense_gls(data, theta, kappa: float) -> np.ndarray:
    """β + b_j for V_j = I + X_j (κ T T') X_j' (σ² cancels), by dense GLS in 60 digits:
    β = (Σ X'V⁻¹X)⁻¹ Σ X'V⁻¹y, b_j = κ T T' X_j' V_j⁻¹ (y_j - X_j β). Independent of the
    engine's compressed 2x2 blocks, coordinates and rotations."""
    with localcontext() as ctx:
        ctx.prec = 60
        d = Decimal
        t = [[d(theta[0]), d(0)], [d(theta[1]), d(theta[2])]]
        lam = [[d(kappa) * sum(t[i][k] * t[j][k] for k in range(2)) for j in range(2)]
               for i in range(2)]  # fmt: skip
        xtvx = [[d(0)] * 2 for _ in range(2)]
        xtvy = [[d(0)] for _ in range(2)]
        parts = []
        for g in range(len(data.labels)):
            idx = np.flatnonzero(data.codes == g)
            x = [[d(1), d(float(data.x[i]))] for i in idx]
            y = [d(float(data.y[i])) for i in idx]
            n = len(idx)
            xl = [[sum(x[i][a] * lam[a][b] for a in range(2)) for b in range(2)] for i in range(n)]
            v = [[d(int(i == j)) + sum(xl[i][b] * x[j][b] for b in range(2)) for j in range(n)]
                 for i in range(n)]  # fmt: skip
            w = _solve(v, [x[i] + [y[i]] for i in range(n)])  # V⁻¹ [X y]
            for a in range(2):
                for b in range(2):
                    xtvx[a][b] += sum(x[i][a] * w[i][b] for i in range(n))
                xtvy[a][0] += sum(x[i][a] * w[i][2] for i in range(n))
            parts.append((xl, w))
        beta = [row[0] for row in _solve(xtvx, xtvy)]
        out = []
        for xl, w in parts:
            r = [w[i][2] - w[i][0] * beta[0] - w[i][1] * beta[1] for i in range(len(w))]
            out.append([float(beta[a] + sum(xl[i][a] * r[i] for i in range(len(w))))
                        for a in range(2)])  # fmt: skip
    return np.array(out)


@functools.cache
def singular_sim():
    data = simulate(Scenario(sd_slope=0.01, obs_per_cluster=5, n_cluster=30, seed=3))
    return data, fit_mixed(data)


@functools.cache
def co2(reml: bool = True):
    data = real_data("CO2")
    return data, fit_mixed(data, reml=reml)


def spread(fits) -> np.ndarray:
    return np.nanstd(fits.ols, axis=0)


CASES = {
    "CO2": co2,
    "CO2-ML": lambda: co2(False),
    "singular-simulated": singular_sim,
    "fewer_obs": lambda: (reference_data("fewer_obs"), fitted("fewer_obs", True)),
}


@pytest.mark.parametrize("name", CASES)
def test_every_frame_with_a_finite_kappa_is_the_exact_model(name):
    """Within 1e-10 of dense 60-digit GLS (relative to the spread of the OLS estimates),
    for singular and non-singular fits, over the whole range of kappa."""
    data, fits = CASES[name]()
    kappas, path = pooling_path_frames(data, fits, 40)
    exact = np.isfinite(kappas)
    assert exact.sum() >= 2 and kappas[-1] == 1.0
    picks = np.flatnonzero(exact)
    if name == "fewer_obs":  # 100 clusters: a sample of the frames keeps the test quick
        picks = picks[:: max(1, len(picks) // 6)]
    for i in picks:
        want = dense_gls(data, fits.theta, kappas[i])
        assert np.max(np.abs(path[i] - want) / spread(fits)) < 1e-10, (i, kappas[i])
    direct = pooling_path(sufficient_stats(data), fits, [1e-6, 1.0, 1e4, KAPPA_START, 1e12])
    for k, got in zip([1e-6, 1.0, 1e4, KAPPA_START, 1e12], direct, strict=True):
        assert np.max(np.abs(got - dense_gls(data, fits.theta, k)) / spread(fits)) < 1e-10


def test_singular_path_starts_with_a_marked_straight_line():
    """CO2 is singular (θ3 = 0): the models never reach OLS, so the frames first run in a
    straight line (kappa = inf) from the OLS estimates to the model at KAPPA_START, then
    along the exact models down to kappa = 1."""
    data, fits = co2()
    assert fits.singular and fits.theta[2] == 0.0
    kappas, path = pooling_path_frames(data, fits, 60)
    line = np.isinf(kappas)
    n_line = int(line.sum())
    assert line[:n_line].all() and not line[n_line:].any()  # the straight part comes first
    assert n_line > 10  # and it is a large part of the movement
    np.testing.assert_array_equal(path[0], fits.ols)
    assert np.all(np.diff(kappas[n_line:]) < 0) and kappas[n_line] <= KAPPA_START
    end = pooling_path(sufficient_stats(data), fits, [KAPPA_START])[0]
    for p in path[1:n_line]:  # on the segment OLS -> model at KAPPA_START, in order
        share = np.sum((p - fits.ols) * (end - fits.ols)) / np.sum((end - fits.ols) ** 2)
        assert 0 < share < 1
        np.testing.assert_allclose(p, fits.ols + share * (end - fits.ols), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(path[-1], fits.mixed)


def test_singular_limit_is_not_ols_and_kappa_start_reaches_it():
    """Honesty: for a singular fit kappa -> inf leaves every cluster pooled along the
    zero-variance direction, far from OLS; by KAPPA_START the models have converged."""
    data, fits = co2()
    stats = sufficient_stats(data)
    far = pooling_path(stats, fits, [KAPPA_START, 1e4 * KAPPA_START])
    travel = np.linalg.norm((fits.ols - fits.mixed) / spread(fits), axis=1)
    gap = np.linalg.norm((far[0] - fits.ols) / spread(fits), axis=1)
    assert np.max(gap / travel) > 0.5  # not OLS
    moved = np.linalg.norm((far[1] - far[0]) / spread(fits), axis=1)
    assert np.max(moved / travel) < 1e-6  # but the limit of the exact models


@pytest.mark.parametrize("name", ["baseline", "fewer_obs", "unbalanced"])
def test_non_singular_path_reaches_ols_and_has_no_straight_part(name):
    data, fits = reference_data(name), fitted(name, True)
    kappas, path = pooling_path_frames(data, fits, 60)
    assert np.isinf(kappas[0]) and np.all(np.isfinite(kappas[1:]))
    start = pooling_path(sufficient_stats(data), fits, [KAPPA_START])[0]
    ok = np.isfinite(fits.ols).all(axis=1)
    travel = np.linalg.norm((fits.ols - fits.mixed)[ok] / spread(fits), axis=1)
    left = np.linalg.norm((start - fits.ols)[ok] / spread(fits), axis=1)
    assert np.max(left / travel) < 5e-5  # the figure the README gives for the article's six


@pytest.mark.parametrize("name", ["CO2", "fewer_obs"])
def test_frames_are_spaced_by_distance_travelled(name):
    data, fits = CASES[name]()
    _, path = pooling_path_frames(data, fits, 60)
    scale = np.std(np.where(np.isfinite(fits.ols), fits.ols, path[0]), axis=0)
    steps = np.linalg.norm(np.diff(path, axis=0) / scale, axis=2).mean(axis=1)
    assert steps.max() < 1.5 * steps.mean() and steps.min() > 0.5 * steps.mean()


def test_pooling_path_ends():
    data = reference_data("baseline")
    stats, fits = sufficient_stats(data), fitted("baseline", True)
    kappas = np.geomspace(1e-10, 1e8, 60)
    path = pooling_path(stats, fits, np.concatenate(([1.0], kappas)))
    assert path.shape == (61, 100, 2)
    np.testing.assert_allclose(path[0], fits.mixed, atol=1e-10)
    np.testing.assert_allclose(path[-1], fits.ols, atol=1e-5)
    pooled = np.polyfit(data.x, data.y, 1)[::-1]
    np.testing.assert_allclose(path[1], np.broadcast_to(pooled, (100, 2)), atol=1e-8)
    dist = np.linalg.norm(path[1:] - fits.ols, axis=-1).mean(axis=1)
    assert dist[-1] < dist[30] < dist[0]


def test_path_in_other_units_is_the_same_path():
    """(a y, b x): every frame scales as the estimates do, and the kappas are the same."""
    data, fits = co2()
    kappas, path = pooling_path_frames(data, fits, 30)
    for a, b in ((1e-120, 1e-100), (3.7e40, 2.0**-300)):
        moved = make_data(data.y * a, data.x * b, data.cluster)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            k2, p2 = pooling_path_frames(moved, fit_mixed(moved), 30)
        np.testing.assert_allclose(k2, kappas, rtol=1e-9)
        np.testing.assert_allclose(p2 / [a, a / b], path, rtol=1e-9, atol=1e-12)


def test_tween_keeps_kappa_inf_along_the_straight_part():
    data, fits = co2()
    kappas, path = pooling_path_frames(data, fits, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frames = path_frames(path, kappas, frames=80, hold=5)
    assert not np.isnan(frames.kappa).any()
    n_inf = int(np.isinf(frames.kappa).sum())
    assert n_inf > 20 and np.isinf(frames.kappa[:n_inf]).all()
    assert np.all(np.diff(frames.kappa[n_inf : frames.n_move]) < 0)


@pytest.mark.parametrize("bad", [[0.0], [-1.0], [np.inf], [np.nan]])
def test_pooling_path_needs_finite_positive_kappas(bad):
    data, fits = co2()
    with pytest.raises(UsageError, match="finite positive"):
        pooling_path(sufficient_stats(data), fits, bad)
