"""Runs: ingest, load and list them; the :class:`Run` handle analysts work with."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import polars as pl

from perfstats.errors import ArgumentError, RunNotFoundError
from perfstats.metric_model import PROTOCOL, catalog
from perfstats.readers import ingest_sources, locust_prefix_files, resolve_sources
from perfstats.render.document import Document, Result, Section
from perfstats.render.tables import show
from perfstats.store import ALL_ENDPOINTS, DB, RUN_TABLES, PathLike, Store, fetch_frame, open_store

if TYPE_CHECKING:
    import altair as alt


SUMMARY_COLUMNS = ["endpoint", "count", "failures", "error_rate", "rps", "min", "mean", "p50",
                   "p90", "p95", "p99", "max"]


@dataclass(frozen=True)
class Run(Result):
    """One ingested run in a store.

    Attributes:
        run_id: the run's id (a prefix of its content hash).
        store: the store holding it.
        meta: the ``runs`` row: tool, format, tool_version, grain, source_files, started_at,
            ended_at, duration_s, load_model, max_users, labels.
        existed: True when an ingest found this content already stored.
    """

    run_id: str
    store: Store = field(repr=False)
    meta: dict[str, Any] = field(repr=False, compare=False)
    existed: bool = field(default=False, compare=False)

    @property
    def tool(self) -> str:
        """``k6``, ``artillery`` or ``locust``."""
        return str(self.meta["tool"])

    @property
    def grain(self) -> str:
        """Finest data kept: ``samples``, ``histograms``, ``windows`` or ``summary``."""
        return str(self.meta["grain"])

    @property
    def labels(self) -> dict[str, str]:
        """The run's free ``key=value`` labels."""
        return dict(self.meta["labels"])

    def summary(self, *, by: str | None = None,
                metric: str | Sequence[str] | None = None) -> pl.DataFrame:
        """The request summary, or the summary of other metrics, whole or sliced.

        Without ``metric``: one row per endpoint plus the whole-run row (``endpoint == "ALL"``),
        latencies in ms. Columns: endpoint, count, failures, error_rate, rps, min, mean, p50,
        p90, p95, p99, max, then method, tool_name, protocol (``http``, or a non-HTTP request
        type such as Locust's ``grpc``; for ``ALL``, the protocols it adds up, ``http+grpc``)
        and ``percentiles``: ``exact`` (from raw samples, k6's
        linear interpolation), ``histogram`` (from the tool's buckets, the tool's own rule) or
        ``tool-summary`` (as the tool wrote them).

        ``metric``: a metric or sub-metric name (``quote_duration``,
        ``http_req_duration{scenario:booking_flow}``), or a list of names of one kind: one row
        per metric with the columns of its kind (see :func:`perfstats.metric_model.metric_values`).

        ``by``: ``scenario``, ``group``, ``endpoint`` or ``tag:NAME`` slices the rows (a column
        of that name comes second), exactly from raw samples; without raw samples a metric's
        slices are the tool's sub-metrics with that one tag.

        Raises:
            ArgumentError: an unknown metric or slice, metrics of several kinds, or a sliced
                request summary of a run without raw samples.
        """
        if metric is not None:
            return self._metric_summary(metric, by)
        if by is not None:
            return self._sliced_requests(by)
        return self.store.query(
            f"""
            SELECT endpoint, count, failures,
                   CASE WHEN count > 0 THEN failures / count END AS error_rate,
                   rps, min, mean, p50, p90, p95, p99, max, method, tool_name,
                   CASE WHEN endpoint = '{ALL_ENDPOINTS}' THEN coalesce((
                       SELECT string_agg(DISTINCT p, '+' ORDER BY p <> 'http', p)
                       FROM (SELECT {PROTOCOL} AS p FROM summaries
                             WHERE run_id = $run AND endpoint <> '{ALL_ENDPOINTS}')), 'http')
                        ELSE {PROTOCOL} END AS protocol, percentiles
            FROM summaries WHERE run_id = $run
            ORDER BY endpoint = '{ALL_ENDPOINTS}', endpoint
            """,
            {"run": self.run_id},
        )

    def _metric_summary(self, metric: str | Sequence[str], by: str | None) -> pl.DataFrame:
        from perfstats.errors import ArgumentError
        from perfstats.metric_model import metric_values

        names = [metric] if isinstance(metric, str) else list(metric)
        known = self.metrics()
        kinds = dict(zip(known["metric"].to_list(), known["kind"].to_list(), strict=True))
        missing = [n for n in names if n not in kinds]
        if missing:
            raise ArgumentError(f"run {self.run_id} has no metric {missing[0]!r}; it has "
                                f"{', '.join(sorted(kinds)) or 'none'}")
        found = {kinds[n] for n in names}
        if len(found) > 1:
            raise ArgumentError(f"metrics of several kinds ({', '.join(sorted(found))}): ask "
                                "for one kind at a time")
        return metric_values(self, found.pop(), metrics=names, by=by)

    def _sliced_requests(self, by: str) -> pl.DataFrame:
        from perfstats.errors import ArgumentError
        from perfstats.metric_model import slice_expression

        column, expression = slice_expression(by)
        if self.grain != "samples":
            raise ArgumentError(
                f"run {self.run_id} has no raw samples (grain {self.grain}): the request "
                f"summary by {by} needs them; ask for a metric by {by} instead "
                "(summary(metric=..., by=...)) to use the tool's sub-metrics")
        failed = ("CASE WHEN expected_response IS NOT NULL THEN NOT expected_response "
                  "ELSE coalesce(try_cast(status AS INTEGER), 0) NOT BETWEEN 200 AND 399 END")
        return self.store.query(
            f"""
            SELECT slice AS "{column}", coalesce(endpoint, '{ALL_ENDPOINTS}') AS endpoint,
                   count(*) AS count, count(*) FILTER (WHERE failed) AS failures,
                   count(*) FILTER (WHERE failed) / count(*) AS error_rate,
                   count(*) / nullif($duration, 0) AS rps, min(value) AS min,
                   avg(value) AS mean, quantile_cont(value, 0.5) AS p50,
                   quantile_cont(value, 0.9) AS p90, quantile_cont(value, 0.95) AS p95,
                   quantile_cont(value, 0.99) AS p99, max(value) AS max,
                   CASE WHEN endpoint IS NOT NULL THEN any_value(method) END AS method,
                   CASE WHEN endpoint IS NOT NULL THEN any_value(name) END AS tool_name,
                   'http' AS protocol, 'exact' AS percentiles
            FROM (SELECT {expression} AS slice, endpoint, value, method, name, {failed} AS failed
                  FROM samples WHERE run_id = $run AND metric = 'http_req_duration')
            GROUP BY GROUPING SETS ((slice, endpoint), (slice))
            ORDER BY slice NULLS LAST, endpoint = '{ALL_ENDPOINTS}', endpoint
            """,
            {"run": self.run_id, "duration": self.meta.get("duration_s") or 0.0},
        )

    def summary_tables(self, *, by: str | None = None) -> dict[str, pl.DataFrame]:
        """Every section of ``perfstats summary`` that the run has, in order, as frames.

        ``requests`` (the request summary, sliced by ``by`` when given), ``trends``, ``rates``,
        ``counters``, ``gauges`` (every metric of that kind with the kind's statistics, sliced
        by ``by``; one table per unit, named e.g. ``trends (ms)`` with the unit in the value
        columns' names: ``p95_ms``, ``total_bytes``), ``scenarios`` (load model of each),
        ``checks`` and ``thresholds`` (the tool's verdict); empty sections are left out.
        """
        with self.store.reading():  # one read connection for the sections' queries
            tables = {"requests": (self._sliced_requests(by) if by is not None
                                   else self.summary().select(*SUMMARY_COLUMNS, "protocol",
                                                              "percentiles"))}
            tables.update(self._metric_tables(by))
            tables["scenarios"] = self.scenarios()
            tables["checks"] = self.checks()
            tables["thresholds"] = self.thresholds().drop("base", "tags")
        return {name: frame for name, frame in tables.items() if frame.height}

    def _metric_tables(self, by: str | None = None) -> dict[str, pl.DataFrame]:
        """Every metric of each kind with the kind's statistics: a table per kind and unit,
        named e.g. ``trends (ms)``."""
        from perfstats.metric_model import KINDS, by_unit, metric_values

        tables: dict[str, pl.DataFrame] = {}
        for kind in KINDS:
            tables.update(by_unit(metric_values(self, kind, by=by), kind))
        return tables

    def contents_note(self) -> str | None:
        """None when the run has HTTP requests; else a sentence saying so and what it has."""
        has_requests = self.store.query(
            "SELECT count(*) AS n FROM summaries WHERE run_id = ? AND coalesce(count, 0) > 0",
            [self.run_id])["n"][0]
        if has_requests:
            return None
        known = self.metrics().filter(pl.col("tags").is_null())
        if known.is_empty():
            return "no HTTP requests and no other metrics in this run"
        trends = known.filter(pl.col("kind") == "trend")["metric"].to_list()
        parts = []
        if trends:
            shown = ", ".join(trends[:8]) + (f" and {len(trends) - 8} more" if len(trends) > 8
                                             else "")
            parts.append(f"trends {shown}")
        counts = known.filter(pl.col("kind") != "trend")["kind"].value_counts(sort=True)
        parts.extend(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in counts.iter_rows())
        return "no HTTP requests in this run; it has " + "; ".join(parts)

    def metrics(self) -> pl.DataFrame:
        """Every metric and sub-metric of the run with its kind and unit (one row each).

        Columns: metric, base, tags (JSON of a sub-metric's tag selector), kind (``trend``,
        ``rate``, ``counter``, ``gauge``), unit, kind_basis (``tool``, ``known``,
        ``inferred``), tool_type, samples (raw points of the base metric), source.  Read once
        per Run: a stored run's rows do not change.
        """
        return self._metrics.clone()

    @cached_property
    def _metrics(self) -> pl.DataFrame:
        return catalog(self)

    def scenarios(self) -> pl.DataFrame:
        """The load model of each scenario (k6 runs with raw points).

        Columns: scenario, load_model (``closed`` / ``open``, null when it cannot be told),
        basis (how it was found: the summary options, or inferred and how), executor (from the
        summary's options, else null), iterations, requests.
        """
        return self.store.query(
            "SELECT scenario, load_model, basis, executor, iterations, requests "
            "FROM scenarios WHERE run_id = ? ORDER BY scenario",
            [self.run_id])

    def checks(self) -> pl.DataFrame:
        """Checks with their pass rate: group, check, passes, fails, pass_rate."""
        return self.store.query(
            "SELECT grp AS \"group\", name AS \"check\", passes, fails, "
            "passes / nullif(passes + fails, 0) AS pass_rate FROM checks WHERE run_id = ? "
            "ORDER BY grp NULLS LAST, name", [self.run_id])

    def thresholds(self) -> pl.DataFrame:
        """The thresholds the run declared and the tool's own verdict, as stored.

        Columns: metric (as the tool named it, sub-metrics included), base, tags (JSON of the
        sub-metric's tag selector), expression, tool_ok (true = passed, null = the tool's
        verdict is not in the files given).
        """
        from perfstats.readers.k6_summary import split_metric_name

        frame = self.store.query(
            "SELECT metric, expression, ok AS tool_ok FROM thresholds WHERE run_id = ? "
            "ORDER BY metric, expression", [self.run_id])
        split = [split_metric_name(m) for m in frame["metric"].to_list()]
        return frame.with_columns(
            pl.Series("base", [b for b, _ in split], dtype=pl.Utf8),
            pl.Series("tags", [json.dumps(t) if t else None for _, t in split], dtype=pl.Utf8),
        ).select("metric", "base", "tags", "expression", "tool_ok")

    def windows(self, endpoint: str | None = None) -> pl.DataFrame:
        """Time windows (per endpoint and ``ALL``), oldest first."""
        where = "" if endpoint is None else "AND endpoint = ?"
        params = [self.run_id] + ([] if endpoint is None else [endpoint])
        return self.store.query(
            f"SELECT * EXCLUDE (run_id) FROM windows WHERE run_id = ? {where} "
            "ORDER BY endpoint, start", params)

    def samples(self, metric: str = "http_req_duration") -> pl.DataFrame:
        """Raw samples of one metric (only runs of grain ``samples`` have them)."""
        return self.store.query(
            "SELECT * EXCLUDE (run_id) FROM samples WHERE run_id = ? AND metric = ? ORDER BY ts",
            [self.run_id, metric])

    def table(self, name: str) -> pl.DataFrame:
        """All rows of one run table (``errors``, ``checks``, ``thresholds``, ``histograms``...)."""
        from perfstats.store import RUN_TABLES, VIEWS

        if name not in RUN_TABLES and name not in VIEWS:
            raise ValueError(f"unknown table {name!r}; one of {', '.join([*RUN_TABLES, *VIEWS])}")
        return self.store.query(f"SELECT * EXCLUDE (run_id) FROM {name} WHERE run_id = ?",
                                [self.run_id])

    def timeline(self, *, max_points: int = 200) -> pl.DataFrame:
        """Time windows ready to plot: at most ``max_points`` per endpoint, oldest first.

        Columns: endpoint, start, elapsed_s (since the first window), length_s, count, failures,
        rps, error_rate, min, mean, p50, p90, p95, p99, max, users, percentiles. A run with more
        windows is merged into wider ones: counts add up and means are count-weighted; the
        percentiles are recomputed from raw samples when the run has them (``exact``), else
        they are the largest window value in the merged window (``max-of-windows``, an upper
        bound: percentiles cannot be averaged).
        """
        if max_points < 1:
            raise ValueError(f"max_points must be >= 1, got {max_points}")
        stats = "count, failures, min, mean, p50, p90, p95, p99, max, users"
        rows = self.store.query(
            "SELECT max(n) AS n, median(len) AS len FROM (SELECT count(*) AS n, "
            "median(length_s) AS len FROM windows WHERE run_id = ? GROUP BY endpoint)",
            [self.run_id])
        n, length = rows.row(0)
        if not n or n <= max_points:
            body = f"SELECT endpoint, start, length_s, {stats}, percentiles FROM windows " \
                   "WHERE run_id = ?"
            params: list[Any] = [self.run_id]
        else:
            width = -(-n // max_points) * float(length)
            bucket = "floor(epoch({ts} - t0) / {w})"
            body = f"""
            WITH b AS (SELECT min(start) AS t0, max(start + to_microseconds(CAST(length_s * 1e6
                       AS BIGINT))) AS t1 FROM windows WHERE run_id = $run),
            m AS (
                SELECT endpoint, {bucket.format(ts="start", w="$w")} AS k,
                       sum(count)::BIGINT AS count, sum(failures)::BIGINT AS failures,
                       min(min) AS min,
                       sum(coalesce(total_ms, mean * count)) / nullif(sum(count), 0) AS mean,
                       max(p50) AS p50, max(p90) AS p90, max(p95) AS p95, max(p99) AS p99,
                       max(max) AS max, max(users) AS users
                FROM windows, b WHERE run_id = $run GROUP BY ALL
            ), e AS (
                SELECT coalesce(endpoint, '{ALL_ENDPOINTS}') AS endpoint, k,
                       quantile_cont(value, 0.5) AS p50, quantile_cont(value, 0.9) AS p90,
                       quantile_cont(value, 0.95) AS p95, quantile_cont(value, 0.99) AS p99
                FROM (SELECT endpoint, value, {bucket.format(ts="ts", w="$w")} AS k
                      FROM samples, b WHERE run_id = $run AND metric = 'http_req_duration')
                GROUP BY GROUPING SETS ((endpoint, k), (k))
            )
            SELECT m.endpoint, t0 + to_microseconds(CAST(m.k * $w * 1e6 AS BIGINT)) AS start,
                   least($w, epoch(t1 - t0) - m.k * $w) AS length_s, count, failures, min, mean,
                   coalesce(e.p50, m.p50) AS p50, coalesce(e.p90, m.p90) AS p90,
                   coalesce(e.p95, m.p95) AS p95, coalesce(e.p99, m.p99) AS p99, max, users,
                   CASE WHEN e.k IS NULL THEN 'max-of-windows' ELSE 'exact' END AS percentiles
            FROM m CROSS JOIN b LEFT JOIN e USING (endpoint, k)
            """
            params = {"run": self.run_id, "w": width}  # type: ignore[assignment]
        return self.store.query(
            f"""
            SELECT endpoint, start, epoch(start - min(start) OVER ()) AS elapsed_s, length_s,
                   count, failures, count / length_s AS rps,
                   CASE WHEN count > 0 THEN failures / count END AS error_rate,
                   min, mean, p50, p90, p95, p99, max, users, percentiles
            FROM ({body}) ORDER BY endpoint = '{ALL_ENDPOINTS}' DESC, endpoint, start
            """, params)

    def quantiles(self, *, points: int = 200) -> pl.DataFrame:
        """The latency distribution per endpoint as about ``points`` (q, latency_ms) pairs.

        Columns: endpoint, q (0-1), latency_ms, source. From raw samples: ``quantile_cont`` on a
        grid of q with extra tail points (``exact``); from the tool's buckets: the cumulative
        share at each bucket (``histogram``); otherwise the run's summary percentiles
        (min, p50, p90, p95, p99, max as the tool gave them).
        """
        if points < 10:
            raise ValueError(f"points must be >= 10, got {points}")
        grid = sorted({round(i / (points - 6), 6) for i in range(points - 5)}
                      | {0.99, 0.995, 0.999, 0.9995, 0.9999})
        if self.grain == "samples":
            sql = f"""
            SELECT endpoint, unnest($grid::DOUBLE[]) AS q, unnest(qs) AS latency_ms,
                   'exact' AS source
            FROM (SELECT coalesce(endpoint, '{ALL_ENDPOINTS}') AS endpoint,
                         quantile_cont(value, $grid::DOUBLE[]) AS qs
                  FROM samples WHERE run_id = $run AND metric = 'http_req_duration'
                  GROUP BY GROUPING SETS ((endpoint), ()))
            """
            params: dict[str, Any] = {"run": self.run_id, "grid": grid}
        elif self.grain == "histograms":
            sql = """
            SELECT endpoint, sum(n) OVER (PARTITION BY endpoint ORDER BY latency_ms)
                       / sum(n) OVER (PARTITION BY endpoint) AS q, latency_ms,
                   'histogram' AS source
            FROM (SELECT endpoint, bucket_ms AS latency_ms, sum(count) AS n
                  FROM histograms WHERE run_id = $run AND start IS NULL GROUP BY ALL)
            """
            params = {"run": self.run_id}
        else:
            sql = """
            SELECT * FROM (
                SELECT endpoint, unnest([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]::DOUBLE[]) AS q,
                       unnest([min, p50, p90, p95, p99, max]) AS latency_ms,
                       percentiles AS source
                FROM summaries WHERE run_id = $run)
            WHERE latency_ms IS NOT NULL
            """
            params = {"run": self.run_id}
        return self.store.query(
            f"SELECT * FROM ({sql}) ORDER BY endpoint = '{ALL_ENDPOINTS}' DESC, endpoint, q",
            params)  # type: ignore[arg-type]

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the reader noted about the files (estimated parts, missing data), in words."""
        return tuple(self.meta.get("notes") or ())

    def headline(self) -> str:
        """One line: id, tool, format and grain."""
        return f"Run {self.run_id} ({self.tool}, {self.meta.get('format')}, {self.grain})"

    def findings(self) -> list[str]:
        """What the run did, in a few lines (the run_summary report's first screen): requests,
        rate and failures; the whole-run p95 and the slowest endpoint; the commonest error."""
        summary = self.summary()
        whole = summary.filter(pl.col("endpoint") == ALL_ENDPOINTS)
        lines = [self.headline()]
        if whole.is_empty():
            return lines
        row = whole.row(0, named=True)
        duration = self.meta.get("duration_s") or 0
        share = (row["failures"] or 0) / row["count"] if row["count"] else 0
        lines.append(f"{row['count']:,} requests in {duration:,.0f} s ({row['rps'] or 0:,.1f} "
                     f"req/s); {row['failures'] or 0:,} failed ({share:.2%})")
        endpoints = summary.filter(pl.col("endpoint") != ALL_ENDPOINTS,
                                   pl.col("p95").is_not_null()).sort("p95", descending=True)
        if row["p95"] is not None:
            slowest = (f"; slowest endpoint {endpoints['endpoint'][0]} at p95 "
                       f"{endpoints['p95'][0]:,.0f} ms" if endpoints.height else "")
            lines.append(f"p95 {row['p95']:,.1f} ms over all requests{slowest}")
        errors = self.errors()
        if errors.height:
            top = errors.sort("count", descending=True).row(0, named=True)
            lines.append(f"Commonest error: {top['endpoint']} {top['kind'].replace('_', ' ')} "
                         f"{top['error']} x {top['count']:,}")
        return lines

    def errors(self) -> pl.DataFrame:
        """Failed requests by endpoint and kind, each failure counted once: a k6 error code
        1xxx that only restates an HTTP status (code 1500 for HTTP 500, same endpoint and count)
        is left out, as its HTTP status row already counts those requests."""
        frame = self.table("errors")
        if frame.is_empty() or "kind" not in frame.columns:
            return frame
        status = frame.filter(pl.col("kind") == "http_status").select(
            "endpoint", pl.col("error").alias("status"), "count")
        restated = (frame.filter(pl.col("kind") == "error_code")
                    .with_columns((pl.col("error").cast(pl.Int64, strict=False) - 1000)
                                  .cast(pl.String).alias("status"))
                    .join(status, on=["endpoint", "status", "count"], how="semi")
                    .select("endpoint", "kind", "error"))
        return frame.join(restated, on=["endpoint", "kind", "error"], how="anti",
                          maintain_order="left")

    def chart(self, *, max_points: int = 200) -> alt.FacetChart:
        """Latency percentiles over time, one panel per endpoint (see :mod:`perfstats.charts`).

        Args:
            max_points: at most this many windows per endpoint (see :meth:`timeline`).
        """
        from perfstats.render import charts

        return charts.latency_over_time(self.timeline(max_points=max_points))

    def to_dict(self) -> dict[str, Any]:
        """Run metadata as plain JSON-able values."""
        out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in self.meta.items()}
        out["run_id"] = self.run_id
        return out

    def document(self) -> Document:
        """The run's metadata and its per-endpoint summary."""
        meta = self.meta
        about = (f"{self.tool} {meta.get('tool_version') or ''}".rstrip()
                 + f" · {meta.get('format')} · grain {self.grain} · started "
                 f"{_utc(meta.get('started_at'))} · {(meta.get('duration_s') or 0):.1f} s")
        if self.labels:
            about += " · " + ", ".join(f"{k}={v}" for k, v in self.labels.items())
        return Document(title=f"Run {self.run_id}", lead=[about], warnings=self.warnings,
                        sections=[Section(table=show(self.summary()))])

    def recorded(self) -> Document:
        """Everything else the run recorded (the run_summary report's last section): requests
        per scenario (raw samples, more than one scenario), the custom Trends, Rates, Counters
        and Gauges and the checks (a table per kind and unit, the unit in the value columns'
        names), and the thresholds the run declared, re-evaluated beside the tool's verdict.
        What the run lacks is said in the lead."""
        from perfstats.thresholds import evaluate_thresholds

        absent, sections = [], []
        with self.store.reading():  # one read connection for the sections' queries
            if self.grain != "samples":
                absent.append(f"No requests per scenario: slicing requests needs raw samples; "
                              f"this run has {self.grain}.")
            elif (by_scenario := self.summary(by="scenario"))["scenario"].n_unique() > 1:
                sections.append(Section("Requests per scenario", table=show(by_scenario)))
            kinds = {**self._metric_tables(), "checks": self.checks()}
            kinds = {name: frame for name, frame in kinds.items() if frame.height}
            thresholds = evaluate_thresholds(self)
        sections += [Section(name.capitalize(), table=show(frame, units=_BARE_STATISTICS))
                     for name, frame in kinds.items()]
        if not kinds:
            absent.append("No custom metrics or checks in this run.")
        if thresholds.is_empty():
            absent.append("The run declared no thresholds.")
        else:
            sections.append(Section("Thresholds", table=show(
                thresholds.select("metric", "expression", "value", "ok", "tool_ok", "method"),
                units={"value": None})))
        return Document(title="", lead=absent, sections=sections)


_BARE_STATISTICS: dict[str, str | None] = {
    c: None for c in ("avg", "min", "med", "p90", "p95", "p99", "max", "last", "total",
                      "per_second")}
"""Statistics of the metric tables shown without a unit in their name (a unit is in the value
columns' names, ``p95_ms``, when the metric has one)."""


def _utc(moment: Any) -> str:
    """``2026-11-22 02:10:01 UTC`` (seconds, no offset digits)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if hasattr(moment, "strftime") else str(moment)


def ingest(
    path_or_paths: PathLike | Sequence[PathLike],
    *,
    db: DB = None,
    labels: dict[str, str] | None = None,
    fmt: str | None = None,
    progress: Callable[[float], None] | None = None,
) -> Run:
    """Ingest one run from a file, a directory, a Locust prefix, or several files of one run.

    Args:
        path_or_paths: the run's file(s); a list makes *one* run (e.g. k6 points + summary,
            or the k6 NDJSON outputs of the shards of one distributed run, docs/ingest.md).
        db: a :class:`Store`, a database path, or None for the default store.
        labels: free ``key=value`` labels (commit, branch, environment...).
        fmt: force a format (see ``perfstats.readers.detect.FORMATS``) instead of detecting it.
        progress: called now and then (from another thread) with the share done, 0 to 1, of
            the long scans of a k6 raw output; for a progress bar.

    Returns:
        The run; ``run.existed`` tells that the same content was already stored.

    Raises:
        IngestError: bad input; the store is left exactly as it was.

    Example:
        >>> run = ingest("data/k6/baseline", db=":memory:")  # doctest: +SKIP
    """
    single = isinstance(path_or_paths, str | os.PathLike)
    paths = [path_or_paths] if single else list(path_or_paths)
    store = open_store(db)
    # A list is one run: several raw outputs in it are the shards of a distributed run.
    sources = resolve_sources(paths, fmt=fmt, one_run=not single and len(paths) > 1)
    run_id, existed = ingest_sources(store, sources, labels=labels, progress=progress)
    return Run(run_id, store, store.run_meta(run_id), existed)


def load(run_or_path: Run | PathLike, *, db: DB = None) -> Run:
    """Return a stored run by id (or unique id prefix), or ingest a path.

    A path that exists on disk is ingested into ``db`` when given, else into a throw-away
    in-memory store.
    """
    if isinstance(run_or_path, Run):
        return run_or_path
    if os.path.exists(run_or_path) or locust_prefix_files(run_or_path):
        return ingest(run_or_path, db=db if db is not None else Store(":memory:"))
    store = open_store(db)
    with store.reading():  # one read connection for the id and the metadata
        run_id = store.resolve_run_id(os.fspath(run_or_path))
        return Run(run_id, store, store.run_meta(run_id))


def delete(run_ids: str | Sequence[str], *, db: DB = None, dry_run: bool = False
           ) -> pl.DataFrame:
    """Remove runs (ids or unique id prefixes) and every row of theirs, in one transaction.

    Args:
        run_ids: one run id or several; each must name exactly one stored run.
        db: a :class:`Store`, a database path, or None for the default store.
        dry_run: list what would be removed and change nothing.

    Returns:
        The removed (or, with ``dry_run``, the to-be-removed) runs: ``run_id``, ``tool``,
        ``started_at``, ``labels``, ``source_files`` and ``rows`` (their rows over all tables).

    Raises:
        RunNotFoundError: an id names no run or several (nothing is removed then).

    Example:
        >>> delete(["5a367cd78bb2"], db="perfstats.duckdb", dry_run=True)  # doctest: +SKIP
    """
    store = open_store(db)
    wanted = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    if not wanted:
        raise ArgumentError("no run id given")
    with store.connect(write=not dry_run) as con:
        ids = list(dict.fromkeys(_resolve_in(con, store, run_id) for run_id in wanted))
        counts = " + ".join(f"(SELECT count(*) FROM {t} WHERE run_id = r.run_id)"
                            for t in RUN_TABLES)
        listing = fetch_frame(
            con, f"SELECT run_id, tool, started_at, labels, source_files, {counts} AS rows "
                 "FROM runs r WHERE list_contains(?, run_id) ORDER BY started_at NULLS LAST, "
                 "run_id", [ids])
        if dry_run:
            return listing
        con.execute("BEGIN TRANSACTION")
        try:
            for table in [*RUN_TABLES, "runs"]:
                con.execute(f"DELETE FROM {table} WHERE list_contains(?, run_id)", [ids])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return listing


def _resolve_in(con: Any, store: Store, run_id: str) -> str:
    rows = con.execute("SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id",
                       [run_id]).fetchall()
    if len(rows) != 1:
        kind = "no run" if not rows else "run id prefix ambiguous:"
        raise RunNotFoundError(f"{kind} {run_id!r} in store {store.path}; nothing deleted")
    return str(rows[0][0])


def runs(*, db: DB = None, labels: dict[str, str] | None = None) -> pl.DataFrame:
    """All runs in the store with their metadata, oldest first; ``labels`` keeps runs having all."""
    return open_store(db).runs(labels=labels)
