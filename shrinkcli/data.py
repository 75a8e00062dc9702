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

Column names are stripped of surrounding whitespace (``y ,x ,cluster ``).

Any readable file that is not a folder is data: a plain file, a FIFO, ``/dev/null``
or ``<(cat data.csv)`` (read once, into memory); ``-`` is standard input.

Messages quote at most three column names and cut every name or value taken from
the file to 40 characters: a file named by somebody else's scenario must not leak
through an error message.

Speed: pandas parses the file; the checks then run on the typed columns it
gives (a float64 column holds no blank strings: NaN is missing). String work is
done only on columns that really hold text.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import sys
import warnings
from pathlib import Path

import numpy as np

from shrinkcli.errors import DataError, cut
from shrinkcli.simulate import ClusteredData

INT64_LIMIT = 2.0**63  # floats in [-2**63, 2**63) convert to int64 exactly
STDIN = "-"
PATH_SHOWN = 200  # characters of a path that a message shows
SHOWN = 40  # characters of a name or value from the file that a message quotes


def check_readable(path: str | Path) -> Path:
    """A data path that names no readable file is refused before any other work.

    FIFOs and devices are accepted (and not opened here: they can be read once);
    ``-`` is standard input.
    """
    text = os.fspath(path)
    if text == "":
        raise DataError("--data is empty; give the path of a CSV file (or - for standard input)")
    if text == STDIN:
        if sys.stdin is None:
            raise DataError("--data - reads standard input, which is closed; give a file")
        return Path(STDIN)
    shown = _cut(text, PATH_SHOWN)
    try:
        mode = os.stat(text).st_mode
    except OSError as exc:
        raise DataError(f"cannot read {shown}: {_why(exc)}") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"cannot read {shown}: it is a folder; give the path of a CSV file")
    if not os.access(text, os.R_OK):
        raise DataError(f"cannot read {shown}: permission denied; check the file's permissions")
    return Path(text)


def _why(exc: OSError) -> str:
    """The reason a path cannot be opened, and what to do, in the user's words."""
    if exc.errno == errno.ENOENT:
        return "it does not exist; give the path of a CSV file"
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is longer than the file system allows; give a shorter path"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder; check the path"
    if exc.errno == errno.ELOOP:
        return "it is a loop of symbolic links; check the path"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; check the permissions of the file and its folders"
    return f"{exc.strerror or type(exc).__name__}; check the path"


def _cut(text: str, limit: int = SHOWN) -> str:
    """errors.cut, a text of several lines first made one."""
    text = " ".join(str(text).split()) if "\n" in str(text) else str(text)
    return cut(text, limit)


def _quoted(name: object) -> str:
    """A column name or a value from the file, quoted and cut to SHOWN characters."""
    return repr(_cut(str(name)))


def _some_columns(columns) -> str:
    """At most three column names of the file, each cut: a message never echoes a file."""
    names = [_quoted(c) for c in list(columns)[:3]]
    more = len(columns) - len(names)
    return (", ".join(names) or "none") + (f" and {more} more" if more > 0 else "")


def check_columns(y: str, x: str | None, cluster: str) -> None:
    """The response, the predictor and the clusters must be three different columns
    (x is None for a model without a predictor, y ~ 1 + (1 | g))."""
    if x is not None and y == x:
        raise DataError(
            f"--y and --x both name column {y!r}; the response and the predictor must be "
            "two different columns: name the other one with --y or --x"
        )
    for option, name, role in (("--y", y, "response"), ("--x", x, "predictor")):
        if name is not None and cluster == name:
            raise DataError(
                f"--cluster names column {cluster!r}, which is the {role} ({option}); "
                "name the column that holds the cluster labels with --cluster"
            )


OPTIONS = {"y": "--y", "x": "--x", "cluster": "--cluster"}  # what names each column


def read_csv(
    path: str | Path,
    *,
    y: str = "y",
    x: str | None = "x",
    cluster: str = "cluster",
    options: dict[str, str] | None = None,
):
    """Load columns y, x and cluster (numeric, numeric, any labels) from a CSV file.

    ``x`` None reads no predictor (y ~ 1 + (1 | g)): x is then 0 in every row.
    ``options`` says how the user named each column in messages (default OPTIONS;
    e.g. "--formula" for all three).
    """
    path = check_readable(path)
    y, x, cluster = _stripped(y, x, cluster)  # as the file's names are
    check_columns(y, x, cluster)
    source = _Source(path)
    return _clustered(source, source.frame(), y, x, cluster, options or OPTIONS)


def read_frame(
    frame,
    *,
    y: str = "y",
    x: str | None = "x",
    cluster: str = "cluster",
    options: dict[str, str] | None = None,
    name: str = "DataFrame",
):
    """The same as read_csv from a pandas DataFrame (or anything pandas.DataFrame()
    takes): the same checks, rules for cluster labels and messages, ``name`` standing
    for the file's name. Column names are compared as text, stripped of spaces."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        try:
            frame = pd.DataFrame(frame)
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"the data are not a table of columns ({exc}); pass a DataFrame"
            ) from None
    y, x, cluster = _stripped(y, x, cluster)
    check_columns(y, x, cluster)
    source = _FrameSource(frame, name)
    return _clustered(source, source.frame(), y, x, cluster, options or OPTIONS)


def _stripped(y: str, x: str | None, cluster: str) -> tuple[str, str | None, str]:
    return y.strip(), None if x is None else x.strip(), cluster.strip()


def _clustered(source, frame, y: str, x: str | None, cluster: str, options: dict[str, str]):
    """The checks shared by the CSV and DataFrame paths, and the ClusteredData."""
    columns = [(options[k], v) for k, v in (("y", y), ("x", x), ("cluster", cluster))]
    for option, name in columns:
        if name is None:
            continue
        if name not in frame.columns:
            raise DataError(source.no_column(name, option, frame.columns))
        if (frame.columns == name).sum() > 1:
            raise DataError(
                f"{source} has two columns named {_quoted(name)} (once the spaces around the "
                "names are removed); rename one of them"
            )
    if len(frame) == 0:
        raise DataError(f"{source} has a header but no rows; it needs data")
    yv = _numeric(frame[y], y, source, options["y"])
    xv = np.zeros(len(yv)) if x is None else _numeric(frame[x], x, source, options["x"])
    labels, codes = _cluster_codes(frame[cluster], cluster, source)
    if len(labels) < 2:
        raise DataError(
            f"{source} has {len(labels)} cluster in column {_quoted(cluster)}; a mixed model "
            "needs at least two clusters"
        )
    if len(labels) == len(codes):
        raise DataError(
            f"column {_quoted(cluster)} of {source} has as many clusters as rows "
            f"({len(codes)}), so random effects cannot be told from residual noise; name a "
            f"column that groups rows with {options['cluster']}"
        )
    # no limit on magnitudes: the fit works on power-of-two-scaled sums and refuses, in
    # one line, a result that a double cannot hold
    if x is not None and np.ptp(xv) == 0:
        raise DataError(
            f"column {_quoted(x)} of {source} is constant, so no slope can be estimated; "
            "choose a predictor that varies"
        )
    return ClusteredData(
        y=yv,
        x=xv,
        cluster=labels[codes],
        codes=codes,
        labels=labels,
        truth=None,
        source=source.name,
        names=(y, "" if x is None else x, cluster),
    )


class _FrameSource:
    """A DataFrame standing where _Source stands for a file: its name in messages and
    its columns as the CSV reader would type them (extension dtypes such as Int64 or
    Float64 as float64 with NaN for missing; text on request, as a re-read would give)."""

    def __init__(self, frame, name: str) -> None:
        self.data = frame
        self.name = name

    def __str__(self) -> str:
        return _cut(self.name, PATH_SHOWN)

    def frame(self, dtype: dict | None = None):
        import pandas as pd

        out = pd.DataFrame(
            {i: self._column(self.data.iloc[:, i]) for i in range(self.data.shape[1])}
        )
        out.columns = [str(c).strip() for c in self.data.columns]
        for name in dtype or {}:  # the column's values as text (NA kept)
            for i in np.flatnonzero(out.columns == name):
                col = out.iloc[:, i].astype(object)
                out.isetitem(i, col.where(col.isna(), col.map(str)))
        return out

    @staticmethod
    def _column(col):
        import pandas as pd

        if isinstance(col.dtype, pd.CategoricalDtype):
            return col.astype(object)
        kind = col.dtype
        if (
            pd.api.types.is_extension_array_dtype(kind)
            and pd.api.types.is_numeric_dtype(kind)
            and not pd.api.types.is_bool_dtype(kind)
        ):
            return pd.Series(col.to_numpy(dtype=np.float64, na_value=np.nan), index=col.index)
        return col

    def no_column(self, name: str, option: str, columns) -> str:
        return _no_column(self, name, option, columns)


class _Source:
    """The data to read and its name in messages. A stream (standard input, a FIFO,
    a device, ``<(...)``) is read once, into memory, so that it can be parsed again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = "stdin" if str(path) == STDIN else str(path)
        self.data: bytes | None = None
        if str(path) == STDIN:
            self.data = _read_all(sys.stdin.buffer, self)
        elif not stat.S_ISREG(os.stat(path).st_mode):
            try:
                with open(path, "rb") as fh:
                    self.data = _read_all(fh, self)
            except OSError as exc:
                raise DataError(f"cannot read {self}: {_why(exc)}") from None

    def __str__(self) -> str:
        return _cut(self.name, PATH_SHOWN)

    def head(self, size: int = 1 << 16) -> list[str]:
        """The first lines of the file, as text (for diagnosing a wrong format)."""
        if self.data is not None:
            raw = self.data[:size]
        else:
            with open(self.path, "rb") as fh:
                raw = fh.read(size)
        return raw.decode("utf-8", "replace").removeprefix("\ufeff").splitlines()[:2]

    def frame(self, dtype: dict | None = None):
        """The whole file as pandas types it, names stripped; every failure is one DataError."""
        import pandas as pd

        source = self.path if self.data is None else io.BytesIO(self.data)
        try:
            with warnings.catch_warnings():  # mixed chunks give object columns, handled below
                warnings.simplefilter("ignore", pd.errors.DtypeWarning)
                warnings.simplefilter("error", pd.errors.ParserWarning)  # explained below
                frame = pd.read_csv(source, skipinitialspace=True, index_col=False, dtype=dtype)
        except pd.errors.EmptyDataError:
            raise DataError(f"{self} is empty: it needs a header line and rows") from None
        except UnicodeDecodeError:
            raise DataError(
                f"cannot read {self}: it is not UTF-8 text; save it as UTF-8 CSV"
            ) from None
        except pd.errors.ParserWarning:  # more fields in the rows than in the header
            raise DataError(self._misread("the rows have more fields than the header")) from None
        except (pd.errors.ParserError, OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"cannot read {self} as CSV ({reason}); check the file") from None
        frame.columns = [str(c).strip() for c in frame.columns]
        return frame

    def no_column(self, name: str, option: str, columns) -> str:
        """The message for a column that is not there: perhaps the file is no CSV."""
        first = columns[0] if len(columns) else ""
        if first.startswith("#") or (len(columns) == 1 and any(c in first for c in ";\t|")):
            return self._misread("the header line is not y,x,cluster")
        return _no_column(self, name, option, columns)

    def _misread(self, what: str) -> str:
        """Why a file does not read as comma-separated CSV, and what to do."""
        lines = self.head()
        header = lines[0] if lines else ""
        if header.lstrip().startswith("#"):
            return (
                f"{self}: the first line is a comment ('#'), but it must be the header "
                "(e.g. y,x,cluster); remove the comment lines"
            )
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
            if sep in header and "," not in header:
                return (
                    f"{self} looks separated by {name}"
                    + (" with decimal commas" if sep == ";" and "," in "".join(lines[1:]) else "")
                    + "; save it as comma-separated CSV with decimal points"
                )
        return (
            f"cannot read {self} as CSV ({what}); every row needs one value per column of "
            "the header line"
        )


def _no_column(source, name: str, option: str, columns) -> str:
    return (
        f"{source} has no column {_quoted(name)} (columns: {_some_columns(columns)}); "
        f"name the right one with {option}"
    )


def _read_all(fh, source: _Source) -> bytes:
    try:
        return fh.read()
    except OSError as exc:
        raise DataError(f"cannot read {source}: {exc.strerror or exc}") from None


def _numeric(col, name: str, source: _Source, option: str) -> np.ndarray:
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
            f"column {_quoted(name)} ({option}) of {source} has {int(missing.sum())} missing "
            f"values (first at data row {int(np.flatnonzero(missing)[0]) + 1}); fill or drop "
            "those rows"
        )
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column {_quoted(name)} ({option}) of {source} has {int(bad.sum())} non-numeric "
            f"values (first at data row {first + 1}: {_quoted(col.iloc[first])}); it must hold "
            "numbers"
        )
    return values


def _blank(col) -> np.ndarray:
    """True where a text column holds only whitespace (NA is not blank here)."""
    stripped = col.astype(str).str.strip()
    return (stripped == "").fillna(False).to_numpy(dtype=bool)


def _cluster_codes(col, name: str, source: _Source) -> tuple[np.ndarray, np.ndarray]:
    """Sorted labels and each row's index into them, by the rule in the module docstring."""
    import pandas as pd

    kind = col.dtype.kind
    if kind in "iu":
        return _number_codes(col.to_numpy())
    if kind == "f":
        values = col.to_numpy()
        _refuse_missing(np.isnan(values), name, source)
        return _number_codes(values)
    if pd.api.types.infer_dtype(col, skipna=True) != "string":
        # pandas typed the chunks of a long column differently (ints here, text there), or
        # read booleans: read the column again as the text in the file
        col = source.frame(dtype={name: object})[name]
    # string work on the distinct raw labels only, then map rows through them
    raw_codes, raw = pd.factorize(col.to_numpy(dtype=object))  # NA gets code -1
    text = pd.Series(raw, dtype=object).str.strip()
    blank_or_na = np.append((text == "").to_numpy(dtype=bool), True)  # code -1 -> True
    _refuse_missing(blank_or_na[raw_codes], name, source)
    try:
        numbers = pd.to_numeric(text, errors="raise").to_numpy()
    except (ValueError, TypeError):  # some label is not a number: all labels are text
        labels, codes = _sorted_codes(text.to_numpy(dtype=object))
        return labels, codes[raw_codes]
    if numbers.dtype == object:  # integers beyond uint64
        numbers = numbers.astype(np.float64)
    if numbers.dtype.kind == "f":
        _refuse_missing(np.isnan(numbers)[raw_codes], name, source)  # e.g. a quoted " nan "
    labels, codes = _number_codes(numbers)
    return labels, codes[raw_codes]


def _refuse_missing(missing: np.ndarray, name: str, source: _Source) -> None:
    if missing.any():
        raise DataError(
            f"column {_quoted(name)} of {source} has {int(missing.sum())} missing cluster labels "
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
