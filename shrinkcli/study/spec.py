"""A simulation study: a grid of designs, replications and a seed, from a TOML file.

    name = "small-clusters"
    reps = 500
    seed = 1
    [grid]
    obs-per-cluster = [3, 5, 10, 20, 50]
    sd-slope = [0.1, 0.25, 0.5]
    [fixed]
    n-cluster = 50

Grid and fixed keys are the words of the data flags (``shrinkcli.config.KEYS``) plus
``ml``; every cell is checked as a Scenario before any work. Replication r of a cell
gets R's seed ``replication_seed(seed, cell, r)``: a hash of the study's seed, the
cell's full design and r, so a cell's numbers do not depend on the rest of the grid.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from shrinkcli.config import FLAG, INT, KEYS, TEXT, WANT
from shrinkcli.errors import ShrinkError, UsageError, cut
from shrinkcli.scenario import Scenario

STUDY_FORMAT = 1  # bump when a replication's numbers change: old chunk files are then unused
MAX_REPS = 1_000_000
MAX_CELLS = 10_000
MAX_CHUNK = 10_000
DEFAULT_CHUNK = 100  # replications per chunk: ~0.1 s of work for 500-row data sets
CHUNK_ROWS = 2_000_000  # default chunks hold at most this many simulated rows
SHOWN = 200  # characters of a path a message shows

# the keys a cell may set: the create_data words (its seed comes from the study) and ml
SIM_WORDS = tuple(f.name.replace("_", "-") for f in fields(Scenario) if f.name != "seed")
CELL_KEYS = (*SIM_WORDS, "ml")
TOP_KEYS = {"name": TEXT, "title": TEXT, "reps": INT, "seed": INT, "chunk": INT}


@dataclass(frozen=True)
class Cell:
    """One design of the grid: its place, its grid values and its full design."""

    index: int
    values: dict[str, Any]  # the grid keys' values, in the grid's key order (flag words)
    scenario: Scenario  # the design (its seed is unused)
    ml: bool

    @property
    def key(self) -> str:
        """The design in a canonical text: what a replication's seed is derived from."""
        parts = [
            f"{f.name}={_canon(getattr(self.scenario, f.name), f.type)}"
            for f in fields(Scenario)
            if f.name != "seed"
        ]
        return ";".join([*parts, f"ml={'true' if self.ml else 'false'}"])

    def label(self) -> str:
        return ", ".join(f"{k}={_plain(v)}" for k, v in self.values.items()) or "single cell"


@dataclass(frozen=True)
class Study:
    """A validated study: ``grid`` maps flag words to lists of values (in file order),
    ``fixed`` flag words to values; ``reps`` replications per cell, R seeds derived
    from ``seed``, sent out ``chunk`` replications at a time."""

    reps: int
    seed: int
    grid: dict[str, list] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    name: str = "study"
    title: str = ""
    chunk: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        check_study(self)

    @functools.cached_property
    def cells(self) -> list[Cell]:
        return _cells(self)

    @property
    def chunk_size(self) -> int:
        """``chunk``, or the default: DEFAULT_CHUNK, fewer for large data sets."""
        if self.chunk is not None:
            return min(self.chunk, self.reps)
        rows = max(c.scenario.n_obs for c in self.cells)
        return max(1, min(DEFAULT_CHUNK, self.reps, CHUNK_ROWS // rows))

    def describe(self) -> dict[str, Any]:
        """The study as plain data (summary.json's "study")."""
        return {
            "name": self.name,
            "title": self.title,
            "reps": self.reps,
            "seed": self.seed,
            "chunk": self.chunk_size,
            "grid": {k: list(v) for k, v in self.grid.items()},
            "fixed": dict(self.fixed),
            "cells": len(self.cells),
            "format": STUDY_FORMAT,
        }


def replication_seed(seed: int, cell: Cell, rep: int) -> int:
    """R's seed of replication ``rep`` (1-based) of ``cell``: the first 4 bytes of
    BLAKE2b("shrink-study|SEED|CELL KEY|REP"), big-endian, in [0, 2**31 - 1]."""
    text = f"shrink-study|{seed}|{cell.key}|{rep}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=4).digest(), "big") & 0x7FFFFFFF


def replication_seeds(seed: int, cell: Cell, first: int, count: int) -> list[int]:
    return [replication_seed(seed, cell, r) for r in range(first, first + count)]


def _canon(value: Any, kind: Any = None) -> str:
    """A value in the seed's text: a number of a float field as a float (sigma = 1 and
    sigma = 1.0 are one design), shortest round-trip digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) or kind in (float, "float"):
        return repr(float(value))
    return str(value)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- checks


def check_study(study: Study) -> None:
    """Every value of a study, and every cell's design, checked before any work."""
    where = cut(study.source, SHOWN) + ": " if study.source else ""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", study.name or ""):
        raise UsageError(
            f"{where}key 'name' is {_show(study.name)}; use letters, digits, '_', '-' and '.'"
        )
    _check_int(where, "reps", study.reps, 1, MAX_REPS)
    _check_int(where, "seed", study.seed, -(2**31) + 1, 2**31 - 1)
    if study.chunk is not None:
        _check_int(where, "chunk", study.chunk, 1, MAX_CHUNK)
    for table, values in (("grid", study.grid), ("fixed", study.fixed)):
        if not isinstance(values, dict):
            raise UsageError(f"{where}[{table}] must be a table of keys, e.g. [{table}]")
        for key, value in values.items():
            _check_key(where, table, key)
            items = value if table == "grid" else [value]
            if table == "grid":
                _check_list(where, key, value)
            for item in items:
                _check_value(where, table, key, item)
    both = [k for k in study.grid if k in study.fixed]
    if both:
        raise UsageError(f"{where}key {both[0]!r} is in both [grid] and [fixed]; keep one")
    cells = 1
    for values in study.grid.values():
        cells *= len(values)
    if cells > MAX_CELLS:
        raise UsageError(
            f"{where}[grid] makes {cells:,} cells; at most {MAX_CELLS:,} are allowed: "
            "use fewer values"
        )
    _cells(study, where)


def _check_key(where: str, table: str, key: str) -> None:
    if key in CELL_KEYS:
        return
    if key == "seed":
        raise UsageError(
            f"{where}[{table}] key 'seed': each replication's seed comes from the study's; "
            "set seed = N at the top of the file"
        )
    if key in KEYS:
        raise UsageError(
            f"{where}[{table}] key {key!r} cannot vary in a study; its keys are "
            f"{', '.join(CELL_KEYS)}"
        )
    raise UsageError(
        f"{where}[{table}] unknown key {_show(key)}; keys are the words of the data flags: "
        f"{', '.join(CELL_KEYS)}"
    )


def _check_list(where: str, key: str, value: Any) -> None:
    if not isinstance(value, list):
        raise UsageError(
            f"{where}[grid] key {key!r} is {_show(value)}; it must be a list of values, "
            f"e.g. {key} = [1, 2] (a single value goes in [fixed])"
        )
    if not value:
        raise UsageError(f"{where}[grid] key {key!r} is an empty list; give at least one value")
    seen: list = []
    for item in value:
        if any(_same(item, s) for s in seen):
            raise UsageError(f"{where}[grid] key {key!r} repeats {_show(item)}; list each once")
        seen.append(item)


def _same(a: Any, b: Any) -> bool:
    """Equal values (1 and 1.0 too), but true is not 1."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _check_value(where: str, table: str, key: str, value: Any) -> None:
    kinds = FLAG if key == "ml" else KEYS[key]
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok:
        raise UsageError(
            f"{where}[{table}] key {key!r} has {_show(value)} ({type(value).__name__}); "
            f"it must be {WANT[kinds]}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{where}[{table}] key {key!r} has {value!r}; it must be a finite number")
    if key == "ml":
        return
    try:
        Scenario(**{key.replace("-", "_"): value})
    except ShrinkError as exc:
        raise UsageError(f"{where}[{table}] key {key!r}: {exc}") from None


def _check_int(where: str, key: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(
            f"{where}key {key!r} is {_show(value)}; it must be a whole number "
            f"from {low:,} to {high:,}"
        )


def _cells(study: Study, where: str = "") -> list[Cell]:
    keys = list(study.grid)
    fixed = {k.replace("-", "_"): v for k, v in study.fixed.items() if k != "ml"}
    out = []
    for index, combo in enumerate(itertools.product(*(study.grid[k] for k in keys))):
        values = dict(zip(keys, combo, strict=True))
        sim = dict(fixed)
        sim.update({k.replace("-", "_"): v for k, v in values.items() if k != "ml"})
        ml = bool(values.get("ml", study.fixed.get("ml", False)))
        try:
            scenario = Scenario(**sim)
        except ShrinkError as exc:
            shown = ", ".join(f"{k}={_plain(v)}" for k, v in values.items())
            raise UsageError(f"{where}the cell {shown}: {exc}") from None
        out.append(Cell(index=index, values=values, scenario=scenario, ml=ml))
    return out


# ----------------------------------------------------------------------------- files


def read_study(path: str | Path) -> Study:
    """Parse and check a study file; a malformed one is one UsageError naming the key."""
    import tomllib

    path = Path(path)
    shown = cut(str(path), SHOWN)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{shown}: it is not UTF-8 text; save it as UTF-8") from None
    except FileNotFoundError:
        raise UsageError(f"{shown}: no such study file; check the path") from None
    except IsADirectoryError:
        raise UsageError(f"{shown}: it is a folder; give a study (.toml) file") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"{shown}: cannot read it ({reason}); check the path") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(
            f"{shown}: TOML syntax error: {cut(str(exc), 120)}; fix that line"
        ) from None
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("grid", "fixed"):
            if not isinstance(value, dict):
                raise UsageError(
                    f"{shown}: key {key!r} must be a table: write [{key}] on a line of its own "
                    "and the keys below it"
                )
            values[key] = value
            continue
        if key not in TOP_KEYS:
            hint = "; put it under [grid] (a list) or [fixed]" if key in CELL_KEYS else ""
            raise UsageError(
                f"{shown}: unknown key {_show(key)}; a study file has name, title, reps, seed, "
                f"chunk, [grid] and [fixed]{hint}"
            )
        kinds = TOP_KEYS[key]
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise UsageError(
                f"{shown}: key {key!r} is {_show(value)} ({type(value).__name__}); "
                f"it must be {WANT[kinds]}"
            )
        values[key] = value
    for key, example in (("reps", "reps = 500"), ("seed", "seed = 1")):
        if key not in values:
            raise UsageError(f"{shown}: key {key!r} is missing; add e.g. {example}")
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem).lstrip("-_.") or "study"
    return Study(
        reps=values["reps"],
        seed=values["seed"],
        grid=values.get("grid", {}),
        fixed=values.get("fixed", {}),
        name=values.get("name", stem),
        title=" ".join(
            "".join(c if c.isprintable() else " " for c in values.get("title", "")).split()
        ),
        chunk=values.get("chunk"),
        source=str(path),
    )


def _show(value: object) -> str:
    return cut(repr(value))
