"""The Locust reader on the bundled runs (data/locust) and on every Locust file in ../shared/corpus.

What is checked, and against what:
- ``_stats.csv`` alone: every number in the store equals the number in the file (parsed here with
  the csv module, independently of the reader).
- ``report.json``: counts equal the MANIFEST totals; p50/p90/p95/p99 equal a plain-Python copy of
  Locust's ``calculate_response_time_percentile`` run on the JSON buckets.  Cross-check with the
  stats CSV of the same run: in the two latency-mode runs (JSON counts 0.5-1.4 % above the CSV's)
  every percentile of every endpoint and of ALL is equal; in the ramp run, whose latency is still
  climbing when the CSV's last snapshot is taken, each JSON percentile equals the CSV's or is the
  next Locust bucket up (2 of 28 values).
- ``_stats_history.csv``: window counts add up to the file's cumulative totals, and their
  response-time sums to the cumulative average.
"""

from __future__ import annotations

import csv
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers import StoredRuns, table_counts

import perfstats
from perfstats.errors import IngestError
from perfstats.readers.locust import _read_failures, _VersionRange, locust_percentiles
from perfstats.store import Store

RUNS = ["baseline", "candidate", "ramp"]
MANIFEST_JSON_TOTALS = {  # shared/data/MANIFEST.md: "report.json totals" (requests, failures)
    "baseline": {"POST /api/auth/login": (445, 0), "POST /api/bookings": (847, 7),
                 "GET /api/deals": (1727, 0), "GET /api/deals/{id}": (2552, 0),
                 "POST /api/quote": (859, 0), "GET /health": (422, 0)},
    "candidate": {"POST /api/auth/login": (438, 0), "POST /api/bookings": (872, 31),
                  "GET /api/deals": (1715, 0), "GET /api/deals/{id}": (2531, 0),
                  "POST /api/quote": (797, 0), "GET /health": (430, 0)},
    "ramp": {"POST /api/auth/login": (811, 0), "POST /api/bookings": (1392, 11),
             "GET /api/deals": (2818, 0), "GET /api/deals/{id}": (4172, 0),
             "POST /api/quote": (1355, 0), "GET /health": (675, 0)},
}
BOOKING_FAILURES = {"baseline": 7, "candidate": 31, "ramp": 11}
PERCENTILE_COLUMNS = {"p50": "50%", "p90": "90%", "p95": "95%", "p99": "99%"}


def _endpoint(method: str, name: str) -> str:
    return "ALL" if name in ("Aggregated", "Total") and method in ("", "None") else \
        f"{method} {name}"


def _csv_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {_endpoint(r["Type"], r["Name"]): r for r in csv.DictReader(fh)}


def _locust_percentile(response_times: dict[float, int], num_requests: int,
                       percent: float) -> float:
    """Locust's calculate_response_time_percentile, verbatim (locust/stats.py)."""
    num_of_request = int(num_requests * percent)
    processed_count = 0
    for response_time in sorted(response_times.keys(), reverse=True):
        processed_count += response_times[response_time]
        if num_requests - processed_count <= num_of_request:
            return response_time
    return 0


def _json_reference(path: Path) -> dict[str, tuple[int, dict[float, int]]]:
    """endpoint -> (num_requests, buckets), with ALL merged like Locust's Aggregated entry."""
    doc = json.loads(path.read_text())
    entries = doc["stats"] if isinstance(doc, dict) else doc
    out: dict[str, tuple[int, dict[float, int]]] = {}
    merged: dict[float, int] = {}
    for e in entries:
        buckets = {float(k): v for k, v in e["response_times"].items()}
        out[f"{e['method']} {e['name']}"] = (e["num_requests"], buckets)
        for k, v in buckets.items():
            merged[k] = merged.get(k, 0) + v
    out["ALL"] = (sum(e["num_requests"] for e in entries), merged)
    return out


def _rows(run: perfstats.Run) -> dict[str, dict]:
    return {r["endpoint"]: r for r in run.summary().to_dicts()}


def _next_bucket(value: float) -> float:
    step = 1 if value < 100 else 10 if value < 1000 else 100 if value < 10000 else 1000
    return value + step


# --- _stats.csv ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RUNS)
def test_stats_csv_alone_gives_exactly_the_values_in_the_file(
    name: str, data_dir: Path, store: Store
) -> None:
    path = data_dir / "locust" / name / "locust_stats.csv"
    run = perfstats.ingest(path, db=store, fmt="locust-stats")
    expected = _csv_rows(path)
    rows = _rows(run)
    assert run.grain == "summary" and run.meta["source_files"] == ["locust_stats.csv"]
    assert set(rows) == set(expected) and "ALL" in rows and len(rows) == 7
    for endpoint, row in expected.items():
        got = rows[endpoint]
        assert got["count"] == int(row["Request Count"])
        assert got["failures"] == int(row["Failure Count"])
        for ours, theirs in [("mean", "Average Response Time"), ("min", "Min Response Time"),
                             ("max", "Max Response Time"), ("rps", "Requests/s"),
                             *[(p, c) for p, c in PERCENTILE_COLUMNS.items()]]:
            assert got[ours] == float(row[theirs]), (endpoint, ours)
        assert got["percentiles"] == "tool-summary"
    assert rows["POST /api/bookings"]["failures"] == BOOKING_FAILURES[name]
    # Locust's Requests/s is count / (last request - start): the run's duration, recovered.
    total = expected["ALL"]
    assert run.meta["duration_s"] == pytest.approx(
        int(total["Request Count"]) / float(total["Requests/s"]), rel=1e-12)
    assert run.meta["tool_version"] == ">=1.2.0" and run.meta["load_model"] == "closed"


def test_baseline_aggregate_row_is_the_manifest_one(data_dir: Path, store: Store) -> None:
    run = perfstats.ingest(data_dir / "locust/baseline/locust_stats.csv", db=store,
                           fmt="locust-stats")
    total = _rows(run)["ALL"]
    assert (total["count"], total["failures"], round(total["rps"], 2)) == (6788, 7, 91.59)
    assert (total["p50"], total["p95"], total["p99"]) == (15, 75, 140)


# --- report.json --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RUNS)
def test_json_counts_equal_the_manifest_totals(name: str, data_dir: Path, store: Store) -> None:
    run = perfstats.ingest(data_dir / "locust" / name / "report.json", db=store)
    rows = _rows(run)
    totals = MANIFEST_JSON_TOTALS[name]
    assert {e: (r["count"], r["failures"]) for e, r in rows.items() if e != "ALL"} == totals
    assert rows["ALL"]["count"] == sum(c for c, _ in totals.values())
    assert rows["ALL"]["failures"] == sum(f for _, f in totals.values())
    assert run.grain == "histograms" and run.meta["format"] == "locust-json"
    histograms = run.table("histograms").group_by("endpoint").agg(pl.col("count").sum())
    assert dict(histograms.iter_rows()) == {e: r["count"] for e, r in rows.items()}
    assert run.table("histograms")["start"].null_count() == run.table("histograms").height


@pytest.mark.parametrize("name", RUNS)
def test_json_percentiles_follow_locusts_rule(name: str, data_dir: Path, store: Store) -> None:
    path = data_dir / "locust" / name / "report.json"
    run = perfstats.ingest(path, db=store)
    rows = _rows(run)
    reference = _json_reference(path)
    assert set(rows) == set(reference)
    for endpoint, (requests, buckets) in reference.items():
        for column, p in [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)]:
            assert rows[endpoint][column] == _locust_percentile(buckets, requests, p)
        assert rows[endpoint]["percentiles"] == "histogram"
    doc = json.loads(path.read_text())
    for e in doc:
        row = rows[f"{e['method']} {e['name']}"]
        assert row["mean"] == e["total_response_time"] / (e["num_requests"]
                                                          - e["num_none_requests"])
        assert (row["min"], row["max"]) == (e["min_response_time"], e["max_response_time"])
    assert rows["ALL"]["max"] == max(e["max_response_time"] for e in doc)


@pytest.mark.parametrize("name", RUNS)
def test_json_percentiles_agree_with_the_stats_csv(name: str, data_dir: Path) -> None:
    from_json = _rows(perfstats.ingest(data_dir / "locust" / name / "report.json",
                                       db=":memory:"))
    from_csv = _rows(perfstats.ingest(data_dir / "locust" / name / "locust_stats.csv",
                                      db=":memory:", fmt="locust-stats"))
    moved = 0
    for endpoint, row in from_csv.items():
        extra = from_json[endpoint]["count"] / row["count"] - 1
        assert 0 <= extra <= 0.015  # the CSV is the last 1 s snapshot: a few requests short
        for column in PERCENTILE_COLUMNS:
            ours, theirs = from_json[endpoint][column], row[column]
            if name == "ramp":
                assert theirs <= ours <= _next_bucket(theirs), (endpoint, column)
                moved += ours != theirs
            else:
                assert ours == theirs, (endpoint, column)
    assert moved <= 2


def test_locust_percentiles_equal_the_loop_on_random_histograms() -> None:
    rng = np.random.default_rng(20261122)
    frames, totals, expected = [], [], {}
    for i in range(300):
        keys = np.unique(np.round(rng.lognormal(3, 1.5, rng.integers(1, 40)), 1))
        counts = rng.integers(1, 50, keys.size)
        requests = int(counts.sum() + rng.integers(0, 3))  # a few requests without a time
        name = f"e{i}"
        frames.append(pl.DataFrame({"endpoint": name, "bucket_ms": keys, "count": counts}))
        totals.append((name, requests))
        buckets = dict(zip(keys.tolist(), counts.tolist(), strict=True))
        expected[name] = [_locust_percentile(buckets, requests, p) or None
                          for p in (0.5, 0.9, 0.95, 0.99)]
    got = locust_percentiles(pl.concat(frames), pl.DataFrame(
        totals, schema=["endpoint", "count"], orient="row"))
    assert {r[0]: list(r[1:]) for r in got.iter_rows()} == expected


# --- _stats_history.csv -------------------------------------------------------------------------


@pytest.mark.parametrize("name", RUNS)
def test_history_windows_add_up_to_the_cumulative_totals(name: str, data_dir: Path) -> None:
    path = data_dir / "locust" / name / "locust_stats_history.csv"
    run = perfstats.ingest(path, db=":memory:", fmt="locust-history")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    last = {_endpoint(r["Type"], r["Name"]): r for r in rows}
    windows = run.windows()
    sums = windows.group_by("endpoint").agg(pl.col("count", "failures", "total_ms").sum())
    for endpoint, count, failures, total_ms in sums.iter_rows():
        assert count == int(last[endpoint]["Total Request Count"])
        assert failures == int(last[endpoint]["Total Failure Count"])
        assert total_ms / count == pytest.approx(
            float(last[endpoint]["Total Average Response Time"]), rel=1e-9)
    assert set(sums["endpoint"]) == set(last)
    assert (windows["length_s"] == 1.0).all() and (windows["count"] >= 0).all()
    assert set(windows["percentiles"]) == {"tool-recent"}  # --csv-full-history on Locust 2.47
    stamps = [int(r["Timestamp"]) for r in rows]
    assert run.meta["started_at"] == datetime.fromtimestamp(min(stamps), timezone.utc)
    assert run.meta["ended_at"] == datetime.fromtimestamp(max(stamps), timezone.utc)
    assert run.meta["max_users"] == max(int(r["User Count"]) for r in rows)
    assert windows.filter(pl.col("endpoint") != "ALL")["users"].null_count() == \
        windows.filter(pl.col("endpoint") != "ALL").height
    assert run.grain == "windows"


def test_history_window_percentiles_are_as_written(data_dir: Path) -> None:
    path = data_dir / "locust/baseline/locust_stats_history.csv"
    run = perfstats.ingest(path, db=":memory:", fmt="locust-history")
    windows = run.windows("ALL")
    # Row "1795311737,20,,Aggregated,...,16,21,28,35,60,77,...": the window (736, 737].
    with open(path, newline="") as fh:
        row = next(r for r in csv.DictReader(fh)
                   if r["Timestamp"] == "1795311737" and r["Name"] == "Aggregated")
    window = windows.filter(pl.col("start").dt.epoch("s") == 1795311736).row(0, named=True)
    assert [window[p] for p in PERCENTILE_COLUMNS] == \
        [float(row[c]) for c in PERCENTILE_COLUMNS.values()]
    assert window["users"] == 20
    # The first data rows have no ~10 s old snapshot yet: Locust writes 0, stored as unknown.
    assert windows.row(0, named=True)["p50"] is None


def test_history_alone_still_gives_a_summary(data_dir: Path) -> None:
    run = perfstats.ingest(data_dir / "locust/baseline/locust_stats_history.csv", db=":memory:",
                           fmt="locust-history")
    total = _rows(run)["ALL"]
    assert (total["count"], total["failures"], total["p50"]) == (6788, 7, 15)
    assert total["mean"] == 24.677452788302737
    assert total["p90"] is None  # the history's percentiles are recent ones, not whole-run


# --- failures, combination, grouping ------------------------------------------------------------


@pytest.mark.parametrize("name", RUNS)
def test_failures_file_gives_the_booking_errors(name: str, data_dir: Path) -> None:
    run = perfstats.ingest(data_dir / "locust" / name / "locust_failures.csv", db=":memory:")
    errors = run.table("errors")
    assert errors.select("endpoint", "kind", "count").rows() == \
        [("POST /api/bookings", "error", BOOKING_FAILURES[name])]
    assert errors["error"][0] == ("HTTPError('500 Server Error: Internal Server Error for url: "
                                  "/api/bookings')")
    assert errors["first_seen"][0] < errors["last_seen"][0]
    assert errors["first_seen"][0].tzinfo is not None


def test_baseline_failure_times_are_utc(data_dir: Path) -> None:
    run = perfstats.ingest(data_dir / "locust/baseline", db=":memory:")
    error = run.table("errors").row(0, named=True)
    assert error["first_seen"] == datetime(2026, 11, 22, 1, 42, 59, tzinfo=timezone.utc)
    assert error["last_seen"] == datetime(2026, 11, 22, 1, 43, 28, tzinfo=timezone.utc)


@pytest.mark.parametrize("name", RUNS)
def test_json_and_csv_together_take_the_finest_of_each(name: str, data_dir: Path) -> None:
    run = perfstats.ingest(data_dir / "locust" / name, db=":memory:")
    rows = _rows(run)
    assert run.grain == "histograms" and run.meta["format"] == "locust-json"
    assert len(run.meta["source_files"]) == 5
    assert {e: (r["count"], r["failures"]) for e, r in rows.items() if e != "ALL"} == \
        MANIFEST_JSON_TOTALS[name]
    assert set(run.summary()["percentiles"]) == {"histogram"}
    assert set(run.windows()["percentiles"]) == {"tool-recent"}  # from the history
    assert run.table("errors")["count"].sum() == BOOKING_FAILURES[name]
    assert run.meta["tool_version"] == ">=2.44.0"
    report = json.loads((data_dir / "locust" / name / "report.json").read_text())
    last_request = max(e["last_request_timestamp"] for e in report)
    assert run.meta["ended_at"].timestamp() == pytest.approx(last_request, abs=1e-6)
    assert run.meta["max_users"] == {"baseline": 30, "candidate": 30, "ramp": 100}[name]


def test_prefix_directory_and_single_file_give_the_same_run(data_dir: Path,
                                                            tmp_path: Path) -> None:
    csvs = sorted((data_dir / "locust/baseline").glob("*.csv"))
    for f in csvs:
        shutil.copy(f, tmp_path / f.name)
    store = perfstats.open_store(":memory:")
    first = perfstats.ingest(tmp_path, db=store)
    assert sorted(first.meta["source_files"]) == sorted(f.name for f in csvs)
    again = [perfstats.ingest(tmp_path / "locust", db=store)]
    again += [perfstats.ingest(tmp_path / f.name, db=store) for f in csvs]
    again.append(perfstats.ingest(data_dir / "locust/baseline/locust", db=store))
    assert {r.run_id for r in again} == {first.run_id} and all(r.existed for r in again)
    assert store.runs().height == 1
    with_json = perfstats.ingest(data_dir / "locust/baseline", db=store)
    assert not with_json.existed
    assert perfstats.ingest([*csvs, data_dir / "locust/baseline/report.json"],
                            db=store).run_id == with_json.run_id


# --- bad input ----------------------------------------------------------------------------------


def _bad(tmp: Path, data: Path) -> dict[str, tuple[list[Path], str]]:
    base = data / "locust/baseline"
    stats = (base / "locust_stats.csv").read_bytes()
    history = (base / "locust_stats_history.csv").read_bytes()
    header = stats.split(b"\n")[0] + b"\n"
    cases = {
        "truncated stats line": ("a_stats.csv", stats[:700], "truncated line"),
        "truncated history line": ("b_stats_history.csv", history[:5000], "truncated line"),
        "empty": ("c_stats.csv", b"", "empty file"),
        "header only": ("d_stats.csv", header, "only a header"),
        "header only history": ("e_stats_history.csv", history.split(b"\n")[0] + b"\n",
                                "only a header"),
        "garbage number": ("f_stats.csv", header + b"GET,/x,many,0" + b",1" * 18 + b"\n",
                           "malformed Locust CSV"),
        "extra fields": ("g_stats.csv", header + b"GET,/x,1" + b",1" * 21 + b"\n",
                         "malformed Locust CSV"),
        "garbage": ("h_stats.csv", header + bytes(range(256)) * 4, "malformed Locust CSV"),
        "failures alone": ("i_failures.csv", (base / "locust_failures.csv").read_bytes(),
                           "no request statistics"),
        "truncated json": ("report.json", (base / "report.json").read_bytes()[:3000],
                           "truncated"),
    }
    out = {}
    for case, (name, content, reason) in cases.items():
        folder = tmp / case.replace(" ", "_")
        folder.mkdir()
        (folder / name).write_bytes(content)
        out[case] = ([folder / name], reason)
    two = tmp / "two"
    two.mkdir()
    for name in ("x_stats.csv", "y_stats.csv"):
        (two / name).write_bytes(stats)
    out["two stats files"] = ([two / "x_stats.csv", two / "y_stats.csv"], "two Locust")
    return out


BAD = ["truncated stats line", "truncated history line", "empty", "header only",
       "header only history", "garbage number", "extra fields", "garbage", "failures alone",
       "truncated json", "two stats files"]


@pytest.mark.parametrize("case", BAD)
def test_bad_locust_input_is_one_line_and_leaves_the_store_unchanged(
    case: str, tmp_path: Path, data_dir: Path, stored_runs: StoredRuns
) -> None:
    # A store holding a run (copied, not ingested again); the file store's rollback is covered
    # elsewhere.
    store, _ = stored_runs.in_memory("locust/candidate")
    paths, reason = _bad(tmp_path, data_dir)[case]
    before = table_counts(store)
    with pytest.raises(IngestError) as info:
        perfstats.ingest(paths, db=store)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(paths[0])) and reason in message
    assert table_counts(store) == before


# --- the corpus: every header generation and quirk ----------------------------------------------


def _corpus(shared: Path, folder: str, stem: str) -> Path:
    matches = sorted((shared / "corpus/locust" / folder).glob(f"{stem}*"))
    assert len(matches) == 1, (folder, stem, matches)
    return matches[0]


def test_v0_requests_and_distribution_pair(shared_dir: Path) -> None:
    requests = _corpus(shared_dir, "requests-csv-v0", "esmy1990")
    distribution = _corpus(shared_dir, "distribution-csv-v0", "esmy1990")
    run = perfstats.ingest([requests, distribution], db=":memory:")
    rows = _rows(run)
    # "PUT","/delayed",354,0,4000,4480,4,9017,333,12.62 / "PUT /delayed",354,4000,...,8000,9000,9000
    assert {k: rows["PUT /delayed"][k] for k in ("count", "failures", "mean", "min", "max",
                                                   "p50", "p90", "p95", "p99")} == {
        "count": 354, "failures": 0, "mean": 4480, "min": 4, "max": 9017,
        "p50": 4000, "p90": 8000, "p95": 9000, "p99": 9000}
    # rps is the count over the run's one duration (Total's count / Total's rate); it agrees
    # with the file's per-endpoint figure to the two decimals written
    assert rows["PUT /delayed"]["rps"] == pytest.approx(12.62, abs=0.005)
    # "None","Total",1648,388,... and "Total",1648,6,7,10,19,5000,7000,8000,9000,9000
    assert (rows["ALL"]["count"], rows["ALL"]["failures"], rows["ALL"]["p90"]) == (1648, 388, 5000)
    assert rows["GET /status/404"]["failures"] == 388
    assert run.meta["tool_version"] == "<0.12.2" and len(rows) == 5


def test_v0_requests_alone_takes_the_median_for_p50(shared_dir: Path) -> None:
    run = perfstats.ingest(_corpus(shared_dir, "requests-csv-v0", "jmath1"), db=":memory:")
    rows = _rows(run)
    assert (rows["GET /third-task"]["count"], rows["GET /third-task"]["failures"]) == (323, 1)
    assert rows["ALL"]["p50"] == 4 and rows["ALL"]["p90"] is None


@pytest.mark.parametrize(("stem", "endpoint", "expected"), [
    # 0.13.3-0.14: "# requests" headers and the "99.999" column without %
    ("ONSdigital__eq-author-benchmarks__baseline", "ALL",
     {"count": 644, "failures": 0, "p50": 89, "p90": 120, "p95": 130, "p99": 190, "mean": 94,
      "max": 405, "rps": 10.56}),
    # 1.1: unquoted, full-precision floats, ",Aggregated" with an empty Type
    ("ONSdigital__eq-author-benchmarks___", "ALL",
     {"count": 140895, "p50": 43, "p99": 110, "mean": 46.32513418440966}),
    # 1.0: quoted, GBK names
    ("jiangbm", "GET 查看影响力榜单", {"count": 7690, "failures": 570, "p95": 8600}),
    # 1.1 GBK name and \r\r\n line ends
    ("zhajiangmian2342", "GET get接口", {"count": 15, "p95": 88, "max": 88.2723331451416}),
    # 2.x \r\r\n, int and float medians side by side
    ("rezanurridwan", "ALL", {"count": 99, "p50": 39, "p90": 660}),
    # UTF-8 BOM before "Type", file renamed to _requests.csv
    ("pyjeebz__PreScale__locust_requests", "POST [Admin] Categories",
     {"count": 64357, "failures": 60665, "p50": 2500, "p99": 62000}),
    # configurable percentile columns 50%,60%,70%,80%,90%,95%,99%,100%; grpc Type
    ("Nikita-Filonov", "ALL", {"count": 11779, "p50": 5100, "p90": 7600, "p95": 7800,
                               "p99": 8200}),
])
def test_stats_csv_generations(shared_dir: Path, stem: str, endpoint: str,
                               expected: dict) -> None:
    run = perfstats.ingest(_corpus(shared_dir, "stats-csv", stem), db=":memory:")
    rows = _rows(run)
    assert {k: rows[endpoint][k] for k in expected} == expected
    assert sum(e == "ALL" for e in rows) == 1 and not any(e.endswith("Aggregated") for e in rows)


@pytest.mark.parametrize(("folder", "stem", "version"), [
    ("stats-csv", "ONSdigital__eq-author-benchmarks__baseline", ">=0.13.3,<1.0.0"),
    ("stats-csv", "Parkietje", ">=1.0.0,<1.1.0"),
    ("stats-csv", "ONSdigital__eq-author-benchmarks___", ">=1.1.0,<1.2.0"),
    ("stats-csv", "kei-gnu", ">=1.2.0"),
    ("stats-history-csv", "ONSdigital__eq-author-benchmarks__baseline", ">=0.13.3,<1.0.0"),
    ("stats-history-csv", "Parkietje", ">=1.0.0,<1.2.0"),
    ("stats-history-csv", "kapilagrawal95", ">=1.2.0"),
    ("distribution-csv-v0", "jmath1", "<0.12.2"),
    ("json", "esmy1990", "<1.0.0"),
])
def test_tool_version_range_from_the_file_shape(shared_dir: Path, folder: str, stem: str,
                                                version: str) -> None:
    run = perfstats.ingest(_corpus(shared_dir, folder, stem), db=":memory:")
    assert run.meta["tool_version"] == version


def test_history_0_14_column_order_and_no_user_count(shared_dir: Path) -> None:
    run = perfstats.ingest(_corpus(shared_dir, "stats-history-csv",
                                   "ONSdigital__eq-author-benchmarks__baseline"), db=":memory:")
    windows = run.windows("ALL")
    # "None","Aggregated","1586169797",5,... first row already counts 5; last row 644.
    assert windows["count"].sum() == 644 and windows["count"][0] == 5
    assert (windows["length_s"] == 2.0).all() and windows["users"].null_count() == windows.height
    assert run.meta["max_users"] is None


def test_history_1_x_quoted_ints_and_final_repeated_timestamp(shared_dir: Path) -> None:
    small = perfstats.ingest(_corpus(shared_dir, "stats-history-csv", "zhajiangmian2342"),
                             db=":memory:")
    # "1597569276","10",...,10,0,... then "1597569276","0",...,15,0,...: one 2 s window.
    window = small.windows().row(0, named=True)
    assert small.windows().height == 1
    assert (window["count"], window["users"], window["length_s"]) == (15, 10, 2.0)
    big = perfstats.ingest(_corpus(shared_dir, "stats-history-csv",
                                   "ONSdigital__eq-author-benchmarks___"), db=":memory:")
    windows = big.windows()
    assert windows["count"].sum() == 140895 and (windows["length_s"] > 0).all()
    assert set(windows["percentiles"]) == {"tool-recent"} and windows["mean"].null_count() == \
        windows.height  # 1.0/1.1 history averages are truncated ints: no window means


def test_history_percentile_semantics_are_labelled(shared_dir: Path) -> None:
    aggregated_only = perfstats.ingest(
        _corpus(shared_dir, "stats-history-csv", "kapilagrawal95"), db=":memory:")
    assert set(aggregated_only.windows()["percentiles"]) == {"tool-cumulative"}
    # Cumulative: the last row's percentiles are the whole run's (...,28,300,360,370,430,1000).
    total = _rows(aggregated_only)["ALL"]
    assert (total["count"], total["p50"], total["p90"], total["p99"]) == (13, 28, 430, 1000)
    full_history = perfstats.ingest(
        _corpus(shared_dir, "stats-history-csv", "Nikita-Filonov"), db=":memory:")
    assert set(full_history.windows()["percentiles"]) == {"tool-recent"}


def test_failures_with_commas_quotes_and_addresses_merge_into_logical_errors(
    shared_dir: Path
) -> None:
    path = _corpus(shared_dir, "failures-csv", "AEther-Frisko")
    with open(path, newline="") as fh:
        raw = list(csv.DictReader(fh))
    errors = _read_failures(path, _VersionRange())
    assert errors["count"].sum() == sum(int(r["Occurrences"]) for r in raw)
    assert errors.height < len(raw) / 5  # one row per logical error, not per object address
    assert not errors["error"].str.contains(r"0x[0-9a-f]{6,}").any()
    assert errors.filter(pl.col("error").str.contains("at 0x...", literal=True)).height > 0
    quoted = _read_failures(_corpus(shared_dir, "failures-csv", "pyjeebz"), _VersionRange())
    assert quoted.filter(pl.col("endpoint") == "POST [Searcher] Search")["error"].to_list() == \
        ['"CatchResponseError(\'HTTP 0\')"']
    gbk = _read_failures(_corpus(shared_dir, "failures-csv", "jiangbm"), _VersionRange())
    assert gbk.filter(pl.col("endpoint") == "GET 查看影响力榜单")["count"].sum() > 0


def test_json_0x_worker_payload(shared_dir: Path) -> None:
    path = _corpus(shared_dir, "json", "esmy1990")
    run = perfstats.ingest(path, db=":memory:")
    rows = _rows(run)
    doc = json.loads(path.read_text())
    assert rows["ALL"]["count"] == doc["stats_total"]["num_requests"] == 154
    assert rows["GET /status/404"]["failures"] == 45
    for endpoint, (requests, buckets) in _json_reference(path).items():
        assert rows[endpoint]["p95"] == _locust_percentile(buckets, requests, 0.95)
    assert run.table("errors").select("endpoint", "count").rows() == [("GET /status/404", 45)]
    assert run.meta["max_users"] == 1
    windows = run.windows("ALL")
    assert windows["count"].sum() == 154 and windows["failures"].null_count() == windows.height
