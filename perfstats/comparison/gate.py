"""``perfstats compare``: is the candidate worse than the baseline? A gate that does not cry wolf.

:func:`compare` loads both runs (run ids, :class:`~perfstats.Run` objects or result files), builds
per-window data at the finest grain each run has, runs the checks of :mod:`perfstats.stats.drift`
(block bootstrap, window-level tests, error-rate tests, the testing design of
:mod:`perfstats.stats.procedure`), applies absolute SLOs
and validity warnings, and returns a :class:`Comparison`. Method and calibration: docs/compare.md.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from perfstats.comparison.series import load_series, pool_series
from perfstats.config import CompareConfig, load_compare_config
from perfstats.errors import InsufficientDataError
from perfstats.readers.shards import concurrent_shards
from perfstats.render import compare as report
from perfstats.render.document import Document, Result, Section
from perfstats.render.junit import Case, junit_xml
from perfstats.render.tables import to_records
from perfstats.run import Run, load
from perfstats.slo import breaches
from perfstats.stats.common_mode import common_shifts
from perfstats.stats.decision import FAILING, STATUSES
from perfstats.stats.drift import (
    METRICS,
    Check,
    EndpointData,
    RunData,
    as_windows,
    auto_window_s,
    drift_checks,
    verdict,
)
from perfstats.stats.histogram import WindowHistogram, bucket_sql
from perfstats.stats.windowlevel import WindowSummaries
from perfstats.store import ALL_ENDPOINTS, DB, PathLike, Store, open_store, reading
from perfstats.thresholds import (
    RESULT_SCHEMA,
    RunFacts,
    Threshold,
    declared_thresholds,
    evaluate_facts,
)

if TYPE_CHECKING:
    import altair as alt
    from rich.text import Text

COMPARE_SCHEMA_VERSION = 2
"""Version of :meth:`Comparison.to_json`'s layout (see docs/compare.md); 2 added the ``kind``,
``slice`` and ``direction`` of each check."""

RunLike = Run | PathLike

CHECK_SCHEMA: dict[str, Any] = {
    "endpoint": pl.String, "kind": pl.String, "slice": pl.String, "direction": pl.String,
    "metric": pl.String, "status": pl.String,
    "baseline": pl.Float64, "candidate": pl.Float64, "change_abs": pl.Float64,
    "change_pct": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "ci_unit": pl.String,
    "p_value": pl.Float64, "p_adjusted": pl.Float64, "method": pl.String,
    "detectable": pl.Float64, "n_baseline": pl.Int64, "n_candidate": pl.Int64, "note": pl.String,
    "tolerance": pl.Float64, "floor_ms": pl.Float64, "family": pl.String,
    "change_vs_common_pct": pl.Float64,
}
"""Columns of :attr:`Comparison.checks`."""
THRESHOLD_SCHEMA: dict[str, Any] = {"baseline": pl.Float64, **RESULT_SCHEMA}
"""Columns of :attr:`Comparison.thresholds`: :data:`perfstats.thresholds.RESULT_SCHEMA` on the
candidate (``value``, ``ok``, ``tool_ok``...) and the value on the baseline."""

LOCUST_RECENT_S = 10.0
"""Locust's "current" percentiles cover about the last 10 s (its
``CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW``); its 1 s history rows are merged into blocks of this
length so that windows do not overlap."""
_PROFILE_TOLERANCE = 0.10
_MIX_TOLERANCE = 0.05


@dataclass(frozen=True)
class Comparison(Result):
    """The result of :func:`compare`.

    Attributes:
        verdict: ``"GO"`` or ``"NO-GO"`` (any regression or SLO breach).
        checks: one row per (endpoint, metric); columns in :data:`CHECK_SCHEMA`. ``ci_low`` and
            ``ci_high`` bound the change in per cent (``ci_unit == "%"``) or, for the error rate,
            in percentage points (``"pp"``).
        warnings: validity warnings (load profile, missing endpoints, too few samples...).
        baseline: the baseline run(s): ids, tool, grain, start, labels.
        candidate: the candidate run, same keys.
        settings: the settings used (alpha, tolerances, SLOs, seed...).
        thresholds: one row per threshold (:data:`THRESHOLD_SCHEMA`): those of ``[thresholds]``
            (``source == "config"``; also checks of kind ``threshold``) and those the candidate
            run declared, with the tool's verdict (``tool_ok``) beside perfstats' (``ok``).
    """

    verdict: str
    checks: pl.DataFrame
    warnings: tuple[str, ...]
    baseline: dict[str, Any]
    candidate: dict[str, Any]
    settings: dict[str, Any]
    thresholds: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(
        schema=THRESHOLD_SCHEMA))

    @property
    def failing(self) -> pl.DataFrame:
        """The checks that make the verdict NO-GO."""
        return self.checks.filter(pl.col("status").is_in(list(FAILING)))

    def worst_first(self) -> pl.DataFrame:
        """The checks ordered by status (regressions first), then by size of the change."""
        rank = {s: i for i, s in enumerate(STATUSES)}
        return self.checks.with_columns(
            pl.col("status").replace_strict(rank, default=len(rank)).alias("_rank"),
            (-pl.col("change_pct").abs()).fill_null(0.0).alias("_size"),
        ).sort("_rank", "_size", "endpoint", maintain_order=True).drop("_rank", "_size")

    def headline(self) -> str:
        """One line: the verdict, the counts of statuses and the failing checks, each with its
        change, interval and tolerance (the first and the last when there are many)."""
        return report.headline(self.verdict, self.worst_first())

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document (see docs/compare.md for the schema)."""
        return {
            "schema_version": COMPARE_SCHEMA_VERSION,
            "verdict": self.verdict,
            "headline": self.headline(),
            "baseline": self.baseline,
            "candidate": self.candidate,
            "settings": self.settings,
            "warnings": list(self.warnings),
            "checks": to_records(self.checks),
            "thresholds": to_records(self.thresholds),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def display_frame(self, *, all_checks: bool = True) -> pl.DataFrame:
        """Worst-first table with readable columns (strings), as in the markdown report; without
        ``all_checks`` only the checks that are not ``ok``."""
        return report.display_frame(report.attention(self.worst_first(), all_checks=all_checks))

    def to_text(self, *, all_checks: bool = False, width: int = 100) -> Text:
        """What ``perfstats compare`` prints for a terminal of ``width`` columns (styled
        :class:`rich.text.Text`; ``.plain`` is the bare text): the checks that are not ``ok``
        (every check with ``all_checks``), the legend, the warnings and the headline."""
        return report.terminal_report(
            self.worst_first(), verdict=self.verdict, warnings=self.warnings,
            all_checks=all_checks, width=width, thresholds=self.thresholds,
            title=f"compare {_describe(self.baseline)} -> {_describe(self.candidate)}")

    def document(self) -> Document:
        """Verdict, warnings, the checks that need attention (with the p legend), and every
        check (collapsed)."""
        attention = self.display_frame(all_checks=False)
        right = report.NUMBER_COLUMNS
        first = (Section(table=attention, text=report.legend(self.checks), right=right)
                 if attention.height else Section(text=["Every check is ok."]))
        thresholds = ([] if self.thresholds.is_empty() else [Section(
            "Thresholds (on the candidate; the tool's own verdict beside perfstats')",
            table=report.threshold_rows(self.thresholds), right=right)])
        return Document(
            title=f"perfstats compare: **{self.verdict}**",
            # the verdict is the title: the lead says why, not "NO-GO" a second time
            lead=[f"Baseline {_describe(self.baseline)}; candidate {_describe(self.candidate)}.",
                  f"{self.headline().removeprefix(f'{self.verdict}: ')}."],
            warnings=self.warnings,
            sections=[first, *thresholds,
                      Section("All checks", table=self.display_frame(), collapsed=True,
                              right=right)],
            tone="bad" if self.verdict == "NO-GO" else "good")

    def to_junit(self) -> str:
        """JUnit XML: one test case per check; regressions and SLO breaches fail, checks with
        insufficient data are skipped."""
        cases = []
        for row in self.checks.iter_rows(named=True):
            text = (f"{row['status']}: {report.value_text(row['metric'], row['baseline'])} -> "
                    f"{report.value_text(row['metric'], row['candidate'])} "
                    f"({report.change_text(row)}, interval {report.interval_text(row) or 'n/a'}, "
                    f"tolerance {report.tolerance_text(row) or 'n/a'}, method {row['method']}"
                    + (f", {report.P_COLUMN} {row['p_adjusted']:.3g}"
                       if row["p_adjusted"] is not None else "")
                    + ")" + (f"; {row['note']}" if row["note"] else ""))
            outcome = ("failed" if row["status"] in FAILING else
                       "skipped" if row["status"] == "insufficient_data" else "passed")
            cases.append(Case(f"perfstats.compare.{row['endpoint']}",
                              f"{report.subject(row)} {row['metric']}", outcome, text,
                              row["status"]))
        return junit_xml("perfstats compare", cases)

    def chart(self, *, metric: str | None = None) -> alt.LayerChart:
        """Change of ``metric`` per endpoint with its 90 % interval, coloured by status.

        Args:
            metric: one of ``p50``, ``p95``, ``p99``, ``mean``, ``throughput``, ``error_rate``;
                None (the default) shows the metric of the worst check: the first failing one,
                else the first that is not ``ok``, else p95.
        """
        from perfstats.render import charts

        if metric is None:
            metric = self.chart_metric()
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
        rows = self.checks.filter(pl.col("metric") == metric)
        tolerance = float(self.settings["tolerances"][metric])
        if metric == "error_rate":
            frame = rows.select(
                "endpoint", "status", (pl.col("change_abs") * 100).alias("change"),
                "ci_low", "ci_high")
            return charts.change_per_endpoint(
                frame, color="status", percent=False, thresholds=[tolerance * 100],
                x_title="error rate change, candidate - baseline (percentage points)",
                title="Error rate change per endpoint")
        frame = rows.select("endpoint", "status", (pl.col("change_pct") / 100).alias("change"),
                            (pl.col("ci_low") / 100), (pl.col("ci_high") / 100))
        sign = -1.0 if metric == "throughput" else 1.0
        return charts.change_per_endpoint(
            frame, color="status", thresholds=[sign * tolerance],
            x_title=f"{metric} change, candidate vs baseline (%)",
            title=f"{metric} change per endpoint")

    def chart_metric(self) -> str:
        """The metric :meth:`chart` shows by default: that of the worst failing check, else of
        the worst inconclusive one, else p95."""
        worst = self.worst_first().filter(
            pl.col("status").is_in([*FAILING, "inconclusive"]))
        return str(worst["metric"][0]) if worst.height else "p95"

    def other_chart_metric(self) -> str:
        """The second chart of a compare page: the error rate, or p95 when :meth:`chart_metric`
        is the error rate."""
        return "p95" if self.chart_metric() == "error_rate" else "error_rate"


def _describe(side: Mapping[str, Any]) -> str:
    ids = side.get("run_ids") or []
    what = ids[0] if len(ids) == 1 else f"{len(ids)} pooled runs ({', '.join(ids)})"
    return f"{what} ({side.get('tool')}, {side.get('grain')})"


# ---------------------------------------------------------------------------------------------
# Loading runs into per-window arrays


@dataclass(frozen=True)
class _Loaded:
    """One run's endpoints as drift inputs, plus what the warnings need."""

    run: Run
    endpoints: dict[str, EndpointData]
    duration_s: float
    window_s: float | None
    series: dict[str, EndpointData]
    directions: dict[str, tuple[str, str]]
    unknown: tuple[str, ...] = ()
    sampled: frozenset[str] | None = None


def _looks_like_path(item: PathLike) -> bool:
    path = Path(item)
    return path.exists() or (bool(path.name) and any(path.parent.glob(f"{path.name}_stats*.csv")))


def _resolve(item: RunLike, db: DB, scratch: Callable[[], Store]) -> Run:
    if isinstance(item, Run):
        return item
    if not isinstance(item, str | os.PathLike):
        raise TypeError(f"expected a Run, a run id or a result path, got {type(item).__name__}")
    if db is None and _looks_like_path(item):
        return load(item, db=scratch())
    return load(item, db=db)


def _selected(endpoint: str, include: Sequence[str], ignore: Sequence[str]) -> bool:
    if include and not any(fnmatch.fnmatchcase(endpoint, g) for g in include):
        return False
    return not any(fnmatch.fnmatchcase(endpoint, g) for g in ignore)


def _sample_histograms(store: Store, runs: Mapping[str, tuple[float, float]]
                       ) -> dict[str, tuple[dict[str, WindowHistogram], float, datetime]]:
    """Per-window histograms of every endpoint of raw-sample runs, in one DuckDB query.

    Args:
        store: the store holding the runs.
        runs: run id -> (window length, the run's recorded duration) in seconds.

    Returns:
        run id -> ({endpoint: histogram}, duration in seconds, the first request's time: the
        windows' origin).
    """
    values = ", ".join("(?, ?)" for _ in runs)
    params: list[Any] = [v for run_id, (win, _) in runs.items() for v in (run_id, win)]
    # The run bounds come from their own scan, so that the samples are streamed through the
    # aggregation once and never materialised.
    where = ("s.metric = 'http_req_duration' AND s.value IS NOT NULL AND s.endpoint IS NOT NULL "
             "AND s.ts IS NOT NULL")
    frame = store.query(f"""
        WITH params(run_id, win) AS (VALUES {values}),
        t AS (SELECT s.run_id, any_value(p.win) AS win, min(s.ts) AS t0,
                     epoch(max(s.ts) - min(s.ts)) AS span
              FROM samples s JOIN params p USING (run_id) WHERE {where} GROUP BY s.run_id)
        SELECT s.run_id, s.endpoint, any_value(t.span) AS span, any_value(t.t0) AS t0,
               CAST(floor(epoch(s.ts - t.t0) / t.win) AS BIGINT) AS w,
               {bucket_sql("s.value")} AS b, count(*) AS n, sum(s.value) AS total,
               count(*) FILTER (WHERE NOT coalesce(s.expected_response, true)) AS failed
        FROM samples s JOIN t USING (run_id)
        WHERE {where}
        GROUP BY s.run_id, s.endpoint, w, b
        ORDER BY s.run_id, s.endpoint, w, b
        """, params)
    out: dict[str, tuple[dict[str, WindowHistogram], float, datetime]] = {}
    for (run_id,), part in frame.partition_by("run_id", as_dict=True, maintain_order=True).items():
        win, recorded = runs[str(run_id)]
        # Whole-second timestamps (k6 CSV) make the sample span up to 1 s shorter than the run.
        duration = max(float(part["span"].max() or 0.0), recorded)
        n_windows = max(1, math.floor(duration / win) + 1)
        lengths = np.full(n_windows, win)
        lengths[-1] = max(duration - win * (n_windows - 1), min(win, 1.0))
        hists: dict[str, WindowHistogram] = {}
        for (endpoint,), rows in part.partition_by("endpoint", as_dict=True,
                                                    maintain_order=True).items():
            w = np.minimum(rows["w"].to_numpy(), n_windows - 1)
            buckets, column = np.unique(rows["b"].to_numpy(), return_inverse=True)
            counts = np.zeros((n_windows, len(buckets)), dtype=np.int64)
            np.add.at(counts, (w, column), rows["n"].to_numpy())
            hists[str(endpoint)] = WindowHistogram(
                buckets=buckets, counts=counts,
                sums=np.bincount(w, weights=rows["total"].to_numpy(), minlength=n_windows),
                errors=np.bincount(w, weights=rows["failed"].to_numpy().astype(np.float64),
                                   minlength=n_windows).astype(np.int64),
                lengths=lengths)
        out[str(run_id)] = (hists, float(lengths.sum()), part["t0"][0])
    return out


def _window_summaries(store: Store, run_ids: Sequence[str]
                      ) -> dict[str, dict[str, WindowSummaries]]:
    """Per-window summaries of runs whose tools wrote only those (Artillery, Locust history)."""
    marks = ", ".join("?" for _ in run_ids)
    frame = store.query(f"""
        SELECT run_id, endpoint, start, length_s, count, failures, mean, p50, p95, p99,
               total_ms, percentiles,
               epoch(start - min(start) OVER (PARTITION BY run_id)) AS offset_s
        FROM windows WHERE run_id IN ({marks}) ORDER BY run_id, endpoint, start
        """, list(run_ids))
    if frame.is_empty():
        return {}
    recent = pl.col("percentiles") == "tool-recent"
    # Locust's "current" percentiles are over about the last 10 s: keep one row per block of
    # at least 10 s, a whole number of the run's windows (10 s of 1 s rows, 12 s of a
    # distributed run's 3 s windows; the block's last row), so windows do not overlap; counts
    # and totals add up over the block.
    period = pl.col("length_s").median().over("run_id")
    block_s = (LOCUST_RECENT_S / period).ceil() * period
    frame = frame.with_columns(
        pl.when(recent).then((pl.col("offset_s") / block_s).floor())
        .otherwise(pl.col("offset_s")).alias("block"),
        pl.when(pl.col("percentiles") == "tool-cumulative").then(None)
        .otherwise(pl.col("p50")).alias("p50"),
    ).with_columns(*(
        pl.when(pl.col("percentiles") == "tool-cumulative").then(None).otherwise(pl.col(c))
        .alias(c) for c in ("p95", "p99")))
    frame = frame.group_by("run_id", "endpoint", "block", maintain_order=True).agg(
        pl.col("length_s").sum(), pl.col("count").sum(), pl.col("failures").fill_null(0).sum(),
        pl.col("total_ms").sum().alias("total_ms"),
        pl.col("total_ms").is_null().any().alias("no_total"),
        pl.col("mean").last(), pl.col("p50").last(), pl.col("p95").last(), pl.col("p99").last(),
    ).with_columns(
        pl.when(pl.col("no_total") | (pl.col("count") == 0)).then(pl.col("mean"))
        .otherwise(pl.col("total_ms") / pl.col("count")).alias("mean"))
    figures = ("p50", "p95", "p99", "mean")
    # Types and gaps settled once for all endpoints, not per endpoint and column.
    frame = frame.with_columns(
        pl.col("count").fill_null(0), pl.col("length_s").fill_null(0.0),
        *(pl.col(c).cast(pl.Float64).fill_null(np.nan) for c in figures))
    out: dict[str, dict[str, WindowSummaries]] = {}
    for (run_id, endpoint), rows in frame.partition_by(
            "run_id", "endpoint", as_dict=True, maintain_order=True).items():
        out.setdefault(str(run_id), {})[str(endpoint)] = WindowSummaries(
            rows["count"].to_numpy().astype(np.int64), {c: rows[c].to_numpy() for c in figures},
            rows["failures"].to_numpy().astype(np.int64),
            rows["length_s"].to_numpy().astype(np.float64))
    return out


def _summaries(store: Store, run_ids: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    marks = ", ".join("?" for _ in run_ids)
    frame = store.query(
        f"SELECT run_id, endpoint, count, failures, mean, p50, p90, p95, p99 FROM summaries "
        f"WHERE run_id IN ({marks})", list(run_ids))
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in frame.iter_rows(named=True):
        out.setdefault(row["run_id"], {})[row["endpoint"]] = row
    return out


def _load_runs(runs: Sequence[Run], config: CompareConfig) -> list[_Loaded]:
    """Drift inputs of every run, with one query per table and store."""
    by_store: dict[int, list[Run]] = {}
    for run in runs:
        by_store.setdefault(id(run.store), []).append(run)
    loaded: dict[str, _Loaded] = {}
    for group in by_store.values():
        store = group[0].store
        ids = [r.run_id for r in group]
        summaries = _summaries(store, ids)
        sampled = {r.run_id: (config.window_s or auto_window_s(float(r.meta["duration_s"] or 0)),
                              float(r.meta["duration_s"] or 0.0))
                   for r in group if r.grain == "samples"}
        hists = _sample_histograms(store, sampled) if sampled else {}
        others = [r.run_id for r in group if r.grain != "samples"]
        summary_windows = _window_summaries(store, others) if others else {}
        for run in group:
            rows = summaries.get(run.run_id, {})
            endpoints: dict[str, EndpointData] = {}
            window_s: float | None = None
            start: datetime | None = None
            if run.run_id in hists:
                run_hists, covered, start = hists[run.run_id]
                # The run's one duration (the tool's own where it reports one), as summary's.
                duration = float(run.meta["duration_s"] or covered)
                window_s = sampled[run.run_id][0]
                for name, hist in run_hists.items():
                    endpoints[name] = EndpointData(hist.total, int(hist.errors.sum()),
                                                   histogram=hist)
            else:
                duration = float(run.meta["duration_s"] or 0.0)
                run_windows = summary_windows.get(run.run_id, {})
                for name, row in rows.items():
                    summary = {k: float(row[k]) for k in ("p50", "p90", "p95", "p99", "mean")
                               if row[k] is not None}
                    errors = None if row["failures"] is None else int(row["failures"])
                    endpoints[name] = EndpointData(int(row["count"] or 0), errors, summary,
                                                   windows=run_windows.get(name))
                if not duration and run_windows:
                    duration = float(next(iter(run_windows.values())).lengths.sum())
            lengths = next((e.histogram.lengths for e in endpoints.values()
                            if e.histogram is not None), None)
            series = load_series(store, run, lengths=lengths, window_s=window_s, start=start,
                                 declared=config.worse_when, slices=config.slices)
            loaded[run.run_id] = _Loaded(run, endpoints, duration, window_s, series.data,
                                         series.directions, series.unknown, series.sampled)
    return [loaded[r.run_id] for r in runs]


def _pool(parts: Sequence[EndpointData]) -> EndpointData:
    """Several baseline runs of one endpoint as one: windows side by side."""
    if len(parts) == 1:
        return parts[0]
    count = sum(p.count for p in parts)
    errors = None if any(p.errors is None for p in parts) else sum(int(p.errors or 0)
                                                                    for p in parts)
    if all(p.histogram is not None for p in parts):
        hists = [p.histogram for p in parts if p.histogram is not None]
        buckets = np.unique(np.concatenate([h.buckets for h in hists]))
        hist = WindowHistogram(
            buckets=buckets, counts=np.vstack([h.on_buckets(buckets) for h in hists]),
            sums=np.concatenate([h.sums for h in hists]),
            errors=np.concatenate([h.errors for h in hists]),
            lengths=np.concatenate([h.lengths for h in hists]))
        return EndpointData(count, errors, histogram=hist)
    # Percentiles of different runs cannot be merged: the pooled summary is their median.
    summary = {k: float(np.median([p.summary[k] for p in parts if k in p.summary]))
               for k in ("p50", "p90", "p95", "p99", "mean")
               if any(k in p.summary for p in parts)}
    windows = [as_windows(p) for p in parts]
    if any(w is None for w in windows):
        return EndpointData(count, errors, summary)
    ws = [w for w in windows if w is not None]
    pooled = WindowSummaries(
        np.concatenate([w.counts for w in ws]),
        {k: np.concatenate([w.column(k) for w in ws]) for k in ("p50", "p95", "p99", "mean")},
        np.concatenate([w.errors for w in ws]), np.concatenate([w.lengths for w in ws]))
    return EndpointData(count, errors, summary, windows=pooled)


def _empty(loaded: _Loaded) -> EndpointData | None:
    """An endpoint a pooled run did not call: empty windows when the run has histograms (so the
    pooled windows of all endpoints stay aligned), else nothing."""
    hist = next((e.histogram for e in loaded.endpoints.values() if e.histogram is not None), None)
    if hist is None:
        return None
    windows = hist.n_windows
    return EndpointData(0, 0, histogram=WindowHistogram(
        buckets=np.zeros(0, dtype=np.int64), counts=np.zeros((windows, 0), dtype=np.int64),
        sums=np.zeros(windows), errors=np.zeros(windows, dtype=np.int64), lengths=hist.lengths))


def _side(loaded: Sequence[_Loaded], config: CompareConfig, warnings: list[str]) -> RunData:
    """The drift input of one side (several runs are pooled), endpoints filtered."""
    names = list(dict.fromkeys(n for part in loaded for n in part.endpoints))
    filtered = bool(config.endpoints or config.ignore)
    endpoints: dict[str, EndpointData] = {}
    for name in names:
        if name == ALL_ENDPOINTS or not _selected(name, config.endpoints, config.ignore):
            continue
        parts = [p.endpoints[name] if name in p.endpoints else _empty(p) for p in loaded]
        endpoints[name] = _pool([part for part in parts if part is not None])
    whole = [p.endpoints.get(ALL_ENDPOINTS) for p in loaded]
    hists = [e.histogram for e in endpoints.values() if e.histogram is not None]
    if hists and len(hists) == len(endpoints):
        merged = hists[0]
        for hist in hists[1:]:
            merged = merged.merge(hist)
        errors = [e.errors for e in endpoints.values()]
        endpoints = {ALL_ENDPOINTS: EndpointData(
            merged.total, None if None in errors else int(merged.errors.sum()),
            histogram=merged), **endpoints}
    elif not filtered and all(w is not None for w in whole):
        endpoints = {ALL_ENDPOINTS: _pool([w for w in whole if w is not None]), **endpoints}
    elif filtered and any(w is not None for w in whole):
        message = ("whole-run (ALL) checks left out: the tool's whole-run figures include the "
                   "endpoints left out by --endpoint/--ignore")
        if message not in warnings:
            warnings.append(message)
    return RunData(endpoints, sum(p.duration_s for p in loaded) or 1.0)


def _side_series(loaded: Sequence[_Loaded], config: CompareConfig) -> dict[str, EndpointData]:
    """The custom metrics, checks and scenario slices of one side (several runs pooled).

    The globs of ``endpoints`` and ``ignore`` match custom metrics and checks by name, and
    slices by their endpoint; whole-scenario slices hold every endpoint, so they are left out
    when endpoints are chosen or ignored."""
    filtered = bool(config.endpoints or config.ignore)
    out: dict[str, EndpointData] = {}
    for key in dict.fromkeys(k for part in loaded for k in part.series):
        parts = [p.series[key] for p in loaded if key in p.series]
        first = parts[0]
        name = str(first.name)
        if first.kind == "http":
            if (name == ALL_ENDPOINTS and filtered) or (
                    name != ALL_ENDPOINTS and not _selected(name, config.endpoints,
                                                           config.ignore)):
                continue
        elif not _selected(name, config.endpoints, config.ignore):
            continue
        if first.histogram is not None or first.summary or first.windows is not None:
            pooled = replace(_pool(parts), kind=first.kind, name=first.name, slice=first.slice,
                             direction=first.direction, floor=first.floor)
        else:
            pooled = pool_series(parts)
        if pooled is not None:
            out[key] = pooled
    return out


def _direction_warning(loaded: Sequence[_Loaded]) -> str | None:
    """One line naming the directions that were inferred or are not known."""
    found: dict[str, tuple[str, str]] = {}
    for part in loaded:
        found.update(part.directions)
    groups: dict[str, list[str]] = {}
    for name, (direction, how) in sorted(found.items()):
        if how == "inferred":
            groups.setdefault(f"{direction} is worse (from the name)", []).append(name)
        elif direction == "either" and how == "default":
            groups.setdefault("either way is tested (not known)", []).append(name)
    if not groups:
        return None
    text = "; ".join(f"{what}: {', '.join(names)}" for what, names in groups.items())
    return f"custom metric directions: {text}; declare them in [compare.worse_when]"


# ---------------------------------------------------------------------------------------------
# Warnings


def _rel_diff(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not a or (isinstance(a, float) and math.isnan(a)):
        return None
    return float(b) / float(a) - 1.0


def _profile_warnings(base: Sequence[_Loaded], cand: _Loaded, base_data: RunData,
                      cand_data: RunData, checks: Sequence[Check]) -> list[str]:
    out: list[str] = []
    tools = {p.run.tool for p in base}
    if tools != {cand.run.tool}:
        out.append(f"different tools: baseline {', '.join(sorted(tools))}, candidate "
                   f"{cand.run.tool}; their latency definitions differ")
    models = {p.run.meta.get("load_model") for p in base}
    if None not in models and cand.run.meta.get("load_model") and \
            models != {cand.run.meta.get("load_model")}:
        out.append(f"different load models: baseline {', '.join(sorted(map(str, models)))}, "
                   f"candidate {cand.run.meta.get('load_model')}; a closed model under-reports "
                   "tail latency when the system stalls (coordinated omission)")
    runs = len(base)
    b_total = sum(e.count for n, e in base_data.endpoints.items() if n != ALL_ENDPOINTS)
    c_total = sum(e.count for n, e in cand_data.endpoints.items() if n != ALL_ENDPOINTS)
    b_dur = base_data.duration_s / runs
    diff = _rel_diff(b_dur, cand_data.duration_s)
    if diff is not None and abs(diff) > _PROFILE_TOLERANCE:
        out.append(f"durations differ by {diff:+.0%} ({b_dur:.0f} s vs "
                   f"{cand_data.duration_s:.0f} s)")
    diff = _rel_diff(b_total / base_data.duration_s, c_total / cand_data.duration_s)
    if diff is not None and abs(diff) > _PROFILE_TOLERANCE:
        out.append(f"achieved request rates differ by {diff:+.0%} "
                   f"({b_total / base_data.duration_s:.1f}/s vs "
                   f"{c_total / cand_data.duration_s:.1f}/s): the load profiles differ")
    users = [p.run.meta.get("max_users") for p in base]
    if all(u for u in users) and cand.run.meta.get("max_users"):
        diff = _rel_diff(float(np.mean(users)), cand.run.meta["max_users"])
        if diff is not None and abs(diff) > _PROFILE_TOLERANCE:
            out.append(f"virtual users differ by {diff:+.0%} ({float(np.mean(users)):g} vs "
                       f"{cand.run.meta['max_users']:g})")
    names = [n for n in dict.fromkeys([*base_data.endpoints, *cand_data.endpoints])
             if n != ALL_ENDPOINTS]
    if b_total and c_total:
        shares = [(n, (base_data.endpoints[n].count if n in base_data.endpoints else 0) / b_total,
                   (cand_data.endpoints[n].count if n in cand_data.endpoints else 0) / c_total)
                  for n in names]
        moved = sum(abs(c - b) for _, b, c in shares) / 2
        if moved > _MIX_TOLERANCE:
            worst = max(shares, key=lambda s: abs(s[2] - s[1]))
            out.append(f"endpoint mix differs: {moved:.0%} of requests moved between endpoints "
                       f"(largest: {worst[0]} {worst[1]:.1%} -> {worst[2]:.1%})")
    for name in names:
        if name not in cand_data.endpoints or cand_data.endpoints[name].count == 0:
            out.append(f"endpoint {name} is missing from the candidate")
        elif name not in base_data.endpoints or base_data.endpoints[name].count == 0:
            out.append(f"endpoint {name} is new in the candidate (not in the baseline)")
    few: dict[str, list[str]] = {}
    for check in checks:
        if check.status == "insufficient_data" and "requests per run" in check.note:
            few.setdefault(check.metric, []).append(
                check.endpoint + (f"{{{check.slice}}}" if check.slice else ""))
    for metric, endpoints in few.items():
        out.append(f"too few requests for {metric} ({_need(checks, metric)}) on "
                   f"{', '.join(endpoints)}: insufficient_data")
    by_reason: dict[str, set[str]] = {}
    for check in checks:
        if check.method == "threshold-only":
            by_reason.setdefault(check.note, set()).add(
                check.endpoint if check.note == "no per-window data"
                else f"{check.endpoint} {check.metric}")
    if by_reason:
        reasons = "; ".join(f"{note} for {', '.join(sorted(items))}"
                            for note, items in sorted(by_reason.items()))
        out.append(f"threshold-only checks ({reasons}): tolerances applied to the tools' "
                   "summaries with no significance test (p_value null)")
    from_summaries = sorted({c.endpoint for c in checks if c.method == "summary"})
    if from_summaries:
        out.append(f"checks from summaries alone on {', '.join(from_summaries)}: their sampling "
                   "error is estimated from the reported percentiles and request counts, widened "
                   "for autocorrelation (method summary); raw outputs give sharper tests")
    return out


def _need(checks: Sequence[Check], metric: str) -> str:
    for check in checks:
        if check.metric == metric and "needs at least" in check.note:
            return check.note.split(" needs ", 1)[1]
    return "too few requests"


def _apply_slos(checks: Sequence[Check], config: CompareConfig, warnings: list[str]
                ) -> list[Check]:
    """Mark the checks that break an absolute SLO (the meaning: :func:`perfstats.slo.breaches`)."""
    out = []
    metrics = set(METRICS)
    for glob, objective in config.slos:
        if objective.aggregation not in metrics:
            warnings.append(f"SLO {objective} on {glob!r} is not checked by compare "
                            f"(compare checks {', '.join(METRICS)})")
    for check in checks:
        # Endpoint SLOs apply to whole-run HTTP checks; other series have [thresholds].
        broken = breaches(config.slos, endpoint=check.endpoint, aggregation=check.metric,
                          value=check.candidate) if check.kind == "http" and not check.slice else []
        if broken:
            note = f"breaks SLO {', '.join(map(str, broken))}" + (
                f"; {check.note}" if check.note else "")
            check = replace(check, status="slo_breach", note=note)
        out.append(check)
    return out


def _side_info(loaded: Sequence[_Loaded]) -> dict[str, Any]:
    first = loaded[0].run
    started = first.meta.get("started_at")
    return {
        "run_ids": [p.run.run_id for p in loaded],
        "tool": first.tool,
        "tool_version": first.meta.get("tool_version"),
        "grain": first.grain,
        "started_at": started.isoformat() if hasattr(started, "isoformat") else started,
        "duration_s": sum(p.duration_s for p in loaded),
        "window_s": loaded[0].window_s,
        "load_model": first.meta.get("load_model"),
        "labels": first.labels,
    }


def _refuse_nothing_to_compare(base: RunData, cand: RunData, config: CompareConfig) -> None:
    """Two runs without an endpoint in common (another API, or everything filtered out) have
    nothing to compare: refused, not a GO of empty checks."""
    base_names = [n for n in base.endpoints if n != ALL_ENDPOINTS]
    cand_names = [n for n in cand.endpoints if n != ALL_ENDPOINTS]
    filtered = bool(config.endpoints or config.ignore)
    if filtered and not base_names and not cand_names:
        raise InsufficientDataError("nothing to compare: no endpoint left after "
                                    "--endpoint/--ignore")
    if base_names and cand_names and not set(base_names) & set(cand_names):
        raise InsufficientDataError(
            f"nothing to compare: baseline and candidate share no endpoint (baseline "
            f"{_few(base_names)}; candidate {_few(cand_names)})")


def _few(names: Sequence[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def compare(
    baseline: RunLike | Sequence[RunLike],
    candidate: RunLike,
    *,
    config: CompareConfig | PathLike | None = None,
    db: DB = None,
    endpoints: Sequence[str] = (),
    ignore: Sequence[str] = (),
) -> Comparison:
    """Compare a candidate run with a baseline run (or a pool of baseline runs).

    For every endpoint and the whole run it checks p50, p95, p99, mean latency, throughput and
    error rate, with the strongest method the data allow (window block bootstrap on raw samples,
    window-level tests on per-window summaries, threshold-only on summaries; Fisher or z-test on
    error counts), adjusts over the families of checks (:mod:`perfstats.stats.procedure`: a false
    NO-GO at most alpha when nothing changed), and applies SLOs.

    Args:
        baseline: a :class:`~perfstats.Run`, a run id, a result path, or a list of them (pooled).
        candidate: the run under test, same forms.
        config: a :class:`~perfstats.config.CompareConfig`, a config file path, or None to use
            ``perfstats.toml`` / ``[tool.perfstats]`` found from the working directory up.
        db: the store that run ids refer to; result paths given without ``db`` are ingested into
            a throw-away in-memory store.
        endpoints: globs of endpoints to compare (added to the config's).
        ignore: globs of endpoints to leave out (added to the config's).

    Returns:
        The :class:`Comparison`.

    Raises:
        IngestError: a result file cannot be read.
        RunNotFoundError: a run id is not in the store.
        ConfigError: bad configuration.
        InsufficientDataError: nothing to compare (no endpoint in common, every endpoint
            filtered out, or no check with data on both sides).

    Example:
        >>> result = compare("data/k6/baseline", "data/k6/candidate")  # doctest: +SKIP
        >>> result.verdict  # doctest: +SKIP
        'NO-GO'
    """
    if isinstance(config, CompareConfig):
        if endpoints or ignore:
            config = replace(config, endpoints=tuple(config.endpoints) + tuple(endpoints),
                             ignore=tuple(config.ignore) + tuple(ignore))
    else:
        config = load_compare_config(config, endpoints=list(endpoints), ignore=list(ignore))
    items = list(baseline) if isinstance(baseline, Sequence) and not isinstance(baseline, str) \
        else [baseline]
    if not items:
        raise ValueError("baseline is empty")
    store = open_store(db) if db is not None else None
    runs = [item for item in (*items, candidate) if isinstance(item, Run)]
    # One read connection per store for the whole compare, not one per query.
    with reading(store, *(run.store for run in runs)):
        return _compare(items, candidate, config, store)


def _compare(items: Sequence[RunLike], candidate: RunLike, config: CompareConfig, db: DB
             ) -> Comparison:
    # The throw-away store of result paths given without ``db``, made when first needed.
    scratch = functools.cache(lambda: Store(":memory:"))
    base_runs = [_resolve(item, db, scratch) for item in items]
    cand_run = _resolve(candidate, db, scratch)
    loaded = _load_runs([*base_runs, cand_run], config)
    base_loaded, cand_loaded = loaded[:-1], loaded[-1]
    warnings: list[str] = []
    if len(base_loaded) > 1:
        warnings.append(f"baseline pools {len(base_loaded)} runs; their windows are resampled "
                        "together")
        shards = concurrent_shards(base_runs)
        if shards:
            warnings.append(shards)
    if any(p.run.run_id == cand_run.run_id for p in base_loaded):
        warnings.append("the candidate is also in the baseline")
    base_data = _side(base_loaded, config, warnings)
    cand_data = _side([cand_loaded], config, warnings)
    _refuse_nothing_to_compare(base_data, cand_data, config)
    # Custom metrics, checks and scenario slices enter the same list of checks.
    base_all = RunData({**base_data.endpoints, **_side_series(base_loaded, config)},
                       base_data.duration_s)
    cand_all = RunData({**cand_data.endpoints, **_side_series([cand_loaded], config)},
                       cand_data.duration_s)
    checks, shifts = common_shifts(drift_checks(base_all, cand_all, config.drift_settings()))
    warnings = _profile_warnings(base_loaded, cand_loaded, base_data, cand_data, checks) + warnings
    if shifts:  # most endpoints moved together: said first, before anything else
        warnings.insert(0, shifts[0].message())
    direction = _direction_warning([*base_loaded, cand_loaded])
    if direction:
        warnings.append(direction)
    unknown = sorted({m for part in (*base_loaded, cand_loaded) for m in part.unknown})
    if unknown:
        warnings.append(f"metrics of unknown kind not compared ({', '.join(unknown)}): a k6 CSV "
                        "carries no metric types; ingest the NDJSON or the summary with it")
    checks = _apply_slos(checks, config, warnings)
    if checks and all(c.status == "insufficient_data" for c in checks):
        raise InsufficientDataError(
            f"nothing to compare: none of the {len(checks)} checks has data on both sides")
    results = _thresholds(base_loaded[0], cand_loaded, config, warnings)
    checks += _threshold_checks(results)
    frame = pl.DataFrame([c.to_dict() for c in checks], schema=CHECK_SCHEMA) if checks \
        else pl.DataFrame(schema=CHECK_SCHEMA)
    # One order whatever order DuckDB returned the endpoints in: kinds as they come, endpoints
    # and slices by name, each series' metrics in the order they were checked.
    kinds = {kind: i for i, kind in enumerate(dict.fromkeys(frame["kind"]))}
    frame = frame.select(list(CHECK_SCHEMA)).with_columns(
        pl.col("kind").replace_strict(kinds, return_dtype=pl.Int64).alias("_kind")
    ).sort("_kind", "endpoint", "slice", maintain_order=True).drop("_kind")
    return Comparison(
        verdict=verdict(checks),
        checks=frame,
        warnings=tuple(warnings),
        baseline=_side_info(base_loaded),
        candidate=_side_info([cand_loaded]),
        settings=config.to_dict(),
        thresholds=results,
    )


def _thresholds(base_loaded: _Loaded, cand_loaded: _Loaded, config: CompareConfig,
                warnings: list[str]) -> pl.DataFrame:
    """``[thresholds]`` and the candidate's own declared thresholds, evaluated on the
    candidate (and, for context, on the baseline where it has the metric)."""
    base, cand = base_loaded.run, cand_loaded.run
    parts = []
    declared = declared_thresholds(cand.store, cand.run_id) if config.declared_thresholds else ()
    if not config.thresholds and not declared:
        return pl.DataFrame(schema=THRESHOLD_SCHEMA)
    # Each run's facts are read once, and its sampled clauses computed in one query.
    cand_run = RunFacts(cand.store, cand.run_id, meta=cand.meta, sampled=cand_loaded.sampled)
    cand_run.prefetch((*config.thresholds, *declared))
    if config.thresholds:
        parts.append(evaluate_facts(cand_run, config.thresholds))
    if declared:
        parts.append(evaluate_facts(cand_run, declared, strict=False))
    frame = pl.concat(parts)
    # On the baseline a threshold it cannot be evaluated on has no value.
    on_base = evaluate_facts(RunFacts(base.store, base.run_id, meta=base.meta,
                                      sampled=base_loaded.sampled), [
        Threshold(m, e) for m, e in frame.select("metric", "expression").iter_rows()],
        strict=False)
    frame = frame.with_columns(on_base["value"].alias("baseline"))
    frame = frame.select(list(THRESHOLD_SCHEMA))
    for row in frame.filter(pl.col("ok").is_null()).iter_rows(named=True):
        warnings.append(f"threshold {row['metric']} {row['expression']}: {row['note']}")
    differ = frame.filter(pl.col("tool_ok").is_not_null() & pl.col("ok").is_not_null()
                          & (pl.col("ok") != pl.col("tool_ok")))
    for row in differ.iter_rows(named=True):
        warnings.append(f"threshold {row['metric']} {row['expression']}: perfstats says "
                        f"{'pass' if row['ok'] else 'fail'} ({row['value']:.6g}), "
                        f"{cand.tool} said {'pass' if row['tool_ok'] else 'fail'}")
    return frame


def _threshold_checks(results: pl.DataFrame) -> list[Check]:
    """The ``[thresholds]`` of the configuration as checks: a failed one fails the gate."""
    out = []
    for row in results.filter(pl.col("source") == "config").iter_rows(named=True):
        b, c = row["baseline"], row["value"]
        out.append(Check(
            endpoint=row["metric"], kind="threshold", slice="", direction="",
            metric=row["expression"], baseline=b, candidate=c,
            change_abs=None if b is None or c is None else c - b,
            change_pct=None if b is None or c is None or not b else 100.0 * (c / b - 1.0),
            ci_low=None, ci_high=None, ci_unit="", p_value=None, p_adjusted=None,
            method=f"threshold ({row['method']})",
            status="ok" if row["ok"] else "slo_breach", detectable=None,
            n_baseline=0, n_candidate=int(row["count"] or 0),
            note=("" if row["ok"] else f"fails threshold {row['expression']} on "
                  f"{row['metric']}") + (f"; {row['note']}" if row["note"] else "")))
    return out
