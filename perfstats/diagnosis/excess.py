"""SLO excess from a tool's summaries: the time requests spend beyond a latency threshold.

Raw samples give the excess exactly (``sum of max(0, latency - T)``); a tool's latency histogram
or its percentile summaries only estimate it. These estimators are plain numpy, vectorised over
rows; :mod:`perfstats.diagnosis.rank` picks the source and scales them to requests.
"""

from __future__ import annotations

import numpy as np

KNOTS = ["min", "p50", "p90", "p95", "p99", "max"]
"""The summary columns :func:`excess_from_percentiles` reads, in order."""
_KNOTS_U = np.array([0.0, 0.5, 0.9, 0.95, 0.99, 1.0])


def excess_from_percentiles(knots: np.ndarray, threshold_ms: np.ndarray) -> np.ndarray:
    """Mean time beyond the threshold per request (ms), estimated from percentile summaries.

    Each row's latency distribution is taken as the piecewise-linear quantile function through
    ``(0, min), (0.5, p50), (0.9, p90), (0.95, p95), (0.99, p99), (1, max)``; the mean excess is
    ``integral over u of max(0, Q(u) - T) du``, exact for that function. Missing interior knots
    (nan) are interpolated from their neighbours; a row without min, p50 or max gives nan.

    Args:
        knots: ``(R, 6)`` min, p50, p90, p95, p99, max in ms.
        threshold_ms: ``(R,)`` thresholds in ms.

    Example:
        >>> excess_from_percentiles(np.array([[0, 50, 90, 95, 99, 100.0]]), np.array([90.0]))
        array([0.5])
    """
    raw = np.asarray(knots, dtype=np.float64)
    t = np.asarray(threshold_ms, dtype=np.float64)[:, None]
    cols = np.arange(raw.shape[1])
    present = np.isfinite(raw)
    last = raw.shape[1] - 1
    prev = np.maximum.accumulate(np.where(present, cols, 0), axis=1)
    nxt = np.minimum.accumulate(np.where(present, cols, last)[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(raw.shape[0])[:, None]
    gap = _KNOTS_U[nxt] - _KNOTS_U[prev]
    frac = np.where(gap > 0, (_KNOTS_U[cols] - _KNOTS_U[prev]) / np.where(gap > 0, gap, 1.0), 0.0)
    filled = np.where(present, raw, raw[rows, prev] + frac * (raw[rows, nxt] - raw[rows, prev]))
    q = np.fmax.accumulate(filled, axis=1)  # a quantile function never decreases
    a, b = q[:, :-1], q[:, 1:]
    width = np.diff(_KNOTS_U)[None, :]
    whole = width * ((a + b) / 2.0 - t)
    crossing = width * (b - t) ** 2 / (2.0 * np.where(b > a, b - a, 1.0))
    part = np.where(b <= t, 0.0, np.where(a >= t, whole, crossing))
    usable = present[:, [0, 1, last]].all(axis=1)
    return np.where(usable, part.sum(axis=1), np.nan)


def excess_from_histogram(bucket_ms: np.ndarray, counts: np.ndarray,
                          threshold_ms: np.ndarray) -> np.ndarray:
    """Time beyond the threshold of each histogram bucket: ``count x max(0, bucket - T)`` (ms)."""
    return np.asarray(counts, dtype=np.float64) * np.maximum(
        np.asarray(bucket_ms, dtype=np.float64) - np.asarray(threshold_ms, dtype=np.float64), 0.0)

