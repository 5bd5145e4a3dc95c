"""The CLI end to end on the bundled runs: ingest, runs, summary; every command documented."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

import perfstats
from perfstats import cli as cli_module
from perfstats.cli import cli
from perfstats.run import SUMMARY_COLUMNS


def test_public_api_is_sorted_and_complete() -> None:
    assert perfstats.__all__ == sorted(perfstats.__all__)
    for name in perfstats.__all__:
        assert hasattr(perfstats, name), name


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_and_is_in_the_readme(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert cli.commands[command].help
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"perfstats {command}" in readme


def test_ingest_runs_and_summary(tmp_path: Path, data_dir: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    runner = CliRunner()
    first = runner.invoke(cli, ["ingest", str(data_dir / "k6/smoke"),
                                str(data_dir / "artillery/baseline/report.json"),
                                "--db", db, "--label", "branch=main", "--label", "commit=abc123"])
    assert first.exit_code == 0, first.output
    ids = first.stdout.split()
    assert len(ids) == 2

    again = runner.invoke(cli, ["ingest", str(data_dir / "k6/smoke"), "--db", db])
    assert again.exit_code == 0 and again.stdout.split() == ids[:1]
    assert "same content as run" in again.stderr

    listed = json.loads(runner.invoke(cli, ["runs", "--db", db, "--format", "json"]).stdout)
    assert {r["run_id"] for r in listed} == set(ids)
    assert all(r["labels"] == {"branch": "main", "commit": "abc123"} for r in listed)
    assert {r["tool"] for r in listed} == {"k6", "artillery"}

    out = runner.invoke(cli, ["summary", ids[0], "--db", db, "--format", "json"])
    body = json.loads(out.stdout)
    rows = body["requests"]
    assert set(SUMMARY_COLUMNS) <= set(rows[0])
    assert body["run"] == ids[0] and body["notes"] == []
    assert {r["metric"] for r in body["trends (ms)"]} >= {"http_req_duration",
                                                          "iteration_duration"}
    assert {"p95_ms", "count"} <= set(body["trends (ms)"][0])
    total = next(r for r in rows if r["endpoint"] == "ALL")
    assert total["count"] == 147  # k6 smoke: http_reqs=147


def test_ingest_draws_a_progress_bar_on_a_terminal(tmp_path: Path, data_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = io.StringIO()
    monkeypatch.setattr(cli_module, "stderr", Console(file=terminal, force_terminal=True,
                                                       width=100))
    result = CliRunner().invoke(cli, ["ingest", str(data_dir / "k6/baseline/points.json.gz"),
                                      "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.split()) == 1
    assert "ingesting points.json.gz" in terminal.getvalue()


def test_ctrl_c_is_one_line_and_exit_130(tmp_path: Path, data_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(perfstats, "ingest", interrupted)
    result = CliRunner().invoke(cli, ["ingest", str(data_dir / "k6/smoke"),
                                      "--db", str(tmp_path / "s.duckdb")])
    assert (result.exit_code, result.stderr) == (130, "perfstats: interrupted\n")


def test_summary_of_a_path_uses_a_throwaway_store(tmp_path: Path, data_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for fmt in ("table", "csv", "markdown", "json"):
        result = CliRunner().invoke(cli, ["summary", str(data_dir / "k6/smoke/points.json"),
                                          "--format", fmt])
        assert result.exit_code == 0, result.output
        assert "/api/quote" in result.stdout
    assert not (tmp_path / "perfstats.duckdb").exists()


def test_unknown_run_is_exit_2(stored) -> None:
    db, _ = stored("k6/smoke")  # a store holding another run
    result = CliRunner().invoke(cli, ["summary", "deadbeef", "--db", db])
    assert result.exit_code == 2
    assert result.stderr.startswith("perfstats: error: no run 'deadbeef'")


def test_bad_label_is_a_usage_error(data_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["ingest", str(data_dir / "k6/smoke"), "--db", ":memory:",
                                      "--label", "novalue"])
    assert result.exit_code == 2 and "expected key=value" in result.stderr


def test_ingest_input_format_and_its_old_name(tmp_path: Path, data_dir: Path) -> None:
    """``ingest --input-format`` forces the reader; ``--format`` (the old name) still works but
    is not shown, since every other ``--format`` is an output format."""
    stats = data_dir / "locust" / "baseline" / "locust_stats.csv"
    runner = CliRunner()
    db = str(tmp_path / "s.duckdb")
    new = runner.invoke(cli, ["ingest", str(stats), "--input-format", "locust-stats", "--db", db])
    old = runner.invoke(cli, ["ingest", str(stats), "--format", "locust-stats", "--db", db])
    assert new.exit_code == old.exit_code == 0, new.output + old.output
    assert new.output.split()[0] in old.output  # the same run, found again
    bad = runner.invoke(cli, ["ingest", str(stats), "--input-format", "no-such", "--db", db])
    assert bad.exit_code == 2
    helptext = runner.invoke(cli, ["ingest", "--help"]).output
    assert "--input-format" in helptext and "--format" not in helptext


def _into_closed_pipe(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``perfstats ARGS | head -0``: a real pipe whose reader has gone before the first write,
    so every write to stdout meets a closed pipe (EPIPE)."""
    from helpers import ROOT

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "perfstats", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, cwd=cwd, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"})
    finally:
        os.close(write_end)


def test_a_closed_pipe_keeps_the_commands_own_exit_code(tmp_path: Path, stored) -> None:
    # Small runs that give each outcome (a subprocess's cost is then mostly its imports); each
    # output is a table of a few kB, as with the k6 pair.
    db, (smoke, base, cand) = stored("k6/smoke", "artillery/baseline", "artillery/candidate")
    summary = _into_closed_pipe(["summary", smoke, "--db", db], tmp_path)
    assert (summary.returncode, summary.stderr) == (0, "")  # click alone: 1, read as NO-GO
    same = _into_closed_pipe(["compare", smoke, smoke, "--db", db], tmp_path)
    assert same.returncode == 0, same.stderr  # GO
    nogo = _into_closed_pipe(["compare", base, cand, "--junit", "compare.xml", "--db", db],
                             tmp_path)
    assert nogo.returncode == 1, nogo.stderr  # NO-GO, and the command finished its work
    assert "<testsuite" in (tmp_path / "compare.xml").read_text(encoding="utf-8")
    for done in (summary, same, nogo):
        assert not any(word in done.stderr for word in ("Broken", "Traceback", "internal",
                                                        "Exception ignored")), done.stderr
    bad = _into_closed_pipe(["summary", str(tmp_path / "missing.json")], tmp_path)
    assert bad.returncode == 2 and "no such file" in bad.stderr
