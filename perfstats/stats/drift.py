"""The drift gate on arrays: every (endpoint, metric) check between two runs, the testing design,
statuses.

For each endpoint present in either run and each metric (p50, p95, p99, mean, throughput,
error_rate) the best method the data allow is used:

- ``block-bootstrap``: both runs have per-window histograms of raw samples (k6 points, Artillery 1.x
  latencies). Quantile, mean and throughput ratios with a window bootstrap (:mod:`.bootstrap`).
- ``window-level``: per-window summaries only (Artillery 2.x periods, Locust history rows). Windows
  as observations (:mod:`.windowlevel`); the p-value is a Welch test.
- ``summary``: one summary per run (Locust stats CSV, k6 handleSummary, an aggregate) with the
  request count: the standard error of each figure is estimated from the summary itself
  (:mod:`.sampling_error`), so that sampling noise is not taken for change.
- ``threshold-only``: a summary whose sampling error cannot be estimated. The tolerance is applied
  to the point change; no interval, ``p_value`` is None.
- ``fisher-exact`` / ``z-test``: error rates, from the request and failure counts
  (:mod:`.proportions`).

A check is a regression when its change is **beyond the tolerance** (the point estimate; for
latency also larger than the absolute floor) **and significant**: its one-sided p-value of H0
"the candidate is worse by at most 0.45 of the tolerance" (``null_fraction``), adjusted over all
checks by the testing design of :mod:`.procedure` (one primary check per family,
Benjamini-Hochberg across the families' primaries, the other checks gatekept behind their
primary), is at most alpha. The design and its calibration by simulation are in docs/compare.md.

Intervals are two-sided at ``1 - 2 * alpha`` (90 % by default), so each bound is a one-sided
``1 - alpha`` bound, and an interval inside the tolerance band is a two one-sided tests (TOST)
equivalence at alpha (``ok``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from statistics import NormalDist
from typing import Any

import numpy as np

from perfstats.stats.bootstrap import (
    HistogramBootstrap,
    Replicates,
    bootstrap_histograms,
    log_ratio_of_sums,
    one_blas_thread,
    seeded_weights,
    window_dependence,
)
from perfstats.stats.decision import FAILING, classify, classify_threshold, detectable_change
from perfstats.stats.histogram import WindowHistogram, quantiles_from_counts
from perfstats.stats.procedure import ANY, gatekept_adjusted
from perfstats.stats.proportions import compare_error_rates
from perfstats.stats.sampling_error import DESIGN_EFFECT, mean_log_se, percentile_log_se
from perfstats.stats.windowlevel import (
    WindowSummaries,
    min_window_count,
    window_mean_test,
    window_quantile_test,
)

DEFAULT_TOLERANCES: dict[str, float] = {
    "p50": 0.10,
    "p95": 0.10,
    "p99": 0.10,
    "mean": 0.10,
    "throughput": 0.10,
    "error_rate": 0.005,
    "rate": 0.005,
    "per_second": 0.10,
}
"""Practical margins: relative for latency and custom Trends (+10 %), throughput and counters per
second (10 % in the worse direction), absolute for the error rate and other Rates (0.5
percentage points)."""

LATENCY_METRICS = ("p50", "p95", "p99", "mean")
ALL_ENDPOINTS = "ALL"
"""The whole-run entry's name (as in the store)."""
AUTO_WINDOWS = 30
"""A run is cut into about this many windows unless a window length is given."""
METRICS = (*LATENCY_METRICS, "throughput", "error_rate")
"""The statistics of an HTTP endpoint (kind ``http``)."""
KIND_METRICS: dict[str, tuple[str, ...]] = {
    "http": METRICS,
    "trend": LATENCY_METRICS,
    "rate": ("rate",),
    "check": ("rate",),
    "counter": ("per_second",),
}
"""The statistics compared for each kind of series: HTTP endpoints, custom Trends, Rates, checks
(a pass rate) and Counters (per second)."""
ALL_METRICS = tuple(dict.fromkeys(m for ms in KIND_METRICS.values() for m in ms))
DIRECTIONS = ("higher", "lower", "either")
"""When a series is worse: ``higher`` (latency, errors), ``lower`` (success rates, work done per
second) or ``either`` (not known: a change either way is tested, two-sided)."""
_PROPORTIONS = frozenset({"error_rate", "rate"})
_QUANTILE = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


def auto_window_s(duration_s: float) -> float:
    """Default window length: whole seconds, about :data:`AUTO_WINDOWS` windows per run."""
    return max(1.0, float(round(duration_s / AUTO_WINDOWS)))


@dataclass(frozen=True)
class EndpointData:
    """What one run holds about one endpoint (or the whole run).

    Attributes:
        count: requests.
        errors: failed requests; None when the tool does not report them.
        summary: the tool's whole-run figures in ms (``p50``, ``p95``, ``p99``, ``mean``), used for
            threshold-only checks and as the reported values of window-level checks.
        histogram: per-window histograms of raw samples, when the tool gave samples.
        windows: per-window summaries, when the tool gave only those.
        kind: ``http`` (an endpoint), ``trend``, ``rate``, ``check`` or ``counter`` (see
            :data:`KIND_METRICS`). For a rate or a check, ``count`` is the number of values and
            ``errors`` the number of true (non-zero) ones, e.g. passes.
        name: the name shown (default: the key of the series in :attr:`RunData.endpoints`).
        slice: ``""`` for the whole run, else the tag it is cut by (``scenario:booking_flow``).
        direction: when the series is worse, one of :data:`DIRECTIONS`.
        floor: whether ``floor_ms`` applies (latencies and time Trends; not other Trends).
        amounts: for a counter, ``(per-window sums, window lengths in s)`` when there are
            windows; ``amount`` is its whole-run total.
    """

    count: int
    errors: int | None
    summary: Mapping[str, float] = field(default_factory=dict)
    histogram: WindowHistogram | None = None
    windows: WindowSummaries | None = None
    kind: str = "http"
    name: str | None = None
    slice: str = ""
    direction: str = "higher"
    floor: bool = True
    amount: float | None = None
    amounts: tuple[np.ndarray, np.ndarray] | None = None


@dataclass(frozen=True)
class RunData:
    """One run: its endpoints and its steady-state duration in seconds."""

    endpoints: Mapping[str, EndpointData]
    duration_s: float


@dataclass(frozen=True)
class DriftSettings:
    """Settings of the drift gate (the defaults are the calibrated ones, see docs/compare.md).

    Attributes:
        alpha: family-wise error rate across all checks (the chance of a false NO-GO), and
            one-sided level of each interval bound.
        tolerances: per metric margin (see :data:`DEFAULT_TOLERANCES`); missing metrics use it.
        floor_ms: absolute latency change that is never a regression, however large in per cent.
        resamples: bootstrap resamples per run.
        seed: seed of the bootstrap generator; equal inputs and seed give equal answers.
        min_tail: a ``q`` percentile needs ``min_tail / (1 - q)`` requests per run (1000 for p99).
        min_window_tail: in window-level tests a window's ``q`` percentile counts when the window
            has ``min_window_tail / (1 - q)`` requests (100 for p95); windows are count-weighted.
        min_windows: fewest windows with requests for a bootstrap or window-level test.
        null_fraction: each p-value tests H0 "the change is at most this fraction of the
            tolerance": 0.45 of it by default, the run-to-run variation that a tolerance set at
            two to three times it is meant to absorb, chosen by simulation (docs/compare.md,
            "The question each p-value answers").
    """

    alpha: float = 0.05
    tolerances: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    floor_ms: float = 2.0
    resamples: int = 2000
    seed: int = 0
    min_tail: float = 10.0
    min_window_tail: float = 5.0
    min_windows: int = 5
    null_fraction: float = 0.45

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {self.alpha}")
        if self.resamples < 100:
            raise ValueError(f"resamples must be at least 100, got {self.resamples}")
        unknown = set(self.tolerances) - set(ALL_METRICS)
        if unknown:
            raise ValueError(f"unknown metrics in tolerances: {sorted(unknown)}")
        if any(v < 0 for v in self.tolerances.values()) or self.floor_ms < 0:
            raise ValueError("tolerances and floor_ms must be non-negative")
        if not 0.0 <= self.null_fraction <= 1.0:
            raise ValueError(f"null_fraction must be in [0, 1], got {self.null_fraction}")

    def tolerance(self, metric: str) -> float:
        """The margin of ``metric``."""
        return float(self.tolerances.get(metric, DEFAULT_TOLERANCES[metric]))


@dataclass(frozen=True)
class Check:
    """One (endpoint, metric) comparison.

    ``baseline``/``candidate`` are in ms, req/s or 0-1 (error rate); ``change_abs`` is their
    difference and ``change_pct`` their relative change. ``ci_low``/``ci_high`` bound the change:
    in per cent for latency and throughput, in percentage points for the error rate (``ci_unit``).
    ``kind``, ``slice`` and ``direction`` are those of the series (:class:`EndpointData`); for a
    custom metric ``endpoint`` is the metric's name, for a check ``GROUP check name``.
    ``detectable`` is the smallest change (same unit, in the worse direction) that this data would
    flag as a regression with 80 % power if it were the only one.
    ``tolerance`` is the margin the change was held against, in the interval's unit and the worse
    direction (+10 for latency, -10 for throughput, +0.5 pp for the error rate); ``floor_ms`` the
    absolute latency floor a regression must also exceed (None where it does not apply).
    ``family`` is the check's family in the testing design (:mod:`.procedure`: ``latency``,
    ``errors`` and ``throughput`` per endpoint; one per custom series). ``change_vs_common_pct`` is
    the change relative to the shift most endpoints share (:mod:`.common_mode`). For
    ``window-level`` checks ``baseline``/``candidate`` are the tool's whole-run figures while
    ``change_pct`` and the interval compare the count-weighted log window percentiles, so the two
    can differ by a few per cent.
    """

    endpoint: str
    kind: str
    slice: str
    direction: str
    metric: str
    baseline: float | None
    candidate: float | None
    change_abs: float | None
    change_pct: float | None
    ci_low: float | None
    ci_high: float | None
    ci_unit: str
    p_value: float | None
    p_adjusted: float | None
    method: str
    status: str
    detectable: float | None
    n_baseline: int
    n_candidate: int
    note: str
    tolerance: float | None = None
    floor_ms: float | None = None
    family: str = ""
    change_vs_common_pct: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready: numpy scalars as Python ones, non-finite numbers as None)."""
        # Every field is a scalar: no deep copy (dataclasses.asdict) needed.
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


@dataclass(frozen=True)
class _Pending:
    """A check before the adjustment: values on the oriented scale (positive = worse)."""

    endpoint: str
    metric: str
    baseline: float | None
    candidate: float | None
    n_baseline: int
    n_candidate: int
    method: str
    estimate: float | None = None
    kind: str = "http"
    slice: str = ""
    direction: str = "higher"
    sign: float = 1.0
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    se: float | None = None
    margin: float | None = None
    status: str | None = None
    note: str = ""
    floor_ms: float | None = None
    live: bool = True


class _Weights:
    """Bootstrap weights per run (0 baseline, 1 candidate) and window count, shared by all
    endpoints of the run."""

    def __init__(self, settings: DriftSettings) -> None:
        self.settings = settings

    def get(self, side: int, n_windows: int) -> np.ndarray:
        return seeded_weights(self.settings.seed, side, n_windows, self.settings.resamples)

    def pair(self, n_base: int, n_cand: int) -> tuple[np.ndarray, np.ndarray]:
        return self.get(0, n_base), self.get(1, n_cand)


def _active_windows(counts: np.ndarray) -> int:
    return int(np.count_nonzero(np.asarray(counts) > 0))


def window_summaries(hist: WindowHistogram) -> WindowSummaries:
    """Per-window p50/p95/p99 and mean of a histogram, for comparing it with a summary-only run."""
    n = hist.window_counts
    per_window = quantiles_from_counts(hist.counts, hist.buckets, list(_QUANTILE.values()))
    values = {name: per_window[:, k] for k, name in enumerate(_QUANTILE)}
    with np.errstate(divide="ignore", invalid="ignore"):
        values["mean"] = np.where(n > 0, np.asarray(hist.sums) / n, np.nan)
    return WindowSummaries(n, values, hist.errors, hist.lengths)


def as_windows(data: EndpointData) -> WindowSummaries | None:
    """The per-window summaries of ``data``: its own, else from its histograms, else None."""
    if data.windows is not None:
        return data.windows
    return None if data.histogram is None else window_summaries(data.histogram)


def _summary_values(data: EndpointData) -> dict[str, float]:
    """Whole-run latency figures: the tool's own, else from the histogram or the windows."""
    values = {k: float(v) for k, v in data.summary.items() if v is not None}
    if data.histogram is not None:
        q = data.histogram.quantiles(list(_QUANTILE.values()))
        for k, name in enumerate(_QUANTILE):
            values.setdefault(name, float(q[k]))
        if data.histogram.total:
            values.setdefault("mean", float(np.sum(data.histogram.sums) / data.histogram.total))
    elif data.windows is not None and "mean" in data.windows.values:
        n = np.asarray(data.windows.counts, dtype=np.float64)
        m = np.asarray(data.windows.values["mean"], dtype=np.float64)
        ok = np.isfinite(m) & (n > 0)
        if ok.any():
            values.setdefault("mean", float(np.sum(n[ok] * m[ok]) / n[ok].sum()))
    return values


def _latency_margin(settings: DriftSettings, metric: str) -> float:
    return math.log1p(settings.tolerance(metric))


FAMILIES = {"p50": "latency", "p95": "latency", "p99": "latency", "mean": "latency",
            "throughput": "throughput", "error_rate": "errors"}
"""The family of each metric in the testing design (:mod:`.procedure`), one family per series
and kind: an endpoint's percentiles and mean all answer "did it get slower?", its error rate "did
it fail more?", its throughput "did it serve less?". Other metrics (a custom Rate, a Counter)
form a family of their own."""


def _throughput_margin(settings: DriftSettings, metric: str = "throughput") -> float:
    return -math.log1p(-min(settings.tolerance(metric), 0.999))


@dataclass(frozen=True)
class _Pair:
    """One endpoint in both runs, and what every check of it needs."""

    name: str
    base: EndpointData
    cand: EndpointData
    durations: tuple[float, float]
    settings: DriftSettings
    weights: _Weights
    dependence: float = 1.0
    rate_dependence: float = 1.0

    @property
    def counts(self) -> tuple[int, int]:
        return self.base.count, self.cand.count

    @property
    def sign(self) -> float:
        """+1 when higher is worse, -1 when lower is worse."""
        return -1.0 if self.base.direction == "lower" else 1.0

    def stat(self, metric: str, values: tuple[float | None, float | None], method: str,
             reps: Replicates, margin: float, *, p: float | None = None,
             sign: float = 1.0) -> _Pending:
        """A check with an interval; ``p`` defaults to the bootstrap p-value of H0: oriented
        change <= ``null_fraction * margin``. ``sign = -1`` orients a metric where lower is
        worse. The replicates are first widened for the correlation between adjacent windows."""
        reps = reps.widened(self.rate_dependence if metric in ("throughput", "per_second")
                            else self.dependence)
        low, high = reps.interval(1.0 - 2.0 * self.settings.alpha)
        null = self.settings.null_fraction * margin
        if sign < 0:
            low, high = -high, -low
            p = reps.p_less(-null) if p is None else p
        else:
            p = reps.p_greater(null) if p is None else p
        return _Pending(self.name, metric, *values, *self.counts, method,
                        estimate=sign * reps.estimate, low=low, high=high, p_value=p,
                        se=reps.se, margin=margin, sign=sign)

    def threshold(self, metric: str, values: tuple[float | None, float | None], margin: float,
                  note: str, *, sign: float = 1.0) -> _Pending:
        """A check of the point change only (no interval, no p-value)."""
        b, c = values
        if b is None or c is None or not (b > 0 and c > 0):
            return _Pending(self.name, metric, b, c, *self.counts, "threshold-only",
                            status="insufficient_data", note="no value reported", sign=sign)
        return _Pending(self.name, metric, b, c, *self.counts, "threshold-only",
                        estimate=sign * math.log(c / b), margin=margin, note=note, sign=sign)

    def latency(self, boot: HistogramBootstrap | None,
                windows: tuple[WindowSummaries | None, WindowSummaries | None]) -> list[_Pending]:
        """p50, p95, p99 and mean."""
        settings = self.settings
        sums_b, sums_c = _summary_values(self.base), _summary_values(self.cand)
        wb, wc = windows
        wweights = self.weights.pair(wb.n_windows, wc.n_windows) \
            if wb is not None and wc is not None else None
        out = []
        for metric in LATENCY_METRICS:
            q = _QUANTILE.get(metric, 0.5)
            need = min_window_count(q, settings.min_tail)
            values = (sums_b.get(metric), sums_c.get(metric))
            if min(self.counts) < need:
                out.append(_Pending(self.name, metric, *values, *self.counts, "none",
                                    status="insufficient_data",
                                    note=f"{metric} needs at least {need} requests per run"))
                continue
            margin = _latency_margin(settings, metric)
            sign = self.sign
            floor = settings.floor_ms if self.base.floor else None
            if boot is not None:
                out.append(replace(self.stat(
                    metric, (boot.baseline[metric], boot.candidate[metric]), "block-bootstrap",
                    boot.log_ratios[metric], margin, sign=sign), floor_ms=floor))
                continue
            test = None
            if wb is not None and wc is not None and wweights is not None:
                if metric == "mean":
                    test = window_mean_test(wb, wc, wweights, min_windows=settings.min_windows)
                else:
                    test = window_quantile_test(wb, wc, metric, q, wweights,
                                                min_tail=settings.min_window_tail,
                                                min_windows=settings.min_windows)
            if test is not None:
                null = settings.null_fraction * margin
                welch = replace(test.welch, se=test.welch.se * self.dependence)
                p = welch.p_greater(null) if sign > 0 else 1.0 - welch.p_greater(-null)
                check = replace(self.stat(metric, values, "window-level", test.log_ratio,
                                          margin, p=p, sign=sign), floor_ms=floor)
                if metric != "mean":
                    used = f"{test.windows[0]} and {test.windows[1]} windows"
                    check = replace(check, note=f"change of the count-weighted window {metric} "
                                                f"({used})")
                out.append(check)
            else:
                per_window = min_window_count(q, settings.min_window_tail)
                why = ("no per-window data" if wb is None or wc is None else
                       f"fewer than {settings.min_windows} windows with {per_window}+ requests")
                out.append(replace(self.from_summaries(metric, q, values, margin, why, sign),
                                   floor_ms=floor))
        return out

    def from_summaries(self, metric: str, q: float, values: tuple[float | None, float | None],
                       margin: float, why: str, sign: float) -> _Pending:
        """A check of the tools' whole-run figures with their sampling error estimated from the
        summaries (method ``summary``); threshold-only when it cannot be estimated."""
        b, c = values
        ses = []
        for data in (self.base, self.cand):
            figures = _summary_values(data)
            ses.append(mean_log_se(data.count, figures) if metric == "mean"
                       else percentile_log_se(q, data.count, figures))
        if b is None or c is None or not (b > 0 and c > 0) or None in ses:
            return self.threshold(metric, values, margin, why, sign=sign)
        se = DESIGN_EFFECT * math.hypot(*(float(v) for v in ses if v is not None))
        return self.normal(metric, values, sign * math.log(c / b), se, margin, sign,
                           f"sampling error estimated from the summaries ({why})")

    def normal(self, metric: str, values: tuple[float | None, float | None], estimate: float,
               se: float, margin: float, sign: float, note: str) -> _Pending:
        """A ``summary`` check: an oriented estimate with a normal standard error."""
        z = NormalDist().inv_cdf(1.0 - self.settings.alpha)
        null = self.settings.null_fraction * margin
        p = 1.0 - NormalDist().cdf((estimate - null) / se) if se > 0 else float(estimate <= null)
        return _Pending(self.name, metric, *values, *self.counts, "summary", estimate=estimate,
                        low=estimate - z * se, high=estimate + z * se, p_value=p, se=se,
                        margin=margin, sign=sign, note=note)

    def throughput(self, from_histograms: bool,
                   windows: tuple[WindowSummaries | None, WindowSummaries | None]) -> _Pending:
        """Achieved request rate: requests / duration, with a window bootstrap of its spread."""
        settings = self.settings
        margin = _throughput_margin(settings)
        rates = (self.base.count / self.durations[0], self.cand.count / self.durations[1])
        if from_histograms:
            sides = [(d.histogram.window_counts, d.histogram.lengths)
                     for d in (self.base, self.cand) if d.histogram is not None]
            method = "block-bootstrap"
        elif windows[0] is not None and windows[1] is not None:
            sides = [(w.counts, w.lengths) for w in windows if w is not None]
            method = "window-level"
        elif min(self.counts) > 0:
            # Request counts alone: Poisson sampling error, widened by the design effect.
            se = DESIGN_EFFECT * math.sqrt(1.0 / self.counts[0] + 1.0 / self.counts[1])
            return self.normal("throughput", rates, -math.log(rates[1] / rates[0]), se, margin,
                               -1.0, "sampling error estimated from the request counts")
        else:
            return self.threshold("throughput", rates, margin, "no per-window data", sign=-1.0)
        if min(_active_windows(c) for c, _ in sides) < settings.min_windows:
            return self.threshold("throughput", rates, margin,
                                  f"fewer than {settings.min_windows} windows", sign=-1.0)
        # First and last windows are often partial (ramp-up, a short last period) and would
        # inflate the spread of the per-window rates: only interior windows are resampled.
        trimmed = [(c[1:-1], n[1:-1]) if len(c) >= settings.min_windows + 2 else (c, n)
                   for c, n in sides]
        spread = log_ratio_of_sums(
            (trimmed[0][0], trimmed[1][0]), (trimmed[0][1], trimmed[1][1]),
            self.weights.pair(len(trimmed[0][0]), len(trimmed[1][0])))
        point = math.log(rates[1] / rates[0])
        reps = Replicates(point, point + spread.replicates - spread.estimate)
        return self.stat("throughput", rates, method, reps, margin, sign=-1.0)

    def error_rate(self) -> _Pending:
        """Failed share of requests (Fisher or z-test, Newcombe interval)."""
        margin = self.settings.tolerance("error_rate")
        if self.base.errors is None or self.cand.errors is None:
            return _Pending(self.name, "error_rate", None, None, *self.counts, "none",
                            status="insufficient_data", note="failures not reported")
        err = compare_error_rates(self.base.errors, self.base.count, self.cand.errors,
                                  self.cand.count, confidence=1.0 - 2.0 * self.settings.alpha,
                                  margin=self.settings.null_fraction * margin)
        # With no failure in either run the exact test cannot reject (Tarone): not counted.
        live = self.base.errors + self.cand.errors > 0
        return _Pending(self.name, "error_rate", err.baseline, err.candidate, *self.counts,
                        err.method, estimate=err.difference, low=err.ci_low, high=err.ci_high,
                        p_value=err.p_beyond, se=err.se, margin=margin, live=live)

    def proportion(self) -> _Pending:
        """A Rate (or a check's pass rate): the share of true values, tested as a proportion
        whose bad side is the true values (higher is worse) or the false ones (lower is
        worse)."""
        margin = self.settings.tolerance("rate")
        if self.base.errors is None or self.cand.errors is None:
            return _Pending(self.name, "rate", None, None, *self.counts, "none",
                            status="insufficient_data", note="no pass/fail counts")
        (t_b, n_b), (t_c, n_c) = (self.base.errors, self.base.count), \
            (self.cand.errors, self.cand.count)
        sign = self.sign
        bad_b, bad_c = (t_b, t_c) if sign > 0 else (n_b - t_b, n_c - t_c)
        err = compare_error_rates(bad_b, n_b, bad_c, n_c,
                                  confidence=1.0 - 2.0 * self.settings.alpha,
                                  margin=self.settings.null_fraction * margin)
        return _Pending(self.name, "rate", t_b / n_b, t_c / n_c, *self.counts, err.method,
                        estimate=err.difference, low=err.ci_low, high=err.ci_high,
                        p_value=err.p_beyond, se=err.se, margin=margin, sign=sign,
                        live=bad_b + bad_c > 0)

    def per_second(self) -> _Pending:
        """A counter's total per second, with a window bootstrap of its spread when both runs
        have per-window sums."""
        settings = self.settings
        sign = self.sign
        margin = _latency_margin(settings, "per_second") if sign > 0 \
            else _throughput_margin(settings, "per_second")
        rates = tuple(None if d.amount is None else d.amount / t
                      for d, t in zip((self.base, self.cand), self.durations, strict=True))
        values = (rates[0], rates[1])
        sides = [d.amounts for d in (self.base, self.cand)]
        if values[0] is not None and values[1] is not None and _events(self.base, self.cand):
            return self._poisson(values, margin, sign)
        if sides[0] is None or sides[1] is None or values[0] is None or values[1] is None:
            amounts = [d.amount for d in (self.base, self.cand)]
            if all(a is not None and a > 0 and float(a).is_integer() for a in amounts) and \
                    values[0] is not None and values[1] is not None:
                # A count of events from the summaries: Poisson sampling error, widened by the
                # design effect.
                se = DESIGN_EFFECT * math.sqrt(sum(1.0 / float(a) for a in amounts if a))
                return self.normal("per_second", values, sign * math.log(values[1] / values[0]),
                                   se, margin, sign, "sampling error of the counts (Poisson)")
            return self.threshold("per_second", values, margin, "no per-window data",
                                  sign=sign)
        if min(_active_windows(a) for a, _ in sides) < settings.min_windows:
            return self.threshold("per_second", values, margin,
                                  f"fewer than {settings.min_windows} windows", sign=sign)
        if not (values[0] > 0 and values[1] > 0):
            return self.threshold("per_second", values, margin, "", sign=sign)
        trimmed = [(a[1:-1], t[1:-1]) if len(a) >= settings.min_windows + 2 else (a, t)
                   for a, t in sides]
        spread = log_ratio_of_sums(
            (trimmed[0][0], trimmed[1][0]), (trimmed[0][1], trimmed[1][1]),
            self.weights.pair(len(trimmed[0][0]), len(trimmed[1][0])))
        point = math.log(values[1] / values[0])
        reps = Replicates(point, point + spread.replicates - spread.estimate)
        return self.stat("per_second", values, "block-bootstrap", reps, margin, sign=sign)

    def _poisson(self, values: tuple[float, float], margin: float, sign: float) -> _Pending:
        """A counter of rare events (a few hundred per run at most): the exact conditional
        test of two Poisson rates. Given ``n`` events in both runs, the candidate's share is
        binomial; H0 "the rate ratio is not worse than the margin" is tested on it, and the
        Clopper-Pearson interval of the share gives the interval of the ratio."""
        from scipy import stats

        a_b, a_c = int(self.base.amount or 0), int(self.cand.amount or 0)
        t_b, t_c = self.durations
        n = a_b + a_c
        ratio0 = math.exp(sign * margin)  # the rate ratio at the margin
        share0 = ratio0 * t_c / (t_b + ratio0 * t_c)
        p = float(stats.binom.sf(a_c - 1, n, share0) if sign > 0
                  else stats.binom.cdf(a_c, n, share0))
        level = 2.0 * self.settings.alpha
        lo = stats.beta.ppf(level / 2, a_c, n - a_c + 1) if a_c > 0 else 0.0
        hi = stats.beta.ppf(1 - level / 2, a_c + 1, n - a_c) if a_c < n else 1.0

        def log_ratio(share: float) -> float:
            share = min(max(share, 1e-9), 1 - 1e-9)
            return math.log(share / (1.0 - share) * t_b / t_c)

        # The observed ratio; with no event on one side, half an event (a finite estimate).
        estimate = math.log(max(a_c, 0.5) / max(a_b, 0.5) * t_b / t_c)
        low, high = log_ratio(float(lo)), log_ratio(float(hi))
        if sign < 0:
            low, high = -high, -low
        return _Pending(self.name, "per_second", *values, *self.counts, "poisson-exact",
                        estimate=sign * estimate, low=low, high=high, p_value=p,
                        se=math.sqrt(1.0 / (a_b + 0.5) + 1.0 / (a_c + 0.5)), margin=margin,
                        sign=sign)

    def checks(self, boot: HistogramBootstrap | None,
               windows: tuple[WindowSummaries | None, WindowSummaries | None]) -> list[_Pending]:
        """Every check of this series, by its kind."""
        kind = self.base.kind
        if kind == "http":
            return [*self.latency(boot, windows), self.throughput(boot is not None, windows),
                    self.error_rate()]
        if kind == "trend":
            return self.latency(boot, windows)
        if kind in ("rate", "check"):
            return [self.proportion()]
        if kind == "counter":
            return [self.per_second()]
        raise ValueError(f"unknown kind of series {kind!r}")


POISSON_EVENTS = 500
"""A counter whose per-window sums are whole numbers and whose total is at most this in both
runs is compared as a rate of rare events (exact Poisson test), not by window bootstrap: with
a few events per window most windows are empty and a bootstrap of them is rough."""


def _events(base: EndpointData, cand: EndpointData) -> bool:
    totals = [d.amount for d in (base, cand)]
    if any(t is None or t < 0 or t > POISSON_EVENTS or t != int(t) for t in totals):
        return False
    return all(d.amounts is None or np.all(np.mod(d.amounts[0], 1.0) == 0.0)
               for d in (base, cand))


def _endpoint_checks(
    name: str,
    base: EndpointData | None,
    cand: EndpointData | None,
    durations: tuple[float, float],
    settings: DriftSettings,
    weights: _Weights,
) -> list[_Pending]:
    like = base if base is not None else cand
    assert like is not None
    label = like.name or name
    tags = {"kind": like.kind, "slice": like.slice, "direction": like.direction}
    if base is None or cand is None or base.count == 0 or cand.count == 0:
        missing = "baseline" if base is None or base.count == 0 else "candidate"
        what = "requests" if like.kind == "http" else "values"
        return [
            _Pending(label, metric, None, None, base.count if base else 0,
                     cand.count if cand else 0, "none", status="insufficient_data",
                     note=f"no {what} in the {missing}", **tags)
            for metric in KIND_METRICS[like.kind]
        ]
    if like.direction == "either":
        # Not known which way is worse: both one-sided tests, the observed direction kept and
        # its p-value doubled (a two-sided test).
        up = _endpoint_checks(name, replace(base, direction="higher"),
                              replace(cand, direction="higher"), durations, settings, weights)
        down = _endpoint_checks(name, replace(base, direction="lower"),
                                replace(cand, direction="lower"), durations, settings, weights)
        both = []
        for hi, lo in zip(up, down, strict=True):
            pick = lo if (lo.estimate or 0.0) > (hi.estimate or 0.0) else hi
            p = None if pick.p_value is None else min(1.0, 2.0 * pick.p_value)
            both.append(replace(pick, p_value=p, direction="either"))
        return both
    pair = _Pair(label, base, cand, durations, settings, weights, *_dependence(base, cand))
    boot: HistogramBootstrap | None = None
    hb, hc = base.histogram, cand.histogram
    if (
        hb is not None and hc is not None
        and min(_active_windows(hb.window_counts), _active_windows(hc.window_counts))
        >= settings.min_windows
    ):
        boot = bootstrap_histograms(hb, hc, weights.pair(hb.n_windows, hc.n_windows),
                                    list(_QUANTILE.values()))
    windows = (None, None) if boot is not None else (as_windows(base), as_windows(cand))
    return [replace(p, **tags) for p in pair.checks(boot, windows)]


def _dependence(base: EndpointData, cand: EndpointData) -> tuple[float, float]:
    """Standard-error factors for correlated adjacent windows (:func:`.window_dependence`): of
    the per-window mean log latency, and of the per-window request rate."""
    wins = [w for w in (as_windows(base), as_windows(cand)) if w is not None]
    if not wins:
        return 1.0, 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        level = [np.log(w.column("mean") if np.isfinite(w.column("mean")).any()
                        else w.column("p50")) for w in wins]
        rates = [w.counts / np.where(w.lengths > 0, w.lengths, np.nan) for w in wins]
    return window_dependence(*level), window_dependence(*rates)


def _finish(pending: _Pending, p_adjusted: float | None, settings: DriftSettings,
            families: int, gate: tuple[str, float] | None = None) -> Check:
    status, note = pending.status, pending.note
    ci_low = ci_high = detectable = None
    relative = pending.metric not in _PROPORTIONS
    sign = pending.sign

    def shown(oriented: float) -> float:
        # Oriented scale -> reported unit: % change for ratios, percentage points for rates.
        return 100.0 * math.expm1(sign * oriented) if relative else 100.0 * sign * oriented

    b, c = pending.baseline, pending.candidate
    floor = pending.floor_ms
    if status is None and pending.estimate is not None and pending.margin is not None:
        if pending.low is None or pending.high is None or p_adjusted is None:
            status = classify_threshold(pending.estimate, pending.margin)
        else:
            # The absolute floor, in ms of the baseline: a regression must exceed it, and an
            # interval within it (and not wholly beyond the tolerance) is ok.
            below_floor = within_floor = False
            if floor is not None and b is not None and b > 0:
                below_floor = b * math.expm1(pending.estimate) <= floor
                within_floor = (b * -math.expm1(pending.low) < floor
                                and b * math.expm1(pending.high) < floor)
            status = classify(pending.estimate, pending.low, pending.high, pending.margin,
                              p_adjusted, settings.alpha, below_floor=below_floor,
                              within_floor=within_floor)
            low, high = shown(pending.low), shown(pending.high)
            ci_low, ci_high = min(low, high), max(low, high)
            if pending.se is not None and math.isfinite(pending.se):
                detectable = shown(detectable_change(
                    pending.se, pending.margin, settings.alpha / max(families, 1),
                    null=settings.null_fraction * pending.margin))
            if status == "inconclusive":
                reason = _inconclusive_note(pending, p_adjusted, settings, families,
                                            below_floor, detectable, gate)
                note = reason + (f"; {note}" if note else "")
    change_abs = c - b if b is not None and c is not None else None
    change_pct = None
    if relative and pending.estimate is not None:
        change_pct = shown(pending.estimate)
    elif b is not None and c is not None and b > 0:
        change_pct = 100.0 * (c / b - 1.0)
    return Check(
        endpoint=pending.endpoint, kind=pending.kind, slice=pending.slice,
        direction=pending.direction, metric=pending.metric, baseline=b, candidate=c,
        change_abs=change_abs, change_pct=change_pct, ci_low=ci_low, ci_high=ci_high,
        ci_unit="%" if relative else "pp", p_value=pending.p_value, p_adjusted=p_adjusted,
        method=pending.method, status=status or "insufficient_data", detectable=detectable,
        n_baseline=pending.n_baseline, n_candidate=pending.n_candidate, note=note,
        tolerance=round(shown(pending.margin if pending.margin is not None else _nominal_margin(
            settings, pending.metric)), 6),
        floor_ms=floor, family=FAMILIES.get(pending.metric, pending.metric),
    )


def _inconclusive_note(pending: _Pending, p_adjusted: float, settings: DriftSettings,
                       families: int, below_floor: bool, detectable: float | None,
                       gate: tuple[str, float] | None) -> str:
    """Why a check is neither a regression nor within tolerance; ``gate`` is what gates the
    check (a description and its adjusted p-value), None for a family's primary."""
    unit = "%" if pending.metric not in _PROPORTIONS else " pp"
    estimate, margin, b = pending.estimate or 0.0, pending.margin or 0.0, pending.baseline
    if estimate > margin and below_floor and b is not None:
        return (f"beyond the tolerance, but {b * math.expm1(estimate):+.2f} ms is within the "
                f"{settings.floor_ms:g} ms absolute floor (the tools' timing resolution)")
    if estimate > margin and gate is not None and gate[1] > settings.alpha:
        return (f"beyond the tolerance, but tested only once {gate[0]} is significant "
                f"(gatekeeping; its adjusted p {gate[1]:.2g} > {settings.alpha:g})")
    if estimate > margin:
        return (f"beyond the tolerance, but not significant over {families} families of checks "
                f"(adjusted p {p_adjusted:.2g} > {settings.alpha:g})")
    if detectable is None:
        return "neither a regression nor within tolerance"
    return (f"neither a regression nor within tolerance; this data flags a change of "
            f"{detectable:+.1f}{unit} or more (80 % power)")


def _nominal_margin(settings: DriftSettings, metric: str) -> float:
    """The oriented margin of ``metric`` before any floor (for checks that were not tested)."""
    if metric == "throughput":
        return _throughput_margin(settings)
    if metric in _PROPORTIONS:
        return settings.tolerance(metric)
    return math.log1p(settings.tolerance(metric))


PRIMARY_ORDER = ("mean", "p50", "p95", "p99")
"""Which check of a latency family is its primary (:mod:`.procedure`): the first of these that
was tested. The mean moves when any part of the distribution moves and, in the simulations of
docs/compare.md, is the most powerful of them; the others are tested once it is rejected."""


def _family(pending: _Pending) -> tuple[tuple[str, str, str], str]:
    """The family key of a check: its series (name, kind, slice) and the metric's family."""
    return ((pending.endpoint, pending.kind, pending.slice),
            FAMILIES.get(pending.metric, pending.metric))


def _gate(pending: _Pending) -> object:
    """What gates a check's family (see :mod:`.procedure`): nothing for a primary family; the
    unsliced series for a scenario slice; for the whole-run entry's latency and errors, any
    endpoint family of the kind; for an endpoint's throughput, the whole run's throughput (one
    family for the load served: in a closed model it restates latency, in an open one a drop
    shows in the whole run first)."""
    family, kind = _family(pending)
    if pending.slice:
        return ((pending.endpoint, pending.kind, ""), kind)
    if pending.kind != "http":
        return None
    if kind == "throughput":
        return None if pending.endpoint == ALL_ENDPOINTS else ((ALL_ENDPOINTS, "http", ""), kind)
    return ANY if pending.endpoint == ALL_ENDPOINTS else None


def drift_checks(
    baseline: RunData, candidate: RunData, settings: DriftSettings | None = None
) -> list[Check]:
    """Every check between two runs, with adjusted p-values (:mod:`.procedure`) and statuses.

    Args:
        baseline: the reference run.
        candidate: the run under test.
        settings: alpha, tolerances, bootstrap size and seed; defaults are the calibrated ones.

    Returns:
        One :class:`Check` per endpoint (union of both runs, in the baseline's order) and metric.
    """
    settings = settings or DriftSettings()
    pending = pending_checks(baseline, candidate, settings)
    families = [_family(p) for p in pending]
    adjustment = gatekept_adjusted(
        [p.p_value for p in pending], families,
        priority=[PRIMARY_ORDER.index(p.metric) if p.metric in PRIMARY_ORDER else 0
                  for p in pending],
        live=[p.live for p in pending], gates=[_gate(p) for p in pending])
    heads = {family: p.metric for p, family, first
             in zip(pending, families, adjustment.primary, strict=True) if first}
    out = []
    for i, p in enumerate(pending):
        a, opened = adjustment.p_adjusted[i], float(adjustment.gate_p[i])
        gate = None
        if math.isfinite(opened):
            gate = (f"its {heads[families[i]]}" if not adjustment.primary[i] else
                    f"{p.endpoint} without the slice" if p.slice else
                    f"an endpoint's {families[i][1]}" if p.endpoint == ALL_ENDPOINTS else
                    "the whole run's throughput", opened)
        out.append(_finish(p, None if p.p_value is None else float(a), settings,
                           adjustment.families, gate))
    return out


def pending_checks(baseline: RunData, candidate: RunData,
                   settings: DriftSettings) -> list[_Pending]:
    """Every check of the pair with its raw p-value, before the multiple-testing procedure
    (one per endpoint of either run, in the baseline's order, and metric)."""
    weights = _Weights(settings)
    pending: list[_Pending] = []
    with one_blas_thread():
        for name in dict.fromkeys([*baseline.endpoints, *candidate.endpoints]):
            pending.extend(_endpoint_checks(
                name, baseline.endpoints.get(name), candidate.endpoints.get(name),
                (baseline.duration_s, candidate.duration_s), settings, weights,
            ))
    return pending


def verdict(checks: Sequence[Check]) -> str:
    """``"NO-GO"`` if any check is a regression or an SLO breach, else ``"GO"``."""
    return "NO-GO" if any(c.status in FAILING for c in checks) else "GO"

