"""The store: schema creation, versioning, refusing foreign files, locking between processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from helpers import DATA, SampleRuns

import perfstats
import perfstats.store as store_module
from perfstats.errors import RunNotFoundError, StoreError
from perfstats.store import SCHEMA, STORE_SCHEMA_VERSION, Store, host


def test_new_file_store_gets_the_schema_and_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    with store.connect(write=True):
        pass
    tables = set(store.query("SELECT table_name FROM duckdb_tables() "
                             "WHERE database_name = current_database()")["table_name"])
    assert tables == set(SCHEMA)
    version = store.query("SELECT value FROM perfstats_meta WHERE key = 'schema_version'")
    assert version["value"][0] == str(STORE_SCHEMA_VERSION)


def test_a_schema_that_fails_half_way_leaves_no_table_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The views come after the tables: a failing one must take the tables with it, or the file
    # would be a store without its schema version, refused from then on.
    path = tmp_path / "s.duckdb"
    monkeypatch.setattr(store_module, "VIEWS", {"samples": "SELECT * FROM no_such_table"})
    with pytest.raises(duckdb.CatalogException), Store(path).connect(write=True):
        pass
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchall() == [(0,)]
    monkeypatch.undo()
    assert Store(path).runs().height == 0  # an empty file: the next write makes the schema
    with Store(path).connect(write=True):
        pass
    assert Store(path).runs().height == 0


def test_reading_a_missing_store_creates_no_file(tmp_path: Path) -> None:
    path = tmp_path / "never.duckdb"
    assert perfstats.runs(db=path).height == 0
    assert not path.exists()


def test_newer_schema_is_refused_with_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path).connect(write=True) as con:
        con.execute("UPDATE perfstats_meta SET value = '99' WHERE key = 'schema_version'")
    newer = rf"version 99.*newer perfstats.*up to {STORE_SCHEMA_VERSION}"
    with pytest.raises(StoreError, match=newer):
        perfstats.runs(db=path)


def test_older_schema_without_migration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path).connect(write=True) as con:
        con.execute("UPDATE perfstats_meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="no migration from store schema version 0"):
        perfstats.runs(db=path)


def test_a_version_1_store_is_migrated_and_keeps_its_runs(stored) -> None:
    """Schema 2 adds the scenarios table; a store written by schema 1 gains it on opening."""
    path, (run_id,) = stored("k6/smoke")
    with Store(path).connect(write=True) as con:
        con.execute("DROP TABLE scenarios")
        con.execute("UPDATE perfstats_meta SET value = '1' WHERE key = 'schema_version'")
    with Store(path).connect(write=True):  # a write migrates (a reader never changes a file)
        pass
    assert perfstats.runs(db=path)["run_id"].to_list() == [run_id]
    store = Store(path)
    assert store.query("SELECT value FROM perfstats_meta WHERE key = 'schema_version'")[
        "value"][0] == str(STORE_SCHEMA_VERSION)
    assert perfstats.load(run_id, db=path).scenarios().is_empty()


def test_foreign_duckdb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="not a perfstats store"):
        perfstats.runs(db=path)


def test_unknown_run_id_is_a_clear_error(store: Store) -> None:
    with pytest.raises(RunNotFoundError, match="no run 'abc'"):
        perfstats.load("abc", db=store)


HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_second_process_fails_clearly_after_the_lock_timeout(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path).connect(write=True):
        pass
    holder = _hold_lock(path, 60.0)
    try:
        with pytest.raises(StoreError, match="in use by another process; waited 0.5 s"):
            Store(path, lock_timeout=0.5).runs()
        assert holder.poll() is None  # it gave up while the lock was held, not at its release
    finally:
        holder.kill()  # done with it: no need to wait out its 60 s
        holder.wait()


def test_second_process_waits_for_the_lock_and_then_works(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path).connect(write=True):
        pass
    holder = _hold_lock(path, 0.3)
    try:
        assert Store(path, lock_timeout=20).runs().height == 0
    finally:
        holder.wait()


def _count_file_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every opening of a DuckDB file (its attachment to the process's instance) by the
    store from now on."""
    opened: list[str] = []
    real = host._attach

    def attach(con: duckdb.DuckDBPyConnection, path: str, *args: object, **kwargs: object
               ) -> object:
        opened.append(path)
        return real(con, path, *args, **kwargs)

    monkeypatch.setattr(host, "_attach", attach)
    return opened


def test_a_compare_on_a_file_store_opens_the_file_once(
        stored, sample_runs: SampleRuns, monkeypatch: pytest.MonkeyPatch) -> None:
    path, (base, cand) = stored("k6/baseline", "k6/candidate")
    opened = _count_file_opens(monkeypatch)
    on_file = perfstats.compare(base, cand, db=path)
    assert opened == [path]
    # The same answer as from an in-memory store.
    in_memory = sample_runs.compared("k6/baseline", "k6/candidate")
    assert on_file.verdict == in_memory.verdict
    assert on_file.checks.equals(in_memory.checks)
    # Closed again afterwards: a writer gets the file at once.
    with Store(path, lock_timeout=0).connect(write=True):
        pass


def test_reads_inside_reading_share_one_connection_and_a_write_still_works(
        stored, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = stored("k6/smoke")
    store = Store(path, lock_timeout=0)
    opened = _count_file_opens(monkeypatch)
    store.runs()
    store.runs()
    assert len(opened) == 2  # outside reading(): one open per operation, as before
    opened.clear()
    with store.reading():
        with store.reading():  # nested: the same connection
            assert store.runs().height == 1
        assert store.runs().height == 1
        assert len(opened) == 1
        run = perfstats.ingest(DATA / "k6" / "baseline", db=store)  # a write in the block
        assert store.runs().height == 2
        assert store.run_meta(run.run_id)["tool"] == "k6"
    assert len(opened) == 3  # the read, the write (ingest's), the read reopened after it
    # Nothing is held after the block: a writer gets the file at once.
    with store.connect(write=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchall()[0][0] == 2


def test_several_stores_on_one_file_share_its_attachment(
        stored, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB attaches a file once per instance: Store objects of one path in this process
    share it while they read; a writer meanwhile is refused as DuckDB refuses a connection with
    another configuration; the last reader to close detaches it."""
    path, _ = stored("k6/smoke")
    first, second = Store(path, lock_timeout=0), Store(path, lock_timeout=0)
    opened = _count_file_opens(monkeypatch)
    with first.reading(), second.reading():
        assert first.runs().height == second.runs().height == 1
        assert len(opened) == 1
        with pytest.raises(StoreError, match="cannot open store: .*different configuration"):
            with Store(path, lock_timeout=0).connect(write=True):
                pass
    with Store(path, lock_timeout=0).connect(write=True):  # detached: a writer gets it
        pass
    assert len(opened) == 2


def test_a_write_spills_next_to_the_file_and_leaves_no_wal(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    store = Store(path)
    with store.connect(write=True) as con:
        assert con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0] == \
            f"{path}.tmp"
    perfstats.ingest(DATA / "k6" / "smoke", db=store)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.duckdb"]  # checkpointed
    with store.connect() as con:  # a reader: the process's own spill directory again
        assert con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0] == ".tmp"
