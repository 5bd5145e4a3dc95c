"""k6 results: ``--out json`` (NDJSON), ``--out csv`` and the end-of-test summaries.

A run is the finest raw output given (NDJSON over CSV; :func:`used_sources` drops the other one
before the run's content is hashed) plus at most one summary file, from which thresholds, checks,
the test duration and the metric values are taken.  NDJSON points are read by one DuckDB scan
that writes every Point of every metric into ``points`` (keyed to its tag set by a hash, with the
metadata's ``vu`` and ``iter``) and collects the distinct tag sets and the Metric lines on the
way; CSV points by two (distinct tag sets, then points).  Tag sets go into ``tag_sets`` (tags
split into the named columns, all other tags into ``extra``); summaries, windows, errors and
checks are then derived in SQL from the ``samples`` view that joins them.  A summary alone gives
a run of grain ``summary`` with the tool's own numbers.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from perfstats.errors import IngestError, first_line
from perfstats.readers.derive import derive_from_samples
from perfstats.readers.detect import (
    K6_CSV,
    K6_MACHINE_SUMMARY,
    K6_NDJSON,
    K6_SUMMARY,
    K6_SUMMARY_EXPORT,
    csv_header,
    is_gzip,
    read_head,
)
from perfstats.readers.k6_scenarios import run_model, scenario_models
from perfstats.readers.k6_summary import K6Summary, read_summary
from perfstats.readers.shards import (
    SHARD_SQL,
    SHARD_TAG,
    mix_summaries,
    recognised_shards,
)
from perfstats.readers.writer import RunWriter, SourceFile
from perfstats.store import ALL_ENDPOINTS, fetch_frame

RAW_FORMATS = (K6_NDJSON, K6_CSV)
"""Raw outputs, finest first."""
SUMMARY_FORMATS = (K6_SUMMARY, K6_SUMMARY_EXPORT, K6_MACHINE_SUMMARY)
"""Summary files, most informative first (the machine summary has no thresholds)."""

# k6 tag -> tag_sets column. Every other tag goes into ``extra``.
NAMED_TAGS = {"name": "name", "method": "method", "status": "status", "url": "url",
              "group": "grp", "scenario": "scenario", "expected_response": "expected_response",
              "error_code": "error_code", "check": "check_name"}

INSERT_MEMORY_LIMIT = "512MB"
"""DuckDB's memory cap while points are inserted and derived from: keeps ingest under 1 GB RSS
at any file size."""

OPEN_MODEL_BUSY_FRACTION = 0.8
"""Below this share of VU-time spent in iterations, a run is taken for an arrival-rate one."""

_NDJSON_COLUMNS = (
    "{'type': 'VARCHAR', 'metric': 'VARCHAR', 'data': 'STRUCT(\"time\" VARCHAR, "
    "\"value\" JSON, tags JSON, metadata STRUCT(vu VARCHAR, iter VARCHAR), \"name\" VARCHAR, "
    "\"type\" VARCHAR, contains VARCHAR, thresholds JSON)'}"
)


_POINT_VALUE = """CASE WHEN data.value IS NULL THEN NULL
        WHEN contains('-0123456789', left(data.value::VARCHAR, 1))
            THEN CAST(data.value::VARCHAR AS DOUBLE)
        ELSE error('metric ' || metric || ' at ' || data.time || ': value '
                   || data.value::VARCHAR || ' is not a number') END"""
"""A Point's value: read as JSON text, so that a text ("67") or a boolean, which a cast to
DOUBLE would take as a number, is refused (NaN and infinities are refused after the scan, see
perfstats/readers/validate.py); costs little over reading it as DOUBLE (docs/ingest.md)."""


def used_sources(sources: list[SourceFile], *, one_run: bool = False) -> list[SourceFile]:
    """The files of one k6 run that are read: the finest raw output and the best summary.

    Several NDJSON outputs are the shards of one distributed run (readers/shards.py) when
    ``one_run`` says so or when the files do (a shared ``testid`` tag, overlapping times); their
    summaries are then left out (each covers one shard; the merged points give every number).

    Raises:
        IngestError: two raw outputs of one kind, or two summaries of one kind, were given
            and they are not the shards of one run.
    """
    ndjson = sorted((s for s in sources if s.format == K6_NDJSON), key=lambda s: str(s.path))
    if len(ndjson) > 1:
        if one_run or recognised_shards([s.path for s in ndjson]):
            return ndjson
        names = ", ".join(str(s.path) for s in ndjson)
        raise IngestError(names, f"several {K6_NDJSON} files and no shared testid tag over "
                                 "overlapping times; give the files of one run, or the shards "
                                 "of one distributed run with --one-run")
    summaries = sorted((s for s in sources if s.format == K6_SUMMARY_EXPORT),
                       key=lambda s: str(s.path))
    raw = [s for s in sources if s.format in RAW_FORMATS]
    if one_run and not raw and len(summaries) > 1:
        return summaries
    chosen = []
    for kinds in (RAW_FORMATS, SUMMARY_FORMATS):
        for kind in kinds:
            found = [s for s in sources if s.format == kind]
            if len(found) > 1:
                names = ", ".join(str(s.path) for s in found)
                hint = (" (shards of a distributed run are read from NDJSON outputs, "
                        "--out json)") if one_run else ""
                raise IngestError(names, f"several {kind} files; give the files of one run"
                                  + hint)
            if found:
                chosen.append(found[0])
                break
    return chosen


def read(files: list[SourceFile], writer: RunWriter) -> None:
    """Read one k6 run (a raw output and/or a summary file, or the NDJSON outputs of the
    shards of one distributed run) into ``writer``."""
    shards = [f for f in files if f.format == K6_NDJSON]
    if len(shards) > 1:
        _write_shards(shards, writer)
        return
    summary_shards = [f for f in files if f.format == K6_SUMMARY_EXPORT]
    if len(summary_shards) > 1:
        _write_summary_shards(summary_shards, writer)
        return
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
    with _bulk_insert(writer):
        try:
            if raw.format == K6_NDJSON:
                thresholds = _insert_ndjson(raw.path, writer)
            else:
                _insert_csv(raw.path, writer)
        except duckdb.Error as exc:
            raise IngestError(raw.path, _reason(raw.path, exc)) from exc
        points, requests = writer.con.execute(
            "SELECT count(*), count(*) FILTER (WHERE metric = 'http_reqs') FROM points "
            "WHERE run_id = ?", [writer.run_id]).fetchall()[0]
        if not points:
            raise IngestError(raw.path, "no data points (k6 wrote no Point line / row)")
        if summary is not None:
            _check_same_run(raw, summary, requests)
        writer.info.load_model = _scenario_load_models(writer, summary)
        derive_from_samples(writer, checks=summary is None or not _has_groups(summary))
    return thresholds


def _write_shards(shards: list[SourceFile], writer: RunWriter) -> None:
    """One run from the NDJSON outputs of several load generators: every point of every shard
    (so percentiles are exact), each tag set also tagged with its shard number so that the
    users of the shards add up."""
    info = writer.info
    info.format = K6_NDJSON
    info.grain = "samples"
    with _bulk_insert(writer):
        try:
            thresholds = _insert_ndjson([f.path for f in shards], writer)
        except duckdb.Error as exc:
            raise IngestError(", ".join(str(f.path) for f in shards),
                              first_line(exc)) from exc
        for number, shard in enumerate(shards, 1):
            found = writer.scalar(
                "SELECT count(*) FROM samples WHERE run_id = ? AND "
                f"{SHARD_SQL} = ?", [writer.run_id, str(number)])
            if not found:
                raise IngestError(shard.path, "no data points (k6 wrote no Point line)")
        info.load_model = _scenario_load_models(writer, None)
        derive_from_samples(writer)
    unique = len({f.path.name for f in shards}) == len(shards)
    names = ", ".join(f"{n}={f.path.name if unique else Path(f.path.parent.name, f.path.name)}"
                      for n, f in enumerate(shards, 1))
    info.notes.append(f"one distributed run of {len(shards)} shards ({names}; tag "
                      f"{SHARD_TAG}): percentiles exact over all points, users and throughput "
                      "summed over the shards")
    writer.insert("thresholds", pl.DataFrame(thresholds, orient="row", schema={
        "metric": pl.Utf8, "expression": pl.Utf8}))
    if thresholds:
        info.notes.append("thresholds from the NDJSON Metric lines: each k6 process judged its "
                          "own shard; passed or failed is not known for the whole run")


def _write_summary_shards(files: list[SourceFile], writer: RunWriter) -> None:
    """One run from the ``--summary-export`` files of the shards of one distributed run:
    counts, users and throughput add up, percentiles are an approximate mixture."""
    summaries = [read_summary(f.path, f.format) for f in files]
    info = writer.info
    info.format = K6_SUMMARY_EXPORT
    info.grain = "summary"
    info.tool_version = summaries[0].tool_version
    starts = [s.started_at for s in summaries if s.started_at is not None]
    ends = [s.generated_at for s in summaries if s.generated_at is not None]
    info.started_at = min(starts) if starts else None
    info.ended_at = max(ends) if ends else None
    durations = [s.duration_s for s in summaries if s.duration_s is not None]
    info.duration_s = max(durations) if durations else None
    peaks = [s.value("vus", "max") or s.value("vus_max", "max") for s in summaries]
    info.max_users = sum(peaks) if all(p is not None for p in peaks) else None
    rows = [row for s in summaries for row in s.endpoint_rows()]
    if rows:
        writer.insert("summaries", mix_summaries(
            pl.DataFrame(rows, infer_schema_length=None), "endpoint").with_columns(
            pl.col("endpoint").fill_null(ALL_ENDPOINTS)))
    checks = pl.DataFrame([c for s in summaries for c in s.checks], orient="row", schema={
        "grp": pl.Utf8, "name": pl.Utf8, "passes": pl.Int64, "fails": pl.Int64})
    writer.insert("checks", checks.group_by("grp", "name", maintain_order=True).agg(
        pl.col("passes").sum(), pl.col("fails").sum()))
    names = ", ".join(f"{n}={Path(f.path.parent.name, f.path.name)}"
                      for n, f in enumerate(files, 1))
    info.notes.append(f"one distributed run of {len(files)} shard summaries ({names}): counts, "
                      "users and throughput summed; percentiles approximate (a mixture of the "
                      "shards' summaries); endpoints are k6 name tags, methods unknown")


def _insert_ndjson(paths: Path | list[Path], writer: RunWriter) -> list[tuple[str, str]]:
    """Points into ``points``, tag sets into ``tag_sets`` and Metric lines into ``metrics``, in
    one ``read_ndjson`` scan; returns the Metric lines' thresholds.

    The scan validates every line (one that is neither a Metric nor a valid Point stops it with
    an error) and writes the points, each keyed to its tag set by ``hash(data.tags)``; on the
    way the functions of a :class:`_LineCollector` note each new tag set and every Metric
    line.  Tags are then split into the named columns once per tag set, not once per point.  Of
    the metadata only ``vu`` and ``iter`` are kept.

    Several paths are the shards of one run: each scanned in turn, its tag sets keyed apart
    by the shard number (tag :data:`SHARD_TAG`).
    """
    if isinstance(paths, Path):
        paths = [paths]
    seen = _LineCollector()
    for number, path in enumerate(paths, 1):
        shard = None if len(paths) == 1 else number
        with writer.scan_progress((number - 1) / len(paths), number / len(paths)):
            _scan_ndjson(path, shard, seen, writer)
    paths_sql = "[" + ", ".join(f"'$.\"{k}\"'" for k in NAMED_TAGS) + "]"
    drop_named = "'{" + ",".join(f'"{k}":null' for k in NAMED_TAGS) + "}'"
    tag = {column: f"t[{i + 1}]" for i, column in enumerate(NAMED_TAGS.values())}
    _insert_tag_sets(
        writer, seen.tag_sets(), tag, "CASE WHEN x <> '{}' THEN x END",
        f"""(SELECT tag_set, json_extract_string(tags, {paths_sql}) AS t,
                    json_merge_patch(coalesce(tags, '{{}}'), {drop_named}) AS x
             FROM _perfstats_groups)""",
    )
    lines = [{"name": r["name"], "type": r["type"], "contains": r["contains"],
              "thresholds": None if r["thresholds"] is None else json.loads(r["thresholds"])}
             for r in seen.metric_lines().iter_rows(named=True)]
    return _insert_metric_lines(paths[0], lines, writer)


def _scan_ndjson(path: Path, shard: int | None, seen: _LineCollector, writer: RunWriter) -> None:
    """The points scan of one NDJSON output (see :func:`_insert_ndjson`)."""
    source = (f"read_ndjson(?, columns = {_NDJSON_COLUMNS}, format = 'newline_delimited', "
              f"compression = '{'gzip' if is_gzip(path) else 'uncompressed'}')")
    # A shard's tag sets: the tags plus the shard number, hashed and stored as such.
    key = "hash(data.tags)" if shard is None else f"hash(data.tags, {shard})"
    text = "data.tags" if shard is None else (
        f"""json_merge_patch(coalesce(data.tags, '{{}}'), '{{"{SHARD_TAG}": "{shard}"}}')""")
    # True for a Point, false for a Metric line, an error for anything else.
    # k6 writes every time in RFC 3339 (2026-11-22T01:42:00.448002208Z); another form is
    # refused, not read by whatever DuckDB's cast accepts (2026/11/22 01:42:00).
    valid = """CASE WHEN type = 'Point' AND metric IS NOT NULL AND data.time IS NOT NULL
                         AND data.value IS NOT NULL THEN
                    CASE WHEN substr(data.time, 5, 1) = '-' AND substr(data.time, 11, 1) = 'T'
                         THEN true
                         ELSE error('a Point time ' || data.time || ' of metric ' || metric
                                    || ' is not RFC 3339 as k6 writes it') END
                    WHEN type = 'Metric' AND data.name IS NOT NULL THEN false
                    ELSE error(CASE WHEN type IN ('Point', 'Metric')
                                    THEN 'a ' || type || ' line without metric, time or value'
                                    WHEN type IS NULL THEN 'a JSON line that is not k6 output'
                                    ELSE 'a line of type ' || type || ' is not k6 output' END)
               END"""
    with (writer.function("perfstats_new_tag_set", seen.new_tag_set, ["UBIGINT"],
                          "BOOLEAN") as new_tag_set,
          writer.function("perfstats_tag_text", seen.tag_text, ["UBIGINT", "VARCHAR"],
                          "UBIGINT") as tag_text,
          writer.function("perfstats_metric_line", seen.metric_line, ["VARCHAR"] * 4,
                          "BOOLEAN") as metric_line):
        writer.insert_sql(
            "points",
            f"""
            SELECT metric, CAST(data.time AS TIMESTAMPTZ) AS ts, {_POINT_VALUE} AS value,
                   CASE WHEN {new_tag_set}({key})
                        THEN {tag_text}({key}, {text})
                        ELSE {key} END AS tag_set,
                   TRY_CAST(data.metadata.vu AS INTEGER) AS vu,
                   TRY_CAST(data.metadata.iter AS BIGINT) AS iter
            FROM {source}
            WHERE {valid} OR {metric_line}(data.name, data.type, data.contains, data.thresholds)
            """,
            [str(path)],
        )


class _LineCollector:
    """What the points scan notes besides the points: the text of each tag set, once, and the
    Metric lines.

    Its three methods are Arrow functions of that scan; DuckDB calls them once per vector of
    rows, from its worker threads.  :meth:`new_tag_set` flags the first row of each tag set not
    seen before (seen ones are kept as a set of hashes); :meth:`tag_text` is called on
    the flagged rows only (the THEN branch of a CASE) and keeps their text; :meth:`metric_line`
    is called on the lines that are not Points only (the right side of an OR) and keeps them.
    So the tags text crosses to Python once per tag set, not once per point, and one scan does
    the work of two: a second ``read_ndjson`` pass to group the tags cost 0.6-0.9 s per GB (and
    a second decompression of a gzip file); these functions cost about 0.2 s.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: set[int] = set()
        self._tag_sets: list[pa.Table] = []
        self._metric_lines: list[pa.Table] = []

    def new_tag_set(self, tag_set: pa.Array) -> pa.Array:
        """True on the first row of each tag set (hash) not seen before, false elsewhere."""
        unique, first = np.unique(tag_set.to_numpy(), return_index=True)
        with self._lock:
            fresh = [i for i, value in enumerate(unique.tolist()) if value not in self._known]
            self._known.update(unique[fresh].tolist())
        first_seen = np.zeros(len(tag_set), dtype=bool)
        first_seen[first[fresh]] = True
        return pa.array(first_seen)

    def tag_text(self, tag_set: pa.Array, tags: pa.Array) -> pa.Array:
        """Keeps the tags text of new tag sets; returns their hashes."""
        with self._lock:
            self._tag_sets.append(pa.table({"tag_set": tag_set, "tags": tags}))
        return tag_set

    def metric_line(self, name: pa.Array, metric_type: pa.Array, contains: pa.Array,
                    thresholds: pa.Array) -> pa.Array:
        """Keeps Metric lines; false for every row (they are not points)."""
        lines = pa.table({"name": name, "type": metric_type, "contains": contains,
                          "thresholds": thresholds})
        with self._lock:
            self._metric_lines.append(lines.filter(pc.is_valid(name)))
        return pa.array(np.zeros(len(lines), dtype=bool))

    def tag_sets(self) -> pl.DataFrame:
        """``tag_set`` (the hash) and ``tags`` (JSON text or null), one row per tag set."""
        schema = pa.schema({"tag_set": pa.uint64(), "tags": pa.string()})
        return pl.from_arrow(pa.concat_tables(self._tag_sets) if self._tag_sets
                             else schema.empty_table())

    def metric_lines(self) -> pl.DataFrame:
        """``name``, ``type``, ``contains`` and ``thresholds`` (JSON text) of each distinct
        Metric line, by name."""
        schema = pa.schema({c: pa.string() for c in ("name", "type", "contains", "thresholds")})
        frame = pl.from_arrow(pa.concat_tables(self._metric_lines) if self._metric_lines
                              else schema.empty_table())
        return frame.unique().sort(frame.columns, nulls_last=True)


def _insert_tag_sets(writer: RunWriter, groups: pl.DataFrame, tag: dict[str, str], extra: str,
                     rows: str) -> None:
    """One ``tag_sets`` row per row of ``groups``: its ``tag_set`` and the named columns and
    ``extra`` computed by the SQL expressions ``tag`` (column -> expression) and ``extra`` over
    ``rows``, a query of ``groups`` registered as ``_perfstats_groups``."""
    writer.con.register("_perfstats_groups", groups.to_arrow())
    try:
        writer.insert_sql(
            "tag_sets",
            f"""
            SELECT tag_set,
                   nullif(concat_ws(' ', {tag['method']}, coalesce({tag['name']}, {tag['url']})),
                          '') AS endpoint,
                   {', '.join(f'{expr} AS {column}' for column, expr in tag.items()
                              if column != 'expected_response')},
                   CASE {tag['expected_response']} WHEN 'true' THEN true WHEN 'false' THEN false
                   END AS expected_response,
                   {extra} AS extra
            FROM {rows}
            """,
        )
    finally:
        writer.con.unregister("_perfstats_groups")


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
    """While a raw output is inserted and derived from, let DuckDB write rows in parallel and
    in any order (samples are always read by time, derived rows by their keys), within
    :data:`INSERT_MEMORY_LIMIT` (it spills beyond); the settings are restored afterwards.

    Both settings are global: they hold for the whole DuckDB instance, which outlives the ingest
    for an in-memory store (every one of them shares the process's instance) and a team store.
    So they are restored through a connection of their own, also after a failed statement
    (the ingest's connection then refuses even SET until its rollback)."""
    con = writer.con
    names = ("preserve_insertion_order", "memory_limit")
    values = con.execute(f"SELECT {', '.join(f'current_setting({n!r})' for n in names)}"
                         ).fetchall()[0]
    before = dict(zip(names, values, strict=True))
    con.execute("SET GLOBAL preserve_insertion_order = false")
    con.execute(f"SET GLOBAL memory_limit = '{INSERT_MEMORY_LIMIT}'")
    try:
        yield
    finally:
        restore = con.cursor()
        try:
            for name, value in before.items():
                restore.execute(f"SET GLOBAL {name} = '{value}'")
        finally:
            restore.close()


def _insert_csv(path: Path, writer: RunWriter) -> None:
    header = csv_header(read_head(path))
    if len(set(header)) != len(header):
        raise IngestError(path, "the CSV header repeats a column name")
    columns = "{" + ", ".join(f"'{_sql_str(h)}': 'VARCHAR'" for h in header) + "}"
    col = {h: f'"{h}"' for h in header}

    def tag(name: str) -> str:
        return col.get(name, "NULL")

    tags = [h for h in header if h not in ("metric_name", "timestamp", "metric_value", "metadata")]
    other = [h for h in tags if h not in NAMED_TAGS and h != "extra_tags"]
    entries = [f"[{{'key': '{_sql_str(h)}', 'value': {col[h]}}}]" for h in other]
    if "extra_tags" in col:
        entries.append(_kv_entries(col["extra_tags"]))
    all_entries = f"list_sort(list_concat({', '.join(entries)}))" if len(entries) > 1 else (
        f"list_sort({entries[0]})" if entries else "[]::STRUCT(key VARCHAR, value VARCHAR)[]")
    # A tag set is the same set whatever order k6 wrote ``extra_tags`` in (it varies per row).
    tag_expr = {h: (f"array_to_string(list_sort(string_split({col[h]}, '&')), '&')"
                    if h == "extra_tags" else col[h]) for h in tags}
    tag_set = f"hash({', '.join(tag_expr.values())})" if tags else "hash(NULL)"
    raw_ts = col["timestamp"]
    digits = f"CAST({raw_ts} AS BIGINT)"
    ts = f"""CASE WHEN regexp_full_match({raw_ts}, '[0-9]+') THEN timezone('UTC', make_timestamp(
                 CASE WHEN {digits} < 100000000000 THEN {digits} * 1000000
                      WHEN {digits} < 100000000000000 THEN {digits} * 1000
                      WHEN {digits} < 100000000000000000 THEN {digits}
                      ELSE {digits} // 1000 END))
             ELSE CAST({raw_ts} AS TIMESTAMPTZ) END"""
    meta = {key: (f"TRY_CAST(nullif(regexp_extract({col['metadata']}, '(^|&){key}=([^&]*)', 2), "
                  f"'') AS {kind})" if "metadata" in col else "NULL")
            for key, kind in (("vu", "INTEGER"), ("iter", "BIGINT"))}
    compression = "gzip" if is_gzip(path) else "uncompressed"
    source = (f"read_csv(?, columns = {columns}, header = true, auto_detect = false, "
              f"delim = ',', quote = '\"', escape = '\"', compression = '{compression}')")
    with writer.scan_progress(0.0, 0.5):
        groups = fetch_frame(
            writer.con,
            f"SELECT DISTINCT {tag_set} AS tag_set, "
            f"{', '.join(f'{e} AS {col[h]}' for h, e in tag_expr.items()) or 1} "
            f"FROM {source}",
            [str(path)],
        )
    # Only the tag columns remain: the named tags by their CSV name, the rest into extra.
    named = {column: tag(name) for name, column in NAMED_TAGS.items()}
    if "group" in col and "scenario" in col:
        # The CSV writes the root group "" as an empty cell, as it writes an absent tag; every
        # sample of a scenario has a group, so an empty one there is the root group "", as in
        # the NDJSON output (only vus and vus_max, outside any scenario, have no group).
        group, scenario = col["group"], col["scenario"]
        named["grp"] = (f"CASE WHEN {scenario} IS NOT NULL THEN coalesce({group}, '') "
                        f"ELSE {group} END")
    _insert_tag_sets(
        writer, groups, named,
        "CASE WHEN len(e) > 0 THEN to_json(map_from_entries(e))::VARCHAR END",
        f"""(SELECT *, list_filter(entries, lambda x, i: x.value IS NOT NULL AND
                    list_position(list_transform(entries, lambda y: y.key), x.key) = i) AS e
             FROM (SELECT *, {all_entries} AS entries FROM _perfstats_groups))""",
    )
    with writer.scan_progress(0.5, 1.0):
        writer.insert_sql(
            "points",
            f"""
            SELECT coalesce({col['metric_name']}, '') AS metric, {ts} AS ts,
                   CAST({col['metric_value']} AS DOUBLE) AS value, {tag_set} AS tag_set,
                   {meta['vu']} AS vu, {meta['iter']} AS iter
            FROM {source}
            """,
            [str(path)],
        )
    missing = writer.scalar("SELECT count(*) FROM points WHERE run_id = ? AND "
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


def _check_same_run(raw: SourceFile, summary: K6Summary, found: int) -> None:
    """Refuse a summary of another run: its http_reqs count is not ``found``, the points'."""
    expected = summary.value("http_reqs", "count")
    if expected is None:
        return
    if found != expected:
        raise IngestError(raw.path, f"not the run of the summary given with it: {found} "
                                    f"http_reqs points, the summary counts {expected:.0f}")


def _scenario_load_models(writer: RunWriter, summary: K6Summary | None) -> str | None:
    """Fill ``scenarios`` and return the run's load model: the scenarios' one, ``mixed``, or
    (scenarios unknown) the run-wide estimate of :func:`_load_model`."""
    scenarios = scenario_models(writer, summary.scenarios if summary else None)
    if scenarios.height == 1 and scenarios["basis"][0].startswith("inferred") and \
            scenarios["load_model"][0] == "closed":
        # One scenario: VUs active but idle (the vus gauge) also show an arrival-rate executor
        # whose regular iterations happen to chain.
        busy = _busy_share(writer)
        if busy is not None and busy < OPEN_MODEL_BUSY_FRACTION:
            scenarios = scenarios.with_columns(
                load_model=pl.lit("open"),
                basis=pl.lit(f"inferred: iteration time / VU time = {busy:.2f}"))
    writer.insert("scenarios", scenarios)
    model = run_model(scenarios)
    if model is None:
        return _load_model(writer)
    requests = scenarios.group_by("load_model").agg(pl.col("requests").sum())
    total = requests["requests"].sum() or 1
    shares = ", ".join(f"{row['load_model']} {row['requests'] / total:.0%} of requests"
                       for row in requests.sort("load_model").iter_rows(named=True))
    declared = scenarios["basis"].eq("summary options").all()
    writer.info.notes.append(
        f"load model {model} ({shares}): per scenario, "
        f"{'from the summary options' if declared else 'inferred from how iterations chain'} "
        "(see the scenarios table)")
    return model


def _load_model(writer: RunWriter) -> str | None:
    """``closed`` or ``open`` from how busy the VUs were, None when the points cannot tell.

    k6 does not write the executor.  VU executors keep every active VU inside an iteration, so
    the iteration time about equals the VU-time under the ``vus`` gauge; arrival-rate executors
    keep their pre-allocated VUs active but idle between arrivals, so the busy share is lower.
    (A saturated arrival-rate run looks closed, which is how it behaves.)  Both are measured
    over the run minus one longest iteration at each end, where iterations still running when
    the points end would be missing.
    """
    busy = _busy_share(writer)
    if busy is None:
        return None
    model = "closed" if busy >= OPEN_MODEL_BUSY_FRACTION else "open"
    writer.info.notes.append(f"load model {model}: iteration time / VU time = {busy:.2f} "
                             "(k6 does not record the executor)")
    return model


def _busy_share(writer: RunWriter) -> float | None:
    """Iteration time / VU time under the ``vus`` gauge (see :func:`_load_model`)."""
    return writer.scalar(
        f"""
        WITH it AS (
            SELECT epoch(ts) - value / 1000 AS s, epoch(ts) AS e, value / 1000 AS d
            FROM points WHERE run_id = ? AND metric = 'iteration_duration'
        ), span AS (
            SELECT CASE WHEN max(e) - max(d) > min(s) + max(d) THEN min(s) + max(d)
                        ELSE min(s) END AS lo,
                   CASE WHEN max(e) - max(d) > min(s) + max(d) THEN max(e) - max(d)
                        ELSE max(e) END AS hi
            FROM it
        ), vus AS (
            SELECT epoch(ts) AS s, value,
                   epoch(lead(ts) OVER (PARTITION BY {SHARD_SQL} ORDER BY ts)) AS e
            FROM samples WHERE run_id = ? AND metric = 'vus'
        )
        SELECT (SELECT sum(greatest(0, least(e, hi) - greatest(s, lo))) FROM it, span)
               / nullif((SELECT sum(value * greatest(0, least(e, hi) - greatest(s, lo)))
                         FROM vus, span), 0)
        """,
        [writer.run_id, writer.run_id],
    )


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
    text = first_line(exc)
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
        try:
            last = _truncated_last_line(path)
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            # DuckDB 1.4 reports a cut gzip stream as malformed JSON.
            return f"truncated or corrupt gzip data ({_clip(str(error) or type(error).__name__)})"
        if last is not None:
            return (f"truncated last line (line {last} is incomplete; k6 was probably stopped "
                    "mid-write). Remove that line to ingest the rest")
        return f"invalid k6 NDJSON ({_clip(text)})"
    return _clip(text)


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _truncated_last_line(path: Path) -> int | None:
    """Number of the last line when it is an incomplete JSON object, else None.

    Raises:
        EOFError, zlib.error, gzip.BadGzipFile: the file is a cut or corrupt gzip stream.
    """
    lines = 0
    tail = b""
    try:
        opener = gzip.open if is_gzip(path) else open
        with opener(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                lines += chunk.count(b"\n")
                tail = (tail + chunk)[-(1 << 16):]
    except gzip.BadGzipFile:
        raise
    except OSError:
        return None
    last = tail.rsplit(b"\n", 1)[-1].strip()
    if not last:
        return None
    try:
        json.loads(last)
    except ValueError:
        return lines + 1
    return None
