"""Hostile names (control characters, newlines, pipes, HTML, rich markup, escape sequences) go
through ingest and every output format, and each output still parses and says the same name."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from xml.etree import ElementTree

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import perfstats
from perfstats.cli import cli
from perfstats.render.escape import (
    markdown_cell,
    markdown_text,
    terminal_text,
    xml_text,
)
from perfstats.render.junit import Case, junit_xml
from perfstats.render.tables import render, to_markdown

HOSTILE = [
    "GET /a\x1b[31mred\x1b[0m",           # an ANSI escape sequence
    "GET /b\nPOST /injected | x |",          # a newline and pipes
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[bold red]markup[/] :smile:",            # rich markup and an emoji code
    "GET /c\x00\x07\x08\x0b\x0c\x7f\x9b",     # NUL, BEL, backspace, VT, FF, DEL, CSI
    "GET /d\\|e",                              # a backslash before a pipe
    "GET /e\r\noverwrite\rback",
    "GET /f\ud800",                            # a lone surrogate (not encodable)
    "GET /g \u2028 \ufffe",
]
"""Names that each break some output when written raw."""

_XML_LEGAL = re.compile("^[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")
_TERMINAL_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_names = st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=40)


@given(_names)
def test_xml_text_is_legal_xml(name: str) -> None:
    assert _XML_LEGAL.match(xml_text(name))
    element = ElementTree.Element("testcase", name=xml_text(name))
    element.text = xml_text(name)
    text = ElementTree.tostring(element, encoding="unicode")
    assert ElementTree.fromstring(text).get("name") == xml_text(name)


@given(st.lists(st.tuples(_names, _names), min_size=1, max_size=4))
def test_the_junit_report_parses_whatever_the_names(names: list[tuple[str, str]]) -> None:
    cases = [Case(classname=f"perfstats.compare.{endpoint}", name=f"{endpoint} p95",
                  outcome=("failed", "skipped", "passed")[i % 3], text=text, kind="regression")
             for i, (endpoint, text) in enumerate(names)]
    root = ElementTree.fromstring(junit_xml("perfstats compare", cases).encode("utf-8"))
    parsed = root.findall("testcase")
    assert [c.get("name") for c in parsed] == [xml_text(f"{e} p95") for e, _ in names]


@given(_names)
def test_markdown_cell_stays_one_cell_without_html(name: str) -> None:
    cell = markdown_cell(name)
    assert not re.search(r"[\n\r\u2028\u2029]", cell)
    assert "<" not in cell.replace("<br>", "")
    # every pipe is escaped by an odd number of backslashes
    assert all(len(m.group(1)) % 2 == 1 for m in re.finditer(r"(\\*)\|", cell))
    assert not _TERMINAL_CONTROL.search(cell)
    assert "\n" not in markdown_text(name) and "<" not in markdown_text(name)


@given(_names)
def test_terminal_text_has_no_control_character(name: str) -> None:
    assert not _TERMINAL_CONTROL.search(terminal_text(name))


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_names, min_size=1, max_size=5), st.lists(st.floats(), min_size=1, max_size=5))
def test_every_frame_format_parses_back(names: list[str], values: list[float]) -> None:
    n = min(len(names), len(values))
    # (a lone surrogate cannot be stored as UTF-8; a reader gets it as U+FFFD)
    safe = [name.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            for name in names[:n]]
    frame = pl.DataFrame({"endpoint": safe, "value": values[:n],
                          "labels": [{"k": name} for name in safe]})
    rows = list(csv.DictReader(io.StringIO(render(frame, "csv"))))
    assert [r["endpoint"] for r in rows] == safe
    assert [json.loads(r["labels"]) for r in rows] == [{"k": s} for s in safe]
    assert [r["endpoint"] for r in json.loads(render(frame, "json"))] == safe
    markdown = to_markdown(frame).split("\n")
    assert len(markdown) == n + 2
    assert all(_cells(line) == 3 for line in markdown)


def _cells(row: str) -> int:
    """Cells of a markdown table row (pipes not escaped by a backslash)."""
    return len(re.findall(r"(?<!\\)(?:\\\\)*\|", row)) - 1


def _hostile_k6_run(path: Path, names: list[str], *, slow: float = 1.0) -> Path:
    """A small k6 NDJSON output with one endpoint per name (40 requests each)."""
    lines = [{"type": "Metric", "metric": m, "data": {"name": m, "type": t, "contains": c}}
             for m, t, c in (("http_req_duration", "trend", "time"),
                             ("http_reqs", "counter", "default"),
                             ("http_req_failed", "rate", "default"))]
    for i in range(40):
        for j, name in enumerate(names):
            tags = {"name": name, "method": "GET", "status": "200", "url": name,
                    "expected_response": "true", "scenario": name, "group": "::" + name}
            time = f"2026-11-22T01:42:{i:02d}.{j:06d}Z"
            for metric, value in (("http_req_duration", slow * (50 + i % 7 + j)),
                                  ("http_reqs", 1), ("http_req_failed", 0)):
                lines.append({"type": "Point", "metric": metric,
                              "data": {"time": time, "value": value, "tags": tags}})
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


@pytest.mark.slow
def test_hostile_names_through_ingest_and_every_output(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    names = [n.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for n in HOSTILE]
    base = _hostile_k6_run(tmp_path / "base.json", names)
    cand = _hostile_k6_run(tmp_path / "cand.json", names, slow=3.0)
    runner = CliRunner()
    label = "team=<b>x</b>\x1b[2J|"
    ids = []
    for path in (base, cand):
        result = runner.invoke(cli, ["ingest", str(path), "--db", db, "--label", label])
        assert result.exit_code == 0, result.output
        ids.append(result.stdout.strip())
    stored = set(perfstats.load(ids[0], db=db).summary()["endpoint"])
    assert {f"GET {n}" for n in names} <= stored

    junit = tmp_path / "junit.xml"
    md = runner.invoke(cli, ["compare", *ids, "--db", db, "--format", "markdown",
                             "--junit", str(junit)])
    assert md.exit_code == 1, md.output
    cases = ElementTree.parse(junit).getroot().findall("testcase")
    assert {c.get("name").rsplit(" ", 1)[0] for c in cases} >= {
        xml_text(f"GET {n}") for n in names}
    table_rows = [line for line in md.stdout.splitlines() if line.startswith("| ")]
    assert table_rows and all(_cells(row) == _cells(table_rows[0]) for row in table_rows)
    assert "<script>" not in md.stdout and "<img" not in md.stdout

    for args in (["compare", *ids], ["summary", ids[0]], ["runs"], ["bottlenecks", ids[1]],
                 ["history"]):
        shown = runner.invoke(cli, [*args, "--db", db])
        assert shown.exit_code in (0, 1), shown.output
        assert not _TERMINAL_CONTROL.search(shown.output), args
        assert "markup" not in " ".join(args) or "[bold red]markup[/]" in shown.output

    for args in (["summary", ids[0]], ["runs"]):
        # (the bytes: click's Result.stdout turns \r\n into \n)
        text = runner.invoke(cli, [*args, "--db", db, "--format", "csv"]).stdout_bytes.decode()
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        if args[0] == "summary":
            assert {f"GET {n}" for n in names} <= {r["endpoint"] for r in rows}
        else:
            assert [json.loads(r["labels"]) for r in rows] == [{"team": label[5:]}] * 2
        parsed = json.loads(runner.invoke(cli, [*args, "--db", db, "--format", "json"]).stdout)
        assert parsed
