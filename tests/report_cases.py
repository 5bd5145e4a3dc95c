"""How the report tests render each notebook template on data/: CLI arguments, expected charts.

Shared by tests/test_report.py and tests/test_report_browser.py through the session fixture
``html_reports`` (conftest.py), so each template is executed through the CLI only once.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from helpers import DATA

import perfstats
from perfstats.cli import cli

TEMPLATES = ["capacity", "compare", "history", "run_summary"]

CHARTS = {"run_summary": 4, "compare": 4, "capacity": 3, "history": 1}
"""Charts each template draws on the data below."""

HISTORY_RUNS = ["k6/smoke", "artillery/baseline", "locust/baseline", "artillery/candidate",
                "locust/candidate"]


def history_store(path: Path) -> Path:
    """A file store holding a few runs of data/, for the history template."""
    for run in HISTORY_RUNS:
        perfstats.ingest(DATA / run, db=path)
    return path


def cli_arguments(store: Path) -> dict[str, list[str]]:
    """``perfstats report TEMPLATE ...`` arguments per template (paths are absolute)."""
    return {
        "run_summary": ["--run", str(DATA / "k6" / "smoke")],
        "compare": ["--baseline", str(DATA / "locust" / "baseline"),
                    "--run", str(DATA / "locust" / "candidate")],
        "capacity": ["--run", str(DATA / "locust" / "ramp"), "--param", "peak_users=400"],
        "history": ["--db", str(store), "--param", "metric=p95"],
    }


def render_html(workdir: Path) -> dict[str, tuple[Result, Path]]:
    """Render every template to ``workdir/<template>.html`` through the CLI."""
    store = history_store(workdir / "history.duckdb")
    out = {}
    for name, args in cli_arguments(store).items():
        target = workdir / f"{name}.html"
        out[name] = (CliRunner().invoke(cli, ["report", name, *args, "-o", str(target)]), target)
    return out
