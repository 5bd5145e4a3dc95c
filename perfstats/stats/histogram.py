"""Mergeable per-window latency histograms with log-spaced buckets of 1 % relative width.

A value ``v`` (ms) falls into bucket ``i = floor(ln(v) / ln(1.01))``, which covers ``[1.01**i,
1.01**(i + 1))``; values below 1 us share the lowest bucket. Histograms of windows, runs or
bootstrap resamples merge by adding counts. Quantiles invert the merged counts with log-linear
interpolation inside a bucket, so the bucketing error is at most 1 % and in practice about 0.3 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

GAMMA = 1.01
"""Ratio of a bucket's upper to its lower edge."""
LN_GAMMA = math.log(GAMMA)
MIN_MS = 1e-3
"""Values below this (1 us) are counted in the lowest bucket."""


def bucket_index(values_ms: np.ndarray) -> np.ndarray:
    """Bucket index of each latency in ms (vectorised)."""
    clipped = np.maximum(np.asarray(values_ms, dtype=np.float64), MIN_MS)
    return np.floor(np.log(clipped) / LN_GAMMA).astype(np.int64)


def bucket_sql(column: str) -> str:
    """The DuckDB SQL expression that computes :func:`bucket_index` of ``column``."""
    return f"CAST(floor(ln(greatest({column}, {MIN_MS!r})) / {LN_GAMMA!r}) AS BIGINT)"


def bucket_lower_ms(index: np.ndarray | int) -> np.ndarray:
    """Lower edge (ms) of bucket ``index``."""
    return np.power(GAMMA, np.asarray(index, dtype=np.float64))


def _locate(cum: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per row r and column k of ``target (R, Q)``: first column of ``cum`` reaching it."""
    rows, width = cum.shape
    # One searchsorted for all rows: shift row r by r * (max + 1) so the flattened cumulative
    # counts stay sorted.
    stride = float(cum[:, -1].max()) + 1.0
    shift = (np.arange(rows, dtype=np.float64) * stride)[:, None]
    flat = (cum + shift).ravel()
    pos = np.searchsorted(flat, target + shift, side="left") - np.arange(rows)[:, None] * width
    return np.clip(pos, 0, width - 1)


def quantiles_from_cumulative(
    cum: np.ndarray, buckets: np.ndarray, quantiles: Sequence[float]
) -> np.ndarray:
    """Quantiles of each row of a cumulative histogram matrix.

    Args:
        cum: ``(R, K)`` cumulative counts along the bucket axis, one histogram per row. Columns may
            be a subset of the buckets provided each quantile's bucket and the one before it are
            present (see :func:`quantile_columns`).
        buckets: ``(K,)`` sorted bucket indices of the columns.
        quantiles: probabilities in ``(0, 1)``.

    Returns:
        ``(R, len(quantiles))`` values in ms; ``nan`` for empty rows. The q-quantile is the point
        where the cumulative count reaches ``q * total``, interpolated log-linearly inside its
        bucket.
    """
    cum = np.atleast_2d(np.asarray(cum, dtype=np.float64))
    buckets = np.asarray(buckets, dtype=np.int64)
    rows, width = cum.shape
    if width == 0 or rows == 0:
        return np.full((rows, len(quantiles)), np.nan)
    qs = np.asarray(quantiles, dtype=np.float64)
    if np.any((qs <= 0.0) | (qs >= 1.0)):
        raise ValueError(f"quantiles must be in (0, 1), got {list(quantiles)}")
    total = cum[:, -1:]
    target = np.maximum(qs[None, :] * total, 1e-9)
    pos = _locate(cum, target)
    # The reached column and the one before it, by flat index (no take_along_axis overhead).
    flat = cum.ravel()
    at = pos + (np.arange(rows) * width)[:, None]
    before = np.where(pos > 0, flat[np.maximum(at - 1, 0)], 0.0)
    inside = flat[at] - before
    frac = np.where(inside > 0, (target - before) / np.where(inside > 0, inside, 1.0), 1.0)
    values = np.power(GAMMA, buckets[pos] + np.clip(frac, 0.0, 1.0))
    return np.where(total > 0, values, np.nan)


def quantiles_from_counts(
    counts: np.ndarray, buckets: np.ndarray, quantiles: Sequence[float]
) -> np.ndarray:
    """Quantiles (ms) of each row of a ``(R, K)`` histogram matrix with bucket indices ``buckets``.

    Example:
        >>> counts = np.zeros((1, 3)); counts[0] = [50, 45, 5]
        >>> quantiles_from_counts(counts, bucket_index(np.array([10, 20, 150])), [0.6]).round(1)
        array([[20.]])
    """
    cum = np.cumsum(np.atleast_2d(np.asarray(counts, dtype=np.float64)), axis=1)
    return quantiles_from_cumulative(cum, buckets, quantiles)


def quantile_columns(cum: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Columns of a per-window cumulative matrix that any mixture of its rows needs for quantiles.

    The q-quantile of a weighted mixture of windows lies between the smallest and the largest of
    the windows' own q-quantiles (the mixture CDF is a weighted mean of theirs), so a bootstrap
    resample only ever needs those columns, the one before each range (for interpolation) and the
    last column (the totals).

    Args:
        cum: ``(W, K)`` cumulative counts per window.
        quantiles: probabilities in ``(0, 1)``.

    Returns:
        Sorted column positions to keep.
    """
    cum = np.asarray(cum, dtype=np.float64)
    rows = cum[cum[:, -1] > 0] if cum.size else cum
    if rows.shape[0] == 0:
        return np.arange(cum.shape[1])
    qs = np.asarray(quantiles, dtype=np.float64)
    pos = _locate(rows, np.maximum(qs[None, :] * rows[:, -1:], 1e-9))
    ranges = [np.arange(max(int(lo) - 1, 0), int(hi) + 1)
              for lo, hi in zip(pos.min(axis=0), pos.max(axis=0), strict=True)]
    # The last column carries the totals.
    return np.unique(np.concatenate([*ranges, [cum.shape[1] - 1]]))


@dataclass(frozen=True)
class WindowHistogram:
    """Latency histograms of one endpoint of one run, one row per time window.

    Attributes:
        buckets: ``(K,)`` sorted bucket indices (only buckets that hold data need be present).
        counts: ``(W, K)`` request counts per window and bucket.
        sums: ``(W,)`` sum of latencies (ms) per window, for exact means.
        errors: ``(W,)`` failed requests per window.
        lengths: ``(W,)`` window lengths in seconds (the last window of a run may be shorter).
    """

    buckets: np.ndarray
    counts: np.ndarray
    sums: np.ndarray
    errors: np.ndarray
    lengths: np.ndarray

    def __post_init__(self) -> None:
        windows, width = np.shape(self.counts)
        if np.shape(self.buckets) != (width,):
            raise ValueError("buckets must have one entry per column of counts")
        for name in ("sums", "errors", "lengths"):
            if np.shape(getattr(self, name)) != (windows,):
                raise ValueError(f"{name} must have one entry per window (row of counts)")

    @classmethod
    def from_samples(
        cls,
        window: np.ndarray,
        latency_ms: np.ndarray,
        failed: np.ndarray,
        lengths: np.ndarray,
    ) -> WindowHistogram:
        """Build from raw samples.

        Args:
            window: window number (0-based) of each sample.
            latency_ms: latency of each sample.
            failed: whether each sample failed.
            lengths: length in seconds of every window of the run (defines ``W``).
        """
        window = np.asarray(window, dtype=np.int64)
        latency_ms = np.asarray(latency_ms, dtype=np.float64)
        lengths = np.asarray(lengths, dtype=np.float64)
        n_windows = len(lengths)
        idx = bucket_index(latency_ms)
        buckets, column = np.unique(idx, return_inverse=True)
        flat = np.bincount(window * len(buckets) + column, minlength=n_windows * len(buckets))
        return cls(
            buckets=buckets,
            counts=flat.reshape(n_windows, len(buckets)),
            sums=np.bincount(window, weights=latency_ms, minlength=n_windows),
            errors=np.bincount(window, weights=np.asarray(failed, dtype=np.float64),
                               minlength=n_windows).astype(np.int64),
            lengths=lengths,
        )

    @property
    def n_windows(self) -> int:
        """Number of windows ``W``."""
        return int(np.shape(self.counts)[0])

    @property
    def window_counts(self) -> np.ndarray:
        """``(W,)`` requests per window."""
        return np.asarray(self.counts).sum(axis=1)

    @property
    def total(self) -> int:
        """Requests in the whole run."""
        return int(np.asarray(self.counts).sum())

    def on_buckets(self, buckets: np.ndarray) -> np.ndarray:
        """The count matrix re-indexed onto ``buckets`` (a sorted superset of ``self.buckets``)."""
        pos = np.searchsorted(buckets, self.buckets)
        if len(self.buckets) and not np.array_equal(np.asarray(buckets)[pos], self.buckets):
            raise ValueError("target buckets must include every bucket of this histogram")
        out = np.zeros((self.n_windows, len(buckets)), dtype=np.float64)
        out[:, pos] = self.counts
        return out

    def merge(self, other: WindowHistogram) -> WindowHistogram:
        """Window-by-window sum of two histograms of the same run (e.g. two endpoints)."""
        if self.n_windows != other.n_windows:
            raise ValueError("histograms of different window layouts cannot be merged")
        buckets = np.union1d(self.buckets, other.buckets)
        return WindowHistogram(
            buckets=buckets,
            counts=self.on_buckets(buckets) + other.on_buckets(buckets),
            sums=np.asarray(self.sums) + np.asarray(other.sums),
            errors=np.asarray(self.errors) + np.asarray(other.errors),
            lengths=self.lengths,
        )

    def quantiles(self, quantiles: Sequence[float]) -> np.ndarray:
        """Pooled quantiles (ms) of the whole run."""
        pooled = np.asarray(self.counts, dtype=np.float64).sum(axis=0, keepdims=True)
        return quantiles_from_counts(pooled, self.buckets, quantiles)[0]
