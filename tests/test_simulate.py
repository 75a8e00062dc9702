"""simulate(): the article's create_data(), bit for bit, plus the truth it keeps."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import REFERENCE, SCENARIOS

from shrinkcli.scenario import Scenario
from shrinkcli.simulate import simulate


def read_exactly(path) -> dict[str, np.ndarray]:
    """A numeric CSV's columns, each cell parsed by float() to the nearest double.

    pandas 2's read_csv can be one unit in the last place off for 17 digits.
    """
    with open(path, newline="") as f:
        header, *rows = list(csv.reader(f))
    columns = [np.array([float(v) for v in col]) for col in zip(*rows, strict=True)]
    return dict(zip(header, columns, strict=True))


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_rows_as_r_for_the_six_scenarios(name):
    ref = read_exactly(REFERENCE / name / "data.csv")
    data = simulate(Scenario(**SCENARIOS[name]))
    assert data.n_obs == len(ref["y"])
    assert np.array_equal(data.cluster, ref["cluster"])
    assert np.array_equal(data.x, ref["x"])  # bit for bit
    assert np.array_equal(data.y, ref["y"])


def test_truth_is_fixed_effect_plus_random_effect():
    s = Scenario(sigma=0.0)  # without noise, y is exactly the cluster's true line
    data = simulate(s)
    a, b = data.truth[data.codes, 0], data.truth[data.codes, 1]
    np.testing.assert_allclose(data.y, a + b * data.x, atol=1e-12)
    assert data.truth.shape == (100, 2)


def test_truth_spread_follows_the_scenario():
    data = simulate(Scenario(n_cluster=20_000, obs_per_cluster=1, sd_int=2.0, sd_slope=0.5))
    sd = data.truth.std(axis=0)
    assert abs(sd[0] - 2.0) < 0.05 and abs(sd[1] - 0.5) < 0.0125


def _r_style_effects(n_cluster: int, seed: int, sd_int: float, sd_slope: float, r_cor: float):
    """What R's create_data does with cor=r_cor: covariance matrix [[a², c], [c, b²]]."""
    from shrinkcli.rng import RRandom

    rng = RRandom(seed)
    rng.norm_rand(n_cluster * 10)  # x comes first
    vals, vecs = np.linalg.eigh(np.array([[sd_int**2, r_cor], [r_cor, sd_slope**2]]))
    root = (vecs * np.sqrt(np.maximum(vals, 0))) @ vecs.T
    return rng.norm_rand(2 * n_cluster).reshape(n_cluster, 2) @ root


def test_cor_is_a_correlation_and_r_calls_translate():
    # R's create_data(cor = 0.05, sd_int = .5, sd_slope = .25) == --cor 0.05/(0.5*0.25)
    r_cor = 0.05
    ours = simulate(Scenario(cor=r_cor / (0.5 * 0.25), seed=7))
    expected = _r_style_effects(100, 7, 0.5, 0.25, r_cor)
    np.testing.assert_allclose(ours.truth - [1.0, 0.5], expected, atol=1e-12)
    # and with many clusters the sample correlation is the correlation we asked for
    big = simulate(Scenario(n_cluster=50_000, obs_per_cluster=1, cor=0.6))
    assert abs(np.corrcoef(big.truth.T)[0, 1] - 0.6) < 0.01


def test_balanced_one_still_shuffles_rows_like_r():
    data = simulate(Scenario())
    assert not np.array_equal(data.cluster, np.sort(data.cluster))
    assert np.array_equal(np.sort(data.cluster), np.repeat(np.arange(1, 101), 10))


def test_sample_fraction_rounds_half_to_even():
    # 25 rows x 0.5 = 12.5 -> R's round gives 12
    data = simulate(Scenario(n_cluster=5, obs_per_cluster=5, balanced=0.5))
    assert data.n_obs == 12
