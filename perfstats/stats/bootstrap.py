"""Window (block) bootstrap of baseline-vs-candidate ratios.

Latency samples within a run are autocorrelated, so the unit of resampling is a time window, not a
request (Kuensch 1989). Each run's windows are resampled with replacement, independently per run;
a resample is a vector of multinomial weights over the windows, so a whole bootstrap is one matrix
product ``weights @ window_histograms`` followed by a vectorised quantile. Intervals are percentile
intervals of the log ratio. One-sided p-values are normal-theory p-values that use the bootstrap
standard error: a percentile p-value of ``B`` resamples cannot fall below ``1 / (B + 1)``, while
Benjamini-Hochberg over dozens of checks needs p-values near ``alpha / m``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from perfstats.stats.histogram import (
    WindowHistogram,
    quantile_columns,
    quantiles_from_cumulative,
)

_NORMAL = NormalDist()
_BLAS_LOCK = threading.Lock()
_blas_users = 0
_blas_limit: Any = None


@functools.cache
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block's BLAS products (``weights @ ...``) on one thread.

    They are small (2,000 resamples by a few dozen windows by a few hundred buckets): a second
    BLAS thread costs 4-5 times the CPU and, on a busy machine, more wall time, not less. The
    results do not change (each output element is summed in the same order). Nested and
    concurrent blocks share one limit (threadpoolctl's), lifted when the last one ends.
    """
    global _blas_users, _blas_limit
    with _BLAS_LOCK:
        if _blas_users == 0:
            _blas_limit = _blas_controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None


def resample_weights(n_windows: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``(B, W)`` bootstrap weights: how often each of ``W`` windows is drawn in each resample."""
    if n_windows < 1 or resamples < 1:
        raise ValueError("need at least one window and one resample")
    probs = np.full(n_windows, 1.0 / n_windows)
    return rng.multinomial(n_windows, probs, size=resamples).astype(np.float64)


@functools.lru_cache(maxsize=64)
def seeded_weights(seed: int, stream: int, n_windows: int, resamples: int) -> np.ndarray:
    """:func:`resample_weights` from the generator seeded with ``[seed, stream, n_windows]``.

    The same arguments always give the same (read-only, cached) matrix, so a comparison is
    reproducible and repeated comparisons do not redraw it.
    """
    rng = np.random.default_rng([seed, stream, n_windows])
    weights = resample_weights(n_windows, resamples, rng)
    weights.flags.writeable = False
    return weights


@dataclass(frozen=True)
class Replicates:
    """A point estimate and its bootstrap replicates, on the scale the decision is made on.

    Attributes:
        estimate: the statistic on the original data (e.g. a log ratio).
        replicates: ``(B,)`` the statistic on each resample (resamples where it is undefined are
            dropped).
    """

    estimate: float
    replicates: np.ndarray

    @property
    def se(self) -> float:
        """Bootstrap standard error."""
        return float(np.std(self.replicates, ddof=1)) if len(self.replicates) > 1 else np.nan

    def widened(self, factor: float) -> Replicates:
        """The replicates spread ``factor`` times wider around the estimate (variance times
        ``factor ** 2``)."""
        if factor == 1.0:
            return self
        return Replicates(self.estimate, self.estimate + (self.replicates - self.estimate) * factor)

    def interval(self, confidence: float) -> tuple[float, float]:
        """Two-sided percentile interval at ``confidence``."""
        tail = (1.0 - confidence) / 2.0
        low, high = np.quantile(self.replicates, [tail, 1.0 - tail])
        return float(low), float(high)

    def p_greater(self, null: float = 0.0) -> float:
        """One-sided p-value of H0: statistic <= ``null``, from the bootstrap standard error."""
        return 1.0 - _NORMAL.cdf(self._z(null))

    def p_less(self, null: float = 0.0) -> float:
        """One-sided p-value of H0: statistic >= ``null``, from the bootstrap standard error."""
        return _NORMAL.cdf(self._z(null))

    def _z(self, null: float) -> float:
        se = self.se
        if not se > 0.0:
            # Degenerate resamples (one window, identical data): no evidence either way.
            return 0.0
        return (self.estimate - null) / se


def log_ratio_of_sums(
    numerator: tuple[np.ndarray, np.ndarray],
    denominator: tuple[np.ndarray, np.ndarray],
    weights: tuple[np.ndarray, np.ndarray],
) -> Replicates:
    """Log of (candidate ratio-of-sums / baseline ratio-of-sums) with window bootstrap.

    The ratio-of-sums statistic is ``sum(num) / sum(den)`` over windows: the mean latency
    (latency sums / counts) or the throughput (counts / window lengths), both exact under merging.

    Args:
        numerator: per-window numerators ``(baseline, candidate)``.
        denominator: per-window denominators ``(baseline, candidate)``.
        weights: bootstrap weights ``(baseline (B, W_b), candidate (B, W_c))``.
    """
    logs = []
    points = []
    for num, den, w in zip(numerator, denominator, weights, strict=True):
        num = np.asarray(num, dtype=np.float64)
        den = np.asarray(den, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            points.append(np.log(num.sum() / den.sum()))
            logs.append(np.log((w @ num) / (w @ den)))
    reps = logs[1] - logs[0]
    return Replicates(float(points[1] - points[0]), reps[np.isfinite(reps)])


@dataclass(frozen=True)
class HistogramBootstrap:
    """Bootstrap of every latency ratio of one endpoint.

    Attributes:
        baseline: point values on the baseline (``p50`` ... and ``mean``, in ms).
        candidate: the same on the candidate.
        log_ratios: per metric, the log of candidate / baseline with its replicates.
    """

    baseline: dict[str, float]
    candidate: dict[str, float]
    log_ratios: dict[str, Replicates]


def quantile_name(q: float) -> str:
    """``0.95`` -> ``"p95"``, ``0.999`` -> ``"p99.9"``."""
    return "p" + f"{q * 100:.10g}"


def bootstrap_histograms(
    baseline: WindowHistogram,
    candidate: WindowHistogram,
    weights: tuple[np.ndarray, np.ndarray],
    quantiles: Sequence[float] = (0.5, 0.95, 0.99),
) -> HistogramBootstrap:
    """Window bootstrap of quantile and mean ratios from per-window histograms.

    Each resample merges the drawn windows of each run (weights @ counts) and takes the pooled
    quantile of the merged histogram, so quantiles are never averaged.

    Args:
        baseline: per-window histograms of the baseline run's endpoint.
        candidate: the same endpoint in the candidate run.
        weights: ``(B, W)`` bootstrap weights of each run, from :func:`resample_weights`; share them
            between the endpoints of a run so a resample is the same set of windows for all.
        quantiles: the quantiles to compare.

    Returns:
        Point values and log-ratio replicates for each quantile and ``mean``.
    """
    buckets = np.union1d(baseline.buckets, candidate.buckets)
    cums = [np.cumsum(h.on_buckets(buckets), axis=1) for h in (baseline, candidate)]
    # Only the columns a resample's quantile can fall into are needed (exact, see
    # quantile_columns); merging cumulative rows gives the resample's cumulative histogram.
    keep = quantile_columns(np.vstack(cums), quantiles)
    buckets = buckets[keep]
    values: list[dict[str, float]] = []
    boot_q: list[np.ndarray] = []
    for hist, cum, w in zip((baseline, candidate), cums, weights, strict=True):
        cum = cum[:, keep]
        point = quantiles_from_cumulative(cum.sum(axis=0, keepdims=True), buckets, quantiles)[0]
        n = hist.window_counts.astype(np.float64)
        row = {quantile_name(q): float(v) for q, v in zip(quantiles, point, strict=True)}
        row["mean"] = float(np.sum(hist.sums) / n.sum()) if n.sum() > 0 else np.nan
        values.append(row)
        boot_q.append(quantiles_from_cumulative(w @ cum, buckets, quantiles))
    ratios: dict[str, Replicates] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for k, q in enumerate(quantiles):
            name = quantile_name(q)
            reps = np.log(boot_q[1][:, k]) - np.log(boot_q[0][:, k])
            point = np.log(values[1][name]) - np.log(values[0][name])
            ratios[name] = Replicates(float(point), reps[np.isfinite(reps)])
    n_b, n_c = baseline.window_counts, candidate.window_counts
    ratios["mean"] = log_ratio_of_sums((baseline.sums, candidate.sums), (n_b, n_c), weights)
    return HistogramBootstrap(values[0], values[1], ratios)


def window_dependence(*series: np.ndarray, cap: float = 0.8) -> float:
    """Standard-error factor for correlation between adjacent windows: ``sqrt((1 + r) / (1 - r))``.

    A window bootstrap treats windows as independent blocks. When a noise outlives a window (a
    slow neighbour, a GC cycle of several seconds), adjacent windows are correlated and the
    bootstrap understates the variance; for an AR(1) series of window statistics the long-run
    variance is ``(1 + r) / (1 - r)`` times the naive one. ``r`` is the lag-one autocorrelation of
    each series (e.g. the per-window mean log latency of each run), pooled over the series by
    their lengths, clipped to ``[0, cap]``.
    """
    num = den = 0.0
    for values in series:
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if len(v) < 5:
            continue
        d = v - v.mean()
        var = float(np.dot(d, d))
        if var <= 0.0:
            continue
        num += float(np.dot(d[1:], d[:-1])) / var * len(v)
        den += len(v)
    r = min(max(num / den, 0.0), cap) if den else 0.0
    return float(np.sqrt((1.0 + r) / (1.0 - r)))
