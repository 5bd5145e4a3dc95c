"""Bottleneck ranking: each impact factor on constructed data with hand-computed answers, the
SLO excess estimators, the patterns of data/'s runs, and the injected regressions of data/ ranked
first (the pattern detectors on synthetic windows: tests/test_patterns.py)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from helpers import SampleRuns

import perfstats
from perfstats.config import compare_config, load_compare_config
from perfstats.diagnosis.excess import excess_from_histogram, excess_from_percentiles
from perfstats.diagnosis.rank import (
    Bottlenecks,
    bottlenecks,
    impact_table,
)
from perfstats.readers.derive import derive_from_samples
from perfstats.readers.writer import RunInfo, RunWriter
from perfstats.run import Run
from perfstats.slo import LatencySlo

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOUR = 3600.0  # constructed runs last one hour, so per-hour figures equal the run's totals


def make_run(store: perfstats.Store, run_id: str, *, grain: str, derive: bool = False,
             duration_s: float = HOUR, **tables: pl.DataFrame) -> Run:
    """Insert a run's rows into ``store`` (k6 runs derive their summaries from the samples)."""
    with store.connect(write=True) as con:
        info = RunInfo(tool="k6" if derive else "locust", format="test", grain=grain,
                       duration_s=duration_s, started_at=T0,
                       ended_at=T0 + timedelta(seconds=duration_s))
        writer = RunWriter(con, run_id, info)
        for name, frame in tables.items():
            writer.insert(name, frame)
        if derive:
            derive_from_samples(writer)
        con.execute(
            "INSERT INTO runs (run_id, tool, format, grain, source_files, content_hash, "
            "started_at, ended_at, duration_s, labels, ingested_at) "
            "VALUES (?, ?, 'test', ?, [], ?, ?, ?, ?, MAP(), now())",
            [run_id, info.tool, grain, run_id, info.started_at, info.ended_at, duration_s])
    return Run(run_id, store, store.run_meta(run_id))


def k6_samples(rows: list[tuple[str, float, str, bool, str]], scenario: str | list[str]
               ) -> pl.DataFrame:
    """http_req_duration points: (endpoint, ms, group, ok, status), one per second."""
    return pl.DataFrame({
        "metric": "http_req_duration",
        "ts": [T0 + timedelta(seconds=i) for i in range(len(rows))],
        "value": [r[1] for r in rows], "endpoint": [r[0] for r in rows],
        "grp": [r[2] for r in rows], "scenario": scenario,
        "expected_response": [r[3] for r in rows], "status": [r[4] for r in rows],
    })


K6_ROWS = [("GET /a", v, "::browse", True, "200") for v in (100, 200, 300, 600)] + [
    ("POST /b", v, "::checkout", True, "200") for v in (50, 50, 50)] + [
    ("POST /b", 450, "::checkout", False, "500")]
"""GET /a: 100, 200, 300, 600 ms in ::browse; POST /b: 50, 50, 50 ms and a failed 450 ms (HTTP
500) in ::checkout."""


@pytest.fixture
def k6_run(store: perfstats.Store) -> Run:
    """K6_ROWS in one hour; the first three requests in scenario ``warm``, the rest in ``main``."""
    samples = k6_samples(K6_ROWS, ["warm"] * 3 + ["main"] * 5)
    return make_run(store, "k6run", grain="samples", derive=True, samples=samples)


@pytest.fixture
def compared_once(sample_runs: SampleRuns, monkeypatch: pytest.MonkeyPatch) -> None:
    """``compare(baseline, run)``, as bottlenecks calls it, of two of ``sample_runs``' runs gives
    the comparison ``sample_runs.compared`` keeps for the session: the same call (compare is
    deterministic, and the project configuration it would load is the default one here), done
    once per worker instead of once per ranking.  Any other call is compare itself."""
    from perfstats.comparison import gate

    real = perfstats.compare  # resolved now: the lazy name must not pick up the stand-in

    def compare(baseline: object, candidate: object, **kwargs: object) -> perfstats.Comparison:
        names = [sample_runs.name_of(baseline), sample_runs.name_of(candidate)]
        if kwargs or None in names or load_compare_config() != compare_config():
            return real(baseline, candidate, **kwargs)
        return sample_runs.compared(*names)

    monkeypatch.setattr(gate, "compare", compare)


def row(result: Bottlenecks, item: str, kind: str = "endpoint") -> dict:
    rows = result.table.filter((pl.col("item") == item) & (pl.col("kind") == kind))
    assert rows.height == 1, f"{kind} {item!r} not in {result.table['item'].to_list()}"
    return rows.row(0, named=True)


# ----------------------------------------------------------------------- factors, by hand


def test_time_share_slo_excess_and_errors_from_samples(k6_run: Run) -> None:
    result = bottlenecks(k6_run, slo=250)
    a, b = row(result, "GET /a"), row(result, "POST /b")
    # waiting time: /a 1200 ms, /b 600 ms
    assert a["time_share"] == pytest.approx(2 / 3)
    assert b["time_share"] == pytest.approx(1 / 3)
    # time beyond 250 ms: /a (300-250)+(600-250) = 400 ms, /b 450-250 = 200 ms, in one hour
    assert a["slo_excess_s_per_h"] == pytest.approx(0.4)
    assert b["slo_excess_s_per_h"] == pytest.approx(0.2)
    assert a["slo_estimate"] is False and a["slo_source"] == "samples"
    # one failure an hour at 5 s
    assert b["errors_per_h"] == pytest.approx(1.0)
    assert b["errors_s_per_h"] == pytest.approx(5.0)
    assert b["score_s_per_h"] == pytest.approx(5.2)
    assert a["score_s_per_h"] == pytest.approx(0.4)
    assert (b["rank"], b["driver"], a["rank"], a["driver"]) == (1, "errors", 2, "SLO excess")
    assert "avoids about 250 failed requests per 1,000" in b["gain"]


def test_groups_scenarios_and_statuses_from_samples(k6_run: Run) -> None:
    result = bottlenecks(k6_run, slo=250, error_cost_s=10.0)
    assert row(result, "::checkout", "group")["score_s_per_h"] == pytest.approx(10.2)
    assert row(result, "::browse", "group")["score_s_per_h"] == pytest.approx(0.4)
    # scenario main: 600 ms (350 beyond) and POST /b's four requests (200 beyond, one failure)
    main = row(result, "main", "scenario")
    assert main["count"] == 5
    assert main["slo_excess_s_per_h"] == pytest.approx(0.55)
    assert main["score_s_per_h"] == pytest.approx(10.55)
    assert row(result, "warm", "scenario")["slo_excess_s_per_h"] == pytest.approx(0.05)
    status = row(result, "POST /b: HTTP 500", "status")
    assert status["errors_per_h"] == pytest.approx(1.0)
    assert status["score_s_per_h"] == pytest.approx(10.0)
    assert result.table["kind"].unique(maintain_order=True).to_list() == [
        "endpoint", "group", "scenario", "status"]


def test_a_scenario_that_is_the_whole_run_is_no_item(store: perfstats.Store) -> None:
    run = make_run(store, "one", grain="samples", derive=True,
                   samples=k6_samples(K6_ROWS, "default"))
    kinds = bottlenecks(run).table["kind"].unique().to_list()
    assert "scenario" not in kinds and "group" in kinds


def test_percentile_slo_gain_is_a_uniform_speed_up(k6_run: Run) -> None:
    a = row(bottlenecks(k6_run, slo="p95<250"), "GET /a")
    # k6 p95 of 100, 200, 300, 600: 300 + 0.85 x 300 = 555 ms; mean 300 ms
    assert a["p_slo_ms"] == pytest.approx(555.0)
    assert a["gain_s_per_1k"] == pytest.approx((1 - 250 / 555) * 300)
    assert a["gain"].startswith("bringing p95 of GET /a to 250 ms (now 555 ms) saves about 165 s")


def test_regression_factor_counts_only_real_changes() -> None:
    parts = pl.DataFrame({
        "kind": "endpoint", "item": ["A", "B", "C", "D"], "endpoint": ["A", "B", "C", "D"],
        "count": [1000, 1000, 2000, 1000], "failures": [0, 30, 0, 0],
        "total_ms": [100_000.0, 50_000.0, 40_000.0, 10_000.0], "excess_ms": None,
        "slo_source": None})
    regression = pl.DataFrame({
        "endpoint": ["A", "B", "C", "D"], "base_mean": [80.0, 50.0, 15.0, 9.5],
        "delta_mean_ms": [20.0, 0.0, 5.0, 0.5], "delta_mean_low": [10.0, -1.0, 1.0, 0.1],
        "delta_mean_high": [30.0, 1.0, 11.0, 0.9],
        "mean_status": ["regression", "ok", "inconclusive", "ok"],
        "base_error_rate": [0.0, 0.01, 0.0, 0.0], "delta_error_rate": [0.0, 0.02, 0.0, 0.0],
        "delta_error_low": [-0.001, 0.005, -0.001, -0.001],
        "delta_error_high": [0.001, 0.035, 0.001, 0.001],
        "error_status": ["ok", "regression", "ok", "ok"]})
    table = impact_table(parts, hours=1.0, regression=regression)
    a, b, c, d = (table.filter(pl.col("item") == x).row(0, named=True) for x in "ABCD")
    # A: +20 ms x 1000 requests/h = 20 s/h (interval 10-30)
    assert (a["extra_wait_s_per_h"], a["extra_wait_ci_low"], a["extra_wait_ci_high"]) == \
        pytest.approx((20.0, 10.0, 30.0))
    assert a["score_s_per_h"] == pytest.approx(20.0)
    assert a["driver"] == "latency regression"
    assert a["gain_s_per_1k"] == pytest.approx(20.0)
    assert "mean 80 -> 100 ms" in a["gain"]
    # B: 30 errors/h, 20 of them new (2 points x 1000/h); new ones move to the regression factor
    assert b["new_errors_per_h"] == pytest.approx(20.0)
    assert (b["new_errors_ci_low"], b["new_errors_ci_high"]) == pytest.approx((5.0, 35.0))
    assert b["errors_s_per_h"] == pytest.approx(50.0)
    assert b["error_regression_s_per_h"] == pytest.approx(100.0)
    assert b["score_s_per_h"] == pytest.approx(150.0)
    assert b["driver"] == "error regression"
    assert "back to 1% (now 3%)" in b["gain"]
    # C: +5 ms x 2000/h = 10 s/h, interval above zero, but compare calls it inconclusive (not
    # beyond its tolerance with confidence): reported, not scored
    assert c["extra_wait_s_per_h"] == pytest.approx(10.0)
    assert c["score_s_per_h"] == 0.0
    assert c["driver"] == "time share"
    # D: +0.5 ms, above zero but inside compare's tolerance (status ok: equivalent): not scored
    assert d["extra_wait_s_per_h"] == pytest.approx(0.5)
    assert d["score_s_per_h"] == 0.0
    assert table["item"].to_list() == ["B", "A", "C", "D"]


def test_regression_without_interval_counts_what_compare_flags() -> None:
    parts = pl.DataFrame({"kind": "endpoint", "item": ["A", "B"], "endpoint": ["A", "B"],
                          "count": [3600, 3600], "failures": [0, 0],
                          "total_ms": [3600 * 60.0, 3600 * 60.0], "excess_ms": None,
                          "slo_source": None})
    regression = pl.DataFrame({"endpoint": ["A", "B"], "base_mean": [50.0, 50.0],
                               "delta_mean_ms": [10.0, 10.0], "delta_mean_low": [None, None],
                               "delta_mean_high": [None, None],
                               "mean_status": ["regression", "ok"]})
    table = impact_table(parts, hours=2.0, regression=regression)
    a, b = (table.filter(pl.col("item") == x).row(0, named=True) for x in "AB")
    # 3600 requests in 2 h = 1800/h; +10 ms each = 18 s/h
    assert a["latency_regression_s_per_h"] == pytest.approx(18.0)
    assert b["latency_regression_s_per_h"] == 0.0
    assert a["extra_wait_ci_low"] is None


def test_error_kinds_split_new_errors_against_the_baseline_share() -> None:
    parts = pl.DataFrame({"kind": "endpoint", "item": ["B"], "endpoint": ["B"], "count": [1000],
                          "failures": [30], "total_ms": [50_000.0], "excess_ms": None,
                          "slo_source": None})
    errors = pl.DataFrame({"kind": ["status", "error"], "item": ["B: HTTP 500", "B: timeout"],
                           "endpoint": "B", "errors": [25, 5], "count": 1000,
                           "base_share": [0.01, 0.005]})
    regression = pl.DataFrame({"endpoint": ["B"], "delta_error_rate": [0.015],
                               "delta_error_low": [0.004], "error_status": ["regression"]})
    table = impact_table(parts, hours=1.0, regression=regression, errors=errors)
    http = table.filter(pl.col("item") == "B: HTTP 500").row(0, named=True)
    timeout = table.filter(pl.col("item") == "B: timeout").row(0, named=True)
    # HTTP 500: 25 now, 0.01 x 1000 = 10 expected from the baseline share: 15 new
    assert http["new_errors_per_h"] == pytest.approx(15.0)
    assert http["error_regression_s_per_h"] == pytest.approx(75.0)
    assert http["errors_s_per_h"] == pytest.approx(50.0)
    assert http["driver"] == "error regression"
    # timeout: 5 now, 5 expected: nothing new
    assert timeout["new_errors_per_h"] == pytest.approx(0.0)
    assert timeout["driver"] == "errors"
    assert (http["rank"], timeout["rank"]) == (1, 1)  # ranked within their own kinds


def test_excess_from_histogram_buckets(store: perfstats.Store) -> None:
    # Locust-style buckets {10: 50, 20: 45, 150: 4, 3400: 1}; beyond 100 ms: 4 x 50 + 3300
    histograms = pl.DataFrame({"endpoint": "GET /h", "start": None, "bucket_ms": [10.0, 20, 150,
                                                                                  3400],
                               "count": [50, 45, 4, 1]}).with_columns(
        pl.col("start").cast(pl.Datetime("us", "UTC")))
    summaries = pl.DataFrame({"endpoint": ["GET /h", "ALL"], "count": [100, 100],
                              "failures": [0, 0], "mean": [51.0, 51.0], "min": [10.0, 10.0],
                              "p50": [20.0, 20.0], "p90": [20.0, 20.0], "p95": [150.0, 150.0],
                              "p99": [3400.0, 3400.0], "max": [3400.0, 3400.0],
                              "percentiles": "histogram"})
    run = make_run(store, "hist", grain="histograms", histograms=histograms, summaries=summaries)
    h = row(bottlenecks(run, slo="p95<100"), "GET /h")
    assert h["slo_excess_s_per_h"] == pytest.approx(3.5)
    assert (h["slo_estimate"], h["slo_source"]) == (True, "histogram")
    assert excess_from_histogram(np.array([150.0]), np.array([4]), np.array([100.0])) == 200.0


def test_excess_from_percentile_windows(store: perfstats.Store) -> None:
    knots = np.array([[0, 50, 90, 95, 99, 100.0], [0, 50, 70, 80, 100, 110.0]])
    # above 90 ms: 0.05 x 2.5 + 0.04 x 7 + 0.01 x 9.5 = 0.5 ms per request;
    # second row: crossing (100-90)^2 / (2 x 20) x 0.04 = 0.1, plus 0.01 x 15 = 0.25
    assert excess_from_percentiles(knots, np.array([90.0, 90.0])) == pytest.approx([0.5, 0.25])
    # a missing interior knot is interpolated: p90 between p50 (0.5) and p95 (0.95)
    gappy = np.array([[0, 50, np.nan, 95, 99, 100.0]])
    assert excess_from_percentiles(gappy, np.array([90.0])) == pytest.approx(
        excess_from_percentiles(np.array([[0, 50, 90, 95, 99, 100.0]]), np.array([90.0])))
    assert np.isnan(excess_from_percentiles(np.array([[np.nan, 50, 90, 95, 99, 100.0]]),
                                            np.array([90.0]))[0])
    windows = pl.DataFrame({
        "endpoint": "GET /w", "start": [T0, T0 + timedelta(seconds=10)], "length_s": 10.0,
        "count": [10, 30], "failures": 0, "min": 0.0, "mean": [40.0, 45.0], "p50": 50.0,
        "p90": [90.0, 70.0], "p95": [95.0, 80.0], "p99": [99.0, 100.0], "max": [100.0, 110.0],
        "percentiles": "tool-window"})
    summaries = pl.DataFrame({"endpoint": ["GET /w"], "count": [40], "failures": [0],
                              "mean": [43.75], "min": [0.0], "p50": [50.0], "p90": [80.0],
                              "p95": [90.0], "p99": [100.0], "max": [110.0],
                              "percentiles": "tool-summary"})
    run = make_run(store, "win", grain="windows", windows=windows, summaries=summaries)
    w = row(bottlenecks(run, slo=90), "GET /w")
    # 10 x 0.5 + 30 x 0.25 = 12.5 ms in one hour
    assert w["slo_excess_s_per_h"] == pytest.approx(0.0125)
    assert (w["slo_estimate"], w["slo_source"]) == (True, "windows")
    assert "estimated from per-window percentile summaries" in " ".join(
        bottlenecks(run, slo=90).warnings)


def test_summary_only_run_uses_the_summary_percentiles(store: perfstats.Store) -> None:
    summaries = pl.DataFrame({"endpoint": ["GET /s"], "count": [100], "failures": [0],
                              "mean": [60.0], "min": [0.0], "p50": [50.0], "p90": [90.0],
                              "p95": [95.0], "p99": [99.0], "max": [100.0],
                              "percentiles": "tool-summary"})
    run = make_run(store, "sum", grain="summary", summaries=summaries)
    s = row(bottlenecks(run, slo=90), "GET /s")
    assert s["slo_excess_s_per_h"] == pytest.approx(100 * 0.5 / 1000)
    assert s["slo_source"] == "summary"


def test_no_slo_no_baseline_ranks_by_errors_then_time_share(k6_run: Run) -> None:
    result = bottlenecks(k6_run)
    assert result.table.filter(pl.col("kind") == "endpoint")["item"].to_list() == [
        "POST /b", "GET /a"]
    a = row(result, "GET /a")
    assert a["slo_excess_s_per_h"] is None and a["score_s_per_h"] == 0.0
    assert a["driver"] == "time share"
    assert a["gain"].startswith("GET /a holds 67% of all waiting time; making it 2x faster")
    assert any("no SLO" in n for n in result.warnings)
    assert any("no baseline" in n for n in result.warnings)


def test_bad_arguments() -> None:
    parts = pl.DataFrame({"kind": "endpoint", "item": ["A"], "endpoint": ["A"], "count": [1],
                          "failures": [0], "total_ms": [1.0], "excess_ms": None,
                          "slo_source": None})
    with pytest.raises(ValueError, match="hours"):
        impact_table(parts, hours=0.0)
    with pytest.raises(ValueError, match="error_cost_s"):
        impact_table(parts, hours=1.0, error_cost_s=-1.0)


# ----------------------------------------------------------------------------- on data/

X_MAX = {"k6": 113.7, "artillery": 113.7, "locust": 135.6}
"""Model maximum throughput of the ramp runs' server for each tool's request mix (req/s), from
the data manifest (shared/data/MANIFEST.md, "ramp: capacity mode")."""


def test_k6_slo_excess_is_exact(sample_runs: SampleRuns) -> None:
    run = sample_runs["k6/candidate"]
    result = bottlenecks(run, slo={"*": "p95<150", "POST /api/quote": "p99<100"})
    samples = run.samples()
    hours = run.meta["duration_s"] / 3600
    threshold = pl.when(pl.col("endpoint") == "POST /api/quote").then(100.0).otherwise(150.0)
    expected = samples.group_by("endpoint").agg(
        ((pl.col("value") - threshold).clip(lower_bound=0).sum() / 1000 / hours).alias("excess"))
    got = result.table.filter(pl.col("kind") == "endpoint").join(expected, left_on="item",
                                                                 right_on="endpoint")
    assert got.height == 6
    assert got["slo_excess_s_per_h"].to_list() == pytest.approx(got["excess"].to_list(),
                                                                rel=1e-9)
    assert got["slo_source"].unique().to_list() == ["samples"]
    quote = row(result, "POST /api/quote")
    assert quote["slo"] == "p99 < 100 ms" and quote["slo_excess_s_per_h"] > 500
    # groups are the sums of their endpoints: ::checkout = quote + bookings
    checkout = row(result, "::checkout", "group")
    parts = got.filter(pl.col("item").is_in(["POST /api/quote", "POST /api/bookings"]))
    assert checkout["slo_excess_s_per_h"] == pytest.approx(parts["excess"].sum())
    assert checkout["count"] == parts["count"].sum() == 1928


@pytest.mark.parametrize("tool", ["k6", "artillery", "locust"])
def test_steady_runs_have_no_patterns_and_ramps_a_capacity_limit(
        sample_runs: SampleRuns, tool: str) -> None:
    for variant in ("baseline", "candidate"):
        assert bottlenecks(sample_runs[f"{tool}/{variant}"]).patterns.is_empty()
    ramp = sample_runs[f"{tool}/ramp"]
    found = bottlenecks(ramp).patterns
    cap = found.filter((pl.col("endpoint") == "ALL") & (pl.col("pattern") == "capacity limit"))
    assert cap.height == 1
    evidence = cap["evidence"][0]
    plateau = float(re.search(r"levelled off at about ([\d.]+) req/s", evidence)[1])
    peak = float(re.search(r"\(peak ([\d.]+)\)", evidence)[1])
    # the server measured its plateau a few to ~15 % under the model maximum
    assert 0.75 * X_MAX[tool] < plateau <= peak < 1.05 * X_MAX[tool]
    # the plateau starts in the 3rd to 5th load step (40-100 s into the run)
    offset = (cap["start"][0] - ramp.meta["started_at"]).total_seconds()
    assert 40 < offset < 110
    assert not found.filter(pl.col("pattern") == "rising latency").height


@pytest.mark.parametrize("tool", ["k6", "artillery", "locust"])
@pytest.mark.parametrize("slo", [None, "p95<500", "p95<150"])
@pytest.mark.usefixtures("compared_once")
def test_injected_regressions_rank_first_and_second(sample_runs: SampleRuns,
                                                    tool: str, slo: str | None) -> None:
    # data/*/candidate: POST /api/quote latency +30 %, POST /api/bookings errors 1 % -> 4 %
    baseline = sample_runs[f"{tool}/baseline"]
    candidate = sample_runs[f"{tool}/candidate"]
    result = bottlenecks(candidate, baseline=baseline, slo=slo)
    endpoints = result.table.filter(pl.col("kind") == "endpoint")
    top = endpoints.head(2).rows_by_key("item", named=True, unique=True)
    quote_name = next(k for k in top if k.endswith("/api/quote"))
    bookings_name = next(k for k in top if k.endswith("/api/bookings"))
    quote, bookings = top[quote_name], top[bookings_name]
    # A "regression" driver means what compare means.
    gate = sample_runs.compared(f"{tool}/baseline", f"{tool}/candidate").checks
    status = dict(zip(zip(gate["endpoint"], gate["metric"], strict=True), gate["status"],
                      strict=True))
    assert status[(quote_name, "mean")] == "regression"
    assert quote["driver"] == "latency regression"
    assert "undoing the slowdown of" in quote["gain"]
    if status[(bookings_name, "error_rate")] == "regression":
        assert bookings["driver"] == "error regression"
        assert "bringing the error rate of" in bookings["gain"]
    else:
        assert bookings["driver"] == "errors" and bookings["error_regression_s_per_h"] == 0
        assert any(f"{bookings_name} error rate" in n for n in result.warnings
                   if "inconclusive" in n)
    # the comparison's intervals exclude "no change" for both
    assert quote["extra_wait_ci_low"] > 0 and bookings["new_errors_ci_low"] > 0
    # and nothing else comes close: the third item loses under a tenth of the second
    assert endpoints["score_s_per_h"][2] < 0.1 * endpoints["score_s_per_h"][1]
    assert result.baseline_id == baseline.run_id


def test_locust_estimates_from_its_histogram(sample_runs: SampleRuns) -> None:
    run = sample_runs["locust/candidate"]
    result = bottlenecks(run, slo="p95<150")
    quote = row(result, "POST /api/quote")
    assert (quote["slo_source"], quote["slo_estimate"]) == ("histogram", True)
    # POST /api/quote's p95 is about 220 ms: beyond 150 ms in roughly a tenth of its requests
    assert 100 < quote["slo_excess_s_per_h"] < 2000
    assert any("histogram" in n for n in result.warnings)
    assert row(result, "POST /api/bookings")["errors_per_h"] > 0


# --------------------------------------------------------------------------- result and CLI


def test_result_views(k6_run: Run) -> None:
    result = bottlenecks(k6_run, slo=250)
    data = result.to_dict()
    assert data["run_id"] == "k6run" and data["error_cost_s"] == 5.0
    assert [i["item"] for i in data["items"]][:2] == ["POST /b", "GET /a"]
    assert data["slos"] == [{"endpoint": "*", "metric": "max", "threshold_ms": 250.0}]
    markdown = result.to_markdown()
    assert markdown.startswith("## Bottlenecks of run k6run")
    assert "| 1 | endpoint | POST /b | 5.2 | errors |" in markdown
    assert "<b>Bottlenecks of run k6run</b>" in result._repr_html_()
    backlog = result.backlog()
    assert [b["rank"] for b in backlog if b["kind"] == "endpoint"] == [1, 2]
    first = backlog[0]
    assert first["item"] == "POST /b" and first["driver"] == "errors"
    assert first["drivers"][0]["factor"] == "errors"
    assert [d["factor"] for d in first["drivers"]] == ["errors", "SLO excess"]
    assert "HTTP 500 x 1" in first["next_step"]
    spec = result.chart().to_dict()
    assert spec["layer"][0]["encoding"]["y"]["sort"] == ["POST /b", "GET /a"]
    assert spec["layer"][0]["encoding"]["x"]["title"] == "user-seconds lost per hour of traffic"
    assert result.top(1)["item"].to_list() == ["POST /b", "::checkout", "main", "POST /b: HTTP 500"]


def test_a_chart_of_nothing_lost_says_why(sample_runs: SampleRuns) -> None:
    run = sample_runs["k6/smoke"]
    assert run.summary()["failures"].sum() == 0
    quiet = bottlenecks(run).chart().to_dict()["title"]
    assert quiet["subtitle"] == ("every item scores 0 s/h: no failed request; no SLO given "
                                 "(--slo or [compare.slo]); no baseline to find regressions "
                                 "against")
    strict = bottlenecks(run, slo="p95<1").chart().to_dict()["title"]
    assert "subtitle" not in strict


def test_cli_bottlenecks(stored, tmp_path) -> None:
    from click.testing import CliRunner

    from perfstats.cli import cli

    # A stored run (the doc examples of docs/bottlenecks.md give the command paths).
    db, (run,) = stored("artillery/candidate")
    backlog = tmp_path / "backlog.json"
    result = CliRunner().invoke(cli, [
        "bottlenecks", run, "--slo", "p95<150", "--slo", "/api/quote=p95<100", "--top", "3",
        "--format", "json", "--backlog", str(backlog), "--db", db], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    endpoints = [i for i in data["items"] if i["kind"] == "endpoint"]
    assert [i["item"] for i in endpoints] == ["/api/bookings", "/api/quote", "/api/auth/login"]
    assert endpoints[1]["slo"] == "p95 < 100 ms"
    items = json.loads(backlog.read_text())
    assert items[0]["item"] == "/api/bookings" and items[0]["next_step"]
    markdown = CliRunner().invoke(cli, ["bottlenecks", run, "--format", "markdown", "--db", db])
    assert markdown.exit_code == 0 and "| rank | kind | item |" in markdown.stdout
    bad = CliRunner().invoke(cli, ["bottlenecks", run, "--slo", "p95>150", "--db", db])
    assert bad.exit_code == 2
    assert bad.stderr.startswith("perfstats: error: bad SLO")


def test_slo_none_takes_the_project_compare_slos(k6_run: Run, tmp_path, monkeypatch) -> None:
    (tmp_path / "perfstats.toml").write_text(
        '[compare.slo]\n"*" = "p(95)<800, rate<0.01"\n"GET /a" = "p95<250, p99<400"\n')
    monkeypatch.chdir(tmp_path)
    result = bottlenecks(k6_run)
    assert result.slos == (LatencySlo(800.0, "p95", "*"), LatencySlo(250.0, "p95", "GET /a"))
    assert row(result, "GET /a")["slo_excess_s_per_h"] == pytest.approx(0.4)
    assert row(result, "POST /b")["slo_excess_s_per_h"] == 0.0
    assert any(n.startswith("SLOs from ") and n.endswith("perfstats.toml") for n in result.warnings)
    # an explicit SLO wins over the file
    assert bottlenecks(k6_run, slo=100).slos == (LatencySlo(100.0, "max", "*"),)


@pytest.mark.usefixtures("compared_once")
def test_harness_custom_metrics_rank_with_the_injected_changes_on_top(
        harness, sample_runs: SampleRuns) -> None:
    # data/k6-harness: the candidate has quote +25 % and bookings errors 1 % -> 3 %.
    baseline, candidate = harness["baseline"], harness["candidate"]
    result = bottlenecks(candidate, baseline=baseline)
    table = result.table
    gate = sample_runs.compared("k6-harness/baseline", "k6-harness/candidate").checks
    # The endpoints' regression comes from the whole endpoint's check, counted once: the
    # per-scenario checks of the same endpoint do not multiply it.
    quote = row(result, "POST /api/quote")
    mean = gate.filter((pl.col("endpoint") == "POST /api/quote") & (pl.col("kind") == "http")
                       & (pl.col("slice") == "") & (pl.col("metric") == "mean")).row(0, named=True)
    rate = quote["count"] / result.hours
    assert quote["extra_wait_s_per_h"] == pytest.approx(
        (mean["candidate"] - mean["baseline"]) * rate / 1000.0)
    assert quote["latency_regression_s_per_h"] == quote["extra_wait_s_per_h"]
    # A scenario's share of an endpoint takes compare's check of that slice: POST /api/quote's
    # mean is a regression in quote_flow (and, with the testing design of docs/compare.md, in
    # booking_flow too); a scenario has a latency regression exactly where compare says so.
    slices = gate.filter((pl.col("endpoint") == "POST /api/quote") & (pl.col("metric") == "mean"))
    status = dict(zip(slices["slice"], slices["status"], strict=True))
    assert status["scenario:quote_flow"] == "regression"
    for scenario in ("quote_flow", "booking_flow"):
        regressed = row(result, scenario, "scenario")["latency_regression_s_per_h"] > 0
        assert regressed == (status[f"scenario:{scenario}"] == "regression")
    # Every kind names its metric kind; custom kinds come after the HTTP ones.
    assert set(table["metric_kind"]) == {"http", "trend", "rate", "check"}
    kinds = table["kind"].unique(maintain_order=True).to_list()
    assert kinds == ["endpoint", "group", "scenario", "status", "trend", "trend by scenario",
                     "rate", "check"]
    # Custom Trends: quote_duration (the injected slowdown) first, a regression as compare says,
    # and marked as restating POST /api/quote (the same requests, counted once).
    trends = table.filter(pl.col("kind") == "trend")
    first = trends.row(0, named=True)
    assert first["item"] == "quote_duration" and first["restates"] == "POST /api/quote"
    assert first["mean_status"] == "regression" and first["latency_regression_s_per_h"] > 0
    assert first["latency_regression_s_per_h"] == pytest.approx(
        quote["latency_regression_s_per_h"], rel=1e-6)
    # Nothing unchanged is called a regression.
    unchanged = trends.filter(pl.col("item").is_in(["deal_browse_duration", "booking_duration"]))
    assert (unchanged["latency_regression_s_per_h"] == 0).all()
    sliced = gate.filter((pl.col("endpoint") == "quote_duration") & (pl.col("slice") != "")
                         & (pl.col("metric") == "mean") & (pl.col("status") == "regression"))
    assert "scenario:quote_flow" in sliced["slice"].to_list()
    assert sorted(table.filter(pl.col("kind") == "trend by scenario").filter(
        pl.col("latency_regression_s_per_h") > 0)["slice"].to_list()) == sorted(sliced["slice"])
    # The k6 thresholds on the custom Trends give their SLO excess, exactly from the samples.
    login = row(result, "login_duration", "trend")
    values = candidate.samples("login_duration")["value"]
    assert login["slo_ms"] == 150.0 and login["slo_source"] == "samples"
    assert login["slo_excess_s_per_h"] == pytest.approx(
        (values - 150.0).clip(lower_bound=0).sum() / 1000.0 / result.hours)
    # Failing Rates and checks: booking_success_rate (24 bad of 998) restates POST /api/bookings.
    success = row(result, "booking_success_rate", "rate")
    assert (success["failures"], success["count"]) == (24, 998)
    assert success["errors_s_per_h"] + success["error_regression_s_per_h"] == pytest.approx(
        24 / result.hours * 5.0)
    # compare calls the rise (8 -> 24 of 998) a regression: the 16 new failures are its driver.
    assert success["error_regression_s_per_h"] == pytest.approx((24 - 8) / result.hours * 5.0)
    assert success["restates"] == "POST /api/bookings"
    checks = table.filter(pl.col("kind") == "check")
    assert set(checks["item"]) == {"::checkout::booking confirmed",
                                   "::checkout::booking status is 200"}
    assert set(checks["restates"]) == {"POST /api/bookings"}
    assert not table.filter(pl.col("kind").is_in(["rate", "check"]) & (pl.col("failures") == 0)
                            ).height
    assert any("never added" in w and "quote_duration = POST /api/quote" in w
               for w in result.warnings)
    body = result.to_dict()
    assert body["warnings"] == list(result.warnings) and "notes" not in body
    assert {"metric_kind", "slice", "restates"} <= set(body["items"][0])
    entry = next(e for e in result.backlog() if e["item"] == "quote_duration")
    assert entry["restates"] == "POST /api/quote" and "same requests" in entry["next_step"]
    assert "per 1,000 evaluations" in row(result, "booking_success_rate", "rate")["gain"]


@pytest.mark.usefixtures("compared_once")
def test_the_aa_pair_of_the_harness_scores_no_regression(sample_runs: SampleRuns) -> None:
    # data/k6/aa-rerun: the harness script twice against the same server (only its seed differs).
    result = bottlenecks(sample_runs["k6/aa-rerun/second"],
                         baseline=sample_runs["k6/aa-rerun/first"])
    assert set(result.table["kind"]) >= {"endpoint", "trend", "rate", "check"}
    assert (result.table["regression_s_per_h"].fill_null(0.0) == 0).all()
    assert "regression" not in set(result.table["driver"].str.split(" ").list.last())


def test_artillery_custom_histogram_is_ranked_and_restates_its_endpoint(
        sample_runs: SampleRuns) -> None:
    # data/artillery-harness: quote_time wraps each quote; compare finds the +25 % inconclusive
    # on these runs, so it is reported, not scored.
    result = bottlenecks(sample_runs["artillery-harness/candidate"],
                         baseline=sample_runs["artillery-harness/baseline"],
                         slo={"*": "p95<500", "quote_time": "p95<200"})
    quote = row(result, "quote_time", "trend")
    assert quote["restates"] == "/api/quote" and quote["metric_kind"] == "trend"
    assert quote["slo_ms"] == 200.0 and quote["slo_source"] == "summary"
    assert quote["slo_excess_s_per_h"] > 0 and quote["slo_estimate"]
    assert quote["mean_status"] in ("inconclusive", "regression")
    # The metric's own SLO is not applied to the endpoints, and '*' not to the metric.
    assert row(result, "/api/quote")["slo_ms"] == 500.0


def test_custom_rates_by_direction_and_a_trend_by_hand(store: perfstats.Store) -> None:
    # One hour; GET /a as in K6_ROWS, plus custom metrics: a Trend timing each GET /a, a Rate
    # where a true is bad (payment_failed), one where a false is bad (login_success_rate) and
    # one of unknown direction (cache_ratio), left out with a warning.
    http = k6_samples(K6_ROWS, "main")
    t = [T0 + timedelta(seconds=i) for i in range(4)]
    custom = pl.DataFrame({
        "metric": ["page_duration"] * 4 + ["payment_failed"] * 4 + ["login_success_rate"] * 4
        + ["cache_ratio"] * 4,
        "ts": t * 4, "value": [100.0, 200.0, 300.0, 600.0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 0, 1, 0],
        "scenario": "main"})
    declared = pl.DataFrame({"metric": ["page_duration", "payment_failed", "login_success_rate",
                                        "cache_ratio"],
                             "type": ["trend", "rate", "rate", "rate"],
                             "contains": ["time", "default", "default", "default"]})
    thresholds = pl.DataFrame({"metric": ["page_duration"], "expression": ["p(95)<250"],
                               "ok": [False]})
    run = make_run(store, "custom", grain="samples", derive=True,
                   samples=pl.concat([http, custom], how="diagonal_relaxed"), metrics=declared,
                   thresholds=thresholds)
    result = bottlenecks(run)
    page = row(result, "page_duration", "trend")
    # Threshold 250 ms (the run's own p(95)<250): 50 + 350 ms beyond it in the hour.
    assert page["slo_ms"] == 250.0 and page["slo_excess_s_per_h"] == pytest.approx(0.4)
    assert page["restates"] == "GET /a" and page["score_s_per_h"] == pytest.approx(0.4)
    failed = row(result, "payment_failed", "rate")
    assert (failed["failures"], failed["count"]) == (1, 4)
    assert failed["score_s_per_h"] == pytest.approx(5.0)
    login = row(result, "login_success_rate", "rate")
    assert login["failures"] == 1 and login["error_rate"] == pytest.approx(0.25)
    assert "cache_ratio" not in result.table["item"].to_list()
    assert any("cache_ratio" in w and "worse_when" in w for w in result.warnings)
    # An SLO keyed by the metric's name wins over its thresholds; '*' stays the endpoints'.
    keyed = bottlenecks(run, slo={"*": "p95<1000", "page_duration": "p95<500"})
    assert row(keyed, "page_duration", "trend")["slo_excess_s_per_h"] == pytest.approx(0.1)
    assert row(keyed, "GET /a")["slo_ms"] == 1000.0


def test_a_failure_without_a_request_is_priced_per_hour(sample_runs: SampleRuns) -> None:
    # data/locust-distributed: exceptions raised in tasks have no endpoint and no requests.
    result = bottlenecks(sample_runs["locust-distributed/candidate"])
    loose = result.table.filter(pl.col("item").str.starts_with("(no endpoint)"))
    assert loose.height > 0
    for found in loose.iter_rows(named=True):
        assert found["score_s_per_h"] == pytest.approx(found["errors_per_h"] * 5.0)
        assert f"{found['errors_per_h']:,.0f} failures per hour" in found["gain"]
    grpc = result.table.filter(pl.col("kind") == "endpoint").filter(
        pl.col("item").str.starts_with("grpc "))
    assert grpc["metric_kind"].to_list() == ["grpc"]


@pytest.mark.usefixtures("compared_once")
def test_cli_table_is_one_line_per_item_with_the_gains_under_it(stored, sample_runs: SampleRuns,
                                                                monkeypatch) -> None:
    from click.testing import CliRunner

    from perfstats.cli import cli

    monkeypatch.setenv("COLUMNS", "100")
    db, (candidate, baseline) = stored("k6/candidate", "k6/baseline")
    args = ["bottlenecks", candidate, "--baseline", baseline, "--top", "3", "--db", db]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= 100
    found = perfstats.bottlenecks(sample_runs["k6/candidate"],
                                  baseline=sample_runs["k6/baseline"]).display_frame(3)
    start = lines.index("gain of each fix:")
    rows = [line for line in lines[:start] if line.strip()[:1].isdigit()]
    assert len(rows) == found.height  # no row wraps
    gains = " ".join(lines[start + 1:]).replace("\n", " ")
    for kind, rank, gain in found.select("kind", "rank", "gain").iter_rows():
        assert f"- {kind} {rank}: {' '.join(gain.split()[:4])}" in gains
        assert " ".join(gain.split()) in " ".join(gains.split())
