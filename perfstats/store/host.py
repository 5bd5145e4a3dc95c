"""In-memory databases and store files attached to one DuckDB instance per process, not one
instance each.

Opening a DuckDB instance costs about 20 ms of CPU (its catalog of built-in functions is built
anew each time); attaching an in-memory database to an open one costs about 1 ms, a file about
1.5.  So the process keeps one *host* connection, opened at the first use, and each in-memory
database (a ``:memory:`` store, the empty store a reader of a missing file sees) is attached to
it under a name of its own, with the schema copied from a template database made once per process
(``COPY FROM DATABASE``: cheaper than running the DDL again), and gets a cursor whose default
database it is (``USE``).  It is detached, and its memory freed, when it is closed or garbage
collected.

Store files are attached to it too (``open_file``), for one operation or one ``Store.reading()``
block, and detached (checkpointed) when their last user closes them; each file is attached once
per process (DuckDB refuses it twice), read-only for readers, shared by every user of the same
mode.  A writer sets the host's spill directory to ``<file>.tmp`` for its length (a connection of
the file's own did the same); once the host has spilled DuckDB keeps its directory, and a writer
then connects to the file on its own.

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
from dataclasses import dataclass

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
_DEFAULT_TEMP = ".tmp"
"""The host's own spill directory (DuckDB's default for an in-memory instance)."""


@dataclass
class _Attached:
    """A store file open in this process: its name on the host (or a connection of its own),
    how it is open and how many users share it."""

    name: str
    read_only: bool
    own: duckdb.DuckDBPyConnection | None
    users: int = 1


_FILES: dict[str, _Attached] = {}
"""The store files open in this process, by real path (under ``_LOCK``)."""


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
        _FILES.clear()
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


def open_file(path: str, *,
              read_only: bool) -> tuple[duckdb.DuckDBPyConnection, Callable[[], None]]:
    """A cursor on the store file ``path`` (its default database) and how to close it.

    The file is attached to the host (read-only for a reader), or shared with the users that
    have it attached in this process already; the last one to close it detaches it (DuckDB
    checkpoints it then: no ``.wal`` is left).  A writer's spill goes to ``<path>.tmp``, as
    with a connection of the file's own: the host's temporary directory is set to it for the
    write, unless the host has spilled before (DuckDB then refuses to switch it), in which case
    the writer opens a connection of its own.  DuckDB's errors pass through: ``IOException``
    when another process holds the file; ``ConnectionException`` when this process has it open
    the other way (read-only against read-write), as DuckDB refuses a second connection to a
    file with another configuration.
    """
    key = os.path.realpath(path)
    with _LOCK:
        host = _host()
        entry = _FILES.get(key)
        if entry is not None:
            if entry.read_only != read_only:
                raise duckdb.ConnectionException(
                    "Connection Error: Can't open a connection to same database file with a "
                    "different configuration than existing connections")
            entry.users += 1
        else:
            entry = _attach(host, path, f"perfstats_file_{next(_NAMES)}", read_only=read_only)
            _FILES[key] = entry
        try:
            cursor = (entry.own or host).cursor()
            if entry.own is None:
                cursor.execute(f"USE {entry.name}")
        except BaseException:
            _release(key, entry)
            raise

    def close() -> None:
        cursor.close()
        with _LOCK:
            _release(key, entry)

    return cursor, close


def _attach(host: duckdb.DuckDBPyConnection, path: str, name: str, *,
            read_only: bool) -> _Attached:
    """Open the file: ATTACH it to the host as ``name`` (a writer's spill to ``<path>.tmp``),
    or, for a writer when the host cannot switch its spill directory, connect to it."""
    quoted = path.replace("'", "''")
    if read_only:
        host.execute(f"ATTACH '{quoted}' AS {name} (TYPE duckdb, READ_ONLY)")
        return _Attached(name, True, None)
    try:
        host.execute(f"SET GLOBAL temp_directory = '{quoted}.tmp'")
    except duckdb.NotImplementedException:  # the host has spilled: it keeps its directory
        return _Attached(name, False, duckdb.connect(path))
    try:
        host.execute(f"ATTACH '{quoted}' AS {name} (TYPE duckdb)")
    except BaseException:
        _spill_to_default(host)
        raise
    return _Attached(name, False, None)


def _release(key: str, entry: _Attached) -> None:
    """One user less of a file (under ``_LOCK``); the last one closes it."""
    if _HOST is None or _HOST[0] != os.getpid() or _FILES.get(key) is not entry:
        return  # a file of the parent process, in a forked child
    entry.users -= 1
    if entry.users:
        return
    del _FILES[key]
    if entry.own is not None:
        entry.own.close()
        return
    host = _HOST[1]
    host.execute(f"DETACH DATABASE {entry.name}")
    if not entry.read_only:
        _spill_to_default(host)


def _spill_to_default(host: duckdb.DuckDBPyConnection) -> None:
    """Point the host's spill back to its own directory, unless a write spilled (DuckDB then
    keeps the directory it used)."""
    with suppress(duckdb.NotImplementedException):
        host.execute(f"SET GLOBAL temp_directory = '{_DEFAULT_TEMP}'")
