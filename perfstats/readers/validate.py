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
    checks = _checks()
    params = {"run": run_id, "earliest": EARLIEST, "latest": latest}
    # A valid run (the usual case) costs one short query (the screens); the checks, long to
    # plan, run only when it finds a suspect row.
    found = " OR ".join(f"EXISTS (FROM {table} WHERE run_id = $run AND ({_SCREENS[table]}))"
                        for table, _ in checks)
    if not con.execute(f"SELECT {found}", params).fetchall()[0][0]:
        return
    for table, tests in checks:
        cases = " ".join(f"WHEN {condition} THEN {message}" for condition, message in tests)
        sql = (f"SELECT CASE {cases} END FROM {table} "
               f"WHERE run_id = $run AND ({_any(tests)}) LIMIT 1")
        rows = con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).fetchall()
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


_LARGEST = "1.7976931348623157e308"
_SCREENS = {
    "points": f"NOT (value BETWEEN 0 AND {_LARGEST}) OR NOT (ts BETWEEN $earliest AND $latest)",
    "summaries": f"least({', '.join(_STATS)}, rps, {', '.join(_COUNTS)}) < 0 "
                 f"OR greatest({', '.join(_STATS)}, rps) > {_LARGEST}",
    "windows": f"least({', '.join(_STATS)}, {', '.join(_COUNTS)}) < 0 "
               f"OR greatest({', '.join(_STATS)}) > {_LARGEST} "
               "OR NOT (start BETWEEN $earliest AND $latest)",
    "histograms": f"least(bucket_ms, count) < 0 OR bucket_ms > {_LARGEST}",
    "errors": "count < 0",
}
"""Per table, a condition true for every row that a check of :func:`_checks` refuses (and for
a few it accepts: negative values of metrics that are not durations).  NaN is greater than any
number in DuckDB, infinities are beyond the largest double, and ``least``/``greatest`` skip
NULLs as the checks do."""


def _checks() -> list[tuple[str, list[tuple[str, str]]]]:
    """The checks in the order they are reported: (table, [(condition, message)]), SQL over a row
    of the table with the parameters ``$run``, ``$earliest`` and ``$latest``."""
    durations = ", ".join(f"'{m}'" for m in DURATION_METRICS)
    plausible = f"is not a plausible time (between {EARLIEST.year} and now)"
    checks = [("points", [
        ("NOT isfinite(value)", "format('metric {} at {}: value {} is not a finite number "
                                "(NaN or an infinity)', metric, ts, value)"),
        ("ts < $earliest OR ts > $latest", f"format('metric {{}}: time {{}} {plausible}', "
                                           "metric, ts)"),
        (f"value < 0 AND (metric IN ({durations}) OR metric IN ("
         "SELECT metric FROM metrics WHERE run_id = $run AND contains = 'time'))",
         "format('metric {} at {}: negative duration {} ms', metric, ts, value)"),
    ])]
    for table in ("summaries", "windows"):
        tests = [(f"NOT isfinite({c}) OR {c} < 0",
                  f"format('{table}: endpoint {{}}: {c} {{}} is not a finite non-negative "
                  f"number', endpoint, {c})")
                 for c in (*_STATS, *(["rps"] if table == "summaries" else []))]
        tests += [(f"{c} < 0", f"format('{table}: endpoint {{}}: negative {c} {{}}', "
                               f"endpoint, {c})") for c in _COUNTS]
        if table == "windows":
            tests.append(("start < $earliest OR start > $latest",
                          f"format('windows: endpoint {{}}: window start {{}} {plausible}', "
                          "endpoint, start)"))
        checks.append((table, tests))
    checks.append(("histograms", [
        ("NOT isfinite(bucket_ms) OR bucket_ms < 0",
         "format('histograms: endpoint {}: latency bucket {} ms is not a finite non-negative "
         "number', endpoint, bucket_ms)"),
        ("count < 0", "format('histograms: endpoint {}: negative count {}', endpoint, count)"),
    ]))
    checks.append(("errors", [
        ("count < 0", "format('errors: {} {}: negative count {}', coalesce(endpoint, 'run'), "
                      "coalesce(error, kind), count)"),
    ]))
    return checks


def _any(tests: list[tuple[str, str]]) -> str:
    return " OR ".join(f"({condition})" for condition, _ in tests)
