"""Sampling error of a run's summary figures, from the summary itself.

A summary (k6 ``handleSummary`` / ``--summary-export``, Locust's stats CSV, an Artillery aggregate)
gives a handful of percentiles and the request count, no samples. That is still enough to say how
far a percentile could move on a rerun: the q-quantile of n samples has the standard error
``sqrt(q (1 - q) / n) / f(Q_q)`` (the asymptotic variance of a sample quantile), and the density
``f`` at the quantile can be read off the neighbouring reported percentiles. Latency is close to
lognormal locally, so the slope is taken on the log scale: between two reported percentiles
``Q_a < Q_b``, the local log-scale spread is ``s = (ln Q_b - ln Q_a) / (z_b - z_a)`` and

    SE(ln Q_q) = s * sqrt(q (1 - q) / n) / phi(z_q).

The mean's is ``sqrt(exp(s^2) - 1) / sqrt(n)`` with the larger of the spreads implied by
(p50, p90) and by mean / median. These are independent-sample errors; latency within a run is
autocorrelated, so :data:`DESIGN_EFFECT` widens them (measured on real runs with raw samples, see
docs/compare.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist

_NORMAL = NormalDist()

DESIGN_EFFECT = 3.0
"""Factor by which the window bootstrap's standard error of a percentile exceeds the
independent-sample one on real runs (autocorrelated latency; measured on the k6 runs of data/,
see docs/compare.md). Applied to every standard error taken from a summary."""

SUMMARY_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
"""The percentiles a summary may report, by name."""


def _spread(points: Mapping[float, float], q: float) -> float | None:
    """Local log-scale spread at ``q``: from the nearest reported percentiles around it."""
    usable = sorted((p, v) for p, v in points.items() if v is not None and v > 0)
    if len(usable) < 2:
        return None
    below = [pv for pv in usable if pv[0] <= q]
    above = [pv for pv in usable if pv[0] > q]
    if below and above:
        (qa, va), (qb, vb) = below[-1], above[0]
    elif above:
        (qa, va), (qb, vb) = above[0], above[1] if len(above) > 1 else above[0]
    else:
        (qa, va), (qb, vb) = below[-2], below[-1]
    if qb <= qa:
        return None
    s = (math.log(vb) - math.log(va)) / (_NORMAL.inv_cdf(qb) - _NORMAL.inv_cdf(qa))
    return s if s > 0 else None


def percentile_log_se(q: float, count: int, percentiles: Mapping[str, float]) -> float | None:
    """Independent-sample standard error of ``ln Q_q`` of ``count`` requests, or None.

    Args:
        q: the probability (0.95).
        count: requests behind the summary.
        percentiles: the reported percentiles by name (``p50``, ``p90``, ``p95``, ``p99``), ms.

    Example:
        >>> round(percentile_log_se(0.5, 1000, {"p50": 10.0, "p90": 10.0 * math.exp(1.2816)}), 4)
        0.0396
    """
    if count < 2:
        return None
    points = {SUMMARY_QUANTILES[k]: float(v) for k, v in percentiles.items()
              if k in SUMMARY_QUANTILES and v is not None}
    s = _spread(points, q)
    if s is None:
        return None
    return s * math.sqrt(q * (1.0 - q) / count) / _NORMAL.pdf(_NORMAL.inv_cdf(q))


def mean_log_se(count: int, percentiles: Mapping[str, float]) -> float | None:
    """Independent-sample standard error of the log of the mean latency, or None."""
    if count < 2:
        return None
    spreads = []
    p50, p90, mean = (percentiles.get(k) for k in ("p50", "p90", "mean"))
    if p50 and p90 and p90 > p50 > 0:
        spreads.append(math.log(p90 / p50) / _NORMAL.inv_cdf(0.9))
    if p50 and mean and mean > p50 > 0:
        spreads.append(math.sqrt(2.0 * math.log(mean / p50)))
    if not spreads:
        return None
    s = max(spreads)
    return math.sqrt(math.expm1(s * s) / count)
