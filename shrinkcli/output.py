"""Writing results without ever leaving a half-written file behind."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from shrinkcli.errors import ShrinkError, UsageError


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Refuse, before any work, a target that cannot be written: one plain message."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"cannot write {target}: it is a folder; give a file name")
    if not folder.is_dir():
        raise UsageError(f"cannot write {target}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {target}: folder {folder} is not writable")
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success only."""
    target = check_writable(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix,
                                   dir=target.parent)  # fmt: skip
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def text_output(path: str | None) -> Iterator[IO[str]]:
    """A text stream to ``path``, or stdout for None or '-'; files are written atomically."""
    if path is None or path == "-":
        try:
            yield sys.stdout
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. `shrink simulate | head`: stop quietly, as cat does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(141) from None
        except OSError as exc:  # e.g. a full disk behind a redirection
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise ShrinkError(f"cannot write to standard output: {exc.strerror}") from None
        return
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        yield fh


def csv_lines(columns: dict[str, object], chunk: int = 100_000) -> Iterator[str]:
    """CSV text for equal-length columns, floats as their shortest round-trip repr.

    Yields the header, then blocks of ``chunk`` rows: joining whole blocks is
    several times faster than formatting row by row.
    """
    yield ",".join(columns) + "\n"
    values = [_as_text(v) for v in columns.values()]
    n = len(values[0]) if values else 0
    for lo in range(0, n, chunk):
        rows = zip(*(v[lo : lo + chunk] for v in values), strict=True)
        yield "\n".join(map(",".join, rows)) + "\n"


def _as_text(column: object) -> list[str]:
    import numpy as np

    arr = np.asarray(column)
    if arr.dtype.kind == "f":
        text = list(map(repr, arr.tolist()))
        if np.isnan(arr).any():
            text = ["NA" if t == "nan" else t for t in text]
        return text
    return list(map(str, arr.tolist()))
