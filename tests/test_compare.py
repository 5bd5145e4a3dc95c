"""perfstats.compare on the real runs of data/: the injected regressions and nothing else."""

from __future__ import annotations

import json
from inspect import signature
from xml.etree import ElementTree

import polars as pl
import pytest
from helpers import DATA, SampleRuns
from polars.testing import assert_frame_equal

import perfstats
from perfstats.comparison.gate import CHECK_SCHEMA, COMPARE_SCHEMA_VERSION, Comparison, compare
from perfstats.config import compare_config

TOOLS = ("k6", "artillery", "locust")
# Endpoint names as each tool reports them (Artillery has no method).
QUOTE = {"k6": "POST /api/quote", "artillery": "/api/quote", "locust": "POST /api/quote"}
BOOKINGS = {"k6": "POST /api/bookings", "artillery": "/api/bookings",
            "locust": "POST /api/bookings"}
LATENCY = ("p50", "p95", "p99", "mean")
# polars 1.32.3 renamed assert_frame_equal's rtol to rel_tol (rtol warns); older ones know rtol.
REL_TOL = {"rel_tol" if "rel_tol" in signature(assert_frame_equal).parameters else "rtol": 1e-9}


@pytest.fixture(scope="module")
def runs(sample_runs: SampleRuns) -> dict[str, perfstats.Run]:
    """Every baseline and candidate run of data/."""
    return {f"{tool}/{kind}": sample_runs[f"{tool}/{kind}"]
            for tool in TOOLS for kind in ("baseline", "candidate")}


def _regressions(result: Comparison) -> set[tuple[str, str]]:
    rows = result.checks.filter(pl.col("status") == "regression")
    return set(zip(rows["endpoint"], rows["metric"], strict=True))


@pytest.mark.parametrize("tool", TOOLS)
def test_candidate_is_no_go_for_the_injected_regressions_only(sample_runs, tool):
    result = sample_runs.compared(f"{tool}/baseline", f"{tool}/candidate")
    assert result.verdict == "NO-GO"
    flagged = _regressions(result)
    injected = {(QUOTE[tool], m) for m in LATENCY} | {(BOOKINGS[tool], "error_rate")}
    # The whole-run rows carry the injected changes too.
    allowed = injected | {("ALL", m) for m in (*LATENCY, "error_rate")}
    assert flagged <= allowed, flagged - allowed
    # The +30 % quote latency is caught by every tool's data.
    assert any(e == QUOTE[tool] for e, _ in flagged)
    # Nothing else regresses, and no endpoint other than the injected ones is even inconclusive
    # on the mean.
    means = result.checks.filter((pl.col("metric") == "mean")
                                 & ~pl.col("endpoint").is_in([QUOTE[tool], "ALL"]))
    assert set(means["status"]) <= {"ok", "improved"}


@pytest.mark.parametrize(("tool", "caught"), [("k6", False), ("artillery", True),
                                              ("locust", True)])
def test_bookings_error_rate(sample_runs, tool, caught):
    # 1 % -> 4 % injected. Realised: k6 12/980 vs 25/964 (+1.4 pp, too few requests to show
    # it exceeds the 0.5 pp tolerance: inconclusive, not ok); Artillery 9/900 vs 36/900;
    # Locust 7/847 vs 31/872.
    result = sample_runs.compared(f"{tool}/baseline", f"{tool}/candidate")
    row = result.checks.filter((pl.col("endpoint") == BOOKINGS[tool])
                               & (pl.col("metric") == "error_rate")).row(0, named=True)
    assert row["status"] == ("regression" if caught else "inconclusive")
    assert row["ci_low"] > 0 and row["ci_unit"] == "pp"
    assert row["method"] == "z-test"


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("kind", ["baseline", "candidate"])
def test_a_run_compared_with_itself_is_go(sample_runs, tool, kind):
    result = sample_runs.compared(f"{tool}/{kind}", f"{tool}/{kind}")
    assert result.verdict == "GO"
    assert not _regressions(result)
    assert "the candidate is also in the baseline" in result.warnings


def test_methods_follow_the_grain_of_the_data(sample_runs):
    k6 = sample_runs.compared("k6/baseline", "k6/candidate").checks
    assert set(k6.filter(pl.col("metric").is_in(LATENCY))["method"]) <= {"block-bootstrap",
                                                                        "none"}
    art = sample_runs.compared("artillery/baseline", "artillery/candidate").checks
    quote_p50 = art.filter((pl.col("endpoint") == "/api/quote") & (pl.col("metric") == "p50"))
    assert quote_p50["method"][0] == "window-level"
    # 900 requests are too few for a p99 (1000 needed): said, not guessed.
    p99 = art.filter((pl.col("endpoint") == "/api/quote") & (pl.col("metric") == "p99"))
    assert p99["status"][0] == "insufficient_data" and p99["p_value"][0] is None


def test_summary_only_input_carries_its_sampling_error():
    result = compare(DATA / "k6/baseline/summary.json", DATA / "k6/candidate/summary.json",
                     config=compare_config())
    latency = result.checks.filter(pl.col("metric").is_in(LATENCY)
                                   & (pl.col("status") != "insufficient_data"))
    # The standard error comes from the summaries (count and neighbouring percentiles).
    assert set(latency["method"]) == {"summary"}
    assert latency["p_value"].null_count() == 0 and latency["ci_low"].null_count() == 0
    # No false NO-GO: whatever is flagged is an injected change (k6 summaries name no method).
    allowed = {("/api/quote", m) for m in LATENCY} | {("ALL", m) for m in LATENCY} | {
        ("/api/bookings", "error_rate"), ("ALL", "error_rate")}
    assert _regressions(result) <= allowed
    # The +35 % quote p50 is not called ok: beyond the tolerance, the note says why.
    quote = latency.filter((pl.col("endpoint") == "/api/quote") & (pl.col("metric") == "p50"))
    assert quote["status"][0] in {"regression", "inconclusive"} and quote["ci_low"][0] > 0
    assert any("checks from summaries alone" in w for w in result.warnings)


def test_checks_frame_and_json_schema(runs, sample_runs):
    result = sample_runs.compared("k6/baseline", "k6/candidate")
    assert result.checks.columns == list(CHECK_SCHEMA)
    http = result.checks.filter(pl.col("kind") == "http")
    assert http.height == 7 * 6  # six endpoints and ALL, six metrics
    # The script's checks: k6's checks rate and one pass rate per (group, check).
    checks = result.checks.filter(pl.col("kind") == "check")
    assert checks.height == len(runs["k6/baseline"].table("checks"))
    assert result.checks.filter(pl.col("kind") == "rate")["endpoint"].to_list() == ["checks"]
    assert set(result.checks["slice"]) == {""}  # one scenario: no slices
    doc = json.loads(result.to_json())
    assert doc["schema_version"] == COMPARE_SCHEMA_VERSION
    assert doc["verdict"] == "NO-GO"
    assert doc["baseline"]["run_ids"] == [runs["k6/baseline"].run_id]
    assert doc["candidate"]["tool"] == "k6" and doc["candidate"]["grain"] == "samples"
    assert isinstance(doc["warnings"], list)
    first = doc["checks"][0]
    for key in ("endpoint", "kind", "slice", "direction", "metric", "baseline", "candidate",
                "change_pct", "ci_low", "ci_high", "p_value", "method", "status"):
        assert key in first
    assert doc["settings"]["alpha"] == 0.05 and doc["settings"]["seed"] == 0
    # Same inputs and seed: same answer; DuckDB's parallel sums may differ in the last digits.
    again = compare(runs["k6/baseline"], runs["k6/candidate"], config=compare_config())
    assert_frame_equal(again.checks, result.checks, check_exact=False, **REL_TOL)
    assert again.checks["status"].to_list() == result.checks["status"].to_list()


def test_markdown_junit_html_and_chart(sample_runs):
    result = sample_runs.compared("locust/baseline", "locust/candidate")
    text = result.to_markdown()
    assert text.startswith("## perfstats compare: **NO-GO**")
    assert "| POST /api/quote | mean | regression |" in text
    assert "<details>" in text
    suite = ElementTree.fromstring(result.to_junit().split("\n", 1)[1])
    assert int(suite.get("tests")) == result.checks.height
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert sorted(failed) == sorted(f"{e} {m}" for e, m in _regressions(result))
    assert "NO-GO" in result._repr_html_()
    spec = result.chart(metric="p95").to_dict()
    assert spec["layer"]
    assert result.chart(metric="error_rate").to_dict()["layer"]
    with pytest.raises(ValueError):
        result.chart(metric="p42")
    assert result.worst_first()["status"][0] == "regression"
    assert result.headline().startswith("NO-GO: 4 regression")


def test_slo_breach_fails_the_gate_on_its_own(runs):
    run = runs["k6/baseline"]
    config = compare_config({"slo": {"POST /api/quote": "p(95)<100", "*": "rate<0.5"}})
    result = compare(run, run, config=config)
    assert result.verdict == "NO-GO"
    breached = result.checks.filter(pl.col("status") == "slo_breach")
    assert set(zip(breached["endpoint"], breached["metric"], strict=True)) == {
        ("POST /api/quote", "p95")}
    assert "p95 < 100 ms" in breached["note"][0]


def test_endpoint_selection_and_pooled_baselines(runs):
    config = compare_config(endpoints=["POST *"], ignore=["POST /api/auth/*"])
    result = compare(runs["k6/baseline"], runs["k6/candidate"], config=config)
    assert set(result.checks["endpoint"]) == {"ALL", "POST /api/quote", "POST /api/bookings"}
    # ALL is rebuilt from the selected endpoints' samples.
    all_count = result.checks.filter(pl.col("endpoint") == "ALL")["n_baseline"][0]
    assert all_count == 980 * 2
    # Artillery names carry no method: the same selection, in its names.
    windows = compare(runs["artillery/baseline"], runs["artillery/candidate"],
                      config=compare_config(endpoints=["/api/quote", "/api/bookings"]))
    assert "ALL" not in set(windows.checks["endpoint"])
    assert any("whole-run (ALL) checks left out" in w for w in windows.warnings)
    pooled = compare([runs["k6/baseline"], runs["k6/candidate"]], runs["k6/candidate"],
                     config=compare_config())
    assert pooled.baseline["run_ids"] == [runs["k6/baseline"].run_id,
                                          runs["k6/candidate"].run_id]
    assert any("pools 2 runs" in w for w in pooled.warnings)


def test_load_profile_warnings(sample_runs):
    k6 = sample_runs["k6/baseline"]
    result = compare(k6, sample_runs["k6/ramp"], config=compare_config())
    text = " | ".join(result.warnings)
    assert "durations differ" in text and "request rates differ" in text
    assert "virtual users differ" in text
    tools = compare(k6, sample_runs["locust/baseline"], config=compare_config())
    assert any("different tools" in w for w in tools.warnings)
    # Locust's distributed harness names /api/deals/[id] and has a grpc request type.
    assert any("missing from the candidate" in w or "new in the candidate" in w
               for w in compare(sample_runs["locust-distributed/baseline"], k6,
                                config=compare_config()).warnings)
    with pytest.raises(perfstats.InsufficientDataError, match="share no endpoint"):
        compare(sample_runs["artillery/baseline"], k6, config=compare_config())


def test_bad_inputs():
    with pytest.raises(perfstats.RunNotFoundError):
        compare("no-such-run", "no-such-run-either", db=perfstats.open_store(":memory:"),
                config=compare_config())
    with pytest.raises(TypeError):
        compare(42, DATA / "k6/baseline", config=compare_config())
    with pytest.raises(ValueError):
        compare([], DATA / "k6/baseline", config=compare_config())


def test_pooled_baseline_with_an_endpoint_missing_from_one_run(stored):
    db, (full, short, cand) = stored("k6/baseline", "k6/smoke", "k6/candidate")
    store = perfstats.open_store(db)
    with store.connect(write=True) as con:
        con.execute("DELETE FROM points WHERE run_id = $run AND starts_with(metric, 'http_') "
                    "AND tag_set IN (SELECT tag_set FROM tag_sets WHERE run_id = $run "
                    "AND endpoint = 'GET /health')", {"run": short})
    result = compare([full, short], cand, config=compare_config(), db=store)
    health = result.checks.filter(pl.col("endpoint") == "GET /health")
    assert health["n_baseline"][0] == 980  # only the full run called it
    whole = result.checks.filter(pl.col("endpoint") == "ALL")["n_baseline"][0]
    assert whole == 6860 + 147 - 21
