"""The whole chain, one stage per line: scenario -> data -> fits -> frames -> file."""

from __future__ import annotations

from shrinkcli.errors import UsageError

ENGINES = ("shrink", "statsmodels")


def fit_data(data, *, reml: bool = True, engine: str = "shrink"):
    """Fit y ~ x + (x | cluster) with the chosen engine; returns Fits."""
    if engine == "shrink":
        from shrinkcli.fit import fit_mixed

        return fit_mixed(data, reml=reml)
    if engine == "statsmodels":
        from shrinkcli.fit_statsmodels import fit_statsmodels

        return fit_statsmodels(data, reml=reml)
    raise UsageError(f"--engine {engine!r} is not known: use one of {', '.join(ENGINES)}")
