"""lme4's ``y ~ x + (x | cluster)`` for many data sets at once, as one vectorised problem.

Each replication of a study is a small problem (three unknowns, a few dozen
clusters), so one fit at a time spends its time in Python, not in arithmetic.
Here the data sets of a chunk are stacked: every per-cluster array is (B, G), one
row a problem, and fit.py's own block formulas (``fit._solve``) evaluate all rows
in one call. Clusters that ``sample_frac`` left empty are rows of zeros, which add
exactly nothing (N_j = I).

The search follows ``fit._optimise``: the same 85-point grid, then local searches
from lme4's start, from the best interior grid points and on the two boundary
faces (correlation ±1; no intercept variance), the best result winning, with an
exact boundary optimum preferred to an interior point within 1e-10 of it. The local
search is Newton's method with the exact gradient (fit.py's) and the exact Hessian
(``_derivatives``), safeguarded (absolute eigenvalues, a capped step, Armijo
backtracking), run on every (problem, start) pair at once; each pair stops on its
own test, so its result depends only on its own data. Problems that need fit.py's special
handling (too few clusters, constant x or y, a runaway optimum, a single
observation per cluster) or whose search did not converge are flagged for
``fit.fit_mixed`` instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from shrinkcli.fit import (
    _START,
    SINGULAR_TOL,
    SufficientStats,
    _blups,
    _compress,
    _constant,
    _Core,
    _grid,
    _lam_from_phi,
    _solve,
    _spread,
)

WALD_Z = 1.959963984540054  # qnorm(0.975)
_INTERIOR_STARTS = 3  # best interior grid points searched, as fit._search does
_FACES = ((True, True, True), (True, True, False), (False, True, False))  # free φ per start kind
_MAX_NEWTON = 60
_MAX_HALVINGS = 40
_GRID_BLOCK = 20_000  # elements per (problems x grid x clusters) block: cache-sized
_STEP_CAP = 2.0  # largest change of any φ in one step, relative to max(1, max|φ|)


@dataclass(frozen=True)
class BatchStats:
    """fit.SufficientStats for B data sets over G cluster slots, arrays (B, G) and (B,).

    A slot without rows has n = 0 and zero sums; ``x_exp``, ``y_exp`` are each data
    set's powers of two, as fit.sufficient_stats takes them.
    """

    n: np.ndarray
    x_mean: np.ndarray
    y_mean: np.ndarray
    cxx: np.ndarray
    cxy: np.ndarray
    cyy: np.ndarray
    x_exp: np.ndarray
    y_exp: np.ndarray

    x_varies = SufficientStats.x_varies


def _exponents(v: np.ndarray) -> np.ndarray:
    big = np.max(np.abs(v), axis=1)
    return np.where(big > 0, np.frexp(big)[1], 0).astype(np.int64)


def batch_stats(y: np.ndarray, x: np.ndarray, codes: np.ndarray, g: int) -> BatchStats:
    """Per-cluster sums of B data sets (rows of y, x, codes in 0..g-1), computed as
    fit.sufficient_stats computes them (corrected two-pass, on power-of-two-scaled
    values), with every data set's bincount done in one call."""
    b = y.shape[0]
    x_exp, y_exp = _exponents(x), _exponents(y)
    x = np.ldexp(x, -x_exp[:, None])
    y = np.ldexp(y, -y_exp[:, None])
    flat = (codes + g * np.arange(b)[:, None]).ravel()

    def sums(w: np.ndarray) -> np.ndarray:
        return np.bincount(flat, w.ravel(), b * g).reshape(b, g)

    n = np.bincount(flat, minlength=b * g).reshape(b, g)
    div = np.maximum(n, 1)
    x_mean = sums(x) / div
    y_mean = sums(y) / div
    dx = x - np.take_along_axis(x_mean, codes, axis=1)
    dy = y - np.take_along_axis(y_mean, codes, axis=1)
    ex, ey = sums(dx) / div, sums(dy) / div
    dx -= np.take_along_axis(ex, codes, axis=1)
    dy -= np.take_along_axis(ey, codes, axis=1)
    return BatchStats(
        n=n.astype(np.int64),
        x_mean=x_mean + ex,
        y_mean=y_mean + ey,
        cxx=sums(dx * dx),
        cxy=sums(dx * dy),
        cyy=sums(dy * dy),
        x_exp=x_exp,
        y_exp=y_exp,
    )


def batch_core(stats: BatchStats) -> tuple[_Core, np.ndarray]:
    """fit._core for every data set: a _Core whose fields are arrays (B, G) and (B,),
    and a mask of the data sets fit._core would refuse (fewer than two clusters or
    three rows, constant x or y): those rows hold harmless stand-in values."""
    n_obs = stats.n.sum(axis=1)
    clusters = (stats.n > 0).sum(axis=1)
    tot = np.maximum(n_obs, 1)
    shift, total = _spread(stats.n, stats.x_mean, stats.cxx, tot)
    y_shift, y_total = _spread(stats.n, stats.y_mean, stats.cyy, tot)
    bad = (clusters < 2) | (n_obs < 3) | _constant(total, shift, n_obs)
    bad |= _constant(y_total, y_shift, n_obs)
    scale = np.sqrt(np.where(bad, 1.0, total) / tot)
    y_scale = np.sqrt(np.where(bad, 1.0, y_total) / tot)
    core = _compress(stats, n_obs, shift, scale, y_shift, y_scale)
    return core, bad


def _rows(core: _Core, idx: np.ndarray) -> _Core:
    """The problems ``idx`` of a batched core (rows may repeat)."""
    return _Core(*(getattr(core, f.name)[idx] for f in fields(_Core)))


def _values(core: _Core, phi: np.ndarray, reml: bool) -> np.ndarray:
    """The criterion (standard coordinates) of problem b at phi[b], (B,)."""
    return _solve(core, _lam_from_phi(phi), reml).value


# Per-cluster polynomials in W_j = (w11, w12, w22) and g_j = (g1, g2) whose sums over the
# clusters make the criterion's first and second derivatives in Λ = [[λ1, λ2], [λ2, λ3]]
# (directions E_a = dΛ/dλ_a). Written out once, symbolically, at import; see _derivatives.


def _poly_var(i: int) -> dict:
    e = [0] * 5
    e[i] = 1
    return {tuple(e): 1.0}


def _poly_add(*ps: dict) -> dict:
    out: dict = {}
    for p in ps:
        for k, v in p.items():
            out[k] = out.get(k, 0.0) + v
    return {k: v for k, v in out.items() if v != 0}


def _poly_mul(p: dict, q: dict) -> dict:
    out: dict = {}
    for k1, v1 in p.items():
        for k2, v2 in q.items():
            k = tuple(a + b for a, b in zip(k1, k2, strict=True))
            out[k] = out.get(k, 0.0) + v1 * v2
    return {k: v for k, v in out.items() if v != 0}


def _mm(a: list, b: list) -> list:
    return [
        [_poly_add(_poly_mul(a[i][0], b[0][j]), _poly_mul(a[i][1], b[1][j])) for j in range(2)]
        for i in range(2)
    ]


def _symbolic() -> tuple[list, dict]:
    """The monomials and, per named quantity, its (coefficient, monomial index) terms."""
    one, zero = {(0,) * 5: 1.0}, {}
    w = [[_poly_var(0), _poly_var(1)], [_poly_var(1), _poly_var(2)]]
    g = [_poly_var(3), _poly_var(4)]
    e = [[[one, zero], [zero, zero]], [[zero, one], [one, zero]], [[zero, zero], [zero, one]]]
    q: dict[str, dict] = {}
    pairs = [(a, b) for a in range(3) for b in range(a, 3)]
    for a in range(3):
        we = _mm(w, e[a])
        q[f"trW{a}"] = _poly_add(we[0][0], we[1][1])
        p = _mm(we, w)
        for i, j in ((0, 0), (0, 1), (1, 1)):
            q[f"P{a}{i}{j}"] = p[i][j]
        eg = [_poly_add(_poly_mul(e[a][i][0], g[0]), _poly_mul(e[a][i][1], g[1])) for i in (0, 1)]
        q[f"gEg{a}"] = _poly_add(_poly_mul(g[0], eg[0]), _poly_mul(g[1], eg[1]))
        for i in (0, 1):
            q[f"al{a}{i}"] = _poly_add(_poly_mul(w[i][0], eg[0]), _poly_mul(w[i][1], eg[1]))
    for a, b in pairs:
        wea, web = _mm(w, e[a]), _mm(w, e[b])
        t = _mm(wea, web)
        q[f"T{a}{b}"] = _poly_add(t[0][0], t[1][1])
        r1, r2 = _mm(_mm(wea, web), w), _mm(_mm(web, wea), w)
        for i, j in ((0, 0), (0, 1), (1, 1)):
            q[f"R{a}{b}{i}{j}"] = _poly_add(r1[i][j], r2[i][j])
        # g'E_a W E_b g
        ega = [_poly_add(*(_poly_mul(e[a][k][i], g[i]) for i in (0, 1))) for k in (0, 1)]
        egb = [_poly_add(*(_poly_mul(e[b][k][i], g[i]) for i in (0, 1))) for k in (0, 1)]
        wegb = [_poly_add(_poly_mul(w[k][0], egb[0]), _poly_mul(w[k][1], egb[1])) for k in (0, 1)]
        q[f"gEWEg{a}{b}"] = _poly_add(_poly_mul(ega[0], wegb[0]), _poly_mul(ega[1], wegb[1]))
    monomials = sorted({m for p in q.values() for m in p}, key=lambda m: (sum(m), m))
    index = {m: i for i, m in enumerate(monomials)}
    terms = {name: [(c, index[m]) for m, c in sorted(p.items())] for name, p in q.items()}
    return monomials, terms


_MONOMIALS, _TERMS = _symbolic()


def _monomial_sums(w11, w12, w22, g1, g2) -> list[np.ndarray]:
    """Σ_j of every monomial in _MONOMIALS, each (B,); products shared by degree."""
    base = (w11, w12, w22, g1, g2)
    cache: dict[tuple, np.ndarray] = {}

    def prod(m: tuple) -> np.ndarray:
        if m in cache:
            return cache[m]
        i = next(k for k in range(5) if m[k])
        rest = tuple(v - (k == i) for k, v in enumerate(m))
        out = base[i] if sum(rest) == 0 else prod(rest) * base[i]
        cache[m] = out
        return out

    return [prod(m).sum(-1) for m in _MONOMIALS]


def _derivatives(core: _Core, phi: np.ndarray, reml: bool, hessian: bool = True):
    """The criterion (B,), its gradient (B, 3) and Hessian (B, 3, 3) in φ, exactly.

    With f = Σ log|N_j| + [REML] log|V| + dof log r² and directions E_a of Λ:
      ∂f[E_a]   = Σ tr(W E_a) - [REML] tr(V⁻¹P_a) - (dof/r²) Σ g'E_a g,  P_a = Σ W E_a W,
      ∂²f[a, b] = -Σ tr(W E_a W E_b)
                  + [REML] (tr(V⁻¹R_ab) - tr(V⁻¹P_a V⁻¹P_b)),  R_ab = Σ (W E_a W E_b W + ')
                  + dof (r²_ab / r² - r²_a r²_b / r⁴),
      r²_a = -Σ g'E_a g,  r²_ab = 2 Σ g'E_a W E_b g - 2 α_a'V⁻¹α_b,  α_a = Σ W E_a g
    (W_j, g_j and V as in fit._solve: W changes as -W E W, g as -W E g - W dβ, and
    β is profiled out). Then with Λ = T T', T = [[φ1, 0], [φ2, φ3]]:
    ∇φ = J'∇λ and Hφ = J'HλJ + Σ_a ∂f/∂λ_a ∂²λ_a/∂φ².
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        s = _solve(core, _lam_from_phi(phi), reml)
        (w11, w12, w22), (g1, g2) = s.w, s.g
        sums = _monomial_sums(w11, w12, w22, g1, g2)

        def q(name: str) -> np.ndarray:
            terms = _TERMS[name]
            out = terms[0][0] * sums[terms[0][1]]
            for c, m in terms[1:]:
                out = out + c * sums[m]
            return out

        i11, i12, i22 = s.vinv
        dof, r2 = s.dof, s.r2
        k = dof / r2
        pm = [(q(f"P{a}00"), q(f"P{a}01"), q(f"P{a}11")) for a in range(3)]
        r2a = [-q(f"gEg{a}") for a in range(3)]
        grad_l = []
        for a in range(3):
            ga = q(f"trW{a}") + k * r2a[a]
            if reml:
                p11, p12, p22 = pm[a]
                ga = ga - (i11 * p11 + 2 * i12 * p12 + i22 * p22)
            grad_l.append(ga)
        p1, p2, p3 = phi[:, 0], phi[:, 1], phi[:, 2]
        zero = np.zeros_like(p1)
        jac = np.stack(
            (
                np.stack((2 * p1, zero, zero), axis=1),
                np.stack((p2, p1, zero), axis=1),
                np.stack((zero, 2 * p2, 2 * p3), axis=1),
            ),
            axis=1,
        )  # jac[b, a, i] = ∂λ_a/∂φ_i
        gl = np.stack(grad_l, axis=1)
        grad = np.einsum("bai,ba->bi", jac, gl)
        if not hessian:
            return s.value, grad, None
        vp = []  # V⁻¹P_a as full 2x2 entries
        for p11, p12, p22 in pm:
            vp.append(
                (
                    i11 * p11 + i12 * p12,
                    i11 * p12 + i12 * p22,
                    i12 * p11 + i22 * p12,
                    i12 * p12 + i22 * p22,
                )
            )
        al = [(q(f"al{a}0"), q(f"al{a}1")) for a in range(3)]
        hl = np.empty((len(p1), 3, 3))
        for a in range(3):
            for b in range(a, 3):
                h = -q(f"T{a}{b}")
                x0, x1 = al[a]
                y0, y1 = al[b]
                r2ab = 2 * q(f"gEWEg{a}{b}") - 2 * (
                    x0 * (i11 * y0 + i12 * y1) + x1 * (i12 * y0 + i22 * y1)
                )
                h = h + dof * (r2ab / r2 - r2a[a] * r2a[b] / (r2 * r2))
                if reml:
                    r11, r12, r22 = q(f"R{a}{b}00"), q(f"R{a}{b}01"), q(f"R{a}{b}11")
                    a00, a01, a10, a11 = vp[a]
                    b00, b01, b10, b11 = vp[b]
                    tr_pp = a00 * b00 + a01 * b10 + a10 * b01 + a11 * b11
                    h = h + (i11 * r11 + 2 * i12 * r12 + i22 * r22) - tr_pp
                hl[:, a, b] = h
                hl[:, b, a] = h
        hess = np.einsum("bai,bac,bcj->bij", jac, hl, jac)
        g1l, g2l, g3l = grad_l
        hess[:, 0, 0] += 2 * g1l
        hess[:, 0, 1] += g2l
        hess[:, 1, 0] += g2l
        hess[:, 1, 1] += 2 * g3l
        hess[:, 2, 2] += 2 * g3l
    return s.value, grad, hess


def grid_values(core: _Core, reml: bool) -> np.ndarray:
    """The criterion at fit._grid()'s points for every problem, (B, P), in blocks."""
    grid = _grid()
    lam = _lam_from_phi(grid)  # each (P, 1)
    g = core.l11.shape[1]
    step = max(1, _GRID_BLOCK // (len(grid) * g))
    out = []
    for lo in range(0, core.l11.shape[0], step):
        part = _rows(core, np.arange(lo, min(lo + step, core.l11.shape[0])))
        wide = _Core(
            part.l11[:, None, :], part.l21[:, None, :], part.l22[:, None, :],
            part.z1[:, None, :], part.z2[:, None, :], part.rss[:, None], part.n_obs[:, None],
            part.shift, part.scale, part.y_shift, part.y_scale, part.x_exp, part.y_exp,
        )  # fmt: skip
        out.append(_solve(wide, lam, reml).value)
    return np.concatenate(out)


@dataclass(frozen=True)
class Optimum:
    """Each problem's best φ (standard coordinates), its criterion, whether its
    search converged, and the largest gradient on its face there."""

    phi: np.ndarray
    value: np.ndarray
    converged: np.ndarray
    gradient: np.ndarray


def optimise(core: _Core, reml: bool) -> Optimum:
    """fit._optimise's search for every problem at once (see the module)."""
    b = core.l11.shape[0]
    grid = _grid()
    values = grid_values(core, reml)
    interior = np.flatnonzero(grid[:, 2] != 0)
    best_int = interior[np.argsort(values[:, interior], axis=1, kind="stable")]
    starts = [np.broadcast_to(_START, (b, 3))]
    starts += [grid[best_int[:, k]] for k in range(_INTERIOR_STARTS)]
    for mask in (grid[:, 2] == 0, grid[:, 0] == 0):
        idx = np.flatnonzero(mask)
        starts.append(grid[idx[np.argmin(values[:, idx], axis=1)]])
    kind = np.array([0] * (1 + _INTERIOR_STARTS) + [1, 2])  # per start: interior or a face
    free = np.array(_FACES)[kind]  # (K, 3)
    x0 = np.stack(starts) * free[:, None, :]  # (K, B, 3)
    phi, val, ok, grad = _newton(core, x0, free, kind, reml)
    # best per problem; an exact boundary optimum wins over an interior one within 1e-10
    val = np.where(np.isfinite(val), val, np.inf)
    lowest = val.min(axis=0)
    face_ok = (kind[:, None] > 0) & (val <= lowest + 1e-10)
    score = np.where(face_ok, -np.inf, val)
    pick = np.argmin(score, axis=0)  # first of equals, as min() over fit's run list
    cols = np.arange(b)
    chosen_phi, chosen_val = phi[pick, cols], val[pick, cols]
    chosen_ok, chosen_grad = ok[pick, cols], grad[pick, cols]
    none = values[:, -1]  # no random effects at all, as fit._search lists it
    zero = none < chosen_val
    chosen_phi = np.where(zero[:, None], 0.0, chosen_phi)
    chosen_val = np.where(zero, none, chosen_val)
    chosen_ok = chosen_ok | zero
    return Optimum(chosen_phi, chosen_val, chosen_ok, chosen_grad)


def _newton(
    core: _Core, x0: np.ndarray, free: np.ndarray, kind: np.ndarray, reml: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Safeguarded Newton from K starts for each of B problems (x0 is (K, B, 3); start k
    searches the free φ of ``free[k]``). Returns φ (K, B, 3), the criterion (K, B),
    whether each search converged and its largest free gradient; a start that comes
    within _SAME of an earlier start of the same kind is in its basin and stops (its
    criterion becomes inf). Each search stops on its own test, so a problem's result
    depends on its own data only, never on the other problems of the batch.
    """
    k_starts, b = x0.shape[:2]
    phi = x0.reshape(-1, 3).copy()
    fr = np.repeat(free, b, axis=0)
    own = np.tile(np.arange(b), k_starts)
    value, grad, hess = _derivatives(_rows(core, own), phi, reml)
    grad = grad * fr
    done = np.zeros(len(phi), dtype=bool)
    ok = np.zeros(len(phi), dtype=bool)
    dropped = np.zeros(len(phi), dtype=bool)
    for _ in range(_MAX_NEWTON):
        _drop_duplicates(phi, done, dropped, kind, b)
        size = np.max(np.abs(grad), axis=1)
        stop = ~done & ((size <= 1e-10) | ~np.isfinite(value))
        ok |= stop & np.isfinite(value)
        done |= stop
        live = np.flatnonzero(~done)
        if not len(live):
            break
        sub = _rows(core, own[live])
        p, g, f, free_l = phi[live], grad[live], value[live], fr[live]
        step = _newton_step(p, hess[live], g, free_l)
        slope = np.sum(g * step, axis=1)
        noise = 1e-12 * np.maximum(np.abs(f), 1.0)
        v1, g1, h1 = _derivatives(sub, p + step, reml)
        # the full step; near the optimum it is right even where f is flat in rounding
        accepted = np.isfinite(v1) & ((v1 <= f + 1e-4 * slope) | (v1 <= f + noise))
        t = np.ones(len(live))
        todo = np.flatnonzero(~accepted)
        for _h in range(_MAX_HALVINGS):
            if not len(todo):
                break
            t[todo] *= 0.5
            v = _values(_rows(sub, todo), p[todo] + t[todo, None] * step[todo], reml)
            good = np.isfinite(v) & (v <= f[todo] + 1e-4 * t[todo] * slope[todo])
            accepted[todo[good]] = True
            todo = todo[~good]
        halved = np.flatnonzero(accepted & (t < 1))
        if len(halved):
            v1[halved], g1[halved], h1[halved] = _derivatives(
                _rows(sub, halved), p[halved] + t[halved, None] * step[halved], reml
            )
        new = p + t[:, None] * step
        moved = np.max(np.abs(t[:, None] * step), axis=1)
        acc = np.flatnonzero(accepted)
        g1 = g1 * free_l
        shrank = np.max(np.abs(g1[acc]), axis=1) < np.max(np.abs(g[acc]), axis=1)
        # a flat step is kept only if it shrinks the gradient (as fit._polish)
        keep = shrank | (v1[acc] < f[acc] - noise[acc])
        kept, sel = live[acc[keep]], acc[keep]
        phi[kept], value[kept], grad[kept], hess[kept] = new[sel], v1[sel], g1[sel], h1[sel]
        tiny = moved[acc] <= 1e-14 * np.maximum(1.0, np.max(np.abs(p[acc]), axis=1))
        fin = live[acc[~keep | tiny]]
        done[fin] = True
        ok[fin] = True
        stuck = live[~accepted]  # no decrease left: optimal if the gradient is small
        done[stuck] = True
        ok[stuck] = np.max(np.abs(grad[stuck]), axis=1) < 1e-3
    value = np.where(dropped, np.inf, value)
    size = np.max(np.abs(grad), axis=1)
    shape = (k_starts, b)
    return phi.reshape(k_starts, b, 3), value.reshape(shape), ok.reshape(shape), size.reshape(shape)


_SAME = 1e-3  # starts this close (max |Δφ|) are in one basin, as fit._search dedupes them


def _drop_duplicates(
    phi: np.ndarray, done: np.ndarray, dropped: np.ndarray, kind: np.ndarray, b: int
) -> None:
    """Stop every live start that has come within _SAME of an earlier live (or
    converged, not dropped) start of the same kind for the same problem."""
    k_starts = len(kind)
    view = phi.reshape(k_starts, b, 3)
    keep = ~dropped.reshape(k_starts, b)
    live = ~done.reshape(k_starts, b)
    for k in range(1, k_starts):
        for j in range(k):
            if kind[j] != kind[k]:
                continue
            near = np.max(np.abs(view[k] - view[j]), axis=1) < _SAME
            hit = live[k] & keep[j] & keep[k] & near
            if hit.any():
                rows = np.flatnonzero(hit) + k * b
                dropped[rows] = True
                done[rows] = True
                keep[k, hit] = False
                live[k, hit] = False


def _newton_step(
    phi: np.ndarray, hess: np.ndarray, grad: np.ndarray, free: np.ndarray
) -> np.ndarray:
    """-|H|⁻¹g on the free φ (|H|: the Hessian with its eigenvalues made positive, so
    every step descends), no φ moving by more than _STEP_CAP times max(1, max|φ|)."""
    mask = free[:, :, None] & free[:, None, :]
    eye = np.broadcast_to(np.eye(3), hess.shape)
    hess = np.where(mask, hess, eye)
    hess = np.where(np.isfinite(hess), hess, eye)
    lam, vec = np.linalg.eigh(hess)
    top = np.max(np.abs(lam), axis=1, keepdims=True)
    lam = np.maximum(np.abs(lam), np.maximum(1e-8 * top, 1e-12))
    step = -np.einsum("bij,bj->bi", vec, np.einsum("bji,bj->bi", vec, grad) / lam)
    step = step * free
    big = np.max(np.abs(step), axis=1, keepdims=True)
    cap = _STEP_CAP * np.maximum(1.0, np.max(np.abs(phi), axis=1, keepdims=True))
    return np.where(big > cap, step * (cap / np.maximum(big, 1e-300)), step)


# --------------------------------------------------------------------------------------
# What a study records


def _theta(core: _Core, phi: np.ndarray) -> np.ndarray:
    """fit._theta_from_phi for every problem: lme4's θ (θ1, θ3 >= 0), (B, 3)."""
    p1, p2, p3 = phi[:, 0], phi[:, 1], phi[:, 2]
    r = core.shift / core.scale
    m00, m01 = p1 - r * p2, -r * p3
    m10, m11 = p2 / core.scale, p3 / core.scale
    det = p1 * p3 / core.scale
    t1 = np.hypot(m00, m01)
    safe = np.where(t1 == 0.0, 1.0, t1)
    t2 = np.where(t1 == 0.0, 0.0, (m00 * m10 + m01 * m11) / safe)
    t3 = np.where(t1 == 0.0, np.hypot(m10, m11), np.abs(det) / safe)
    return np.stack((t1, np.ldexp(t2, -core.x_exp), np.ldexp(t3, -core.x_exp)), axis=1)


def _coef_user(core: _Core, coef: np.ndarray) -> np.ndarray:
    """fit._coef_scaled then the powers of two: standard coordinates to user units,
    coef (B, ..., 2) with core fields (B,)."""
    extra = (slice(None),) + (None,) * (coef.ndim - 2)
    y_scale, scale = core.y_scale[extra], core.scale[extra]
    slope = coef[..., 1] * (y_scale / scale)
    intercept = coef[..., 0] * y_scale + core.y_shift[extra] - core.shift[extra] * slope
    return np.stack(
        (
            np.ldexp(intercept, core.y_exp[extra]),
            np.ldexp(slope, (core.y_exp - core.x_exp)[extra]),
        ),
        axis=-1,
    )


@dataclass(frozen=True)
class BatchFit:
    """The fit of every problem, in the user's units (rows as the problems)."""

    fixed: np.ndarray  # (B, 2)
    se_slope: np.ndarray  # (B,)
    sd_intercept: np.ndarray
    sd_slope: np.ndarray
    corr: np.ndarray  # NaN when a variance is 0, as Fits.re_corr
    sigma: np.ndarray
    theta: np.ndarray  # (B, 3)
    singular: np.ndarray
    converged: np.ndarray
    mixed: np.ndarray  # (B, G, 2)
    ols: np.ndarray  # (B, G, 2), NaN slope (both NaN for an empty slot)
    criterion: np.ndarray  # lme4's scale
    phi: np.ndarray  # (B, 3), the optimum in standard coordinates


def fit_batch(stats: BatchStats, core: _Core, reml: bool) -> BatchFit:
    """Fit every problem (rows of a core from batch_core that are not flagged bad)."""
    best = optimise(core, reml)
    phi = best.phi
    lam = _lam_from_phi(phi)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        s = _solve(core, lam, reml)
        sigma2_std = s.r2 / s.dof
        theta = _theta(core, phi)
        c = sigma2_std * core.y_scale**2
        i11, i12, i22 = s.vinv
        r = core.shift / core.scale
        var_slope_fixed = c * i22 / core.scale**2
        se_slope = np.ldexp(np.sqrt(var_slope_fixed), core.y_exp - core.x_exp)
        l11, l12, l22 = lam[0][:, 0], lam[1][:, 0], lam[2][:, 0]
        v_int = c * (l11 - 2 * r * l12 + r * r * l22)
        v_slope = c * l22 / core.scale**2
        sd_int = np.ldexp(np.sqrt(np.maximum(v_int, 0.0)), core.y_exp)
        sd_slope = np.ldexp(np.sqrt(np.maximum(v_slope, 0.0)), core.y_exp - core.x_exp)
        sigma = np.ldexp(np.sqrt(c), core.y_exp)
        t1, t2, t3 = theta[:, 0], theta[:, 1], theta[:, 2]
        h = np.hypot(t2, t3)
        corr = np.where(
            (t1 == 0) | (h == 0), np.nan, np.clip(np.sign(t1) * t2 / np.where(h == 0, 1, h), -1, 1)
        )
        fixed = _coef_user(core, s.beta)
        mixed = _coef_user(core, _blups(lam, s))
        ols = _ols_user(stats)
        criterion = s.value + _offset(core, reml)
    singular = (np.abs(theta[:, 0]) < SINGULAR_TOL) | (np.abs(theta[:, 2]) < SINGULAR_TOL)
    runaway = (np.max(np.abs(phi), axis=1) > 1e4) | (sigma2_std < 1e-10)
    converged = (best.converged | (best.gradient < 1e-3)) & ~runaway & (stats.n.max(axis=1) > 1)
    return BatchFit(
        fixed=fixed,
        se_slope=se_slope,
        sd_intercept=sd_int,
        sd_slope=sd_slope,
        corr=corr,
        sigma=sigma,
        theta=theta,
        singular=singular,
        converged=converged,
        mixed=mixed,
        ols=ols,
        criterion=criterion,
        phi=phi,
    )


def _offset(core: _Core, reml: bool) -> np.ndarray:
    """_Core.offset for every problem."""
    dof = core.n_obs - 2 if reml else core.n_obs
    out = 2.0 * dof * (core.y_exp * math.log(2.0) + np.log(core.y_scale))
    if reml:
        out = out + 2.0 * (core.x_exp * math.log(2.0) + np.log(core.scale))
    return out


def _ols_user(stats: BatchStats) -> np.ndarray:
    """fit.fit_ols for every data set, (B, G, 2); empty slots are NaN."""
    has = stats.x_varies
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(has, stats.cxy / np.where(has, stats.cxx, 1.0), np.nan)
    intercept = np.where(has, stats.y_mean - np.where(has, slope, 0.0) * stats.x_mean, stats.y_mean)
    intercept = np.where(stats.n > 0, intercept, np.nan)
    return np.stack(
        (
            np.ldexp(intercept, stats.y_exp[:, None]),
            np.ldexp(slope, (stats.y_exp - stats.x_exp)[:, None]),
        ),
        axis=-1,
    )
