"""Errors the library raises; only the CLI turns them into exit codes."""

from __future__ import annotations


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
