"""The team store: DuckLake with its catalog in PostgreSQL and its data as Parquet files.

Many processes on many machines read and write one team store at once (docs/team.md).  A store
URL names it::

    ducklake:postgres:dbname=perfstats host=pg.internal user=ci data_path=/mnt/perfstats-lake/

Everything after ``ducklake:postgres:`` is a libpq connection string (password from
``PGPASSWORD`` or ``~/.pgpass``); its ``data_path`` entry, taken out before it reaches libpq, is
the directory (or object store prefix) of the Parquet files.  It is needed only when the store is
created: DuckLake keeps it in the catalog.

The tables are those of the file store (``SCHEMA``), without the PRIMARY KEY / UNIQUE constraints
DuckLake has no place for: uniqueness of a run is kept by ingest, which takes a PostgreSQL
advisory lock on the run's content hash around its duplicate check and commit.  No row is
inlined in the catalog, so the Parquet files of a table (``<data path>/main/<table>/``) hold all
its rows, each with its ``run_id``.  The tables are not partitioned by run: DuckLake can then
merge the small files of many ingests into few (``ducklake_merge_adjacent_files``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from perfstats.errors import StoreError, first_line
from perfstats.store import (
    RUN_TABLES,
    SCHEMA,
    STORE_SCHEMA_VERSION,
    VIEWS,
    Store,
    _without_progress_bar,
    migration_statements,
)

URL_PREFIX = "ducklake:postgres:"
LAKE = "perfstats_lake"
"""The name the lake is attached under in each DuckDB connection."""
EXTENSION_PACKAGES = ("duckdb-ext-ducklake", "duckdb-ext-postgres")
EXTRA_HINT = "pip install 'perfstats[team]'"
_SCHEMA_LOCK = "perfstats schema"

_CONNECTIONS: dict[str, duckdb.DuckDBPyConnection] = {}
_CONNECTIONS_LOCK = threading.Lock()


def is_team_url(location: str) -> bool:
    """True when ``location`` is a team store URL (``ducklake:postgres:...``)."""
    return location.startswith(URL_PREFIX)


def parse_url(url: str) -> tuple[str, str | None]:
    """Split a team store URL into ``(libpq connection string, data path or None)``.

    Example:
        >>> parse_url("ducklake:postgres:dbname=p host=db data_path=/lake/")
        ('dbname=p host=db', '/lake/')
    """
    if not is_team_url(url):
        raise StoreError(f"{url}: not a team store URL (expected {URL_PREFIX}<conninfo>)")
    conninfo = url[len(URL_PREFIX):]
    data_path = None
    match = re.search(r"(?:^|\s)data_path=(\S+)", conninfo)
    if match:
        data_path = match.group(1)
        conninfo = (conninfo[: match.start()] + " " + conninfo[match.end():]).strip()
    if not conninfo:
        raise StoreError(f"{url}: no PostgreSQL connection string after {URL_PREFIX}")
    return conninfo, data_path


def extension_directory() -> str:
    """The directory of the DuckDB extensions that the ``team`` extra installs, checked against
    the running DuckDB.

    Raises:
        StoreError: an extension package is missing or built for another DuckDB version.
    """
    roots = []
    for package in EXTENSION_PACKAGES:
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            raise StoreError(f"the team store needs DuckDB's ducklake and postgres extensions: "
                             f"{EXTRA_HINT} ({package} is not installed)") from None
        roots.append((package, dist.version, Path(str(dist.locate_file("duckdb_ext/extensions")))))
    version = f"v{duckdb.__version__}"
    for package, built_for, root in roots:
        if not (root / version).is_dir():
            raise StoreError(
                f"the team store needs DuckDB's ducklake and postgres extensions for DuckDB "
                f"{duckdb.__version__}, but {package} {built_for} is built for another DuckDB: "
                f"{EXTRA_HINT} installs a matching pair")
    return str(roots[0][2])


def _open_lake(extensions: str, conninfo: str, data_path: str | None,
               url: str) -> duckdb.DuckDBPyConnection:
    config = {"extension_directory": extensions,
              "autoinstall_known_extensions": False, "autoload_known_extensions": True}
    con = _without_progress_bar(duckdb.connect(":memory:", config=config))
    options = ["METADATA_SCHEMA 'public'", "DATA_INLINING_ROW_LIMIT 0"]
    if data_path is not None:
        if "://" not in data_path:
            data_path = str(Path(data_path).resolve()) + "/"
        options.append(f"DATA_PATH '{_quote(data_path)}'")
    try:
        con.execute("LOAD ducklake")
        con.execute("LOAD postgres_scanner")
        con.execute(f"ATTACH '{_quote('ducklake:postgres:' + conninfo)}' AS {LAKE} "
                    f"({', '.join(options)})")
    except duckdb.Error as exc:
        con.close()
        raise StoreError(f"{_redact(url)}: cannot open team store: {first_line(exc)}") from exc
    return con


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _redact(url: str) -> str:
    """The URL with any password replaced (it goes into error messages)."""
    return re.sub(r"(password=)\S+", r"\1***", url)


class TeamStore(Store):
    """A perfstats store in a DuckLake: catalog in PostgreSQL, data as Parquet files.

    Each process keeps one attached lake per URL (attaching costs a few round trips); each
    operation gets its own cursor and hence its own transaction over the newest snapshot.

    Args:
        url: ``ducklake:postgres:<libpq conninfo> [data_path=DIR]``.
        lock_timeout: seconds to wait for another process's lock on the same run.
    """

    def __init__(self, url: str, *, lock_timeout: float = 30.0):
        self.conninfo, self.data_path = parse_url(url)
        self.path = _redact(url)
        self.lock_timeout = lock_timeout
        self._memory = None
        self.url = url
        """The URL as given (with any password: for other perfstats processes, not for display)."""

    def _lake(self) -> duckdb.DuckDBPyConnection:
        with _CONNECTIONS_LOCK:
            con = _CONNECTIONS.get(self.url)
            if con is None:
                extensions = extension_directory()
                # The first attach creates DuckLake's catalog tables, then perfstats's tables:
                # one process at a time.
                with self.lock(_SCHEMA_LOCK):
                    con = _open_lake(extensions, self.conninfo, self.data_path, self.url)
                    cursor = con.cursor()
                    try:
                        cursor.execute(f"USE {LAKE}")
                        _check_team_schema(cursor, self.path)
                    finally:
                        cursor.close()
                _CONNECTIONS[self.url] = con
            return con

    @contextmanager
    def connect(self, *, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a cursor on the lake (its own transaction) for one operation."""
        cursor = self._lake().cursor()
        try:
            _without_progress_bar(cursor)
            cursor.execute(f"USE {LAKE}")
            cursor.execute(f"SET ducklake_max_retry_count = {_RETRIES}")
            yield cursor
        finally:
            cursor.close()

    @contextmanager
    def reading(self) -> Iterator[Store]:
        """Nothing to hold: the process's attached lake is shared already, and each operation
        keeps its own cursor (its own snapshot)."""
        yield self

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold a PostgreSQL advisory lock named ``name``: across every process and machine
        that uses this store, one holder at a time."""
        try:
            import psycopg
        except ImportError:
            raise StoreError(f"the team store needs psycopg: {EXTRA_HINT}") from None
        key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                             signed=True)
        try:
            with psycopg.connect(self.conninfo, autocommit=True) as pg:
                pg.execute(f"SET lock_timeout = '{int(self.lock_timeout * 1000)}ms'")
                pg.execute("SELECT pg_advisory_lock(%s)", [key])
                try:
                    yield
                finally:
                    pg.execute("SELECT pg_advisory_unlock(%s)", [key])
        except psycopg.errors.LockNotAvailable as exc:
            raise StoreError(f"{self.path}: {name!r} is locked by another process; waited "
                             f"{self.lock_timeout:g} s") from exc
        except psycopg.OperationalError as exc:
            raise StoreError(f"{self.path}: cannot reach PostgreSQL: {first_line(exc)}") from exc

    def stored_run(self, con: duckdb.DuckDBPyConnection, digest: str) -> tuple[str, Any] | None:
        """The ``(run_id, labels)`` of the committed run with content hash ``digest``, read in a
        fresh transaction (the newest snapshot, not the one the ingest started on)."""
        cursor = con.cursor()
        try:
            cursor.execute(f"USE {LAKE}")
            rows = cursor.execute("SELECT run_id, labels FROM runs WHERE content_hash = ?",
                                  [digest]).fetchall()
        finally:
            cursor.close()
        return (str(rows[0][0]), rows[0][1]) if rows else None


_RETRIES = 100
"""Commit retries against newer snapshots (appends of other runs never conflict)."""


def _team_columns(columns: str) -> str:
    return columns.replace(" PRIMARY KEY", "").replace(" UNIQUE", "")


def _check_team_schema(con: duckdb.DuckDBPyConnection, where: str) -> None:
    """Create the schema in an empty lake, refuse a foreign or newer one, migrate an older one
    (under the schema lock, so one process migrates and the others find it done)."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [LAKE]).fetchall()}
    if not tables:
        con.execute("BEGIN")
        for table, columns in SCHEMA.items():
            con.execute(f"CREATE TABLE {table} ({_team_columns(columns)})")
        for view, query in VIEWS.items():
            con.execute(f"CREATE VIEW {view} AS {query}")
        con.execute("INSERT INTO perfstats_meta VALUES ('schema_version', ?)",
                    [str(STORE_SCHEMA_VERSION)])
        con.execute("COMMIT")
        return
    if "perfstats_meta" not in tables:
        raise StoreError(f"{where}: not a perfstats store (a DuckLake without perfstats tables)")
    rows = con.execute("SELECT value FROM perfstats_meta WHERE key = 'schema_version'").fetchall()
    version = int(rows[0][0]) if rows else 0
    if version > STORE_SCHEMA_VERSION:
        raise StoreError(
            f"{where}: team store schema version {version} was written by a newer perfstats; "
            f"this version reads up to {STORE_SCHEMA_VERSION}. Upgrade perfstats.")
    if version < STORE_SCHEMA_VERSION:
        _migrate(con, where, version, tables)


def _migrate(con: duckdb.DuckDBPyConnection, where: str, version: int, tables: set[str]) -> None:
    """Run the file store's migrations (``MIGRATIONS``) from ``version`` up, in one DuckLake
    transaction.  Team stores of schema 1 also had their run tables partitioned by ``run_id``:
    that is reset, so new files are written unpartitioned like those of a new store (the old
    files stay as they are and read the same)."""
    statements = migration_statements(version, f"{where}: no migration from team store")
    con.execute("BEGIN")
    for statement in statements:
        con.execute(_team_columns(statement))
    for table in sorted(t for t in tables if t in RUN_TABLES):
        con.execute(f"ALTER TABLE {table} RESET PARTITIONED BY")
    con.execute("UPDATE perfstats_meta SET value = ? WHERE key = 'schema_version'",
                [str(STORE_SCHEMA_VERSION)])
    con.execute("COMMIT")
