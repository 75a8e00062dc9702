"""R's random numbers: seeding, uniforms, inversion normals and sample.int."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shrinkcli.rng import RRandom, qnorm


def test_first_uniforms_and_normals_match_r():
    # set.seed(888); runif(3); rnorm(3) in R 4.x
    rng = RRandom(888)
    assert rng.unif_rand(3).tolist() == [
        0.025508108083158731,
        0.34668074524961412,
        0.061249827034771442,
    ]
    np.testing.assert_allclose(
        rng.norm_rand(3),
        [0.47821683200981258, -1.2584885150426399, -0.6149177672910684],
        rtol=0,
        atol=1e-15,
    )


def test_negative_seed_is_taken_modulo_two_to_the_32():
    assert np.array_equal(RRandom(-1).raw(5), RRandom(2**32 - 1).raw(5))


def test_qnorm_is_accurate_in_all_three_branches():
    from scipy.special import ndtri

    p = np.array([1e-15, 1e-12, 0.001, 0.05, 0.075, 0.3, 0.5, 0.7, 0.925, 0.99, 1 - 1e-12])
    np.testing.assert_allclose(qnorm(p), ndtri(p), rtol=1e-14, atol=1e-15)
    assert qnorm(np.array([0.5]))[0] == 0.0


def _r_sample(rng: RRandom, n: int, size: int) -> list[int]:
    """R's do_sample without replacement, written out plainly, one draw at a time."""
    pool = list(range(n))
    out = []
    for _ in range(size):
        bits = math.ceil(math.log2(n))
        while True:
            v, k = 0, 0
            while k <= bits:
                v = 65536 * v + (int(rng.raw(1)[0]) >> 16)
                k += 16
            v &= (1 << bits) - 1
            if v < n:
                break
        out.append(pool[v] + 1)
        pool[v] = pool[n - 1]
        n -= 1
    return out


@pytest.mark.parametrize(
    "seed,n,size",
    [(888, 1000, 1000), (1, 500, 250), (7, 70_000, 70_000), (3, 100, 37), (5, 131_073, 3000),
     (9, 3, 3), (11, 1, 1), (12, 2, 1)],
)  # fmt: skip
def test_vectorised_sampler_equals_plain_algorithm_and_keeps_the_stream_in_step(seed, n, size):
    fast, slow = RRandom(seed), RRandom(seed)
    assert fast.sample_int(n, size).tolist() == _r_sample(slow, n, size)
    assert np.array_equal(fast.raw(4), slow.raw(4))


def test_hashed_sampler_draws_distinct_values_in_range():
    rng = RRandom(42)
    out = rng.sample_int(20_000_001, 1000)
    assert len(set(out.tolist())) == 1000
    assert out.min() >= 1 and out.max() <= 20_000_001
