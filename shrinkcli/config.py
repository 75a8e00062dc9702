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

import contextlib
import errno
import math
import os
import re
import unicodedata
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from shrinkcli.errors import ShrinkError, UsageError, cut

PATH_SHOWN = 200  # characters of a path that a message shows

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
    "order": TEXT,
}


def read_scenario(path: str | Path, *, allow_outside_data: bool | None = None) -> dict[str, Any]:
    """Parse and type-check a scenario file; keys come back as Python names (sd_int).

    A ``data`` file must lie in the scenario file's folder or below it (a scenario
    from someone else must not make shrink read, and quote, any file on the machine),
    unless ``allow_outside_data`` (default: ``outside_data_allowed()``).
    """
    import tomllib

    path = Path(path)
    shown = cut(str(path), PATH_SHOWN)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a byte-order mark is fine
    except UnicodeDecodeError:
        raise UsageError(
            f"{shown}: it is not UTF-8 text (perhaps Latin-1); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise UsageError(f"{shown}: {_unreadable(exc)}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason = cut(str(exc), 120)
        raise UsageError(f"{shown}: TOML syntax error: {reason}; fix that line") from None
    except ValueError:  # an integer of more than 4300 digits
        raise UsageError(f"{shown}: a number in it is far too long; fix it") from None
    except RecursionError:  # arrays nested thousands deep
        raise UsageError(f"{shown}: values nested far too deep; fix the file") from None
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in KEYS:
            raise UsageError(
                f"{shown}: unknown key {_show(key)}; keys are the words of shrink run's flags, "
                f"e.g. sd-int, obs-per-cluster, frames (see the README)"
            )
        kinds = KEYS[key]
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            raise UsageError(
                f"{shown}: key {key!r} is {_show(value)} ({type(value).__name__}); "
                f"it must be {WANT[kinds]}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{shown}: key {key!r} is {value!r}; it must be a finite number")
        out[key.replace("-", "_")] = value
    name = out.get("name")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UsageError(
            f"{shown}: key 'name' is {_show(name)}; use letters, digits, '_', '-' and '.' only "
            "(it names the output files)"
        )
    for key in ("title", "lesson"):
        if key in out:
            out[key] = plain_text(out[key])
    if "data" in out:  # a data file is found relative to the scenario file
        out["data"] = _data_path(path, out["data"], allow_outside_data)
    _check_ranges(path, out)
    return out


_ALLOW_OUTSIDE: ContextVar[bool] = ContextVar("allow_outside_data", default=False)


@contextlib.contextmanager
def outside_data_allowed(allowed: bool = True) -> Iterator[None]:
    """Within this block, scenario files may name data outside their folder
    (the CLI's --allow-outside-data)."""
    token = _ALLOW_OUTSIDE.set(allowed)
    try:
        yield
    finally:
        _ALLOW_OUTSIDE.reset(token)


def _data_path(path: Path, data: str, allowed: bool | None) -> str:
    """The scenario's data file, relative to the scenario's folder, which it may not
    leave (after resolving links) unless allowed; an absolute path leaves it too."""
    if data == "":
        raise UsageError(f"{cut(str(path), PATH_SHOWN)}: key 'data' is empty; name a CSV file")
    folder = path.parent
    joined = folder / data
    if allowed is None:
        allowed = _ALLOW_OUTSIDE.get()
    if not allowed:
        base = os.path.realpath(folder)
        real = os.path.realpath(joined)
        if Path(data).is_absolute() or os.path.commonpath([base, real]) != base:
            raise UsageError(
                f"{cut(str(path), PATH_SHOWN)}: data = {_show(data)} is outside the scenario's "
                "folder; a scenario reads data only from its own folder: move the file "
                "there, or give --allow-outside-data if you trust this scenario"
            )
    text = str(joined)
    return text if text != "-" else os.path.join(".", "-")  # a file named '-', not stdin


def plain_text(text: str) -> str:
    """A title or lesson as plain text on one line: control characters (a newline, a
    NUL) become spaces, runs of spaces one, and undecodable bytes U+FFFD."""
    chars = (
        " " if unicodedata.category(c) == "Cc" else "\ufffd" if 0xD800 <= ord(c) < 0xE000 else c
        for c in text
    )
    return " ".join("".join(chars).split())


def _unreadable(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such scenario file; check the path"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder; give a scenario (.toml) file"
    if isinstance(exc, PermissionError):
        return "permission denied; check the file's permissions"
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is longer than the file system allows; give a shorter path"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder; check the path"
    return f"cannot read it ({exc.strerror or type(exc).__name__}); check the path"


def _show(value: object) -> str:
    """A value from the file in a message: its repr, cut to 60 characters."""
    return cut(repr(value))


def _check_ranges(path: Path, values: dict[str, Any]) -> None:
    """Values out of range are the file's error: say so with its name."""
    from shrinkcli.pipeline import check_values

    try:
        check_values(values)
    except ShrinkError as exc:  # a data path that is no file, too
        raise UsageError(f"{cut(str(path), PATH_SHOWN)}: {exc}") from None


def merge(file_values: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """File values, overridden by every flag that was actually given (not None)."""
    merged = dict(file_values)
    merged.update({k: v for k, v in flags.items() if v is not None})
    return merged
