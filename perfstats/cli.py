"""The ``perfstats`` command line: a thin layer over the public Python API.

Exit codes: 0 success / GO, 1 NO-GO (a regression or SLO breach), 2 bad input or usage (one line
on stderr), 3 internal error (a bug in perfstats: one line on stderr; ``--debug`` shows the
traceback), 130 interrupted. A reader that stops early (``perfstats compare ... | head``) changes
none of them: the rest of the output is dropped, the command finishes (``--junit``, the step
summary) and exits with its own code.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

import perfstats
from perfstats.errors import PerfstatsError, first_line

if TYPE_CHECKING:
    import polars as pl

# Only click, rich's console and perfstats' lazy namespace are imported here, so that
# `perfstats --help` starts at once; each command imports what it uses.

EXIT_OK, EXIT_NO_GO, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130
"""Ctrl-C, as shells report a process stopped by SIGINT."""

stderr = Console(stderr=True, soft_wrap=True)


def echo(text: str, *, err: bool = False, data: bool = False) -> None:
    """Print a line (or lines) of output; control and escape characters from the data are shown
    as ``\\xNN`` instead of reaching the terminal (see perfstats/render/escape.py).  ``data``
    output (CSV) piped into a file or program is written exactly."""
    from perfstats.render.escape import terminal_text

    if data and not (sys.stderr if err else sys.stdout).isatty():
        click.echo(text, err=err, color=True)  # color=True: click would strip ANSI codes
    else:
        click.echo(terminal_text(text), err=err)


def stdout() -> Console:
    """A console on the current stdout: as wide as the terminal, or $COLUMNS, else 200 when
    piped (tables fit that width: text wraps, numbers are never cut)."""
    console = Console(soft_wrap=True)
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console
    return Console(soft_wrap=True, width=200)


WORKFLOW = ["ingest", "summary", "compare", "capacity", "bottlenecks", "history", "report",
            "export", "runs", "delete"]
"""The order ``perfstats --help`` lists the commands in: the order of a working session."""


class _Group(click.Group):
    """Lists commands in workflow order; turns every perfstats error into one line on stderr
    and exit code 2, and any other exception (a bug) into one line and exit code 3."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands, key=lambda n: (WORKFLOW + [n]).index(n))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            # An ingest in progress has been rolled back: the store is as it was.
            echo("perfstats: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except PerfstatsError as exc:
            _fail(ctx, f"error: {exc}")
        except Exception as exc:  # a bug, but the user still gets one line
            _fail(ctx, f"internal error: {type(exc).__name__}: {first_line(exc)} (rerun with "
                       "--debug; please report it)", code=EXIT_INTERNAL)


def _remember_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta["perfstats.debug"] = True  # ctx.meta is shared by the group and its commands
    return value


def _fail(ctx: click.Context, message: str, *, code: int = EXIT_BAD_INPUT) -> None:
    if ctx.meta.get("perfstats.debug"):
        traceback.print_exc()
    echo(f"perfstats: {message.splitlines()[0] if message else message}", err=True)
    ctx.exit(code)


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
    func = click.option("--debug", is_flag=True, hidden=True, callback=_remember_debug,
                        help="Show tracebacks.")(func)
    return click.option(
        "--db", "db", type=click.Path(dir_okay=False), default=None,
        help="Store file (default: $PERFSTATS_DB, else ./perfstats.duckdb; ':memory:' works).",
    )(func)


def label_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Repeatable ``--label k=v``."""
    return click.option("--label", "labels", multiple=True, metavar="K=V",
                        help="A label key=value (repeatable).")(func)


def emit(frame: pl.DataFrame, fmt: str, *, title: str | None = None,
         units: dict[str, str | None] | None = None) -> None:
    """Print a frame in the requested output format (``units``: see ``perfstats.show``)."""
    from perfstats.render.tables import render

    text = render(frame, fmt, title=title, console=stdout(), units=units)
    if text is not None:
        echo(text.rstrip("\n"), data=fmt == "csv")


_EPILOG = """\b
The store: a DuckDB file, ./perfstats.duckdb unless --db PATH or $PERFSTATS_DB says otherwise
(':memory:' for a throw-away one). ingest creates it; the other commands read it and refuse a
store that does not exist. A RUN is a run id (or a unique prefix) in the store, or a result
path, ingested into a throw-away in-memory store.
\b
Exit codes: 0 success or GO; 1 NO-GO (compare: a regression or SLO breach; capacity: the SLO
fails at the lowest load); 2 bad input or usage, with one line on stderr; 3 internal error (a
bug: one line on stderr, --debug shows the traceback); 130 interrupted. A reader that stops
early (| head) changes none of them: the rest of the output is dropped quietly.
\b
Start with: perfstats ingest data/k6/baseline data/k6/candidate --label branch=main
Then:       perfstats compare data/k6/baseline data/k6/candidate
Per command: perfstats COMMAND --help (each has an example)."""


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=_EPILOG)
@click.version_option(perfstats.__version__, prog_name="perfstats")
@click.option("--debug", is_flag=True, callback=_remember_debug, help="Show tracebacks on errors.")
def cli(debug: bool) -> None:
    """Turn k6, Artillery and Locust results into decisions."""


def _looks_like_path(text: str) -> bool:
    """Not a run id: run ids are lowercase hex, so a name with a slash, a dot or another
    letter was meant as a file."""
    return not all(c in "0123456789abcdef" for c in text) or not text


def store_for_reading(db: str | None, *runs: str | None) -> str | None:
    """``db`` once checked for a read command: a RUN that looks like a path must exist, and the
    store must exist unless every RUN is a result path (ingested into memory).

    Raises:
        RunNotFoundError: a RUN path that does not exist.
        StoreError: no store file where one is needed.
    """
    from perfstats.errors import RunNotFoundError, StoreError
    from perfstats.readers import locust_prefix_files
    from perfstats.store import DEFAULT_DB

    wanted = [r for r in runs if r is not None]
    from_store = []
    for run in wanted:
        if os.path.exists(run) or locust_prefix_files(run):
            continue
        if _looks_like_path(run):
            raise RunNotFoundError(f"{run}: no such file or directory (and not a run id)")
        from_store.append(run)
    path = db if db is not None else os.environ.get("PERFSTATS_DB", DEFAULT_DB)
    is_file = path != ":memory:" and not path.startswith("ducklake:")  # a team store is a URL
    if (from_store or not wanted) and is_file and not os.path.exists(path):
        what = f"run {from_store[0]!r}" if from_store else "runs"
        raise StoreError(f"no store at {path} to read {what} from; store runs first with "
                         f"'perfstats ingest PATH --db {path}', or give --db / $PERFSTATS_DB")
    return db


@cli.command(short_help="Store result files as runs; prints one run id per PATH.")
@click.argument("paths", nargs=-1, required=True)
@db_option
@label_option
@click.option("--input-format", "fmt", default=None, metavar="FORMAT",
              help="Force the input format (e.g. locust-stats) instead of detecting it from "
                   "the content.")
@click.option("--format", "old_fmt", default=None, hidden=True)  # the old name of --input-format
@click.option("--one-run", is_flag=True,
              help="All PATHs are one run: the outputs of the load generators (shards) of one "
                   "distributed test.")
def ingest(paths: tuple[str, ...], db: str | None, debug: bool, labels: tuple[str, ...],
           fmt: str | None, old_fmt: str | None, one_run: bool) -> None:
    """Ingest result files into the store; print one run id per PATH (per run with --one-run).

    A PATH is a result file, a directory holding one run's files, or a Locust --csv prefix.
    k6 NDJSON outputs that share a testid tag over overlapping times are taken for the shards
    of one distributed run without --one-run (and said so on stderr).
    The format is detected from the content. Creates the store when it does not exist.

    \b
    Example:
      perfstats ingest data/k6/baseline data/k6/candidate --label branch=main
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from perfstats.readers.shards import recognised_shard_paths

    fmt = fmt or old_fmt
    store = perfstats.open_store(db)
    label_map = parse_labels(labels)
    groups = [list(paths)] if one_run else [[p] for p in paths]
    if not one_run and len(paths) > 1 and fmt is None:
        testid = recognised_shard_paths(paths)
        if testid is not None:
            groups = [list(paths)]
            click.echo(f"perfstats: {', '.join(paths)}: the shards of one distributed run "
                       f"(testid {testid}, overlapping times): one run", err=True)
    sizes = [sum(_size(Path(p)) for p in group) for group in groups]
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=stderr, disable=not stderr.is_terminal, transient=True) as progress:
        task = progress.add_task("ingesting", total=sum(sizes) or None)
        done = 0
        for group, size in zip(groups, sizes, strict=True):
            path = ", ".join(group)
            progress.update(task, description=f"ingesting {', '.join(Path(p).name for p in group)}")

            def within(share: float, before: int = done, size: int = size) -> None:
                progress.update(task, completed=before + share * size)

            run = perfstats.ingest(group if len(group) > 1 else group[0], db=store,
                                   labels=label_map, fmt=fmt,
                                   progress=within if progress.live.is_started else None)
            done += size
            progress.update(task, completed=done)
            echo(run.run_id)
            if run.existed:
                echo(f"perfstats: {path}: same content as run {run.run_id}; not added again",
                           err=True)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return 0


@cli.command(name="runs", short_help="List the stored runs with their metadata.")
@db_option
@label_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]),
              default="table", show_default=True)
def runs_command(db: str | None, debug: bool, labels: tuple[str, ...], fmt: str) -> None:
    """List the runs in the store with their metadata, oldest first.

    \b
    Example:
      perfstats runs --label branch=main
    """
    frame = perfstats.runs(db=store_for_reading(db), labels=parse_labels(labels))
    if fmt == "table":
        frame = frame.select("run_id", "tool", "tool_version", "format", "grain", "started_at",
                             "duration_s", "labels")
    emit(frame, fmt, title="runs")


@cli.command(name="delete", short_help="Remove runs and all their rows from the store.")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN...")
@db_option
@click.option("--dry-run", is_flag=True, help="List the runs that would go; change nothing.")
def delete_command(run_ids: tuple[str, ...], db: str | None, debug: bool, dry_run: bool) -> None:
    """Remove each RUN (a run id or unique prefix) and every row of it, all in one transaction:
    every RUN is removed or, when one is unknown or ambiguous, none.

    \b
    Example:
      perfstats delete 5a367cd78bb2 --dry-run
    """
    listing = perfstats.delete(list(run_ids), db=store_for_reading(db), dry_run=dry_run)
    emit(listing.select("run_id", "tool", "started_at", "labels", "rows"), "table",
         title="would delete (dry run)" if dry_run else "deleted")


_BARE_STATS: dict[str, str | None] = {c: None for c in (
    "count", "avg", "min", "med", "p90", "p95", "p99", "max", "last", "total", "per_second")}
"""A metric table's bare statistics have the unit its title says (or none), not ms."""

SUMMARY_SECTIONS = ["requests", "trends", "rates", "counters", "gauges", "scenarios", "checks",
                    "thresholds"]
"""Tables of ``perfstats summary``; a kind's tables are one per unit (``trends (ms)``)."""


@cli.command(short_help="Per-endpoint requests, errors and latencies of RUN, then its metrics.")
@click.argument("run")
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]),
              default="table", show_default=True)
@click.option("--by", default=None, metavar="SLICE",
              help="Slice every table: scenario, group, endpoint or tag:NAME (raw samples).")
@click.option("--metric", "metrics", multiple=True, metavar="NAME",
              help="Only this metric or sub-metric, e.g. quote_duration or "
                   "'http_req_duration{scenario:booking_flow}' (repeatable, one kind).")
@click.option("--section", type=click.Choice(SUMMARY_SECTIONS), default=None,
              help="Only these tables (a kind has one per unit); CSV prints one table.")
def summary(run: str, db: str | None, debug: bool, fmt: str, by: str | None,
            metrics: tuple[str, ...], section: str | None) -> None:
    """Summary of RUN (a run id, or a result path ingested into memory): requests per endpoint,
    then custom and built-in metrics by kind, checks and thresholds.

    \b
    Example:
      perfstats summary data/k6/candidate
    """
    from perfstats.render.tables import to_records

    loaded = perfstats.load(run, db=store_for_reading(db, run))
    if metrics:
        emit(loaded.summary(metric=list(metrics), by=by), fmt, title=str(loaded),
             units=_BARE_STATS)
        return
    tables = loaded.summary_tables(by=by)
    note = loaded.contents_note()
    if section is not None:
        tables = {k: v for k, v in tables.items() if k.split(" ")[0] == section}
    if fmt == "csv":  # one table: the first of the section asked for, else requests
        wanted = "requests" if "requests" in tables else next(iter(tables), None)
        tables = {wanted: tables[wanted]} if wanted in tables else {}
    if fmt == "json":
        body = {"run": loaded.run_id, "tool": loaded.tool, "grain": loaded.grain,
                "notes": [note] if note else [],
                **{name: to_records(frame) for name, frame in tables.items()}}
        echo(json.dumps(body, indent=2))
        return
    if note and fmt != "csv":
        echo(note if fmt == "table" else f"_{note}_\n")
    for name, frame in tables.items():
        emit(frame, fmt, title=f"{loaded} - {name}",
             units=None if name == "requests" else _BARE_STATS)
        if fmt == "markdown":
            echo("")


@cli.command(name="history", short_help="A metric over the stored runs and its change points.")
@db_option
@click.option("--endpoint", default=None, metavar="GLOB",
              help="Only endpoints matching this glob (e.g. 'POST *'; ALL is the whole run).")
@click.option("--metric", default="p95", show_default=True,
              help="p50, p90, p95, p99, mean, max, rps or error_rate; or NAME:AGGREGATION of "
                   "any metric (quote_duration:p95, checks:rate).")
@label_option
@click.option("--p-value", type=float, default=0.001, show_default=True,
              help="Significance level of a change point.")
@click.option("--min-magnitude", type=float, default=0.05, show_default=True,
              help="Smallest change point kept, relative (0.05 = 5 %).")
@click.option("--window", type=int, default=50, show_default=True,
              help="Window length of the split step (runs).")
@click.option("--method", type=click.Choice(["otava", "permutation"]), default="otava",
              show_default=True, help="Significance test: t-test (Otava) or permutations.")
@click.option("--all-kinds", is_flag=True,
              help="Keep runs unlike the latest one (other tool, load model or shape, peak "
                   "users or endpoints); by default they are left out and named.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]),
              default="table", show_default=True)
def history_command(db: str | None, debug: bool, endpoint: str | None, metric: str,
                    labels: tuple[str, ...], p_value: float, min_magnitude: float, window: int,
                    method: str, all_kinds: bool, fmt: str) -> None:
    """Per-endpoint series of a metric over the stored runs, their change points and the
    run-to-run noise.

    \b
    Example:
      perfstats history --label branch=main --metric p95 --endpoint 'POST *'
      perfstats history --metric quote_duration:p95
    """
    found = perfstats.history(db=store_for_reading(db), endpoint=endpoint, metric=metric,
                              labels=parse_labels(labels), p_value=p_value,
                              min_magnitude=min_magnitude, window=window, method=method,
                              like="all" if all_kinds else "latest")
    if fmt == "json":
        echo(json.dumps(found.to_dict(), indent=2))
    elif fmt == "markdown":
        echo(found.to_markdown().rstrip("\n"))
    else:
        runs = found.series["run_id"].n_unique()
        emit(found.display_frame().drop("metric"), fmt,
             title=f"history of {metric} over {runs} runs")
        if found.change_points.height:
            emit(found.change_points.drop("index", "metric"), fmt, title="change points")
        else:
            echo("no change point found")
        if found.left_out.height:
            emit(found.left_out, fmt, title="left out: unlike the latest run")
    for warning in found.warnings:
        echo(f"warning: {warning}", err=True)


@cli.command(name="export", short_help="Every table as Parquet, partitioned by run.")
@db_option
@click.option("--parquet", "directory", required=True, type=click.Path(file_okay=False),
              help="Write every table as a Parquet dataset partitioned by run_id into DIR.")
@click.option("--overwrite", is_flag=True, help="Replace the datasets of an earlier export.")
def export_command(db: str | None, debug: bool, directory: str, overwrite: bool) -> None:
    """Export the store as Parquet datasets partitioned by run (for DuckDB, Spark, Trino).

    \b
    Example:
      perfstats export --parquet exported/
    """
    exported = perfstats.export_parquet(directory, db=store_for_reading(db), overwrite=overwrite)
    emit(exported, "table", title=f"exported to {directory}")


@cli.command(short_help="A report page (HTML, ipynb, markdown) from a notebook template.")
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

    \b
    Example:
      perfstats report compare --baseline data/k6/baseline --run data/k6/candidate -o compare.html
    """
    from perfstats.report import OUTPUT_SUFFIXES, render_report

    if Path(output).suffix not in OUTPUT_SUFFIXES:
        raise click.BadParameter(f"{output}: use a {', '.join(OUTPUT_SUFFIXES)} file",
                                 param_hint="--output")
    values = parse_labels(params, option="--param")
    if template == "history":
        db = store_for_reading(db)
    path = render_report(template, run=run, baseline=baseline, output=output, db=db,
                         params=values, show_code=show_code)
    echo(str(path))


@cli.command(name="capacity", short_help="Instances needed for a peak, from a ramped RUN.")
@click.argument("run")
@click.option("--peak-users", type=float, default=None, metavar="N",
              help="Expected peak concurrent users (the users route).")
@click.option("--safety-factor", type=float, default=1.5, show_default=True,
              help="Head-room multiplier on the peak.")
@click.option("--slo", default="p95<500", show_default=True, metavar="EXPR",
              help="SLO, e.g. 'p95<500' or 'p99<1.2s, errors<0.5%' (error rate 1% by default).")
@click.option("--users-per-instance", type=float, default=None, metavar="N",
              help="Use this instead of the measured users per instance.")
@click.option("--target-rps", type=float, default=None, metavar="R",
              help="Target request rate (the requests/s route).")
@click.option("--min-instances", type=int, default=1, show_default=True)
@click.option("--include-protocol", "include_protocols", multiple=True, metavar="NAME",
              help="Count this non-HTTP request type (e.g. Locust's grpc) as server throughput "
                   "(repeatable; default: HTTP requests only).")
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]),
              default="table", show_default=True)
@click.pass_context
def capacity_command(ctx: click.Context, run: str, peak_users: float | None,
                     safety_factor: float, slo: str, users_per_instance: float | None,
                     target_rps: float | None, min_instances: int,
                     include_protocols: tuple[str, ...], db: str | None, debug: bool,
                     fmt: str) -> None:
    """Instances needed for the expected peak (--peak-users or --target-rps), the capacity
    of one instance at the SLO and what limits it, from a stepped or ramped RUN; then the
    evidence (load steps, USL fit, knee) and the assumptions.

    Exits 1 when the SLO fails even at the lowest tested load.

    \b
    Example:
      perfstats capacity data/k6/ramp --peak-users 2000 --safety-factor 1.5 --slo 'p95<500'
    """
    db = store_for_reading(db, run)
    plan = perfstats.capacity(run, peak_users=peak_users, safety_factor=safety_factor, slo=slo,
                              users_per_instance=users_per_instance, target_rps=target_rps,
                              min_instances=min_instances, include_protocols=include_protocols,
                              db=db)
    if fmt == "json":
        echo(json.dumps(plan.to_dict(), indent=2))
    elif fmt == "markdown":
        echo(plan.to_markdown().rstrip("\n"))
    else:
        # The answer first, then the evidence, then the assumptions; lines wrapped to the
        # terminal (a CI log: $COLUMNS, else 200).
        wrap = _wrapper(_text_width(stdout()))
        for line in plan.findings():
            echo(wrap(line))
        for warning in plan.warnings:
            echo(f"warning: {warning}", err=True)
        echo("")
        echo("Evidence:")
        for line in plan.evidence():
            echo(wrap(f"- {line}"))
        echo("")
        emit(plan.steps.select("step", "concurrency", "throughput_rps", "p50_ms", "p95_ms",
                               "p99_ms", "error_rate", "slo_ok"), fmt, title="Load steps:")
        echo("")
        echo("Assumptions:")
        for line in plan.assumptions:
            echo(wrap(f"- {line}"))
    if plan.slo_status == "never-met":
        ctx.exit(EXIT_NO_GO)


def _slo_options(values: tuple[str, ...]) -> dict[str, str] | None:
    """``("p95<500", "POST /x=p95<300")`` -> ``{"*": "p95<500", "POST /x": "p95<300"}``."""
    slos: dict[str, str] = {}
    for value in values:
        endpoint, sep, expr = value.rpartition("=")
        if sep and endpoint.strip() and "<" not in endpoint:
            slos[endpoint.strip()] = expr.strip()
        else:
            slos = {"*": value.strip(), **slos}
    return slos or None


@cli.command(name="bottlenecks", short_help="Rank what costs users the most time in RUN.")
@click.argument("run")
@click.option("--baseline", default=None, metavar="RUN",
              help="Measure regressions against this run (a run id or a result path).")
@click.option("--slo", "slos", multiple=True, metavar="EXPR",
              help="Latency SLO, e.g. 'p95<500' or '300' (ms, every request); "
                   "'ENDPOINT=EXPR' sets one endpoint's, 'METRIC=EXPR' a custom Trend's "
                   "(repeatable).")
@click.option("--error-cost", type=float, default=None, metavar="SECONDS",
              help="User-seconds one failed request costs (default: 5).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Items shown per kind (endpoint, group, scenario, status, error, trend, "
                   "trend by scenario, rate, check).")
@click.option("--backlog", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Also write the optimisation backlog (JSON, one item per row) to FILE.")
@db_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]),
              default="table", show_default=True)
def bottlenecks_command(run: str, baseline: str | None, slos: tuple[str, ...], error_cost: float,
                        top: int, backlog: str | None, db: str | None, debug: bool,
                        fmt: str) -> None:
    """Rank RUN's endpoints, groups, scenarios, statuses and error kinds, then its custom
    Trends, failing Rates and checks (each kind on its own), by user-seconds lost per hour.

    \b
    Example:
      perfstats bottlenecks data/k6/candidate --baseline data/k6/baseline --top 5
    """
    db = store_for_reading(db, run, baseline)
    cost = {} if error_cost is None else {"error_cost_s": error_cost}
    found = perfstats.bottlenecks(run, baseline=baseline, slo=_slo_options(slos), db=db, **cost)
    if backlog:
        Path(backlog).write_text(json.dumps(found.backlog(top), indent=2) + "\n")
    if fmt == "json":
        echo(json.dumps(found.to_dict(top), indent=2))
    elif fmt == "markdown":
        echo(found.to_markdown(top=top).rstrip("\n"))
    else:
        # The gain of each fix is a sentence: under the table, one wrapped line per item, so
        # that the table stays one line per item at 100 columns.
        shown = found.display_frame(top)
        emit(shown.select("rank", "kind", "item", "score s/h", "driver"), fmt,
             title=f"bottlenecks of run {found.run_id} (user-seconds lost per hour)")
        if shown.height:
            wrap = _wrapper(_text_width(stdout()))
            echo("gain of each fix:")
            for kind, rank, gain in shown.select("kind", "rank", "gain").iter_rows():
                echo(wrap(f"- {kind} {rank}: {gain}"))
        if found.patterns.height:
            emit(found.patterns.select("endpoint", "pattern", "evidence"), fmt,
                 title="patterns over time")
        for note in found.warnings:
            echo(f"note: {note}", err=True)


@cli.command(name="compare", short_help="GO / NO-GO: is CANDIDATE worse than BASELINE?")
@click.argument("runs", nargs=-1, metavar="[BASELINE] CANDIDATE...")
@click.option("--baseline", "baseline_option", default=None, metavar="RUN|auto",
              help="The baseline instead of the first argument; 'auto' pools the stored runs "
                   "since the last change point of the runs with the --label(s).")
@label_option
@click.option("--endpoint", "endpoints", multiple=True, metavar="GLOB",
              help="Only endpoints matching this glob (repeatable), e.g. 'POST /api/*'.")
@click.option("--ignore", multiple=True, metavar="GLOB",
              help="Leave out endpoints matching this glob (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]),
              default="table", show_default=True)
@click.option("--all", "all_checks", is_flag=True,
              help="Show every check in the table, the ok ones too (default: the others).")
@click.option("--junit", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Also write a JUnit XML report (one test case per check) to FILE.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              metavar="FILE", help="perfstats.toml or pyproject.toml to read instead of the one "
                                   "found from the working directory up.")
@db_option
@click.pass_context
def compare_command(ctx: click.Context, runs: tuple[str, ...], baseline_option: str | None,
                    labels: tuple[str, ...], endpoints: tuple[str, ...], ignore: tuple[str, ...],
                    fmt: str, all_checks: bool, junit: str | None, config_file: str | None,
                    db: str | None, debug: bool) -> None:
    """Is CANDIDATE worse than BASELINE? Exit 0 GO, 1 NO-GO, 2 bad input.

    Each run is a run id (or prefix) in the store or a result path; with --baseline, several
    CANDIDATE paths are the shards of one distributed run (as ingest --one-run). Every endpoint
    and the whole run are checked on p50, p95, p99, mean, throughput and error rate; see
    docs/compare.md. The markdown report is also appended to $GITHUB_STEP_SUMMARY when it is set.

    \b
    Examples:
      perfstats compare data/k6/baseline data/k6/candidate --junit compare.xml
      perfstats compare --baseline auto --label branch=main data/k6/candidate
    """
    if baseline_option is None and len(runs) != 2 or baseline_option is not None and not runs:
        raise click.UsageError("give BASELINE and CANDIDATE, or --baseline RUN|auto and "
                               "CANDIDATE")
    baseline, shards = (baseline_option, runs) if baseline_option is not None else (runs[0],
                                                                                    runs[1:])
    label_map = parse_labels(labels)
    if label_map and baseline != "auto":
        raise click.UsageError("--label selects the runs of --baseline auto")
    if baseline == "auto" and not label_map:
        raise click.UsageError("--baseline auto needs --label K=V for the line of runs")
    if len(shards) > 1 and not all(os.path.exists(p) for p in shards):
        raise click.UsageError("several CANDIDATEs are the result files of one distributed run: "
                               "give their paths (or its run id alone)")
    if baseline == "auto":
        store_for_reading(db)  # the pooled runs are stored ones
    db = store_for_reading(db, *[] if baseline == "auto" else [baseline], *shards)
    # The candidate: a run id, a result path, or the result files of one distributed run.
    candidate = perfstats.load(shards[0], db=db) if len(shards) == 1 else perfstats.ingest(
        list(shards), db=db if db is not None else perfstats.open_store(":memory:"))
    if baseline == "auto":
        pooled = perfstats.baseline_runs(db=db, labels=label_map, exclude=[candidate.run_id])
        result = perfstats.compare(pooled, candidate, config=config_file, db=db,
                                   endpoints=endpoints, ignore=ignore)
    else:
        result = perfstats.compare(baseline, candidate, config=config_file, db=db,
                                   endpoints=endpoints, ignore=ignore)
    markdown = result.to_markdown()
    if fmt == "table":
        # Warnings come before the verdict: they say whether it can be trusted.
        console = stdout()
        console.print(result.to_text(all_checks=all_checks, width=_text_width(console)),
                      soft_wrap=True)
    else:
        echo(result.to_json() if fmt == "json" else markdown.rstrip("\n"))
        for warning in result.warnings:
            echo(f"warning: {warning}", err=True)
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    if junit:
        Path(junit).write_text(result.to_junit(), encoding="utf-8")
    ctx.exit(EXIT_NO_GO if result.verdict == "NO-GO" else EXIT_OK)


def _wrapper(width: int) -> Callable[[str], str]:
    """Break a line between words to ``width`` columns; a ``- `` item's later lines indented."""
    from perfstats.render.tables import wrap_words

    def wrap(line: str) -> str:
        return wrap_words(line, width, indent="  " if line.startswith("- ") else "")
    return wrap


def _text_width(console: Console) -> int:
    """The terminal's width; when piped, ``$COLUMNS`` if set, else the width of the terminal
    stderr goes to (``perfstats compare ... | less``), else wide (a CI log)."""
    if console.is_terminal:
        return console.width
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    try:
        return os.get_terminal_size(2).columns if os.isatty(2) else 200
    except OSError:
        return 200


class _QuietStdout:
    """``sys.stdout`` for the console script: once the reader of a pipe has gone (``perfstats
    summary RUN | head -3``), the rest of the output goes to the null device instead of raising
    ``BrokenPipeError``, so that the command ends with its own exit code (a GO stays 0, a NO-GO
    1), not click's 1 for a closed pipe."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()

    def _discard(self) -> None:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, self._stream.fileno())  # what is still buffered goes there too
        os.close(null)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main() -> None:
    """Entry point of the ``perfstats`` console script."""
    sys.stdout = _QuietStdout(sys.stdout)  # type: ignore[assignment]
    cli(prog_name="perfstats")
