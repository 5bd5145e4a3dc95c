"""Thresholds in k6's syntax: perfstats' re-evaluation equals k6's own, on every tool's names."""

from __future__ import annotations

import json

import polars as pl
import pytest
from helpers import HARNESS, SampleRuns

import perfstats
from perfstats.config import compare_config, load_compare_config
from perfstats.errors import ConfigError
from perfstats.store import Store
from perfstats.thresholds import Threshold, declared_thresholds, evaluate, parse_thresholds


@pytest.mark.parametrize("side", ["baseline", "candidate"])
def test_every_k6_threshold_is_re_evaluated_as_k6_did(harness, side):
    run = harness[side]
    declared = declared_thresholds(run.store, run.run_id)
    assert len(declared) == 20 and all(t.tool_ok is not None for t in declared)
    result = evaluate(run.store, run.run_id, declared)
    assert set(result["method"]) == {"exact"}  # from the raw points
    assert result["ok"].to_list() == result["tool_ok"].to_list()
    failed = set(result.filter(~pl.col("ok")).select("metric", "expression").iter_rows())
    if side == "baseline":
        assert not failed  # k6 exited 0
    else:  # k6 exited 99 with six thresholds crossed
        assert failed == {
            ("booking_success_rate", "rate>0.98"),
            ("booking_success_rate{scenario:booking_flow}", "rate>0.985"),
            ("http_req_duration{scenario:quote_flow}", "p(95)<250"),
            ("quote_duration", "p(50)<48"), ("quote_duration", "p(95)<200"),
            ("quote_duration{scenario:quote_flow}", "p(90)<150")}
    # The values are k6's own summary figures (k6 percentiles: linear interpolation).
    summary = {(m, s): v for m, s, v in run.store.query(
        "SELECT metric, stat, value FROM metrics WHERE run_id = ? AND stat IS NOT NULL",
        [run.run_id]).iter_rows()}
    row = result.filter(pl.col("metric") == "http_req_duration{scenario:quote_flow}").row(
        0, named=True)
    assert row["value"] == pytest.approx(summary[(row["metric"], "p(95)")], rel=1e-9)


def test_summary_only_runs_give_the_same_verdicts(sample_runs: SampleRuns):
    run = sample_runs.of(HARNESS / "candidate" / "handle-summary.json")
    result = evaluate(run.store, run.run_id, declared_thresholds(run.store, run.run_id))
    assert set(result["method"]) == {"tool-summary"}
    assert result["ok"].to_list() == result["tool_ok"].to_list()


def test_config_thresholds_in_k6_syntax(harness):
    run = harness["candidate"]
    table = {"http_req_duration{scenario:booking_flow}": ["p(95)<300"],
             "booking_success_rate": ["rate>0.98"], "checks": "rate>0.99",
             "bookings_created": ["count>500", "rate>10"],
             "http_req_duration{name:/api/quote}": ["p(99.9)<2000", "avg<100"]}
    result = evaluate(run.store, run.run_id, parse_thresholds(table))
    values = {(m, e): (v, ok) for m, e, v, ok in result.select(
        "metric", "expression", "value", "ok").iter_rows()}
    assert values[("booking_success_rate", "rate>0.98")] == (pytest.approx(974 / 998), False)
    assert values[("checks", "rate>0.99")][1] is True
    assert values[("bookings_created", "count>500")] == (974.0, True)
    # A Counter's rate is per second, as in k6.
    per_second = values[("bookings_created", "rate>10")][0]
    assert per_second == pytest.approx(974 / run.meta["duration_s"])
    assert values[("http_req_duration{name:/api/quote}", "avg<100")][1] is True


@pytest.mark.parametrize("metric, message", [
    ("no_such_metric", "has no such metric"),
    ("http_req_duration{scenario:nope}", "scenario=nope"),
    ("quote_duration{flow:nowhere}", "flow=nowhere"),
    ("checks", "between 0 and 1"),  # rate>2 is a Counter's rate; checks is a Rate
])
def test_a_threshold_on_what_the_run_lacks_is_an_error(harness, metric, message):
    run = harness["candidate"]
    with pytest.raises(ConfigError, match=message):
        expression = "rate>2" if metric == "checks" else "p(95)<300"
        evaluate(run.store, run.run_id, parse_thresholds({metric: [expression]}))


def test_bad_threshold_expressions_are_config_errors():
    for table in ({"checks": ["rate>>0.9"]}, {"checks": []}, {"quote{x}": "p(95)<1"},
                  {"checks": ["p(95)<1%"]}):
        with pytest.raises(ConfigError):
            parse_thresholds(table)


@pytest.mark.parametrize("path", ["locust/candidate", "artillery/candidate/report.json"])
def test_k6_names_on_locust_and_artillery(sample_runs: SampleRuns, path):
    run = sample_runs[path]
    result = evaluate(run.store, run.run_id, parse_thresholds({
        "http_req_duration{name:/api/quote}": ["p(95)<300", "p(50)<50"],
        "http_req_failed{name:/api/bookings}": ["rate<0.02"],
        "http_req_duration": ["p(95)<1000"]}))
    ok = dict(zip(result["expression"] + " " + result["metric"], result["ok"], strict=True))
    # The candidate server: quote median 52 ms, bookings errors 4 %.
    assert ok["p(50)<50 http_req_duration{name:/api/quote}"] is False
    assert ok["rate<0.02 http_req_failed{name:/api/bookings}"] is False
    assert ok["p(95)<1000 http_req_duration"] is True
    with pytest.raises(ConfigError, match="no endpoint"):
        evaluate(run.store, run.run_id,
                 parse_thresholds({"http_req_duration{name:/nope}": "p(95)<1"}))


def test_artillery_custom_histogram_and_counter(data_dir, sample_runs: SampleRuns):
    path = data_dir / "artillery-harness" / "candidate"
    if not path.exists():
        pytest.skip("no Artillery harness run in data/")
    run = sample_runs.of(path)
    result = evaluate(run.store, run.run_id, parse_thresholds({"quote_time": ["p(95)<10000"]}))
    assert result["ok"].to_list() == [True] and result["method"][0] == "tool-summary"


def test_compare_gates_on_config_thresholds_and_shows_declared_ones(harness, sample_runs,
                                                                   tmp_path):
    (tmp_path / "perfstats.toml").write_text(
        '[thresholds]\nbooking_success_rate = ["rate>0.98"]\n'
        '"http_req_duration{scenario:booking_flow}" = ["p(95)<300"]\n')
    config = load_compare_config(tmp_path / "perfstats.toml")
    cand = harness["candidate"]
    # The candidate against itself: no regression, but the configured threshold fails.
    result = perfstats.compare(cand, cand, config=config)
    assert result.verdict == "NO-GO"
    failing = result.failing
    assert failing.select("endpoint", "kind", "metric").rows() == [
        ("booking_success_rate", "threshold", "rate>0.98")]
    doc = json.loads(result.to_json())
    rows = {(t["source"], t["metric"], t["expression"]): t for t in doc["thresholds"]}
    assert rows[("config", "booking_success_rate", "rate>0.98")]["ok"] is False
    declared = [t for t in doc["thresholds"] if t["source"] == "k6"]
    assert len(declared) == 20 and all(t["ok"] == t["tool_ok"] for t in declared)
    # Declared thresholds are shown, they do not gate: the candidate alone is GO without
    # [thresholds], although k6 failed six of them.
    alone = sample_runs.compared("k6-harness/candidate", "k6-harness/candidate")
    assert alone.verdict == "GO" and alone.thresholds.height == 20
    assert "thresholds" in alone.to_text().plain and "### Thresholds" in alone.to_markdown()
    off = perfstats.compare(cand, cand, config=compare_config({"declared_thresholds": False}))
    assert off.thresholds.is_empty()


@pytest.mark.parametrize("run", ["k6/baseline", "k6/candidate", "k6/ramp", "k6/smoke"])
def test_k6_0_45_thresholds_equal_k6s_own(sample_runs: SampleRuns, run):
    found = sample_runs[run]  # names like /api/deals/{id}
    result = evaluate(found.store, found.run_id, declared_thresholds(found.store, found.run_id))
    assert result.height == 10 and result["tool_ok"].null_count() == 0
    assert result["ok"].to_list() == result["tool_ok"].to_list()


@pytest.mark.parametrize("run", ["k6/candidate", "k6/smoke", "k6-harness/candidate",
                                 "k6-split/segment-1"])
def test_all_thresholds_of_a_run_in_one_pass_equal_k6s_own_figures(sample_runs, monkeypatch,
                                                                   run):
    """Every statistic k6's summary recorded (k6 0.45 and 1.1; sub-metrics by scenario, name,
    group, expected_response and a custom tag), evaluated together from the raw points in one
    query over the samples, is k6's own figure."""
    run = sample_runs[run]
    store = run.store
    kinds = dict(store.query("SELECT DISTINCT metric, type FROM metrics WHERE run_id = ? AND "
                             "type IS NOT NULL", [run.run_id]).iter_rows())
    figures = store.query("SELECT metric, stat, value FROM metrics WHERE run_id = ? AND stat IN "
                          "('avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count', "
                          "'rate', 'value')", [run.run_id]).rows()
    given, expected = [], []
    for metric, stat, value in figures:
        base = metric.split("{", 1)[0]
        if (stat == "rate" and kinds[base] == "counter") or (stat == "count"
                                                            and base == "http_req_duration"):
            continue  # k6's own test duration; not a clause of a latency threshold
        bound = "1" if kinds[base] == "rate" else "1000000000"
        given.append(Threshold(metric, f"{stat}<{bound}"))
        expected.append(value)
    given.append(Threshold("http_req_duration{scenario:nowhere}", "p(95)<300"))
    sample_queries = []
    query = Store.query

    def counted(self, sql, params=None):
        sample_queries.extend(["samples"] if "FROM samples" in sql else [])
        return query(self, sql, params)

    monkeypatch.setattr(Store, "query", counted)
    result = evaluate(store, run.run_id, given, strict=False)
    # The one pass, and for the error the listing of the scenarios the run has.
    assert len(sample_queries) == 2 and len(given) > 60
    assert set(result["method"][:-1]) == {"exact"}
    assert result["value"][:-1].to_list() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert result["ok"][-1] is None and "scenario=nowhere" in result["note"][-1]
