"""Reading a user's CSV into ClusteredData, with one plain message per problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shrinkcli.errors import DataError
from shrinkcli.simulate import ClusteredData


def check_readable(path: str | Path) -> Path:
    """A data path that is no file is refused before any other work."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataError(f"cannot read {path}: it {what}; give the path of a CSV file")
    return path


def read_csv(path: str | Path, *, y: str = "y", x: str = "x", cluster: str = "cluster"):
    """Load columns y, x and cluster (numeric, numeric, any labels) from a CSV file."""
    import pandas as pd

    path = check_readable(path)
    try:
        frame = pd.read_csv(path, skipinitialspace=True, dtype={cluster: object}, index_col=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: it needs a header line and rows") from None
    except UnicodeDecodeError:
        raise DataError(f"cannot read {path}: it is not UTF-8 text; save it as UTF-8 CSV") from None
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read {path} as CSV ({reason}); check the file") from None
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
    labels_raw = frame[cluster]
    missing = labels_raw.isna() | (labels_raw.astype(str).str.strip() == "")
    if missing.any():
        raise DataError(
            f"column {cluster!r} of {path} has {int(missing.sum())} missing cluster labels "
            f"(first at data row {int(np.flatnonzero(missing)[0]) + 1}); fill or drop those rows"
        )
    labels, codes = _cluster_codes(labels_raw.astype(str).str.strip().to_numpy())
    if len(labels) < 2:
        raise DataError(
            f"{path} has {len(labels)} cluster in column {cluster!r}; a mixed model needs at "
            "least two clusters"
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


def _numeric(col, name: str, path: Path, option: str) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    missing = col.isna().to_numpy() | (col.astype(str).str.strip() == "").to_numpy()
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


def _cluster_codes(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels sorted as R sorts factor levels: numerically when all are integers."""
    try:
        as_int = text.astype(np.int64)
    except (ValueError, OverflowError):
        return np.unique(text, return_inverse=True)
    labels, codes = np.unique(as_int, return_inverse=True)
    return labels, codes
