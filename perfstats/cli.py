"""The ``perfstats`` command line: a thin layer over the public Python API.

Exit codes: 0 success / GO, 1 NO-GO (a regression or SLO breach), 2 bad input or usage (one line
on stderr; ``--debug`` shows the traceback).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import polars as pl
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

import perfstats
from perfstats.errors import PerfstatsError
from perfstats.output import render
from perfstats.run import SUMMARY_COLUMNS

EXIT_OK, EXIT_NO_GO, EXIT_BAD_INPUT = 0, 1, 2

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


class _Group(click.Group):
    """Turns every perfstats error into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except PerfstatsError as exc:
            _fail(ctx, f"error: {exc}")
        except Exception as exc:  # a bug, but the user still gets one line and exit 2
            _fail(ctx, f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)")


def _debug_enabled(ctx: click.Context) -> bool:
    return bool((ctx.obj or {}).get("debug")) or any(
        c.params.get("debug") for c in _contexts(ctx))


def _contexts(ctx: click.Context | None) -> list[click.Context]:
    out = []
    while ctx is not None:
        out.append(ctx)
        ctx = ctx.parent
    return out


def _fail(ctx: click.Context, message: str) -> None:
    if _debug_enabled(ctx) or "--debug" in sys.argv:
        traceback.print_exc()
    click.echo(f"perfstats: {message.splitlines()[0] if message else message}", err=True)
    ctx.exit(EXIT_BAD_INPUT)


def parse_labels(values: tuple[str, ...], *, option: str = "--label") -> dict[str, str]:
    """``("k=v", ...)`` -> ``{"k": "v"}``; a value without ``=`` is a usage error."""
    labels = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint=option)
        labels[key.strip()] = value.strip()
    return labels


def db_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--db PATH`` (default ``$PERFSTATS_DB`` or ./perfstats.duckdb) and ``--debug``."""
    func = click.option("--debug", is_flag=True, hidden=True, help="Show tracebacks.")(func)
    return click.option(
        "--db", "db", type=click.Path(dir_okay=False), default=None,
        help="Store file (default: $PERFSTATS_DB, else ./perfstats.duckdb; ':memory:' works).",
    )(func)


def label_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Repeatable ``--label k=v``."""
    return click.option("--label", "labels", multiple=True, metavar="K=V",
                        help="A label key=value (repeatable).")(func)


def emit(frame: pl.DataFrame, fmt: str, *, title: str | None = None) -> None:
    """Print a frame in the requested output format."""
    text = render(frame, fmt, title=title, console=stdout)
    if text is not None:
        click.echo(text.rstrip("\n"))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(perfstats.__version__, prog_name="perfstats")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Turn k6, Artillery and Locust results into decisions."""
    ctx.obj = {"debug": debug}


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@db_option
@label_option
@click.option("--format", "fmt", default=None, metavar="FORMAT",
              help="Force a source format instead of detecting it from the content.")
def ingest(paths: tuple[str, ...], db: str | None, debug: bool, labels: tuple[str, ...],
           fmt: str | None) -> None:
    """Ingest result files into the store; print one run id per PATH.

    A PATH is a result file, a directory holding one run's files, or a Locust --csv prefix.
    """
    store = perfstats.connect(db)
    label_map = parse_labels(labels)
    sizes = [_size(Path(p)) for p in paths]
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=stderr, disable=not stderr.is_terminal, transient=True) as progress:
        task = progress.add_task("ingesting", total=sum(sizes) or None)
        for path, size in zip(paths, sizes):
            progress.update(task, description=f"ingesting {Path(path).name}")
            run = perfstats.ingest(path, db=store, labels=label_map, fmt=fmt)
            progress.advance(task, size)
            click.echo(run.run_id)
            if run.existed:
                click.echo(f"perfstats: {path}: same content as run {run.run_id}; not added again",
                           err=True)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return 0


@cli.command(name="runs")
@db_option
@label_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]),
              default="table", show_default=True)
def runs_command(db: str | None, debug: bool, labels: tuple[str, ...], fmt: str) -> None:
    """List the runs in the store with their metadata."""
    frame = perfstats.runs(db, labels=parse_labels(labels))
    if fmt == "table":
        frame = frame.select("run_id", "tool", "tool_version", "format", "grain", "started_at",
                             "duration_s", "labels")
    emit(frame, fmt, title="runs")


@cli.command()
@click.argument("run")
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]),
              default="table", show_default=True)
def summary(run: str, db: str | None, debug: bool, fmt: str) -> None:
    """Per-endpoint summary of RUN (a run id, or a result path ingested into memory)."""
    loaded = perfstats.load(run, db=db)
    frame = loaded.summary().select(*SUMMARY_COLUMNS, "percentiles")
    emit(frame, fmt, title=str(loaded))


@cli.command()
@click.argument("template")
@click.option("--run", default=None, metavar="RUN",
              help="The run: a run id, or a result path (ingested inside the notebook).")
@click.option("--baseline", default=None, metavar="RUN", help="The baseline run, same forms.")
@click.option("--param", "params", multiple=True, metavar="K=V",
              help="Another template parameter (repeatable); values are parsed as literals.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file: .html (self-contained), .ipynb (executed) or .md.")
@click.option("--show-code", is_flag=True, help="Keep the code cells in HTML and markdown.")
@db_option
def report(template: str, run: str | None, baseline: str | None, params: tuple[str, ...],
           output: str, show_code: bool, db: str | None, debug: bool) -> None:
    """Render a report from a notebook TEMPLATE (run_summary, compare, capacity, history, or an
    .ipynb path); prints the path written. A failing cell exits 2 and is named on stderr.
    """
    from perfstats.report import OUTPUT_SUFFIXES, render_report

    if Path(output).suffix not in OUTPUT_SUFFIXES:
        raise click.BadParameter(f"{output}: use a {', '.join(OUTPUT_SUFFIXES)} file",
                                 param_hint="--output")
    path = render_report(template, run=run, baseline=baseline, output=output, db=db,
                         params=parse_labels(params, option="--param"), show_code=show_code)
    click.echo(str(path))


def main() -> None:
    """Entry point of the ``perfstats`` console script."""
    cli(prog_name="perfstats")
