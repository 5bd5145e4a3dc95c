"""Summaries, windows, errors and checks derived in DuckDB from a run's raw request samples.

Percentiles use ``quantile_cont``: linear interpolation between sorted samples, exactly k6's
definition (``TrendSink.P``).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from perfstats.readers.shards import SHARD_SQL
from perfstats.readers.writer import RunWriter
from perfstats.store import ALL_ENDPOINTS

REQUEST_METRIC = "http_req_duration"

# A request failed when k6 says so (expected_response tag, k6 >= 0.31); older files have no such
# tag, so fall back to k6's default expected statuses 200-399.
FAILED = (
    "CASE WHEN expected_response IS NOT NULL THEN NOT expected_response "
    "ELSE coalesce(try_cast(status AS INTEGER), 0) NOT BETWEEN 200 AND 399 END"
)

# The four percentiles from one sort per group (a list of quantiles), spread out by _PERCENTILES.
_STATS = """
    count(*) AS count,
    count(*) FILTER (WHERE failed) AS failures,
    min(value) AS min, avg(value) AS mean,
    quantile_cont(value, [0.5, 0.9, 0.95, 0.99]) AS quantiles,
    max(value) AS max
"""
_PERCENTILES = ("quantiles[1] AS p50, quantiles[2] AS p90, quantiles[3] AS p95, "
                "quantiles[4] AS p99")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

WINDOW_SECONDS = 1.0
"""Width of the windows derived from raw samples."""

_TEMP_IDS = itertools.count(1)

_SECOND = f"time_bucket(INTERVAL '{int(WINDOW_SECONDS * 1000)} milliseconds', ts)"


def derive_from_samples(writer: RunWriter, *, checks: bool = True) -> None:
    """Fill summaries, windows, errors and checks of ``writer``'s run from its ``samples`` rows.

    ``checks=False`` leaves the ``checks`` table to the reader (k6 summaries have them by group).
    Also sets ``started_at``/``ended_at`` (first and last sample) and, when the reader did not
    know it, ``duration_s`` and ``max_users`` (peak of the ``vus`` gauge, else ``vus_max``).
    """
    run = writer.run_id
    con = writer.con
    # Every point has its tag set, so the run's first and last sample are its first and last
    # point (read without the join of the samples view).
    # As epoch microseconds: DuckDB's fetchall() needs pytz for TIMESTAMPTZ values.
    first, last = (None if us is None else _EPOCH + timedelta(microseconds=us) for us in
                   con.execute("SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM points "
                               "WHERE run_id = ?", [run]).fetchall()[0])
    info = writer.info
    info.started_at = info.started_at or first
    info.ended_at = info.ended_at or last
    if info.duration_s is None and first is not None:
        info.duration_s = (last - first).total_seconds() or None
    # The request samples and the users per second are read from the samples view once, into
    # temporary tables that the statements below share (each scanned the points anew).
    requests = f"_perfstats_requests_{next(_TEMP_IDS)}"
    users = f"_perfstats_users_{next(_TEMP_IDS)}"
    # Both are dropped at the end; after a failure the ingest's rollback removes them.
    con.execute(
        f"""
        CREATE TEMP TABLE {requests} AS
        SELECT endpoint, name, method, value, ts, {_SECOND} AS start, status, error_code,
               {FAILED} AS failed
        FROM samples WHERE run_id = ? AND metric = '{REQUEST_METRIC}'
        """,
        [run],
    )
    # The users of each second: the peak of the vus gauge (and of vus_max) in it; the shards of
    # a distributed run each report their own VUs: per second, they add up.
    con.execute(
        f"""
        CREATE TEMP TABLE {users} AS
        SELECT metric, start, sum(value) AS users FROM (
            SELECT metric, {_SECOND} AS start, {SHARD_SQL} AS shard, max(value) AS value
            FROM samples WHERE run_id = ? AND metric IN ('vus', 'vus_max') GROUP BY ALL
        ) GROUP BY metric, start
        """,
        [run],
    )
    if info.max_users is None:
        # The peak of active VUs; the allocated ones (vus_max) only when vus is missing.
        info.max_users = writer.scalar(
            f"SELECT coalesce(max(users) FILTER (WHERE metric = 'vus'), max(users)) FROM {users}"
        ) if info.load_model != "open" else None
    _derive(writer, requests, users, first, last)
    con.execute(f"DROP TABLE {requests}; DROP TABLE {users}")
    if not checks:
        return
    writer.insert_sql(
        "checks",
        f"""
        SELECT grp, check_name AS name, count(*) FILTER (WHERE value <> 0) AS passes,
               count(*) FILTER (WHERE value = 0) AS fails
        FROM samples WHERE run_id = '{run}' AND metric = 'checks' GROUP BY ALL
        """,
    )


def _derive(writer: RunWriter, requests: str, users: str, first: datetime | None,
            last: datetime | None) -> None:
    """Summaries, windows and errors from the temporary tables ``requests`` (the request
    samples) and ``users`` (the users of each second) of :func:`derive_from_samples`, whose
    first and last points are at ``first`` and ``last``."""
    duration = writer.info.duration_s or 0.0
    writer.insert_sql(
        "summaries",
        f"""
        SELECT * EXCLUDE (quantiles), {_PERCENTILES} FROM (
            SELECT coalesce(endpoint, '{ALL_ENDPOINTS}') AS endpoint,
                   CASE WHEN endpoint IS NULL THEN NULL ELSE any_value(name) END AS tool_name,
                   CASE WHEN endpoint IS NULL THEN NULL ELSE any_value(method) END AS method,
                   {_STATS},
                   CASE WHEN ? > 0 THEN count(*) / ? END AS rps,
                   'exact' AS percentiles
            FROM {requests} GROUP BY GROUPING SETS ((endpoint), ())
        )
        """,
        [duration, duration],
    )
    # A window's length is the part of it the run covers: the first and last ones are partial,
    # and a full 1 s length would show a false drop of throughput at the run's edges.
    length = (f"greatest(least(epoch(start) + {WINDOW_SECONDS}, epoch(bounds.last)) "
              "- greatest(epoch(start), epoch(bounds.first)), 0.001)")
    writer.insert_sql(
        "windows",
        f"""
        WITH bounds AS (
            SELECT ?::TIMESTAMPTZ AS first, ?::TIMESTAMPTZ AS last
        ), vus AS (
            SELECT start, users FROM {users} WHERE metric = 'vus'
        ), w AS (
            SELECT coalesce(endpoint, '{ALL_ENDPOINTS}') AS endpoint, start,
                   {_STATS}, sum(value) AS total_ms
            FROM {requests} GROUP BY GROUPING SETS ((endpoint, start), (start))
        ), all_windows AS (
            SELECT w.*, CASE WHEN w.endpoint = '{ALL_ENDPOINTS}' THEN vus.users END AS users
            FROM w LEFT JOIN vus USING (start)
            UNION ALL BY NAME
            SELECT '{ALL_ENDPOINTS}' AS endpoint, vus.start, 0 AS count, 0 AS failures,
                   vus.users
            FROM vus ANTI JOIN (SELECT DISTINCT start FROM {requests}) r USING (start)
        )
        SELECT all_windows.* EXCLUDE (quantiles), {_PERCENTILES}, {length} AS length_s,
               'exact' AS percentiles
        FROM all_windows, bounds
        """,
        [first, last],
    )
    writer.insert_sql(
        "errors",
        f"""
        SELECT endpoint, 'http_status' AS kind, coalesce(status, '') AS error, count(*) AS count,
               min(ts) AS first_seen, max(ts) AS last_seen
        FROM {requests} WHERE failed GROUP BY ALL
        UNION ALL
        SELECT endpoint, 'error_code' AS kind, error_code AS error, count(*) AS count,
               min(ts) AS first_seen, max(ts) AS last_seen
        FROM {requests} WHERE coalesce(error_code, '') <> '' GROUP BY ALL
        """,
    )
