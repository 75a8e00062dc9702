"""The article's create_data() for many seeds at once, bit for bit as simulate() does.

A chunk of replications shares one design (a cell of the study) and differs only in
R's seed. Everything that costs per row is done for all replications together:
R's set.seed scrambling (a closed form of its linear congruential steps), the
inversion normals (one qnorm over every replication's uniforms), the model for y, and
``dplyr::sample_frac``'s rejection sampling (one pass over the stream positions,
vectorised over the replications). Only the Mersenne-Twister draws themselves and
the 2x2 products of the random effects run per replication, through the same numpy
calls as ``shrinkcli.simulate``, so every number is the one ``simulate`` gives (the
tests compare them exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shrinkcli.rng import _BIG, _TWO_M32, RRandom, _fixup, qnorm
from shrinkcli.scenario import Scenario

_MASK32 = 0xFFFFFFFF
_LCG_A, _LCG_C = 69069, 1
_SINGLE_CHUNK = 1 << 15  # pools up to this size draw one 16-bit chunk per candidate


def _lcg_powers() -> tuple[np.ndarray, np.ndarray]:
    """(A_k, C_k) with s_k = A_k s_0 + C_k (mod 2**32) for the 624 state words of
    set.seed: word i is the seed after 52 + i steps of s = 69069 s + 1 (50 rounds of
    scrambling, then the position word, then the state; see rng.r_seed_state)."""
    a, c = 1, 0
    mult, add = [], []
    for step in range(1, 52 + 624):
        a, c = (_LCG_A * a) & _MASK32, (_LCG_A * c + _LCG_C) & _MASK32
        if step >= 52:
            mult.append(a)
            add.append(c)
    return np.array(mult, dtype=np.uint64), np.array(add, dtype=np.uint64)


_POWERS = _lcg_powers()


def seed_states(seeds: np.ndarray) -> np.ndarray:
    """The 624 Mersenne-Twister words of set.seed(seed) for every seed, (R, 624).

    A_k s + C_k < 2**64 + 2**32 wraps modulo 2**64 at worst, which keeps it right
    modulo 2**32; equal to rng.r_seed_state row by row (tested).
    """
    s = (np.asarray(seeds, dtype=np.int64) & _MASK32).astype(np.uint64)
    mult, add = _POWERS
    return ((s[:, None] * mult[None, :] + add[None, :]) & np.uint64(_MASK32)).astype(np.uint32)


@dataclass(frozen=True)
class Batch:
    """R simulated data sets of one design, in R's row order.

    ``y``, ``x`` (R, n) and ``cluster`` (R, n, labels 1..G) are exactly what
    ``simulate(scenario.with_changes(seed=seeds[r]))`` returns for row r; ``truth``
    (R, G, 2) is every cluster's true (intercept, slope), including clusters that
    ``sample_frac`` left without rows (their ``present`` is False).
    """

    seeds: np.ndarray
    y: np.ndarray
    x: np.ndarray
    cluster: np.ndarray
    truth: np.ndarray
    present: np.ndarray


def sampling_budget(n: int, size: int) -> int:
    """Stream words that drawing ``size`` of ``n`` rows takes, with a wide margin.

    Draw t from a pool of m = n - t rows is accepted with probability m / 2**b
    (b = ceil(log2 m)), so it takes a geometric number of words: the budget is the
    mean plus 8 standard deviations plus 64. A replication that needs more is
    redrawn one by one (``simulate_batch`` falls back to RRandom).
    """
    m = np.arange(n, n - size, -1, dtype=np.float64)
    span = np.exp2(np.ceil(np.log2(np.maximum(m, 1.0))))
    p = m / span
    mean = float(np.sum(1.0 / p))
    var = float(np.sum((1.0 - p) / p**2))
    return int(np.ceil(mean + 8.0 * np.sqrt(var) + 64.0))


def simulate_batch(scenario: Scenario, seeds, *, budget: int | None = None) -> Batch:
    """create_data(scenario) for each seed (scenario.seed is ignored)."""
    s = scenario
    seeds = np.asarray(seeds, dtype=np.int64)
    reps, n, g, size = len(seeds), s.n_obs, s.n_cluster, s.n_sampled
    if budget is None:
        budget = sampling_budget(n, size)
    words = 4 * n + 4 * g
    states = seed_states(seeds)
    raw = np.empty((reps, words + budget), dtype=np.uint64)
    bitgen = np.random.MT19937()
    for r in range(reps):
        bitgen.state = {"bit_generator": "MT19937", "state": {"key": states[r], "pos": 624}}
        raw[r] = bitgen.random_raw(words + budget)
    x = _normals(raw[:, : 2 * n])
    z = _normals(raw[:, 2 * n : 2 * n + 4 * g])
    noise = _normals(raw[:, 2 * n + 4 * g : words])
    varmat = np.array([[s.sd_int**2, s.covariance], [s.covariance, s.sd_slope**2]])
    values, vectors = np.linalg.eigh(varmat)
    root = (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T
    re = np.empty((reps, g, 2))
    for r in range(reps):  # the very product simulate() takes: same kernel, same bits
        re[r] = z[r].reshape(g, 2) @ root
    cluster = np.repeat(np.arange(1, g + 1), s.obs_per_cluster)
    idx = cluster - 1
    x = 0.0 + 1.0 * x  # rnorm(N): mean + sd * z, as RRandom.rnorm computes it
    y = (s.intercept + re[:, idx, 0]) + (s.beta + re[:, idx, 1]) * x + (0.0 + s.sigma * noise)
    rows = _sample_rows(raw[:, words:], seeds, n, size, words)
    y = np.take_along_axis(y, rows, axis=1)
    x = np.take_along_axis(x, rows, axis=1)
    cluster = cluster[rows]
    present = np.zeros((reps, g + 1), dtype=bool)
    present[np.arange(reps)[:, None], cluster] = True
    truth = np.stack((s.intercept + re[:, :, 0], s.beta + re[:, :, 1]), axis=-1)
    return Batch(seeds=seeds, y=y, x=x, cluster=cluster, truth=truth, present=present[:, 1:])


def _normals(raw: np.ndarray) -> np.ndarray:
    """RRandom.norm_rand on each row: two words per normal, R's inversion."""
    hi = (raw[:, 0::2] >> 5).astype(np.float64)
    lo = _fixup(raw[:, 1::2].astype(np.float64) * _TWO_M32)
    return qnorm((hi + lo) / _BIG)


def _sample_rows(raw: np.ndarray, seeds: np.ndarray, n: int, size: int, skip: int) -> np.ndarray:
    """sample.int(n, size) - 1 for each row of stream words (R's "Rejection").

    Word k is a candidate for the draw in progress, t, from a pool of m = n - t:
    its top 16 bits masked to ceil(log2 m) bits, taken when below m, and then R's
    swap-remove (y[t] = pool[j]; pool[j] = pool[m - 1]). The loop runs over the
    words, all replications at once. Pools above 2**15 rows (two chunks per
    candidate) and replications that outrun the budget are drawn one by one with
    RRandom, skipping the ``skip`` words the data took.
    """
    reps = len(seeds)
    rows = np.zeros((reps, size), dtype=np.int64)
    t = np.zeros(reps, dtype=np.int64)
    if 0 < n <= _SINGLE_CHUNK and reps:
        bits = np.array([int(m - 1).bit_length() if m else 0 for m in range(n + 1)])
        masks = (np.int64(1) << bits) - 1
        cand = np.ascontiguousarray((raw >> np.uint64(16)).astype(np.int64).T)
        pool = np.tile(np.arange(n, dtype=np.int64), (reps, 1))
        every = np.arange(reps)
        for k in range(cand.shape[0]):
            m = n - t
            c = cand[k] & masks[m]
            ok = (c < m) & (t < size)
            r = every[ok]
            if not len(r):
                if not (t < size).any():
                    break
                continue
            tr, j = t[r], c[ok]
            rows[r, tr] = pool[r, j]
            pool[r, j] = pool[r, n - 1 - tr]
            t[r] += 1
    for r in np.flatnonzero(t < size):
        rng = RRandom(int(seeds[r]))
        rng.raw(skip)
        rows[r] = rng.sample_int(n, size) - 1
    return rows
