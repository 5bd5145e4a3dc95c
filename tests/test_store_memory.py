"""In-memory stores: databases on the process's one DuckDB host (perfstats.store.host), each on its
own, and detached again when dropped."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import pytest
from helpers import DATA

import perfstats
from perfstats.errors import IngestError
from perfstats.store import RUN_TABLES, Store


def _attached() -> set[str]:
    """The databases attached to the host now (seen through a store of its own)."""
    probe = Store(":memory:")
    names = set(probe.query("SELECT database_name FROM duckdb_databases()")["database_name"])
    return names - {probe.query("SELECT current_database() AS d")["d"][0]}


def _counts(store: Store) -> dict[str, int]:
    return {table: store.query(f"SELECT count(*) AS n FROM {table}")["n"][0]
            for table in ["runs", *RUN_TABLES]}


def test_two_in_memory_stores_see_only_their_own_rows() -> None:
    one, other = Store(":memory:"), Store(":memory:")
    perfstats.ingest(DATA / "k6" / "smoke" / "points.json", db=one)
    assert one.runs().height == 1
    assert other.runs().height == 0
    assert one.query("SELECT count(*) AS n FROM samples")["n"][0] > 0
    assert other.query("SELECT count(*) AS n FROM samples")["n"][0] == 0
    assert set(_counts(other).values()) == {0}
    # Temporary tables belong to the connection that made them.
    with one.connect() as con:
        con.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS x")
    with other.connect() as con:
        assert not con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'scratch'").fetchall()[0][0]


def test_a_dropped_store_is_detached_and_its_memory_freed() -> None:
    store = Store(":memory:")
    perfstats.ingest(DATA / "k6" / "smoke" / "points.json", db=store)
    name = store.query("SELECT current_database() AS d")["d"][0]
    assert name in _attached()
    del store
    gc.collect()
    assert name not in _attached()


def test_reading_a_missing_file_leaves_no_database_attached(tmp_path: Path) -> None:
    gc.collect()  # a store an earlier test dropped would be detached between the two looks
    before = _attached()
    assert perfstats.runs(db=tmp_path / "never.duckdb").height == 0
    gc.collect()
    assert _attached() == before


def test_k6_ingests_leave_the_shared_settings_as_they_were(tmp_path: Path) -> None:
    # A raw k6 ingest changes two global settings for its length (readers.k6._bulk_insert).
    settings = ("SELECT current_setting('memory_limit') AS m, "
                "current_setting('preserve_insertion_order') AS p")
    probe = Store(":memory:")
    before = probe.query(settings).rows()
    points = (DATA / "k6" / "smoke" / "points.json").read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(points[: len(points) // 2])
    with pytest.raises(IngestError, match="truncated last line"):
        perfstats.ingest(cut, db=Store(":memory:"))
    assert probe.query(settings).rows() == before
    for _ in range(2):
        perfstats.load(DATA / "k6" / "smoke" / "points.json")
        assert probe.query(settings).rows() == before
    # The limit in force, not just the one shown: Locust JSON is read with a 2 GiB buffer.
    assert perfstats.load(DATA / "locust-split" / "worker-1").meta["grain"] == "histograms"


def test_two_threads_ingest_into_two_in_memory_stores_at_once() -> None:
    # Raw k6 NDJSON: the ingest registers Python functions, named apart on the shared instance.
    paths = [DATA / "k6" / "smoke" / "points.json", DATA / "k6" / "baseline" / "points.json.gz"]
    alone = [_counts(perfstats.load(path).store) for path in paths]
    stores = [Store(":memory:"), Store(":memory:")]
    errors: list[BaseException] = []

    def ingest(path: Path, store: Store) -> None:
        try:
            perfstats.ingest(path, db=store)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=ingest, args=pair)
               for pair in zip(paths, stores, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [_counts(store) for store in stores] == alone
