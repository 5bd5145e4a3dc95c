"""The series compare checks beside the HTTP endpoints: custom metrics, checks, scenario slices.

:func:`load_series` reads, for each run, every series that is not an HTTP endpoint as a whole:

- custom **Trends** (k6 ``Trend``, Artillery histograms): per-window histograms of raw samples,
  else the tool's summary figures (threshold-only);
- **Rates** (k6 ``Rate``, ``checks``) and each **check**: counts of values and of true values;
- **Counters**: per-window sums (raw samples) or the run's total, compared per second;
- **scenario slices** of the HTTP endpoints, the whole scenario and custom metrics, when a run
  has several scenarios: an endpoint in one scenario only is its own slice and is not repeated.

It also says which way each series is worse (:func:`direction_of`): declared in the
configuration, else inferred from the name (``*_success_rate``, ``checks``: lower is worse;
``*errors*``, ``*failed*``: higher), else Trends of time are worse when higher and anything else
is tested both ways. Every series becomes a :class:`~perfstats.stats.drift.EndpointData` with its
kind and slice, and so enters the same list of checks, testing design and verdict as the endpoints.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from perfstats.stats.drift import EndpointData
from perfstats.stats.histogram import WindowHistogram, bucket_sql
from perfstats.store import ALL_ENDPOINTS, Store

K6_BUILTIN = frozenset({
    "http_reqs", "vus", "vus_max", "data_sent", "data_received", "iterations",
    "iteration_duration", "group_duration", "checks",
})
"""k6 metrics that are not compared as series of their own: HTTP metrics are the endpoints'
checks, ``checks`` is compared per check and as a whole below, the rest describe the load."""
_SKIPPED_PREFIXES = ("http_req", "http.", "vusers.", "plugins.", "errors.", "apdex.")
_LOWER_WORSE = frozenset({
    "success", "successes", "successful", "ok", "pass", "passed", "passes", "hit", "hits",
    "available", "availability", "completed", "created", "apdex", "satisfied",
})
_HIGHER_WORSE = frozenset({
    "error", "errors", "fail", "failed", "failure", "failures", "timeout", "timeouts",
    "dropped", "drop", "rejected", "retries", "retry", "miss", "misses", "abandoned",
})
_KINDS = {"trend": "trend", "histogram": "trend", "rate": "rate", "counter": "counter"}
_SEP = "\x1f"


def series_key(kind: str, name: str, slice_: str = "") -> str:
    """The key of a series in :attr:`RunData.endpoints` (never equal to an endpoint name)."""
    return _SEP.join((kind, name, slice_))


def inferred_direction(name: str) -> str | None:
    """``lower`` / ``higher`` (is worse) from the words of a metric name, or None."""
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    if words & _HIGHER_WORSE:
        return "higher"
    if words & _LOWER_WORSE:
        return "lower"
    return None


def direction_of(name: str, kind: str, *, time: bool,
                 declared: Mapping[str, str]) -> tuple[str, str]:
    """Which way ``name`` is worse and how that is known: ``(direction, "declared" |
    "inferred" | "default")``."""
    base = name.split("{", 1)[0]
    if base in declared:
        return declared[base], "declared"
    if kind == "check" or base == "checks":
        return "lower", "default"  # k6's checks: the share that passed
    guess = inferred_direction(base)
    if guess is not None:
        return guess, "inferred"
    if kind == "trend" and time:
        return "higher", "default"
    return "either", "default"


@dataclass(frozen=True)
class Series:
    """The series of one run, and how the direction of each was found."""

    data: dict[str, EndpointData]
    directions: dict[str, tuple[str, str]]
    unknown: tuple[str, ...] = ()
    sampled: frozenset[str] | None = None
    """The metric names of the run's raw samples (None: not read, the run has none)."""


def _compared(name: str, kind: str) -> bool:
    return kind in ("trend", "rate", "counter") and name not in K6_BUILTIN \
        and not name.startswith(_SKIPPED_PREFIXES)


def _kinds(store: Store, run_id: str) -> tuple[dict[str, tuple[str, bool]], set[str]]:
    """Metric name -> (kind, is a time) from the ``metrics`` table (k6 types, Artillery), and
    the names of every metric with a type (a Gauge too)."""
    frame = store.query(
        "SELECT DISTINCT metric, type, contains FROM metrics WHERE run_id = ? AND type IS NOT "
        "NULL", [run_id])
    out: dict[str, tuple[str, bool]] = {}
    typed: set[str] = set()
    for metric, kind, contains in frame.iter_rows():
        base = str(metric).split("{", 1)[0]
        typed.add(base)
        if kind in _KINDS:
            # k6 marks time Trends; Artillery histograms are times unless they hold bytes.
            time = contains == "time" or (kind == "histogram" and contains != "data")
            out.setdefault(base, (_KINDS[kind], time))
    return out, typed


def load_series(store: Store, run: Any, *, lengths: np.ndarray | None, window_s: float | None,
                start: datetime | None, declared: Mapping[str, str], slices: bool = True
                ) -> Series:
    """Every non-endpoint series of ``run`` (see the module docstring).

    Args:
        store: the store holding the run.
        run: the :class:`~perfstats.Run`.
        lengths: window lengths of the run's HTTP histograms (raw samples), so that the series
            are cut into the same windows and resampled with them; None for other grains.
        window_s: their window length in seconds.
        start: their origin, the time of the run's first HTTP request.
        declared: metric name -> declared direction (``[compare.worse_when]``).
        slices: whether to add scenario slices when the run has several scenarios.
    """
    kinds, typed = _kinds(store, run.run_id)
    unknown: tuple[str, ...] = ()
    sampled = None
    if run.grain == "samples" and lengths is not None and window_s and start is not None:
        data = _from_samples(store, run.run_id, kinds, lengths, window_s, start, slices)
        sampled = store.sampled_metrics(run.run_id)
        # Metrics of no type at all (a k6 CSV alone); a typed Gauge is known, just not compared.
        unknown = tuple(sorted(m for m in sampled - typed if m not in K6_BUILTIN
                               and not m.startswith(_SKIPPED_PREFIXES)))
    else:
        data = _from_summaries(store, run.run_id, kinds, slices)
    out: dict[str, EndpointData] = {}
    directions: dict[str, tuple[str, str]] = {}
    for key, item in data.items():
        if item.kind == "http":
            out[key] = item
            continue
        time = kinds.get(str(item.name).split("{", 1)[0], ("", True))[1]
        direction, how = direction_of(str(item.name), item.kind, time=time, declared=declared)
        directions[str(item.name)] = (direction, how)
        out[key] = EndpointData(item.count, item.errors, item.summary, item.histogram,
                                item.windows, item.kind, item.name, item.slice, direction,
                                item.floor and time, item.amount, item.amounts)
    return Series(out, directions, unknown, sampled)


# ---------------------------------------------------------------------------------------------
# Raw samples


def _windows_sql(window_s: float) -> str:
    # The same windows as the HTTP histograms: from their first request ($start).
    return f"""
        s AS (SELECT metric, endpoint, scenario, grp, check_name, value, expected_response,
                     CAST(floor(epoch(ts - CAST($start AS TIMESTAMPTZ)) / {float(window_s)!r})
                          AS BIGINT) AS w
              FROM samples WHERE run_id = $run AND value IS NOT NULL AND ts IS NOT NULL)"""


def _histogram(rows: pl.DataFrame, lengths: np.ndarray) -> WindowHistogram:
    n_windows = len(lengths)
    w = np.clip(rows["w"].to_numpy(), 0, n_windows - 1)
    buckets, column = np.unique(rows["b"].to_numpy(), return_inverse=True)
    counts = np.zeros((n_windows, len(buckets)), dtype=np.int64)
    np.add.at(counts, (w, column), rows["n"].to_numpy())
    return WindowHistogram(
        buckets=buckets, counts=counts,
        sums=np.bincount(w, weights=rows["total"].to_numpy(), minlength=n_windows),
        errors=np.bincount(w, weights=rows["failed"].to_numpy().astype(np.float64),
                           minlength=n_windows).astype(np.int64),
        lengths=lengths)


def _scenario_slices(pairs: pl.DataFrame, item: str) -> set[tuple[str, str]]:
    """(item, scenario) pairs worth a slice: the item occurs in several scenarios."""
    many = pairs.group_by(item).agg(pl.col("scenario").n_unique().alias("k")) \
        .filter(pl.col("k") > 1)[item].to_list()
    return {(a, b) for a, b in pairs.select(item, "scenario").iter_rows() if a in many}


def _from_samples(store: Store, run_id: str, kinds: Mapping[str, tuple[str, bool]],
                  lengths: np.ndarray, window_s: float, start: datetime, slices: bool
                  ) -> dict[str, EndpointData]:
    trends = [m for m, (k, _) in kinds.items() if k == "trend" and _compared(m, k)]
    rates = [m for m, (k, _) in kinds.items() if k == "rate" and _compared(m, k)]
    counters = [m for m, (k, _) in kinds.items() if k == "counter" and _compared(m, k)]
    params = {"run": run_id, "start": start, "rates": [*rates, "checks"],
              "counters": counters or [""]}
    windows = _windows_sql(window_s)
    # A run's tag sets are those of its points: its scenarios without a scan of the points.
    scenarios = store.query(
        "SELECT DISTINCT scenario FROM tag_sets WHERE run_id = ? AND scenario IS NOT NULL "
        "AND scenario <> ''", [run_id])["scenario"].to_list()
    sliced = slices and len(scenarios) > 1
    out: dict[str, EndpointData] = {}
    if trends or sliced:
        out.update(_trend_histograms(store, {"run": run_id, "start": start,
                                             "trends": trends or [""]}, lengths, windows, sliced))
    # Rates (and checks per check) as counts of values and of true values, and Counters as
    # per-window sums: one query.
    counts = store.query(f"""
        WITH {windows}
        SELECT metric, scenario, grp, check_name, w, count(*) AS n,
               count(*) FILTER (WHERE value <> 0) AS trues, sum(value) AS total,
               GROUPING(scenario) AS whole, GROUPING(check_name) AS no_check,
               GROUPING(w) AS no_window
        FROM s WHERE list_contains($rates, metric) OR list_contains($counters, metric)
        GROUP BY GROUPING SETS ((metric), (metric, scenario), (metric, grp, check_name),
                                (metric, w))
        ORDER BY metric, w
        """, {k: params[k] for k in ("run", "start", "rates", "counters")})
    props = counts.filter((pl.col("no_window") == 1) & pl.col("metric").is_in(params["rates"]))
    for row in props.filter((pl.col("whole") == 1) & (pl.col("no_check") == 1)).iter_rows(
            named=True):
        out[series_key("rate", row["metric"])] = EndpointData(
            int(row["n"]), int(row["trues"]), kind="rate", name=row["metric"])
    checks = props.filter((pl.col("metric") == "checks") & (pl.col("no_check") == 0)
                          & pl.col("check_name").is_not_null())
    for row in checks.iter_rows(named=True):
        name = check_label(row["grp"], row["check_name"])
        out[series_key("check", name)] = EndpointData(
            int(row["n"]), int(row["trues"]), kind="check", name=name)
    if sliced:
        by_scenario = props.filter((pl.col("whole") == 0) & pl.col("scenario").is_not_null()
                                   & (pl.col("metric") != "checks"))
        keep = _scenario_slices(by_scenario.select("metric", "scenario"), "metric")
        for row in by_scenario.iter_rows(named=True):
            if (row["metric"], row["scenario"]) in keep:
                tag = f"scenario:{row['scenario']}"
                out[series_key("rate", row["metric"], tag)] = EndpointData(
                    int(row["n"]), int(row["trues"]), kind="rate", name=row["metric"],
                    slice=tag)
    sums = counts.filter((pl.col("no_window") == 0) & pl.col("metric").is_in(counters))
    for (metric,), rows in sums.partition_by("metric", as_dict=True,
                                             maintain_order=True).items():
        w = np.clip(rows["w"].to_numpy(), 0, len(lengths) - 1)
        amounts = np.bincount(w, weights=rows["total"].to_numpy(), minlength=len(lengths))
        out[series_key("counter", metric)] = EndpointData(
            int(rows["n"].sum()), None, kind="counter", name=metric,
            amount=float(amounts.sum()), amounts=(amounts, lengths))
    return out


def _trend_histograms(store: Store, params: Mapping[str, Any], lengths: np.ndarray,
                      windows: str, sliced: bool) -> dict[str, EndpointData]:
    """Trends by metric, and with scenario slices by metric and scenario and the HTTP latency
    by endpoint and scenario: one histogram query (the HTTP rows only for slices), its rows in
    one order so that a window's sum is the same on every call."""
    out: dict[str, EndpointData] = {}
    sets = ("(metric, w, b), (metric, scenario, w, b), (metric, endpoint, scenario, w, b)"
            if sliced else "(metric, w, b)")
    groups = ("endpoint, scenario, GROUPING(endpoint) AS by_endpoint, GROUPING(scenario) AS "
              "by_scenario" if sliced else "NULL AS endpoint, NULL AS scenario, 1 AS by_endpoint, "
              "1 AS by_scenario")
    http_rows = " OR (metric = 'http_req_duration' AND endpoint IS NOT NULL)" if sliced else ""
    hist = store.query(f"""
        WITH {windows}
        SELECT metric, w, {bucket_sql("value")} AS b, count(*) AS n, sum(value) AS total,
               count(*) FILTER (WHERE NOT coalesce(expected_response, true)) AS failed, {groups}
        FROM s WHERE list_contains($trends, metric){http_rows}
        GROUP BY GROUPING SETS ({sets})
        ORDER BY metric, endpoint, scenario, w, b
        """, params)
    http = hist.filter(pl.col("metric") == "http_req_duration")
    custom = hist.filter(pl.col("metric") != "http_req_duration")
    for (metric,), rows in custom.filter(pl.col("by_scenario") == 1).partition_by(
            "metric", as_dict=True, maintain_order=True).items():
        h = _histogram(rows, lengths)
        out[series_key("trend", metric)] = EndpointData(h.total, None, histogram=h,
                                                        kind="trend", name=metric)
    if sliced:
        by_scenario = custom.filter((pl.col("by_scenario") == 0) & (pl.col("by_endpoint") == 1)
                                    & pl.col("scenario").is_not_null())
        keep = _scenario_slices(by_scenario.select("metric", "scenario").unique(), "metric")
        for (metric, scenario), rows in by_scenario.partition_by(
                "metric", "scenario", as_dict=True, maintain_order=True).items():
            if (metric, scenario) in keep:
                h = _histogram(rows, lengths)
                tag = f"scenario:{scenario}"
                out[series_key("trend", metric, tag)] = EndpointData(
                    h.total, None, histogram=h, kind="trend", name=metric, slice=tag)
        scenario_all = http.filter((pl.col("by_endpoint") == 1) & (pl.col("by_scenario") == 0)
                                   & pl.col("scenario").is_not_null())
        per_endpoint = http.filter((pl.col("by_endpoint") == 0) & (pl.col("by_scenario") == 0)
                                   & pl.col("scenario").is_not_null())
        pairs = per_endpoint.select("endpoint", "scenario").unique()
        keep = _scenario_slices(pairs, "endpoint")
        width = dict(pairs.group_by("scenario").agg(pl.len()).iter_rows())
        for (scenario,), rows in scenario_all.partition_by("scenario", as_dict=True,
                                                           maintain_order=True).items():
            if width.get(scenario, 0) > 1:
                h = _histogram(rows, lengths)
                tag = f"scenario:{scenario}"
                out[series_key("http", ALL_ENDPOINTS, tag)] = EndpointData(
                    h.total, int(h.errors.sum()), histogram=h, name=ALL_ENDPOINTS, slice=tag)
        for (endpoint, scenario), rows in per_endpoint.partition_by(
                "endpoint", "scenario", as_dict=True, maintain_order=True).items():
            if (endpoint, scenario) in keep:
                h = _histogram(rows, lengths)
                tag = f"scenario:{scenario}"
                out[series_key("http", endpoint, tag)] = EndpointData(
                    h.total, int(h.errors.sum()), histogram=h, name=endpoint, slice=tag)
    return out


def check_label(group: str | None, name: str) -> str:
    """A check's name with its group path, as k6 nests them: ``::checkout::booking confirmed``
    (a check of the root group: its name alone)."""
    return f"{group}::{name}" if group else name


# ---------------------------------------------------------------------------------------------
# Summaries (k6 end-of-test summaries, Artillery aggregates)

_TREND_STATS = {"p50": ("med", "p50", "median", "p(50)"), "p90": ("p(90)", "p90"),
                "p95": ("p(95)", "p95"),
                "p99": ("p(99)", "p99"), "mean": ("avg", "mean")}


def _split(metric: str) -> tuple[str, str]:
    """``name{scenario:x}`` -> (``name``, ``scenario:x``); other tags are not slices here."""
    if "{" not in metric:
        return metric, ""
    base, tags = metric.split("{", 1)
    tags = tags.rstrip("}")
    return (base, tags) if tags.startswith("scenario:") and "," not in tags else ("", "")


def _from_summaries(store: Store, run_id: str, kinds: Mapping[str, tuple[str, bool]],
                    slices: bool) -> dict[str, EndpointData]:
    frame = store.query("SELECT metric, stat, value FROM metrics WHERE run_id = ? AND stat IS NOT "
                        "NULL AND value IS NOT NULL", [run_id])
    stats: dict[str, dict[str, float]] = {}
    for metric, stat, value in frame.iter_rows():
        stats.setdefault(str(metric), {})[str(stat)] = float(value)
    out: dict[str, EndpointData] = {}
    for metric, values in stats.items():
        base, tag = _split(metric)
        if not base or (tag and not slices):
            continue
        kind = kinds.get(base, ("", True))[0]
        if base == "http_req_duration" and tag:
            failed = stats.get(f"http_req_failed{{{tag}}}", {})
            errors = failed.get("passes")
            out[series_key("http", ALL_ENDPOINTS, tag)] = EndpointData(
                int(values.get("count", 0)), None if errors is None else int(errors),
                summary=_trend_summary(values), name=ALL_ENDPOINTS, slice=tag)
            continue
        if not _compared(base, kind) and base != "checks":
            continue
        if kind == "trend":
            out[series_key("trend", base, tag)] = EndpointData(
                int(values.get("count", 0)), None, summary=_trend_summary(values), kind="trend",
                name=base, slice=tag)
        elif kind == "rate" and "passes" in values and "fails" in values:
            passes, fails = int(values["passes"]), int(values["fails"])
            out[series_key("rate", base, tag)] = EndpointData(
                passes + fails, passes, kind="rate", name=base, slice=tag)
        elif kind == "counter" and "count" in values and not tag:
            out[series_key("counter", base)] = EndpointData(
                int(values["count"]), None, kind="counter", name=base, amount=values["count"])
    for grp, name, passes, fails in store.query(
            "SELECT grp, name, passes, fails FROM checks WHERE run_id = ?", [run_id]).iter_rows():
        if passes is None or fails is None:
            continue
        label = check_label(grp, name)
        out[series_key("check", label)] = EndpointData(
            int(passes) + int(fails), int(passes), kind="check", name=label)
    return out


def _trend_summary(values: Mapping[str, float]) -> dict[str, float]:
    out = {}
    for stat, names in _TREND_STATS.items():
        for name in names:
            if name in values and math.isfinite(values[name]):
                out[stat] = values[name]
                break
    return out


def pool_series(parts: Sequence[EndpointData]) -> EndpointData | None:
    """Several baseline runs' series as one: counts add up, counter windows side by side
    (histograms and summaries are pooled by the caller's endpoint pooling)."""
    if not parts:
        return None
    first = parts[0]
    if len(parts) == 1:
        return first
    amounts = None
    if all(p.amounts is not None for p in parts):
        amounts = (np.concatenate([p.amounts[0] for p in parts if p.amounts is not None]),
                   np.concatenate([p.amounts[1] for p in parts if p.amounts is not None]))
    errors = None if any(p.errors is None for p in parts) else sum(int(p.errors or 0)
                                                                    for p in parts)
    amount = None if any(p.amount is None for p in parts) else sum(float(p.amount or 0)
                                                                    for p in parts)
    return EndpointData(sum(p.count for p in parts), errors, first.summary, None, None,
                        first.kind, first.name, first.slice, first.direction, first.floor,
                        amount, amounts)
