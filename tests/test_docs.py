"""The docs tell the same story as the code: every example in README.md and docs/*.md runs.

- The ``$ perfstats ...`` lines of a fenced block run in order, in this process at 100 columns
  (click's test runner: what a pipe gets); the lines after each (or, when the block holds one
  command only, the markdown table right after the block) must appear in its output, in order.
  ``...`` stands for any text (a whole line of it: any lines).
- The ``perfstats`` lines of README's bash blocks run in order in one working directory, as a
  newcomer would paste them; each must exit 0 (success / GO) or 1 (NO-GO).
- Each python block runs; an expression whose comment is a Python literal (``x  # 29``) must
  equal it (floats to the digits shown; ``...`` inside a string is any text).
- Claims written in prose that the code defines (the compare tolerances) are checked against it.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import DATA, ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n?", re.S | re.M)
SLOW_WORDS = ("report", "render_report", "simulate_")
"""Blocks that execute a notebook template or run a calibration simulation are ``slow``."""


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    lang: str
    body: str
    after: str  # the text that follows the block, up to the next block

    @property
    def id(self) -> str:
        return f"{self.doc.name}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        matches = list(FENCE.finditer(text))
        for i, match in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
            found.append(Block(doc, text.count("\n", 0, match.start()) + 1, match.group(1),
                               match.group(2), text[match.end():end]))
    return found


def console_examples() -> list[tuple[Block, list[tuple[str, list[str]]]]]:
    """Per block with ``$ perfstats`` lines: (block, [(command, expected output lines), ...])."""
    examples = []
    for block in blocks():
        lines = block.body.splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("$ perfstats ")]
        steps = []
        for n, start in enumerate(starts):
            stop = starts[n + 1] if n + 1 < len(starts) else len(lines)
            expected = [line.rstrip() for line in lines[start + 1:stop] if line.strip()]
            if not expected and len(starts) == 1:
                table = re.match(r"\s*((?:\|.*\n?)+)", block.after)
                expected = table.group(1).splitlines() if table else []
            steps.append((lines[start][2:], expected))
        if steps:
            examples.append((block, steps))
    return examples


def _marks(text: str) -> list[Any]:
    return [pytest.mark.slow] if any(word in text for word in SLOW_WORDS) else []


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory where data/ is the project's sample data and the store is new."""
    (tmp_path / "data").symlink_to(DATA)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERFSTATS_DB", str(tmp_path / "perfstats.duckdb"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return tmp_path


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


def run_cli(command: str, cwd: Path) -> Done:
    """Run one ``perfstats`` command line in this process, as the console script would at 100
    columns in a pipe (``cwd`` is the working directory already: the ``workdir`` fixture)."""
    from perfstats.cli import cli

    args = shlex.split(command)
    assert args[0] == "perfstats", command
    assert Path.cwd() == cwd, (Path.cwd(), cwd)
    result = CliRunner().invoke(cli, args[1:], prog_name="perfstats", env={"COLUMNS": "100"},
                                catch_exceptions=False)
    return Done(result.exit_code, result.stdout, result.stderr)


def _pattern(line: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in line.split("...")) + "$")


def assert_lines_in_order(expected: list[str], output: str, where: str) -> None:
    actual = [line.rstrip() for line in output.splitlines()]
    position = 0
    for line in expected:
        if line.strip() == "...":
            continue
        pattern = _pattern(line)
        for index in range(position, len(actual)):
            if pattern.match(actual[index]):
                position = index + 1
                break
        else:
            shown = "\n".join(actual)
            pytest.fail(f"{where}: the documented line\n  {line}\nis not in the output (after "
                        f"line {position}):\n{shown}")


@pytest.mark.parametrize(
    ("block", "steps"),
    [pytest.param(block, steps, id=f"{block.id} {steps[-1][0][:60]}",
                  marks=_marks(" ".join(command for command, _ in steps)))
     for block, steps in console_examples()])
def test_console_example_output(block: Block, steps: list[tuple[str, list[str]]],
                                workdir: Path) -> None:
    for command, expected in steps:  # in order, in one working directory, as a user types them
        done = run_cli(command, workdir)
        assert "internal error" not in done.stderr, done.stderr
        assert_lines_in_order(expected, done.stdout + done.stderr, f"{block.id}: {command}")


def readme_commands() -> list[str]:
    commands = []
    for block in blocks():
        if block.doc.name == "README.md" and block.lang == "bash":
            for line in block.body.splitlines():
                if line.startswith("perfstats "):
                    commands.extend(part.strip() for part in line.split("&&"))
    return commands


@pytest.mark.slow
def test_readme_commands_run_in_order(workdir: Path) -> None:
    commands = readme_commands()
    assert commands, "README.md has no perfstats commands in a bash block"
    for command in commands:
        done = run_cli(command, workdir)
        assert done.returncode in (0, 1), f"{command}: exit {done.returncode}\n{done.stderr}"


def _expected_value(comment: str) -> Any:
    try:
        return ast.literal_eval(comment.strip())
    except (ValueError, SyntaxError):
        return None


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float):
        decimals = len(repr(expected).partition(".")[2])
        return isinstance(actual, int | float) and round(float(actual), decimals) == expected
    if isinstance(expected, str):
        return isinstance(actual, str) and bool(_pattern(expected).match(actual))
    if isinstance(expected, tuple | list):
        return (isinstance(actual, tuple | list) and len(actual) == len(expected)
                and all(_equal(a, e) for a, e in zip(actual, expected, strict=True)))
    return actual == expected


def run_python_block(block: Block) -> None:
    source = block.body
    tree = ast.parse(source)
    lines = source.splitlines()
    namespace: dict[str, Any] = {}
    for node in tree.body:
        code = ast.get_source_segment(source, node) or ""
        if isinstance(node, ast.Expr):
            value = eval(compile(ast.Expression(node.value), block.id, "eval"), namespace)
            comment = lines[node.end_lineno - 1].partition("#")[2]
            expected = _expected_value(comment) if comment else None
            if expected is not None and expected is not Ellipsis:
                assert _equal(value, expected), (
                    f"{block.id}: {code} gives {value!r}, the doc says {comment.strip()}")
        else:
            exec(compile(ast.Module([node], type_ignores=[]), block.id, "exec"), namespace)


@pytest.mark.parametrize(
    "block", [pytest.param(b, id=b.id, marks=_marks(b.body)) for b in blocks()
              if b.lang == "python"])
def test_python_example(block: Block, workdir: Path) -> None:
    run_python_block(block)


def test_readme_tolerances_are_the_code_defaults() -> None:
    from perfstats.stats.drift import DEFAULT_TOLERANCES

    readme = " ".join((ROOT / "README.md").read_text().split())
    claim = re.search(r"beyond its tolerance \((.*?)\)", readme)
    assert claim, "README no longer states the compare tolerances ('beyond its tolerance (...)')"
    stated = {}
    for names, value, _unit in re.findall(r"([a-z0-9/]+) [+-]([\d.]+) (%|pp)", claim.group(1)):
        for name in names.split("/"):
            stated["error_rate" if name == "errors" else name] = float(value) / 100
    assert {"p50", "p95", "p99", "mean", "throughput", "error_rate"} <= set(stated), claim.group(0)
    assert stated == {name: DEFAULT_TOLERANCES[name] for name in stated}, claim.group(0)


def test_a_points_file_and_its_summary_are_one_run_in_python(store) -> None:
    import perfstats

    whole = perfstats.ingest(DATA / "k6" / "baseline", db=store)
    parts = perfstats.ingest([DATA / "k6" / "baseline" / "points.json.gz",
                              DATA / "k6" / "baseline" / "summary.json"], db=store)
    assert parts.run_id == whole.run_id and parts.existed


def test_compare_warnings_go_where_docs_compare_says(workdir: Path, stored_runs) -> None:
    # The runs stored already (in the working directory's store): the examples run the paths.
    base, cand = stored_runs.copy(workdir / "perfstats.duckdb", "k6/baseline", "k6/candidate")
    table = run_cli(f"perfstats compare {base} {cand}", workdir)
    assert "warning: too few requests" in table.stdout and not table.stderr
    as_json = run_cli(f"perfstats compare {base} {cand} --format json", workdir)
    assert "warning: too few requests" in as_json.stderr
    assert json.loads(as_json.stdout)["verdict"] == "NO-GO"
