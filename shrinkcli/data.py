"""Reading a user's CSV into ClusteredData, with one plain message per problem.

Cluster labels follow what R does with ``factor(read.csv(file)$cluster)``:

* If every label parses as a number (after stripping surrounding whitespace),
  the clusters are numbers: ``19``, ``19.0``, ``" 19"`` and ``1.9e1`` are one
  cluster. They sort numerically. When every number is whole (and fits), the
  labels are int64 and print as integers ("19"); otherwise they are float64,
  which the writers print as the float's repr ("2.5", and "19.0" beside it).
  Numbers beyond int64 become doubles, as R reads them.
* If any label is not a number, every label is text, stripped of surrounding
  whitespace: ``19`` and ``19.0`` are then two clusters. Text sorts by code
  point (R's order in the C locale).

Blank or NA labels are refused, as are column choices that cannot give a mixed
model: one column used twice, and a cluster column in which every cluster is a
single row.

Speed: pandas parses the file; the checks then run on the typed columns it
gives (a float64 column holds no blank strings: NaN is missing). String work is
done only on columns that really hold text.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from shrinkcli.errors import DataError
from shrinkcli.simulate import ClusteredData

INT64_LIMIT = 2.0**63  # floats in [-2**63, 2**63) convert to int64 exactly


def check_readable(path: str | Path) -> Path:
    """A data path that is no file is refused before any other work."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataError(f"cannot read {path}: it {what}; give the path of a CSV file")
    return path


def check_columns(y: str, x: str, cluster: str) -> None:
    """The response, the predictor and the clusters must be three different columns."""
    if y == x:
        raise DataError(
            f"--y and --x both name column {y!r}; the response and the predictor must be "
            "two different columns: name the other one with --y or --x"
        )
    for option, name, role in (("--y", y, "response"), ("--x", x, "predictor")):
        if cluster == name:
            raise DataError(
                f"--cluster names column {cluster!r}, which is the {role} ({option}); "
                "name the column that holds the cluster labels with --cluster"
            )


def read_csv(path: str | Path, *, y: str = "y", x: str = "x", cluster: str = "cluster"):
    """Load columns y, x and cluster (numeric, numeric, any labels) from a CSV file."""
    path = check_readable(path)
    check_columns(y, x, cluster)
    frame = _read_frame(path)
    columns = {"--y": y, "--x": x, "--cluster": cluster}
    for option, name in columns.items():
        if name not in frame.columns:
            have = ", ".join(map(str, frame.columns[:8])) or "none"
            raise DataError(
                f"{path} has no column {name!r} (columns: {have}); name the right one with {option}"
            )
    if len(frame) == 0:
        raise DataError(f"{path} has a header but no rows; it needs data")
    yv = _numeric(frame[y], y, path, "--y")
    xv = _numeric(frame[x], x, path, "--x")
    labels, codes = _cluster_codes(frame[cluster], cluster, path)
    if len(labels) < 2:
        raise DataError(
            f"{path} has {len(labels)} cluster in column {cluster!r}; a mixed model needs at "
            "least two clusters"
        )
    if len(labels) == len(codes):
        raise DataError(
            f"column {cluster!r} of {path} has as many clusters as rows ({len(codes)}), so "
            "random effects cannot be told from residual noise; name a column that groups "
            "rows with --cluster"
        )
    big = max(np.abs(yv).max(), np.abs(xv).max())
    if big > 1e150:  # their squares would overflow the sums the fit needs
        raise DataError(
            f"{path} has values as large as {big:.3g}; rescale y and x (e.g. to other units)"
        )
    if np.ptp(xv) == 0:
        raise DataError(
            f"column {x!r} of {path} is constant, so no slope can be estimated; "
            "choose a predictor that varies"
        )
    return ClusteredData(
        y=yv,
        x=xv,
        cluster=labels[codes],
        codes=codes,
        labels=labels,
        truth=None,
        source=str(path),
        names=(y, x, cluster),
    )


def _read_frame(path: Path, dtype: dict | None = None):
    """The whole file as pandas types it; every failure is one DataError."""
    import pandas as pd

    try:
        with warnings.catch_warnings():  # mixed chunks give object columns, handled below
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            return pd.read_csv(path, skipinitialspace=True, index_col=False, dtype=dtype)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: it needs a header line and rows") from None
    except UnicodeDecodeError:
        raise DataError(f"cannot read {path}: it is not UTF-8 text; save it as UTF-8 CSV") from None
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read {path} as CSV ({reason}); check the file") from None


def _numeric(col, name: str, path: Path, option: str) -> np.ndarray:
    import pandas as pd

    if col.dtype.kind in "iuf":  # typed by pandas: no strings to look at, NaN is missing
        values = col.to_numpy(dtype=np.float64)
        missing = np.isnan(values)
    else:  # text (or booleans): convert, and count blank strings as missing
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
        missing = col.isna().to_numpy() | _blank(col)
    bad = ~np.isfinite(values) & ~missing
    if missing.any():
        raise DataError(
            f"column {name!r} ({option}) of {path} has {int(missing.sum())} missing values "
            f"(first at data row {int(np.flatnonzero(missing)[0]) + 1}); fill or drop those rows"
        )
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column {name!r} ({option}) of {path} has {int(bad.sum())} non-numeric values "
            f"(first at data row {first + 1}: {str(col.iloc[first])!r}); it must hold numbers"
        )
    return values


def _blank(col) -> np.ndarray:
    """True where a text column holds only whitespace (NA is not blank here)."""
    stripped = col.astype(str).str.strip()
    return (stripped == "").fillna(False).to_numpy(dtype=bool)


def _cluster_codes(col, name: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Sorted labels and each row's index into them, by the rule in the module docstring."""
    import pandas as pd

    kind = col.dtype.kind
    if kind in "iu":
        return _number_codes(col.to_numpy())
    if kind == "f":
        values = col.to_numpy()
        _refuse_missing(np.isnan(values), name, path)
        return _number_codes(values)
    if pd.api.types.infer_dtype(col, skipna=True) != "string":
        # pandas typed the chunks of a long column differently (ints here, text there), or
        # read booleans: read the column again as the text in the file
        col = _read_frame(path, dtype={name: object})[name]
    # string work on the distinct raw labels only, then map rows through them
    raw_codes, raw = pd.factorize(col.to_numpy(dtype=object))  # NA gets code -1
    text = pd.Series(raw, dtype=object).str.strip()
    blank_or_na = np.append((text == "").to_numpy(dtype=bool), True)  # code -1 -> True
    _refuse_missing(blank_or_na[raw_codes], name, path)
    try:
        numbers = pd.to_numeric(text, errors="raise").to_numpy()
    except (ValueError, TypeError):  # some label is not a number: all labels are text
        labels, codes = _sorted_codes(text.to_numpy(dtype=object))
        return labels, codes[raw_codes]
    if numbers.dtype == object:  # integers beyond uint64
        numbers = numbers.astype(np.float64)
    if numbers.dtype.kind == "f":
        _refuse_missing(np.isnan(numbers)[raw_codes], name, path)  # e.g. a quoted " nan "
    labels, codes = _number_codes(numbers)
    return labels, codes[raw_codes]


def _refuse_missing(missing: np.ndarray, name: str, path: Path) -> None:
    if missing.any():
        raise DataError(
            f"column {name!r} of {path} has {int(missing.sum())} missing cluster labels "
            f"(first at data row {int(np.flatnonzero(missing)[0]) + 1}); fill or drop those rows"
        )


def _number_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numeric labels: int64 when every value is a whole number that fits, else float64."""
    if values.dtype.kind == "u":
        fits = len(values) == 0 or values.max() < INT64_LIMIT
        values = values.astype(np.int64 if fits else np.float64)
    if values.dtype.kind == "f":
        whole = (
            np.isfinite(values).all()
            and (np.trunc(values) == values).all()
            and values.min() >= -INT64_LIMIT
            and values.max() < INT64_LIMIT
        )
        if not whole:
            return _sorted_codes(values + 0.0)  # + 0.0 turns -0.0 into 0.0
        values = values.astype(np.int64)
    values = values.astype(np.int64, copy=False)
    lo, hi = int(values.min()), int(values.max())
    if hi - lo > 4 * len(values) + 1024:  # sparse labels: hash them
        return _sorted_codes(values)
    present = np.zeros(hi - lo + 1, dtype=bool)  # dense labels: a table, no sort
    offset = values - lo
    present[offset] = True
    codes = np.cumsum(present) - 1
    return np.flatnonzero(present) + lo, codes[offset]


def _sorted_codes(values) -> tuple[np.ndarray, np.ndarray]:
    """Unique values in sorted order and each value's index into them (hash, then sort)."""
    import pandas as pd

    codes, uniques = pd.factorize(values)
    uniques = np.asarray(uniques, dtype=object if values.dtype.kind not in "iuf" else None)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return uniques[order], rank[codes]
