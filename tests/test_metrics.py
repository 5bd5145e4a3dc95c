"""The metric model on real harness runs (data/k6-harness, data/artillery-harness,
data/locust-distributed; ground truth: data/README.md and shared/data/MANIFEST.md).

k6 computes a Trend's percentiles by linear interpolation between sorted samples, as DuckDB's
``quantile_cont`` does, so every Trend and every sub-metric k6 reports must come out of the raw
points equal to k6's own summary up to float rounding (1e-9 relative).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from helpers import DATA, SampleRuns

import perfstats
from perfstats.cli import cli
from perfstats.metric_model import KIND_COLUMNS, catalog, metric_kind_unit

HARNESS_RUNS = ["baseline", "candidate"]
TREND_STATS = {"count": "count", "avg": "avg", "min": "min", "med": "med", "p90": "p(90)",
               "p95": "p(95)", "p99": "p(99)", "max": "max"}


def _k6_metrics(run: str, name: str = "handle-summary.json") -> dict:
    return json.loads((DATA / "k6-harness" / run / name).read_text())["metrics"]


def _close(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("run", HARNESS_RUNS)
def test_every_trend_and_sub_metric_from_points_equals_k6(harness: dict, run: str) -> None:
    k6 = {name: m["values"] for name, m in _k6_metrics(run).items() if m["type"] == "trend"}
    assert len(k6) >= 20  # 5 custom Trends, the http_req_* ones and 8 tagged sub-metrics
    ours = harness[run].summary(metric=list(k6))
    assert set(ours["metric"]) == set(k6)
    assert (ours["source"] == "exact").all()
    for row in ours.iter_rows(named=True):
        for column, stat in TREND_STATS.items():
            assert _close(row[column], k6[row["metric"]][stat]), (row["metric"], stat)


@pytest.mark.parametrize("run", HARNESS_RUNS)
def test_rates_counters_and_gauges_from_points_equal_k6(harness: dict, run: str) -> None:
    k6 = _k6_metrics(run)
    for kind in ("rate", "counter", "gauge"):
        names = [n for n, m in k6.items() if m["type"] == kind]
        ours = harness[run].summary(metric=names)
        assert set(ours["metric"]) == set(names), kind
        for row in ours.iter_rows(named=True):
            values = k6[row["metric"]]["values"]
            if kind == "rate":
                assert (row["passes"], row["fails"]) == (values["passes"], values["fails"])
                assert _close(row["rate"], values["rate"])
            elif kind == "counter":
                assert _close(row["total"], values["count"]), row["metric"]
                assert math.isclose(row["per_second"], values["rate"], rel_tol=1e-9)
            else:
                assert (row["min"], row["max"]) == (values["min"], values["max"])


def test_summary_export_sub_metrics_match_the_same_points(sample_runs: SampleRuns) -> None:
    """The legacy export reports the same sub-metrics; a run ingested with it agrees too."""
    export = _k6_metrics("candidate", "summary-export.json")
    trends = [n for n, v in export.items() if "p(95)" in v]
    run = sample_runs.of([DATA / "k6-harness/candidate/points.json.gz",
                          DATA / "k6-harness/candidate/summary-export.json"])
    ours = run.summary(metric=trends)
    assert set(ours["metric"]) == set(trends)
    for row in ours.iter_rows(named=True):
        assert _close(row["p95"], export[row["metric"]]["p(95)"]), row["metric"]


def test_csv_tag_sets_do_not_depend_on_extra_tags_order(sample_runs: SampleRuns) -> None:
    """k6 1.1 writes extra_tags in varying order; a tag set is the same set whatever the order,
    and the root group is "" in the CSV as in the NDJSON."""
    by_format = {}
    for name in ("points.csv.gz", "points.json.gz"):
        run = sample_runs.of(DATA / "k6-harness/baseline" / name)
        by_format[name] = run.table("tag_sets").drop("tag_set").sort(
            pl.all(), nulls_last=True)
    assert by_format["points.csv.gz"].height == 27
    assert by_format["points.csv.gz"].equals(by_format["points.json.gz"])
    groups = set(by_format["points.csv.gz"]["grp"].to_list())
    assert groups == {"", "::auth", "::browse", "::checkout", "::pricing", None}


def test_slices_by_scenario_group_and_custom_tag(harness: dict) -> None:
    run = harness["candidate"]
    by_scenario = run.summary(metric="quote_duration", by="scenario")
    assert set(by_scenario["scenario"]) == {"booking_flow", "quote_flow"}
    sub = run.summary(metric="quote_duration{scenario:quote_flow}")
    quote_flow = by_scenario.filter(pl.col("scenario") == "quote_flow")
    assert quote_flow["p95"][0] == sub["p95"][0]
    assert by_scenario["count"].sum() == run.summary(metric="quote_duration")["count"][0]
    flows = run.summary(metric="http_req_duration", by="tag:flow")
    assert set(flows["flow"]) == {"browse", "checkout", "pricing", "probe"}
    groups = run.summary(metric="checks", by="group")
    assert set(groups["group"]) == {"", "::auth", "::browse", "::checkout", "::pricing"}
    http = run.summary(by="scenario")
    totals = http.filter(pl.col("endpoint") == perfstats.ALL_ENDPOINTS)
    assert totals["count"].sum() == run.summary().filter(
        pl.col("endpoint") == perfstats.ALL_ENDPOINTS)["count"][0]
    with pytest.raises(perfstats.ArgumentError, match="unknown slice"):
        run.summary(by="colour")


def test_checks_and_thresholds_as_k6_reported_them(harness: dict) -> None:
    run = harness["candidate"]
    checks = run.checks()
    assert checks.height == 9 and checks["fails"].sum() == 48
    assert set(checks.columns) >= {"group", "check", "passes", "fails", "pass_rate"}
    thresholds = run.thresholds()
    assert thresholds.height == 20
    assert thresholds.filter(~pl.col("tool_ok")).height == 6
    assert thresholds.filter(pl.col("tags").is_not_null()).height == 10
    assert harness["baseline"].thresholds()["tool_ok"].all()


def test_catalog_kinds_and_units(harness: dict) -> None:
    cat = catalog(harness["baseline"]).filter(pl.col("tags").is_null())
    kinds = dict(zip(cat["metric"], cat["kind"], strict=True))
    units = dict(zip(cat["metric"], cat["unit"], strict=True))
    assert [m for m in ("login_duration", "quote_duration", "booking_duration",
                        "checkout_duration", "deal_browse_duration") if kinds[m] == "trend"
            and units[m] == "ms"] == ["login_duration", "quote_duration", "booking_duration",
                                      "checkout_duration", "deal_browse_duration"]
    assert {m for m, k in kinds.items() if k == "rate"} == {
        "login_success_rate", "quote_success_rate", "booking_success_rate", "checks",
        "http_req_failed"}
    assert {kinds["bookings_created"], kinds["booking_errors"]} == {"counter"}
    assert {kinds["last_quote_total"], kinds["deals_listed"]} == {"gauge"}
    assert units["data_received"] == "bytes"


def test_csv_without_summary_infers_kinds_and_labels_them(sample_runs: SampleRuns) -> None:
    run = sample_runs["k6-harness/baseline/points.csv.gz"]
    cat = catalog(run).filter(pl.col("tags").is_null())
    row = {r["metric"]: r for r in cat.iter_rows(named=True)}
    assert row["http_req_duration"]["kind_basis"] == "known"
    assert (row["booking_success_rate"]["kind"], row["booking_success_rate"]["kind_basis"]) == (
        "rate", "inferred")
    assert row["quote_duration"]["unit"] == "ms"


def test_artillery_custom_metrics_and_apdex(sample_runs: SampleRuns) -> None:
    run = sample_runs["artillery-harness/baseline/report.json"]
    trends = run.summary(metric=["quote_time", "vusers.session_length"])
    quote = trends.filter(pl.col("metric") == "quote_time").row(0, named=True)
    # data/README.md: quote_time count 722, median 47, p95 169 as Artillery wrote them.
    assert (quote["count"], quote["med"], quote["p95"], quote["source"]) == (
        722, 47, 169, "tool-summary")
    counters = run.summary(metric="quote.priced")
    assert counters["total"][0] == 722
    apdex = run.summary(metric="apdex")
    # Artillery's console: "Apdex score: 0.9657689811810513"
    assert math.isclose(apdex["last"][0], 0.9657689811810513, rel_tol=1e-12)
    assert metric_kind_unit("artillery", "http.request_rate", "rate", None)[0] == "gauge"


def test_every_kind_has_its_columns(harness: dict) -> None:
    for kind, columns in KIND_COLUMNS.items():
        frame = harness["baseline"].summary(metric=catalog(harness["baseline"]).filter(
            pl.col("kind") == kind)["metric"].to_list())
        assert set(columns) <= set(frame.columns), kind


def _corpus_without_requests(shared: Path) -> list[Path]:
    """The corpus files with WebSocket, Playwright or browser runs (shared/corpus/SOURCES.md)."""
    corpus = shared / "corpus"
    return [corpus / "artillery/report-v2" / name for name in (
        "AdrKacz__super-duper-guacamole__results.json",
        "AliThomson__DevOps-Deeper-Testing__playwright.json",
        "Oyhamburo__pruebas-carga__report.json",
        "devongermano__livetest-nestjs-gql-ws__ws.json")] + [
        corpus / "k6/summary-export/MM12583__K6_Script_Automated_Test__summary.json"]


def test_runs_without_http_requests_say_so_and_show_what_they_have(shared_dir: Path) -> None:
    for path in _corpus_without_requests(shared_dir):
        result = CliRunner().invoke(cli, ["summary", str(path), "--format", "json"])
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        assert body["notes"][0].startswith("no HTTP requests in this run; it has "), path.name
        tables = {k: v for k, v in body.items() if k not in ("run", "tool", "grain", "notes")}
        assert tables and all(tables.values()) and "requests" not in tables, path.name
    browser = CliRunner().invoke(cli, ["summary", str(path)])
    assert "browser_web_vital_lcp" in browser.stdout and "no HTTP requests" in browser.stdout


def test_summary_by_scenario_on_the_command_line(stored) -> None:
    db, (run_id,) = stored("k6-harness/candidate")
    runner = CliRunner()
    result = runner.invoke(cli, ["summary", run_id, "--db", db, "--by", "scenario",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    scenarios = {"booking_flow", "browse_flow", "health_probe", "quote_flow"}
    assert {r["scenario"] for r in body["requests"]} == scenarios
    assert {r["scenario"] for r in body["trends (ms)"] if r["metric"] == "quote_duration"} == {
        "booking_flow", "quote_flow"}
    assert {r["scenario"]: r["load_model"] for r in body["scenarios"]}["quote_flow"] == "open"
    one = runner.invoke(cli, ["summary", run_id, "--db", db, "--metric", "quote_duration",
                              "--by", "scenario", "--format", "csv"])
    assert one.exit_code == 0 and one.stdout.splitlines()[0].startswith("metric,scenario,unit,")
    bad = runner.invoke(cli, ["summary", run_id, "--db", db, "--metric", "nope"])
    assert bad.exit_code == 2 and "has no metric 'nope'" in bad.stderr


def test_load_model_per_scenario_is_inferred_and_a_mixed_run_is_mixed(
        harness: dict, sample_runs: SampleRuns) -> None:
    """k6-harness: browse_flow constant-vus and health_probe ramping-vus (closed), booking_flow
    ramping-arrival-rate and quote_flow constant-arrival-rate (open): about 70 % of the
    requests from arrival-rate executors (data/README.md)."""
    for run in harness.values():
        scenarios = run.scenarios()
        models = dict(zip(scenarios["scenario"], scenarios["load_model"], strict=True))
        assert models == {"browse_flow": "closed", "health_probe": "closed",
                          "booking_flow": "open", "quote_flow": "open"}
        assert scenarios["basis"].str.starts_with("inferred").all()
        assert scenarios["executor"].is_null().all()
        assert run.meta["load_model"] == "mixed"
        open_share = scenarios.filter(pl.col("load_model") == "open")["requests"].sum() / \
            scenarios["requests"].sum()
        assert 0.65 < open_share < 0.75
        assert any("open 70% of requests" in note for note in run.meta["notes"])
    steady = sample_runs["k6/baseline"]
    assert steady.meta["load_model"] == "closed"
    assert steady.scenarios()["load_model"].to_list() == ["closed"]


def test_executors_from_the_summary_options_win_over_inference(tmp_path: Path) -> None:
    doc = json.loads((DATA / "k6-harness/baseline/handle-summary.json").read_text())
    doc["options"]["scenarios"] = {
        "browse_flow": {"executor": "constant-vus"}, "health_probe": {"executor": "ramping-vus"},
        "booking_flow": {"executor": "ramping-arrival-rate"},
        "quote_flow": {"executor": "constant-arrival-rate"}}
    summary = tmp_path / "handle-summary.json"
    summary.write_text(json.dumps(doc))
    run = perfstats.ingest([DATA / "k6-harness/baseline/points.json.gz", summary], db=":memory:")
    scenarios = run.scenarios()
    assert scenarios["executor"].to_list() == ["ramping-arrival-rate", "constant-vus",
                                               "ramping-vus", "constant-arrival-rate"]
    assert scenarios["load_model"].to_list() == ["open", "closed", "closed", "open"]
    assert (scenarios["basis"] == "summary options").all()
    assert run.meta["load_model"] == "mixed"


def test_csv_timestamps_are_too_coarse_to_infer_scenario_models(sample_runs: SampleRuns
                                                                ) -> None:
    run = sample_runs["k6-harness/baseline/points.csv.gz"]
    scenarios = run.scenarios()
    assert scenarios.height == 4 and scenarios["load_model"].is_null().all()
    assert scenarios["basis"].str.contains("whole-second").all()
