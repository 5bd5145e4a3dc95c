"""Locust reader: the ``--csv`` family of every Locust generation and the ``--json`` output.

One run is any subset of its files (docs/ingest.md, section "Locust", tells the whole story):

- ``_stats.csv`` (0.x: ``_requests.csv`` + ``_distribution.csv``) -> ``summaries`` as Locust wrote
  them (``tool-summary``);
- ``_stats_history.csv`` -> ``windows`` (counts are differences of the cumulative totals,
  percentiles as written: ``tool-recent`` or ``tool-cumulative``);
- ``_failures.csv`` / ``_exceptions.csv`` -> ``errors``;
- ``--json`` / ``--json-file`` -> ``histograms``, ``summaries`` computed from them with Locust's own
  percentile rule (``histogram``) and per-second ``windows`` (counts only).

When a run has both, summaries come from the JSON (it is written at shutdown; ``_stats.csv`` is the
last one-second snapshot and misses the final requests) and windows from the history file (it has
percentiles).  CSV text is decoded (UTF-8, else GB18030), its line endings normalised, and parsed
by polars; JSON is parsed by DuckDB.  No per-row Python loop anywhere.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from perfstats.errors import IngestError, first_line
from perfstats.readers.detect import (
    LOCUST_DISTRIBUTION_V0,
    LOCUST_EXCEPTIONS,
    LOCUST_FAILURES,
    LOCUST_HISTORY,
    LOCUST_JSON,
    LOCUST_REQUESTS_V0,
    LOCUST_STATS,
    is_gzip,
)
from perfstats.readers.shards import mix_summaries
from perfstats.readers.writer import RunWriter, SourceFile
from perfstats.store import ALL_ENDPOINTS, fetch_frame

PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
"""The percentiles the store keeps, as Locust fractions."""

_FINEST_FIRST = (LOCUST_JSON, LOCUST_HISTORY, LOCUST_STATS, LOCUST_REQUESTS_V0,
                 LOCUST_DISTRIBUTION_V0, LOCUST_FAILURES, LOCUST_EXCEPTIONS)
"""The run's ``format`` is the finest of its files."""
_AGGREGATE_NAMES = ("Aggregated", "Total")
_JSON_DOC, _JSON_STATS = "_perfstats_locust_doc", "_perfstats_locust_stats"
_JSON_ENDPOINT = ("CASE WHEN coalesce(e.method, '') = '' THEN e.name "
                  "ELSE e.method || ' ' || e.name END")
"""Canonical endpoint of a JSON stats or error entry ``e`` (SQL)."""
_ADDRESS = r"at 0x[0-9a-fA-F]+"
"""Per-object memory addresses in error reprs; replaced so one logical error is one row."""
_ADDRESS_PLACEHOLDER = "at 0x..."

_COLUMNS = {
    "type": "method", "method": "method", "name": "name",
    "request count": "count", "# requests": "count",
    "failure count": "failures", "# failures": "failures",
    "median response time": "median", "average response time": "mean",
    "min response time": "min", "max response time": "max", "requests/s": "rps",
    "timestamp": "ts", "user count": "users",
}
_HISTORY_TOTALS = {
    "total request count": "count", "total failure count": "failures",
    "total median response time": "median", "total average response time": "mean",
    "total min response time": "min", "total max response time": "max",
}
_REQUIRED = ("name", "count", "failures")
"""Columns of a statistics file an analysis needs: without failures the error check cannot fire."""
_HEADER_OF = {"name": "Name", "count": "Request Count", "failures": "Failure Count",
              "ts": "Timestamp"}
_PERCENTILE_HEADER = re.compile(r"^(\d+(?:\.\d+)?)%?$")
_PERCENTILE_COLUMNS = {50.0: "p50", 90.0: "p90", 95.0: "p95", 99.0: "p99", 100.0: "p100"}
_TEXT_COLUMNS = ("method", "name")

_SUMMARY_COLUMNS = ["endpoint", "tool_name", "method", "count", "failures", "min", "mean", "p50",
                    "p90", "p95", "p99", "max", "rps", "percentiles"]
_WINDOW_COLUMNS = ["endpoint", "start", "length_s", "count", "failures", "min", "mean", "p50",
                   "p90", "p95", "p99", "max", "total_ms", "users", "percentiles"]
_ERROR_COLUMNS = ["endpoint", "kind", "error", "count", "first_seen", "last_seen"]

_JSON_ENTRY = (
    '[{"name": "VARCHAR", "method": "VARCHAR", "start_time": "DOUBLE", '
    '"last_request_timestamp": "DOUBLE", "num_requests": "BIGINT", '
    '"num_none_requests": "BIGINT", "num_failures": "BIGINT", "total_response_time": "DOUBLE", '
    '"min_response_time": "DOUBLE", "max_response_time": "DOUBLE", '
    '"response_times": "MAP(VARCHAR, BIGINT)", "num_reqs_per_sec": "MAP(VARCHAR, BIGINT)", '
    '"num_fail_per_sec": "MAP(VARCHAR, BIGINT)"}]'
)
_JSON_ERRORS = ("STRUCT(method VARCHAR, name VARCHAR, error VARCHAR, occurrences BIGINT, "
                "occurences BIGINT)")
_JSON_MAX_BYTES = 1 << 30


def read(files: list[SourceFile], writer: RunWriter) -> None:
    """Read one Locust run made of any subset of its CSV files and JSON output into ``writer``.

    Raises:
        IngestError: a file is malformed (truncated line, bad number...), two files of one kind
            are given, only failure/exception files are given, or no file holds a data row.
    """
    where = ", ".join(str(f.path) for f in files)
    try:
        _read(files, writer, where)
    except pl.exceptions.PolarsError as exc:  # a shape no check above foresaw
        raise IngestError(where, f"cannot parse Locust data ({first_line(exc)})") from exc


@dataclass
class _Parsed:
    """What the files of one Locust process hold, before anything is written."""

    format: str
    version: _VersionRange
    stats: pl.DataFrame | None
    history: _History | None
    report: _JsonRun | None
    summaries: pl.DataFrame
    windows: pl.DataFrame | None
    errors: list[pl.DataFrame]


def _read(files: list[SourceFile], writer: RunWriter, where: str) -> None:
    groups = _shard_groups(files, where)
    if len(groups) > 1:
        _write_shards(writer, [_parse(g, writer, ", ".join(str(f.path) for f in g))
                               for g in groups])
        return
    run = _parse(files, writer, where)
    writer.info.format = run.format
    writer.insert("summaries", run.summaries.select(_SUMMARY_COLUMNS))
    if run.windows is not None:
        writer.insert("windows", run.windows.select(_WINDOW_COLUMNS))
    if run.report is not None:
        writer.insert("histograms", run.report.histograms)
    for frame in run.errors:
        writer.insert("errors", frame.select(_ERROR_COLUMNS))
    _fill_info(writer, run.summaries, run.stats, run.windows, run.history, run.report,
               run.version)


def _parse(files: list[SourceFile], writer: RunWriter, where: str) -> _Parsed:
    sources = _by_format(files, where)
    version = _VersionRange()
    if not any(fmt in sources for fmt in (LOCUST_STATS, LOCUST_REQUESTS_V0,
                                          LOCUST_DISTRIBUTION_V0, LOCUST_HISTORY, LOCUST_JSON)):
        raise IngestError(where, "Locust failure/exception files hold no request statistics; "
                                 "ingest them with the run's _stats.csv, history or JSON file")
    stats = _read_stats(sources, version)
    history = _read_history(sources[LOCUST_HISTORY], version) if LOCUST_HISTORY in sources \
        else None
    report = _read_json(sources[LOCUST_JSON], writer, version) if LOCUST_JSON in sources \
        else None
    errors = [_read_failures(sources[LOCUST_FAILURES], version)] if LOCUST_FAILURES in sources \
        else ([report.errors] if report is not None else [])
    if LOCUST_EXCEPTIONS in sources:
        errors.append(_read_exceptions(sources[LOCUST_EXCEPTIONS], version))

    candidates = [report.summaries if report else None, stats,
                  history.summaries if history else None]
    summaries = next((s for s in candidates if s is not None and not s.is_empty()), None)
    if summaries is None:
        raise IngestError(where, "no data rows (the Locust files hold only a header)")
    windows = history.windows if history is not None and not history.windows.is_empty() \
        else (report.windows if report is not None else None)
    return _Parsed(next(f for f in _FINEST_FIRST if f in sources), version, stats, history,
                   report, summaries, windows, errors)


# ---------------------------------------------------------------------------------------------
# Shards: the outputs of several Locust processes that ran one test


def _shard_groups(files: list[SourceFile], where: str) -> list[list[SourceFile]]:
    """The files of each process: one group, unless a kind of file comes more than once; then
    each directory holds the files of one process."""
    formats = [f.format for f in files]
    if len(set(formats)) == len(formats):
        return [files]
    groups: dict[Path, list[SourceFile]] = {}
    for f in files:
        groups.setdefault(f.path.parent, []).append(f)
    for group in groups.values():
        seen: dict[str, Path] = {}
        for f in group:
            if f.format in seen:
                raise IngestError(where, f"two Locust {f.format} files in one directory "
                                         f"({seen[f.format].name}, {f.path.name}); the shards "
                                         "of a distributed run go in a directory each")
            seen[f.format] = f.path
    return list(groups.values())


def _write_shards(writer: RunWriter, shards: list[_Parsed]) -> None:
    """One run from several Locust processes (shards) that ran one test.

    Requests, failures, users and throughput add up.  With every process's ``--json-file`` the
    response-time histograms add up too, so the summaries' percentiles are exact to Locust's
    rounding (``histogram``, Locust's own rule on the merged buckets, as a master merges its
    workers'); otherwise they are a mixture of the processes' summaries, labelled so.  Windows
    add up per second; a window several processes wrote percentiles for gets their mixture.
    """
    reports = [s.report for s in shards]
    spans = [span for s in shards for span in (s.history.span if s.history else None,
                                               s.report.span if s.report else None) if span]
    first = min((a for a, _ in spans), default=None)
    last = max((b for _, b in spans), default=None)
    if all(r is not None for r in reports):
        histograms = (pl.concat([r.histograms for r in reports if r is not None])
                      .group_by("endpoint", "start", "bucket_ms").agg(pl.col("count").sum())
                      .sort("endpoint", "bucket_ms").select("endpoint", "start", "bucket_ms",
                                                            "count"))
        entries = pl.concat([r.entries for r in reports if r is not None]).group_by(
            "endpoint", maintain_order=True).agg(
            pl.col("tool_name", "method").first(),
            pl.col("count", "none_count", "failures", "total_response_time").sum(),
            pl.col("min").min(), pl.col("max").max())
        seconds = last - first if first is not None and last is not None else 0.0
        summaries = _json_summaries(entries, histograms.drop("start"), seconds)
        writer.insert("histograms", histograms)
        how = "percentiles exact to Locust's rounding (the processes' histograms merged)"
    else:
        summaries = mix_summaries(pl.concat([s.summaries.select(_SUMMARY_COLUMNS)
                                             for s in shards], how="vertical_relaxed"),
                                  "endpoint")
        how = "percentiles approximate (a mixture of the processes' summaries)"
    windows = _merged_windows_of([s.windows for s in shards if s.windows is not None])
    writer.insert("summaries", summaries.select(_SUMMARY_COLUMNS))
    if windows is not None:
        writer.insert("windows", windows.select(_WINDOW_COLUMNS))
    errors = [frame.select(_ERROR_COLUMNS) for s in shards for frame in s.errors]
    if errors:
        writer.insert("errors", _grouped_errors(pl.concat(errors, how="vertical_relaxed"))
                      .select(_ERROR_COLUMNS))
    info = writer.info
    info.format = next(f for f in _FINEST_FIRST if any(s.format == f for s in shards))
    info.tool_version = shards[0].version.spec()
    info.load_model = "closed"
    info.grain = "histograms" if all(r is not None for r in reports) else (
        "windows" if windows is not None else "summary")
    if first is not None and last is not None:
        info.started_at, info.ended_at = _utc(first), _utc(last)
        info.duration_s = last - first
    users = None if windows is None else windows.filter(
        pl.col("endpoint") == ALL_ENDPOINTS)["users"].max()
    if users is None:  # no per-second users: each process's most, added up
        most = [m for s in shards for m in (s.history.max_users if s.history else None,
                                             s.report.max_users if s.report else None)
                if m is not None]
        users = sum(most) if most else None
    info.max_users = float(users) if users is not None else None
    info.notes.append(f"{len(shards)} Locust processes merged as the shards of one distributed "
                      f"run: requests, users and throughput add up; {how}")


def _merged_windows_of(frames: list[pl.DataFrame]) -> pl.DataFrame | None:
    """The windows of several processes summed per endpoint and start (users too)."""
    if not frames:
        return None
    rows = pl.concat([f.select(_WINDOW_COLUMNS) for f in frames], how="vertical_relaxed")
    keys = ["endpoint", "start", "length_s"]
    sums = rows.group_by(keys, maintain_order=True).agg(
        pl.col("count").sum(),
        pl.when(pl.col("failures").null_count() == 0).then(pl.col("failures").sum())
        .alias("failures"),
        pl.col("min").min(), pl.col("max").max(),
        pl.when(pl.col("total_ms").null_count() == 0).then(pl.col("total_ms").sum())
        .alias("total_ms"),
        pl.when(pl.col("users").null_count() < pl.len()).then(pl.col("users").sum())
        .alias("users"),
        ((pl.col("mean") * pl.col("count")).sum() / pl.col("count").sum()).alias("mean"),
        pl.len().alias("processes"))
    alone = rows.join(sums.filter(pl.col("processes") == 1).select(keys), on=keys)
    shared = rows.join(sums.filter(pl.col("processes") > 1).select(keys), on=keys)
    mixed = _window_mixtures(shared)
    merged = sums.filter(pl.col("processes") > 1).drop("processes").join(
        mixed, on=keys, how="left")
    return pl.concat([alone.select(_WINDOW_COLUMNS), merged.select(_WINDOW_COLUMNS)],
                     how="vertical_relaxed").sort("endpoint", "start")


def _window_mixtures(rows: pl.DataFrame) -> pl.DataFrame:
    """``endpoint, start, length_s, p50..p99, percentiles`` of the windows several processes
    wrote that hold a timed one: the mixture of the timed ones
    (:func:`~perfstats.readers.shards.mix_summaries`; a lone timed window's own label)."""
    keys = ["endpoint", "start", "length_s"]
    timed = rows.filter(pl.col("p50").is_not_null())
    return mix_summaries(timed.with_columns(rps=pl.lit(None, pl.Float64)), keys).join(
        timed.group_by(keys).agg(pl.len().alias("_n"), pl.col("percentiles").first()),
        on=keys, suffix="_own").select(
        *keys, *PERCENTILES, percentiles=pl.when(pl.col("_n") > 1).then(pl.col("percentiles"))
        .otherwise(pl.col("percentiles_own")))


def _by_format(files: list[SourceFile], where: str) -> dict[str, Path]:
    sources: dict[str, Path] = {}
    for f in files:
        if f.format in sources:
            raise IngestError(where, f"two Locust {f.format} files in one run "
                                     f"({sources[f.format].name}, {f.path.name})")
        sources[f.format] = f.path
    return sources


def _fill_info(writer: RunWriter, summaries: pl.DataFrame, stats: pl.DataFrame | None,
               windows: pl.DataFrame | None, history: _History | None, report: _JsonRun | None,
               version: _VersionRange) -> None:
    info = writer.info
    info.tool_version = version.spec()
    info.load_model = "closed"
    info.grain = "histograms" if report is not None else (
        "windows" if windows is not None and not windows.is_empty() else "summary")
    spans = [s for s in (history.span if history else None, report.span if report else None) if s]
    if spans:
        info.started_at = _utc(min(s[0] for s in spans))
        info.ended_at = _utc(max(s[1] for s in spans))
        info.duration_s = max(s[1] for s in spans) - min(s[0] for s in spans)
    if stats is not None:
        total, kept = (frame.filter(pl.col("endpoint") == ALL_ENDPOINTS)
                       for frame in (stats, summaries))
        same = kept.height and total.height and kept["count"][0] == total["count"][0]
        if (same or not spans) and total.height and (total["rps"][0] or 0) > 0:
            # Locust's own duration: its Aggregated Requests/s is count / (last request - start).
            # A _stats.csv written before the last requests (its count is smaller than the
            # JSON's) describes another moment: then the span of the JSON entries is used.
            info.duration_s = float(total["count"][0]) / float(total["rps"][0])
    users = [u for u in (history.max_users if history else None,
                         report.max_users if report else None) if u is not None]
    info.max_users = max(users) if users else None
    if report is not None and history is not None:
        info.notes.append("summaries from the JSON histograms, windows from the history CSV")
    if history is not None and history.period_s > history.row_s:
        info.notes.append(f"history rows every {history.row_s:g} s carry new requests only every "
                          f"{history.period_s:g} s (distributed workers report every "
                          f"{history.period_s:g} s): windows of {history.period_s:g} s")


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


# ---------------------------------------------------------------------------------------------
# Version ranges


@dataclass
class _VersionRange:
    """The Locust versions consistent with the shapes seen so far: ``lo <= v < hi``."""

    lo: tuple[int, ...] = (0, 0, 0)
    hi: tuple[int, ...] | None = None

    def narrow(self, lo: str | None = None, hi: str | None = None) -> None:
        if lo is not None:
            self.lo = max(self.lo, _version(lo))
        if hi is not None:
            self.hi = _version(hi) if self.hi is None else min(self.hi, _version(hi))

    def spec(self) -> str | None:
        """A specifier such as ``>=1.2.0,<2.43.4``; None when nothing (or nothing consistent)."""
        if self.hi is not None and self.lo >= self.hi:
            return None
        parts = ([f">={_dotted(self.lo)}"] if self.lo > (0, 0, 0) else []) + (
            [f"<{_dotted(self.hi)}"] if self.hi is not None else [])
        return ",".join(parts) or None


def _version(text: str) -> tuple[int, ...]:
    numbers = tuple(int(x) for x in text.split("."))
    return numbers + (0,) * (3 - len(numbers))


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


# ---------------------------------------------------------------------------------------------
# CSV parsing


@contextmanager
def _parsing(path: Path) -> Iterator[None]:
    """Turn polars parse and cast errors into a one-line :class:`IngestError` naming ``path``."""
    try:
        yield
    except pl.exceptions.PolarsError as exc:
        raise IngestError(path, f"malformed Locust CSV ({first_line(exc)})") from exc


def _text(path: Path) -> str:
    """The file as text: UTF-8 (BOM dropped), else GB18030 (GBK names), newlines normalised."""
    raw = path.read_bytes()
    if is_gzip(path):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise IngestError(path, f"truncated or corrupt gzip ({exc})") from exc
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = raw.decode("utf-8", errors="replace")
    # Windows-written files end lines in \r\r\n; a lone blank row is dropped after parsing.
    return text.replace("\r\r\n", "\n").replace("\r\n", "\n")


def _csv(path: Path) -> tuple[pl.DataFrame, bool]:
    """All-string frame of a Locust CSV without blank rows, and whether its header is quoted.

    Raises:
        IngestError: malformed CSV, or a row with fewer fields than the header (a truncated line).
    """
    text = _text(path)
    quoted = text.lstrip().startswith('"')
    with _parsing(path):
        frame = pl.read_csv(io.StringIO(text), infer_schema=False, quote_char='"')
    frame = frame.rename({c: c.strip() for c in frame.columns})
    frame = frame.filter(~pl.all_horizontal(pl.all().is_null()))
    # polars pads a short row with nulls; an empty cell is null too, so the fields are counted
    # (Locust's CSVs are small: a summary per endpoint, a history row per second or so).
    short = next((n for n, row in enumerate(csv.reader(io.StringIO(text))) if row
                  and len(row) < len(frame.columns)), None)
    if short is not None:
        raise IngestError(path, f"truncated line: data row {short} has fewer fields than the "
                                f"header ({len(frame.columns)})")
    return frame, quoted


def _number(column: str) -> pl.Expr:
    value = pl.col(column).str.strip_chars()
    return pl.when(value.is_in(["N/A", ""])).then(None).otherwise(value).cast(pl.Float64)


def _standard(frame: pl.DataFrame, path: Path, *, history: bool = False,
              required: tuple[str, ...] = ("name", "count")) -> pl.DataFrame:
    """Rename Locust's columns (any generation) to standard ones, numbers as Float64."""
    chosen: dict[str, str] = {}
    for column in frame.columns:
        key = column.lower()
        target = (_HISTORY_TOTALS.get(key) if history else None) or _COLUMNS.get(key)
        match = _PERCENTILE_HEADER.match(column)
        if target is None and match:
            target = _PERCENTILE_COLUMNS.get(float(match[1]))
        if target is not None and (target not in chosen or key in _HISTORY_TOTALS):
            chosen[target] = column
    missing = [c for c in required if c not in chosen]
    if missing:
        names = ", ".join(_HEADER_OF.get(c, c) for c in missing)
        raise IngestError(path, f"Locust CSV without a {names} column (required)")
    with _parsing(path):
        return frame.select(
            (pl.col(column) if target in _TEXT_COLUMNS else _number(column)).alias(target)
            for target, column in chosen.items()
        )


def _is_aggregate() -> pl.Expr:
    method = pl.col("method")
    return pl.col("name").is_in(_AGGREGATE_NAMES) & (
        method.is_null() | method.str.strip_chars().is_in(["", "None"]))


def _with_endpoint(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``endpoint`` (``METHOD name``, ``ALL`` for the aggregate row); clean ``method``."""
    if "method" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("method"))
    frame = frame.with_columns(pl.col("name").fill_null(""))
    aggregate = _is_aggregate()
    method = pl.col("method").str.strip_chars()
    has_method = method.is_not_null() & ~method.is_in(["", "None"])
    return frame.with_columns(
        pl.when(aggregate).then(pl.lit(ALL_ENDPOINTS))
        .when(has_method).then(pl.concat_str([method, pl.col("name")], separator=" ")
                               .str.strip_chars())
        .otherwise(pl.col("name")).alias("endpoint"),
        pl.when(aggregate).then(None).otherwise(pl.col("name")).alias("tool_name"),
        pl.when(has_method & ~aggregate).then(method).otherwise(None).alias("method"),
    )


def _missing(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    return frame.with_columns(pl.lit(None, pl.Float64).alias(c) for c in columns
                              if c not in frame.columns)


# ---------------------------------------------------------------------------------------------
# _stats.csv and the 0.x requests/distribution pair


def _read_stats(sources: dict[str, Path], version: _VersionRange) -> pl.DataFrame | None:
    if LOCUST_STATS in sources:
        path = sources[LOCUST_STATS]
        frame, quoted = _csv(path)
        if "# requests" in frame.columns:
            version.narrow("0.13.3", "1.0")
        elif quoted:
            version.narrow("1.0", "1.1")
        elif "99.999%" in frame.columns:
            version.narrow("1.1", "1.2")
        else:
            version.narrow("1.2")
        return _summaries_as_written(_with_endpoint(_standard(frame, path, required=_REQUIRED)))
    if LOCUST_REQUESTS_V0 not in sources and LOCUST_DISTRIBUTION_V0 not in sources:
        return None
    version.narrow(hi="0.13.3")
    requests = distribution = None
    if LOCUST_REQUESTS_V0 in sources:
        path = sources[LOCUST_REQUESTS_V0]
        requests = _with_endpoint(_standard(_csv(path)[0], path, required=_REQUIRED))
        _narrow_v0(requests, version)
    if LOCUST_DISTRIBUTION_V0 in sources:
        path = sources[LOCUST_DISTRIBUTION_V0]
        distribution = _standard(_csv(path)[0], path)
        _narrow_v0(distribution, version)
        aggregate = pl.col("name").is_in(_AGGREGATE_NAMES)
        method = pl.col("name").str.extract(r"^(\S+) ", 1)
        distribution = distribution.with_columns(
            pl.when(aggregate).then(pl.lit(ALL_ENDPOINTS)).otherwise(pl.col("name"))
            .alias("endpoint"),
            pl.when(aggregate).then(None).otherwise(method).alias("method"),
            pl.when(aggregate).then(None)
            .otherwise(pl.col("name").str.replace(r"^\S+ ", "")).alias("tool_name"),
        )
    if requests is None:
        return _summaries_as_written(distribution)
    if distribution is not None:
        # The distribution's 50% column is the percentile; the requests file only has the median.
        percentiles = [c for c in ("p50", "p90", "p95", "p99") if c in distribution.columns]
        requests = requests.join(distribution.select("endpoint", *percentiles), on="endpoint",
                                 how="left")
    else:
        requests = _missing(requests, ["median"]).rename({"median": "p50"})
    return _summaries_as_written(requests)


def _narrow_v0(frame: pl.DataFrame, version: _VersionRange) -> None:
    names = set(frame["name"].to_list())
    if "Total" in names:
        version.narrow(hi="0.12.2")
    elif "Aggregated" in names:
        version.narrow(lo="0.12.2")


def _summaries_as_written(frame: pl.DataFrame) -> pl.DataFrame:
    frame = _missing(frame, ["failures", "min", "mean", "max", "rps", "p50", "p90", "p95", "p99"])
    timed = pl.col("count") > 0
    summaries = frame.select(
        "endpoint", "tool_name", "method",
        pl.col("count").cast(pl.Int64), pl.col("failures").cast(pl.Int64),
        *(pl.when(timed).then(pl.col(c)).alias(c) for c in ("min", "mean", "max")),
        *(pl.when(timed).then(pl.col(c)).alias(c) for c in PERCENTILES),
        "rps", pl.lit("tool-summary").alias("percentiles"),
    )
    return _with_all_row(summaries)


def _with_all_row(summaries: pl.DataFrame) -> pl.DataFrame:
    """Add a whole-run row (no percentiles) when the file has no aggregate row."""
    if summaries.is_empty() or (summaries["endpoint"] == ALL_ENDPOINTS).any():
        return summaries
    total = summaries.select(
        pl.lit(ALL_ENDPOINTS).alias("endpoint"), pl.lit(None, pl.String).alias("tool_name"),
        pl.lit(None, pl.String).alias("method"), pl.col("count").sum(),
        pl.col("failures").sum(), pl.col("min").min(),
        ((pl.col("mean") * pl.col("count")).sum() / pl.col("count").sum()).alias("mean"),
        *(pl.lit(None, pl.Float64).alias(c) for c in PERCENTILES), pl.col("max").max(),
        pl.col("rps").sum(), pl.lit("tool-summary").alias("percentiles"),
    )
    return pl.concat([summaries, total], how="vertical_relaxed")


# ---------------------------------------------------------------------------------------------
# _stats_history.csv


@dataclass
class _History:
    windows: pl.DataFrame
    summaries: pl.DataFrame
    span: tuple[float, float] | None
    max_users: float | None
    row_s: float = 1.0
    """Seconds between history rows."""
    period_s: float = 1.0
    """Seconds between updates of the counts (a multiple of ``row_s``; distributed runs: 3)."""


def _bucket(value: pl.Expr) -> pl.Expr:
    """Locust's response-time bucket (2 significant digits; half to even like ``round``)."""
    def rounded(step: float) -> pl.Expr:
        return (value / step).round(0) * step

    return (pl.when(value < 100).then(value.round(0)).when(value < 1000).then(rounded(10))
            .when(value < 10000).then(rounded(100)).otherwise(rounded(1000)))


def _read_history(path: Path, version: _VersionRange) -> _History:
    raw, quoted = _csv(path)
    legacy = raw.columns[:3] == ["Type", "Name", "Timestamp"]
    if legacy:
        version.narrow("0.13.3", "1.0")
    elif quoted:
        version.narrow("1.0", "1.2")
    else:
        version.narrow("1.2")
    frame = _with_endpoint(_standard(raw, path, history=True, required=("ts", "name", "count")))
    frame = _missing(frame, ["users", "failures", "mean", "min", "max", "median", "p50", "p90",
                             "p95", "p99", "p100"])
    if frame.is_empty():
        empty = pl.DataFrame(schema={c: pl.Float64 for c in _WINDOW_COLUMNS})
        return _History(empty, pl.DataFrame(), None, None)
    with _parsing(path):
        frame = frame.with_columns(pl.col("ts").cast(pl.Int64), pl.col("count").cast(pl.Int64),
                                   pl.col("failures").cast(pl.Int64))
    # A final row can repeat the previous timestamp (shutdown, user count 0): keep the latest
    # cumulative values and the users that were running in that interval.
    frame = frame.group_by("endpoint", "ts", maintain_order=True).agg(
        pl.all().exclude("users").last(), pl.col("users").max())
    current = legacy or quoted or _looks_current(frame)
    label = "tool-recent" if current else "tool-cumulative"
    precise_totals = not (legacy or quoted)  # 1.2+ writes the cumulative average in full
    windows = _history_windows(frame, label, current=current, precise=precise_totals)
    row_s = _row_interval(frame)
    period_s = _update_period(frame, row_s)
    if period_s > row_s:
        windows = _merged_windows(windows, period_s)
    summaries = _history_summaries(frame, current=current)
    span = (_history_start(frame), float(frame["ts"].max()))
    max_users = frame["users"].max()
    return _History(windows, summaries, span, None if max_users is None else float(max_users),
                    row_s=row_s, period_s=period_s)


_BURST_MIN_RATE = 5.0
"""Requests per history row below which rows without new requests are plain Poisson gaps."""
_BURST_ZERO_SHARE = 0.1
_MAX_PERIOD_ROWS = 10


def _history_start(frame: pl.DataFrame) -> float:
    """When the run started: the row just before the first with users or requests (Locust
    writes one idle row at its start; a distributed master more while it waits for workers)."""
    busy = pl.col("users").is_null() | (pl.col("users") > 0) | (pl.col("count") > 0)
    first = frame.filter(busy)["ts"].min()
    if first is None:
        return float(frame["ts"].min())
    before = frame.filter(pl.col("ts") < first)["ts"].max()
    return float(before if before is not None else first)


def _row_interval(frame: pl.DataFrame) -> float:
    gaps = frame.select(pl.col("ts").unique().sort().diff().drop_nulls())["ts"]
    return float(gaps.median()) if gaps.len() else 1.0


def _update_period(frame: pl.DataFrame, row_s: float) -> float:
    """Seconds between the updates the rows really carry.

    A distributed Locust master writes a row every second but learns of new requests only when
    a worker reports (every 3 s): the rows come in bursts (0, 0, 143, 0, 0, 242, ...). When rows
    without new requests are common although a row averages at least
    :data:`_BURST_MIN_RATE` requests, the period is the fewest rows whose blocks (from the
    first row with requests) all hold requests.
    """
    totals = frame.group_by("ts").agg(
        pl.col("count").filter(pl.col("endpoint") == ALL_ENDPOINTS).sum().alias("all"),
        pl.col("count").filter(pl.col("endpoint") != ALL_ENDPOINTS).sum().alias("parts"),
    ).sort("ts").select(pl.when(pl.col("all") > 0).then("all").otherwise("parts").alias("n"))
    new = totals["n"].diff().clip(lower_bound=0).drop_nulls().to_numpy()
    busy = np.flatnonzero(new > 0)
    if busy.size < 2 * _MAX_PERIOD_ROWS:
        return row_s
    active = new[busy[0]:busy[-1] + 1]
    if active.mean() < _BURST_MIN_RATE or np.mean(active == 0) <= _BURST_ZERO_SHARE:
        return row_s
    for rows in range(2, _MAX_PERIOD_ROWS + 1):
        full = active[:len(active) // rows * rows].reshape(-1, rows).sum(axis=1)
        if (full > 0).all():
            return rows * row_s
    return row_s


def _merged_windows(windows: pl.DataFrame, period_s: float) -> pl.DataFrame:
    """Consecutive history windows merged into windows of ``period_s`` from the first window
    with requests: counts and totals add up; percentiles and the mean are the block's last."""
    t0 = windows.filter(pl.col("count") > 0)["start"].min()
    if t0 is None:
        return windows
    offset = (pl.col("start") - pl.lit(t0)).dt.total_microseconds() / 1e6
    merged = windows.with_columns(
        (offset / period_s).floor().cast(pl.Int64).alias("block")
    ).group_by("endpoint", "block", maintain_order=True).agg(
        pl.col("start").min(), pl.col("length_s").sum(), pl.col("count").sum(),
        pl.col("failures").sum(), pl.col("min").min(),
        pl.col("total_ms").sum(), pl.col("total_ms").is_null().any().alias("no_total"),
        *(pl.col(c).last() for c in ("mean", "p50", "p90", "p95", "p99")),
        pl.col("max").max(), pl.col("users").max(), pl.col("percentiles").first(),
    )
    return merged.with_columns(
        pl.when(pl.col("no_total")).then(None).otherwise(pl.col("total_ms")).alias("total_ms"),
        pl.when(pl.col("no_total") | (pl.col("count") == 0)).then(pl.col("mean"))
        .otherwise(pl.col("total_ms") / pl.col("count")).alias("mean"),
    ).select(_WINDOW_COLUMNS).sort("endpoint", "start")


def _looks_current(frame: pl.DataFrame) -> bool:
    """True when a 1.2+ history's percentiles are over the last ~10 s, not since the start.

    Only full-history files (per-endpoint rows) of Locust 2.2.2+ have "current" percentiles;
    a cumulative ``100%`` is always the bucket of the cumulative maximum, a current one is not.
    """
    if not (frame["endpoint"] != ALL_ENDPOINTS).any():
        return False
    if frame["p100"].is_null().all():  # no 100% column (or no request): assume the 2.2.2+ case
        return True
    mismatch = frame.filter((pl.col("count") > 0) & pl.col("p100").is_not_null()
                            & (pl.col("p100") != _bucket(pl.col("max"))))
    return mismatch.height > 0


def _history_windows(frame: pl.DataFrame, label: str, *, current: bool,
                     precise: bool) -> pl.DataFrame:
    stamps = frame.select(pl.col("ts").unique().sort())
    gaps = stamps["ts"].diff().drop_nulls()
    interval = float(gaps.median()) if gaps.len() else 1.0
    stamps = stamps.with_columns(pl.col("ts").shift(1).alias("previous_stamp"))
    frame = frame.sort("endpoint", "ts").join(stamps, on="ts", how="left")
    previous = {c: pl.col(c).shift(1).over("endpoint") for c in ("ts", "count", "failures")}
    reset = previous["count"].is_not_null() & (pl.col("count") < previous["count"])
    fresh = previous["count"].is_null() | reset

    def delta(column: str, prior: pl.Expr) -> pl.Expr:
        return pl.when(fresh).then(pl.col(column)).otherwise(pl.col(column) - prior)

    total = pl.col("mean").fill_null(0.0) * pl.col("count")
    frame = frame.with_columns(
        pl.coalesce(previous["ts"], pl.col("previous_stamp"),
                    pl.col("ts") - pl.lit(interval)).alias("start_s"),
        delta("count", previous["count"]).alias("window_count"),
        delta("failures", previous["failures"]).alias("window_failures"),
        pl.when(fresh).then(total).otherwise(total - total.shift(1).over("endpoint"))
        .alias("total_ms"),
        (previous["ts"].is_null() & pl.col("previous_stamp").is_null()).alias("first"),
    )
    # The first row of a file marks the start (user count 0, N/A): no interval before it.
    frame = frame.filter(~(pl.col("first") & (pl.col("count") == 0)))
    percentiles = [pl.col(c) for c in PERCENTILES]
    if current:
        # Locust writes 0 when it has no snapshot from ~10 s ago (or no request since): unknown.
        unknown = pl.max_horizontal(pl.col("p100"), *percentiles).fill_null(0) <= 0
        percentiles = [pl.when(unknown).then(None).otherwise(p) for p in percentiles]
    counted = pl.col("window_count") > 0
    return frame.select(
        "endpoint",
        pl.from_epoch((pl.col("start_s") * 1_000_000).cast(pl.Int64), time_unit="us")
        .dt.replace_time_zone("UTC").alias("start"),
        (pl.col("ts") - pl.col("start_s")).cast(pl.Float64).alias("length_s"),
        pl.col("window_count").alias("count"), pl.col("window_failures").alias("failures"),
        pl.lit(None, pl.Float64).alias("min"),
        (pl.when(counted).then(pl.col("total_ms") / pl.col("window_count")) if precise
         else pl.lit(None, pl.Float64)).alias("mean"),
        *(p.alias(name) for p, name in zip(percentiles, PERCENTILES, strict=True)),
        pl.lit(None, pl.Float64).alias("max"),
        (pl.when(counted).then(pl.col("total_ms")).otherwise(0.0) if precise
         else pl.lit(None, pl.Float64)).alias("total_ms"),
        pl.when(pl.col("endpoint") == ALL_ENDPOINTS).then(pl.col("users")).alias("users"),
        pl.lit(label).alias("percentiles"),
    )


def _history_summaries(frame: pl.DataFrame, *, current: bool) -> pl.DataFrame:
    """Whole-run summaries from each endpoint's last history row (cumulative ``Total`` columns).

    Cumulative percentile columns are whole-run percentiles; with "current" ones only the
    cumulative median is known (it stands in for p50).
    """
    last = frame.sort("ts").group_by("endpoint", maintain_order=True).last()
    seconds = float(frame["ts"].max() - frame["ts"].min())
    if current:
        unknown = (pl.lit(None, pl.Float64).alias(c) for c in ("p90", "p95", "p99"))
        last = last.with_columns(pl.col("median").alias("p50"), *unknown)
    return _summaries_as_written(last.with_columns(
        (pl.col("count") / seconds if seconds > 0 else pl.lit(None, pl.Float64)).alias("rps")))


# ---------------------------------------------------------------------------------------------
# --json / --json-file (and the 0.x worker payload)


@dataclass
class _JsonRun:
    entries: pl.DataFrame
    """Per endpoint: ``count, none_count, failures, total_response_time, min, max``..."""
    histograms: pl.DataFrame
    summaries: pl.DataFrame
    windows: pl.DataFrame
    errors: pl.DataFrame
    span: tuple[float, float] | None
    max_users: float | None


@contextmanager
def _json_tables(writer: RunWriter, path: Path) -> Iterator[None]:
    """Parse the JSON file once into the temporary tables that :func:`_json_query` reads:
    ``doc`` (the top-level value) and ``stats`` (the request entries, aggregates left out)."""
    try:
        writer.con.execute(f"""
            CREATE TEMP TABLE {_JSON_DOC} AS
            SELECT json FROM read_json_objects(?, format = 'unstructured',
                                               maximum_object_size = {_JSON_MAX_BYTES}) AS t(json)
        """, [str(path)])
        writer.con.execute(f"""
            CREATE TEMP TABLE {_JSON_STATS} AS
            SELECT e.*, {_JSON_ENDPOINT} AS endpoint
            FROM (SELECT unnest(json_transform(
                      CASE WHEN json_type(json) = 'ARRAY' THEN json ELSE json -> 'stats' END, ?))
                      AS e
                  FROM {_JSON_DOC})
            WHERE NOT (coalesce(e.name, '') IN {_AGGREGATE_NAMES}
                       AND coalesce(e.method, '') = '')
        """, [_JSON_ENTRY])
    except duckdb.Error as exc:
        raise IngestError(path, f"malformed Locust JSON ({first_line(exc)})") from exc
    yield
    writer.con.execute(f"DROP TABLE {_JSON_DOC}; DROP TABLE {_JSON_STATS}")


def _json_query(writer: RunWriter, path: Path, select: str) -> pl.DataFrame:
    """``select`` over the tables ``doc`` and ``stats`` of :func:`_json_tables`."""
    sql = f"WITH doc AS (FROM {_JSON_DOC}), stats AS (FROM {_JSON_STATS}) {select}"
    try:
        return fetch_frame(writer.con, sql)
    except duckdb.Error as exc:
        raise IngestError(path, f"malformed Locust JSON ({first_line(exc)})") from exc


def _read_json(path: Path, writer: RunWriter, version: _VersionRange) -> _JsonRun:
    with _json_tables(writer, path):
        entries = _json_query(writer, path, """
            SELECT endpoint, name AS tool_name, nullif(method, '') AS method,
                   num_requests AS count, coalesce(num_none_requests, 0) AS none_count,
                   num_failures AS failures, total_response_time, min_response_time AS min,
                   max_response_time AS max, start_time, last_request_timestamp,
                   num_fail_per_sec IS NOT NULL AS has_fail_per_sec
            FROM stats""")
        buckets = _json_query(writer, path, """
            SELECT endpoint, key, CAST(key AS DOUBLE) AS bucket_ms, count
            FROM (SELECT endpoint, unnest(map_keys(response_times)) AS key,
                         unnest(map_values(response_times)) AS count FROM stats)""")
        per_second = _json_query(writer, path, """
            SELECT endpoint, second, sum(requests) AS count, sum(failures) AS failures FROM (
                SELECT endpoint, CAST(unnest(map_keys(num_reqs_per_sec)) AS BIGINT) AS second,
                       unnest(map_values(num_reqs_per_sec)) AS requests, 0 AS failures FROM stats
                UNION ALL
                SELECT endpoint, CAST(unnest(map_keys(num_fail_per_sec)) AS BIGINT),
                       0, unnest(map_values(num_fail_per_sec)) FROM stats
            ) GROUP BY ALL""")
        if entries.is_empty():
            raise IngestError(path, "Locust JSON without any request entry")
        if entries["tool_name"].null_count() or entries["count"].null_count():
            raise IngestError(path, "Locust JSON entry without a name or a numeric num_requests")
        _narrow_json(path, buckets, writer, version)
        histograms = _histograms(buckets)
        first, last = entries["start_time"].min(), entries["last_request_timestamp"].max()
        span = None if first is None or last is None else (float(first), float(last))
        summaries = _json_summaries(entries, histograms, span[1] - span[0] if span else 0.0)
        has_failures = bool(entries["has_fail_per_sec"].all())
        windows = _json_windows(per_second, has_failures)
        errors, max_users = _json_errors(path, writer)
        start = pl.lit(None, pl.Datetime("us", "UTC")).alias("start")
        return _JsonRun(entries, histograms.select("endpoint", start, "bucket_ms", "count"),
                        summaries, windows, errors, span, max_users)


def _narrow_json(path: Path, buckets: pl.DataFrame, writer: RunWriter,
                 version: _VersionRange) -> None:
    is_array = _json_query(writer, path, "SELECT json_type(json) = 'ARRAY' AS a FROM doc")["a"]
    key, value = pl.col("key"), pl.col("bucket_ms")
    raw_float = (value < 100) & (value != value.round(0))
    float_key = (value >= 100) & key.str.contains(".", literal=True)
    int_key = (value >= 100) & ~key.str.contains(".", literal=True)
    if buckets.filter(raw_float).height:
        version.narrow(hi="1.0")  # 0.x did not round response times under 100 ms
    elif bool(is_array.all()):
        version.narrow("2.14.1")  # --json appeared in 2.14.1
        if buckets.filter(float_key).height:
            version.narrow(hi="2.43.4")
        elif buckets.filter(int_key).height:
            version.narrow("2.43.4")


def _histograms(buckets: pl.DataFrame) -> pl.DataFrame:
    """Per-endpoint buckets plus the ``ALL`` histogram (Locust's Aggregated entry merges them)."""
    per_endpoint = buckets.group_by("endpoint", "bucket_ms").agg(pl.col("count").sum())
    total = per_endpoint.group_by("bucket_ms").agg(pl.col("count").sum()).select(
        pl.lit(ALL_ENDPOINTS).alias("endpoint"), "bucket_ms", "count")
    return pl.concat([per_endpoint, total]).sort("endpoint", "bucket_ms")


def locust_percentiles(histograms: pl.DataFrame, totals: pl.DataFrame) -> pl.DataFrame:
    """Percentiles by Locust's rule (``calculate_response_time_percentile``), per endpoint.

    Walk the buckets from the largest down and return the first bucket at which
    ``num_requests - processed <= int(num_requests * p)``: nearest rank over bucket values,
    no interpolation.  ``num_requests`` counts requests without a response time too.

    Args:
        histograms: ``endpoint, bucket_ms, count``.
        totals: ``endpoint, count`` (Locust's ``num_requests``).

    Returns:
        ``endpoint, p50, p90, p95, p99`` (null where the rule finds no bucket, e.g. no timed
        request; Locust prints 0 there).
    """
    walk = (histograms.sort(["endpoint", "bucket_ms"], descending=[False, True])
            .with_columns(pl.col("count").cum_sum().over("endpoint").alias("processed"))
            .join(totals.select("endpoint", pl.col("count").alias("requests")), on="endpoint"))
    remaining = pl.col("requests") - pl.col("processed")
    return walk.group_by("endpoint").agg(
        pl.col("bucket_ms").filter(
            remaining <= (pl.col("requests").cast(pl.Float64) * p).floor()).max().alias(name)
        for name, p in PERCENTILES.items()
    )


def _json_summaries(entries: pl.DataFrame, histograms: pl.DataFrame,
                    seconds: float) -> pl.DataFrame:
    total = entries.select(
        pl.lit(ALL_ENDPOINTS).alias("endpoint"), pl.lit(None, pl.String).alias("tool_name"),
        pl.lit(None, pl.String).alias("method"), pl.col("count").sum(),
        pl.col("none_count").sum(), pl.col("failures").sum(),
        pl.col("total_response_time").sum(), pl.col("min").min(), pl.col("max").max())
    rows = pl.concat([entries.select(total.columns), total], how="vertical_relaxed")
    timed = pl.col("count") - pl.col("none_count")
    rows = rows.join(locust_percentiles(histograms, rows), on="endpoint", how="left")
    return rows.select(
        "endpoint", "tool_name", "method", "count", "failures",
        pl.when(pl.col("count") > 0).then(pl.col("min")).alias("min"),
        pl.when(timed > 0).then(pl.col("total_response_time") / timed).alias("mean"),
        *PERCENTILES,
        pl.when(pl.col("count") > 0).then(pl.col("max")).alias("max"),
        (pl.col("count") / seconds if seconds > 0 else pl.lit(None, pl.Float64)).alias("rps"),
        pl.lit("histogram").alias("percentiles"),
    )


def _json_windows(per_second: pl.DataFrame, has_failures: bool) -> pl.DataFrame:
    """One-second windows per endpoint and ``ALL``, zero-filled from the first to the last."""
    if per_second.is_empty():
        return pl.DataFrame(schema={c: pl.Float64 for c in _WINDOW_COLUMNS})
    seconds = pl.DataFrame({"second": pl.int_range(per_second["second"].min(),
                                                   per_second["second"].max() + 1, eager=True)})
    grid = (per_second.select("endpoint").unique().join(seconds, how="cross")
            .join(per_second, on=["endpoint", "second"], how="left")
            .with_columns(pl.col("count", "failures").fill_null(0)))
    total = grid.group_by("second").agg(pl.col("count", "failures").sum()).with_columns(
        pl.lit(ALL_ENDPOINTS).alias("endpoint"))
    frame = pl.concat([grid, total.select(grid.columns)])
    return frame.sort("endpoint", "second").select(
        "endpoint",
        pl.from_epoch("second", time_unit="s").dt.replace_time_zone("UTC").alias("start"),
        pl.lit(1.0).alias("length_s"), pl.col("count").cast(pl.Int64),
        (pl.col("failures").cast(pl.Int64) if has_failures else pl.lit(None, pl.Int64))
        .alias("failures"),
        *(pl.lit(None, pl.Float64).alias(c) for c in ("min", "mean", *PERCENTILES, "max",
                                                       "total_ms", "users")),
        pl.lit(None, pl.String).alias("percentiles"),
    )


def _json_errors(path: Path, writer: RunWriter) -> tuple[pl.DataFrame, float | None]:
    """Errors and user count of a 0.x worker payload (``--json`` output has neither)."""
    errors = _json_query(writer, path, f"""
        SELECT {_JSON_ENDPOINT} AS endpoint,
               'error' AS kind, e.error AS error,
               coalesce(e.occurrences, e.occurences, 0) AS count
        FROM (SELECT unnest(map_values(json_transform(json -> 'errors',
                                                      '"MAP(VARCHAR, {_JSON_ERRORS})"'))) AS e
              FROM doc WHERE json_type(json) = 'OBJECT')""")
    users = _json_query(writer, path, """
        SELECT TRY_CAST(json ->> 'user_count' AS DOUBLE) AS users FROM doc
        WHERE json_type(json) = 'OBJECT'""")["users"].drop_nulls()
    return _grouped_errors(errors), (float(users.max()) if users.len() else None)


# ---------------------------------------------------------------------------------------------
# _failures.csv and _exceptions.csv


def _grouped_errors(frame: pl.DataFrame) -> pl.DataFrame:
    """Normalise memory addresses and merge the rows of one logical error."""
    frame = _missing(frame, ["first_seen", "last_seen"])
    return (frame.with_columns(pl.col("error").str.replace_all(_ADDRESS, _ADDRESS_PLACEHOLDER))
            .group_by("endpoint", "kind", "error", maintain_order=True)
            .agg(pl.col("count").sum().cast(pl.Int64),
                 pl.col("first_seen").min().cast(pl.Datetime("us", "UTC")),
                 pl.col("last_seen").max().cast(pl.Datetime("us", "UTC"))))


def _read_failures(path: Path, version: _VersionRange) -> pl.DataFrame:
    frame, quoted = _csv(path)
    if "First Seen" in frame.columns:
        version.narrow("2.44")
    elif quoted:
        version.narrow("0.14", "1.1")
    else:
        version.narrow("1.1", "2.44")
    seen = [c for c in ("First Seen", "Last Seen") if c in frame.columns]
    with _parsing(path):
        frame = _with_endpoint(frame.select(
            pl.col("Method").alias("method"), pl.col("Name").alias("name"),
            pl.col("Error").alias("error"),
            pl.col("Occurrences").str.strip_chars().cast(pl.Int64).alias("count"),
            *(pl.col(c).str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%SZ")
              .dt.replace_time_zone("UTC").alias(c.lower().replace(" ", "_")) for c in seen),
        ))
        return _grouped_errors(frame.with_columns(pl.lit("error").alias("kind")))


def _read_exceptions(path: Path, version: _VersionRange) -> pl.DataFrame:
    frame, _ = _csv(path)
    version.narrow("1.4.2")
    with _parsing(path):
        return _grouped_errors(frame.select(
            pl.lit(None, pl.String).alias("endpoint"), pl.lit("exception").alias("kind"),
            pl.col("Message").alias("error"),
            pl.col("Count").str.strip_chars().cast(pl.Int64).alias("count"),
        ))
