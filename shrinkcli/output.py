"""The one writer: results never half-written, never written over an input, and never
replacing what is not a plain file.

- A plain file (or a new name) is written to a temporary file beside it and renamed
  into place when complete. An existing file keeps its mode (and its owner, where
  the process may set it).
- A symbolic link is followed: its target is replaced atomically; the link stays.
- A FIFO, a character device (``/dev/null``), ``/dev/stdout``, ``/dev/fd/N`` (as
  ``-o >(gzip > x.gz)`` passes) or anything else under ``/dev`` or ``/proc`` is
  written to directly, streamed, never renamed over.
- Temporary files are named ``.shrink-tmp-PID-XXXXXX-NAME``. A run that writes into
  a folder removes the temporary files there whose writing process no longer
  exists (left by a SIGKILL).

Every output path is compared with every input and every other output before any
work (``check_distinct``), after resolving links, by path and by inode.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from shrinkcli.errors import ShrinkError, UsageError, cut

TEMP_PREFIX = ".shrink-tmp-"
_TEMP_RE = re.compile(r"^\.shrink-tmp-(\d+)-[0-9a-z]{6}-")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list for CSV injection


# ----------------------------------------------------------------------------- targets


def is_stream(path: str | os.PathLike[str]) -> bool:
    """True for targets written to directly: FIFOs, devices, /dev and /proc paths."""
    text = os.fspath(path)
    if text.startswith(("/dev/", "/proc/")):
        return True
    try:
        mode = os.stat(text).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Refuse, before any work, a target that cannot be written: one plain message."""
    text = os.fspath(path)
    if text == "":
        raise UsageError("an output name is empty; give a file name")
    try:
        return _check_writable(Path(path), text)
    except OSError as exc:  # e.g. a path longer than the system allows
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"cannot write {cut(text)}: {reason}; choose another name") from None


def _check_writable(target: Path, text: str) -> Path:
    if is_stream(target):
        if not os.path.exists(text) and not text.startswith("/proc/"):
            raise UsageError(f"cannot write {target}: it does not exist")
        return target
    if text.endswith(os.sep):
        raise UsageError(f"cannot write {text}: a name ending in '/' is a folder; give a file name")
    real = Path(os.path.realpath(target))
    folder = real.parent
    max_name = _name_max(folder) if folder.is_dir() else 255
    if len(os.fsencode(real.name)) > max_name:
        raise UsageError(
            f"cannot write {cut(text)}: the name is longer than the file system "
            f"allows ({max_name} bytes); choose a shorter name"
        )
    if target.is_dir():
        raise UsageError(f"cannot write {target}: it is a folder; give a file name")
    if not folder.is_dir():
        shown = target.parent if str(target.parent) else Path(".")
        if folder.exists():
            raise UsageError(
                f"cannot write {target}: {shown} is a file, not a folder; choose another folder"
            )
        raise UsageError(f"cannot write {target}: folder {shown} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {target}: folder {folder} is not writable")
    return target


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


# ----------------------------------------------------------------------------- identity


def _identity(path: str | os.PathLike[str]) -> tuple:
    """What makes two paths the same file: the inode if it exists, else the real path."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return ("path", real)
    return ("inode", st.st_dev, st.st_ino)


def _is_null_device(path: str | os.PathLike[str]) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def check_distinct(
    outputs: Iterable[tuple[str, str | os.PathLike[str] | None]],
    inputs: Iterable[tuple[str, str | os.PathLike[str] | None]] = (),
) -> None:
    """Refuse, before any work, an output that is an input or another output.

    Each item is (what, path), e.g. ("--estimates", "v.csv"); None is skipped and
    "-" means standard output, which at most one output may use. Character devices
    (/dev/null) may take several outputs.
    """
    outs = [(what, p) for what, p in outputs if p is not None]
    ins = [(what, p) for what, p in inputs if p is not None and os.fspath(p) != "-"]
    on_stdout = [what for what, p in outs if os.fspath(p) == "-"]
    if len(on_stdout) > 1:
        raise UsageError(
            f"{on_stdout[0]} and {on_stdout[1]} both go to standard output; "
            "send one of them to a file"
        )
    seen: dict[tuple, tuple[str, str]] = {}
    for what, p in ins:
        seen.setdefault(_identity(p), (what, os.fspath(p)))
    kept: dict[tuple, tuple[str, str]] = {}
    for what, p in outs:
        if os.fspath(p) == "-":
            continue
        key = _identity(p)
        if key in seen:
            other, other_path = seen[key]
            raise UsageError(
                f"{what} {cut(os.fspath(p))} is the same file as the input {other} "
                f"{cut(other_path)}: writing it would destroy the input; choose another name"
            )
        if key in kept and not _is_null_device(p):
            other, other_path = kept[key]
            raise UsageError(
                f"{what} {cut(os.fspath(p))} is the same file as {other} {cut(other_path)}; "
                "give each output its own name"
            )
        kept[key] = (what, os.fspath(p))


# ----------------------------------------------------------------------------- temporary files


def temp_name(target: Path) -> str:
    """``.shrink-tmp-PID-XXXXXX-NAME``, NAME shortened (keeping its suffix) to fit."""
    head = f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(3)[:6]}-"
    name = target.name
    room = _name_max(target.parent) - len(os.fsencode(head))
    if len(os.fsencode(name)) > room:
        suffix = target.suffix if len(os.fsencode(target.suffix)) < room else ""
        stem = os.fsencode(name[: len(name) - len(suffix)])[: room - len(os.fsencode(suffix))]
        name = stem.decode("utf-8", "ignore") + suffix
    return head + name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: str | os.PathLike[str]) -> list[str]:
    """Remove temporary files in ``folder`` whose writing process no longer exists."""
    removed = []
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            m = _TEMP_RE.match(entry.name)
            if not m or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


# ----------------------------------------------------------------------------- writing


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes ``path`` (see module)."""
    target = check_writable(path)
    if is_stream(target):
        with _streamed(target) as tmp:
            yield tmp
        return
    real = Path(os.path.realpath(target))  # a symlink's target is replaced; the link stays
    remove_stale(real.parent)
    try:
        old = os.stat(real)
    except FileNotFoundError:
        old = None
    tmp = real.parent / temp_name(real)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    os.close(fd)
    try:
        yield tmp
        _copy_owner_and_mode(tmp, old)
        os.replace(tmp, real)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise


def _copy_owner_and_mode(tmp: Path, old: os.stat_result | None) -> None:
    """The file keeps who owns it and who may read it; a new one gets the usual mode."""
    if old is None or not stat.S_ISREG(old.st_mode):
        os.chmod(tmp, 0o666 & ~_umask())
        return
    if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):
            os.chown(tmp, old.st_uid, old.st_gid)
    os.chmod(tmp, stat.S_IMODE(old.st_mode))


@contextlib.contextmanager
def _streamed(target: Path) -> Iterator[Path]:
    """Encoders need a path: write into a private temporary folder, then stream the
    bytes into the FIFO or device in one pass."""
    folder = tempfile.mkdtemp(prefix=TEMP_PREFIX)
    try:
        tmp = Path(folder) / ("out" + target.suffix)
        yield tmp
        try:
            with open(tmp, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def text_output(path: str | None) -> Iterator[IO[str]]:
    """A text stream to ``path``, or stdout for None or '-'; files are written atomically,
    FIFOs and devices directly."""
    if path is None or path == "-":
        with stdout_guard():
            yield sys.stdout
        return
    if is_stream(path):
        check_writable(path)
        try:
            with open(path, "w", encoding="utf-8", newline="") as fh:
                yield fh
        except BrokenPipeError:
            raise SystemExit(141) from None
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        return
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        yield fh


@contextlib.contextmanager
def stdout_guard() -> Iterator[None]:
    """Write to standard output in this block; it is flushed at the end. Standard output
    that is closed, full or gone becomes an exit code, not a traceback."""
    if sys.stdout is None:
        raise ShrinkError("standard output is closed; redirect it to a file (> out.txt)")
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `shrink simulate | head`: stop quietly, as cat does
        _silence_stdout()
        raise SystemExit(141) from None
    except (OSError, ValueError) as exc:  # a full disk behind a redirection; a closed fd
        _silence_stdout()
        reason = getattr(exc, "strerror", None) or "it is closed"
        raise ShrinkError(f"cannot write to standard output: {reason}") from None


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# ----------------------------------------------------------------------------- CSV


def neutralise(text: str) -> str:
    """A text cell that a spreadsheet would run as a formula gets a leading apostrophe."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_lines(columns: dict[str, object], chunk: int = 100_000) -> Iterator[str]:
    """CSV text for equal-length columns, through the csv module (quoting as needed).

    Floats are their shortest round-trip repr and NaN is NA; numbers are never
    touched; text cells are neutralised against formula injection (``neutralise``).
    Yields the header, then blocks of ``chunk`` rows, each made into text only when
    its turn comes: memory stays flat however many rows there are.
    """
    import csv
    import io

    import numpy as np

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([neutralise(str(c)) for c in columns])
    yield _drain(buf)
    arrays = [np.asarray(v) for v in columns.values()]
    n = len(arrays[0]) if arrays else 0
    for lo in range(0, n, chunk):
        block = [_as_text(a[lo : lo + chunk]) for a in arrays]
        writer.writerows(zip(*block, strict=True))
        del block
        yield _drain(buf)


def _drain(buf) -> str:
    text = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    return text


def _as_text(column: object) -> list[str]:
    import numpy as np

    arr = np.asarray(column)
    if arr.dtype.kind == "f":
        text = list(map(repr, arr.tolist()))
        if np.isnan(arr).any():
            text = ["NA" if t == "nan" else t for t in text]
        return text
    if arr.dtype.kind in "iub":
        return list(map(str, arr.tolist()))
    return [_cell(v) for v in arr.tolist()]


def _cell(value: object) -> str:
    """One cell of a mixed column: text neutralised, numbers as numbers, None empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, float):
        return "NA" if value != value else repr(value)
    return str(value)
