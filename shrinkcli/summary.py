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


def _is_intercept_model(fits) -> bool:
    """A random-intercept fit (fit.InterceptFits) rather than the full model's Fits."""
    return hasattr(fits, "re_var")


def _formula_fields(fits) -> dict[str, Any]:
    """ "model" and "formula" when a formula was given (none for the default full model, whose
    JSON stays as it was)."""
    formula = getattr(fits, "formula", None)
    return {} if formula is None else {"model": formula.model, "formula": str(formula)}


def _fixed_json(fixed, se, names) -> dict[str, Any]:
    """{name: {estimate, se, t}} for each fixed effect (t is None when se is 0)."""
    return {
        name: {
            "estimate": _num(fixed[i]),
            "se": _num(se[i]),
            "t": _num(fixed[i] / se[i]) if se[i] > 0 else None,
        }
        for i, name in enumerate(names)
    }


def _var_sd(var: float) -> dict[str, Any]:
    return {"var": _num(var), "sd": _num(math.sqrt(var))}


def to_json(fits, *, truth: np.ndarray | None = None, source: str = "") -> dict[str, Any]:
    """The documented JSON object of `shrink fit --json` (names are a contract)."""
    if _is_intercept_model(fits):
        return _intercept_json(fits, source)
    se = np.sqrt(np.diag(fits.fixed_cov))
    sd = np.sqrt(np.diag(fits.re_cov))
    out: dict[str, Any] = {
        "method": fits.method,
        "engine": fits.engine,
        "criterion": _num(fits.criterion),
        "fixed": _fixed_json(fits.fixed, se, ("intercept", "slope")),
        "random": {
            "intercept": {"var": _num(fits.re_cov[0, 0]), "sd": _num(sd[0])},
            "slope": {"var": _num(fits.re_cov[1, 1]), "sd": _num(sd[1])},
            "corr": _num(fits.re_corr),
            "residual": _var_sd(fits.sigma2),
        },
        "singular": bool(fits.singular),
        "converged": bool(fits.converged),
        "n_obs": int(fits.n_obs),
        "n_clusters": int(fits.n_clusters),
        "n_without_ols_slope": int(np.sum(~np.isfinite(fits.ols[:, 1]))),
        "warnings": list(fits.warnings),
        "data": source,
        **_formula_fields(fits),
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
    """One row per cluster: sizes, OLS, mixed and (when simulated) true effects.

    For a random-intercept model: no-pooling (ols_*) and mixed intercepts, the common
    slopes when the model has one, and each cluster's shrinkage factor.
    """
    if _is_intercept_model(fits):
        return _intercept_columns(fits, labels)
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
    if _is_intercept_model(fits):
        return _intercept_text(fits, source)
    formula = getattr(fits, "formula", None)
    x_name, group = ("x", "cluster") if formula is None else (formula.x, formula.cluster)
    lines = [
        f"Linear mixed model fit by {'REML' if fits.method == 'REML' else 'maximum likelihood'}"
        f"  ['lmerMod']" + ("" if fits.engine == "shrink" else f"  (engine: {fits.engine})"),
        f"Formula: {formula or 'y ~ x + (x | cluster)'}",
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
        [group, "(Intercept)", vs[0], ss[0], ""],
        ["", x_name, vs[1], ss[1], corr_txt],
        ["Residual", "", vs[2], ss[2], ""],
    ]
    lines += [" " + r for r in _table(rows, right=False)]
    lines.append(f"Number of obs: {fits.n_obs}, groups:  {group}, {fits.n_clusters}")
    lines += ["", "Fixed effects:"]
    lines += _fixed_table(fits.fixed, fits.fixed_se, ["(Intercept)", x_name])
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


# --------------------------------------------------------------------------------------
# Random-intercept models: y ~ x + (1 | g) and y ~ 1 + (1 | g)


def _intercept_text(fits, source: str) -> str:
    """lme4's print(summary(fit), correlation = FALSE) for a random-intercept model
    (trailing spaces dropped): the layout of tests/data/lme4/*/random_intercept.json."""
    f = fits.formula
    reml = fits.method == "REML"
    lines = [
        "Linear mixed model fit by " + ("REML ['lmerMod']" if reml else
                                        "maximum likelihood  ['lmerMod']"),
        f"Formula: {f}",
        f"   Data: {source}",
        "",
    ]  # fmt: skip
    if reml:  # lme4 cat()s round(criterion, 1): up to 7 significant digits
        lines.append(f"REML criterion at convergence: {r_format([round(fits.criterion, 1)], 7)[0]}")
    else:
        lines += _aic_table(fits.criterion, fits.n_obs, len(fits.fixed) + 2)
    lines += ["", "Scaled residuals: "] + _resid_table(fits.resid_quantiles)
    lines += ["", "Random effects:"]
    var = _padded(r_format([fits.re_var, fits.sigma2], 4))
    sds = _padded(r_format([math.sqrt(max(fits.re_var, 0.0)), math.sqrt(fits.sigma2)], 4))
    rows = [
        ["Groups", "Name", "Variance", "Std.Dev."],
        [f.cluster, "(Intercept)", var[0], sds[0]],
        ["Residual", "", var[1], sds[1]],
    ]
    lines += [" " + r for r in _table(rows, right=False)]
    lines.append(f"Number of obs: {fits.n_obs}, groups:  {f.cluster}, {fits.n_clusters}")
    lines += ["", "Fixed effects:"]
    names = ["(Intercept)"] + ([f.x] if fits.slope else [])
    lines += _fixed_table(fits.fixed, fits.fixed_se, names)
    if fits.singular:  # lme4 also names its optimizer here; shrink's is not nloptwrap
        lines.append("boundary (singular) fit: see help('isSingular')")
    return "\n".join(lines) + "\n"


def _aic_table(dev: float, n: int, k: int) -> list[str]:
    """AIC, BIC, logLik, deviance and df.resid of an ML fit with k parameters, as lme4's
    .prt.aictab prints them: rounded to 1 decimal, format()ted jointly, df.resid alone."""
    head = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    vals = [round(v, 1) for v in (dev + 2 * k, dev + math.log(n) * k, -dev / 2, dev)]
    cells = r_format([*vals, float(n - k)], 7)[:4] + [str(n - k)]
    return _named_vector(head, cells)


def _resid_table(quantiles) -> list[str]:
    """lme4's .prt.resids: zapsmall(q, 5) as R 4.2 does it (round to round(5 - log10(max))
    decimals), then print(q, digits = 4)."""
    q = np.asarray(quantiles, dtype=float)
    top = float(np.max(np.abs(q)))
    if top > 0:
        q = np.round(q, max(0, math.floor(5 - math.log10(top) + 0.5)))
    return _named_vector(["Min", "1Q", "Median", "3Q", "Max"], r_format(q, 4))


def _named_vector(names: list[str], cells: list[str]) -> list[str]:
    """How R prints a named vector: every column as wide as the widest name or value."""
    width = max(map(len, [*names, *cells]))
    return [" ".join(c.rjust(width) for c in row) for row in (names, cells)]


def _fixed_table(fixed, se, names: list[str]) -> list[str]:
    """Estimate, Std. Error and t value as printCoefmat() shows them."""
    fixed, se = np.asarray(fixed, dtype=float), np.asarray(se, dtype=float)
    p = len(fixed)
    est_se = np.concatenate([fixed, se])
    nonzero = np.abs(est_se[(est_se != 0) & np.isfinite(est_se)])
    digmin = 1 + math.floor(math.log10(nonzero.min())) if len(nonzero) else 0
    cols = r_format(np.round(est_se, max(1, 4 - digmin)), 4)
    ok_se = np.isfinite(se) & (se > 0)
    tval = r_format(np.round(fixed / se, 3), 4) if ok_se.all() else ["NaN"] * p
    rows = [["", "Estimate", "Std. Error", "t value"]]
    rows += [[name, cols[i], cols[p + i], tval[i]] for i, name in enumerate(names)]
    return _table(rows, right=True, first_left=True)


def _padded(cells: list[str]) -> list[str]:
    """Cells right-justified to one width, as R's format() pads a column of numbers."""
    width = max(map(len, cells))
    return [c.rjust(width) for c in cells]


def _intercept_json(fits, source: str) -> dict[str, Any]:
    """The JSON of a random-intercept fit: the full model's names where they apply."""
    se = fits.fixed_se
    names = ("intercept", "slope")[: len(fits.fixed)]
    return {
        "method": fits.method,
        "engine": fits.engine,
        **_formula_fields(fits),
        "criterion": _num(fits.criterion),
        "fixed": _fixed_json(fits.fixed, se, names),
        "random": {
            "intercept": {"var": _num(fits.re_var), "sd": _num(fits.re_sd)},
            "residual": _var_sd(fits.sigma2),
        },
        "theta": [_num(v) for v in fits.theta],
        "singular": bool(fits.singular),
        "converged": bool(fits.converged),
        "n_obs": int(fits.n_obs),
        "n_clusters": int(fits.n_clusters),
        "warnings": list(fits.warnings),
        "data": source,
    }


def _intercept_columns(fits, labels: np.ndarray) -> dict[str, Any]:
    cols: dict[str, Any] = {"cluster": labels, "n": fits.sizes, "ols_intercept": fits.ols[:, 0]}
    if fits.slope:
        cols["ols_slope"] = fits.ols[:, 1]
    cols["mixed_intercept"] = fits.mixed[:, 0]
    if fits.slope:
        cols["mixed_slope"] = fits.mixed[:, 1]
    cols["shrinkage"] = fits.shrinkage
    return cols
