"""The write side of one ingest: run metadata plus bulk inserts inside one transaction."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

_FUNCTION_IDS = itertools.count(1)


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
    a reader scans its files).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str | Callable[[], str],
                 info: RunInfo):
        self.con = con
        self._run_id = run_id
        self.info = info

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
        from DuckDB's catalog but not from the client's registry, so the name stays taken.
        """
        sql_name = f"{name}_{next(_FUNCTION_IDS)}"
        self.con.create_function(sql_name, function, parameters, return_type, type="arrow",
                                 null_handling="special", side_effects=True)
        yield sql_name
        self.con.remove_function(sql_name)

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        """First column of the first row of a query (``None`` when there is no row)."""
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None
