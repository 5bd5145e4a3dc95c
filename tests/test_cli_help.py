"""The CLI's help and its messages for mistakes: workflow order, an example per command, the
store and exit codes in the top-level help, "no such file" for a missing path, and a read
command on a store that does not exist is an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import DATA

from perfstats.cli import WORKFLOW, cli


def test_top_level_help_lists_commands_in_workflow_order_with_store_and_exit_codes() -> None:
    out = CliRunner().invoke(cli, ["--help"], terminal_width=100).output
    listed = [line.split()[0] for line in out.split("Commands:")[1].splitlines()
              if line.startswith("  ") and line.split() and line.split()[0] in cli.commands]
    assert listed == WORKFLOW == ["ingest", "summary", "compare", "capacity", "bottlenecks",
                                  "history", "report", "export", "runs", "delete"]
    assert "…" not in out and "..." not in out.split("Commands:")[1]
    assert "$PERFSTATS_DB" in out and "./perfstats.duckdb" in out
    assert "Exit codes: 0" in out and "1 NO-GO" in out and "2 bad input" in out
    assert "3 internal error" in out


@pytest.mark.parametrize("command", WORKFLOW)
def test_every_command_has_an_example(command: str) -> None:
    out = CliRunner().invoke(cli, [command, "--help"], terminal_width=100).output
    assert "Example" in out and f"perfstats {command} " in out.split("Example")[1]


@pytest.mark.parametrize("args", [["summary", "data/k6/candidat"], ["capacity", "ramp.json"],
                                  ["compare", "data/k6/baseline", "nosuchdir"],
                                  ["bottlenecks", "results/run1/"]])
def test_a_missing_path_says_no_such_file(tmp_path: Path, args: list[str]) -> None:
    store = tmp_path / "s.duckdb"
    result = CliRunner().invoke(cli, [*args, "--db", str(store)])
    assert result.exit_code == 2
    missing = args[-1]
    assert result.output.strip() == (f"perfstats: error: {missing}: no such file or directory "
                                     "(and not a run id)")
    assert not store.exists()


@pytest.mark.parametrize("args", [["runs"], ["history"], ["summary", "abc123"],
                                  ["export", "--parquet", "out"]])
def test_a_read_command_on_a_store_that_does_not_exist_is_an_error(tmp_path: Path,
                                                                    args: list[str]) -> None:
    store = tmp_path / "typo.duckdb"
    result = CliRunner().invoke(cli, [*args, "--db", str(store)])
    assert result.exit_code == 2, result.output
    assert f"perfstats: error: no store at {store}" in result.output
    assert not store.exists()


def test_a_result_path_needs_no_store(tmp_path: Path) -> None:
    store = tmp_path / "none.duckdb"
    result = CliRunner().invoke(cli, ["summary", str(DATA / "k6/smoke")],
                                env={"PERFSTATS_DB": str(store)})
    assert result.exit_code == 0, result.output
    assert not store.exists()
