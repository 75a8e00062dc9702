"""Errors the library raises; only the CLI turns them into exit codes."""

from __future__ import annotations


def cut(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut: a name or value
    from a file or flag never fills a message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ShrinkError(Exception):
    """Base class: a problem the user can fix, reported as one plain line."""

    exit_code = 1


class UsageError(ShrinkError):
    """A flag, scenario value or design that cannot be used (exit code 2)."""

    exit_code = 2


class DataError(ShrinkError):
    """An input file that cannot be read or has the wrong shape (exit code 2)."""

    exit_code = 2


class FitError(ShrinkError):
    """The model could not be fitted to otherwise valid data."""

    exit_code = 1
