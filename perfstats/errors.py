"""Exceptions raised by perfstats.

The tree::

    PerfstatsError                  every error perfstats raises on purpose
    ├── IngestError                 a result file cannot be read (names the file and the reason)
    ├── StoreError                  the store is missing, locked, or of an unknown schema version
    ├── RunNotFoundError            a run id that the store does not hold
    ├── ConfigError                 a bad perfstats.toml / [tool.perfstats] entry or SLO expression
    ├── ArgumentError               an argument value the API refuses (also a ValueError)
    ├── InsufficientDataError       the data cannot support the requested analysis
    └── ReportError                 a notebook template failed (names the cell and the error)

The CLI turns any of them into a one-line message on stderr and exit code 2.
Programmer mistakes (wrong argument types or values) raise the builtin ``TypeError``/``ValueError``.
"""

from __future__ import annotations

from pathlib import Path


class PerfstatsError(Exception):
    """Base class of every error perfstats raises on purpose."""


class IngestError(PerfstatsError):
    """A result file cannot be ingested."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class StoreError(PerfstatsError):
    """The store cannot be opened or used."""


class RunNotFoundError(PerfstatsError):
    """The store holds no run with the given id."""


class ConfigError(PerfstatsError):
    """Bad configuration or SLO expression."""


class ArgumentError(PerfstatsError, ValueError):
    """An argument value the API refuses, such as an unknown metric name."""


class InsufficientDataError(PerfstatsError):
    """The data cannot support the requested analysis."""


class ReportError(PerfstatsError):
    """A report template failed to execute or export."""

    def __init__(
        self, message: str, *, cell_index: int | None = None, ename: str | None = None
    ) -> None:
        self.cell_index = cell_index
        self.ename = ename
        super().__init__(message)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty): the
    one line a user is shown of a library's multi-line error."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
