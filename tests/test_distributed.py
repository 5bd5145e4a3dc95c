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
from helpers import DATA, SampleRuns

import perfstats
from perfstats.cli import cli
from perfstats.errors import IngestError
from perfstats.readers.shards import MIXTURE, mix_summaries
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
                if "http_req_duration" not in line:  # no need to parse the other metrics' lines
                    continue
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


def total(run: perfstats.Run) -> dict:
    """The whole-run summary row of ``run``."""
    return run.summary().filter(pl.col("endpoint") == ALL_ENDPOINTS).row(0, named=True)


def test_users_and_throughput_add_up_over_the_segments(sample_runs: SampleRuns) -> None:
    merged = sample_runs.of(SEGMENTS)
    parts = [sample_runs.of(p) for p in SEGMENTS]
    assert merged.meta["max_users"] == sum(p.meta["max_users"] for p in parts) == 20

    assert total(merged)["count"] == sum(total(p)["count"] for p in parts)
    # Throughput: the sum of the segments' (their spans differ by a fraction of a second).
    assert total(merged)["rps"] == pytest.approx(sum(total(p)["rps"] for p in parts), rel=0.01)
    # Per second, the users of the two processes add up too (10 + 10 while both run).
    users = merged.windows(ALL_ENDPOINTS)["users"].drop_nulls()
    assert users.max() == 20 and users.median() == 20


def test_a_split_run_compared_with_an_unsplit_run_is_go(sample_runs: SampleRuns) -> None:
    result = perfstats.compare(sample_runs.of(UNSPLIT), sample_runs.of(SEGMENTS))
    assert result.verdict == "GO", result.headline()
    assert not any("virtual users differ" in w for w in result.warnings)


def test_baseline_auto_takes_the_shards_of_the_candidate(any_store: str,
                                                         sample_runs: SampleRuns) -> None:
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
    assert doc["candidate"]["run_ids"] == [sample_runs.of(SEGMENTS).run_id]


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
    with gzip.open(UNSPLIT, "rt") as src, gzip.open(relabelled, "wt", compresslevel=1) as dst:
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


def test_shards_ingested_apart_are_named_when_pooled_as_a_baseline(sample_runs: SampleRuns
                                                                   ) -> None:
    apart = [sample_runs.of(p) for p in SEGMENTS]
    unsplit = sample_runs.of(UNSPLIT)
    warnings = " | ".join(perfstats.compare(apart, unsplit).warnings)
    assert "the shards of one distributed run, not repeats" in warnings
    assert "--one-run" in warnings
    # Repeated runs (one after the other) pooled: no such warning.
    repeats = [sample_runs[f"k6/{name}"] for name in ("baseline", "smoke")]
    warnings = " | ".join(perfstats.compare(repeats, unsplit).warnings)
    assert "shards" not in warnings


def test_shard_summaries_merge_approximately_and_say_so(tmp_path: Path,
                                                        sample_runs: SampleRuns) -> None:
    exports = [p.parent / "summary-export.json" for p in SEGMENTS]
    merged = perfstats.ingest(exports, db=":memory:")
    exact = sample_runs.of(SEGMENTS).summary()
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


# Locust: two standalone processes (15 users each) and one of 30 users (data/locust-split);
# Artillery: two processes at 6 arrivals/s each and one at 12/s (data/artillery-split).
LOCUST_SPLIT = DATA / "locust-split"
LOCUST_WORKERS = [LOCUST_SPLIT / "worker-1", LOCUST_SPLIT / "worker-2"]
ARTILLERY_SPLIT = DATA / "artillery-split"
ARTILLERY_WORKERS = [ARTILLERY_SPLIT / "worker-1", ARTILLERY_SPLIT / "worker-2"]


def _locust_rule(buckets: dict[float, int], requests: int, p: float) -> float:
    """Locust's calculate_response_time_percentile, written out: the first bucket from the top
    at which the requests left are at most int(requests * p)."""
    processed = 0
    for bucket in sorted(buckets, reverse=True):
        processed += buckets[bucket]
        if requests - processed <= int(requests * p):
            return bucket
    return 0.0


def test_locust_processes_merge_their_histograms_exactly(sample_runs: SampleRuns) -> None:
    merged = sample_runs.of(LOCUST_WORKERS)
    assert merged.meta["grain"] == "histograms"
    entries: dict[str, dict] = {}
    for worker in LOCUST_WORKERS:
        for entry in json.loads(gzip.decompress((worker / "report.json.gz").read_bytes())):
            name = f"{entry['method']} {entry['name']}"
            into = entries.setdefault(name, {"n": 0, "failures": 0, "buckets": {}})
            into["n"] += entry["num_requests"]
            into["failures"] += entry["num_failures"]
            for bucket, count in entry["response_times"].items():
                into["buckets"][float(bucket)] = into["buckets"].get(float(bucket), 0) + count
    everything: dict[float, int] = {}
    for entry in entries.values():
        for bucket, count in entry["buckets"].items():
            everything[bucket] = everything.get(bucket, 0) + count
    entries[ALL_ENDPOINTS] = {"n": sum(e["n"] for e in entries.values()),
                              "failures": sum(e["failures"] for e in entries.values()),
                              "buckets": everything}
    rows = {r["endpoint"]: r for r in merged.summary().iter_rows(named=True)}
    assert rows.keys() == entries.keys()
    for name, entry in entries.items():
        row = rows[name]
        assert (row["count"], row["failures"]) == (entry["n"], entry["failures"])
        assert row["percentiles"] == "histogram"
        for column, p in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
            assert row[column] == _locust_rule(entry["buckets"], entry["n"], p), (name, column)


def test_locust_users_and_throughput_add_up_over_the_processes(sample_runs: SampleRuns) -> None:
    merged = sample_runs.of(LOCUST_WORKERS)
    parts = [sample_runs.of(w) for w in LOCUST_WORKERS]
    assert merged.meta["max_users"] == sum(p.meta["max_users"] for p in parts) == 30

    assert total(merged)["count"] == sum(total(p)["count"] for p in parts)
    assert total(merged)["rps"] == pytest.approx(sum(total(p)["rps"] for p in parts), rel=0.03)
    users = merged.windows(ALL_ENDPOINTS)["users"].drop_nulls()
    assert users.max() == 30 and users.median() == 30
    # Every request of each process's history is in the merged windows once.
    assert merged.windows(ALL_ENDPOINTS)["count"].sum() == sum(
        p.windows(ALL_ENDPOINTS)["count"].sum() for p in parts)


def test_locust_split_run_against_an_unsplit_run_differs_only_in_client_latency(
        sample_runs: SampleRuns) -> None:
    """Same users, throughput and errors; the two processes measured every endpoint slower
    (client overhead on the loaded 2-core machine: the server's own service times of the two
    runs agree, data/README.md), and compare names that as a common shift, not a regression of
    the traffic."""
    split = sample_runs.of(LOCUST_WORKERS)
    unsplit = sample_runs.of(LOCUST_SPLIT / "unsplit")
    assert unsplit.meta["max_users"] == split.meta["max_users"] == 30
    result = perfstats.compare(unsplit, split)
    traffic = result.checks.filter(pl.col("metric").is_in(["throughput", "error_rate"]))
    assert traffic.height and not traffic.filter(pl.col("status") == "regression").height
    assert not any("users differ" in w for w in result.warnings)
    assert any(w.startswith("all 6 endpoints slower (p50)") for w in result.warnings)


def test_artillery_reports_add_up_and_their_percentiles_say_approximate(sample_runs: SampleRuns
                                                                        ) -> None:
    merged = sample_runs.of(ARTILLERY_WORKERS)
    reports = [json.loads(gzip.decompress((w / "report.json.gz").read_bytes()))
               for w in ARTILLERY_WORKERS]
    counters = [r["aggregate"]["counters"] for r in reports]
    metrics = merged.store.query("SELECT metric, value FROM metrics WHERE run_id = ? AND "
                                 "type = 'counter'", [merged.run_id])
    got = dict(zip(metrics["metric"], metrics["value"], strict=True))
    for name in ("vusers.created", "http.requests", "http.responses", "http.codes.200"):
        assert got[name] == sum(c.get(name, 0) for c in counters), name
    rows = {r["endpoint"]: r for r in merged.summary().iter_rows(named=True)}
    assert rows[ALL_ENDPOINTS]["count"] == sum(c["http.responses"] for c in counters)
    # Arrivals add up per 10 s period.
    arrivals = merged.windows(ALL_ENDPOINTS)["arrivals"].sum()
    assert arrivals == sum(c["vusers.created"] for c in counters)
    parts = [sample_runs.of(w) for w in ARTILLERY_WORKERS]
    assert rows[ALL_ENDPOINTS]["rps"] == pytest.approx(sum(
        p.summary().filter(pl.col("endpoint") == ALL_ENDPOINTS)["rps"][0] for p in parts),
        rel=0.03)
    # Summaries only: each percentile is a mixture, between the workers' own figures.
    summaries = [r["aggregate"]["summaries"] for r in reports]
    for name, row in rows.items():
        assert row["percentiles"] == "approximate: mixture of 2 shard summaries"
        key = ("http.response_time" if name == ALL_ENDPOINTS
               else f"plugins.metrics-by-endpoint.response_time.{name}")
        for column in ("p50", "p90", "p95", "p99"):
            own = [s[key][column] for s in summaries]
            assert min(own) - 1e-9 <= row[column] <= max(own) + 1e-9, (name, column)
        assert row["min"] == min(s[key]["min"] for s in summaries)
        assert row["max"] == max(s[key]["max"] for s in summaries)


def test_artillery_split_run_compared_with_an_unsplit_run_is_go(sample_runs: SampleRuns
                                                                ) -> None:
    result = perfstats.compare(sample_runs.of(ARTILLERY_SPLIT / "unsplit"),
                               sample_runs.of(ARTILLERY_WORKERS))
    assert result.verdict == "GO", result.headline()


@pytest.mark.parametrize("workers", [LOCUST_WORKERS, ARTILLERY_WORKERS], ids=["locust",
                                                                             "artillery"])
def test_artillery_and_locust_outputs_are_shards_only_when_told(workers: list[Path],
                                                                tmp_path: Path) -> None:
    # Their files name no test: two paths are two runs, and one directory of both is refused.
    db = str(tmp_path / "s.duckdb")
    result = CliRunner().invoke(cli, ["ingest", *map(str, workers), "--db", db])
    assert result.exit_code == 0 and len(result.stdout.split()) == 2
    both = tmp_path / "both"
    both.mkdir()
    for number, worker in enumerate(workers, 1):
        shutil.copy(worker / "report.json.gz", both / f"report-{number}.json.gz")
    result = CliRunner().invoke(cli, ["ingest", str(both), "--db", db])
    assert result.exit_code == 2 and "--one-run" in result.stderr
    # Told, they are one run; pooled as repeats after being ingested apart, compare names them.
    result = CliRunner().invoke(cli, ["ingest", "--one-run", *map(str, workers), "--db", db])
    assert result.exit_code == 0 and len(result.stdout.split()) == 1
    store = perfstats.open_store(db)
    apart = [perfstats.load(w, db=store) for w in workers]
    warnings = " | ".join(perfstats.compare(apart, result.stdout.strip(), db=store).warnings)
    assert "the shards of one distributed run, not repeats" in warnings


# The mixture of shard summaries (perfstats.readers.shards.mix_summaries), all groups at once.
_KNOT_PROBS = {"min": 0.0, "p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "max": 1.0}
_QS = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def _shard(endpoint: str, count: int | None, knots: list[float | None], **other: object) -> dict:
    return {"endpoint": endpoint, "count": count, "failures": 0, "rps": 1.0, "mean": 10.0,
            **dict(zip(_KNOT_PROBS, knots, strict=True)), **other}


def _cdf(row: dict, x: float, *, left: bool = False) -> float:
    """A shard's CDF written out with numpy, or its left limit: through its known knots (running
    max), 0 left of the first, 1 from the last, a jump where knots share a value."""
    known = [(row[k], p) for k, p in _KNOT_PROBS.items() if row[k] is not None]
    v = np.maximum.accumulate([value for value, _ in known])
    p = [q for _, q in known]
    if (x <= v[0]) if left else (x < v[0]):
        return 0.0
    if (x > v[-1]) if left else (x >= v[-1]):
        return 1.0
    # v[i - 1] < x <= v[i] for the left limit, v[i - 1] <= x < v[i] for the value.
    i = int(np.searchsorted(v, x, side="left" if left else "right"))
    return float(p[i - 1] + (p[i] - p[i - 1]) * (x - v[i - 1]) / (v[i] - v[i - 1]))


def _mixture_cdf(shards: list[dict], x: float, *, left: bool = False) -> float:
    return float(np.average([_cdf(s, x, left=left) for s in shards],
                            weights=[s["count"] for s in shards]))


def test_mixture_of_two_uniform_shards_by_hand() -> None:
    # 1 request uniform on [0, 100] and 3 on [100, 200]: from 100 the mixture is
    # .25 + .75 (x - 100) / 100, so p50 = 100 + 100 (.25 / .75) and so on.
    rows = pl.DataFrame([_shard("a", 1, [0, 50, 90, 95, 99, 100], mean=50.0),
                         _shard("a", 3, [100, 150, 190, 195, 199, 200], mean=150.0)])
    row = mix_summaries(rows, "endpoint").row(0, named=True)
    for key, q in _QS.items():
        assert row[key] == pytest.approx(100 + 100 * (q - 0.25) / 0.75, rel=1e-12), key
    assert (row["count"], row["min"], row["max"], row["rps"]) == (4, 0, 200, 2.0)
    assert row["mean"] == pytest.approx(125.0)
    assert row["percentiles"] == MIXTURE.format(n=2)


def test_mixture_of_single_requests_and_of_knots_out_of_order() -> None:
    rows = pl.DataFrame([
        # One request each, at 10 ms and at 20 ms: half the mass at each value.
        _shard("one each", 1, [10] * 6), _shard("one each", 1, [20] * 6),
        # Artillery's sketch writes percentiles beyond min and max (data/artillery-split); the
        # running max makes the first shard a step at 26 and the second a ramp to 12.1.
        _shard("sketch", 1, [26, 25.8, 25.8, 25.8, 25.8, 26]),
        _shard("sketch", 1, [12, 12.1, 12.1, 12.1, 12.1, 12])])
    got = {r["endpoint"]: r for r in mix_summaries(rows, "endpoint").iter_rows(named=True)}
    # The mixture is 0 left of 10, .5 from 10 and 1 from 20: p50 at 10, the others at 20.
    assert [got["one each"][k] for k in _QS] == [10, 20, 20, 20]
    # .5 (the first shard's p50 to max, a step of .5 at 12.1) from 12.1, 1 from 26.
    assert [got["sketch"][k] for k in _QS] == [12.1, 26, 26, 26]


def test_mixture_through_jumps_by_hand() -> None:
    rows = pl.DataFrame([
        # p90 = p95: a jumps from .5 to .95 at 20; b is x / 80 up to its p50.  The mixture is
        # .375 just left of 20 and .6 at 20, so p50 is 20 (interpolating from 10 across the
        # jump gave 18.1, below both shards' p50).  From 50 to 60 it is .75 + .01 (x - 40):
        # p90 at 55, p95 at 60; from 80 to 90 .95 / 2 + .5 + .002 (x - 80): p99 at 87.5.
        _shard("jump", 1, [10, 20, 20, 20, 40, 50]),
        _shard("jump", 1, [0, 40, 60, 80, 90, 100]),
        # No min or max (Locust's windows): each shard jumps from 0 to .5 at its p50 and from
        # .99 to 1 at its p99.  The mixture is .5 from 40 (c's p99) to 50 (d's p50, .75), then
        # .75 + .02 (x - 50) to 60, .975 + .002 (x - 70) from 70 to 80.
        _shard("no min or max", 1, [None, 10, 20, 30, 40, None]),
        _shard("no min or max", 1, [None, 50, 60, 70, 80, None])])
    got = {r["endpoint"]: r for r in mix_summaries(rows, "endpoint").iter_rows(named=True)}
    assert [got["jump"][k] for k in _QS] == pytest.approx([20, 55, 60, 87.5], rel=1e-12)
    assert [got["no min or max"][k] for k in _QS] == pytest.approx([40, 57.5, 60, 77.5],
                                                                   rel=1e-12)


def test_a_shard_without_a_distribution_leaves_the_percentiles_unknown() -> None:
    rows = pl.DataFrame([
        _shard("one knot", 5, [None, 10, None, None, None, None], tool_name="first"),
        _shard("one knot", 5, [1, 10, 20, 30, 40, 50], tool_name="second"),
        _shard("no requests", 0, [1, 10, 20, 30, 40, 50]),
        _shard("no requests", 5, [1, 10, 20, 30, 40, 50], failures=None),
        _shard("alone", 5, [1, 10, 20, 30, 40, 50], rps=None)])
    merged = mix_summaries(rows, "endpoint")
    assert merged["endpoint"].to_list() == ["one knot", "no requests", "alone"]
    assert merged["tool_name"].to_list() == ["first", None, None]
    for row in merged.head(2).iter_rows(named=True):
        assert [row[k] for k in _QS] == [None] * 4, row["endpoint"]
    alone = merged.row(2, named=True)
    assert [alone[k] for k in _QS] == pytest.approx([10, 20, 30, 40])
    assert alone["percentiles"] == MIXTURE.format(n=1) and alone["rps"] is None
    assert merged["failures"].to_list() == [0, None, 0]
    assert mix_summaries(rows.head(0), "endpoint").is_empty()


def _random_knots(rng: np.random.Generator) -> list[float | None]:
    """A shard's min, p50, p90, p95, p99, max as the tools write them: distinct, rounded to
    a bucket (repeated values, also across shards), of one request (all one value), with
    percentiles beyond min or max (Artillery's sketch), or with percentiles left out."""
    knots: list[float | None] = list(np.sort(rng.lognormal(rng.uniform(1, 4), 0.7, 6)))
    kind = rng.choice(["distinct", "bucket", "one request", "beyond", "missing"])
    if kind == "bucket":
        knots = [float(np.round(k / 5) * 5) for k in knots]  # type: ignore[operator]
    elif kind == "one request":
        knots = [knots[2]] * 6
    elif kind == "beyond":
        if rng.random() < 0.5:
            knots[0] = knots[1] + rng.uniform(0, 5)  # type: ignore[operator]
        else:
            knots[5] = knots[4] - rng.uniform(0, 5)  # type: ignore[operator]
    elif kind == "missing":
        for k in range(6):
            if rng.random() < 0.3:
                knots[k] = None
        if sum(k is not None for k in knots) < 2:
            knots[1] = knots[4] = None
            knots[0], knots[5] = 1.0, 50.0
    return knots


def test_each_mixed_percentile_is_where_the_mixture_of_the_shards_cdfs_reaches_it() -> None:
    """For random groups of 1 to 8 shards (repeated, clipped and missing knots): where the
    mixture sum_i c_i F_i / sum_i c_i is continuous at a mixed percentile x_q it equals q there;
    where it jumps at x_q, q lies within the jump; either way x_q lies between the shards' own
    q-quantiles, which are their figures for q when they have one (running max)."""
    rng = np.random.default_rng(20261207)
    rows = [_shard(f"e{group}", int(rng.integers(1, 5000)), _random_knots(rng),
                   mean=float(rng.uniform(1, 500)))
            for group in range(400) for _ in range(rng.integers(1, 9))]
    merged = mix_summaries(pl.DataFrame(rows), "endpoint")
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["endpoint"], []).append(row)
    assert merged["endpoint"].to_list() == list(groups)
    jumps = 0
    for got in merged.iter_rows(named=True):
        shards = groups[got["endpoint"]]
        counts = np.array([s["count"] for s in shards])
        assert got["count"] == counts.sum()
        assert got["mean"] == pytest.approx(np.average([s["mean"] for s in shards],
                                                       weights=counts), rel=1e-12)
        for key, q in _QS.items():
            x = got[key]
            below, at = _mixture_cdf(shards, x, left=True), _mixture_cdf(shards, x)
            if at - below > 1e-12:
                jumps += 1
                assert below - 1e-9 <= q <= at + 1e-9, (got["endpoint"], key)
            else:
                assert at == pytest.approx(q, abs=1e-9), (got["endpoint"], key)
            own = [_own_quantile(s, key) for s in shards]
            assert min(own) - 1e-9 <= x <= max(own) + 1e-9, (got["endpoint"], key)
    assert jumps > 200


def _own_quantile(shard: dict, key: str) -> float:
    """A shard's q-quantile: its figure for q (made non-decreasing from its min), or where its
    CDF reaches q between the knots it has."""
    known = [(k, shard[k]) for k in _KNOT_PROBS if shard[k] is not None]
    values = np.maximum.accumulate([v for _, v in known])
    figures = {k: float(v) for (k, _), v in zip(known, values, strict=True)}
    if key in figures:
        return figures[key]
    # Its CDF is linear between knots, a jump at a repeated one, 0 and 1 beyond them.
    return float(np.interp(_QS[key], [_KNOT_PROBS[k] for k, _ in known], values))


def _by_numpy(shards: list[dict]) -> list[float | None]:
    """The mixture's percentiles by their definition, the least x at which the mixture reaches
    q: at the first knot value where it does, or on the line before it; unknown if a shard has
    no requests or fewer than two knots."""
    knots = [[s[k] for k in _KNOT_PROBS if s[k] is not None] for s in shards]
    if any(len(k) < 2 or not s["count"] for k, s in zip(knots, shards, strict=True)):
        return [None] * len(_QS)
    grid = np.unique(np.concatenate([np.maximum.accumulate(k) for k in knots]))
    at = np.array([_mixture_cdf(shards, x) for x in grid])
    found: list[float | None] = []
    for q in _QS.values():
        i = int(np.argmax(at >= q))
        if i == 0:
            found.append(float(grid[0]))
            continue
        a, b = grid[i - 1], grid[i]
        reached = _mixture_cdf(shards, b, left=True)  # the line from a ends there
        found.append(float(b if reached < q else
                           a + (b - a) * (q - at[i - 1]) / (reached - at[i - 1])))
    return found


@pytest.mark.parametrize("workers", [LOCUST_WORKERS, ARTILLERY_WORKERS], ids=["locust",
                                                                             "artillery"])
def test_windows_several_processes_wrote_are_the_mixture_of_theirs(workers: list[Path],
                                                                    sample_runs: SampleRuns
                                                                    ) -> None:
    merged = sample_runs.of(workers).windows()
    own = pl.concat([sample_runs.of(w).windows() for w in workers])
    keys = ["endpoint", "start"]
    mixed = merged.filter(pl.col("percentiles") == MIXTURE.format(n=2))
    assert mixed.height > 40
    shards = own.filter(pl.col("p50").is_not_null()).join(mixed.select(keys), on=keys)
    unknown = 0
    for (endpoint, start), group in shards.group_by(keys):
        row = mixed.filter((pl.col("endpoint") == endpoint) & (pl.col("start") == start))
        expected = _by_numpy(group.to_dicts())
        got = [row[k].item() for k in _QS]
        if expected[0] is None:
            assert got == expected, endpoint
            unknown += 1
        else:
            assert got == pytest.approx(expected, rel=1e-12), endpoint
            for key, x in zip(_QS, got, strict=True):
                figures = [_own_quantile(s, key) for s in group.to_dicts()]
                assert min(figures) - 1e-9 <= x <= max(figures) + 1e-9, (endpoint, start, key)
    assert unknown < mixed.height / 4  # a process without requests in that second


def test_each_artillery_period_percentile_lies_between_the_workers_own_figures(
        sample_runs: SampleRuns) -> None:
    """docs/ingest.md's guarantee on data/artillery-split, from the workers' reports: a figure
    below the worker's min (the sketch's rounding, for one request) counts as that min."""
    merged = sample_runs.of(ARTILLERY_WORKERS).windows()
    periods = [_period_summaries(w / "report.json.gz") for w in ARTILLERY_WORKERS]
    mixed = merged.filter(pl.col("percentiles") == MIXTURE.format(n=2))
    assert mixed.height == 49
    lifted = 0
    for row in mixed.iter_rows(named=True):
        period = str(int(row["start"].timestamp() * 1000))
        own = [p[(period, row["endpoint"])] for p in periods]
        for key in _QS:
            figures = [max(s[key], s["min"]) for s in own]
            lifted += figures != [s[key] for s in own]
            assert min(figures) <= row[key] <= max(figures), (row["endpoint"], period, key)
    assert lifted < 5


def _period_summaries(report: Path) -> dict[tuple[str, str], dict]:
    """A report's response-time summaries by (period, endpoint), read with json."""
    prefix = "plugins.metrics-by-endpoint.response_time."
    found = {}
    for period in json.loads(gzip.decompress(report.read_bytes()))["intermediate"]:
        for key, summary in period["summaries"].items():
            if key == "http.response_time":
                found[period["period"], ALL_ENDPOINTS] = summary
            elif key.startswith(prefix):
                found[period["period"], key.removeprefix(prefix)] = summary
    return found
