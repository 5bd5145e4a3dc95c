"""One metric model across k6, Artillery and Locust: every metric by name, kind and unit.

A metric has a *kind*, one of :data:`KINDS`, which says how it is summarised and compared:

- ``trend``: a distribution of values (k6 Trend, Artillery histogram/summary): count, avg, min,
  med, p90, p95, p99, max;
- ``rate``: the share of non-zero values (k6 Rate, ``checks``, ``*_success_rate``): rate, passes,
  fails (for ``http_req_failed`` a "pass" is a *failed* request, as in k6);
- ``counter``: a total that grows (k6 Counter, Artillery counter): total and per second;
- ``gauge``: a level sampled over time (k6 Gauge, Artillery per-second rates, the Apdex score):
  last, min, max.

A k6 sub-metric is named as k6 names it, ``base{tag:value,...}``
(``http_req_duration{scenario:booking_flow}``); its ``tags`` select the samples of the base
metric that it covers.  Runs with raw samples (k6 ``--out json`` / ``--out csv``) are summarised
exactly from them in DuckDB (``source`` ``exact``), with any slice (scenario, group, endpoint,
any tag); other runs give the tool's own values (``tool-summary``).  See docs/schema.md.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import polars as pl

from perfstats.errors import ArgumentError
from perfstats.readers.k6_summary import split_metric_name

if TYPE_CHECKING:
    from perfstats.run import Run

KINDS = ("trend", "rate", "counter", "gauge")
"""Metric kinds, in the order summaries list them."""

TREND_STATS = ("count", "avg", "min", "med", "p90", "p95", "p99", "max")
"""Statistics of a trend (k6's default ``summaryTrendStats``; ``med`` = p50)."""

KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "trend": TREND_STATS,
    "rate": ("rate", "passes", "fails"),
    "counter": ("total", "per_second"),
    "gauge": ("last", "min", "max"),
}
"""The value columns of each kind's summary table."""

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE")
"""Request types that make an endpoint an HTTP one (Locust's other request types, such as
``grpc``, are endpoints of their own protocol)."""
PROTOCOL = (f"CASE WHEN method IS NULL OR upper(method) IN "
            f"({', '.join(repr(m) for m in HTTP_METHODS)}) THEN 'http' ELSE lower(method) END")
"""SQL: an endpoint's protocol from its ``method`` column."""

# k6 built-in metrics: name -> (kind, unit).
K6_BUILTIN: dict[str, tuple[str, str | None]] = {
    **{m: ("trend", "ms") for m in (
        "http_req_duration", "http_req_blocked", "http_req_connecting", "http_req_sending",
        "http_req_waiting", "http_req_receiving", "http_req_tls_handshaking",
        "iteration_duration", "group_duration", "ws_connecting", "ws_session_duration",
        "ws_ping", "grpc_req_duration", "browser_http_req_duration",
        "browser_web_vital_lcp", "browser_web_vital_fcp", "browser_web_vital_inp",
        "browser_web_vital_fid", "browser_web_vital_ttfb")},
    "browser_web_vital_cls": ("trend", None),
    **{m: ("counter", "count") for m in (
        "http_reqs", "iterations", "dropped_iterations", "ws_msgs_sent", "ws_msgs_received",
        "ws_sessions", "grpc_streams", "grpc_streams_msgs_sent", "grpc_streams_msgs_received")},
    **{m: ("counter", "bytes") for m in ("data_sent", "data_received", "browser_data_sent",
                                          "browser_data_received")},
    **{m: ("rate", "ratio") for m in ("checks", "http_req_failed", "browser_http_req_failed")},
    **{m: ("gauge", "vus") for m in ("vus", "vus_max")},
}

_TOOL_KIND = {"trend": "trend", "rate": "rate", "counter": "counter", "gauge": "gauge",
              "histogram": "trend"}
_CONTAINS_UNIT = {"time": "ms", "data": "bytes"}
_DEFAULT_UNIT = {"rate": "ratio", "counter": "count"}
_TIME_NAME = re.compile(r"(duration|_time|time_|latency|_ms|response_time|session_length)",
                        re.IGNORECASE)

# k6 tag -> column of the samples view (other tags are keys of its ``extra`` JSON).
_TAG_COLUMNS = {"name": "name", "method": "method", "status": "status", "url": "url",
                "group": "grp", "scenario": "scenario", "error_code": "error_code",
                "check": "check_name"}
_BY_ALIASES = {"scenario": "scenario", "group": "group", "endpoint": "endpoint"}

APDEX = "apdex"
"""The Apdex score derived from Artillery's ``apdex.*`` counters."""
_APDEX_COUNTERS = ("apdex.satisfied", "apdex.tolerated", "apdex.frustrated")


def metric_kind_unit(tool: str, name: str, tool_type: str | None,
                     contains: str | None) -> tuple[str, str | None, str]:
    """``(kind, unit, basis)`` of one metric; basis is ``tool`` (the tool said), ``known`` (a
    built-in metric of the tool) or ``inferred`` (from the name)."""
    if tool == "artillery" and tool_type == "rate":
        return "gauge", "1/s", "tool"
    if tool_type in _TOOL_KIND:
        kind = _TOOL_KIND[tool_type]
        if contains in _CONTAINS_UNIT:
            return kind, _CONTAINS_UNIT[contains], "tool"
        if tool == "k6" and name in K6_BUILTIN and K6_BUILTIN[name][0] == kind:
            return kind, K6_BUILTIN[name][1], "known" if contains is None else "tool"
        if contains == "default" or kind in _DEFAULT_UNIT:
            return kind, _DEFAULT_UNIT.get(kind), "tool"
        if kind == "trend" and _TIME_NAME.search(name):
            return kind, "ms", "inferred"
        return kind, None, "tool"
    if tool == "k6" and name in K6_BUILTIN:
        kind, unit = K6_BUILTIN[name]
        return kind, unit, "known"
    lowered = name.lower()
    if lowered.endswith(("_rate", "_ratio", "success", "_ok")) or "success_rate" in lowered:
        return "rate", "ratio", "inferred"
    if lowered.endswith(("_count", "_total", "_errors", "_created", "s_sent", "s_received")):
        return "counter", "count", "inferred"
    if lowered.startswith(("last_", "current_")):
        return "gauge", None, "inferred"
    return "trend", "ms" if _TIME_NAME.search(name) else None, "inferred"


def catalog(run: Run) -> pl.DataFrame:
    """Every metric and sub-metric of ``run``: one row each.

    Columns: metric (k6-style full name), base, tags (JSON object of the sub-metric's tag
    selector; null for a metric itself), kind, unit, kind_basis (``tool`` / ``known`` /
    ``inferred``), tool_type (the tool's own type name), samples (raw points of the base
    metric; null without raw samples), source (``exact`` from raw samples, ``tool-summary``
    from the tool's values, ``derived`` for values perfstats computes from other metrics).

    Read from the store at each call: :meth:`perfstats.Run.metrics` keeps it per run.
    """
    declared = run.store.query(
        "SELECT metric, first(type ORDER BY type NULLS LAST) AS tool_type, "
        "first(contains ORDER BY contains NULLS LAST) AS contains, "
        "count(stat) AS stats FROM metrics WHERE run_id = ? GROUP BY metric",
        [run.run_id])
    counts = _point_counts(run)
    names = sorted(set(declared["metric"].to_list()) | set(counts))
    info = {r["metric"]: r for r in declared.iter_rows(named=True)}
    rows = []
    for name in names:
        base, tags = split_metric_name(name)
        base_info = info.get(base, {})
        own = info.get(name, {})
        tool_type = own.get("tool_type") or base_info.get("tool_type")
        contains = own.get("contains") or base_info.get("contains")
        kind, unit, basis = metric_kind_unit(run.tool, base, tool_type, contains)
        if tool_type is None and base in counts and run.tool == "k6":
            kind, unit, basis = _kind_from_values(run, base, kind, unit, basis)
        samples = counts.get(base)
        rows.append({
            "metric": name, "base": base, "tags": json.dumps(tags) if tags else None,
            "kind": kind, "unit": unit, "kind_basis": basis, "tool_type": tool_type,
            "samples": samples,
            "source": "exact" if samples is not None else "tool-summary",
        })
    counters = {r["metric"] for r in rows if r["kind"] == "counter"}
    if run.tool == "artillery" and set(_APDEX_COUNTERS) & counters:
        rows.append({"metric": APDEX, "base": APDEX, "tags": None, "kind": "gauge",
                     "unit": "score", "kind_basis": "known", "tool_type": "derived",
                     "samples": None, "source": "derived"})
    return pl.DataFrame(rows, schema={
        "metric": pl.Utf8, "base": pl.Utf8, "tags": pl.Utf8, "kind": pl.Utf8, "unit": pl.Utf8,
        "kind_basis": pl.Utf8, "tool_type": pl.Utf8, "samples": pl.Int64, "source": pl.Utf8})


def _point_counts(run: Run) -> dict[str, int]:
    if run.grain != "samples":
        return {}
    frame = run.store.query(
        "SELECT metric, count(*) AS n FROM points WHERE run_id = ? GROUP BY metric", [run.run_id])
    return dict(zip(frame["metric"].to_list(), frame["n"].to_list(), strict=True))


def _kind_from_values(run: Run, base: str, kind: str, unit: str | None,
                      basis: str) -> tuple[str, str | None, str]:
    """A custom k6 metric of a CSV without a summary (no type in the file): a metric whose
    values are all 0 or 1, with both seen, is taken for a Rate."""
    if basis != "inferred":
        return kind, unit, basis
    zeros, ones, other = run.store.query(
        "SELECT count(*) FILTER (WHERE value = 0) AS z, count(*) FILTER (WHERE value = 1) AS o, "
        "count(*) FILTER (WHERE value NOT IN (0, 1)) AS x FROM points "
        "WHERE run_id = ? AND metric = ?", [run.run_id, base]).row(0)
    if other == 0 and zeros and ones:
        return "rate", "ratio", basis
    return kind, unit, basis


# --- slices ------------------------------------------------------------------------------------


def slice_expression(by: str, metric_base: str | None = None) -> tuple[str, str]:
    """``(column name, SQL expression over the samples view)`` of a slice: ``scenario``,
    ``group``, ``endpoint`` or ``tag:NAME`` (any tag, named ones or custom ones in ``extra``).

    Raises:
        ArgumentError: an unknown slice.
    """
    if by in ("scenario", "group"):
        return by, _tag_sql(by)
    if by == "endpoint":
        if metric_base is None or metric_base.startswith("http_"):
            return "endpoint", "endpoint"
        return "endpoint", _tag_sql("name")
    if by.startswith("tag:") and by[4:].strip():
        name = by[4:].strip()
        return name, _tag_sql(name)
    raise ArgumentError(f"unknown slice {by!r}: use scenario, group, endpoint or tag:NAME")


def _tag_sql(tag: str) -> str:
    if tag in _TAG_COLUMNS:
        return _TAG_COLUMNS[tag]
    if tag == "expected_response":
        return "CAST(expected_response AS VARCHAR)"
    return f"json_extract_string(extra, '$.\"{_sql_str(tag)}\"')"


def _selector_sql(tags: dict[str, str]) -> str:
    """SQL condition of a k6 sub-metric's tag selector over the samples view."""
    if not tags:
        return "true"
    return " AND ".join(f"{_tag_sql(k)} = '{_sql_str(v)}'" for k, v in sorted(tags.items()))


def _sql_str(text: str) -> str:
    return text.replace("'", "''")


# --- values ------------------------------------------------------------------------------------

_AGGREGATES = {
    "trend": ("count(*) AS count, avg(value) AS avg, min(value) AS min, "
              "quantile_cont(value, [0.5, 0.9, 0.95, 0.99]) AS q, max(value) AS max"),
    "rate": ("count(*) FILTER (WHERE value <> 0) / count(*) AS rate, "
             "count(*) FILTER (WHERE value <> 0) AS passes, "
             "count(*) FILTER (WHERE value = 0) AS fails"),
    "counter": "sum(value) AS total, sum(value) / nullif($duration, 0) AS per_second",
    "gauge": "arg_max(value, ts) AS last, min(value) AS min, max(value) AS max",
}


def metric_values(run: Run, kind: str, *, metrics: list[str] | None = None,
                  by: str | None = None) -> pl.DataFrame:
    """The summary of every metric of one kind (or of ``metrics`` only), one row per metric
    (and slice).

    Columns: metric, [the slice column], unit, the kind's :data:`KIND_COLUMNS`, source.  From raw
    samples where the run has them (``exact``; sub-metrics select their samples by their tags),
    else the tool's values (``tool-summary``; a slice then comes from the sub-metrics the tool
    reported with that one tag, e.g. ``quote_duration{scenario:quote_flow}``).
    """
    cat = run.metrics().filter(pl.col("kind") == kind)
    if metrics is not None:
        cat = cat.filter(pl.col("metric").is_in(metrics))
    slice_name = None if by is None else slice_expression(by)[0]
    exact = cat.filter(pl.col("source") == "exact")
    tool = cat.filter(pl.col("source") != "exact")
    frames = []
    if exact.height:
        frames.append(_exact_values(run, kind, exact, by))
    if tool.height:
        frames.append(_tool_values(run, kind, tool, by, slice_name))
    columns = ["metric", *([slice_name] if slice_name else []), "unit", *KIND_COLUMNS[kind],
               "source"]
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame(schema={c: pl.Utf8 if c in ("metric", "unit", "source", slice_name)
                                    else pl.Float64 for c in columns})
    out = pl.concat([f.select(columns) for f in frames], how="vertical_relaxed")
    order = ["metric", *([slice_name] if slice_name else [])]
    return out.sort(order, nulls_last=True)


def _exact_values(run: Run, kind: str, cat: pl.DataFrame, by: str | None) -> pl.DataFrame:
    parts = []
    for row in cat.iter_rows(named=True):
        tags = json.loads(row["tags"]) if row["tags"] else {}
        slice_sql = "NULL" if by is None else slice_expression(by, row["base"])[1]
        parts.append(
            f"SELECT '{_sql_str(row['metric'])}' AS metric, {slice_sql} AS slice, value, ts "
            f"FROM samples WHERE run_id = $run AND metric = '{_sql_str(row['base'])}' "
            f"AND {_selector_sql(tags)}")
    group = "metric" if by is None else "metric, slice"
    sql = f"SELECT {group}, {_AGGREGATES[kind]} FROM ({' UNION ALL '.join(parts)}) GROUP BY ALL"
    params: dict[str, Any] = {"run": run.run_id}
    if kind == "counter":
        params["duration"] = run.meta.get("duration_s") or 0.0
    frame = run.store.query(sql, params)
    if kind == "trend":
        frame = frame.with_columns(
            pl.col("q").list.get(0).alias("med"), pl.col("q").list.get(1).alias("p90"),
            pl.col("q").list.get(2).alias("p95"), pl.col("q").list.get(3).alias("p99"),
        ).drop("q")
    units = cat.select("metric", "unit")
    frame = frame.join(units, on="metric", how="left").with_columns(
        pl.lit("exact").alias("source"))
    if by is not None:
        frame = frame.rename({"slice": slice_expression(by)[0]})
    return frame.with_columns(pl.col(c).cast(pl.Float64) for c in KIND_COLUMNS[kind])


# Tool stat names -> the model's columns (k6 first, then Artillery's names).
_TOOL_STATS: dict[str, dict[str, tuple[str, ...]]] = {
    "trend": {"count": ("count",), "avg": ("avg", "mean"), "min": ("min",),
              "med": ("med", "p(50)", "median", "p50"), "p90": ("p(90)", "p90"),
              "p95": ("p(95)", "p95"), "p99": ("p(99)", "p99"), "max": ("max",)},
    "rate": {"rate": ("rate",), "passes": ("passes",), "fails": ("fails",)},
    "counter": {"total": ("count",), "per_second": ()},
    "gauge": {"last": ("value", "rate"), "min": ("min",), "max": ("max",)},
}


def _tool_values(run: Run, kind: str, cat: pl.DataFrame, by: str | None,
                 slice_name: str | None) -> pl.DataFrame:
    stats = run.store.query(
        "SELECT metric, stat, value FROM metrics WHERE run_id = ? AND stat IS NOT NULL",
        [run.run_id])
    values: dict[str, dict[str, float]] = {}
    for metric, stat, value in stats.iter_rows():
        values.setdefault(metric, {})[stat] = value
    duration = run.meta.get("duration_s")
    tag_key = None
    if by is not None:
        tag_key = {"group": "group", "scenario": "scenario", "endpoint": "name"}.get(
            by, by[4:].strip() if by.startswith("tag:") else by)
    rows = []
    for row in cat.iter_rows(named=True):
        tags = json.loads(row["tags"]) if row["tags"] else {}
        if by is not None and set(tags) != {tag_key}:
            continue
        own = values.get(row["metric"], {})
        if row["metric"] == APDEX:
            own = _apdex(values)
        out: dict[str, Any] = {"metric": row["base"] if by is not None else row["metric"],
                               "unit": row["unit"], "source": row["source"]}
        if slice_name is not None:
            out[slice_name] = tags[tag_key]
        for column, names in _TOOL_STATS[kind].items():
            out[column] = next((own[n] for n in names if n in own), None)
        if kind == "counter":
            out["per_second"] = own.get("rate", out["total"] / duration
                                   if out["total"] is not None and duration else None)
        if all(out[c] is None for c in KIND_COLUMNS[kind]):
            continue
        rows.append(out)
    columns = ["metric", *([slice_name] if slice_name else []), "unit", *KIND_COLUMNS[kind],
               "source"]
    schema = {c: pl.Utf8 if c in ("metric", "unit", "source", slice_name) else pl.Float64
              for c in columns}
    return pl.DataFrame(rows, schema=schema)


def _apdex(values: dict[str, dict[str, float]]) -> dict[str, float]:
    """Apdex = (satisfied + tolerated / 2) / all, from Artillery's apdex counters."""
    satisfied, tolerated, frustrated = (values.get(c, {}).get("count", 0.0)
                                        for c in _APDEX_COUNTERS)
    total = satisfied + tolerated + frustrated
    return {"value": (satisfied + tolerated / 2) / total} if total else {}


_UNIT_SUFFIX = {"ms": "_ms", "bytes": "_bytes"}
_UNIT_FREE = {"trend": ("avg", "min", "med", "p90", "p95", "p99", "max"),
              "gauge": ("last", "min", "max"), "counter": ("total", "per_second")}


def by_unit(frame: pl.DataFrame, kind: str) -> dict[str, pl.DataFrame]:
    """A kind's summary split into one table per unit, for people and for JSON: ``trends (ms)``
    with ``avg_ms``, ``p95_ms``...; ``counters (bytes)`` with ``total_bytes``,
    ``per_second_bytes``; a table without a unit keeps the bare names.  Rates are ratios and
    stay one table."""
    name = f"{kind}s"
    if frame.is_empty() or kind == "rate":
        return {name: frame.drop("unit")} if not frame.is_empty() else {}
    out = {}
    units = frame["unit"].unique(maintain_order=True).to_list()
    for unit in sorted(units, key=lambda u: (u is None, u or "")):
        part = frame.filter(pl.col("unit").eq_missing(unit)).drop("unit")
        suffix = _UNIT_SUFFIX.get(unit or "")
        if suffix:
            part = part.rename({c: c + suffix for c in _UNIT_FREE[kind]})
        out[f"{name} ({unit})" if unit else name] = part
    return out
