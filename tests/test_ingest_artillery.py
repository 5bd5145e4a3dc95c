"""Artillery reports (2.x and legacy 1.x): what the store holds equals what the report wrote."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers import StoredRuns, table_counts

import perfstats
from perfstats.errors import IngestError
from perfstats.readers import ingest_sources, resolve_sources
from perfstats.store import Store

PLUGIN = "plugins.metrics-by-endpoint"
STATS = {"min": "min", "max": "max", "mean": "mean", "p50": "median", "p90": "p90",
         "p95": "p95", "p99": "p99"}


def _ingest(store: Store, path: Path, fmt: str | None = None) -> str:
    run = perfstats.ingest(path, db=store, fmt=fmt)
    assert not run.existed
    return run.run_id


def _table(store: Store, table: str, run_id: str) -> pl.DataFrame:
    frame = store.query(f"SELECT * EXCLUDE (run_id) FROM {table} WHERE run_id = ?", [run_id])
    return frame.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))


def _run(store: Store, run_id: str) -> dict:
    return store.query("SELECT * FROM runs WHERE run_id = ?", [run_id]).to_dicts()[0]


def _metrics(store: Store, run_id: str) -> dict[tuple[str, str], float]:
    rows = _table(store, "metrics", run_id).select("metric", "stat", "value").rows()
    return {(metric, stat): value for metric, stat, value in rows}


def _by_endpoint(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["endpoint"]: row for row in frame.to_dicts()}


def _epoch_ms(value: int | str) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, timezone.utc)


def _stats_lite(values: np.ndarray, p: float) -> float:
    """stats-lite ``percentile`` (Artillery 1.x): i = n*p - 0.5, interpolate (Hazen, R-5)."""
    v = np.sort(values)
    i = len(v) * p - 0.5
    if i == int(i):
        return float(v[int(i)])
    lo = int(math.floor(i))
    return float(v[lo] + (i - lo) * (v[min(lo + 1, len(v) - 1)] - v[lo]))


def _js_round1(x: float) -> float:
    return math.floor(x * 10 + 0.5) / 10


# ------------------------------------------------------------------------------------- 2.x


@pytest.mark.parametrize("name", ["baseline", "candidate", "ramp"])
def test_v2_summaries_equal_the_aggregate(store: Store, data_dir: Path, name: str) -> None:
    path = data_dir / "artillery" / name / "report.json"
    report = json.loads(path.read_text())["aggregate"]
    run_id = _ingest(store, path)
    rows = _by_endpoint(_table(store, "summaries", run_id))
    duration = (report["lastMetricAt"] - report["firstMetricAt"]) / 1000
    head = f"{PLUGIN}.response_time."
    endpoints = {k[len(head):]: v for k, v in report["summaries"].items() if k.startswith(head)}
    assert set(rows) == {*endpoints, "ALL"}
    whole = report["summaries"]["http.response_time"]
    for endpoint, summary in [*endpoints.items(), ("ALL", whole)]:
        row = rows[endpoint]
        assert row["count"] == summary["count"]
        for column, key in STATS.items():
            assert row[column] == summary[key], (endpoint, column)
        assert row["percentiles"] == "tool-summary"
        assert row["rps"] == pytest.approx(summary["count"] / duration, rel=1e-12)
        assert row["method"] is None
        assert row["tool_name"] == (None if endpoint == "ALL" else endpoint)
    for endpoint in endpoints:
        prefix = f"{PLUGIN}.{endpoint}.codes."
        codes = {int(k[len(prefix):]): n for k, n in report["counters"].items()
                 if k.startswith(prefix)}
        assert sum(codes.values()) == rows[endpoint]["count"]
        assert rows[endpoint]["failures"] == sum(n for c, n in codes.items() if c >= 400)
    assert rows["ALL"]["failures"] == sum(
        n for k, n in report["counters"].items() if k.startswith("http.codes.5"))


def test_v2_baseline_matches_the_manifest(store: Store, data_dir: Path) -> None:
    run_id = _ingest(store, data_dir / "artillery/baseline/report.json")
    rows = _by_endpoint(_table(store, "summaries", run_id))
    assert (rows["/api/bookings"]["count"], rows["/api/bookings"]["failures"]) == (900, 9)
    assert rows["/api/deals/{id}"]["count"] == 1800
    assert [rows["/api/quote"][c] for c in ("p50", "p95", "p99")] == [44.3, 162.4, 284.3]
    assert [rows["/api/auth/login"][c] for c in ("p50", "p95", "p99")] == [62.2, 108.9, 147]
    assert rows["ALL"]["count"] == 6300 and rows["ALL"]["p95"] == 85.6
    errors = _table(store, "errors", run_id).sort("endpoint")
    assert errors.select("endpoint", "kind", "error", "count").rows() == [
        ("/api/bookings", "http_status", "500", 9), ("ALL", "http_status", "500", 9)]
    metrics = _metrics(store, run_id)
    assert metrics[("http.requests", "count")] == 6300
    assert metrics[("http.codes.200", "count")] == 6291
    assert metrics[("vusers.created", "count")] == 900
    assert metrics[("vusers.completed", "count")] == 900
    assert metrics[("http.request_rate", "rate")] == 83
    assert metrics[("vusers.session_length", "p95")] == 1200.1
    assert ("http.response_time", "p95") not in metrics  # it is the ALL summary row
    summary = perfstats.load(run_id, db=store).summary()
    bookings = summary.filter(pl.col("endpoint") == "/api/bookings").to_dicts()[0]
    assert (bookings["error_rate"], bookings["p50"], bookings["method"]) == (0.01, 30.9, None)
    assert summary["endpoint"].to_list()[-1] == "ALL"
    meta = _run(store, run_id)
    assert meta["tool"] == "artillery" and meta["format"] == "artillery-v2"
    assert meta["grain"] == "windows" and meta["load_model"] == "open"
    assert meta["tool_version"] is None and meta["max_users"] is None
    assert meta["duration_s"] == pytest.approx(76.068)
    assert meta["started_at"] == _epoch_ms(1795312342233)
    assert meta["ended_at"] == _epoch_ms(1795312418301)


@pytest.mark.parametrize(("name", "periods"), [("baseline", 8), ("candidate", 9), ("ramp", 16)])
def test_v2_windows_are_the_intermediate_periods(store: Store, data_dir: Path, name: str,
                                                 periods: int) -> None:
    path = data_dir / "artillery" / name / "report.json"
    report = json.loads(path.read_text())
    run_id = _ingest(store, path)
    windows = _table(store, "windows", run_id)
    assert len(report["intermediate"]) == periods
    assert windows.filter(pl.col("endpoint") == "ALL").height == periods
    assert (windows["length_s"] == 10.0).all()
    assert (windows["percentiles"] == "tool-window").all()
    assert windows["users"].null_count() == windows.height  # Artillery has no VU gauge
    head = f"{PLUGIN}.response_time."
    expected = 0
    for period in report["intermediate"]:
        start = _epoch_ms(period["period"])  # a string in intermediates
        assert isinstance(period["period"], str)
        for key, summary in period["summaries"].items():
            if key == "http.response_time" or key.startswith(head):
                endpoint = "ALL" if key == "http.response_time" else key[len(head):]
                row = windows.filter((pl.col("endpoint") == endpoint) & (pl.col("start") == start))
                assert row.height == 1
                assert row["count"][0] == summary["count"]
                for column, stat in STATS.items():
                    assert row[column][0] == summary[stat], (endpoint, column)
                assert row["total_ms"][0] == pytest.approx(summary["mean"] * summary["count"])
                expected += 1
        codes5 = sum(n for k, n in period["counters"].items() if k.startswith("http.codes.5"))
        all_row = windows.filter((pl.col("endpoint") == "ALL") & (pl.col("start") == start))
        assert all_row["failures"][0] == codes5
    assert windows.height == expected
    totals = windows.group_by("endpoint").agg(pl.col("count").sum(), pl.col("failures").sum())
    summary = _table(store, "summaries", run_id).join(totals, on="endpoint", suffix="_w")
    assert (summary["count"] == summary["count_w"]).all()
    assert (summary["failures"] == summary["failures_w"]).all()


def test_v2_candidate_and_ramp_match_the_manifest(store: Store, data_dir: Path) -> None:
    candidate = _by_endpoint(_table(store, "summaries",
                                    _ingest(store, data_dir / "artillery/candidate/report.json")))
    bookings = candidate["/api/bookings"]
    assert (bookings["count"], bookings["failures"]) == (900, 36)
    assert [candidate["/api/quote"][c] for c in ("p50", "p95", "p99")] == [53, 210.6, 340.4]
    ramp = _by_endpoint(_table(store, "summaries",
                               _ingest(store, data_dir / "artillery/ramp/report.json")))
    assert [ramp["/api/auth/login"][c] for c in ("p50", "p95", "p99")] == [175.9, 2369, 2836.2]
    assert (ramp["ALL"]["count"], ramp["ALL"]["failures"], ramp["ALL"]["p95"]) == (9240, 14, 2059.5)


# ------------------------------------------------------------------------------------- 1.x


def test_v1_summaries_equal_the_report_and_the_manifest(store: Store, data_dir: Path) -> None:
    path = data_dir / "artillery-v1/baseline/report.json"
    aggregate = json.loads(path.read_text())["aggregate"]
    run_id = _ingest(store, path)
    rows = _by_endpoint(_table(store, "summaries", run_id))
    manifest = {"/api/auth/login": (62, 108, 137, 900), "/api/deals": (16, 27, 32, 900),
                "/api/deals/{id}": (10, 15, 19, 1800), "/api/quote": (46, 171, 262.5, 900),
                "/api/bookings": (32, 56, 68, 900), "/health": (2, 3, 6, 900)}
    assert set(rows) == {*manifest, "ALL"}
    for endpoint, (p50, p95, p99, count) in manifest.items():
        row = rows[endpoint]
        assert (row["p50"], row["p95"], row["p99"], row["count"]) == (p50, p95, p99, count)
        custom = aggregate["customStats"][f"{PLUGIN}.response_time.{endpoint}"]
        assert (row["min"], row["max"]) == (custom["min"], custom["max"])
        assert row["mean"] is None and row["p90"] is None  # stats-lite summaries have neither
        assert row["percentiles"] == "tool-summary"
    assert rows["/api/bookings"]["failures"] == 9
    whole = rows["ALL"]
    latency = aggregate["latency"]
    assert (whole["count"], whole["failures"]) == (6300, 9)
    assert [whole[c] for c in ("min", "p50", "p95", "p99", "max")] == [0, 16, 88.5, 154, 1301]
    assert [latency[k] for k in ("min", "median", "p95", "p99", "max")] == [0, 16, 88.5, 154, 1301]
    errors = _table(store, "errors", run_id).sort("endpoint")
    assert errors.select("endpoint", "kind", "error", "count").rows() == [
        ("/api/bookings", "http_status", "500", 9), ("ALL", "http_status", "500", 9)]
    metrics = _metrics(store, run_id)
    assert metrics[("scenariosCreated", "count")] == 900
    assert metrics[("requestsCompleted", "count")] == 6300
    assert metrics[("codes.200", "count")] == 6291
    assert metrics[("scenarioDuration", "p95")] == 1222.7


def test_v1_windows_are_exact_from_the_raw_nanosecond_latencies(store: Store,
                                                                 data_dir: Path) -> None:
    path = data_dir / "artillery-v1/baseline/report.json"
    report = json.loads(path.read_text())
    run_id = _ingest(store, path)
    windows = _table(store, "windows", run_id).sort("start")
    whole = windows.filter(pl.col("endpoint") == "ALL")
    assert whole.height == len(report["intermediate"]) == 8
    assert windows.height == 8 * 7
    assert (whole["percentiles"] == "exact").all()
    assert (windows.filter(pl.col("endpoint") != "ALL")["percentiles"] == "tool-window").all()
    every = []
    for row, period in zip(whole.to_dicts(), report["intermediate"], strict=True):
        ms = np.asarray(period["latencies"], dtype=float) / 1e6
        every.append(ms)
        assert row["count"] == ms.size == period["requestsCompleted"]
        assert row["users"] == period["concurrency"]
        assert row["total_ms"] == pytest.approx(ms.sum(), rel=1e-12)
        assert row["mean"] == pytest.approx(ms.mean(), rel=1e-12)
        assert (row["min"], row["max"]) == (ms.min(), ms.max())
        for column, p in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
            assert row[column] == pytest.approx(np.quantile(ms, p), rel=1e-12)
        # The tool's own window summary is stats-lite over the same samples.
        tool = period["latency"]
        assert _js_round1(_stats_lite(ms, 0.95)) == tool["p95"]
        assert _js_round1(float(np.median(ms))) == tool["median"]
    # Windows follow one another; the first starts rps.count / rps.mean before its report.
    first = report["intermediate"][0]
    elapsed = first["rps"]["count"] / first["rps"]["mean"]
    assert whole["length_s"][0] == pytest.approx(elapsed, abs=1e-6)
    ends = [datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00"))
            for p in report["intermediate"]]
    assert whole["start"].to_list()[1:] == ends[:-1]
    # The whole-run stats-lite values come from the union of the windows' raw latencies.
    union = np.concatenate(every)
    assert _js_round1(_stats_lite(union, 0.99)) == report["aggregate"]["latency"]["p99"]
    summary = _by_endpoint(_table(store, "summaries", run_id))
    assert summary["ALL"]["mean"] == pytest.approx(union.mean(), rel=1e-12)
    for endpoint, row in summary.items():
        assert windows.filter(pl.col("endpoint") == endpoint)["count"].sum() == row["count"]
    meta = _run(store, run_id)
    assert meta["grain"] == "windows" and meta["format"] == "artillery-v1"
    assert meta["ended_at"] == datetime.fromisoformat("2026-11-22T02:04:15.007+00:00")
    assert meta["duration_s"] == pytest.approx(
        (meta["ended_at"] - whole["start"][0]).total_seconds())
    assert meta["duration_s"] == pytest.approx(6300 / 82.43, abs=0.01)  # aggregate rps.mean


def test_v1_latency_tuples_read_like_plain_numbers(store: Store, data_dir: Path,
                                                   tmp_path: Path) -> None:
    """The artillery-core engine wrote ``[epochMs, uuid, ns, statusCode]`` tuples."""
    report = json.loads((data_dir / "artillery-v1/baseline/report.json").read_text())
    for period in report["intermediate"]:
        period["latencies"] = [[1795312978000 + i, f"uuid-{i}", ns, 200]
                               for i, ns in enumerate(period["latencies"])]
    tuples = tmp_path / "tuples.json"
    tuples.write_text(json.dumps(report))
    plain = _table(store, "windows", _ingest(store, data_dir / "artillery-v1/baseline/report.json"))
    shaped = _table(store, "windows", _ingest(store, tuples))
    assert shaped.sort("endpoint", "start").equals(plain.sort("endpoint", "start"))


# ------------------------------------------------------------------------------------- key grammar


def _renamed(report: dict, rename) -> dict:
    """The report with every metric name passed through ``rename`` (counters and summaries)."""
    for record in [report["aggregate"], *report["intermediate"]]:
        for group in ("counters", "summaries", "histograms"):
            record[group] = {rename(k): v for k, v in record[group].items()}
    return report


def test_custom_metrics_namespace_and_dotted_names(store: Store, data_dir: Path,
                                                   tmp_path: Path) -> None:
    source = data_dir / "artillery/baseline/report.json"
    expected = _by_endpoint(_table(store, "summaries", _ingest(store, source)))

    def rename(key: str) -> str:
        key = key.replace("/api/deals/{id}", "/api/v1.0/deals.json?id={id}")
        return key.replace(PLUGIN + ".", "api.by-endpoint.")

    report = _renamed(json.loads(source.read_text()), rename)
    error = "api.by-endpoint./api/v1.0/deals.json?id={id}.errors.Error: socket hang up. Retry."
    report["aggregate"]["counters"][error] = 2
    report["aggregate"]["counters"]["errors.Error: socket hang up. Retry."] = 2
    path = tmp_path / "namespaced.json"
    path.write_text(json.dumps(report))
    run_id = _ingest(store, path)
    rows = _by_endpoint(_table(store, "summaries", run_id))
    assert set(rows) == (set(expected) - {"/api/deals/{id}"}) | {"/api/v1.0/deals.json?id={id}"}
    dotted = rows["/api/v1.0/deals.json?id={id}"]
    assert (dotted["count"], dotted["failures"]) == (1802, 2)  # responses + request errors
    assert dotted["p95"] == expected["/api/deals/{id}"]["p95"]
    assert rows["/api/quote"] == expected["/api/quote"]
    errors = _table(store, "errors", run_id).filter(pl.col("kind") == "error")
    assert sorted(errors.select("endpoint", "error", "count").rows()) == [
        ("/api/v1.0/deals.json?id={id}", "Error: socket hang up. Retry.", 2),
        ("ALL", "Error: socket hang up. Retry.", 2)]


def test_pre_rename_metric_names_are_refused(store: Store, data_dir: Path, tmp_path: Path) -> None:
    """Artillery 2.0.0-dev0..11 wrote core.* / engine.* names; no real file exists to map them."""
    names = {"vusers.created": "core.vusers.created.total", "http.requests": "engine.http.requests"}

    def rename(key: str) -> str:
        if key in names:
            return names[key]
        return "engine." + key if key.startswith("http.") else key

    path = tmp_path / "old.json"
    path.write_text(json.dumps(_renamed(
        json.loads((data_dir / "artillery/baseline/report.json").read_text()), rename)))
    before = table_counts(store)
    reason = r"unknown Artillery version \(pre-2.0.0-12 metric names\)"
    with pytest.raises(IngestError, match=reason):
        _ingest(store, path)
    assert table_counts(store) == before


def test_legacy_report_format_of_v2(store: Store, data_dir: Path, tmp_path: Path) -> None:
    """ARTILLERY_USE_LEGACY_REPORT_FORMAT: a v1-shaped report built by ``SSMS.legacyReport``."""
    report = json.loads((data_dir / "artillery/baseline/report.json").read_text())

    def legacy(pd: dict) -> dict:  # SSMS.legacyReport, field by field
        counters = pd["counters"]
        return {
            "customStats": {}, "counters": {},
            "scenariosAvoided": counters.get("vusers.skipped", 0),
            "timestamp": _epoch_ms(pd["period"]).isoformat().replace("+00:00", "Z"),
            "scenariosCreated": counters.get("vusers.created", 0),
            "scenariosCompleted": counters.get("vusers.completed", 0),
            "requestsCompleted": counters.get("http.responses", 0),
            "latency": pd["histograms"]["http.response_time"],
            "rps": {"mean": 0, "count": counters.get("http.responses", 0)},
            "scenarioDuration": pd["histograms"]["vusers.session_length"],
            "scenarioCounts": {"shopper": counters["vusers.created_by_name.shopper"]},
            "errors": {},
            "codes": {k.split(".codes.")[1]: n for k, n in counters.items()
                      if k.startswith("http.codes.")},
        }

    path = tmp_path / "legacy.json"
    path.write_text(json.dumps({"aggregate": legacy(report["aggregate"]),
                                "intermediate": [legacy(p) for p in report["intermediate"]]}))
    run_id = _ingest(store, path)
    assert _run(store, run_id)["format"] == "artillery-v1"
    whole = _by_endpoint(_table(store, "summaries", run_id))["ALL"]
    summary = report["aggregate"]["summaries"]["http.response_time"]
    assert (whole["count"], whole["failures"]) == (6300, 9)
    assert [whole[c] for c in STATS] == [summary[k] for k in STATS.values()]
    windows = _table(store, "windows", run_id).sort("start")
    assert windows["start"].to_list() == [_epoch_ms(p["period"]) for p in report["intermediate"]]
    assert (windows["length_s"] == 10).all() and (windows["percentiles"] == "tool-window").all()
    assert windows["p90"].to_list() == [
        p["summaries"]["http.response_time"]["p90"] for p in report["intermediate"]]


# ------------------------------------------------------------------------------------- corpus


def _corpus(shared_dir: Path, name: str) -> Path:
    matches = sorted((shared_dir / "corpus" / "artillery").glob(f"*/{name}*"))
    assert len(matches) == 1, name
    return matches[0]


def test_request_errors_count_as_ended_requests(store: Store, shared_dir: Path) -> None:
    """Timeouts and socket errors end requests without a response: count = http.requests."""
    path = _corpus(shared_dir, "f-lab-edu")
    counters = json.loads(path.read_text())["aggregate"]["counters"]
    run_id = _ingest(store, path)
    rows = _by_endpoint(_table(store, "summaries", run_id))
    assert rows["ALL"]["count"] == counters["http.requests"] == 48000
    assert rows["ALL"]["failures"] == 48000  # 30442 HTTP 500 + 17558 socket errors
    endpoint = rows["/api/walksBoard/walksBoard"]
    assert (endpoint["count"], endpoint["failures"]) == (48000, 48000)
    errors = _table(store, "errors", run_id).filter(pl.col("endpoint") == "ALL")
    assert dict(errors.select("error", "count").rows()) == {
        "500": 30442, "ECONNRESET": 305, "ETIMEDOUT": 241, "EADDRNOTAVAIL": 17009, "ENOTFOUND": 3}
    assert errors["first_seen"].null_count() == 0


def test_serialised_ddsketch_histograms_give_the_exact_mean(store: Store,
                                                            shared_dir: Path) -> None:
    path = _corpus(shared_dir, "ssw207")
    report = json.loads(path.read_text())
    sketch = report["aggregate"]["histograms"]["http.response_time"]
    summary = report["aggregate"]["summaries"]["http.response_time"]
    assert "mean" not in summary and "mapping" in sketch
    run_id = _ingest(store, path)
    whole = _by_endpoint(_table(store, "summaries", run_id))["ALL"]
    assert whole["mean"] == sketch["sum"] / sketch["count"]
    assert [whole[c] for c in ("p50", "p95", "p99")] == [summary[k] for k in ("p50", "p95", "p99")]
    windows = _table(store, "windows", run_id)
    assert windows.height == len(report["intermediate"]) == 37
    assert windows["total_ms"].sum() == pytest.approx(sketch["sum"])


@pytest.mark.parametrize(("name", "error"), [
    ("devongermano", "connect ECONNRESET ::1:3000"),
    ("Oyhamburo", "Error: JWT token no provided.."),
])
def test_runs_without_http_keep_their_errors(store: Store, shared_dir: Path, name: str,
                                             error: str) -> None:
    path = _corpus(shared_dir, name)
    counters = json.loads(path.read_text())["aggregate"]["counters"]
    run_id = _ingest(store, path)
    assert _table(store, "summaries", run_id).height == 0
    assert _run(store, run_id)["grain"] == "summary"
    errors = dict(_table(store, "errors", run_id).select("error", "count").rows())
    assert errors[error] == counters[f"errors.{error}"]


def test_v1_socket_timeouts(store: Store, shared_dir: Path) -> None:
    path = _corpus(shared_dir, "Gummybearr")
    aggregate = json.loads(path.read_text())["aggregate"]
    whole = _by_endpoint(_table(store, "summaries", _ingest(store, path)))["ALL"]
    assert whole["count"] == aggregate["rps"]["count"] == 3720  # 2181 responses + 1539 timeouts
    assert whole["failures"] == aggregate["errors"]["ESOCKETTIMEDOUT"] == 1539


# ------------------------------------------------------------------------------------- bad input


def _bad_reports(tmp: Path, data: Path) -> dict[str, tuple[Path, str | None, str]]:
    """name -> (file, forced format or None, expected reason fragment)."""
    text = (data / "artillery/baseline/report.json").read_text()
    report = json.loads(text)
    files = {
        "truncated": (text[: len(text) // 2], None, "truncated JSON"),
        "empty": ("", None, "empty file"),
        "counter not a number": (json.dumps(
            {"aggregate": {"counters": {"vusers.created": "many"}}, "intermediate": []}),
            None, "is not a number"),
        "intermediate not a list": (json.dumps(
            {"aggregate": report["aggregate"], "intermediate": {"0": {}}}), None,
            "'intermediate' is not a list"),
        "summary not an object": (json.dumps(
            {"aggregate": {**report["aggregate"], "summaries": {"http.response_time": [1, 2]}},
             "intermediate": []}), None, "is not an object"),
        "no metric": (json.dumps({"aggregate": {"counters": {}}, "intermediate": []}), None,
                      "without any metric"),
        "v1 forced as v2": ((data / "artillery-v1/baseline/report.json").read_text(),
                            "artillery-v2", "has no period"),
        "k6 forced as artillery": ((data / "k6/baseline/summary.json").read_text(),
                                   "artillery-v2", "no 'aggregate' object"),
    }
    out = {}
    for name, (content, fmt, reason) in files.items():
        path = tmp / (name.replace(" ", "_") + ".json")
        path.write_text(content)
        out[name] = (path, fmt, reason)
    return out


@pytest.mark.parametrize("case", ["truncated", "empty", "counter not a number",
                                  "intermediate not a list", "summary not an object",
                                  "no metric", "v1 forced as v2", "k6 forced as artillery"])
def test_bad_reports_leave_the_store_unchanged(data_dir: Path, tmp_path: Path, case: str,
                                               stored_runs: StoredRuns) -> None:
    store, _ = stored_runs.in_memory("artillery/baseline/report.json")  # a run in it (copied)
    before = table_counts(store)
    path, fmt, reason = _bad_reports(tmp_path, data_dir)[case]
    with pytest.raises(IngestError) as info:
        _ingest(store, path, fmt=fmt)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and reason in message
    assert table_counts(store) == before


def test_one_report_per_run(store: Store, data_dir: Path) -> None:
    paths = [data_dir / f"artillery/{name}/report.json" for name in ("baseline", "candidate")]
    with pytest.raises(IngestError, match="several Artillery processes.*--one-run"):
        ingest_sources(store, resolve_sources(paths))
    assert store.runs().height == 0


@pytest.mark.parametrize("run, created", [("artillery/baseline", 900), ("artillery/ramp", 1320),
                                          ("artillery-v1/baseline", 900)])
def test_virtual_users_started_per_window_add_up(data_dir, run: str, created: int) -> None:
    windows = perfstats.ingest(data_dir / run / "report.json", db=":memory:").windows("ALL")
    assert windows["arrivals"].sum() == created
