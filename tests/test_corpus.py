"""Every file people committed in ../shared/corpus ingests, or fails with a one-line IngestError."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from helpers import table_counts

import perfstats
from perfstats.errors import IngestError

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "SOURCES.md") \
    if CORPUS.is_dir() else []


@pytest.mark.skipif(not FILES, reason="../shared/corpus is absent: no third-party files to walk")
@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/"
                                                      f"{p.name[:60]}")
def test_corpus_file_ingests_or_fails_cleanly(path: Path) -> None:
    store = perfstats.open_store(":memory:")
    empty = table_counts(store)
    try:
        run = perfstats.ingest(path, db=store)
    except IngestError as exc:
        message = str(exc)
        assert "\n" not in message and str(path) in message
        assert table_counts(store) == empty
        return
    assert run.meta["tool"] in path.parts[-3]
    assert store.runs()["run_id"].to_list() == [run.run_id]
    summary = run.summary()
    # Whatever the file holds, its numbers are coherent: counts, failures and ordered quantiles.
    # Locust reports percentiles rounded to whole milliseconds below 100 ms and to two significant
    # digits above (its response-time buckets), so beside the exact min and max they may be off by
    # up to 1 ms or 5 %.
    assert (summary["count"].drop_nulls() >= 0).all()
    assert summary.filter(pl.col("failures") > pl.col("count")).is_empty()
    exact = pl.col("percentiles") == "exact"
    slack, floor = pl.when(exact).then(1e-9).otherwise(0.05), pl.when(exact).then(1e-9).otherwise(1)
    for low, high in [("min", "p50"), ("p50", "p90"), ("p90", "p95"), ("p95", "p99"),
                      ("p99", "max")]:
        broken = summary.filter(pl.col(low) > pl.col(high) * (1 + slack) + floor)
        assert broken.is_empty(), f"{low} > {high}: {broken.select('endpoint', low, high)}"
