"""Values an analysis cannot use are refused at ingest, whatever the reader: checked in DuckDB
over the rows a reader has just written (inside its transaction, before the commit), so that a
NaN, a negative duration or a timestamp of 1970 never reaches a compare or a history.

Each check names the first offending row by its key (metric and time, or endpoint and column).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import duckdb

from perfstats.errors import IngestError
from perfstats.readers.writer import RunInfo

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
"""No load-test tool perfstats reads existed before this; an earlier time is a broken clock or
a value in the wrong unit."""
FUTURE_MARGIN = timedelta(days=1)
"""A time later than now plus this is refused (a clock a little ahead is tolerated)."""

DURATION_METRICS = (
    "http_req_duration", "http_req_blocked", "http_req_connecting", "http_req_tls_handshaking",
    "http_req_sending", "http_req_waiting", "http_req_receiving", "iteration_duration",
    "group_duration", "ws_connecting", "ws_session_duration", "ws_ping", "grpc_req_duration",
)
"""k6's built-in metrics that are durations (also any metric whose Metric line says
``contains: time``)."""

_STATS = ("min", "mean", "p50", "p90", "p95", "p99", "max")
_COUNTS = ("count", "failures")


def validate_run(con: duckdb.DuckDBPyConnection, run_id: str, info: RunInfo, where: str) -> None:
    """Refuse the run if any stored value is unusable.

    Points: finite values, non-negative durations, times from 2000 to now.  Summaries and
    windows: finite, non-negative latencies and counts.  Histograms and errors: non-negative
    counts.  The run's start, end and duration: plausible and in order.

    Raises:
        IngestError: the first violation, naming ``where`` (the files), the row and the reason.
    """
    now = datetime.now(timezone.utc)
    latest = now + FUTURE_MARGIN
    _check_run_times(info, where, latest)
    for query, params in _queries(run_id, latest):
        rows = con.execute(query, params).fetchall()
        if rows:
            raise IngestError(where, rows[0][0])


def _check_run_times(info: RunInfo, where: str, latest: datetime) -> None:
    for name, moment in (("start", info.started_at), ("end", info.ended_at)):
        if moment is not None and not EARLIEST <= _utc(moment) <= latest:
            raise IngestError(where, f"run {name} {moment.isoformat()} is not a plausible time "
                                     f"(between {EARLIEST.year} and now)")
    if info.started_at and info.ended_at and _utc(info.ended_at) < _utc(info.started_at):
        raise IngestError(where, f"run ends ({info.ended_at.isoformat()}) before it starts "
                                 f"({info.started_at.isoformat()})")
    if info.duration_s is not None and not (math.isfinite(info.duration_s)
                                            and info.duration_s >= 0):
        raise IngestError(where, f"run duration {info.duration_s} s is not a non-negative number")


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _queries(run_id: str, latest: datetime) -> list[tuple[str, list[object]]]:
    """(query, parameters) pairs; each returns one row with a message for its first violation."""
    durations = ", ".join(f"'{m}'" for m in DURATION_METRICS)
    point = f"""
        SELECT CASE
            WHEN NOT isfinite(value) THEN format('metric {{}} at {{}}: value {{}} is not a finite
                number (NaN or an infinity)', metric, ts, value)
            WHEN ts < ? OR ts > ? THEN format('metric {{}}: time {{}} is not a plausible time
                (between {EARLIEST.year} and now)', metric, ts)
            WHEN value < 0 AND (metric IN ({durations}) OR metric IN (
                SELECT metric FROM metrics WHERE run_id = ? AND contains = 'time'))
                THEN format('metric {{}} at {{}}: negative duration {{}} ms', metric, ts, value)
        END AS problem
        FROM points WHERE run_id = ? AND (NOT isfinite(value) OR ts < ? OR ts > ? OR value < 0)
        """
    queries = [(_first(point), [EARLIEST, latest, run_id, run_id, EARLIEST, latest])]
    for table, has_start in (("summaries", False), ("windows", True)):
        checks = [f"WHEN NOT isfinite({c}) OR {c} < 0 THEN format('{table}: endpoint {{}}: {c} "
                  f"{{}} is not a finite non-negative number', endpoint, {c})"
                  for c in (*_STATS, *(["rps"] if table == "summaries" else []))]
        checks += [f"WHEN {c} < 0 THEN format('{table}: endpoint {{}}: negative {c} {{}}', "
                   f"endpoint, {c})" for c in _COUNTS]
        if has_start:
            checks.append(f"WHEN start < ? OR start > ? THEN format('windows: endpoint {{}}: "
                          f"window start {{}} is not a plausible time (between {EARLIEST.year} "
                          "and now)', endpoint, start)")
        sql = (f"SELECT CASE {' '.join(checks)} END AS problem FROM {table} "
               "WHERE run_id = ?")
        queries.append((_first(sql), [EARLIEST, latest, run_id] if has_start else [run_id]))
    queries.append((_first(
        "SELECT CASE WHEN NOT isfinite(bucket_ms) OR bucket_ms < 0 THEN format('histograms: "
        "endpoint {}: latency bucket {} ms is not a finite non-negative number', endpoint, "
        "bucket_ms) WHEN count < 0 THEN format('histograms: endpoint {}: negative count {}', "
        "endpoint, count) END AS problem FROM histograms WHERE run_id = ?"), [run_id]))
    queries.append((_first(
        "SELECT CASE WHEN count < 0 THEN format('errors: {} {}: negative count {}', "
        "coalesce(endpoint, 'run'), coalesce(error, kind), count) END AS problem "
        "FROM errors WHERE run_id = ?"), [run_id]))
    return queries


def _first(sql: str) -> str:
    """The first non-null problem of ``sql``, on one line."""
    one_line = " ".join(sql.split())
    return f"SELECT problem FROM ({one_line}) WHERE problem IS NOT NULL LIMIT 1"
