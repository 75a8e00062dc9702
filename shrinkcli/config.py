"""Scenario files: TOML whose keys are the words of `shrink run`'s flags.

    name = "unbalanced"
    title = "Unbalanced clusters"
    lesson = "Small clusters are pulled hardest."
    balanced = 0.5
    sd-slope = 0.5
    frames = 60

Values given on the command line override the file's.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from shrinkcli.errors import ShrinkError, UsageError

# key (flag word) -> accepted Python types; every key maps to the option of the same name
TEXT = (str,)
INT = (int,)
NUMBER = (int, float)
FLAG = (bool,)
WANT = {TEXT: "a string", INT: "a whole number", NUMBER: "a number", FLAG: "true or false"}
KEYS: dict[str, tuple[type, ...]] = {
    "name": TEXT,
    "title": TEXT,
    "lesson": TEXT,
    # data, as create_data()
    "obs-per-cluster": INT,
    "n-cluster": INT,
    "intercept": NUMBER,
    "beta": NUMBER,
    "sigma": NUMBER,
    "sd-int": NUMBER,
    "sd-slope": NUMBER,
    "cor": NUMBER,
    "balanced": NUMBER,
    "seed": INT,
    # or a file of your own
    "data": TEXT,
    "y": TEXT,
    "x": TEXT,
    "cluster": TEXT,
    "formula": TEXT,  # lme4's words for the model and the columns: y ~ x + (1 | g)
    # model
    "ml": FLAG,
    "engine": TEXT,
    # picture
    "width": INT,
    "height": INT,
    "fps": NUMBER,
    "frames": INT,
    "hold": INT,
    "ease": TEXT,
    "ellipses": FLAG,
    "truth": FLAG,
    "zoom": TEXT,
    "path": TEXT,
    "layout": TEXT,
    "story": FLAG,
    "highlight": TEXT,
}


def read_scenario(path: str | Path) -> dict[str, Any]:
    """Parse and type-check a scenario file; keys come back as Python names (sd_int)."""
    import tomllib

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such scenario file; check the path") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({type(exc).__name__}); check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: TOML syntax error: {exc}; fix that line") from None
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in KEYS:
            raise UsageError(
                f"{path}: unknown key {key!r}; keys are the words of shrink run's flags, "
                f"e.g. sd-int, obs-per-cluster, frames (see the README)"
            )
        kinds = KEYS[key]
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            raise UsageError(
                f"{path}: key {key!r} is {value!r} ({type(value).__name__}); "
                f"it must be {WANT[kinds]}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{path}: key {key!r} is {value!r}; it must be a finite number")
        out[key.replace("-", "_")] = value
    name = out.get("name")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UsageError(
            f"{path}: key 'name' is {name!r}; use letters, digits, '_', '-' and '.' only "
            "(it names the output files)"
        )
    if "data" in out:  # a data file is found relative to the scenario file
        out["data"] = str(path.parent / out["data"])
    _check_ranges(path, out)
    return out


def _check_ranges(path: Path, values: dict[str, Any]) -> None:
    """Values out of range are the file's error: say so with its name."""
    from shrinkcli.pipeline import check_values

    try:
        check_values(values)
    except ShrinkError as exc:  # a data path that is no file, too
        raise UsageError(f"{path}: {exc}") from None


def merge(file_values: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """File values, overridden by every flag that was actually given (not None)."""
    merged = dict(file_values)
    merged.update({k: v for k, v in flags.items() if v is not None})
    return merged
