"""Bottlenecks: what costs the users most, and how much fixing it would buy.

Every item (an endpoint; where the source records them a k6 group or scenario, an HTTP status or an
error kind; then the custom Trends, Rates and checks of :mod:`perfstats.diagnosis.metrics`) is
measured in one unit, **user-seconds lost per hour of traffic** (s/h):

- *SLO excess*: ``sum over requests of max(0, latency - threshold)`` per hour. Exact from raw
  samples (one DuckDB query); from Locust histograms, window summaries or a summary it is an
  estimate (``slo_estimate``, see :func:`perfstats.diagnosis.excess.excess_from_percentiles`).
- *errors*: failed requests per hour, each costing ``error_cost_s`` (default 5 s: the user notices
  the failure, retries and waits again; set it to your product's own figure).
- *regression* (with a baseline): extra waiting per hour ``(mean_cand - mean_base) x requests per
  hour`` and new errors per hour ``(rate_cand - rate_base) x requests per hour``, with the intervals
  of :func:`perfstats.compare`. A change counts in the score only when compare calls it a
  regression (so a *regression* driver means what compare means; an inconclusive change is
  reported and named in the notes, not scored); counted new errors move from the *errors*
  component to the *regression* one, so no failure is counted twice.

``score_s_per_h = slo_s_per_h + errors_s_per_h + latency_regression_s_per_h +
error_regression_s_per_h``. The largest component is the row's ``driver``; with no loss at all the
driver is the item's *time share*, ``count x mean / total waiting time``. Items of different kinds
overlap (a group holds endpoints, a status is part of an endpoint's errors, ``quote_duration``
times the requests of ``POST /api/quote``), so ``rank`` orders the items of one kind and nothing
adds scores across kinds. The model, with its formulas, is in docs/bottlenecks.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from perfstats.config import load_compare_config
from perfstats.diagnosis.excess import KNOTS, excess_from_histogram, excess_from_percentiles
from perfstats.diagnosis.metrics import (
    METRIC_KINDS,
    custom_trend_names,
    metric_items,
    metric_slos,
    slo_keys_for_metrics,
)
from perfstats.diagnosis.patterns import find_patterns
from perfstats.errors import InsufficientDataError
from perfstats.readers.derive import FAILED, REQUEST_METRIC
from perfstats.render.document import Document, Result, Section
from perfstats.render.tables import jsonable, to_records
from perfstats.run import Run, load
from perfstats.slo import (
    LatencySlo,
    SloSpec,
    latency_slo_for,
    latency_slos,
    strictest_latency,
)
from perfstats.store import ALL_ENDPOINTS, DB, PathLike, reading

if TYPE_CHECKING:
    import altair as alt

ERROR_COST_S = 5.0
"""Default cost of one failed request, in user-seconds."""
HTTP_KINDS = ("endpoint", "group", "scenario", "status", "error")
"""Item kinds of the requests."""
KINDS = (*HTTP_KINDS, *METRIC_KINDS)
"""Item kinds, in the order the table lists them (each ranked on its own)."""
COMPONENTS = {
    "slo_s_per_h": "SLO excess",
    "errors_s_per_h": "errors",
    "latency_regression_s_per_h": "latency regression",
    "error_regression_s_per_h": "error regression",
}
"""Score components (columns of the table) and the driver each one names."""


# --------------------------------------------------------------------------- per-item inputs

_PART_SCHEMA = {
    "kind": pl.String, "item": pl.String, "endpoint": pl.String, "count": pl.Int64,
    "failures": pl.Int64, "total_ms": pl.Float64, "excess_ms": pl.Float64,
    "slo_source": pl.String, "protocol": pl.String,
}
_THRESHOLD_SCHEMA = {"endpoint": pl.String, "slo_ms": pl.Float64, "slo_metric": pl.String,
                     "slo": pl.String, "p_slo_ms": pl.Float64}
_ERROR_SCHEMA = {"kind": pl.String, "item": pl.String, "endpoint": pl.String, "errors": pl.Int64,
                 "count": pl.Int64, "base_share": pl.Float64}
_REGRESSION_SCHEMA = {
    "endpoint": pl.String, "slice": pl.String, "base_mean": pl.Float64, "delta_mean_ms": pl.Float64,
    "delta_mean_low": pl.Float64, "delta_mean_high": pl.Float64, "mean_status": pl.String,
    "base_error_rate": pl.Float64, "delta_error_rate": pl.Float64, "delta_error_low": pl.Float64,
    "delta_error_high": pl.Float64, "error_status": pl.String,
}


def run_hours(run: Run) -> float:
    """The run's duration in hours (from its metadata, else the span of its windows).

    Raises:
        InsufficientDataError: the run has neither.
    """
    duration = run.meta.get("duration_s")
    if not duration:
        duration = run.store.query(
            "SELECT epoch(max(start) - min(start)) + max(length_s) FROM windows WHERE run_id = ?",
            [run.run_id]).item()
    if not duration or duration <= 0:
        raise InsufficientDataError(
            f"run {run.run_id} has no duration (no start/end times and no windows), so per-hour "
            "figures cannot be computed")
    return float(duration) / 3600.0


def _summary(run: Run) -> pl.DataFrame:
    return run.summary().filter(pl.col("endpoint") != ALL_ENDPOINTS).select(
        "endpoint", "protocol", pl.col("count").cast(pl.Int64),
        pl.col("failures").cast(pl.Int64).fill_null(0), *(pl.col(c).cast(pl.Float64) for c in
                                                          ["mean", *KNOTS]))


def _thresholds(summary: pl.DataFrame, slos: Sequence[LatencySlo]) -> pl.DataFrame:
    """Per endpoint: its SLO threshold, metric, text and the current value of that percentile."""
    rows = []
    for row in summary.iter_rows(named=True):
        s = latency_slo_for(row["endpoint"], slos)
        if s is not None:
            rows.append((row["endpoint"], s.threshold_ms, s.metric, str(s), row[s.metric]))
    return pl.DataFrame(rows, schema=_THRESHOLD_SCHEMA, orient="row")


def _sample_parts(run: Run, thresholds: pl.DataFrame) -> pl.DataFrame:
    """Endpoint, (group, endpoint) and (scenario, endpoint) figures in one query over samples."""
    frame = run.store.query(
        f"""
        WITH slo AS (SELECT unnest(?::VARCHAR[]) AS endpoint, unnest(?::DOUBLE[]) AS threshold),
        req AS (
            SELECT s.endpoint, nullif(s.grp, '') AS grp, nullif(s.scenario, '') AS scenario,
                   s.value, {FAILED} AS failed, slo.threshold
            FROM samples s LEFT JOIN slo USING (endpoint)
            WHERE s.run_id = ? AND s.metric = '{REQUEST_METRIC}' AND s.endpoint IS NOT NULL
        )
        SELECT CASE WHEN grouping(grp) = 0 THEN 'group'
                    WHEN grouping(scenario) = 0 THEN 'scenario' ELSE 'endpoint' END AS kind,
               CASE WHEN grouping(grp) = 0 THEN grp
                    WHEN grouping(scenario) = 0 THEN scenario ELSE endpoint END AS item,
               endpoint, count(*) AS count, count(*) FILTER (WHERE failed) AS failures,
               sum(value) AS total_ms,
               sum(CASE WHEN threshold IS NOT NULL THEN greatest(value - threshold, 0) END)
                   AS excess_ms,
               CASE WHEN any_value(threshold) IS NOT NULL THEN 'samples' END AS slo_source
        FROM req GROUP BY GROUPING SETS ((endpoint), (grp, endpoint), (scenario, endpoint))
        """,
        [thresholds["endpoint"].to_list(), thresholds["slo_ms"].to_list(), run.run_id],
    )
    frame = frame.filter(pl.col("item").is_not_null())
    total = frame.filter(pl.col("kind") == "endpoint")["count"].sum()
    # A group or scenario that is the whole run (k6's one default scenario) says nothing new.
    whole_run = (pl.col("kind") != "endpoint") & (pl.col("item").n_unique().over("kind") == 1) \
        & (pl.col("count").sum().over("kind") == total)
    return _conform(frame.filter(~whole_run), _PART_SCHEMA)


def _estimated_excess(run: Run, summary: pl.DataFrame, thresholds: pl.DataFrame) -> pl.DataFrame:
    """Per-endpoint SLO excess (ms) without raw samples: histogram, else windows, else summary.

    Each source gives the mean excess per request, scaled by the endpoint's request count.
    """
    out_schema = {"endpoint": pl.String, "excess_ms": pl.Float64, "slo_source": pl.String}
    if thresholds.is_empty():
        return pl.DataFrame(schema=out_schema)
    per_request = []
    hist = run.table("histograms").filter(pl.col("start").is_null()).join(
        thresholds, on="endpoint")
    if not hist.is_empty():
        hist = hist.with_columns(excess=pl.Series(excess_from_histogram(
            hist["bucket_ms"].to_numpy(), hist["count"].to_numpy(), hist["slo_ms"].to_numpy())))
        per_request.append(hist.group_by("endpoint").agg(
            per_request=pl.col("excess").sum() / pl.col("count").sum(),
            slo_source=pl.lit("histogram")))
    windows = run.windows().filter(
        pl.col("percentiles").is_in(["exact", "histogram", "tool-window"]) & (pl.col("count") > 0)
    ).join(thresholds, on="endpoint")
    for frame, source in ((windows, "windows"), (summary.join(thresholds, on="endpoint"),
                                                 "summary")):
        if frame.is_empty():
            continue
        mean_excess = excess_from_percentiles(
            frame.select(KNOTS).cast(pl.Float64).to_numpy(), frame["slo_ms"].to_numpy())
        per_request.append(frame.with_columns(excess=pl.Series(mean_excess) * pl.col("count"))
                           .filter(pl.col("excess").is_not_nan()).group_by("endpoint").agg(
            per_request=pl.col("excess").sum() / pl.col("count").sum(),
            slo_source=pl.lit(source)))
    if not per_request:
        return pl.DataFrame(schema=out_schema)
    # The first source that covers an endpoint wins (histogram, then windows, then summary).
    best = pl.concat(per_request).unique("endpoint", keep="first", maintain_order=True)
    return summary.join(best, on="endpoint").select(
        "endpoint", excess_ms=pl.col("per_request") * pl.col("count"), slo_source="slo_source")


def item_parts(run: Run, slos: Sequence[LatencySlo], *, summary: pl.DataFrame | None = None
               ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The per-item inputs of :func:`impact_table` for ``run``, and its per-endpoint SLO frame.

    The first frame has one row per (kind, item, endpoint): count, failures, total_ms (sum of
    latencies), excess_ms (sum of time beyond the endpoint's SLO) and slo_source. ``summary``:
    the run's per-endpoint summary if already read.
    """
    summary = _summary(run) if summary is None else summary
    thresholds = _thresholds(summary, slos)
    if run.grain == "samples":
        return _sample_parts(run, thresholds), thresholds
    excess = _estimated_excess(run, summary, thresholds)
    parts = summary.join(excess, on="endpoint", how="left").select(
        kind=pl.lit("endpoint"), item="endpoint", endpoint="endpoint", count="count",
        failures="failures", total_ms=pl.col("mean") * pl.col("count"),
        excess_ms="excess_ms", slo_source="slo_source", protocol="protocol")
    return _conform(parts, _PART_SCHEMA), thresholds


def regression_inputs(checks: pl.DataFrame | None) -> pl.DataFrame:
    """Per HTTP endpoint (and per endpoint in a scenario slice, ``slice`` ``scenario:NAME``;
    null for the whole endpoint): baseline mean and error rate, the changes and their intervals
    from compare's ``checks`` (None: no baseline).

    compare's latency intervals are in per cent of the baseline value and its error-rate ones in
    percentage points; both become absolute here (ms, and a 0-1 rate).
    """
    if checks is None:
        return pl.DataFrame(schema=_REGRESSION_SCHEMA)
    checks = checks.filter((pl.col("kind") == "http") & (pl.col("endpoint") != ALL_ENDPOINTS)
                           ).with_columns(slice=pl.col("slice").replace("", None))
    keys = ["endpoint", "slice"]
    mean = checks.filter(pl.col("metric") == "mean").select(
        *keys, base_mean=pl.col("baseline"),
        delta_mean_ms=pl.col("candidate") - pl.col("baseline"),
        delta_mean_low=pl.col("baseline") * pl.col("ci_low") / 100.0,
        delta_mean_high=pl.col("baseline") * pl.col("ci_high") / 100.0,
        mean_status=pl.col("status"))
    errors = checks.filter(pl.col("metric") == "error_rate").select(
        *keys, base_error_rate=pl.col("baseline"),
        delta_error_rate=pl.col("candidate") - pl.col("baseline"),
        delta_error_low=pl.col("ci_low") / 100.0, delta_error_high=pl.col("ci_high") / 100.0,
        error_status=pl.col("status"))
    return _conform(mean.join(errors, on=keys, how="full", coalesce=True, nulls_equal=True),
                    _REGRESSION_SCHEMA)


def error_parts(run: Run, baseline: Run | None, *, summary: pl.DataFrame | None = None
                ) -> pl.DataFrame:
    """Status-code and error-kind items from the errors table.

    Columns: kind (``status`` or ``error``), item, endpoint, errors, count (the endpoint's
    requests) and base_share (the baseline's errors of that item per baseline request of the
    endpoint; null without a baseline). ``summary``: the run's per-endpoint summary if already
    read.
    """
    schema = _ERROR_SCHEMA

    def label(errors: pl.DataFrame, summary: pl.DataFrame) -> pl.DataFrame:
        status = pl.col("kind") == "http_status"
        what = pl.when(status).then(pl.lit("HTTP ") + pl.col("error")).when(
            pl.col("kind") == "error_code").then(pl.lit("k6 error code ") + pl.col("error")
                                                 ).otherwise(pl.col("error"))
        endpoint = pl.col("endpoint").fill_null("(no endpoint)")
        return errors.select(
            kind=pl.when(status).then(pl.lit("status")).otherwise(pl.lit("error")),
            item=endpoint + pl.lit(": ") + what.fill_null("(unknown)"), endpoint=endpoint,
            errors=pl.col("count").cast(pl.Int64),
        ).group_by("kind", "item", "endpoint").agg(pl.col("errors").sum()).join(
            summary.select("endpoint", "count"), on="endpoint", how="left")

    def table(of: Run) -> pl.DataFrame:
        # k6 error codes 1400-1599 restate an HTTP 4xx/5xx status, already an item of its own.
        restated = (pl.col("kind") == "error_code") & pl.col("error").cast(pl.Int64, strict=False
                                                                           ).is_between(1400, 1599)
        return of.table("errors").filter(
            (pl.col("endpoint").fill_null("") != ALL_ENDPOINTS) & ~restated.fill_null(False))

    current = label(table(run), _summary(run) if summary is None else summary)
    if current.is_empty() or baseline is None:
        return _conform(current, schema)
    base = label(table(baseline), _summary(baseline))
    shares = base.select("item", base_share=pl.col("errors") / pl.col("count"))
    return _conform(current.join(shares, on="item", how="left").with_columns(
        pl.col("base_share").fill_null(0.0)), schema)


# ------------------------------------------------------------------------------ the model


def _conform(frame: pl.DataFrame | None, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """``frame`` with exactly the columns of ``schema`` (missing ones null), cast to it."""
    if frame is None:
        return pl.DataFrame(schema=schema)
    return frame.select(
        [pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
         for c, t in schema.items()])


def _counted(status: str) -> pl.Expr:
    """Whether a change counts in the score: when compare calls it a regression (significant
    and beyond its tolerance). An ``inconclusive`` change, even with an interval above zero, is
    reported (``extra_wait_s_per_h``, ``new_errors_per_h``) but not scored, so that the
    *regression* drivers say what compare says."""
    return (pl.col(status) == "regression").fill_null(False)


def _sum_if_any(name: str) -> pl.Expr:
    return pl.when(pl.col(name).is_not_null().any()).then(pl.col(name).sum())


def _sum_if_all(name: str) -> pl.Expr:
    return pl.when(pl.col(name).is_not_null().all()).then(pl.col(name).sum())


def impact_table(
    parts: pl.DataFrame,
    *,
    hours: float,
    thresholds: pl.DataFrame | None = None,
    regression: pl.DataFrame | None = None,
    errors: pl.DataFrame | None = None,
    error_cost_s: float = ERROR_COST_S,
    metrics: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The impact model: per-item figures in, the ranked table out (pure polars).

    Args:
        parts: one row per (kind, item, endpoint) with count, failures, total_ms, excess_ms and
            slo_source, as :func:`item_parts` gives; the parts of a group or scenario are summed.
        hours: the run's duration in hours (the denominator of every per-hour figure).
        thresholds: per endpoint slo_ms, slo_metric, slo and p_slo_ms (None: no SLO).
        regression: per endpoint changes, as :func:`regression_inputs` gives (None: no baseline).
        errors: status / error-kind items, as :func:`error_parts` gives (None: none).
        error_cost_s: user-seconds one failed request costs.
        metrics: custom-metric items, as :func:`perfstats.diagnosis.metrics.metric_items`
            gives (None: none); ranked in kinds of their own.

    Returns:
        The table of :class:`Bottlenecks` (columns :data:`TABLE_COLUMNS`).

    Example:
        >>> parts = pl.DataFrame({"kind": ["endpoint"], "item": ["GET /a"],
        ...     "endpoint": ["GET /a"], "count": [3600], "failures": [36],
        ...     "total_ms": [360_000.0], "excess_ms": [None], "slo_source": [None]})
        >>> impact_table(parts, hours=1.0)["score_s_per_h"].item()
        180.0
    """
    if not hours > 0:
        raise ValueError(f"hours must be positive, got {hours}")
    if error_cost_s < 0:
        raise ValueError(f"error_cost_s must be >= 0, got {error_cost_s}")
    per_h = 1.0 / hours
    thresholds = _conform(thresholds, _THRESHOLD_SCHEMA)
    regression = _conform(regression, _REGRESSION_SCHEMA)
    whole = regression.filter(pl.col("slice").is_null()).drop("slice")
    # An endpoint inside a group or scenario takes compare's check of that slice where there
    # is one (an endpoint in one scenario only has none: its whole check is the slice's).
    sliced = regression.filter(pl.col("slice").is_not_null())
    mean_cols = ["base_mean", "delta_mean_ms", "delta_mean_low", "delta_mean_high",
                 "mean_status"]
    error_cols = ["base_error_rate", "delta_error_rate", "delta_error_low", "delta_error_high",
                  "error_status"]
    rows = _conform(parts, _PART_SCHEMA).with_columns(
        slice=pl.when(pl.col("kind").is_in(["group", "scenario"])).then(
            pl.col("kind") + pl.lit(":") + pl.col("item"))).join(
        thresholds, on="endpoint", how="left").join(whole, on="endpoint", how="left").join(
        sliced, on=["endpoint", "slice"], how="left", suffix="_s").with_columns(
        *(pl.when(pl.col("mean_status_s").is_not_null()).then(pl.col(f"{c}_s")).otherwise(
            pl.col(c)).alias(c) for c in mean_cols),
        *(pl.when(pl.col("error_status_s").is_not_null()).then(pl.col(f"{c}_s")).otherwise(
            pl.col(c)).alias(c) for c in error_cols),
    ).with_columns(
        rate=pl.col("count") * per_h,
        latency_counted=_counted("mean_status"),
        error_counted=_counted("error_status"),
    ).with_columns(
        extra=pl.col("delta_mean_ms") * pl.col("rate") / 1000.0,
        extra_low=pl.col("delta_mean_low") * pl.col("rate") / 1000.0,
        extra_high=pl.col("delta_mean_high") * pl.col("rate") / 1000.0,
        new=pl.col("delta_error_rate") * pl.col("rate"),
        new_low=pl.col("delta_error_low") * pl.col("rate"),
        new_high=pl.col("delta_error_high") * pl.col("rate"),
    )
    single = pl.col("endpoint").n_unique() == 1
    items = rows.group_by("kind", "item", maintain_order=True).agg(
        endpoint=pl.when(single).then(pl.col("endpoint").first()),
        metric_kind=pl.when(pl.col("kind").first() == "endpoint").then(
            pl.col("protocol").fill_null("http").first()).otherwise(pl.lit("http")),
        slice=pl.col("slice").first(),
        count=pl.col("count").sum(), failures=pl.col("failures").sum(),
        total_ms=pl.col("total_ms").sum(), excess_ms=_sum_if_any("excess_ms"),
        slo=pl.col("slo").drop_nulls().unique().sort().str.join(", "),
        slo_ms=pl.when(single).then(pl.col("slo_ms").first()),
        slo_metric=pl.when(single).then(pl.col("slo_metric").first()),
        p_slo_ms=pl.when(single).then(pl.col("p_slo_ms").first()),
        slo_source=pl.col("slo_source").drop_nulls().first(),
        base_mean=pl.when(single).then(pl.col("base_mean").first()),
        base_error_rate=pl.when(single).then(pl.col("base_error_rate").first()),
        extra=_sum_if_any("extra"), extra_low=_sum_if_all("extra_low"),
        extra_high=_sum_if_all("extra_high"),
        counted_wait=(pl.col("extra").fill_null(0.0) * pl.col("latency_counted")).sum(),
        new=_sum_if_any("new"), new_low=_sum_if_all("new_low"), new_high=_sum_if_all("new_high"),
        counted_new=(pl.col("new").fill_null(0.0) * pl.col("error_counted")).sum(),
        mean_status=pl.when(single).then(pl.col("mean_status").first()),
        error_status=pl.when(single).then(pl.col("error_status").first()),
    )
    total_ms = items.filter(pl.col("kind") == "endpoint")["total_ms"].sum()
    items = items.with_columns(
        time_share=pl.col("total_ms") / total_ms if total_ms else pl.lit(None, pl.Float64))
    if errors is not None and not errors.is_empty():
        items = pl.concat([items, _error_items(_conform(errors, _ERROR_SCHEMA), whole, per_h)],
                          how="diagonal_relaxed")
    if metrics is not None and not metrics.is_empty():
        items = pl.concat([items, metrics], how="diagonal_relaxed")
    return _score(items, per_h=per_h, error_cost_s=error_cost_s)


def _error_items(errors: pl.DataFrame, regression: pl.DataFrame, per_h: float) -> pl.DataFrame:
    """Status / error-kind rows: the endpoint's traffic, this item's failures and new failures.

    New failures of an item are its failures minus what the baseline's share of that item per
    request would give at the current traffic; they count as the endpoint's error change does.
    """
    gate = regression.select("endpoint", "error_status")
    return errors.join(gate, on="endpoint", how="left").select(
        "kind", "item", "endpoint", "count", failures="errors", metric_kind=pl.lit("http"),
        base_error_rate="base_share",
        new=(pl.col("errors") - pl.col("base_share") * pl.col("count")) * per_h,
        counted_new=pl.when(_counted("error_status")).then(
            (pl.col("errors") - pl.col("base_share") * pl.col("count")) * per_h).otherwise(0.0),
        counted_wait=pl.lit(0.0), error_status="error_status",
    )


def _score(items: pl.DataFrame, *, per_h: float, error_cost_s: float) -> pl.DataFrame:
    errors_per_h = pl.col("failures") * per_h
    counted_new = pl.min_horizontal(pl.max_horizontal(pl.col("counted_new").fill_null(0.0), 0.0),
                                    errors_per_h)
    scored = items.with_columns(
        requests_per_h=pl.col("count") * per_h,
        mean_ms=pl.when(pl.col("count") > 0).then(pl.col("total_ms") / pl.col("count")),
        error_rate=pl.when(pl.col("count") > 0).then(pl.col("failures") / pl.col("count")),
        errors_per_h=errors_per_h,
        slo_excess_s_per_h=pl.col("excess_ms") / 1000.0 * per_h,
        slo_estimate=pl.when(pl.col("excess_ms").is_not_null()).then(
            pl.col("slo_source") != "samples"),
        extra_wait_s_per_h=pl.col("extra"), extra_wait_ci_low=pl.col("extra_low"),
        extra_wait_ci_high=pl.col("extra_high"), new_errors_per_h=pl.col("new"),
        new_errors_ci_low=pl.col("new_low"), new_errors_ci_high=pl.col("new_high"),
        slo_s_per_h=(pl.col("excess_ms") / 1000.0 * per_h).fill_null(0.0),
        errors_s_per_h=(errors_per_h - counted_new) * error_cost_s,
        latency_regression_s_per_h=pl.max_horizontal(pl.col("counted_wait").fill_null(0.0), 0.0),
        error_regression_s_per_h=counted_new * error_cost_s,
    ).with_columns(
        regression_s_per_h=pl.col("latency_regression_s_per_h")
        + pl.col("error_regression_s_per_h"),
        score_s_per_h=pl.sum_horizontal(*COMPONENTS),
        driver=_driver(),
    )
    order = {k: i for i, k in enumerate(KINDS)}
    ranked = scored.sort(
        [pl.col("kind").replace_strict(order, default=len(order)), "score_s_per_h",
         "time_share", "total_ms", "item"],
        descending=[False, True, True, True, False], nulls_last=True,
    ).with_columns(rank=pl.int_range(1, pl.len() + 1).over("kind").cast(pl.Int32))
    gain = [_gain(row, error_cost_s) for row in ranked.iter_rows(named=True)]
    return ranked.with_columns(
        gain_s_per_1k=pl.Series([g[0] for g in gain], dtype=pl.Float64),
        gain=pl.Series([g[1] for g in gain], dtype=pl.String),
    ).select([pl.col(c) if c in ranked.columns or c.startswith("gain") else
              pl.lit(None).alias(c) for c in TABLE_COLUMNS])


def _driver() -> pl.Expr:
    best = pl.max_horizontal(*COMPONENTS)
    nothing = pl.when(pl.col("kind").is_in(METRIC_KINDS)).then(pl.lit("none")).otherwise(
        pl.lit("time share"))
    expr = pl.when(best <= 0).then(nothing)
    for column, label in COMPONENTS.items():
        expr = expr.when(pl.col(column) == best).then(pl.lit(label))
    return expr.otherwise(pl.lit("time share"))


TABLE_COLUMNS = [
    "rank", "item", "kind", "metric_kind", "slice", "restates", "endpoint", "count",
    "failures", "requests_per_h", "mean_ms",
    "time_share", "slo", "slo_ms", "p_slo_ms", "slo_excess_s_per_h", "slo_estimate", "slo_source",
    "error_rate", "errors_per_h", "base_mean", "extra_wait_s_per_h", "extra_wait_ci_low",
    "extra_wait_ci_high", "mean_status", "base_error_rate", "new_errors_per_h",
    "new_errors_ci_low", "new_errors_ci_high", "error_status", "slo_s_per_h", "errors_s_per_h",
    "latency_regression_s_per_h", "error_regression_s_per_h", "regression_s_per_h",
    "score_s_per_h", "driver", "gain_s_per_1k", "gain",
]
"""Columns of :attr:`Bottlenecks.table`, in order."""


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "?"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _pct(value: float) -> str:
    return f"{100 * value:.2g}%" if abs(value) < 0.1 else f"{100 * value:.0f}%"


def _per_1k(row: dict[str, Any], per_hour: float | None) -> float | None:
    if per_hour is None or not row["requests_per_h"]:
        return None
    return per_hour / row["requests_per_h"] * 1000.0


def _gain(row: dict[str, Any], cost: float) -> tuple[float | None, str]:
    """Seconds saved per 1,000 of the item's requests by fixing its driver, and the sentence."""
    item, driver = row["item"], row["driver"]
    whole = row["kind"] not in ("group", "scenario", "status", "error")
    http = row["kind"] in HTTP_KINDS
    # A custom Trend's values are timings; a Rate's or check's, evaluations that can fail.
    unit = "requests" if http else "values" if row["metric_kind"] == "trend" else "evaluations"
    failed = "failed requests" if http else "failures"
    if driver == "none":
        return None, f"{item} loses no time to an SLO or a regression"
    if driver == "latency regression":
        gain = _per_1k(row, row["extra_wait_s_per_h"])
        text = f"undoing the slowdown of {item} since the baseline"
        if whole and row["base_mean"] is not None:
            text += f" (mean {_num(row['base_mean'])} -> {_num(row['mean_ms'])} ms)"
        text += f" saves about {_num(gain)} s of waiting per 1,000 {unit}"
        if row["extra_wait_ci_low"] is not None:
            text += (f" (interval {_num(_per_1k(row, row['extra_wait_ci_low']))} to "
                     f"{_num(_per_1k(row, row['extra_wait_ci_high']))} s)")
        return gain, text
    if driver == "error regression":
        avoided = _per_1k(row, row["new_errors_per_h"]) or 0.0
        text = f"bringing the {'error' if http else 'failure'} rate of {item} back"
        if row["base_error_rate"] is not None:
            text += f" to {_pct(row['base_error_rate'])}"
            if whole:
                text += f" (now {_pct(row['error_rate'])})"
        return avoided * cost, (f"{text} avoids about {_num(avoided)} {failed} per 1,000 "
                                f"{unit} (about {_num(avoided * cost)} s at {cost:g} s each)")
    if driver == "SLO excess":
        slo_ms, metric, now = row["slo_ms"], row["slo_metric"], row["p_slo_ms"]
        if whole and metric != "max" and now is not None and now > slo_ms:
            # A uniform speed-up (every latency x slo/now) brings that percentile to the SLO.
            gain = (1.0 - slo_ms / now) * row["mean_ms"]
            return gain, (f"bringing {metric} of {item} to {slo_ms:g} ms (now {_num(now)} ms) "
                          f"saves about {_num(gain)} s of waiting per 1,000 {unit}")
        gain = _per_1k(row, row["slo_excess_s_per_h"])
        limit = f" under {slo_ms:g} ms" if slo_ms is not None else " within its SLO"
        each = "request" if http else "value"
        return gain, (f"keeping every {each} of {item}{limit} saves about {_num(gain)} s of "
                      f"waiting per 1,000 {unit} (its time beyond the SLO)")
    if driver == "errors":
        avoided = _per_1k(row, row["errors_per_h"])
        if avoided is None:  # a failure with no request of its own (a Locust task exception)
            per_h = row["errors_per_h"] or 0.0
            return None, (f"fixing the failures of {item} avoids about {_num(per_h)} failures "
                          f"per hour (about {_num(per_h * cost)} s at {cost:g} s each)")
        return avoided * cost, (f"fixing the failures of {item} avoids about {_num(avoided)} "
                                f"{failed} per 1,000 {unit} (about {_num(avoided * cost)} "
                                f"s at {cost:g} s each)")
    share, mean = row["time_share"], row["mean_ms"]
    if share is None or mean is None:
        return None, f"{item} loses no measurable time"
    return mean / 2.0, (f"{item} holds {_pct(share)} of all waiting time; making it 2x faster "
                        f"saves about {_num(mean / 2.0)} s per 1,000 of its requests "
                        f"({_pct(share / 2.0)} of all waiting)")


# ------------------------------------------------------------------------------ the result

_NEXT_STEPS = {
    "none": "none needed: {item} loses no time to an SLO or a regression",
    "latency regression": "find the change that made {item} slower since the baseline (diff the "
                          "deploys and configs between the two runs), then profile the endpoint",
    "error regression": "read the new failures of {item} since the baseline in the server logs "
                        "({errors}) and find the change that introduced them",
    "SLO excess": "trace the requests of {item} above {slo_ms} ms and profile its slow path "
                  "(queries, downstream calls, locks)",
    "errors": "fix the failures of {item} ({errors}): server logs for those statuses and errors",
    "time share": "{item} is where the waiting time goes ({share} of it): the first place to "
                  "look for a speed-up (caching, query plans, payload size)",
    "small share": "none needed: {item} loses no time to an SLO, a regression or errors, and "
                   "holds only {share} of the waiting time",
}
_SMALL_SHARE = 0.10
"""Below this time share an item without losses needs no action in the backlog."""
_PATTERN_STEPS = {
    "rising latency": "watch memory, connection pools and queue depths over a longer run: "
                      "latency grows at a steady load (leak-like)",
    "spikes": "line the spike times up with GC pauses, cron jobs and deploys",
    "rising errors": "check what runs out during the run (connections, file handles, quotas)",
    "capacity limit": "scale out or raise the worker pool; `perfstats capacity` sizes it",
}


@dataclass(frozen=True)
class Bottlenecks(Result):
    """Items of a run ranked by the user-seconds they lose per hour of traffic.

    Attributes:
        table: one row per item (:data:`TABLE_COLUMNS`), ranked within each kind.
        patterns: over-time patterns per endpoint (endpoint, pattern, start, end, p_value, change,
            evidence), see :func:`perfstats.diagnosis.patterns.find_patterns`.
        run_id: the analysed run.
        baseline_id: the baseline run, or None.
        slos: the latency objectives used.
        error_cost_s: user-seconds one failed request costs.
        hours: the run's duration in hours.
        warnings: what was estimated or left out, in words (``warnings`` in :meth:`to_dict`).
    """

    table: pl.DataFrame
    patterns: pl.DataFrame
    run_id: str
    baseline_id: str | None
    slos: tuple[LatencySlo, ...]
    error_cost_s: float
    hours: float
    warnings: tuple[str, ...] = ()

    def top(self, n: int) -> pl.DataFrame:
        """The first ``n`` items of each kind."""
        return self.table.filter(pl.col("rank") <= n)

    def backlog(self, top: int | None = None) -> list[dict[str, Any]]:
        """An optimisation backlog: one dict per item, most costly first within each kind.

        Each has rank, kind, item, score_s_per_h, the impact figures, drivers (every non-zero
        score component, largest first), patterns (of its endpoint), gain and next_step.
        """
        frame = self.table if top is None else self.top(top)
        by_endpoint: dict[str, list[str]] = {}
        for row in self.patterns.iter_rows(named=True):
            by_endpoint.setdefault(row["endpoint"], []).append(row["pattern"])
        errors = self._error_names()
        out = []
        for row in frame.iter_rows(named=True):
            drivers = sorted(
                ({"factor": label, "s_per_h": row[column]} for column, label in COMPONENTS.items()
                 if row[column] and row[column] > 0), key=lambda d: -d["s_per_h"])
            patterns = by_endpoint.get(row["item"], []) if row["kind"] == "endpoint" else []
            driver = row["driver"]
            if driver == "time share" and (row["time_share"] or 0.0) < _SMALL_SHARE:
                driver = "small share"
            step = _NEXT_STEPS[driver].format(
                item=row["item"], slo_ms=f"{row['slo_ms']:g}" if row["slo_ms"] else "the SLO",
                errors=errors.get(row["item"]) or f"{row['failures']} failed requests",
                share=_pct(row["time_share"]) if row["time_share"] is not None else "a share")
            steps = [step, *(_PATTERN_STEPS[p] for p in patterns)]
            if row["restates"]:
                steps.insert(0, f"the same requests as {row['restates']}: its row is this cost "
                                "again, not more of it")
            out.append({
                "rank": row["rank"], "kind": row["kind"], "item": row["item"],
                "metric_kind": row["metric_kind"], "slice": row["slice"],
                "restates": row["restates"],
                "score_s_per_h": row["score_s_per_h"],
                "impact": {k: row[k] for k in (
                    "requests_per_h", "mean_ms", "time_share", "slo", "slo_excess_s_per_h",
                    "slo_estimate", "errors_per_h", "extra_wait_s_per_h", "extra_wait_ci_low",
                    "extra_wait_ci_high", "new_errors_per_h", "new_errors_ci_low",
                    "new_errors_ci_high")},
                "driver": row["driver"], "drivers": drivers, "patterns": patterns,
                "gain": row["gain"], "next_step": "; then ".join(steps),
            })
        return [{k: jsonable(v) for k, v in item.items()} for item in out]

    def _error_names(self) -> dict[str, str]:
        errs = self.table.filter(pl.col("kind").is_in(["status", "error"]))
        names: dict[str, list[str]] = {}
        for row in errs.iter_rows(named=True):
            what = row["item"].split(": ", 1)[-1]
            names.setdefault(row["endpoint"], []).append(f"{what} x {row['failures']}")
        return {k: ", ".join(v) for k, v in names.items()}

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """Everything as plain JSON-able values (``top``: the first items of each kind only)."""
        return {
            "run_id": self.run_id, "baseline_id": self.baseline_id,
            "slos": [{"endpoint": s.endpoint, "metric": s.metric, "threshold_ms": s.threshold_ms}
                     for s in self.slos],
            "error_cost_s": self.error_cost_s, "hours": self.hours,
            "score": "user-seconds lost per hour of traffic: SLO excess + errors x error_cost_s "
                     "+ latency regression + new errors x error_cost_s; ranked within each "
                     "kind, never added across kinds",
            "items": to_records(self.table if top is None else self.top(top)),
            "patterns": to_records(self.patterns),
            "warnings": list(self.warnings),
        }

    def display_frame(self, top: int | None = 10) -> pl.DataFrame:
        """The ranked items in short: rank, kind, item, score, driver, main figures and gain."""
        frame = self.table if top is None else self.top(top)
        item = pl.when(pl.col("restates").is_not_null()).then(
            pl.col("item") + pl.lit(" (restates ") + pl.col("restates") + pl.lit(")")).otherwise(
            pl.col("item"))
        return frame.select(
            "rank", "kind", item.alias("item"),
            pl.col("score_s_per_h").round(1).alias("score s/h"),
            "driver", pl.col("time_share").round(3).alias("time share"),
            pl.col("slo_excess_s_per_h").round(1).alias("SLO excess s/h"),
            pl.col("errors_per_h").round(1).alias("errors/h"),
            pl.col("extra_wait_s_per_h").round(1).alias("extra wait s/h"),
            pl.col("new_errors_per_h").round(1).alias("new errors/h"), "gain")

    def headline(self) -> str:
        """One line: the endpoint that costs most, its score and driver."""
        first = self.table.filter((pl.col("kind") == "endpoint") & (pl.col("rank") == 1))
        if first.is_empty():
            return f"Bottlenecks of run {self.run_id}: no endpoint loses time"
        row = first.row(0, named=True)
        return (f"Bottlenecks of run {self.run_id}: {row['item']} costs most, "
                f"{row['score_s_per_h']:,.1f} user-s per hour ({row['driver']})")

    def document(self, *, top: int | None = 10) -> Document:
        """The score's definition, the ranked items (``top`` of each kind) and the patterns."""
        lead = (f"Score: user-seconds lost per hour of traffic ({self.hours * 3600:,.0f} s "
                f"analysed; a failed request costs {self.error_cost_s:g} s"
                + (f"; baseline {self.baseline_id}" if self.baseline_id else "")
                + (f"; SLO {', '.join(_slo_text(s) for s in self.slos)}" if self.slos else "")
                + ").")
        sections = [Section(table=self.display_frame(top))]
        if not self.patterns.is_empty():
            sections.append(Section("Patterns over time", table=self.patterns.select(
                "endpoint", "pattern", "evidence")))
        return Document(title=f"Bottlenecks of run {self.run_id}", lead=[lead],
                        warnings=self.warnings, sections=sections)

    def chart(self, *, top: int = 10, kind: str = "endpoint") -> alt.LayerChart:
        """Bars of the score of the ``top`` items of ``kind``, largest first."""
        from perfstats.render.charts import bottleneck_bars

        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        rows = self.table.filter(pl.col("kind") == kind)
        return bottleneck_bars(rows, value="score_s_per_h", label="item", top=top,
                               x_title="user-seconds lost per hour of traffic",
                               title=f"Bottlenecks of run {self.run_id} by estimated impact",
                               subtitle=self._nothing_lost(rows))

    def _nothing_lost(self, rows: pl.DataFrame) -> str | None:
        """Why the bars are empty, when no item of the chart loses anything."""
        if (rows["score_s_per_h"].fill_null(0) > 0).any():
            return None
        causes = ["no failed request"]
        if not self.slos:
            causes.append("no SLO given (--slo or [compare.slo])")
        if self.baseline_id is None:
            causes.append("no baseline to find regressions against")
        return "every item scores 0 s/h: " + "; ".join(causes)


def _slo_text(s: LatencySlo) -> str:
    return str(s) if s.endpoint == "*" else f"{s.endpoint}: {s}"


def _warnings(run: Run, baseline: Run | None, slos: Sequence[LatencySlo], table: pl.DataFrame,
              slo_source: str | None, metric_notes: Sequence[str] = ()) -> tuple[str, ...]:
    notes = []
    if not slos:
        notes.append("no SLO given: the endpoints' SLO excess is not computed (pass "
                     "slo='p95<500' or --slo, or set [compare.slo] in perfstats.toml)")
    elif slo_source:
        notes.append(f"SLOs from {slo_source}")
    sources = set(table["slo_source"].drop_nulls().to_list())
    estimated = {"histogram": "the tool's latency histogram",
                 "windows": "per-window percentile summaries (piecewise-linear)",
                 "summary": "the whole-run percentile summary (piecewise-linear)"}
    for source in sorted(sources - {"samples"}):
        notes.append(f"SLO excess estimated from {estimated[source]}")
    if baseline is None:
        notes.append("no baseline: the regression factor is not computed")
    elif baseline.tool != run.tool:
        notes.append(f"baseline is a {baseline.tool} run and this a {run.tool} run: request "
                     "mixes and clients differ")
    undecided = _undecided_changes(table)
    if undecided:
        notes.append("changes above zero that compare calls inconclusive, not scored as "
                     f"regressions: {', '.join(undecided)}")
    notes.extend(metric_notes)
    restating = table.filter(pl.col("restates").is_not_null())
    if not restating.is_empty():
        pairs = ", ".join(f"{r['item']} = {r['restates']}" for r in restating.select(
            "item", "restates").unique(maintain_order=True).iter_rows(named=True))
        notes.append("custom metrics are ranked in their own kinds and never added to the "
                     f"endpoints' figures; these time or count the same requests: {pairs}")
    return tuple(notes)


def _undecided_changes(table: pl.DataFrame) -> list[str]:
    """Endpoints whose mean or error rate rose (interval above zero) without compare calling it
    a regression."""
    rows = table.filter(pl.col("kind").is_in(["endpoint", *METRIC_KINDS]))
    out = []
    for row in rows.iter_rows(named=True):
        if row["mean_status"] == "inconclusive" and (row["extra_wait_ci_low"] or 0) > 0:
            out.append(f"{row['item']} mean {_num(row['base_mean'])} -> "
                       f"{_num(row['mean_ms'])} ms")
        if row["error_status"] == "inconclusive" and (row["new_errors_ci_low"] or 0) > 0:
            what = "error rate" if row["kind"] == "endpoint" else "failure rate"
            out.append(f"{row['item']} {what} {_pct(row['base_error_rate'] or 0.0)} -> "
                       f"{_pct(row['error_rate'] or 0.0)}")
    return out


def bottlenecks(
    run: Run | PathLike,
    *,
    baseline: Run | PathLike | None = None,
    slo: SloSpec | Mapping[str, SloSpec] | Sequence[LatencySlo] | None = None,
    error_cost_s: float = ERROR_COST_S,
    db: DB = None,
) -> Bottlenecks:
    """Rank a run's endpoints (groups, scenarios, statuses, error kinds) by the time they cost.

    Args:
        run: a :class:`Run`, a run id in ``db``, or a result path.
        baseline: a run to measure regressions against (its changes come from
            :func:`perfstats.compare`).
        slo: ``"p95<500"``, a number of ms, ``{endpoint glob: spec}`` or LatencySlos; None: the
            latency SLOs of the project's compare configuration (``[compare.slo]`` in
            perfstats.toml or pyproject.toml), if any.
        error_cost_s: user-seconds one failed request costs (default 5).
        db: the store holding the runs, or where paths are ingested (default: in memory).

    Returns:
        :class:`Bottlenecks`; ``.table`` is ranked within each kind by ``score_s_per_h``.

    Raises:
        InsufficientDataError: the run has no duration or no endpoints.
        ConfigError: a bad SLO expression.

    Example:
        >>> result = bottlenecks("data/k6/candidate", baseline="data/k6/baseline")  # doctest: +SKIP
        >>> result.table.select("rank", "item", "driver", "gain")  # doctest: +SKIP
    """
    current = load(run, db=db)
    base = None if baseline is None else load(baseline, db=db)
    # One read connection per store for the queries below.
    with reading(current.store, None if base is None else base.store):
        config = load_compare_config()
        # The configuration is read once, for the SLOs and the compare below.
        slos, slo_source = (latency_slos(slo), None) if slo is not None else \
            (strictest_latency(config.slos), config.source)
        # An SLO keyed by a custom metric's exact name is that metric's; globs are the endpoints'.
        names = custom_trend_names(current)
        keyed = slo_keys_for_metrics(slos, names)
        slos = [s for s in slos if s.endpoint.replace(" ", "") not in keyed]
        hours = run_hours(current)
        summary = _summary(current)  # read once for the items and the errors
        parts, thresholds = item_parts(current, slos, summary=summary)
        if parts.filter(pl.col("kind") == "endpoint").is_empty():
            raise InsufficientDataError(f"run {current.run_id} has no per-endpoint requests")
        checks = None
        if base is not None:
            from perfstats.comparison.gate import compare

            checks = compare(base, current, config=config).checks
        metric_slo, used = metric_slos(current, names, keyed, config.thresholds)
        several = parts.filter(pl.col("kind") == "scenario")["item"].n_unique() > 1
        metrics, metric_notes = metric_items(
            current, parts=parts, checks=checks, hours=hours, slos=metric_slo,
            declared=config.worse_when, scenarios=several)
        if used:
            metric_notes.append("custom metrics' SLO excess from their thresholds: "
                                f"{'; '.join(used)} (the strictest latency clause of each)")
        table = impact_table(parts, hours=hours, thresholds=thresholds,
                             regression=regression_inputs(checks),
                             errors=error_parts(current, base, summary=summary),
                             error_cost_s=error_cost_s,
                             metrics=metrics)
        return Bottlenecks(
            table=table, patterns=find_patterns(current.windows()), run_id=current.run_id,
            baseline_id=base.run_id if base is not None else None,
            slos=(*slos, *metric_slo.values()), error_cost_s=error_cost_s, hours=hours,
            warnings=_warnings(current, base, slos, table, slo_source, metric_notes))

