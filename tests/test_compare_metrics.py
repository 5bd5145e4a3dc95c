"""compare on everything a harness records: custom Trends, Rates, Counters, checks, scenarios.

Real k6 1.1 runs of a four-scenario harness (k6-harness: the candidate has POST /api/quote +25 %
at the server and POST /api/bookings errors 1 % -> 3 %, nothing else).
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from helpers import HARNESS, SampleRuns

import perfstats
from perfstats.comparison.series import direction_of, inferred_direction
from perfstats.config import compare_config

QUOTE = {"POST /api/quote", "quote_duration"}
QUOTE_FLOWS = {"checkout_duration"}
"""Custom Trends of the harness that time a flow containing the quote (the k6 script's checkout
group: login, quote, booking): the quote change is in them too."""
BOOKINGS = {"POST /api/bookings", "booking_success_rate", "booking_errors", "bookings_created",
            "::checkout::booking status is 200", "::checkout::booking confirmed"}




@pytest.fixture(scope="module")
def result(sample_runs: SampleRuns):
    return sample_runs.compared("k6-harness/baseline", "k6-harness/candidate")


def _rows(result, status: str) -> set[tuple[str, str, str]]:
    frame = result.checks.filter(pl.col("status") == status)
    return set(frame.select("endpoint", "slice", "metric").iter_rows())


def _row(result, endpoint: str, metric: str, slice_: str = "") -> dict:
    rows = result.checks.filter((pl.col("endpoint") == endpoint) & (pl.col("metric") == metric)
                                & (pl.col("slice") == slice_))
    assert rows.height == 1, (endpoint, metric, slice_)
    return rows.row(0, named=True)


def test_every_kind_and_scenario_slice_is_a_check(result):
    kinds = dict(result.checks.group_by("kind").len().iter_rows())
    assert set(kinds) == {"http", "trend", "rate", "check", "counter"}
    # 5 custom Trends x p50/p95/p99/mean, plus quote_duration in its two scenarios.
    trends = result.checks.filter(pl.col("kind") == "trend")
    assert set(trends["endpoint"]) == {"login_duration", "quote_duration", "booking_duration",
                                       "checkout_duration", "deal_browse_duration"}
    assert trends.height == (5 + 2) * 4
    # Rates: the three custom ones, k6's checks, quote_success_rate in its two scenarios.
    rates = result.checks.filter(pl.col("kind") == "rate")
    assert sorted(zip(rates["endpoint"], rates["slice"], strict=True)) == sorted([
        ("booking_success_rate", ""), ("checks", ""), ("login_success_rate", ""),
        ("quote_success_rate", ""), ("quote_success_rate", "scenario:booking_flow"),
        ("quote_success_rate", "scenario:quote_flow")])
    assert result.checks.filter(pl.col("kind") == "check").height == 9  # one per (group, check)
    counters = result.checks.filter(pl.col("kind") == "counter")
    assert set(counters["endpoint"]) == {"bookings_created", "booking_errors"}
    assert set(counters["metric"]) == {"per_second"}
    # Scenario slices: an endpoint called from two scenarios gets one per scenario; a scenario
    # with several endpoints gets its whole; one-endpoint-one-scenario is not repeated.
    slices = result.checks.filter((pl.col("kind") == "http") & (pl.col("slice") != ""))
    assert set(zip(slices["endpoint"], slices["slice"], strict=True)) == {
        ("POST /api/quote", "scenario:quote_flow"), ("POST /api/quote", "scenario:booking_flow"),
        ("ALL", "scenario:booking_flow"), ("ALL", "scenario:browse_flow")}
    # Everything is under the one testing design: every tested check has an adjusted p-value.
    tested = result.checks.filter(pl.col("p_value").is_not_null())
    assert tested["p_adjusted"].null_count() == 0 and tested.height > 80


def test_quote_regression_is_found_everywhere_it_shows(result):
    assert result.verdict == "NO-GO"
    flagged = _rows(result, "regression")
    for endpoint in QUOTE:
        for slice_ in ("", "scenario:quote_flow"):
            assert (endpoint, slice_, "p50") in flagged or (endpoint, slice_, "mean") in flagged
        # The booking_flow slice restates the endpoint and is gated by it (docs/compare.md, the
        # testing design): beyond the tolerance, flagged or named as not significant.
        row = result.checks.filter((pl.col("endpoint") == endpoint)
                                   & (pl.col("slice") == "scenario:booking_flow")
                                   & (pl.col("metric") == "p50")).row(0, named=True)
        assert row["status"] == "regression" or row["note"].startswith("beyond the tolerance")
    # The custom Trend is k6's own timing of the same request: the same figures.
    trend, http = _row(result, "quote_duration", "p50"), _row(result, "POST /api/quote", "p50")
    assert trend["baseline"] == pytest.approx(http["baseline"], rel=1e-9)
    assert trend["change_pct"] == pytest.approx(http["change_pct"], abs=0.5)


def test_bookings_errors_seen_as_rates_checks_and_counters(result):
    # Success falling is worse: the interval of the change lies wholly below -0.5 pp.
    rate = _row(result, "booking_success_rate", "rate")
    assert rate["direction"] == "lower"
    assert rate["baseline"] == pytest.approx(990 / 998) and rate["candidate"] == \
        pytest.approx(974 / 998)
    assert rate["ci_high"] < -0.5 and rate["status"] not in ("ok", "improved")
    for check in ("::checkout::booking status is 200", "::checkout::booking confirmed"):
        row = _row(result, check, "rate")
        assert row["ci_high"] < -0.5 and row["n_baseline"] == 998
    errors = _row(result, "POST /api/bookings", "error_rate")
    assert errors["ci_low"] > 0.5
    counter = _row(result, "booking_errors", "per_second")
    assert counter["direction"] == "higher"
    assert counter["change_pct"] == pytest.approx(200.0, abs=1.0)
    # 8 -> 24 rare events: the exact Poisson test, not a bootstrap of mostly empty windows.
    # Its interval lies wholly beyond the +10 % tolerance, so it is never 'ok'; whether it is a
    # regression depends on the correction over every family of the harness (docs/compare.md).
    assert counter["method"] == "poisson-exact" and counter["ci_low"] > 10
    assert counter["status"] in ("regression", "inconclusive")
    # Counters per second: bookings made per second are the same load in both runs.
    assert _row(result, "bookings_created", "per_second")["status"] == "ok" or \
        abs(_row(result, "bookings_created", "per_second")["change_pct"]) < 5


def test_candidate_no_go_on_injected_changes_and_nothing_else(result):
    flagged = _rows(result, "regression")
    names = {e for e, _, _ in flagged}
    assert {"booking_success_rate", "::checkout::booking status is 200"} <= names
    assert ("POST /api/bookings", "", "error_rate") in flagged
    assert ("booking_errors", "", "per_second") in flagged
    for endpoint, slice_, _ in flagged:
        assert endpoint in QUOTE | QUOTE_FLOWS | BOOKINGS or (endpoint == "ALL" and slice_ in (
            "", "scenario:booking_flow"))
    # Client-side contention moved the tail of the unchanged browse_flow (p99 +87 %): gatekept
    # behind its mean, which did not move, it is not flagged.
    browse = _row(result, "ALL", "p99", "scenario:browse_flow")
    assert browse["status"] != "regression" and "gatekeeping" in browse["note"]


@pytest.mark.parametrize("side", ["baseline", "candidate"])
def test_each_harness_run_against_itself_is_go(sample_runs: SampleRuns, side):
    result = sample_runs.compared(f"k6-harness/{side}", f"k6-harness/{side}")
    assert result.verdict == "GO"
    assert not _rows(result, "regression")
    assert result.checks.filter(pl.col("metric") == "p50")["change_pct"].abs().max() < 1e-9


def test_json_gains_kind_slice_and_direction(result):
    doc = json.loads(result.to_json())
    assert doc["schema_version"] == 2
    first = {(c["endpoint"], c["slice"], c["metric"]): c for c in doc["checks"]}
    row = first[("quote_duration", "scenario:quote_flow", "p95")]
    assert row["kind"] == "trend" and row["direction"] == "higher"
    assert first[("checks", "", "rate")]["direction"] == "lower"
    assert doc["settings"]["worse_when"] == {} and doc["settings"]["slices"] is True
    # The directions taken from names are said.
    assert any("booking_success_rate" in w and "[compare.worse_when]" in w
               for w in result.warnings)


def test_declared_direction_and_no_slices(harness):
    config = compare_config({"worse_when": {"bookings_created": "either"}, "slices": False})
    result = perfstats.compare(harness["baseline"], harness["candidate"], config=config)
    assert _row(result, "bookings_created", "per_second")["direction"] == "either"
    assert set(result.checks["slice"]) == {""}
    assert not any("bookings_created" in w for w in result.warnings)


def test_direction_inference():
    assert inferred_direction("booking_success_rate") == "lower"
    assert inferred_direction("booking_errors") == "higher"
    assert inferred_direction("http_req_failed") == "higher"
    assert inferred_direction("deals_listed") is None
    assert direction_of("checks", "rate", time=False, declared={}) == ("lower", "default")
    assert direction_of("cache_ratio", "rate", time=False, declared={}) == ("either", "default")
    assert direction_of("quote_duration{scenario:x}", "trend", time=True,
                        declared={"quote_duration": "lower"}) == ("lower", "declared")


def test_summary_only_runs_compare_rates_as_proportions(sample_runs: SampleRuns):
    runs = [sample_runs.of(HARNESS / side / "handle-summary.json")
            for side in ("baseline", "candidate")]
    result = perfstats.compare(*runs, config=compare_config())
    rate = _row(result, "booking_success_rate", "rate")
    assert rate["method"] in ("z-test", "fisher-exact") and rate["n_candidate"] == 998
    assert rate["candidate"] == pytest.approx(974 / 998)
    scenario = _row(result, "booking_success_rate", "rate", "scenario:booking_flow")
    assert scenario["candidate"] == pytest.approx(974 / 998)
    trend = _row(result, "quote_duration", "p95")
    # A Trend from the summary alone: its sampling error is estimated from the percentiles.
    assert trend["method"] == "summary" and trend["p_value"] is not None
    assert _row(result, "::checkout::booking confirmed", "rate")["n_baseline"] == 998


def test_rare_event_counters_use_the_exact_poisson_test():
    from perfstats.stats.drift import DriftSettings, EndpointData, RunData, drift_checks

    def run(events: int) -> RunData:
        amounts = np.zeros(30)
        amounts[:events] = 1.0
        return RunData({"errors": EndpointData(events, None, kind="counter", name="errors",
                                               amount=float(events),
                                               amounts=(amounts, np.full(30, 2.0)))}, 60.0)

    same, = drift_checks(run(10), run(10), DriftSettings())
    assert same.method == "poisson-exact" and same.status != "regression"
    assert same.p_value > 0.5
    more, = drift_checks(run(3), run(30), DriftSettings())
    assert more.status == "regression" and more.p_value < 1e-4
    assert more.ci_low > 100.0  # +900 %, its interval well above +100 %


def test_no_false_hints_on_the_harness_pair(result):
    # The Gauges deals_listed and last_quote_total are typed in the NDJSON: known, not compared.
    assert not any("unknown kind" in w for w in result.warnings)
    # Every endpoint's p99 moved (+27 to +97 %), but five of six have under 1,000 requests
    # (insufficient_data, moved by chance): no common shift of the environment is claimed.
    p99 = result.checks.filter((pl.col("metric") == "p99") & (pl.col("kind") == "http")
                               & (pl.col("slice") == "") & (pl.col("endpoint") != "ALL"))
    assert (p99["change_pct"] > 20).all()
    assert (p99["status"] == "insufficient_data").sum() == 5
    assert not any("did the load generator" in w for w in result.warnings)
    assert result.checks["change_vs_common_pct"].is_null().all()


def test_a_k6_csv_alone_says_which_metrics_it_cannot_compare(sample_runs: SampleRuns):
    runs = [sample_runs.of(HARNESS / side / "points.csv.gz")
            for side in ("baseline", "candidate")]
    result = perfstats.compare(*runs, config=compare_config())
    warning = next(w for w in result.warnings if "unknown kind" in w)
    assert "booking_success_rate" in warning and "quote_duration" in warning
    assert set(result.checks["kind"]) == {"http", "rate", "check"}  # checks are known to k6
