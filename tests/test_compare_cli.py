"""``perfstats compare`` on the command line: exit codes, formats, JUnit, step summary, auto."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from perfstats.cli import cli


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty directory so no project configuration is picked up."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return tmp_path


def _compare(*args: str) -> object:
    return CliRunner().invoke(cli, ["compare", *args], catch_exceptions=False)


def test_no_go_is_exit_1_with_table_and_verdict_line(no_config, stored):
    # Stored runs: README's example runs this pair as paths (ingested into a throw-away store).
    db, (base, cand) = stored("k6/baseline", "k6/candidate")
    result = _compare(base, cand, "--db", db)
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    # The headline comes last (its continuation lines, when it wraps, are indented).
    verdict = next(k for k, line in enumerate(lines) if line.startswith("NO-GO: "))
    assert re.match(r"NO-GO: \d+ regression", lines[verdict])
    assert all(line.startswith("  ") for line in lines[verdict + 1:])
    body = "\n".join(lines)
    # Worst first: the first endpoint is the regressed one, its first check a regression.
    first = next(k for k, line in enumerate(lines) if line.startswith("POST /api/"))
    assert lines[first] == "POST /api/quote" and lines[first + 1].split()[1] == "regression"
    assert "POST /api/quote" in body
    # Validity warnings come before the verdict line.
    warning = max(k for k, line in enumerate(lines[:verdict]) if not line.startswith("  "))
    assert lines[warning].startswith("warning: too few requests for p99")


def test_go_is_exit_0(no_config, stored):
    db, (run,) = stored("locust/baseline")
    result = _compare(run, run, "--format", "json", "--db", db)
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "GO" and doc["schema_version"] == 2


def test_markdown_step_summary_and_junit(no_config, stored, monkeypatch):
    summary = no_config / "summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    junit = no_config / "compare.xml"
    db, (base, cand) = stored("artillery/baseline", "artillery/candidate")
    result = _compare(base, cand, "--format", "markdown", "--junit", str(junit), "--ignore",
                      "/health", "--db", db)
    assert result.exit_code == 1
    assert result.stdout.startswith("## perfstats compare: **NO-GO**")
    written = summary.read_text()
    assert written.startswith("# earlier step\n") and "## perfstats compare: **NO-GO**" in written
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("failures") == "2"
    names = {case.get("name") for case in suite.iter("testcase")}
    assert "/api/bookings error_rate" in names and not any("/health" in n for n in names)


def test_endpoint_globs(no_config, stored):
    db, (base, cand) = stored("k6/baseline", "k6/candidate")
    result = _compare(base, cand, "--endpoint", "GET *", "--format", "json", "--db", db)
    assert result.exit_code == 0  # the injected regressions are on POST endpoints
    endpoints = {c["endpoint"] for c in json.loads(result.stdout)["checks"]}
    assert endpoints == {"ALL", "GET /api/deals", "GET /api/deals/{id}", "GET /health"}


def test_config_file_option(no_config, stored):
    config = no_config / "gate.toml"
    config.write_text('[compare.slo]\n"ALL" = "p(95)<50"\n')
    db, (run,) = stored("k6/baseline")
    result = _compare(run, run, "--config", str(config), "--format", "json", "--db", db)
    assert result.exit_code == 1
    breached = [c for c in json.loads(result.stdout)["checks"] if c["status"] == "slo_breach"]
    assert [(c["endpoint"], c["metric"]) for c in breached] == [("ALL", "p95")]


@pytest.mark.parametrize("args", [
    ["only-one-run"],
    ["a", "b", "c"],
    ["a", "b", "--label", "branch=main"],
    ["--baseline", "auto", "c"],
    ["--format", "xml", "a", "b"],
])
def test_usage_errors_are_exit_2(no_config, args):
    assert CliRunner().invoke(cli, ["compare", *args]).exit_code == 2


def test_bad_input_is_exit_2_with_one_line(no_config, data_dir):
    result = CliRunner().invoke(cli, ["compare", "deadbeef", str(data_dir / "k6/baseline"),
                                      "--db", str(no_config / "empty.duckdb")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "deadbeef" in result.stderr
    bad = no_config / "bad.toml"
    bad.write_text("[compare]\nalpha = 3\n")
    result = CliRunner().invoke(cli, ["compare", str(data_dir / "k6/smoke"),
                                      str(data_dir / "k6/smoke"), "--config", str(bad)])
    assert result.exit_code == 2 and "alpha" in result.stderr


def test_baseline_auto_takes_the_candidate_as_a_path_or_as_its_run_id(no_config, data_dir,
                                                                      stored):
    """The CI flow: the candidate stored with the line's label, then compared by its path."""
    main = {"branch": "main"}  # as `ingest --label branch=main` stores them
    db, (base, cand) = stored("k6/baseline", "k6/candidate",
                              labels={"k6/baseline": main, "k6/candidate": main})
    runner = CliRunner()
    answers = []
    for candidate in (str(data_dir / "k6/candidate"), cand):
        result = runner.invoke(cli, ["compare", "--baseline", "auto", "--label", "branch=main",
                                     candidate, "--db", db, "--format", "json"])
        assert result.exit_code == 1, result.output
        answers.append(json.loads(result.stdout))
    by_path, by_id = answers
    assert by_path["baseline"]["run_ids"] == by_id["baseline"]["run_ids"] == [base]
    assert by_path["candidate"] == by_id["candidate"]
    assert by_path["checks"] == by_id["checks"]
    missing = runner.invoke(cli, ["compare", "--baseline", "auto", "--label", "branch=main",
                                  str(data_dir / "k6/no-such-run"), "--db", db])
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_baseline_auto_pools_the_labelled_runs(no_config, stored):
    db, (base, cand) = stored("k6/baseline", "k6/candidate",
                              labels={"k6/baseline": {"branch": "main"}})
    result = CliRunner().invoke(cli, ["compare", "--baseline", "auto", "--label", "branch=main",
                                      cand, "--db", db, "--format", "json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["baseline"]["run_ids"] == [base]
