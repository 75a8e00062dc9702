"""shrink: make partial pooling in mixed-effects models visible.

    import shrinkcli
    fit = shrinkcli.fit(df, formula="Reaction ~ Days + (1 | Subject)")
    anim = shrinkcli.animate(df, formula="Reaction ~ Days + (Days | Subject)", output="x.gif")

Both load on first use (see shrinkcli.api), so ``import shrinkcli`` stays light: no
numpy, pandas or matplotlib until a fit is asked for.
"""

__version__ = "0.1.0"
__all__ = ["Animation", "FitResult", "__version__", "animate", "fit", "parse_formula"]


def __getattr__(name: str):
    import importlib

    if name == "fit":  # the engine module, which called is api.fit (see shrinkcli/fit.py)
        return importlib.import_module("shrinkcli.fit")
    if name in ("animate", "Animation", "FitResult"):
        return getattr(importlib.import_module("shrinkcli.api"), name)
    if name == "parse_formula":
        return importlib.import_module("shrinkcli.formula").parse_formula
    raise AttributeError(f"module 'shrinkcli' has no attribute {name!r}")
