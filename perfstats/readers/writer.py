"""The write side of one ingest: run metadata plus bulk inserts inside one transaction."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

_FUNCTION_IDS = itertools.count(1)

PROGRESS_INTERVAL_S = 0.2
"""How often :meth:`RunWriter.scan_progress` asks DuckDB how far a statement is."""


@dataclass
class RunInfo:
    """Run metadata a reader fills in (see the ``runs`` table in docs/schema.md)."""

    tool: str
    format: str
    grain: str = "summary"
    tool_version: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    load_model: str | None = None
    max_users: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class SourceFile:
    """One input file and its detected format."""

    path: Path
    format: str


class RunWriter:
    """Inserts one run's rows; every row gets the run's id.

    Readers receive a writer bound to an open transaction: nothing they insert is visible
    until the whole ingest succeeds, and everything is rolled back if it fails.  ``run_id`` may
    be a function, called once when the id is first needed (the content hash is computed while
    a reader scans its files).  ``progress``, when given, is called now and then with the
    share (0 to 1) of the reader's long scans that is done (see :meth:`scan_progress`).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str | Callable[[], str],
                 info: RunInfo, progress: Callable[[float], None] | None = None):
        self.con = con
        self._run_id = run_id
        self.info = info
        self.progress = progress

    @property
    def run_id(self) -> str:
        """The run's id."""
        if not isinstance(self._run_id, str):
            self._run_id = self._run_id()
        return self._run_id

    def insert(self, table: str, frame: pl.DataFrame) -> None:
        """Append a polars frame to ``table`` (columns matched by name).

        ``samples`` (a view) is split: each distinct combination of the tag columns (all but
        metric, ts, value, vu and iter) into ``tag_sets``, the rest into ``points``.
        """
        if frame.is_empty():
            return
        self.con.register("_perfstats_frame", frame.to_arrow())
        try:
            if table == "samples":
                self._insert_samples(frame.columns)
            else:
                self.con.execute(
                    f"INSERT INTO {table} BY NAME SELECT ? AS run_id, * FROM _perfstats_frame",
                    [self.run_id],
                )
        finally:
            self.con.unregister("_perfstats_frame")

    def _insert_samples(self, columns: list[str]) -> None:
        point_columns = [c for c in columns if c in ("metric", "ts", "value", "vu", "iter")]
        tags = [f'"{c}"' for c in columns if c not in point_columns]
        tag_set = f"hash({', '.join(tags) or 'NULL'}) AS tag_set"
        self.con.execute(
            f"INSERT INTO tag_sets BY NAME SELECT DISTINCT ? AS run_id, {tag_set}"
            f"{''.join(', ' + t for t in tags)} FROM _perfstats_frame",
            [self.run_id],
        )
        self.con.execute(
            f"INSERT INTO points BY NAME SELECT ? AS run_id, {tag_set}"
            f"{''.join(', ' + c for c in point_columns)} FROM _perfstats_frame",
            [self.run_id],
        )

    def insert_sql(self, table: str, select_sql: str, params: list[Any] | None = None) -> None:
        """Append the result of a SELECT (run in DuckDB, never through Python) to ``table``."""
        self.con.execute(
            f"INSERT INTO {table} BY NAME SELECT ? AS run_id, * FROM ({select_sql})",
            [self.run_id, *(params or [])],
        )

    @contextmanager
    def function(self, name: str, function: Callable[..., Any], parameters: list[str],
                 return_type: str) -> Iterator[str]:
        """Register a Python function of Arrow arrays for the SQL run inside the block, and
        yield its SQL name.  It may keep state: DuckDB calls it once per vector of rows, nulls
        included, from its worker threads.

        The name gets a unique suffix: when a statement fails, the rollback drops the function
        from DuckDB's catalog but not from the client's registry, so the name stays taken.  A
        Ctrl-C that lands in the function (DuckDB wraps it in its own error) comes out as
        ``KeyboardInterrupt``.
        """
        sql_name = f"{name}_{next(_FUNCTION_IDS)}"
        self.con.create_function(sql_name, function, parameters, return_type, type="arrow",
                                 null_handling="special", side_effects=True)
        try:
            yield sql_name
        except duckdb.Error as exc:
            if "KeyboardInterrupt" in str(exc):
                raise KeyboardInterrupt from exc
            raise
        self.con.remove_function(sql_name)

    @contextmanager
    def scan_progress(self, start: float = 0.0, end: float = 1.0) -> Iterator[None]:
        """Report :attr:`progress` while the block runs a long statement: every
        :data:`PROGRESS_INTERVAL_S`, DuckDB's estimate of the share of it done, mapped onto
        ``start``..``end``, and ``end`` once it has finished.

        The shares only grow, and ``end`` is said only once the block is done: between two
        statements of the block DuckDB may still answer 100 % for the one that ended."""
        if self.progress is None or not _track_progress(self.con):
            yield
            return
        report = self.progress
        stop = threading.Event()

        def poll() -> None:
            said = start
            while not stop.wait(PROGRESS_INTERVAL_S):
                done = self.con.query_progress()
                share = start + (end - start) * done / 100
                if 0 <= done < 100 and share > said:
                    said = share
                    report(share)

        thread = threading.Thread(target=poll, name="perfstats-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
        report(end)

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        """First column of the first row of a query (``None`` when there is no row)."""
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None


def _track_progress(con: duckdb.DuckDBPyConnection) -> bool:
    """Let DuckDB estimate the progress of running statements without printing a bar of its own
    (the store opens connections with it off); False where DuckDB refuses (a Jupyter kernel
    without ipywidgets)."""
    try:
        con.execute("SET enable_progress_bar_print = false")
        con.execute("SET enable_progress_bar = true")
    except duckdb.Error:
        return False
    return True
