"""How compare reads: headline, the default and --all tables, 100 columns, names, chart metric."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from helpers import SampleRuns

from perfstats.cli import cli
from perfstats.comparison.gate import Comparison, compare
from perfstats.config import compare_config
from perfstats.render import compare as report


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def k6_pair(sample_runs: SampleRuns) -> Comparison:
    return sample_runs.compared("k6/baseline", "k6/candidate")


def _table_rows(text: str, checks: pl.DataFrame) -> list[str]:
    """The check lines of the terminal table (indented, starting with a metric name)."""
    metrics = set(checks["metric"])
    return [line for line in text.splitlines()
            if line.startswith("  ") and line.split()[0] in metrics]


def test_headline_names_each_failing_check_with_change_interval_and_tolerance(k6_pair):
    line = k6_pair.headline()
    assert line.startswith(f"{k6_pair.verdict}: ") and "\n" not in line
    failing = k6_pair.worst_first().filter(pl.col("status") == "regression")
    assert failing.height >= 1
    # Up to three are all named; more, the first and the last (the next test).
    named_rows = failing if failing.height <= 3 else failing[[0, -1]]
    for row in named_rows.iter_rows(named=True):
        named = (f"{row['endpoint']} {row['metric']} {report.change_text(row)} "
                 f"{report.interval_text(row)} vs tolerance {report.tolerance_text(row)}")
        assert named in line
    assert f"({k6_pair.checks.height} checks)" in line


def test_headline_with_many_failing_checks_names_the_first_and_the_last(sample_runs):
    # No tolerance and no floor: every real difference between two runs fails.
    strict = compare_config({"tolerances": {m: 0 for m in ("p50", "p95", "p99", "mean",
                                                            "throughput", "error_rate")},
                             "floor_ms": 0})
    result = compare(sample_runs["k6/baseline"], sample_runs["k6/candidate"], config=strict)
    failing = result.worst_first().filter(pl.col("status") == "regression").to_dicts()
    assert len(failing) > report.NAMED_IN_HEADLINE
    line = result.headline()
    assert f"first {report.check_text(failing[0])}" in line
    assert f"... {len(failing) - 2} more ..." in line
    assert line.endswith(f"last {report.check_text(failing[-1])}")


def test_go_headline_says_nothing_fails(sample_runs):
    result = sample_runs.compared("artillery/baseline", "artillery/baseline")
    assert result.verdict == "GO"
    assert result.headline().endswith("; no regression or SLO breach")


def test_tolerance_of_every_check_in_its_interval_unit(k6_pair):
    tolerance = dict(zip(zip(k6_pair.checks["endpoint"], k6_pair.checks["metric"], strict=True),
                         k6_pair.checks["tolerance"], strict=True))
    assert tolerance[("POST /api/quote", "p50")] == pytest.approx(10.0)
    assert tolerance[("POST /api/quote", "throughput")] == pytest.approx(-10.0)
    assert tolerance[("POST /api/bookings", "error_rate")] == pytest.approx(0.5)
    http = k6_pair.checks.filter(pl.col("kind") == "http")
    by_metric = http.group_by("metric").agg(pl.col("tolerance").min().alias("low"),
                                            pl.col("tolerance").max().alias("high"))
    bounds = {m: (lo, hi) for m, lo, hi in by_metric.iter_rows()}
    assert bounds["throughput"] == pytest.approx((-10.0, -10.0))
    assert bounds["error_rate"] == pytest.approx((0.5, 0.5))
    assert all(bounds[m][0] == pytest.approx(10.0) for m in ("p50", "p95", "p99", "mean"))
    # The 2 ms floor does not raise the margin of a ~3 ms /health p95: it is a field of its own,
    # which a latency regression must also exceed.
    row = k6_pair.checks.filter((pl.col("endpoint") == "GET /health")
                                & (pl.col("metric") == "p95")).row(0, named=True)
    assert row["tolerance"] == pytest.approx(10.0) and row["floor_ms"] == 2.0
    doc = json.loads(k6_pair.to_json())
    assert all("tolerance" in c for c in doc["checks"]) and doc["headline"] == k6_pair.headline()


def test_default_table_shows_the_checks_that_are_not_ok_and_all_shows_every_one(
        no_config, stored, k6_pair, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    db, (base, cand) = stored("k6/baseline", "k6/candidate")
    args = ["compare", base, cand, "--db", db]
    default = CliRunner().invoke(cli, args, catch_exceptions=False)
    every = CliRunner().invoke(cli, [*args, "--all"], catch_exceptions=False)
    assert default.exit_code == every.exit_code == 1
    result = k6_pair  # the same pair with the default settings (no config file here)
    not_ok = result.checks.filter(pl.col("status") != "ok")
    rows = _table_rows(default.stdout, result.checks)
    assert len(rows) == not_ok.height and not any(" ok " in r for r in rows)
    hidden = result.checks.height - not_ok.height
    assert f"{hidden} ok checks not shown (--all shows every check)" in default.stdout
    assert len(_table_rows(every.stdout, result.checks)) == result.checks.height
    assert "not shown" not in every.stdout
    header = next(line for line in default.stdout.splitlines() if "status" in line)
    assert header.split() == ["metric", "status", "baseline", "candidate", "change",
                              "interval", "tolerance", report.P_COLUMN, "method"]
    assert report.P_LEGEND.split()[0] in default.stdout


def test_the_table_fits_100_columns_with_nothing_cut(no_config, stored, sample_runs,
                                                    monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    pair = ("locust-distributed/baseline", "locust-distributed/candidate")
    db, ids = stored(*pair)
    out = CliRunner().invoke(cli, ["compare", *ids, "--all", "--db", db],
                             catch_exceptions=False).stdout
    result = sample_runs.compared(*pair)
    rows = _table_rows(out, result.checks)
    assert len(rows) == result.checks.height
    assert "…" not in out
    for line in out.splitlines():
        assert len(line) <= 100, line
    # Every status, value, change and interval is printed whole.
    for row in result.checks.iter_rows(named=True):
        cells = [row["status"], report.value_text(row["metric"], row["baseline"]),
                 report.change_text(row), report.interval_text(row, unit=False)]
        assert any(all(c in line for c in cells if c) for line in rows), row
    # Names are printed as they are, never read as markup.
    assert "\nGET /api/deals/[id]\n" in out
    assert "\nPOST /api/quote\n" in out


def test_the_method_of_each_check_is_shown_at_100_columns_and_in_full_when_wider(k6_pair):
    narrow = k6_pair.to_text(width=100).plain
    wide = k6_pair.to_text(width=160).plain
    for text, width in ((narrow, 100), (wide, 160)):
        header = next(line for line in text.splitlines() if "status" in line)
        assert header.split()[-1] == "method"
        assert max(len(line) for line in text.splitlines()) <= width
    by_endpoint: dict[str, list[dict]] = {}  # the table's order: endpoints by worst check
    for check in k6_pair.worst_first().filter(pl.col("status") != "ok").to_dicts():
        by_endpoint.setdefault(report.subject(check), []).append(check)
    shown = [check for checks in by_endpoint.values() for check in checks]
    for text, name in ((narrow, report.SHORT_METHODS.get), (wide, lambda m, _: m)):
        rows = _table_rows(text, k6_pair.checks)
        assert len(rows) == len(shown)
        for line, check in zip(rows, shown, strict=True):
            method = name(check["method"], check["method"])
            assert line.split()[0] == check["metric"]
            assert line.endswith(f" {method}") if method else True, (line, method)
    # the short names used are spelled out under the table; a wide terminal needs no key
    assert "method: boot = block-bootstrap" in narrow and "method:" not in wide
    assert " boot\n" not in wide and " boot\n" in narrow


def test_a_terminal_too_narrow_for_short_methods_lists_them_under_the_table(k6_pair):
    text = k6_pair.to_text(width=80).plain
    header = next(line for line in text.splitlines() if "status" in line)
    assert "method" not in header
    assert "methods: block-bootstrap, z-test (a wider terminal shows the method" in text


def test_markdown_has_the_same_content(k6_pair):
    text = k6_pair.to_markdown()
    # the verdict is the title; the lead says why without repeating it
    assert k6_pair.headline().removeprefix("NO-GO: ") in text and report.P_LEGEND in text
    assert "| " + " | ".join(report.DISPLAY_COLUMNS) + " |" in text
    first = k6_pair.worst_first().row(0, named=True)
    assert (f"| {first['endpoint']} | {first['metric']} | {first['status']} |" in text)


def test_the_chart_shows_the_metric_of_the_failing_check(k6_pair, sample_runs):
    first = k6_pair.worst_first().row(0, named=True)
    assert first["status"] == "regression"
    assert k6_pair.chart_metric() == first["metric"] != "p95"
    assert k6_pair.chart().to_dict()["title"]["text"].startswith(f"{first['metric']} change")
    same = sample_runs.compared("artillery/baseline", "artillery/baseline")
    undecided = same.worst_first().filter(pl.col("status") == "inconclusive")
    assert same.chart_metric() == (undecided["metric"][0] if undecided.height else "p95")
    # the page's second chart: the error rate, or p95 when the first is the error rate
    assert k6_pair.other_chart_metric() == "error_rate"
    errors_first = sample_runs.compared("locust/baseline", "locust/candidate")
    assert errors_first.chart_metric() == "error_rate"
    assert errors_first.other_chart_metric() == "p95"


def test_a_change_relative_to_a_common_shift_gets_its_column(k6_pair):
    from dataclasses import replace

    # As the common-mode analysis reports it: each check's change beside a shared +25 % shift
    # (beyond the +10 % tolerance); a shift within the tolerance gets no column.
    def with_shift(pct: float):
        return replace(k6_pair, checks=k6_pair.checks.with_columns(
            (100 * ((1 + pl.col("change_pct") / 100) / (1 + pct / 100) - 1))
            .alias("change_vs_common_pct")))

    assert report.COMMON_COLUMN not in with_shift(3.0).to_text(width=100).plain
    shifted = with_shift(25.0)
    text = shifted.to_text(width=100).plain
    header = next(line for line in text.splitlines() if "status" in line)
    assert header.split()[:7] == ["metric", "status", "baseline", "candidate", "change", "vs",
                                  "common"]
    assert max(len(line) for line in text.splitlines()) <= 100
    first = shifted.worst_first().row(0, named=True)
    row = next(line for line in _table_rows(text, shifted.checks)
               if line.split()[0] == first["metric"])
    assert report.common_text(first) in row
    assert report.COMMON_COLUMN in shifted.display_frame().columns
    assert report.COMMON_COLUMN not in k6_pair.display_frame().columns


def test_the_absolute_floor_used_is_named_under_the_table(k6_pair):
    from dataclasses import replace

    assert report.legend(k6_pair.checks.drop("floor_ms", strict=False)) == [report.P_LEGEND]
    # As the testing design reports it: the floor each latency check was held to.
    floored = replace(k6_pair, checks=k6_pair.checks.with_columns(
        pl.when(pl.col("ci_unit") == "%").then(2.0).otherwise(None).alias("floor_ms")))
    line = "A latency change must also exceed the absolute floor of 2 ms"
    assert line in " ".join(floored.to_text(width=100).plain.split())
    assert line in floored.to_markdown()


def test_in_a_terminal_only_the_titles_are_bold(k6_pair):
    text = k6_pair.to_text(width=100)
    assert not text.style  # a style of the Text itself would cover every line
    row = text.plain.index("\n  p50 ") + 1
    assert not [span for span in text.spans if span.start <= row < span.end]
    title = [span for span in text.spans if span.start == 0]
    assert title and str(title[0].style) == "bold"
