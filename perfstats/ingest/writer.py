"""The write side of one ingest: run metadata plus bulk inserts inside one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl


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
    until the whole ingest succeeds, and everything is rolled back if it fails.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str, info: RunInfo):
        self.con = con
        self.run_id = run_id
        self.info = info

    def insert(self, table: str, frame: pl.DataFrame) -> None:
        """Append a polars frame to ``table`` (columns matched by name)."""
        if frame.is_empty():
            return
        self.con.register("_perfstats_frame", frame.to_arrow())
        try:
            self.con.execute(
                f"INSERT INTO {table} BY NAME SELECT ? AS run_id, * FROM _perfstats_frame",
                [self.run_id],
            )
        finally:
            self.con.unregister("_perfstats_frame")

    def insert_sql(self, table: str, select_sql: str, params: list[Any] | None = None) -> None:
        """Append the result of a SELECT (run in DuckDB, never through Python) to ``table``."""
        self.con.execute(
            f"INSERT INTO {table} BY NAME SELECT ? AS run_id, * FROM ({select_sql})",
            [self.run_id, *(params or [])],
        )

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        """First column of the first row of a query (``None`` when there is no row)."""
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None
