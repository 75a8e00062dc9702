"""R-compatible random numbers: Mersenne-Twister seeding, inversion normals, sampling.

Everything is vectorised over numpy's MT19937 (the same generator R uses), so a
million draws cost milliseconds. Each function consumes the stream exactly as
R's C code does, so the numbers agree with R bit for bit (qnorm is Wichura's
AS 241, the algorithm R uses, evaluated in the same order).
"""

from __future__ import annotations

import math

import numpy as np

_TWO_M32 = 2.3283064365386963e-10  # 2**-32, R's i2_32m1 factor
_BIG = 134217728.0  # 2**27, R's inversion constant
_MASK32 = 0xFFFFFFFF


def r_seed_state(seed: int) -> np.ndarray:
    """The 624 Mersenne-Twister words that R's set.seed(seed) produces."""
    s = seed & _MASK32
    for _ in range(50):  # R's initial scrambling
        s = (69069 * s + 1) & _MASK32
    words = np.empty(625, dtype=np.uint32)
    for j in range(625):
        s = (69069 * s + 1) & _MASK32
        words[j] = s
    # word 0 is R's position counter (set to 624 by FixupSeeds); 1..624 the state
    return words[1:]


class RRandom:
    """A stream of R's random numbers after set.seed(seed)."""

    def __init__(self, seed: int) -> None:
        self._bitgen = np.random.MT19937()
        self._bitgen.state = {
            "bit_generator": "MT19937",
            "state": {"key": r_seed_state(seed), "pos": 624},
        }

    def raw(self, n: int) -> np.ndarray:
        """The next n 32-bit outputs of the generator, as uint64."""
        return self._bitgen.random_raw(n)

    def unif_rand(self, n: int) -> np.ndarray:
        """runif(n): the 32-bit output scaled into the open interval (0, 1)."""
        return _fixup(self.raw(n).astype(np.float64) * _TWO_M32)

    def norm_rand(self, n: int) -> np.ndarray:
        """rnorm(n) with R's default "Inversion": two uniforms per normal."""
        raw = self.raw(2 * n)
        hi = (raw[0::2] >> 5).astype(np.float64)  # == floor(BIG * u1)
        lo = _fixup(raw[1::2].astype(np.float64) * _TWO_M32)
        return qnorm((hi + lo) / _BIG)

    def rnorm(self, n: int, mean: float = 0.0, sd: float = 1.0) -> np.ndarray:
        return mean + sd * self.norm_rand(n)

    def sample_int(self, n: int, size: int) -> np.ndarray:
        """sample.int(n, size) without replacement, R >= 3.6 "Rejection" (1-based)."""
        if size > n:
            raise ValueError("cannot take a sample larger than the population")
        if n > 10_000_000 and size <= n / 2:
            return self._sample_hashed(n, size)
        picks = self._rejection_indices(n, size)
        return _swap_remove(n, picks) + 1

    def _sample_hashed(self, n: int, size: int) -> np.ndarray:
        """R's sample2 (n > 1e7, size <= n/2): draw from all n, drop repeats."""
        bits = int(n - 1).bit_length()
        chunks = bits // 16 + 1
        out = np.empty(0, dtype=np.int64)
        while len(out) < size:
            cand = self._rbits(bits, chunks, 2 * (size - len(out)) + 32)
            out = np.concatenate((out, cand[cand < n]))
            _, first = np.unique(out, return_index=True)
            out = out[np.sort(first)]
        return out[:size] + 1

    def _rbits(self, bits: int, chunks: int, count: int) -> np.ndarray:
        """count values of R's rbits(bits): 16-bit chunks of floor(65536*u), masked."""
        vals = (self.raw(count * chunks) >> 16).astype(np.int64).reshape(-1, chunks)
        cand = np.zeros(count, dtype=np.int64)
        for c in range(chunks):
            cand = cand * 65536 + vals[:, c]
        return cand & ((1 << bits) - 1)

    def _rejection_indices(self, n: int, size: int) -> np.ndarray:
        """The successive R_unif_index(m) draws for m = n, n-1, ..., n-size+1."""
        out = np.empty(size, dtype=np.int64)
        done = 0
        while done < size:
            m = n - done
            bits = int(m - 1).bit_length()  # == ceil(log2(m)) for m >= 1
            chunks = bits // 16 + 1  # R's rbits loops for (n = 0; n <= bits; n += 16)
            # acceptance is above 1/2 while ceil(log2(m)) stays put: oversample 2x;
            # windows of m/64 draws keep the fixed-point scan to a few passes
            want = min(size - done, m - (1 << bits >> 1), max(256, m >> 6))
            saved = self._bitgen.state
            cand = self._rbits(bits, chunks, 2 * want + 32)
            taken, used = _scan(cand, m, want)
            out[done : done + len(taken)] = taken
            done += len(taken)
            self._bitgen.state = saved  # rewind, then replay what R consumed
            self.raw(used * chunks)
        return out


def _scan(cand: np.ndarray, m: int, want: int) -> tuple[np.ndarray, int]:
    """Accept candidates in order while each is below the shrinking pool size.

    Candidate t is taken when cand[t] < m - (number taken before t): a
    sequential rule, solved by fixed-point iteration on the running count. Each
    pass fixes at least the first wrong entry and wrong entries are rare (the
    pool shrinks slowly relative to its size), so a few vectorised passes do.
    Returns the accepted values (at most want) and how many candidates R would
    have consumed to get them.
    """
    before = np.zeros(len(cand), dtype=np.int64)
    while True:
        ok = cand < (m - before)
        new = np.concatenate(([0], np.cumsum(ok)[:-1]))
        if np.array_equal(new, before):
            break
        before = new
    idx = np.flatnonzero(ok)[:want]
    used = int(idx[-1]) + 1 if len(idx) == want and want > 0 else len(cand)
    return cand[idx], used


def _swap_remove(n: int, picks: np.ndarray) -> np.ndarray:
    """R's do_sample without replacement: y[i] = x[j]; x[j] = x[--n], vectorised.

    Draw t reads pool position p = picks[t]. If p was last written at step
    s < t, it holds what the then-last position n-1-s held at step s, which in
    turn is its original value unless that position was written before s, and
    so on. Every hop after the first depends only on s, so the chains are
    followed for all draws at once with a few gathers.
    """
    k = len(picks)
    steps = np.arange(k, dtype=np.int64)
    key = np.sort(picks * k + steps)  # writes sorted by (position, step)
    w_pos, w_step = np.divmod(key, k)
    same = w_pos[1:] == w_pos[:-1]
    prev_same = np.full(k, -1, dtype=np.int64)  # last earlier write to picks[t]
    prev_same[w_step[1:][same]] = w_step[:-1][same]
    # last write to position n-1-s before step s (only steps <= s can write it)
    end_pos = n - 1 - steps
    i = np.searchsorted(w_pos, end_pos, side="right") - 1
    i = np.where((i >= 0) & (w_step[np.maximum(i, 0)] == steps), i - 1, i)
    ok = (i >= 0) & (w_pos[np.maximum(i, 0)] == end_pos)
    prev_end = np.where(ok, w_step[np.maximum(i, 0)], -1)

    s = prev_same.copy()
    result = np.where(s < 0, picks, 0)
    pending = np.flatnonzero(s >= 0)
    while len(pending):
        nxt = prev_end[s[pending]]
        stop = nxt < 0
        result[pending[stop]] = n - 1 - s[pending[stop]]
        pending = pending[~stop]
        s[pending] = nxt[~stop]
    return result


def _fixup(u: np.ndarray) -> np.ndarray:
    """Keep uniforms strictly inside (0, 1), as R's fixup() does."""
    u = np.where(u <= 0.0, 0.5 * _TWO_M32, u)
    return np.where(1.0 - u <= 0.0, 1.0 - 0.5 * _TWO_M32, u)


def _horner(r: np.ndarray, coefs: tuple[float, ...]) -> np.ndarray:
    """((c0*r + c1)*r + c2)... in the order of R's C code, for identical rounding."""
    val = r * coefs[0]
    val += coefs[1]
    for c in coefs[2:]:
        val *= r
        val += c
    return val


_A = (2509.0809287301226727, 33430.575583588128105, 67265.770927008700853,
      45921.953931549871457, 13731.693765509461125, 1971.5909503065514427,
      133.14166789178437745, 3.387132872796366608)  # fmt: skip
_B = (5226.495278852854561, 28729.085735721942674, 39307.89580009271061,
      21213.794301586595867, 5394.1960214247511077, 687.1870074920579083,
      42.313330701600911252, 1.0)  # fmt: skip
_C = (7.7454501427834140764e-4, 0.0227238449892691845833, 0.24178072517745061177,
      1.27045825245236838258, 3.64784832476320460504, 5.7694972214606914055,
      4.6303378461565452959, 1.42343711074968357734)  # fmt: skip
_D = (1.05075007164441684324e-9, 5.475938084995344946e-4, 0.0151986665636164571966,
      0.14810397642748007459, 0.68976733498510000455, 1.6763848301838038494,
      2.05319162663775882187, 1.0)  # fmt: skip
_E = (2.01033439929228813265e-7, 2.71155556874348757815e-5, 0.0012426609473880784386,
      0.026532189526576123093, 0.29656057182850489123, 1.7848265399172913358,
      5.4637849111641143699, 6.6579046435011037772)  # fmt: skip
_F = (2.04426310338993978564e-15, 1.4215117583164458887e-7, 1.8463183175100546818e-5,
      7.868691311456132591e-4, 0.0148753612908506148525, 0.13692988092273580531,
      0.59983220655588793769, 1.0)  # fmt: skip


def _log(x: np.ndarray) -> np.ndarray:
    """log by the C library's log(), as R's qnorm calls it.

    numpy's own SIMD log (AVX-512 builds; numpy 1.24 on far more inputs) can
    differ from it in the last bit, which can change a drawn number.
    """
    return np.fromiter(map(math.log, x.tolist()), dtype=np.float64, count=len(x))


def qnorm(p: np.ndarray) -> np.ndarray:
    """Standard normal quantile by Wichura's AS 241, as in R's qnorm (0 < p < 1)."""
    p = np.asarray(p, dtype=np.float64)
    q = p - 0.5
    out = np.empty_like(p)
    central = np.abs(q) <= 0.425
    qc = q[central]
    r = 0.180625 - qc * qc
    out[central] = qc * _horner(r, _A) / _horner(r, _B)
    tail = ~central
    qt = q[tail]
    r = np.sqrt(-_log(np.where(qt > 0, 1.0 - p[tail], p[tail])))
    near = r <= 5.0
    val = np.empty_like(r)
    rn = r[near] - 1.6
    val[near] = _horner(rn, _C) / _horner(rn, _D)
    rf = r[~near] - 5.0
    val[~near] = _horner(rf, _E) / _horner(rf, _F)
    out[tail] = np.where(qt < 0, -val, val)
    return out
