"""Views of a fit: lme4's text layout, the JSON object scripts read, the per-cluster table."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def truth_rmse(fits, truth: np.ndarray | None) -> dict[str, Any] | None:
    """Root-mean-square error against the true cluster effects: what shrinkage bought.

    Both estimators are scored on the same clusters, those with an OLS
    intercept and slope, so the two numbers compare like with like.
    """
    if truth is None:
        return None
    ok = np.all(np.isfinite(fits.ols), axis=1) & np.all(np.isfinite(fits.mixed), axis=1)
    if not ok.any():  # e.g. one observation per cluster: no OLS line to compare
        return None

    def rmse(est: np.ndarray, col: int) -> float:
        return float(np.sqrt(np.mean((est[ok, col] - truth[ok, col]) ** 2)))

    return {
        "n_clusters": int(ok.sum()),
        "ols": {"intercept": rmse(fits.ols, 0), "slope": rmse(fits.ols, 1)},
        "mixed": {"intercept": rmse(fits.mixed, 0), "slope": rmse(fits.mixed, 1)},
    }


def to_json(fits, *, truth: np.ndarray | None = None, source: str = "") -> dict[str, Any]:
    """The documented JSON object of `shrink fit --json` (names are a contract)."""
    se = np.sqrt(np.diag(fits.fixed_cov))
    sd = np.sqrt(np.diag(fits.re_cov))
    out: dict[str, Any] = {
        "method": fits.method,
        "engine": fits.engine,
        "criterion": _num(fits.criterion),
        "fixed": {
            name: {
                "estimate": _num(fits.fixed[i]),
                "se": _num(se[i]),
                "t": _num(fits.fixed[i] / se[i]) if se[i] > 0 else None,
            }
            for i, name in enumerate(("intercept", "slope"))
        },
        "random": {
            "intercept": {"var": _num(fits.re_cov[0, 0]), "sd": _num(sd[0])},
            "slope": {"var": _num(fits.re_cov[1, 1]), "sd": _num(sd[1])},
            "corr": _num(fits.re_corr),
            "residual": {"var": _num(fits.sigma2), "sd": _num(math.sqrt(fits.sigma2))},
        },
        "singular": bool(fits.singular),
        "converged": bool(fits.converged),
        "n_obs": int(fits.n_obs),
        "n_clusters": int(fits.n_clusters),
        "n_without_ols_slope": int(np.sum(~np.isfinite(fits.ols[:, 1]))),
        "warnings": list(fits.warnings),
        "data": source,
    }
    check = fits.engine_check
    if check is not None:
        out["engine_check"] = {
            "shrink_criterion": _num(check.shrink_criterion),
            "shortfall": _num(check.shortfall),
        }
    rmse = truth_rmse(fits, truth)
    if rmse is not None:
        out["truth_rmse"] = rmse
    return out


def estimates_columns(fits, labels: np.ndarray, truth: np.ndarray | None) -> dict[str, Any]:
    """One row per cluster: sizes, OLS, mixed and (when simulated) true effects."""
    cols: dict[str, Any] = {
        "cluster": labels,
        "n": fits.sizes,
        "ols_intercept": fits.ols[:, 0],
        "ols_slope": fits.ols[:, 1],
        "mixed_intercept": fits.mixed[:, 0],
        "mixed_slope": fits.mixed[:, 1],
    }
    if truth is not None:
        cols["true_intercept"] = truth[:, 0]
        cols["true_slope"] = truth[:, 1]
    return cols


def to_text(fits, *, truth: np.ndarray | None = None, source: str = "df") -> str:
    """The fit printed the way lme4's summary(mod, cor = FALSE) prints it."""
    lines = [
        f"Linear mixed model fit by {'REML' if fits.method == 'REML' else 'maximum likelihood'}"
        f"  ['lmerMod']" + ("" if fits.engine == "shrink" else f"  (engine: {fits.engine})"),
        "Formula: y ~ x + (x | cluster)",
        f"   Data: {source}",
        "",
    ]
    if fits.method == "REML":
        lines.append(f"REML criterion at convergence: {r_format([fits.criterion], 5)[0]}")
    else:
        n, k = fits.n_obs, 6
        dev = fits.criterion
        head = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        vals = [dev + 2 * k, dev + math.log(n) * k, -dev / 2, dev]
        cells = [f"{v:.1f}" for v in vals] + [str(n - k)]
        lines += _table([head, cells], right=True)
    lines += ["", "Scaled residuals: "]
    q = np.asarray(fits.resid_quantiles, dtype=float)
    top = max(np.max(np.abs(q)), 1e-300)
    q = np.round(q, max(0, 5 - math.ceil(math.log10(top))))  # lme4 zapsmall()s first
    lines += _table([["Min", "1Q", "Median", "3Q", "Max"], r_format(q, 4)], right=True)
    lines += ["", "Random effects:"]
    var = [fits.re_cov[0, 0], fits.re_cov[1, 1], fits.sigma2]
    sds = [math.sqrt(max(v, 0.0)) for v in var]
    corr = fits.re_corr
    vs, ss = r_format(var, 4), r_format(sds, 4)
    corr_txt = "NaN" if not math.isfinite(corr) else f"{corr:.2f}"
    rows = [
        ["Groups", "Name", "Variance", "Std.Dev.", "Corr"],
        ["cluster", "(Intercept)", vs[0], ss[0], ""],
        ["", "x", vs[1], ss[1], corr_txt],
        ["Residual", "", vs[2], ss[2], ""],
    ]
    lines += [" " + r for r in _table(rows, right=False)]
    lines.append(f"Number of obs: {fits.n_obs}, groups:  cluster, {fits.n_clusters}")
    lines += ["", "Fixed effects:"]
    se = np.sqrt(np.diag(fits.fixed_cov))
    est_se = np.concatenate([fits.fixed, se])
    nonzero = np.abs(est_se[(est_se != 0) & np.isfinite(est_se)])
    digmin = 1 + math.floor(math.log10(nonzero.min())) if len(nonzero) else 0
    cols = r_format(np.round(est_se, max(1, 4 - digmin)), 4)
    ok_se = np.isfinite(se) & (se > 0)
    tval = r_format(np.round(fits.fixed / se, 3), 4) if ok_se.all() else ["NaN", "NaN"]
    rows = [["", "Estimate", "Std. Error", "t value"]]
    rows += [[name, cols[i], cols[2 + i], tval[i]] for i, name in enumerate(("(Intercept)", "x"))]
    lines += _table(rows, right=True, first_left=True)
    if fits.singular:
        lines += ["optimizer: boundary (singular) fit: see help('isSingular')"]
    check = fits.engine_check
    if check is not None:
        name = "REML criterion" if fits.method == "REML" else "deviance"
        lines += [
            f"{name} at shrink's optimum: {check.shrink_criterion:.2f} "
            f"({fits.engine} is {check.shortfall:.3g} above it)"
        ]
    rmse = truth_rmse(fits, truth)
    if rmse is not None:
        lines += ["", f"What shrinkage bought (RMSE against the true cluster effects, "
                      f"{rmse['n_clusters']} clusters with an OLS line):"]  # fmt: skip
        o, m = rmse["ols"], rmse["mixed"]
        rows = [
            ["", "by-cluster OLS", "mixed", "mixed/OLS"],
            ["Intercept", f"{o['intercept']:.4f}", f"{m['intercept']:.4f}",
             _ratio(m["intercept"], o["intercept"])],
            ["Slope", f"{o['slope']:.4f}", f"{m['slope']:.4f}", _ratio(m["slope"], o["slope"])],
        ]  # fmt: skip
        lines += _table(rows, right=True, first_left=True)
    return "\n".join(lines) + "\n"


def r_format(values, digits: int) -> list[str]:
    """Format numbers jointly as R's format(x, digits=) does.

    Each number needs the decimals that show it to `digits` significant digits
    (trailing zeros dropped); all share the largest such count. Like R, switch to
    scientific notation when that is narrower than fixed notation.
    """
    vals = [float(v) for v in values]
    right, sig = 0, 1
    for v in vals:
        if v == 0 or not math.isfinite(v):
            continue
        mant, exp = f"{abs(v):.{digits - 1}e}".split("e")
        nsig = len(mant.replace(".", "").rstrip("0")) or 1
        right = max(right, nsig - int(exp) - 1)
        sig = max(sig, nsig)
    fixed = [f"{v:.{right}f}" if math.isfinite(v) else str(v) for v in vals]
    sci = [f"{v:.{sig - 1}e}" if math.isfinite(v) else str(v) for v in vals]
    if max(map(len, sci), default=0) < max(map(len, fixed), default=0):
        return sci
    return fixed


def _table(rows: list[list[str]], *, right: bool, first_left: bool = False) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = []
        for i, (cell, w) in enumerate(zip(r, widths, strict=True)):
            left = (not right) or (first_left and i == 0)
            cells.append(cell.ljust(w) if left else cell.rjust(w))
        out.append(" ".join(cells).rstrip())
    return out


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b > 1e-12 else ""


def _num(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None
