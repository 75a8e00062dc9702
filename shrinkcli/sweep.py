"""Comma-separated values in the simulation flags: one panel per value.

    shrink run --sd-slope 0.1,0.25,1          # three panels, one row
    shrink grid --obs-per-cluster 3,10 --sd-slope 0.1,1   # rows x columns

The flags arrive as text so that a list can be told from a number; this module
turns them into numbers (one value) or tuples (a list), with the same words for
a bad value as for any other flag. Light: no numpy.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from shrinkcli.errors import UsageError, cut
from shrinkcli.scenario import flag as flag_name  # sd_int -> --sd-int (grid.py uses it too)

MAX_PANELS = 12  # more panels than this are too small to read


def parse_value(name: str, text: Any, kind: type, *, lists_ok: bool = True) -> Any:
    """One flag's text -> a number, or a tuple of numbers for a comma-separated list
    (refused unless ``lists_ok``: the commands that make one thing)."""
    if text is None or not isinstance(text, str):
        return text
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 1 and not lists_ok:
        raise UsageError(
            f"{flag_name(name)} {_shown(text)}: this command takes one value; a list makes "
            "one panel per value in `shrink run` or `shrink grid`"
        )
    if len(parts) > 1 and "" in parts:
        raise UsageError(
            f"{flag_name(name)} {_shown(text)} has an empty item; give numbers separated by "
            "commas, e.g. 0.1,0.25,1"
        )
    values = tuple(_number(name, p, kind, lists_ok) for p in parts)
    if len(values) == 1:
        return values[0]
    if len(set(values)) < len(values):
        raise UsageError(f"{flag_name(name)} {_shown(text)} repeats a value; give each once")
    return values


def _shown(text: str) -> str:
    return repr(cut(text, 40))


def _number(name: str, text: str, kind: type, lists_ok: bool) -> int | float:
    """A number in Python's (and R's) ASCII spelling; a whole number may be written 5.0
    or 1e2. Not-a-number and infinity get through, for the scenario's range message."""
    want = "a whole number" if kind is int else "a number"
    more = " (or a comma-separated list of them)" if lists_ok else ""
    bad = UsageError(f"{flag_name(name)} {_shown(text)} is not {want}{more}")
    if not text.isascii():
        raise bad
    try:
        value = float(text)
    except ValueError:
        raise bad from None
    if kind is not int:
        return value
    if not value.is_integer():
        raise bad
    try:
        return int(text)
    except ValueError:  # 5.0, 1e2: a whole number written as a float
        return int(value)


def parse_flags(flags: dict[str, Any], kinds: dict[str, type], *, lists_ok: bool = True):
    """Every flag in ``kinds`` parsed (parse_value); the others as they came."""
    return {
        k: parse_value(k, v, kinds[k], lists_ok=lists_ok) if k in kinds else v
        for k, v in flags.items()
    }


def lists(values: dict[str, Any]) -> list[tuple[str, tuple]]:
    """The flags given a list, in the order of the flags (``--help``'s order)."""
    return [(k, v) for k, v in values.items() if isinstance(v, tuple)]


def panels(values: dict[str, Any], n_rows_given: int = 1) -> list[dict[str, Any]]:
    """One dict of single values per panel: the product of the lists (at most two).

    ``n_rows_given``: rows that already exist (scenario files), each crossed with a
    list; then only one list is allowed. Refuses more than MAX_PANELS panels.
    """
    swept = lists(values)
    if len(swept) > 2 or (n_rows_given > 1 and len(swept) > 1):
        names = ", ".join(flag_name(k) for k, _ in swept)
        dims = "scenario files and one list" if n_rows_given > 1 else "at most two lists"
        raise UsageError(
            f"lists in {names} make more than two dimensions; a grid has rows and columns: "
            f"give {dims}"
        )
    total = n_rows_given * math.prod(len(v) for _, v in swept)
    if total > MAX_PANELS:
        raise UsageError(
            f"{total} panels are too many to read; give at most {MAX_PANELS} "
            "(fewer values or fewer scenario files)"
        )
    combos = itertools.product(*(v for _, v in swept)) if swept else [()]
    return [{**values, **dict(zip((k for k, _ in swept), combo, strict=True))} for combo in combos]


def describe(name: str, value: Any) -> str:
    """'sd slope = 0.25': how a panel of a sweep is titled (every digit given kept)."""
    return f"{name.replace('_', ' ')} = {number_text(value)}"


def number_text(value: Any) -> str:
    """2147483647, 0.1, 1.0000001, 1e-20: as short as exact allows."""
    if isinstance(value, int):
        return str(value)
    return format(value, ".15g")
