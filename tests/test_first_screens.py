"""What a report's first screen says: the runs (ids, tools, dates, labels), then the answer;
an error counted once; the compare verdict said once."""

from __future__ import annotations

from helpers import DATA, SampleRuns, StoredRuns

import perfstats


def test_run_findings_and_errors_counted_once(sample_runs: SampleRuns) -> None:
    run = sample_runs["k6/candidate"]
    raw = run.table("errors")
    assert sorted(raw["kind"]) == ["error_code", "http_status"]  # 1500 restates HTTP 500
    errors = run.errors()
    assert errors.select("kind", "error", "count").rows() == [("http_status", "500", 25)]
    title, volume, latency, error = run.findings()
    assert title == run.headline()
    assert volume == "6,748 requests in 76 s (88.3 req/s); 25 failed (0.37%)"
    assert latency == ("p95 95.6 ms over all requests; slowest endpoint POST /api/quote at "
                       "p95 213 ms")
    assert error == "Commonest error: POST /api/bookings http status 500 x 25"


def test_headline_names_the_runs_then_the_answer(stored_runs: StoredRuns,
                                                 sample_runs: SampleRuns) -> None:
    _, (base, cand) = stored_runs.in_memory("k6/baseline", "k6/candidate", labels={
        "k6/baseline": {"branch": "main"}, "k6/candidate": {"branch": "feature"}})
    result = sample_runs.compared("k6/baseline", "k6/candidate")
    shown = perfstats.headline(result, base, cand, roles=("baseline", "candidate"))
    assert shown.about == (f"baseline: run {base.run_id} (k6, started 2026-11-22 02:08 UTC, "
                           f"branch=main) · candidate: run {cand.run_id} (k6, started "
                           "2026-11-22 02:10 UTC, branch=feature)")
    assert shown.lines == (result.headline(),) and shown.lines[0].startswith("NO-GO: ")
    page = shown._repr_html_()
    assert page.index(base.run_id) < page.index("NO-GO")
    # The verdict once: the title says NO-GO, the lead says why.
    markdown = result.to_markdown()
    assert markdown.count("NO-GO") == 1, markdown[:300]


def test_run_recorded_is_everything_else_or_says_what_is_absent() -> None:
    # The run_summary report's last section, with no logic in the notebook: r.recorded().
    from helpers import HARNESS

    rich = perfstats.load(HARNESS / "candidate").recorded()
    titles = [section.title for section in rich.sections]
    assert titles[0] == "Requests per scenario" and titles[-1] == "Thresholds"
    assert {"Trends (ms)", "Rates", "Checks"} <= set(titles) and not rich.lead
    by_scenario = rich.sections[0].table
    assert by_scenario.columns[0] == "scenario" and len({r[0] for r in by_scenario.rows}) == 4
    page = rich._repr_html_()
    assert "p95 (ms)" in page and "quote_flow" in page
    bare = perfstats.load(DATA / "locust" / "baseline").recorded()
    assert not bare.sections
    assert bare.lead == ["No requests per scenario: slicing requests needs raw samples; this run "
                         "has histograms.", "No custom metrics or checks in this run.",
                         "The run declared no thresholds."]
