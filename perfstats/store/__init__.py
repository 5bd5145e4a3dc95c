"""The DuckDB store: schema, versioning, connections and locking.

Every table is described in ``docs/schema.md``; the DDL below is the single source of truth for it.
Every store but a team store lives in the process's one in-memory DuckDB instance
(``perfstats.store.host``: attaching a database to it costs 1-2 ms where a new instance costs
~20; a writer connects to its file on its own only once that instance has spilled to disk).
A file store is attached for the length of one operation and detached again, so a notebook, a
CI job and a shell can share one file.  Readers attach it read-only (several at
once, never creating or changing it); a process that finds the file held waits up to
``lock_timeout`` seconds, says so on stderr, and then fails clearly.  Inside
:meth:`Store.reading` (one command or API call) the reads share one attachment instead.  A
``:memory:`` store is a database of its own there, with one cursor for the life of the
:class:`Store`; it is detached, and its memory freed, when the store is garbage collected.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from perfstats.errors import RunNotFoundError, StoreError, first_line
from perfstats.store.host import MemoryDatabase, open_file

STORE_SCHEMA_VERSION = 2
"""Version of the store's tables (``perfstats_meta``); migrations run up to it."""
DEFAULT_DB = "perfstats.duckdb"
ALL_ENDPOINTS = "ALL"
"""The endpoint name of whole-run rows in summaries, windows and histograms."""

_STATS = "count BIGINT, failures BIGINT, min DOUBLE, mean DOUBLE, p50 DOUBLE, p90 DOUBLE, " \
    "p95 DOUBLE, p99 DOUBLE, max DOUBLE"

_SCENARIOS = ("run_id VARCHAR NOT NULL, scenario VARCHAR NOT NULL, executor VARCHAR, "
              "load_model VARCHAR, basis VARCHAR, iterations BIGINT, requests BIGINT")

SCHEMA: dict[str, str] = {
    "perfstats_meta": "key VARCHAR PRIMARY KEY, value VARCHAR",
    "runs": (
        "run_id VARCHAR PRIMARY KEY, tool VARCHAR NOT NULL, format VARCHAR NOT NULL, "
        "tool_version VARCHAR, grain VARCHAR NOT NULL, source_files VARCHAR[] NOT NULL, "
        "content_hash VARCHAR NOT NULL UNIQUE, started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ, "
        "duration_s DOUBLE, load_model VARCHAR, max_users DOUBLE, "
        "labels MAP(VARCHAR, VARCHAR), notes VARCHAR[], ingested_at TIMESTAMPTZ NOT NULL"
    ),
    "points": (
        "run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, ts TIMESTAMPTZ, value DOUBLE, "
        "tag_set UBIGINT, vu INTEGER, iter BIGINT"
    ),
    "tag_sets": (
        "run_id VARCHAR NOT NULL, tag_set UBIGINT, endpoint VARCHAR, name VARCHAR, "
        "method VARCHAR, status VARCHAR, url VARCHAR, grp VARCHAR, scenario VARCHAR, "
        "expected_response BOOLEAN, error_code VARCHAR, check_name VARCHAR, extra JSON"
    ),
    "windows": (
        "run_id VARCHAR NOT NULL, endpoint VARCHAR NOT NULL, start TIMESTAMPTZ NOT NULL, "
        f"length_s DOUBLE NOT NULL, {_STATS}, total_ms DOUBLE, users DOUBLE, arrivals DOUBLE, "
        "percentiles VARCHAR"
    ),
    "histograms": (
        "run_id VARCHAR NOT NULL, endpoint VARCHAR NOT NULL, start TIMESTAMPTZ, "
        "bucket_ms DOUBLE NOT NULL, count BIGINT NOT NULL"
    ),
    "summaries": (
        "run_id VARCHAR NOT NULL, endpoint VARCHAR NOT NULL, tool_name VARCHAR, method VARCHAR, "
        f"{_STATS}, rps DOUBLE, percentiles VARCHAR NOT NULL"
    ),
    "errors": (
        "run_id VARCHAR NOT NULL, endpoint VARCHAR, kind VARCHAR NOT NULL, error VARCHAR, "
        "count BIGINT NOT NULL, first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ"
    ),
    "checks": (
        "run_id VARCHAR NOT NULL, grp VARCHAR, name VARCHAR NOT NULL, passes BIGINT, fails BIGINT"
    ),
    "thresholds": (
        "run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, expression VARCHAR NOT NULL, ok BOOLEAN"
    ),
    "metrics": (
        "run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, type VARCHAR, contains VARCHAR, "
        "stat VARCHAR, value DOUBLE"
    ),
    "scenarios": _SCENARIOS,
}
VIEWS: dict[str, str] = {
    # A tag set's endpoint applies to HTTP metrics only.
    "samples": (
        "SELECT p.run_id, p.metric, p.ts, p.value, "
        "CASE WHEN starts_with(p.metric, 'http_') THEN t.endpoint END AS endpoint, "
        "t.name, t.method, t.status, t.url, t.grp, t.scenario, t.expected_response, "
        "t.error_code, t.check_name, t.extra, p.vu, p.iter "
        "FROM points p JOIN tag_sets t USING (run_id, tag_set)"
    ),
}
"""Views over the tables, created with them: ``samples`` is every point with its tags."""
RUN_TABLES = [t for t in SCHEMA if t not in ("perfstats_meta", "runs")]
"""Tables whose rows belong to one run (keyed by ``run_id``)."""

# Ordered migrations: MIGRATIONS[v] upgrades a store from schema v to v + 1.
MIGRATIONS: dict[int, list[str]] = {
    # 2: the load model of each k6 scenario.
    1: [f"CREATE TABLE IF NOT EXISTS scenarios ({_SCENARIOS})"],
}

# In-memory stores and open store files share one DuckDB instance and so its global settings,
# which an ingest changes for its length (readers.k6._bulk_insert), and a writer its spill
# directory: their operations run one at a time.
_HOST_LOCK = threading.RLock()

_Opened = tuple[duckdb.DuckDBPyConnection, Callable[[], None]]
"""A connection and how to close it."""


class _Held(threading.local):
    """A thread's read connection held by :meth:`Store.reading`, and how deep it is nested."""

    depth = 0
    opened: _Opened | None = None


def _create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """The tables and views of an empty store, in one transaction: all of them or none (a file
    is never left with half a schema), and one commit to a file's log, not one per table."""
    con.execute("BEGIN")
    for table, columns in SCHEMA.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
    for view, query in VIEWS.items():
        con.execute(f"CREATE VIEW IF NOT EXISTS {view} AS {query}")
    con.execute(
        "INSERT OR REPLACE INTO perfstats_meta VALUES ('schema_version', ?)",
        [str(STORE_SCHEMA_VERSION)]
    )
    con.execute("COMMIT")


def _table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables of the connection's default database (the host lists every attached one's)."""
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() "
                                      "WHERE database_name = current_database()").fetchall()}


def _report(message: str) -> None:
    """Tell the person waiting (stderr): a store operation is held up by another process."""
    print(f"perfstats: {message}", file=sys.stderr, flush=True)


def migration_statements(version: int, refusal: str) -> list[str]:
    """The statements of :data:`MIGRATIONS` that take a store from schema ``version`` to
    :data:`STORE_SCHEMA_VERSION`, in order; a missing step raises ``StoreError`` with
    ``refusal`` (``"<where>: no migration from store"``) and the version."""
    if any(v not in MIGRATIONS for v in range(version, STORE_SCHEMA_VERSION)):
        raise StoreError(f"{refusal} schema version {version}")
    return [statement for v in range(version, STORE_SCHEMA_VERSION) for statement in MIGRATIONS[v]]


def _check_schema(con: duckdb.DuckDBPyConnection, where: str, tables: set[str], *,
                  read_only: bool = False) -> None:
    """Create the schema in an empty database (``tables``: the names it holds), refuse a foreign
    or newer one, migrate an older (a reader refuses an older one: it never changes the file)."""
    if not tables:
        _create_schema(con)
        return
    if "perfstats_meta" not in tables:
        raise StoreError(f"{where}: not a perfstats store (a DuckDB file without perfstats tables)")
    rows = con.execute("SELECT value FROM perfstats_meta WHERE key = 'schema_version'").fetchall()
    version = int(rows[0][0]) if rows else 0
    if version > STORE_SCHEMA_VERSION:
        raise StoreError(
            f"{where}: store schema version {version} was written by a newer perfstats; "
            f"this version reads up to {STORE_SCHEMA_VERSION}. Upgrade perfstats."
        )
    if version < STORE_SCHEMA_VERSION:
        statements = migration_statements(version, f"{where}: no migration from store")
        if read_only:
            raise StoreError(f"{where}: store schema version {version} needs an upgrade to "
                             f"{STORE_SCHEMA_VERSION}; a write (perfstats ingest) performs it")
        con.execute("BEGIN")
        for statement in statements:
            con.execute(statement)
        con.execute(
            "INSERT OR REPLACE INTO perfstats_meta VALUES ('schema_version', ?)",
            [str(STORE_SCHEMA_VERSION)],
        )
        con.execute("COMMIT")


class Store:
    """A perfstats store in one DuckDB database.

    Args:
        path: database file, or ``":memory:"``. Default: ``$PERFSTATS_DB``, else
            ``perfstats.duckdb`` in the working directory.
        lock_timeout: seconds to wait for another process that holds the file.

    Example:
        >>> store = Store(":memory:")
        >>> store.runs().height
        0
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, lock_timeout: float = 30.0):
        raw = os.fspath(path) if path is not None else os.environ.get("PERFSTATS_DB", DEFAULT_DB)
        self.path = raw
        self.lock_timeout = lock_timeout
        self._memory: duckdb.DuckDBPyConnection | None = None
        self._held = _Held()
        if raw == ":memory:":
            self._database = MemoryDatabase(_create_schema)
            self._memory = _without_progress_bar(self._database.con)

    @property
    def in_memory(self) -> bool:
        """True for a ``:memory:`` store."""
        return self._memory is not None

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    @contextmanager
    def connect(self, *, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a connection for one operation (closed afterwards for file stores).

        A reader (``write=False``) opens the file read-only: it never creates or changes it, so
        several readers can work at once (while nothing writes) and a read-only file can be
        read.  A store file that does not exist or holds no tables reads as an empty store.
        """
        if self._memory is not None:
            with _HOST_LOCK:
                yield self._memory
            return
        held = self._held
        if held.depth and write and held.opened is not None:
            # DuckDB refuses a second connection to a file with another configuration.
            held.opened[1]()
            held.opened = None
        if held.depth and not write:
            with _HOST_LOCK:
                if held.opened is None:
                    held.opened = self._open_read()
                yield held.opened[0]
            return
        with _HOST_LOCK:
            if write:
                opened = self._open_checked(write=True)
                assert opened is not None  # a writer always gets the file
            else:
                opened = self._open_read()
            try:
                yield opened[0]
            finally:
                opened[1]()

    @contextmanager
    def reading(self) -> Iterator[Store]:
        """Share one read-only connection among the reads of this thread until the block ends.

        The file is opened (and its schema checked) at the first read, not once per query; a
        write inside the block closes it first and the next read opens it again.  While the
        connection is open no other process can write the file, so hold it for one command or
        API call, never longer.  Blocks nest; in-memory and team stores are unaffected.

        Example:
            >>> store = Store(":memory:")
            >>> with store.reading():
            ...     store.runs().height
            0
        """
        held = self._held
        held.depth += 1
        try:
            yield self
        finally:
            held.depth -= 1
            if not held.depth and held.opened is not None:
                held.opened[1]()
                held.opened = None

    def _open_read(self) -> _Opened:
        """A read-only connection to the file, or an empty in-memory schema when the file does
        not exist or holds no tables."""
        path = Path(self.path)
        if path.exists() and path.stat().st_size > 0:
            opened = self._open_checked(write=False)
            if opened is not None:
                return opened
        # Reading a store that was never written: answer from an empty schema, create no file.
        empty = MemoryDatabase(_create_schema)
        return _without_progress_bar(empty.con), empty.close

    def _open_checked(self, *, write: bool) -> _Opened | None:
        """Open the file and check its schema; None for a reader that finds no tables."""
        con, close = self._open_file(read_only=not write)
        try:
            tables = _table_names(con)
            if write or tables:
                _check_schema(con, self.path, tables, read_only=not write)
                return con, close
            close()
            return None
        except BaseException:
            close()
            raise

    def _open_file(self, *, read_only: bool = False) -> _Opened:
        """The file attached to the process's DuckDB instance (``host.open_file``), waiting up
        to ``lock_timeout`` while another process holds it."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        waited = False
        while True:
            try:
                con, close = open_file(self.path, read_only=read_only)
            except duckdb.IOException as exc:
                message = first_line(exc)
                if "lock" not in message.lower():
                    raise StoreError(f"{self.path}: cannot open store: {message}") from exc
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"{self.path}: store is in use by another process; waited "
                        f"{self.lock_timeout:g} s (set PERFSTATS_LOCK_TIMEOUT to wait longer)"
                    ) from exc
                if not waited:
                    waited = True
                    _report(f"{self.path}: waiting for another process that is using the store "
                            f"(up to {self.lock_timeout:g} s)")
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            except duckdb.Error as exc:
                message = first_line(exc)
                raise StoreError(f"{self.path}: cannot open store: {message}") from exc
            else:
                try:
                    return _without_progress_bar(con), close
                except BaseException:
                    close()
                    raise

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the store's lock ``name`` across processes.  A file store needs none: its one
        writing connection excludes every other writer already."""
        yield

    def stored_run(self, con: duckdb.DuckDBPyConnection, digest: str) -> tuple[str, Any] | None:
        """The ``(run_id, labels)`` of the stored run with content hash ``digest``, or None."""
        rows = con.execute("SELECT run_id, labels FROM runs WHERE content_hash = ?",
                           [digest]).fetchall()
        return (str(rows[0][0]), rows[0][1]) if rows else None

    def query(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        """Run a read query and return a polars DataFrame."""
        with self.connect() as con:
            return fetch_frame(con, sql, params)

    def runs(self, *, labels: dict[str, str] | None = None) -> pl.DataFrame:
        """All runs with their metadata, oldest first; ``labels`` keeps the runs having all of them.

        ``labels`` is a list of ``{key, value}`` structs in the frame (a DuckDB MAP).
        """
        where = " AND ".join(["labels[?] = ?"] * len(labels or {}))
        params = [x for pair in (labels or {}).items() for x in pair]
        return self.query(
            "SELECT run_id, tool, format, tool_version, grain, started_at, ended_at, duration_s, "
            "load_model, max_users, labels, notes, source_files, content_hash, ingested_at "
            f"FROM runs {'WHERE ' + where if where else ''} "
            "ORDER BY started_at NULLS LAST, ingested_at",
            params,
        )

    def resolve_run_id(self, run_id: str) -> str:
        """Return the full run id for ``run_id`` or a unique prefix of one."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id", [run_id]
            ).fetchall()
        if not rows:
            raise RunNotFoundError(f"no run {run_id!r} in store {self.path}")
        if len(rows) > 1:
            raise RunNotFoundError(f"run id prefix {run_id!r} is ambiguous in store {self.path}")
        return str(rows[0][0])

    def sampled_metrics(self, run_id: str) -> frozenset[str]:
        """The metric names of a run's raw samples (``points``; empty for a summary run)."""
        return frozenset(self.query("SELECT DISTINCT metric FROM points WHERE run_id = ?",
                                    [run_id])["metric"].to_list())

    def run_meta(self, run_id: str) -> dict[str, Any]:
        """The ``runs`` row of one run as a dict (labels as a plain dict)."""
        # Through Arrow: DuckDB's fetchall() needs pytz for TIMESTAMPTZ values.
        rows = self.query("SELECT * FROM runs WHERE run_id = ?", [run_id]).to_dicts()
        if not rows:
            raise RunNotFoundError(f"no run {run_id!r} in store {self.path}")
        meta = rows[0]
        meta["labels"] = dict(meta["labels"] or {})
        return meta


PathLike = str | os.PathLike[str]
"""A file or directory path."""
DB = Store | PathLike | None
"""Where runs are stored: a :class:`Store`, a database path or URL, or None for the default."""


def fetch_frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> pl.DataFrame:
    """Run ``sql`` on ``con`` and return the result as a polars DataFrame.

    (DuckDB 2 refuses ``con.sql`` while an ``execute`` result is unfetched: fetch results whole
    with ``fetchall()``, never ``fetchone()``.)
    """
    return con.sql(sql, params=params or None).pl()


def _without_progress_bar(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Turn DuckDB's progress bar off: it would write into piped output (``--format json``).

    Only when it is on: in a Jupyter kernel it is off already, and DuckDB refuses any change of
    it there without ipywidgets.
    """
    if con.execute("SELECT current_setting('enable_progress_bar')").fetchall()[0][0]:
        con.execute("SET enable_progress_bar = false")
    return con


@contextmanager
def reading(*stores: Store | None) -> Iterator[None]:
    """:meth:`Store.reading` of each store given (each once; None is skipped) for the block."""
    with ExitStack() as stack:
        for store in {id(s): s for s in stores if s is not None}.values():
            stack.enter_context(store.reading())
        yield


def open_store(db: DB = None) -> Store:
    """Open a perfstats store: a DuckDB file, ``":memory:"`` for a throw-away one, or a team
    store URL (``ducklake:postgres:...``, docs/team.md); None opens ``$PERFSTATS_DB`` or
    ``perfstats.duckdb``. A :class:`Store` is returned as it is.

    Example:
        >>> db = open_store(":memory:")
    """
    if isinstance(db, Store):
        return db
    timeout = float(os.environ.get("PERFSTATS_LOCK_TIMEOUT", "30"))
    location = os.fspath(db) if db is not None else os.environ.get("PERFSTATS_DB", DEFAULT_DB)
    if location.startswith("ducklake:"):
        from perfstats.store.team import TeamStore

        return TeamStore(location, lock_timeout=timeout)
    return Store(location, lock_timeout=timeout)
