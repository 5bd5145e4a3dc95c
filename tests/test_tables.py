"""The display formatter (perfstats.show): units, significant figures, left-out columns and
terminal tables that fit 100 columns without cutting a number, on the bundled runs."""

from __future__ import annotations

import re
import subprocess
import sys

import polars as pl
import pytest
from helpers import ROOT, SampleRuns, StoredRuns
from rich.console import Console

import perfstats
from perfstats.render.tables import show, significant


@pytest.fixture(scope="module")
def store(stored_runs: StoredRuns) -> perfstats.Store:
    return stored_runs.in_memory("k6/candidate", "locust/ramp", "artillery/baseline")[0]


def _text(table: object, width: int) -> str:
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(table)
    return console.export_text()


def test_significant_figures() -> None:
    assert [significant(v) for v in (1096.918, 213.149, 55.543, 2.90699, 0.0259, 0, 12.0)] == \
        ["1,097", "213", "55.5", "2.91", "0.0259", "0", "12"]


def test_summary_has_units_percentages_and_no_repeated_columns(store: perfstats.Store) -> None:
    run = perfstats.load(perfstats.runs(db=store).filter(pl.col("tool") == "k6")["run_id"][0],
                         db=store)
    table = show(run.summary())
    assert table.columns[:5] == ["endpoint", "count", "failures", "error rate (%)",
                                 "rps (req/s)"]
    assert "p95 (ms)" in table.columns and "method" not in table.columns
    bookings = dict(zip(table.columns, table.rows[4], strict=True))
    assert bookings["endpoint"] == "POST /api/bookings"
    assert bookings["error rate (%)"] == "2.59"  # 25 of 964, as the chart's 2.6 %
    assert bookings["max (ms)"] == "106"
    assert table.rows[-1][table.columns.index("max (ms)")] == "1,097"
    assert any("method, tool_name" in n for n in table.notes)
    assert any("percentiles exact" in n for n in table.notes)


def test_runs_table_has_no_dtype_row_quotes_or_microseconds(store: perfstats.Store) -> None:
    page = show(perfstats.runs(db=store)).to_html()
    assert "shape:" not in page and "str</" not in page and '"' not in re.sub(
        r'<[^>]*>', "", page)
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", page)
    assert "started at (UTC)" in page


@pytest.mark.parametrize("path", ["k6/candidate", "locust/ramp", "artillery/baseline"])
def test_terminal_table_fits_100_columns_and_keeps_every_number_whole(
        sample_runs: SampleRuns, path: str) -> None:
    run = sample_runs[path]
    table = show(run.summary())
    text = _text(table, 100)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "…" not in text
    shown_columns = [c for c in table.columns if c.split(" ")[0] in text]
    for row in table.rows:  # every number of every column shown is there in full
        for column, value in zip(table.columns, row, strict=True):
            if column in shown_columns and re.fullmatch(r"[\d,.]+", value):
                assert re.search(rf"(?<![\d,.]){re.escape(value)}(?![\d,.])", text), value


def test_too_wide_drops_columns_from_the_right_and_says_which(store: perfstats.Store) -> None:
    text = _text(show(perfstats.runs(db=store)), 100)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "not shown (wider than 100 columns):" in text and "content hash" in text
    assert "run id" in text.splitlines()[1] or "run id" in text


def test_cli_summary_at_100_columns_in_a_pipe_and_in_a_terminal(stored) -> None:
    env = {"COLUMNS": "100", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    db, (run_id,) = stored("k6/candidate")
    out = subprocess.run([sys.executable, "-m", "perfstats", "summary", run_id, "--db", db],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "1,097" in out and "…" not in out and "shape:" not in out


def test_a_long_name_wraps_at_its_tag_not_at_the_column_edge(sample_runs: SampleRuns) -> None:
    # k6-harness's trends at 100 columns: the metric column is narrower than its longest names.
    trends = sample_runs["k6-harness/candidate"].summary_tables()["trends (ms)"]
    text = _text(show(trends), 100)
    lines = [line.rstrip() for line in text.splitlines()]
    assert max(map(len, lines)) <= 100
    assert "{scenario:booking_flow}" in lines  # the tag whole on the continuation line
    first = lines[lines.index("{scenario:booking_flow}") - 1]
    assert first.split()[0] == "http_req_duration"
    assert not any(line.startswith(("w}", "flow}", "se:true}")) for line in lines)
