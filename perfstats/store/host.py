"""In-memory databases attached to one DuckDB instance per process, not one instance each.

Opening a DuckDB instance costs about 20 ms of CPU (its catalog of built-in functions is built
anew each time); attaching an in-memory database to an open one costs about 1 ms.  So the
process keeps one *host* connection, opened at the first use, and each in-memory database (a
``:memory:`` store, the empty store a reader of a missing file sees) is attached to it under a
name of its own, with the schema copied from a template database made once per process
(``COPY FROM DATABASE``: cheaper than running the DDL again), and gets a cursor whose default
database it is (``USE``).  It is detached, and its memory freed, when it is closed or garbage
collected.

Per cursor, as with a connection of its own: transactions, temporary tables and views, frames
registered with ``register``, session settings (the progress bar).  Shared by all the databases
of the host: its global settings (``memory_limit``, ``preserve_insertion_order``, ``threads``),
the names of Python functions (``RunWriter.function`` makes each unique), and what catalog
functions list (``duckdb_tables()`` shows the tables of every attached database; filter on
``database_name = current_database()``).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import weakref
from collections.abc import Callable
from contextlib import suppress

import duckdb

Schema = Callable[[duckdb.DuckDBPyConnection], None]
"""Creates the tables of an empty database through a connection whose default database it is."""

_LOCK = threading.Lock()
"""Guards the host connection (one Python connection object is not for two threads at once)."""
_HOST: tuple[int, duckdb.DuckDBPyConnection] | None = None
_TEMPLATES: dict[Schema, str] = {}
_NAMES = itertools.count(1)
_UNDETACHED: list[str] = []
"""Databases collected while the host was busy: detached at its next use."""


class MemoryDatabase:
    """One in-memory database on the host, created with ``schema``; :attr:`con` is its cursor.

    Example:
        >>> db = MemoryDatabase(lambda con: con.execute("CREATE TABLE t (x INTEGER)"))
        >>> db.con.execute("SELECT count(*) FROM t").fetchall()
        [(0,)]
        >>> db.close()
    """

    def __init__(self, schema: Schema) -> None:
        self.name = f"perfstats_memory_{next(_NAMES)}"
        with _LOCK:
            host = _host()
            template = _TEMPLATES.get(schema)
            if template is None:
                template = _TEMPLATES[schema] = f"perfstats_template_{next(_NAMES)}"
                host.execute(f"ATTACH ':memory:' AS {template}")
                cursor = host.cursor()
                try:
                    cursor.execute(f"USE {template}")
                    schema(cursor)
                finally:
                    cursor.close()
            host.execute(f"ATTACH ':memory:' AS {self.name}")
            host.execute(f"COPY FROM DATABASE {template} TO {self.name}")
            self.con = host.cursor()
        self.con.execute(f"USE {self.name}")
        self._finalizer = weakref.finalize(self, _detach, self.con, self.name)
        self._finalizer.atexit = False

    def close(self) -> None:
        """Detach the database (freeing its memory) and close its cursor; idempotent."""
        self._finalizer()


def _host() -> duckdb.DuckDBPyConnection:
    """The host connection (under ``_LOCK``), opened at the first use in this process: a child
    made by ``fork`` opens its own.  Databases collected meanwhile are detached first."""
    global _HOST
    if _HOST is None or _HOST[0] != os.getpid():
        _HOST = (os.getpid(), _exact_memory_limit(duckdb.connect(":memory:")))
        _TEMPLATES.clear()
        _UNDETACHED.clear()
    host = _HOST[1]
    while _UNDETACHED:
        host.execute(f"DETACH DATABASE IF EXISTS {_UNDETACHED.pop()}")
    return host


def _exact_memory_limit(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Round the memory limit down to half of the unit DuckDB shows it in (``18.8 GiB`` ->
    ``18.5 GiB``): a value that reads back as it was set.  An ingest sets the limit back from the
    text it read (readers.k6._bulk_insert), and on an instance that lives on, an inexact value
    would shrink a little at every ingest."""
    shown = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    number, _, unit = str(shown).partition(" ")
    with suppress(ValueError):
        con.execute(f"SET GLOBAL memory_limit = '{math.floor(float(number) * 2) / 2} {unit}'")
    return con


def _detach(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Close a database's cursor and detach it; when the host is in use (by another thread, or
    by this one when the garbage collector runs inside a host call), leave it for the next use."""
    con.close()
    if _HOST is None or _HOST[0] != os.getpid():
        return  # a database of the parent process, in a forked child
    if not _LOCK.acquire(blocking=False):
        _UNDETACHED.append(name)
        return
    try:
        _host().execute(f"DETACH DATABASE IF EXISTS {name}")
    finally:
        _LOCK.release()
