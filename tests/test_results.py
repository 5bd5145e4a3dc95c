"""Every result object has one shape: headline() -> str, .warnings, .to_dict(), .chart(**options),
and markdown / HTML / text from the one renderer in perfstats.render.document."""

from __future__ import annotations

import html
import inspect
import json

import altair as alt
import numpy as np
import polars as pl
import pytest
from helpers import SampleRuns, StoredRuns

import perfstats
from perfstats.render.document import Document, Result, Section, markdown, text, to_html_document
from perfstats.render.escape import markdown_text

RESULT_CLASSES = ("Bottlenecks", "CapacityPlan", "ChangePoint", "Comparison", "History", "Run",
                  "USLFit")


@pytest.fixture(scope="module")
def results(stored_runs: StoredRuns, sample_runs: SampleRuns) -> dict[str, tuple[Result, dict]]:
    """One real result of each class, from data/'s k6 runs, with the chart options to try."""
    store, (base, cand, ramp) = stored_runs.in_memory("k6/baseline", "k6/candidate", "k6/ramp")
    plan = perfstats.capacity(ramp, peak_users=2000, db=store)
    rng = np.random.default_rng(7)
    series = np.r_[np.full(20, 100.0), np.full(20, 130.0)] + rng.normal(0, 2, 40)
    (point,) = perfstats.detect_change_points(series)
    return {
        "Run": (base, {"max_points": 50}),
        "Comparison": (sample_runs.compared("k6/baseline", "k6/candidate"),
                       {"metric": "error_rate"}),
        "CapacityPlan": (plan, {}),
        "USLFit": (plan.usl, {"points": 40}),
        "Bottlenecks": (perfstats.bottlenecks(cand, baseline=base, db=store), {"top": 3}),
        "History": (perfstats.history(db=store, metric="p95"), {"metric": "p95"}),
        "ChangePoint": (point, {"series": series}),
    }


def test_every_result_class_is_covered(results):
    assert sorted(results) == sorted(RESULT_CLASSES)
    for name in RESULT_CLASSES:
        assert issubclass(getattr(perfstats, name), Result)
        assert isinstance(results[name][0], getattr(perfstats, name))


@pytest.mark.parametrize("name", RESULT_CLASSES)
def test_one_shape(results, name):
    result, options = results[name]
    line = result.headline()
    assert isinstance(line, str) and line and "\n" not in line
    assert str(result) == line
    assert isinstance(result.warnings, tuple) and all(isinstance(w, str) for w in result.warnings)
    json.dumps(result.to_dict(), allow_nan=False)
    chart = result.chart(**options)
    assert isinstance(chart, alt.TopLevelMixin) and chart.to_dict()
    params = inspect.signature(type(result).chart).parameters.values()
    assert all(p.kind is p.KEYWORD_ONLY for p in params if p.name != "self"), name


@pytest.mark.parametrize("name", RESULT_CLASSES)
def test_markdown_html_and_text_come_from_one_document(results, name):
    result, _ = results[name]
    own = {"_repr_html_", "to_markdown", "to_text", "__str__"} & set(vars(type(result)))
    assert own == ({"to_text"} if name == "Comparison" else set())  # compare's terminal report
    doc = result.document()
    assert result.to_markdown() == markdown(doc)
    assert result._repr_html_() == to_html_document(doc)
    page, plain = result._repr_html_(), text(doc)
    if name != "Comparison":
        assert result.to_text() == plain
    assert result.to_markdown().startswith(f"## {doc.title}\n")
    for warning in result.warnings:  # the warnings are said in every rendering
        assert markdown_text(warning) in result.to_markdown() and html.escape(warning) in page
        assert warning in plain
    for section in doc.sections:
        if section.title:
            assert html.escape(section.title) in page and section.title in plain


@pytest.mark.parametrize("name", RESULT_CLASSES)
def test_details_leave_out_what_the_headline_said(results, name):
    # A report page shows perfstats.headline(result) first (answer and warnings), then
    # result.details(): the same sections, no title, lead, points or warnings a second time.
    result, _ = results[name]
    doc, details = result.document(), result.details()
    assert [s.title for s in details.sections] == [s.title for s in doc.sections]
    shown = perfstats.headline(result)
    page, plain, md = details._repr_html_(), str(details), markdown(details)
    for said in (*shown.lines, *shown.warnings, doc.title.replace("**", ""), *doc.lead,
                 *doc.points):
        assert said and html.escape(said) not in page and said not in plain, said
        assert markdown_text(said) not in md, said
    assert "Warnings" not in page + plain + md
    for section in doc.sections:
        if section.title:
            assert html.escape(section.title) in page and section.title in plain


def test_bottleneck_warnings_are_the_json_warnings(results):
    found, _ = results["Bottlenecks"]
    body = found.to_dict()
    assert body["warnings"] == list(found.warnings) and "notes" not in body
    assert any("no SLO" in w for w in found.warnings)


def test_capacity_headline_is_the_answer_line(results):
    plan, _ = results["CapacityPlan"]
    assert plan.headline() == plan.findings()[1]
    assert plan.headline().startswith("Instances needed: 63 (range 50 to 75)")
    assert plan.findings()[0].startswith(f"Capacity plan for run {plan.run_id} ")


def test_renderer_escapes_and_folds():
    doc = Document(
        title="<b>x</b> **NO-GO**", lead=["a < b"], points=["p & q"], warnings=["w <script>"],
        sections=[Section("T<1>", table=pl.DataFrame({"k": ["<i>"], "v": [1.5]})),
                  Section("more", bullets=["b1"], collapsed=True)], tone="bad")
    page = to_html_document(doc)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;i&gt;" in page
    assert "**" not in page and "color:#d62728" in page
    assert "<details><summary>more</summary><ul><li>b1</li></ul></details>" in page
    md = markdown(doc)
    assert md.splitlines()[:5] == ["## <b>x</b> **NO-GO**", "", "a &lt; b", "", "- p &amp; q"]
    assert "**Warnings**\n\n- w &lt;script>" in md and "### T<1>" in md
    assert "<details><summary>more</summary>\n\n- b1\n\n</details>" in md
    plain = text(doc).splitlines()
    assert plain[0] == "<b>x</b> NO-GO" and "k      v" in plain  # columns aligned
