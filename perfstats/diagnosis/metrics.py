"""Bottleneck items beyond the HTTP endpoints: custom Trends, failing Rates and checks.

They are scored in the unit of :mod:`perfstats.diagnosis.rank`, user-seconds lost per hour:

- a custom **Trend** of time (``quote_duration``, Artillery's ``quote_time``), whole and, where a
  run with raw samples has several scenarios, per scenario (kind ``trend by scenario``): SLO
  excess above the latency threshold of its SLO (``--slo METRIC=EXPR``) or, else, of its k6
  thresholds in k6's syntax (the run's own and ``[thresholds]`` of perfstats.toml; the strictest
  latency clause), plus its mean's rise when compare calls it a regression;
- a custom **Rate** (``booking_success_rate``) or a **check** that fails: each bad value (a
  ``false`` where lower is worse, a ``true`` where higher is) costs ``error_cost_s``, and the
  rise of the bad share counts as an error regression when compare calls it one.

These rows time or count the same user actions as the endpoints (``quote_duration`` holds the
very requests of ``POST /api/quote``), so they are never added to the endpoints' figures: each
kind is ranked on its own, and a row that repeats one endpoint (the same count, and the same
time or failures) names it in ``restates``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from perfstats.comparison.series import check_label, direction_of
from perfstats.diagnosis.excess import excess_from_percentiles
from perfstats.errors import ConfigError
from perfstats.metric_model import K6_BUILTIN, metric_values
from perfstats.run import Run
from perfstats.slo import LatencySlo, parse_selector, parse_slo
from perfstats.thresholds import Threshold, declared_thresholds

METRIC_KINDS = ("trend", "trend by scenario", "rate", "check")
"""Item kinds of this module, in the order the table lists them."""
_SKIPPED = ("http_req", "http.", "vusers.", "plugins.", "errors.", "apdex.", "browser_",
            "iteration_duration", "group_duration", "ws_", "grpc_")
"""Built-in metrics of the tools: the endpoints (or the load itself) already hold them."""
_RESTATE_MEAN_TOL = 0.25
"""A Trend with an endpoint's count restates it when its mean is within 25 % of the endpoint's
(tool summaries: the script's own timer wraps the request in some client time)."""

ITEM_SCHEMA = {
    "kind": pl.String, "item": pl.String, "metric_kind": pl.String, "slice": pl.String,
    "count": pl.Int64, "failures": pl.Int64, "total_ms": pl.Float64, "excess_ms": pl.Float64,
    "slo_source": pl.String, "slo": pl.String, "slo_ms": pl.Float64, "slo_metric": pl.String,
    "p_slo_ms": pl.Float64, "base_mean": pl.Float64, "base_error_rate": pl.Float64,
    "extra": pl.Float64, "extra_low": pl.Float64, "extra_high": pl.Float64,
    "counted_wait": pl.Float64, "new": pl.Float64, "new_low": pl.Float64, "new_high": pl.Float64,
    "counted_new": pl.Float64, "mean_status": pl.String, "error_status": pl.String,
    "restates": pl.String,
}
"""Columns of :func:`metric_items` (the pre-score items of :func:`rank.impact_table`)."""


def _custom(name: str) -> bool:
    return name not in K6_BUILTIN and name != "checks" and not name.startswith(_SKIPPED)


def metric_slos(run: Run, names: Sequence[str], slo_keys: Mapping[str, LatencySlo],
                extra: Sequence[Threshold] = ()) -> tuple[dict[str, LatencySlo], list[str]]:
    """Latency objectives of the custom Trends ``names`` and their scenario slices, by k6
    selector (``quote_duration``, ``quote_duration{scenario:quote_flow}``).

    ``slo_keys`` (from ``--slo METRIC=EXPR``, exact metric names) win; else the strictest
    latency clause of the thresholds on that selector: the run's declared ones and ``extra``
    (``[thresholds]`` of perfstats.toml; a bad one is compare's to report). Returns them and
    the thresholds used, as text.
    """
    by_selector: dict[str, list[tuple[float, str, str]]] = {}
    for t in (*declared_thresholds(run.store, run.run_id), *extra):
        try:
            name, tags = parse_selector(t.metric)
            objectives = parse_slo(t.expression, metric=t.metric, kind="trend")
        except ConfigError:
            continue
        if name not in names or any(k != "scenario" for k, _ in tags):
            continue
        for o in objectives:
            if o.op in ("<", "<=") and (o.aggregation in ("p50", "p90", "p95", "p99", "mean",
                                                          "max") or o.aggregation[1:2].isdigit()):
                by_selector.setdefault(t.metric.replace(" ", ""), []).append(
                    (o.threshold, o.aggregation, f"{t.metric} {t.expression}"))
    out: dict[str, LatencySlo] = {}
    used = []
    for selector, clauses in by_selector.items():
        threshold, aggregation, text = min(clauses)
        out[selector] = LatencySlo(threshold, aggregation, selector)
        used.append(text)
    out.update({k: LatencySlo(s.threshold_ms, s.metric, k) for k, s in slo_keys.items()})
    return out, sorted(used)


def _trend_items(run: Run, slos: Mapping[str, LatencySlo], scenarios: bool) -> pl.DataFrame:
    """Custom Trends of time (whole, and per scenario), with total time and SLO excess."""
    names = custom_trend_names(run)
    if not names:
        return pl.DataFrame(schema=ITEM_SCHEMA)
    whole = metric_values(run, "trend", metrics=names).with_columns(slice=pl.lit(None, pl.String))
    frames = [whole.select("metric", "slice", "count", "avg", "min", "med", "p90", "p95",
                           "p99", "max", "source")]
    exact = run.grain == "samples" and (whole["source"] == "exact").all()
    if scenarios and exact:
        sliced = metric_values(run, "trend", metrics=names, by="scenario").filter(
            pl.col("scenario").fill_null("") != "")
        # A metric seen in one scenario only: its slice is the whole metric.
        sliced = sliced.filter(pl.len().over("metric") > 1).with_columns(
            slice=pl.lit("scenario:") + pl.col("scenario"))
        frames.append(sliced.select(frames[0].columns))
    values = pl.concat(frames, how="vertical_relaxed").with_columns(
        selector=pl.when(pl.col("slice").is_null()).then(pl.col("metric")).otherwise(
            pl.col("metric") + "{" + pl.col("slice") + "}"))
    rows = []
    for row in values.iter_rows(named=True):
        s = slos.get(row["selector"]) or slos.get(row["metric"])
        rows.append((row["selector"], s.threshold_ms if s else None,
                     s.metric if s else None, f"{s.endpoint}: {s}" if s else None))
    thresholds = pl.DataFrame(rows, schema={"selector": pl.String, "slo_ms": pl.Float64,
                                            "slo_metric": pl.String, "slo": pl.String},
                              orient="row")
    values = values.join(thresholds, on="selector", how="left")
    if exact:
        excess = _sample_excess(run, values)
        source = pl.when(pl.col("slo_ms").is_not_null()).then(pl.lit("samples"))
    else:
        knots = values.select("min", "med", "p90", "p95", "p99", "max").cast(pl.Float64)
        per_request = excess_from_percentiles(
            knots.to_numpy(), values["slo_ms"].fill_null(np.nan).to_numpy())
        excess = pl.Series("excess_ms", per_request) * values["count"]
        source = pl.when(pl.col("slo_ms").is_not_null()).then(pl.lit("summary"))
    p_slo = pl.coalesce(
        pl.when(pl.col("slo_metric") == m).then(pl.col(c)) for m, c in
        (("p50", "med"), ("p90", "p90"), ("p95", "p95"), ("p99", "p99"), ("mean", "avg"),
         ("max", "max")))
    return values.with_columns(excess_ms=pl.when(pl.col("slo_ms").is_not_null()).then(
        excess.fill_nan(None))).select(
        kind=pl.when(pl.col("slice").is_null()).then(pl.lit("trend")).otherwise(
            pl.lit("trend by scenario")),
        item="selector", metric_kind=pl.lit("trend"), slice="slice",
        count=pl.col("count").cast(pl.Int64), failures=pl.lit(0, pl.Int64),
        total_ms=pl.col("avg") * pl.col("count"), excess_ms="excess_ms", slo_source=source,
        slo="slo", slo_ms="slo_ms", slo_metric="slo_metric", p_slo_ms=p_slo,
        metric="metric")


def _sample_excess(run: Run, values: pl.DataFrame) -> pl.Series:
    """Exact time beyond each row's threshold from the raw samples (one query)."""
    wanted = values.filter(pl.col("slo_ms").is_not_null())
    if wanted.is_empty():
        return pl.Series("excess_ms", [None] * values.height, dtype=pl.Float64)
    scenario = wanted["slice"].str.strip_prefix("scenario:")
    found = run.store.query(
        """
        WITH t AS (SELECT unnest(?::VARCHAR[]) AS sel, unnest(?::VARCHAR[]) AS metric,
                          unnest(?::VARCHAR[]) AS scenario, unnest(?::DOUBLE[]) AS threshold)
        SELECT t.sel, sum(greatest(s.value - t.threshold, 0)) AS excess_ms
        FROM t JOIN samples s ON s.run_id = ? AND s.metric = t.metric
             AND (t.scenario IS NULL OR s.scenario = t.scenario)
        GROUP BY t.sel
        """,
        [wanted["selector"].to_list(), wanted["metric"].to_list(), scenario.to_list(),
         wanted["slo_ms"].to_list(), run.run_id])
    lookup = dict(found.iter_rows())
    return pl.Series("excess_ms", [lookup.get(s) for s in values["selector"]], dtype=pl.Float64)


def _rate_items(run: Run, declared: Mapping[str, str]) -> tuple[pl.DataFrame, list[str]]:
    """Custom Rates and checks with bad values: count, bad values (``failures``), direction."""
    rows, unknown = [], []
    rates = metric_values(run, "rate")
    for r in rates.filter(~pl.col("metric").str.contains("{", literal=True)).iter_rows(
            named=True):
        if not _custom(r["metric"]):
            continue
        direction, _ = direction_of(r["metric"], "rate", time=False, declared=declared)
        if direction == "either":
            unknown.append(r["metric"])
            continue
        bad = r["fails"] if direction == "lower" else r["passes"]
        rows.append(("rate", r["metric"], int(r["passes"] + r["fails"]), int(bad), direction))
    for c in run.checks().iter_rows(named=True):
        name = check_label(c["group"], c["check"])
        rows.append(("check", name, int(c["passes"] + c["fails"]), int(c["fails"]), "lower"))
    frame = pl.DataFrame(rows, schema={"kind": pl.String, "item": pl.String, "count": pl.Int64,
                                       "failures": pl.Int64, "direction": pl.String},
                         orient="row")
    return frame, unknown


def _restates(items: pl.DataFrame, parts: pl.DataFrame) -> pl.DataFrame:
    """Name the endpoint (in the scenario, for a slice) that a row repeats: the same count and
    the same failures (rates, checks) or a mean within 25 % (trends), the closest mean first."""
    ends = parts.filter(pl.col("kind").is_in(["endpoint", "scenario"])).select(
        scope=pl.when(pl.col("kind") == "scenario").then(pl.lit("scenario:") + pl.col("item")),
        endpoint="endpoint", e_count="count", e_failures="failures",
        e_mean=pl.col("total_ms") / pl.col("count"))
    keyed = items.drop("restates", strict=False).with_row_index("_row").with_columns(
        scope=pl.when(pl.col("kind") == "trend by scenario").then(pl.col("slice")))
    pairs = keyed.join(ends, left_on=["scope", "count"], right_on=["scope", "e_count"],
                       nulls_equal=True)
    trend = pl.col("metric_kind") == "trend"
    mean = pl.col("total_ms") / pl.col("count")
    distance = (mean / pl.col("e_mean") - 1.0).abs()
    match = pl.when(trend).then(distance <= _RESTATE_MEAN_TOL).otherwise(
        (pl.col("failures") == pl.col("e_failures")) & (pl.col("failures") > 0))
    best = pairs.filter(match).with_columns(
        d=pl.when(trend).then(distance).otherwise(0.0)).sort("_row", "d", "endpoint").group_by(
        "_row", maintain_order=True).agg(restates=pl.col("endpoint").first())
    return keyed.join(best, on="_row", how="left").drop("_row", "scope")


def _trend_regression(checks: pl.DataFrame) -> pl.DataFrame:
    """compare's mean check of each Trend (and slice) as absolute ms."""
    return checks.filter((pl.col("kind") == "trend") & (pl.col("metric") == "mean")).select(
        item=pl.when(pl.col("slice").fill_null("") == "").then(pl.col("endpoint")).otherwise(
            pl.col("endpoint") + "{" + pl.col("slice") + "}"),
        base_mean="baseline", delta=pl.col("candidate") - pl.col("baseline"),
        low=pl.col("baseline") * pl.col("ci_low") / 100.0,
        high=pl.col("baseline") * pl.col("ci_high") / 100.0, mean_status="status")


def _rate_regression(checks: pl.DataFrame) -> pl.DataFrame:
    """compare's check of each Rate and check as the change of the *bad* share (0-1)."""
    rows = checks.filter(pl.col("kind").is_in(["rate", "check"]) & (pl.col("metric") == "rate")
                         & (pl.col("slice").fill_null("") == ""))
    lower = pl.col("direction") == "lower"  # lower is worse: the bad share is 1 - rate
    return rows.select(
        item="endpoint", base_error_rate=pl.when(lower).then(1.0 - pl.col("baseline")).otherwise(
            pl.col("baseline")),
        delta=pl.when(lower).then(pl.col("baseline") - pl.col("candidate")).otherwise(
            pl.col("candidate") - pl.col("baseline")),
        low=pl.when(lower).then(-pl.col("ci_high")).otherwise(pl.col("ci_low")) / 100.0,
        high=pl.when(lower).then(-pl.col("ci_low")).otherwise(pl.col("ci_high")) / 100.0,
        error_status="status")


def metric_items(run: Run, *, parts: pl.DataFrame, checks: pl.DataFrame | None, hours: float,
                 slos: Mapping[str, LatencySlo], declared: Mapping[str, str],
                 scenarios: bool) -> tuple[pl.DataFrame, list[str]]:
    """The custom-metric items of ``run`` before scoring, and notes on what was left out.

    Args:
        parts: the HTTP parts of :func:`rank.item_parts` (to find what a row restates).
        checks: compare's checks (None without a baseline).
        hours: the run's duration in hours.
        slos: latency objectives by selector (:func:`metric_slos`).
        declared: ``[compare.worse_when]`` (which way a Rate is worse).
        scenarios: whether the run has several scenarios (slices of the Trends).
    """
    per_h = 1.0 / hours
    notes = []
    trends = _trend_items(run, slos, scenarios)
    rates, unknown = _rate_items(run, declared)
    if unknown:
        notes.append(f"rates of unknown direction not ranked ({', '.join(unknown)}): declare "
                     "them in [compare.worse_when]")
    # A passing Rate or check loses nothing: only failing ones are items.
    rates = rates.filter(pl.col("failures") > 0)
    if checks is not None and not checks.is_empty():
        t = _trend_regression(checks)
        trends = trends.join(t, on="item", how="left").with_columns(
            rate=pl.col("count") * per_h).with_columns(
            extra=pl.col("delta") * pl.col("rate") / 1000.0,
            extra_low=pl.col("low") * pl.col("rate") / 1000.0,
            extra_high=pl.col("high") * pl.col("rate") / 1000.0).with_columns(
            counted_wait=pl.when(pl.col("mean_status") == "regression").then(
                pl.col("extra")).otherwise(0.0))
        r = _rate_regression(checks)
        rates = rates.join(r, on="item", how="left").with_columns(
            rate=pl.col("count") * per_h).with_columns(
            new=pl.col("delta") * pl.col("rate"), new_low=pl.col("low") * pl.col("rate"),
            new_high=pl.col("high") * pl.col("rate")).with_columns(
            counted_new=pl.when(pl.col("error_status") == "regression").then(
                pl.col("new")).otherwise(0.0))
    rates = rates.with_columns(metric_kind="kind", slice=pl.lit(None, pl.String),
                               total_ms=pl.lit(None, pl.Float64))
    items = pl.concat([trends, rates], how="diagonal_relaxed")
    if items.is_empty():
        return pl.DataFrame(schema=ITEM_SCHEMA), notes
    items = _restates(items.with_columns(
        [pl.lit(None, t).alias(c) for c, t in ITEM_SCHEMA.items() if c not in items.columns]),
        parts)
    return items.select([pl.col(c).cast(t) for c, t in ITEM_SCHEMA.items()]), notes


def slo_keys_for_metrics(slos: Sequence[LatencySlo], names: Sequence[str]
                         ) -> dict[str, LatencySlo]:
    """The SLOs whose key (``endpoint``) names one of the custom metrics ``names`` exactly, or
    a scenario slice of one (``quote_duration{scenario:quote_flow}``), by that key; a glob
    (``*``) is about the endpoints only."""
    return {s.endpoint.replace(" ", ""): s for s in slos
            if s.endpoint.split("{", 1)[0].strip() in names}


def custom_trend_names(run: Run) -> list[str]:
    """The custom Trends of time of ``run`` (the ones :func:`metric_items` ranks)."""
    cat = run.metrics().filter((pl.col("kind") == "trend") & (pl.col("unit") == "ms")
                              & pl.col("tags").is_null())
    return [m for m in cat["metric"].to_list() if _custom(m)]


__all__ = ["METRIC_KINDS", "custom_trend_names", "metric_items", "metric_slos",
           "slo_keys_for_metrics"]
