"""k6 readers against the real k6 v0.45.1 runs in data/k6 (ground truth: shared/data/MANIFEST.md).

Percentiles from raw points must equal k6's own ``summary.json`` values: both use linear
interpolation between sorted samples (FORMATS.md §1.2), so the only differences are float
rounding (1e-9 relative).  The CSV writes values with ``%f`` (6 decimals): each sample may be
rounded by up to 5e-7 ms, and min/max/percentiles/means of rounded samples move by at most that,
so CSV comparisons allow 1e-9 relative *or* 5e-7 ms absolute.
"""

from __future__ import annotations

import gzip
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest
from helpers import DATA, SampleRuns, StoredRuns, k6_generator, table_counts

import perfstats
from perfstats.errors import IngestError
from perfstats.readers import k6 as k6_module
from perfstats.readers import resolve_sources
from perfstats.readers import writer as writer_module
from perfstats.store import ALL_ENDPOINTS

RUNS = ["baseline", "candidate", "ramp", "smoke"]
STATS = {"count": "count", "min": "min", "max": "max", "mean": "avg", "p50": "med",
         "p90": "p(90)", "p95": "p(95)", "p99": "p(99)"}
CSV_ABS_MS = 5e-7

# MANIFEST.md: http_reqs per endpoint and status code.
STATUS_CODES = {
    "baseline": {"POST /api/bookings": {"200": 968, "500": 12},
                 "GET /api/deals/{id}": {"200": 1960}, "POST /api/quote": {"200": 980},
                 "GET /health": {"200": 980}},
    "candidate": {"POST /api/bookings": {"200": 939, "500": 25},
                  "GET /api/deals/{id}": {"200": 1928}, "POST /api/auth/login": {"200": 964}},
    "ramp": {"POST /api/bookings": {"200": 1546, "500": 8}, "GET /api/deals/{id}": {"200": 3108},
             "GET /api/deals": {"200": 1554}},
    "smoke": {"POST /api/bookings": {"200": 21}, "GET /api/deals/{id}": {"200": 42}},
}


def _summary_json(run: str) -> dict:
    return json.loads((DATA / "k6" / run / "summary.json").read_text())["metrics"]


def _raw(run: str, kind: str) -> Path:
    pattern = "points.json*" if kind == "ndjson" else "points.csv*"
    return next((DATA / "k6" / run).glob(pattern))


@pytest.fixture(scope="module")
def raw_runs(sample_runs: SampleRuns) -> dict[tuple[str, str], perfstats.Run]:
    """Every data/k6 run ingested from its NDJSON and from its CSV (no summary)."""
    return {(run, kind): sample_runs.of(_raw(run, kind))
            for run in RUNS for kind in ("ndjson", "csv")}


def _close(found: float, expected: float, *, csv: bool) -> bool:
    return math.isclose(found, expected, rel_tol=1e-9, abs_tol=CSV_ABS_MS if csv else 0.0)


@pytest.mark.parametrize("kind", ["ndjson", "csv"])
@pytest.mark.parametrize("run", RUNS)
def test_raw_points_reproduce_k6_summary(raw_runs, run: str, kind: str) -> None:
    k6 = _summary_json(run)
    summary = raw_runs[(run, kind)].summary()
    assert set(summary["percentiles"]) == {"exact"}
    compared = 0
    for row in summary.iter_rows(named=True):
        if row["endpoint"] == ALL_ENDPOINTS:
            key = "http_req_duration"
        else:
            key = f"http_req_duration{{name:{row['tool_name']}}}"
            assert row["endpoint"] == f"{row['method']} {row['tool_name']}"
        if key not in k6:  # /health has no sub-metric in the script
            assert row["tool_name"] == "/health"
            continue
        values = k6[key]["values"]
        for column, stat in STATS.items():
            assert _close(row[column], values[stat], csv=kind == "csv"), (key, column)
        compared += 1
    assert compared == 6  # five named endpoints and the whole run


@pytest.mark.parametrize("run", RUNS)
def test_status_codes_and_counts_match_manifest(raw_runs, run: str) -> None:
    for kind in ("ndjson", "csv"):
        found = raw_runs[(run, kind)].store.query(
            "SELECT endpoint, status, count(*) AS n FROM samples WHERE run_id = ? AND "
            "metric = 'http_reqs' GROUP BY ALL", [raw_runs[(run, kind)].run_id])
        codes = {(r["endpoint"], r["status"]): r["n"] for r in found.iter_rows(named=True)}
        for endpoint, expected in STATUS_CODES[run].items():
            assert {s: n for (e, s), n in codes.items() if e == endpoint} == expected


@pytest.mark.parametrize("run", RUNS)
def test_csv_and_ndjson_hold_the_same_points(raw_runs, run: str) -> None:
    def per_metric(kind: str) -> pl.DataFrame:
        r = raw_runs[(run, kind)]
        return r.store.query(
            "SELECT metric, endpoint, count(*) AS n, sum(value) AS total, "
            "min(date_trunc('second', ts)) AS first FROM samples WHERE run_id = ? "
            "GROUP BY ALL ORDER BY ALL", [r.run_id])

    ndjson, csv = per_metric("ndjson"), per_metric("csv")
    assert ndjson.select("metric", "endpoint", "n", "first").equals(
        csv.select("metric", "endpoint", "n", "first"))
    assert ndjson["total"].to_list() == pytest.approx(csv["total"].to_list(), rel=1e-9)


def test_failures_errors_and_windows_from_points(raw_runs) -> None:
    run = raw_runs[("candidate", "ndjson")]
    summary = run.summary()
    bookings = summary.filter(pl.col("endpoint") == "POST /api/bookings").row(0, named=True)
    assert (bookings["count"], bookings["failures"]) == (964, 25)
    errors = run.table("errors").filter(pl.col("kind") == "http_status")
    assert errors.select("endpoint", "error", "count").rows() == [("POST /api/bookings", "500", 25)]
    windows = run.windows(ALL_ENDPOINTS)
    assert windows["count"].sum() == 6748
    # 1 s windows; the first and last cover only the part of their second that the run covers.
    assert windows["length_s"].max() == 1.0 and (windows["length_s"] < 1.0).sum() <= 2
    assert windows["users"].drop_nulls().max() == 20


def test_run_metadata_from_points(raw_runs) -> None:
    meta = raw_runs[("ramp", "ndjson")].meta
    assert meta["grain"] == "samples" and meta["format"] == "k6-ndjson"
    assert meta["load_model"] == "closed" and meta["max_users"] == 100
    # First point 2026-11-22T01:37:01.718999579Z: nanoseconds truncated to microseconds.
    assert meta["started_at"] == datetime(2026, 11, 22, 1, 37, 1, 718999, tzinfo=timezone.utc)
    thresholds = raw_runs[("ramp", "ndjson")].table("thresholds")
    # NDJSON Metric lines carry the expressions of base metrics only, and no result.
    assert sorted(thresholds["expression"]) == ["rate<0.02", "rate>0.98"]
    assert thresholds["ok"].null_count() == 2
    metrics = raw_runs[("ramp", "ndjson")].table("metrics")
    assert metrics.filter(pl.col("metric") == "http_req_duration").select(
        "type", "contains").row(0) == ("trend", "time")


def test_directory_uses_ndjson_and_handle_summary_only(sample_runs: SampleRuns) -> None:
    sources = resolve_sources([DATA / "k6" / "baseline"])
    assert sorted(s.path.name for s in sources) == ["points.json.gz", "summary.json"]
    run = sample_runs["k6/candidate"]
    assert run.meta["source_files"] == ["points.json.gz", "summary.json"]
    assert run.meta["grain"] == "samples"
    assert run.meta["duration_s"] == pytest.approx(76.451644318, rel=1e-12)
    failed = run.table("thresholds").filter(~pl.col("ok"))
    assert sorted(failed.select("metric", "expression").rows()) == [
        ("http_req_duration{name:/api/quote}", "p(90)<140"),
        ("http_req_failed{name:/api/bookings}", "rate<0.025")]
    assert run.table("thresholds").height == 10
    checks = {(r["grp"], r["name"]): (r["passes"], r["fails"])
              for r in run.table("checks").iter_rows(named=True)}
    assert checks[("::checkout", "booking status is 200")] == (939, 25)
    assert checks[("", "health status is 200")] == (964, 0)
    assert len(checks) == 7
    # The per-endpoint rps is the count over k6's test-run duration, as k6 computes http_reqs/s.
    all_row = run.summary().filter(pl.col("endpoint") == ALL_ENDPOINTS).row(0, named=True)
    assert all_row["rps"] == pytest.approx(_summary_json("candidate")["http_reqs"]["values"]
                                           ["rate"], rel=1e-12)


def test_ramp_thresholds_failed_on_every_endpoint(sample_runs: SampleRuns) -> None:
    run = sample_runs["k6/ramp"]
    failed = set(run.table("thresholds").filter(~pl.col("ok"))["metric"])
    assert failed == {"http_req_duration{group:::checkout}",
                      *(f"http_req_duration{{name:{n}}}" for n in (
                          "/api/auth/login", "/api/bookings", "/api/deals/{id}", "/api/deals",
                          "/api/quote"))}


@pytest.mark.parametrize("name", ["summary.json", "summary-export.json"])
@pytest.mark.parametrize("run", RUNS)
def test_summary_only_matches_the_file(sample_runs: SampleRuns, run: str, name: str) -> None:
    k6 = _summary_json(run)
    ingested = sample_runs[f"k6/{run}/{name}"]
    assert ingested.meta["grain"] == "summary"
    duration = k6["http_reqs"]["values"]["count"] / k6["http_reqs"]["values"]["rate"]
    assert ingested.meta["duration_s"] == pytest.approx(duration, rel=1e-12)
    summary = ingested.summary()
    assert set(summary["percentiles"]) == {"tool-summary"}
    assert summary.height == 6  # five named endpoints (no method in summaries) and ALL
    for row in summary.iter_rows(named=True):
        key = "http_req_duration" if row["endpoint"] == ALL_ENDPOINTS else \
            f"http_req_duration{{name:{row['endpoint']}}}"
        for column, stat in STATS.items():
            assert row[column] == k6[key]["values"][stat], (key, column)
    failures = dict(summary.select("endpoint", "failures").rows())
    assert failures[ALL_ENDPOINTS] == k6["http_req_failed"]["values"]["passes"]
    assert failures["/api/bookings"] == k6["http_req_failed{name:/api/bookings}"]["values"][
        "passes"]
    thresholds = {(r["metric"], r["expression"]): r["ok"]
                  for r in ingested.table("thresholds").iter_rows(named=True)}
    assert thresholds == {(m, e): v["ok"] for m, entry in k6.items()
                          for e, v in entry.get("thresholds", {}).items()}
    metrics = ingested.table("metrics")
    rate = metrics.filter((pl.col("metric") == "checks") & (pl.col("stat") == "rate"))
    assert rate["value"].to_list() == [k6["checks"]["values"]["rate"]]
    assert ingested.table("checks")["passes"].sum() == k6["checks"]["values"]["passes"]


def _machine_summary(run: str, version: str = "1.0.0") -> dict:
    """The v1.5+ machine-readable summary k6 would write for this run (FORMATS.md §1.7)."""
    metrics = []
    for name, entry in _summary_json(run).items():
        values = dict(entry["values"])
        if entry["type"] == "trend":
            values = {k: v for k, v in values.items()
                      if k in ("avg", "min", "med", "max", "p(90)", "p(95)")}
        if entry["type"] == "rate":
            values = {"matches": values["passes"], "total": values["passes"] + values["fails"],
                      "rate": values["rate"]}
        metrics.append({"name": name, "type": entry["type"], "contains": entry["contains"],
                        "values": values})
    return {"version": version,
            "metadata": {"generatedAt": "2026-11-22T09:11:17.123456789+07:00",
                         "k6Version": "v1.5.0"},
            "config": {"duration": 76.451644318, "execution": "local"},
            "results": {"metrics": metrics, "checks": {"metrics": [], "results": [
                {"name": "booking status is 200", "passes": 939, "fails": 25}]}}}


def test_machine_summary(tmp_path: Path) -> None:
    path = tmp_path / "machine.json"
    path.write_text(json.dumps(_machine_summary("candidate")))
    run = perfstats.ingest(path, db=":memory:")
    meta = run.meta
    assert (meta["format"], meta["grain"], meta["tool_version"]) == (
        "k6-machine-summary", "summary", "1.5.0")
    assert meta["duration_s"] == 76.451644318
    assert meta["ended_at"] == datetime(2026, 11, 22, 2, 11, 17, 123456, tzinfo=timezone.utc)
    assert (meta["ended_at"] - meta["started_at"]).total_seconds() == pytest.approx(76.451644,
                                                                                    abs=1e-6)
    summary = run.summary().filter(pl.col("endpoint") == "/api/bookings").row(0, named=True)
    assert summary["failures"] == 25 and summary["p99"] is None  # p(99) is never in this format
    assert summary["count"] is None  # no count stat, no http_reqs{name:...} sub-metric
    assert run.table("thresholds").height == 0
    assert run.table("checks").rows() == [(None, "booking status is 200", 939, 25)]


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    smoke = (DATA / "k6" / "smoke" / "points.json").read_bytes()
    baseline_gz = (DATA / "k6" / "baseline" / "points.json.gz").read_bytes()
    csv_rows = b"\n".join(gzip.decompress((DATA / "k6" / "smoke" / "points.csv.gz").read_bytes())
                          .split(b"\n")[:40])
    lines = smoke.splitlines(keepends=True)
    files = {
        "empty": (b"", "empty file"),
        "truncated gzip": (baseline_gz[: len(baseline_gz) * 4 // 5], "truncated or corrupt gzip"),
        "truncated ndjson": (smoke[:-40], "truncated last line"),
        "garbage line": (b"".join(lines[:50] + [b'{"type":"Point","data":42}\n'] + lines[50:]),
                         "line"),
        "not json": (b"".join(lines[:50] + [b"}}garbage{{\n"] + lines[50:]), "NDJSON"),
        "other line type": (b"".join(lines[:50] + [b'{"type":"Summary","data":{}}\n']
                                     + lines[50:]), "a line of type Summary is not k6 output"),
        "point without time": (b"".join(lines[:50] + [lines[1].replace(b'"time"', b'"tim"')]
                                        + lines[50:]), "a Point line without metric, time"),
        "wrong type": (b"".join(lines[:50] + [lines[1].replace(b'"value":1', b'"value":"x"')]
                                + lines[50:]), "x"),
        "truncated csv": (csv_rows[:-25], "line 40 has 12 fields, the header 19"),
        "csv wrong type": (csv_rows.replace(b",1.000000,", b",one,", 1), "'one' to DOUBLE"),
        "unknown version": (json.dumps(_machine_summary("smoke", "2.0.0")).encode(),
                            "unknown k6 machine-readable summary version 2.0.0"),
        "wrong tool": ((DATA / "artillery" / "baseline" / "report.json").read_bytes(),
                       "not a valid k6 summary"),
    }
    assert b'"value":1,' in lines[1]
    out = {}
    for name, (content, reason) in files.items():
        path = tmp_path / (name.replace(" ", "_") + (".gz" if "gzip" in name else ".json"))
        path.write_bytes(content)
        out[name] = (path, reason)
    return out


def test_bad_inputs_fail_cleanly_and_leave_the_store_unchanged(tmp_path: Path,
                                                              stored_runs: StoredRuns) -> None:
    store, _ = stored_runs.in_memory("k6/smoke")  # a store holding a run (copied)
    before = table_counts(store)
    for name, (path, reason) in _bad_inputs(tmp_path).items():
        fmt = "k6-summary" if name == "wrong tool" else None
        with pytest.raises(IngestError) as info:
            perfstats.ingest(path, db=store, fmt=fmt)
        message = str(info.value)
        assert str(path) in message and "\n" not in message, name
        assert len(message) < len(str(path)) + 200, (name, message)
        assert reason.lower() in message.lower(), (name, message)
        assert table_counts(store) == before, name
    with pytest.raises(IngestError, match="files of different tools"):
        perfstats.ingest([DATA / "k6" / "baseline" / "points.json.gz",
                          DATA / "artillery" / "baseline" / "report.json"], db=store)
    assert table_counts(store) == before
    # The failed scans left nothing behind that stops the next NDJSON ingest on this connection
    # (a gzipped NDJSON: one of the two segments of data/k6-split, 3.4k requests).
    after = perfstats.ingest(DATA / "k6-split" / "segment-1" / "points.json.gz", db=store)
    assert not after.existed and after.summary()["count"].sum() > 0


def test_same_content_is_the_same_run() -> None:
    store = perfstats.open_store(":memory:")
    first = perfstats.ingest(DATA / "k6" / "smoke", db=store)
    counts = table_counts(store)
    again = perfstats.ingest([DATA / "k6" / "smoke" / "summary.json",
                              DATA / "k6" / "smoke" / "points.json"], db=store,
                             labels={"branch": "main"})
    assert (again.run_id, again.existed) == (first.run_id, True)
    assert table_counts(store) == counts
    assert again.labels == {"branch": "main"}


def test_points_and_summary_of_different_runs_are_refused() -> None:
    with pytest.raises(IngestError, match="not the run of the summary"):
        perfstats.ingest([DATA / "k6" / "smoke" / "points.json",
                          DATA / "k6" / "baseline" / "summary.json"], db=":memory:")


NDJSON_VARIANTS = "\n".join([
    # v0.33: type/data/metric key order, tainted and sub, threshold objects, tags null.
    '{"type":"Metric","data":{"name":"vus","type":"gauge","contains":"default","tainted":null,'
    '"thresholds":[{"threshold":"value<60","abortOnFail":true,"delayAbortEval":"10s"}],'
    '"submetrics":null,"sub":{"name":"","parent":"","suffix":"","tags":null}},"metric":"vus"}',
    '{"type":"Point","data":{"time":"2021-10-15T12:15:09.08+01:00","value":50,"tags":null},'
    '"metric":"vus"}',
    '{"type":"Point","data":{"time":"2021-10-15T12:15:10+01:00","value":50,"tags":null},'
    '"metric":"vus"}',
    # v0.41+: metric/type/data order, metadata, escaped < and &, a custom tag, no name tag.
    '{"type":"Metric","data":{"name":"http_req_duration","type":"trend","contains":"time",'
    '"thresholds":["p(95)\\u003c500"],"submetrics":null},"metric":"http_req_duration"}',
    '{"metric":"http_req_duration","type":"Point","data":{"time":"2021-10-15T11:15:09.5Z",'
    '"value":12.5,"tags":{"method":"GET","url":"http://x/a?b=1\\u0026c=2","status":"0",'
    '"error_code":"1050","expected_response":"false","team":"a\\u003cb","proto":"HTTP/2.0"},'
    '"metadata":{"vu":"3","iter":"7"}}}',
    '{"metric":"checks","type":"Point","data":{"time":"2021-10-15T04:15:09.999999999-07:00",'
    '"value":0,"tags":{"check":"p95 \\u003c 500 ✓","group":"::g"}}}',
    '{"metric":"iteration_duration","type":"Point","data":{"time":"2021-10-15T11:15:10.000001Z",'
    '"value":3,"tags":{}}}',
]) + "\n"


def test_ndjson_shapes_of_every_version(tmp_path: Path) -> None:
    path = tmp_path / "k6.json"
    path.write_text(NDJSON_VARIANTS, encoding="utf-8")
    run = perfstats.ingest(path, db=":memory:")
    samples = run.store.query(
        "SELECT metric, epoch_us(ts) AS us, value, endpoint, name, method, status, url, grp, "
        "expected_response, error_code, check_name, extra, vu, iter FROM samples "
        "ORDER BY ts, metric")
    rows = samples.rows(named=True)
    assert [r["us"] for r in rows] == [1634296509080000, 1634296509500000, 1634296509999999,
                                       1634296510000000, 1634296510000001]
    request = next(r for r in rows if r["metric"] == "http_req_duration")
    assert request["endpoint"] == "GET http://x/a?b=1&c=2"
    assert request["name"] is None and request["expected_response"] is False
    assert (request["status"], request["error_code"]) == ("0", "1050")
    assert json.loads(request["extra"]) == {"team": "a<b", "proto": "HTTP/2.0"}
    assert (request["vu"], request["iter"]) == (3, 7)
    check = next(r for r in rows if r["metric"] == "checks")
    assert (check["check_name"], check["grp"], check["extra"]) == ("p95 < 500 ✓", "::g", None)
    assert [r["extra"] for r in rows if r["metric"] == "vus"] == [None, None]
    assert run.table("checks").rows() == [("::g", "p95 < 500 ✓", 0, 1)]
    assert sorted(run.table("thresholds").select("metric", "expression").rows()) == [
        ("http_req_duration", "p(95)<500"), ("vus", "value<60")]
    assert run.table("errors").filter(pl.col("kind") == "error_code")["error"].to_list() == [
        "1050"]


@pytest.mark.slow
def test_tag_sets_and_metric_lines_seen_anywhere_in_a_long_file(tmp_path: Path) -> None:
    """One scan, many vectors on several threads: a tag set first seen on the last line and a
    Metric line in the middle are found, each tag set is stored once, and every point keeps its
    tags."""
    def point(i: int, status: str) -> str:
        return json.dumps({"metric": "http_req_duration", "type": "Point", "data": {
            "time": f"2026-01-01T00:{i // 6000 % 60:02d}:{i // 100 % 60:02d}.{i % 100:02d}Z",
            "value": float(i % 97), "tags": {"method": "GET", "name": f"/api/{i % 7}",
                                            "status": status}}})
    n = 300_000
    lines = [point(i, "200") for i in range(n - 1)] + [point(n - 1, "503")]
    lines.insert(n // 2, json.dumps({"type": "Metric", "metric": "late_trend", "data": {
        "name": "late_trend", "type": "trend", "contains": "time", "thresholds": ["p(99)<9"]}}))
    path = tmp_path / "long.json"
    path.write_text("\n".join(lines) + "\n")
    run = perfstats.ingest(path, db=":memory:")
    counts = run.store.query(
        "SELECT (SELECT count(*) FROM points) AS points, (SELECT count(*) FROM samples) AS "
        "samples, (SELECT count(*) FROM tag_sets) AS tag_sets, (SELECT count(DISTINCT tag_set) "
        "FROM tag_sets) AS distinct_sets").row(0, named=True)
    assert counts == {"points": n, "samples": n, "tag_sets": 8, "distinct_sets": 8}
    late = run.store.query("SELECT endpoint, value FROM samples WHERE status = '503'")
    assert late.rows() == [(f"GET /api/{(n - 1) % 7}", float((n - 1) % 97))]
    assert run.table("metrics").filter(pl.col("metric") == "late_trend")["type"].to_list() == [
        "trend"]
    assert run.table("thresholds").rows() == [("late_trend", "p(99)<9", None)]


def test_a_tag_set_per_point(tmp_path: Path) -> None:
    """A per-request tag (say a request id) makes every point its own tag set: each is stored
    once and every point keeps its tags (1 M such points ingest in about 2.7 s: docs/ingest.md)."""
    n = 50_000
    path = tmp_path / "ids.json"
    path.write_text("".join(json.dumps({"metric": "http_req_duration", "type": "Point", "data": {
        "time": f"2026-01-01T00:00:{i // 1000 % 60:02d}.{i % 1000:03d}Z", "value": 1.0,
        "tags": {"method": "GET", "name": "/x", "request_id": f"r{i}"}}}) + "\n"
        for i in range(n)))
    run = perfstats.ingest(path, db=":memory:")
    counts = run.store.query(
        "SELECT count(*) AS sets, count(DISTINCT tag_set) AS distinct_sets, "
        "count(DISTINCT extra) AS extras, (SELECT count(*) FROM samples) AS samples "
        "FROM tag_sets").row(0, named=True)
    assert counts == {"sets": n, "distinct_sets": n, "extras": n, "samples": n}


CSV_HEADER = ("metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,"
              "method,name,proto,scenario,service,status,subproto,tls_version,url,extra_tags,"
              "metadata\n")


@pytest.mark.parametrize(("stamp", "us"), [
    ("1634296509", 1634296509000000), ("1634296509123", 1634296509123000),
    ("1634296509123456", 1634296509123456), ("1634296509123456789", 1634296509123456),
    ("2021-10-15T12:15:09+01:00", 1634296509000000),
    ("2021-10-15T11:15:09.123456789Z", 1634296509123456),
])
def test_csv_time_formats_tags_and_metadata(tmp_path: Path, stamp: str, us: int) -> None:
    row = (f"http_req_duration,{stamp},30.309000,,,,true,::g,POST,/api/x,HTTP/1.1,default,,201,,"
           "tls1.3,http://h/api/x,team=a b&note=x=y,vu=3&iter=9\n")
    path = tmp_path / "k6.csv"
    path.write_text(CSV_HEADER + row)
    run = perfstats.ingest(path, db=":memory:")
    sample = run.store.query("SELECT epoch_us(ts) AS us, * EXCLUDE (ts) FROM samples").row(
        0, named=True)
    assert sample["us"] == us and sample["value"] == 30.309
    assert (sample["endpoint"], sample["status"], sample["grp"]) == ("POST /api/x", "201", "::g")
    assert sample["expected_response"] is True
    assert json.loads(sample["extra"]) == {"proto": "HTTP/1.1", "tls_version": "tls1.3",
                                           "team": "a b", "note": "x=y"}
    assert (sample["vu"], sample["iter"]) == (3, 9)


def test_old_csv_header_without_expected_response(tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    path.write_text("metric_name,timestamp,metric_value,check,error,error_code,group,method,name,"
                    "proto,status,subproto,tls_version,url,extra_tags\n"
                    "http_req_duration,1577985135,10.101000,,,,,GET,/a,HTTP/1.1,503,,,/a,\n"
                    "http_req_duration,1577985136,5.000000,,,,,GET,/a,HTTP/1.1,200,,,/a,\n")
    run = perfstats.ingest(path, db=":memory:")
    row = run.summary().filter(pl.col("endpoint") == "GET /a").row(0, named=True)
    # No expected_response tag before k6 0.31: failed = status outside 200-399.
    assert (row["count"], row["failures"], row["max"]) == (2, 1, 10.101)


def test_benchmark_generator_output_ingests(tmp_path: Path) -> None:
    generator = k6_generator()
    path = tmp_path / "synthetic.json.gz"
    _, points = generator.write(path, generator.parse_size("8MB"), seed=3, compress=True)
    run = perfstats.ingest(path, db=":memory:")
    assert run.store.query("SELECT count(*) AS n FROM samples")["n"][0] == points
    summary = run.summary()
    assert set(summary["endpoint"]) == {
        "POST /api/auth/login", "GET /api/deals", "GET /api/deals/{id}", "POST /api/quote",
        "POST /api/bookings", "GET /health", ALL_ENDPOINTS}
    row = run.store.query("SELECT extra, vu, iter FROM samples WHERE metric = 'http_reqs' "
                          "LIMIT 1").row(0, named=True)
    assert json.loads(row["extra"]).keys() == {"proto", "team"}
    assert json.loads(row["extra"])["team"] == "checkout&pay"
    assert row["vu"] is not None and row["iter"] is not None
    assert run.meta["load_model"] == "closed"


def test_ctrl_c_during_the_scan_stops_the_ingest_and_stores_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C lands in whichever thread runs Python: inside a function DuckDB calls, DuckDB
    turns it into its own error, which must come out as KeyboardInterrupt, not as bad input."""
    store = perfstats.open_store(":memory:")
    perfstats.ingest(DATA / "k6" / "smoke", db=store)
    before = table_counts(store)

    def interrupted(self: object, tag_set: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(k6_module._LineCollector, "new_tag_set", interrupted)
    with pytest.raises(KeyboardInterrupt):
        perfstats.ingest(DATA / "k6" / "baseline" / "points.json.gz", db=store)
    assert table_counts(store) == before


def test_progress_within_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A progress callback hears how far the scans of one raw file are, ending at 1."""
    monkeypatch.setattr(writer_module, "PROGRESS_INTERVAL_S", 0.002)
    generator = k6_generator()
    path = tmp_path / "synthetic.json"
    generator.write(path, generator.parse_size("24MB"), seed=5, compress=False)
    # A file within one of DuckDB's read buffers goes 0 -> about 98 % -> 100 %, and whether the
    # middle state lasts long enough to be seen depends on how DuckDB's threads run (on a loaded
    # machine it sometimes jumps from 0 to 100); a file of several buffers (300 MB: 0.22, 0.44,
    # 0.87, 1) moves surely but costs seconds.  So up to three scans of the small file.
    middle = int(duckdb.__version__.split(".")[0]) >= 2  # DuckDB 1.4 says 0 until a scan ends
    for _ in range(3 if middle else 1):
        shares: list[float] = []
        perfstats.ingest(path, db=":memory:", progress=shares.append)
        assert shares[-1] == 1.0 and shares == sorted(shares) and 0 <= shares[0]
        if any(0 < share < 1 for share in shares):
            break
    assert any(0 < share < 1 for share in shares) or not middle, shares
    # CSV: two scans (tag sets, then points), each reported as one half.
    csv_shares: list[float] = []
    perfstats.ingest(DATA / "k6" / "baseline" / "points.csv.gz", db=":memory:",
                     progress=csv_shares.append)
    assert csv_shares[-1] == 1.0 and 0.5 in csv_shares and csv_shares == sorted(csv_shares)


def _arrival_rate_run(tmp_path: Path, vus: int) -> Path:
    """60 s of one 200 ms iteration every 100 ms (about 2 busy VUs) with ``vus`` VUs active."""
    lines = []
    start = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    for i in range(600):
        end = start + i * 0.1 + 0.2
        stamp = datetime.fromtimestamp(end, timezone.utc).isoformat().replace("+00:00", "Z")
        lines.append({"metric": "iteration_duration", "type": "Point",
                      "data": {"time": stamp, "value": 200.0, "tags": {"scenario": "s"}}})
    for second in range(61):
        stamp = datetime.fromtimestamp(start + second, timezone.utc).isoformat()
        lines.append({"metric": "vus", "type": "Point",
                      "data": {"time": stamp, "value": vus, "tags": None}})
    path = tmp_path / f"arrivals-{vus}.json"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.mark.parametrize(("vus", "model"), [(20, "open"), (2, "closed")])
def test_load_model_from_vu_busy_share(tmp_path: Path, vus: int, model: str) -> None:
    run = perfstats.ingest(_arrival_rate_run(tmp_path, vus), db=":memory:")
    assert run.meta["load_model"] == model
    assert run.meta["max_users"] == (None if model == "open" else vus)


def test_corpus_summaries_nested_groups_and_failed_legacy_threshold(shared_dir: Path) -> None:
    corpus = shared_dir / "corpus" / "k6" / "summary-export"
    nested = perfstats.ingest(corpus / "habiba2811__k6-practice-app__summary.json", db=":memory:")
    assert nested.table("checks").rows() == [("::Main page", "status is 200", 1, 0)]
    # Legacy export: "p(99)<400": true means the threshold FAILED (FORMATS.md §1.5).
    failed = perfstats.ingest(corpus / "rajjo999__K6-GithubActions__summary.json", db=":memory:")
    assert failed.table("thresholds").rows() == [("http_req_duration", "p(99)<400", False)]
    passed = perfstats.ingest(corpus / "MichelMOliveira__atd-2025__summary.json", db=":memory:")
    assert set(passed.table("thresholds")["ok"]) == {True}
