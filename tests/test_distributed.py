"""Distributed runs: the k6 outputs of two processes that ran one test with --execution-segment
0:1/2 and 1/2:1 (data/k6-split) become one run; a pool of repeated runs never does."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from helpers import DATA

import perfstats
from perfstats.cli import cli
from perfstats.errors import IngestError
from perfstats.store import ALL_ENDPOINTS

SPLIT = DATA / "k6-split"
SEGMENTS = [SPLIT / "segment-1" / "points.json.gz", SPLIT / "segment-2" / "points.json.gz"]
UNSPLIT = SPLIT / "unsplit" / "points.json.gz"


def _durations(paths: list[Path]) -> dict[str, np.ndarray]:
    """http_req_duration values by endpoint (method + name tag) and for all, read with json."""
    rows = []
    for path in paths:
        with gzip.open(path, "rt") as fh:
            for line in fh:
                doc = json.loads(line)
                if doc["type"] == "Point" and doc["metric"] == "http_req_duration":
                    tags = doc["data"]["tags"]
                    rows.append((f"{tags['method']} {tags['name']}", doc["data"]["value"]))
    frame = pl.DataFrame(rows, orient="row", schema=["endpoint", "value"])
    by = {k[0]: g["value"].to_numpy() for k, g in frame.group_by("endpoint")}
    return {**by, ALL_ENDPOINTS: frame["value"].to_numpy()}


def test_merged_percentiles_are_those_of_all_points_together(any_store: str) -> None:
    run = perfstats.ingest(SEGMENTS, db=any_store)
    summary = run.summary()
    expected = _durations(SEGMENTS)
    assert set(summary["endpoint"]) == set(expected)
    for row in summary.iter_rows(named=True):
        values = expected[row["endpoint"]]
        assert row["count"] == len(values)
        for q in (50, 90, 95, 99):
            # numpy's default (linear) is k6's percentile definition.
            assert row[f"p{q}"] == pytest.approx(np.percentile(values, q), rel=1e-12)
    assert run.meta["grain"] == "samples"
    assert "one distributed run of 2 shards" in " ".join(run.meta["notes"])


def test_users_and_throughput_add_up_over_the_segments() -> None:
    merged = perfstats.ingest(SEGMENTS, db=":memory:")
    parts = [perfstats.ingest(p, db=":memory:") for p in SEGMENTS]
    assert merged.meta["max_users"] == sum(p.meta["max_users"] for p in parts) == 20

    def total(run: perfstats.Run) -> dict:
        return run.summary().filter(pl.col("endpoint") == ALL_ENDPOINTS).row(0, named=True)

    assert total(merged)["count"] == sum(total(p)["count"] for p in parts)
    # Throughput: the sum of the segments' (their spans differ by a fraction of a second).
    assert total(merged)["rps"] == pytest.approx(sum(total(p)["rps"] for p in parts), rel=0.01)
    # Per second, the users of the two processes add up too (10 + 10 while both run).
    users = merged.windows(ALL_ENDPOINTS)["users"].drop_nulls()
    assert users.max() == 20 and users.median() == 20


def test_a_split_run_compared_with_an_unsplit_run_is_go() -> None:
    store = perfstats.open_store(":memory:")
    split = perfstats.ingest(SEGMENTS, db=store)
    unsplit = perfstats.ingest(UNSPLIT, db=store)
    result = perfstats.compare(unsplit, split, db=store)
    assert result.verdict == "GO", result.headline()
    assert not any("virtual users differ" in w for w in result.warnings)


def test_baseline_auto_takes_the_shards_of_the_candidate(any_store: str) -> None:
    """compare --baseline auto with the shard files as the candidate: one run, on either store."""
    runner = CliRunner()
    stored = runner.invoke(cli, ["ingest", str(UNSPLIT.parent), "--label", "branch=main",
                                 "--db", any_store])
    assert stored.exit_code == 0, stored.output
    result = runner.invoke(cli, ["compare", "--baseline", "auto", "--label", "branch=main",
                                 *map(str, SEGMENTS), "--format", "json", "--db", any_store])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "GO" and doc["baseline"]["run_ids"] == [stored.stdout.strip()]
    split = perfstats.ingest(SEGMENTS, db=":memory:")
    assert doc["candidate"]["run_ids"] == [split.run_id]


def test_the_files_say_they_are_shards_of_one_run(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    result = CliRunner().invoke(cli, ["ingest", *map(str, [p.parent for p in SEGMENTS]),
                                      "--db", db])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.split()) == 1
    assert "shards of one distributed run (testid split-steady-1" in result.stderr
    # A directory holding both outputs is one run as well.
    both = tmp_path / "both"
    both.mkdir()
    for number, path in enumerate(SEGMENTS, 1):
        shutil.copy(path, both / f"segment-{number}.json.gz")
    assert perfstats.ingest(both, db=":memory:").meta["max_users"] == 20


def test_repeated_runs_are_never_taken_for_shards(tmp_path: Path) -> None:
    # The unsplit run given the split run's testid: same test name, but it ran after it.
    relabelled = tmp_path / "later.json.gz"
    with gzip.open(UNSPLIT, "rt") as src, gzip.open(relabelled, "wt") as dst:
        dst.write(src.read().replace("unsplit-steady-1", "split-steady-1"))
    db = str(tmp_path / "s.duckdb")
    result = CliRunner().invoke(cli, ["ingest", str(SEGMENTS[0]), str(relabelled), "--db", db])
    assert result.exit_code == 0 and len(result.stdout.split()) == 2
    assert "shards" not in result.stderr
    # Nor runs without a testid (the bundled baseline and candidate ran one after the other).
    result = CliRunner().invoke(cli, ["ingest", str(DATA / "k6" / "baseline"),
                                      str(DATA / "k6" / "candidate"), "--db", db])
    assert result.exit_code == 0 and len(result.stdout.split()) == 2
    # A directory of two such outputs is refused, naming the way to say they are one run.
    both = tmp_path / "both"
    both.mkdir()
    shutil.copy(SEGMENTS[0], both / "a.json.gz")
    shutil.copy(relabelled, both / "b.json.gz")
    with pytest.raises(IngestError, match="no shared testid tag over overlapping times.*--one-run"):
        perfstats.ingest(both, db=":memory:")


def test_one_run_takes_the_users_word_for_it(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    result = CliRunner().invoke(cli, ["ingest", "--one-run", str(SEGMENTS[0]), str(UNSPLIT),
                                      "--db", db])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.split()) == 1


def test_shards_ingested_apart_are_named_when_pooled_as_a_baseline() -> None:
    store = perfstats.open_store(":memory:")
    apart = [perfstats.ingest(p, db=store) for p in SEGMENTS]
    unsplit = perfstats.ingest(UNSPLIT, db=store)
    warnings = " | ".join(perfstats.compare(apart, unsplit, db=store).warnings)
    assert "the shards of one distributed run, not repeats" in warnings
    assert "--one-run" in warnings
    # Repeated runs (one after the other) pooled: no such warning.
    repeats = [perfstats.ingest(DATA / "k6" / name, db=store) for name in ("baseline", "smoke")]
    warnings = " | ".join(perfstats.compare(repeats, unsplit, db=store).warnings)
    assert "shards" not in warnings


def test_shard_summaries_merge_approximately_and_say_so(tmp_path: Path) -> None:
    exports = [p.parent / "summary-export.json" for p in SEGMENTS]
    merged = perfstats.ingest(exports, db=":memory:")
    exact = perfstats.ingest(SEGMENTS, db=":memory:").summary()
    assert merged.meta["grain"] == "summary" and merged.meta["max_users"] == 20
    rows = merged.summary()
    assert rows["percentiles"].str.starts_with("approximate: mixture of 2").all()
    for row in rows.iter_rows(named=True):
        # Summary endpoints are name tags; the exact run's are "METHOD name".
        truth = exact.filter(pl.col("endpoint").str.ends_with(f" {row['endpoint']}")
                             | (pl.col("endpoint") == row["endpoint"])).row(0, named=True)
        assert row["count"] == truth["count"]
        for column in ("p50", "p90", "p95", "p99"):
            assert row[column] == pytest.approx(truth[column], rel=0.10), (row["endpoint"], column)
    total = rows.filter(pl.col("endpoint") == ALL_ENDPOINTS).row(0, named=True)
    assert total["rps"] == pytest.approx(exact.filter(
        pl.col("endpoint") == ALL_ENDPOINTS)["rps"][0], rel=0.01)
    # Without saying they are one run, two summaries of one kind stay refused.
    both = tmp_path / "both"
    both.mkdir()
    for number, path in enumerate(exports, 1):
        shutil.copy(path, both / f"export-{number}.json")
    with pytest.raises(IngestError, match="several k6-summary-export files"):
        perfstats.ingest(both, db=":memory:")
