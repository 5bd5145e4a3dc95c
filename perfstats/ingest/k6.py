"""k6 results: ``--out json`` (NDJSON), ``--out csv`` and the end-of-test summaries.

A run is the finest raw output given (NDJSON over CSV; :func:`used_sources` drops the other one
before the run's content is hashed) plus at most one summary file, from which thresholds, checks,
the test duration and the metric values are taken.  Raw points are read by one DuckDB scan that
writes every Point of every metric into ``samples`` (tags split into the named columns, all other
tags and the metadata into ``extra``); summaries, windows, errors and checks are then derived in
SQL.  A summary alone gives a run of grain ``summary`` with the tool's own numbers.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb
import polars as pl

from perfstats.errors import IngestError
from perfstats.ingest.derive import derive_from_samples
from perfstats.ingest.detect import (
    K6_CSV,
    K6_MACHINE_SUMMARY,
    K6_NDJSON,
    K6_SUMMARY,
    K6_SUMMARY_EXPORT,
    is_gzip,
    read_head,
)
from perfstats.ingest.k6_summary import K6Summary, read_summary
from perfstats.ingest.writer import RunWriter, SourceFile
from perfstats.store import ALL_ENDPOINTS

RAW_FORMATS = (K6_NDJSON, K6_CSV)
"""Raw outputs, finest first."""
SUMMARY_FORMATS = (K6_SUMMARY, K6_SUMMARY_EXPORT, K6_MACHINE_SUMMARY)
"""Summary files, most informative first (the machine summary has no thresholds)."""

# k6 tag -> samples column. Every other tag goes into ``extra`` with the metadata.
NAMED_TAGS = {"name": "name", "method": "method", "status": "status", "url": "url",
              "group": "grp", "scenario": "scenario", "expected_response": "expected_response",
              "error_code": "error_code", "check": "check_name"}

INSERT_MEMORY_LIMIT = "512MB"
"""DuckDB's memory cap while points are inserted: keeps ingest under 1 GB RSS at any file size."""

OPEN_MODEL_BUSY_FRACTION = 0.8
"""Below this share of VU-time spent in iterations, a run is taken for an arrival-rate one."""

_NDJSON_COLUMNS = (
    "{'type': 'VARCHAR', 'metric': 'VARCHAR', 'data': 'STRUCT(\"time\" VARCHAR, "
    "\"value\" DOUBLE, tags JSON, metadata JSON, \"name\" VARCHAR, \"type\" VARCHAR, "
    "contains VARCHAR, thresholds JSON)'}"
)


def used_sources(sources: list[SourceFile]) -> list[SourceFile]:
    """The files of one k6 run that are read: the finest raw output and the best summary.

    Raises:
        IngestError: two raw outputs of one kind, or two summaries of one kind, were given
            (they cannot be told apart as parts of one run).
    """
    chosen = []
    for kinds in (RAW_FORMATS, SUMMARY_FORMATS):
        for kind in kinds:
            found = [s for s in sources if s.format == kind]
            if len(found) > 1:
                names = ", ".join(str(s.path) for s in found)
                raise IngestError(names, f"several {kind} files; give the files of one run")
            if found:
                chosen.append(found[0])
                break
    return chosen


def read(files: list[SourceFile], writer: RunWriter) -> None:
    """Read one k6 run (a raw output and/or a summary file) into ``writer``."""
    raw = next((f for f in files if f.format in RAW_FORMATS), None)
    summary_file = next((f for f in files if f.format in SUMMARY_FORMATS), None)
    if raw is None and summary_file is None:
        raise ValueError(f"no k6 file among {[str(f.path) for f in files]}")
    summary = read_summary(summary_file.path, summary_file.format) if summary_file else None
    info = writer.info
    info.format = (raw or summary_file).format  # type: ignore[union-attr]
    if summary is not None:
        info.duration_s = summary.duration_s
        info.tool_version = summary.tool_version
        info.notes.extend(summary.notes)
    line_thresholds: list[tuple[str, str]] = []
    if raw is not None:
        line_thresholds = _write_raw(raw, summary, writer)
    if summary is None or summary.thresholds is None:
        writer.insert("thresholds", pl.DataFrame(line_thresholds, orient="row", schema={
            "metric": pl.Utf8, "expression": pl.Utf8}))
        if line_thresholds:
            info.notes.append("thresholds from the NDJSON Metric lines: passed or failed is "
                              "unknown without a handleSummary or --summary-export file")
    if summary is not None:
        if raw is None:
            _write_summary_only(summary, writer)
        _write_summary_tables(summary, writer, with_checks=raw is None or _has_groups(summary))


def _has_groups(summary: K6Summary) -> bool:
    return summary.format != K6_MACHINE_SUMMARY


# --- raw points -------------------------------------------------------------------------------


def _write_raw(raw: SourceFile, summary: K6Summary | None,
               writer: RunWriter) -> list[tuple[str, str]]:
    """Insert the points and derive from them; returns the Metric lines' thresholds."""
    writer.info.grain = "samples"
    thresholds: list[tuple[str, str]] = []
    try:
        if raw.format == K6_NDJSON:
            thresholds = _insert_ndjson(raw.path, writer)
        else:
            _insert_csv(raw.path, writer)
    except duckdb.Error as exc:
        raise IngestError(raw.path, _reason(raw.path, exc)) from exc
    points = writer.scalar("SELECT count(*) FROM samples WHERE run_id = ?", [writer.run_id])
    if not points:
        raise IngestError(raw.path, "no data points (k6 wrote no Point line / row)")
    if summary is not None:
        _check_same_run(raw, summary, writer)
    writer.info.load_model = _load_model(writer)
    derive_from_samples(writer, checks=summary is None or not _has_groups(summary))
    return thresholds


def _insert_ndjson(path: Path, writer: RunWriter) -> list[tuple[str, str]]:
    """Points into ``samples`` in one ``read_ndjson`` scan, then Metric lines into ``metrics``;
    returns the Metric lines' thresholds.

    A line that is neither a Metric nor a valid Point stops the scan with an error.  ``extra`` is
    the tags object minus the named tags, merged with ``metadata`` (JSON merge-patch, one cast).
    The Metric lines, a few among millions, are then picked by a byte scan (:func:`_metric_lines`):
    cheaper than a second DuckDB scan, or than passing them through ``samples`` and deleting
    them inside the transaction (which makes the commit rewrite the table).
    """
    paths = "[" + ", ".join(f"'$.\"{k}\"'" for k in NAMED_TAGS) + "]"
    drop_named = "'{" + ",".join(f'"{k}":null' for k in NAMED_TAGS) + "}'"
    tag = {column: f"t[{i + 1}]" for i, column in enumerate(NAMED_TAGS.values())}
    source = (f"read_ndjson(?, columns = {_NDJSON_COLUMNS}, format = 'newline_delimited', "
              f"compression = '{'gzip' if is_gzip(path) else 'none'}')")
    keep = """CASE WHEN type = 'Point' AND metric IS NOT NULL AND data.time IS NOT NULL
                        AND data.value IS NOT NULL THEN true
                   WHEN type = 'Metric' AND data.name IS NOT NULL THEN false
                   ELSE error(CASE WHEN type IN ('Point', 'Metric')
                                   THEN 'a ' || type || ' line without metric, time or value'
                                   WHEN type IS NULL THEN 'a JSON line that is not k6 output'
                                   ELSE 'a line of type ' || type || ' is not k6 output' END)
              END"""
    with _bulk_insert(writer):
        writer.insert_sql(
            "samples",
            f"""
            SELECT metric, ts, value,
                   CASE WHEN starts_with(metric, 'http_')
                        THEN nullif(concat_ws(' ', {tag['method']},
                                              coalesce({tag['name']}, {tag['url']})), '')
                   END AS endpoint,
                   {', '.join(f'{expr} AS {column}' for column, expr in tag.items()
                              if column != 'expected_response')},
                   CASE {tag['expected_response']} WHEN 'true' THEN true WHEN 'false' THEN false
                   END AS expected_response,
                   CASE WHEN x <> '{{}}' THEN CAST(x AS MAP(VARCHAR, VARCHAR)) END AS extra
            FROM (
                SELECT metric, CAST(data.time AS TIMESTAMPTZ) AS ts, data.value AS value,
                       json_extract_string(data.tags, {paths}) AS t,
                       json_merge_patch(coalesce(data.tags, '{{}}'), {drop_named},
                                        coalesce(data.metadata, '{{}}')) AS x
                FROM {source} WHERE {keep}
            )
            """,
            [str(path)],
        )
    return _insert_metric_lines(path, _metric_lines(path), writer)


_METRIC_TOKEN = b'"Metric"'


def _metric_lines(path: Path) -> list[dict]:
    """The ``data`` of every Metric line, by a byte scan (no JSON parse of the Point lines).

    A line can only be a Metric line if it holds the JSON string token ``"Metric"`` (inside a
    string a quote is escaped), so only those lines are parsed, and kept when their ``type`` is
    ``Metric``.  The points scan has already validated every line.
    """
    found = []
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as fh:
        rest = b""
        while chunk := fh.read(1 << 22):
            block = rest + chunk
            end = block.rfind(b"\n") + 1
            found.extend(_metric_data(block[:end]))
            rest = block[end:]
        found.extend(_metric_data(rest))
    return found


def _metric_data(block: bytes) -> list[dict]:
    out = []
    at = block.find(_METRIC_TOKEN)
    while at >= 0:
        start = block.rfind(b"\n", 0, at) + 1
        end = block.find(b"\n", at)
        end = len(block) if end < 0 else end
        line = json.loads(block[start:end])
        if line.get("type") == "Metric" and isinstance(line.get("data"), dict):
            out.append(line["data"])
        at = block.find(_METRIC_TOKEN, end)
    return out


def _insert_metric_lines(path: Path, lines: list[dict],
                         writer: RunWriter) -> list[tuple[str, str]]:
    """``metrics`` rows (type and contains) from the Metric lines; returns their thresholds."""
    seen: dict[str, dict] = {}
    for data in lines:
        if isinstance(data.get("name"), str):
            seen.setdefault(data["name"], data)
    writer.insert("metrics", pl.DataFrame(
        [(name, d.get("type"), d.get("contains")) for name, d in seen.items()], orient="row",
        schema={"metric": pl.Utf8, "type": pl.Utf8, "contains": pl.Utf8}))
    rows = []
    for metric, data in seen.items():
        entries = data.get("thresholds") or []
        if not isinstance(entries, list):
            raise IngestError(path, f"metric {metric!r}: thresholds must be an array")
        for entry in entries:
            expression = entry.get("threshold") if isinstance(entry, dict) else entry
            if not isinstance(expression, str):
                raise IngestError(path, f"metric {metric!r}: a threshold without an expression")
            rows.append((metric, expression))
    return rows


@contextmanager
def _bulk_insert(writer: RunWriter) -> Iterator[None]:
    """Let DuckDB write rows in parallel and in any order (samples are always read by time),
    within :data:`INSERT_MEMORY_LIMIT` (it spills beyond); the settings are restored afterwards."""
    con = writer.con
    before = {name: con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0]
              for name in ("preserve_insertion_order", "memory_limit")}
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET memory_limit = '{INSERT_MEMORY_LIMIT}'")
    try:
        yield
    finally:
        # After a failed statement DuckDB refuses even SET until the ingest's rollback.
        with suppress(duckdb.TransactionException):
            ordered = bool(before["preserve_insertion_order"])
            con.execute(f"SET preserve_insertion_order = {ordered}")
            con.execute(f"SET memory_limit = '{before['memory_limit']}'")


def _insert_csv(path: Path, writer: RunWriter) -> None:
    header = next(csv.reader([read_head(path, 1 << 16).lstrip("\ufeff").split("\n", 1)[0]]))
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise IngestError(path, "the CSV header repeats a column name")
    columns = "{" + ", ".join(f"'{_sql_str(h)}': 'VARCHAR'" for h in header) + "}"
    col = {h: f'"{h}"' for h in header}

    def tag(name: str) -> str:
        return col.get(name, "NULL")

    other = [h for h in header if h not in NAMED_TAGS and h not in (
        "metric_name", "timestamp", "metric_value", "extra_tags", "metadata")]
    entries = [f"[{{'key': '{_sql_str(h)}', 'value': {col[h]}}}]" for h in other]
    entries += [_kv_entries(col[h]) for h in ("extra_tags", "metadata") if h in col]
    all_entries = f"list_concat({', '.join(entries)})" if len(entries) > 1 else (
        entries[0] if entries else "[]::STRUCT(key VARCHAR, value VARCHAR)[]")
    raw_ts = col["timestamp"]
    digits = f"CAST({raw_ts} AS BIGINT)"
    ts = f"""CASE WHEN regexp_full_match({raw_ts}, '[0-9]+') THEN timezone('UTC', make_timestamp(
                 CASE WHEN {digits} < 100000000000 THEN {digits} * 1000000
                      WHEN {digits} < 100000000000000 THEN {digits} * 1000
                      WHEN {digits} < 100000000000000000 THEN {digits}
                      ELSE {digits} // 1000 END))
             ELSE CAST({raw_ts} AS TIMESTAMPTZ) END"""
    compression = "gzip" if is_gzip(path) else "none"
    with _bulk_insert(writer):
        writer.insert_sql(
            "samples",
            f"""
            SELECT metric, ts, value,
                   CASE WHEN starts_with(metric, 'http_')
                        THEN nullif(concat_ws(' ', method, coalesce(name, url)), '')
                   END AS endpoint,
                   name, method, status, url, grp, scenario, expected_response, error_code,
                   check_name,
                   CASE WHEN len(e) > 0 THEN map_from_entries(e) END AS extra
            FROM (
                SELECT *, list_filter(entries, lambda x, i: x.value IS NOT NULL AND list_position(
                           list_transform(entries, lambda y: y.key), x.key) = i) AS e
                FROM (
                    SELECT coalesce({col['metric_name']}, '') AS metric, {ts} AS ts,
                           CAST({col['metric_value']} AS DOUBLE) AS value,
                           {tag('name')} AS name, {tag('method')} AS method,
                           {tag('status')} AS status, {tag('url')} AS url, {tag('group')} AS grp,
                           {tag('scenario')} AS scenario,
                           CASE {tag('expected_response')} WHEN 'true' THEN true
                                WHEN 'false' THEN false END AS expected_response,
                           {tag('error_code')} AS error_code, {tag('check')} AS check_name,
                           {all_entries} AS entries
                    FROM read_csv(?, columns = {columns}, header = true, auto_detect = false,
                                  delim = ',', quote = '"', escape = '"',
                                  compression = '{compression}')
                )
            )
            """,
            [str(path)],
        )
    missing = writer.scalar("SELECT count(*) FROM samples WHERE run_id = ? AND "
                            "(metric = '' OR ts IS NULL OR value IS NULL)", [writer.run_id])
    if missing:
        raise IngestError(path, f"{missing} row(s) without metric_name, timestamp or value")


def _kv_entries(column: str) -> str:
    """k6's ``k=v&k2=v2`` (no escaping) as a list of key/value structs."""
    return (f"coalesce(list_transform(list_filter(string_split({column}, '&'), "
            "lambda s: s <> ''), lambda s: {'key': split_part(s, '=', 1), "
            "'value': substr(s, length(split_part(s, '=', 1)) + 2)}), [])")


def _sql_str(text: str) -> str:
    return text.replace("'", "''")


def _check_same_run(raw: SourceFile, summary: K6Summary, writer: RunWriter) -> None:
    expected = summary.value("http_reqs", "count")
    if expected is None:
        return
    found = writer.scalar("SELECT count(*) FROM samples WHERE run_id = ? AND metric = 'http_reqs'",
                          [writer.run_id])
    if found != expected:
        raise IngestError(raw.path, f"not the run of the summary given with it: {found} "
                                    f"http_reqs points, the summary counts {expected:.0f}")


def _load_model(writer: RunWriter) -> str | None:
    """``closed`` or ``open`` from how busy the VUs were, None when the points cannot tell.

    k6 does not write the executor.  VU executors keep every active VU inside an iteration, so
    the iteration time about equals the VU-time under the ``vus`` gauge; arrival-rate executors
    keep their pre-allocated VUs active but idle between arrivals, so the busy share is lower.
    (A saturated arrival-rate run looks closed, which is how it behaves.)  Both are measured
    over the run minus one longest iteration at each end, where iterations still running when
    the points end would be missing.
    """
    busy = writer.scalar(
        """
        WITH it AS (
            SELECT epoch(ts) - value / 1000 AS s, epoch(ts) AS e, value / 1000 AS d
            FROM samples WHERE run_id = ? AND metric = 'iteration_duration'
        ), span AS (
            SELECT CASE WHEN max(e) - max(d) > min(s) + max(d) THEN min(s) + max(d)
                        ELSE min(s) END AS lo,
                   CASE WHEN max(e) - max(d) > min(s) + max(d) THEN max(e) - max(d)
                        ELSE max(e) END AS hi
            FROM it
        ), vus AS (
            SELECT epoch(ts) AS s, epoch(lead(ts) OVER (ORDER BY ts)) AS e, value
            FROM samples WHERE run_id = ? AND metric = 'vus'
        )
        SELECT (SELECT sum(greatest(0, least(e, hi) - greatest(s, lo))) FROM it, span)
               / nullif((SELECT sum(value * greatest(0, least(e, hi) - greatest(s, lo)))
                         FROM vus, span), 0)
        """,
        [writer.run_id, writer.run_id],
    )
    if busy is None:
        return None
    model = "closed" if busy >= OPEN_MODEL_BUSY_FRACTION else "open"
    writer.info.notes.append(f"load model {model}: iteration time / VU time = {busy:.2f} "
                             "(k6 does not record the executor)")
    return model


# --- summaries --------------------------------------------------------------------------------


def _write_summary_only(summary: K6Summary, writer: RunWriter) -> None:
    info = writer.info
    info.grain = "summary"
    info.notes.append("summary only: k6's own percentiles; endpoints are k6 name tags, methods "
                      "unknown")
    info.started_at = summary.started_at
    info.ended_at = summary.generated_at
    peak = summary.value("vus", "max")
    info.max_users = peak if peak is not None else summary.value("vus_max", "max")
    rows = summary.endpoint_rows()
    if rows:
        frame = pl.DataFrame(rows, infer_schema_length=None).with_columns(
            pl.col("endpoint").fill_null(ALL_ENDPOINTS))
        writer.insert("summaries", frame)


def _write_summary_tables(summary: K6Summary, writer: RunWriter, *, with_checks: bool) -> None:
    metrics = pl.DataFrame(summary.metric_rows(), orient="row", schema={
        "metric": pl.Utf8, "type": pl.Utf8, "contains": pl.Utf8, "stat": pl.Utf8,
        "value": pl.Float64})
    writer.insert("metrics", metrics)
    if summary.thresholds is not None:
        writer.insert("thresholds", pl.DataFrame(summary.thresholds, orient="row", schema={
            "metric": pl.Utf8, "expression": pl.Utf8, "ok": pl.Boolean}))
    if with_checks:
        writer.insert("checks", pl.DataFrame(summary.checks, orient="row", schema={
            "grp": pl.Utf8, "name": pl.Utf8, "passes": pl.Int64, "fails": pl.Int64}))


# --- errors -----------------------------------------------------------------------------------

_PREFIX = re.compile(r"^(\w+ )*Error: ")


def _reason(path: Path, exc: duckdb.Error) -> str:
    """One short line from a DuckDB error, with k6-specific explanations where they help."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    text = lines[0]
    columns = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", str(exc))
    csv_line = re.match(r".*CSV Error on Line: (\d+)", text)
    if csv_line and columns:
        return (f"CSV row on line {csv_line.group(1)} has {columns.group(2)} fields, the header "
                f"{columns.group(1)} (a truncated or garbled row)")
    text = re.sub(rf'\s*(in )?(file )?"?{re.escape(str(path))}"?,?', "", _PREFIX.sub("", text))
    text = text.rstrip(" :")
    lowered = text.lower()
    if "gzip" in lowered or "zlib" in lowered or "decompress" in lowered:
        return f"truncated or corrupt gzip data ({_clip(text)})"
    if "json" in lowered or "malformed" in lowered:
        last = _truncated_last_line(path)
        if last is not None:
            return (f"truncated last line (line {last} is incomplete; k6 was probably stopped "
                    "mid-write). Remove that line to ingest the rest")
        return f"invalid k6 NDJSON ({_clip(text)})"
    return _clip(text)


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _truncated_last_line(path: Path) -> int | None:
    """Number of the last line when it is an incomplete JSON object, else None."""
    lines = 0
    tail = b""
    try:
        opener = gzip.open if is_gzip(path) else open
        with opener(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                lines += chunk.count(b"\n")
                tail = (tail + chunk)[-(1 << 16):]
    except (OSError, EOFError, zlib.error):
        return None
    last = tail.rsplit(b"\n", 1)[-1].strip()
    if not last:
        return None
    try:
        json.loads(last)
    except ValueError:
        return lines + 1
    return None
