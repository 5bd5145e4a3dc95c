"""Window-level tests for tools that report only per-window summaries.

Artillery's 10 s periods and Locust's history rows give a percentile per window, not the samples,
and percentiles cannot be merged. Each window's percentile is therefore one observation on the log
scale (METHODS.md section 1): windows with too few requests for the quantile (fewer than
``min_tail / (1 - q)``) are dropped, the rest are weighted by their request count. The effect is the
difference of count-weighted mean log percentiles; its interval comes from resampling windows, its
p-value from a Welch t-test on the log values (Kish effective sample sizes for the weights).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from perfstats.stats.bootstrap import Replicates, log_ratio_of_sums
from perfstats.stats.tails import t_sf


@dataclass(frozen=True)
class WindowSummaries:
    """Per-window summaries of one endpoint of one run.

    Attributes:
        counts: ``(W,)`` requests per window.
        values: statistic name (``p50``, ``p95``, ``p99``, ``mean``) -> ``(W,)`` values in ms,
            ``nan`` where the tool gave none.
        errors: ``(W,)`` failed requests per window.
        lengths: ``(W,)`` window lengths in seconds.
    """

    counts: np.ndarray
    values: Mapping[str, np.ndarray]
    errors: np.ndarray
    lengths: np.ndarray

    def __post_init__(self) -> None:
        n = np.shape(self.counts)
        for name, column in {**self.values, "errors": self.errors, "lengths": self.lengths}.items():
            if np.shape(column) != n:
                raise ValueError(f"{name} must have one entry per window")

    @property
    def n_windows(self) -> int:
        """Number of windows ``W``."""
        return len(self.counts)

    def column(self, name: str) -> np.ndarray:
        """The ``(W,)`` float values of statistic ``name``; all ``nan`` when the tool gave none."""
        return np.asarray(self.values.get(name, np.full(self.n_windows, np.nan)),
                          dtype=np.float64)


@dataclass(frozen=True)
class Welch:
    """Welch t statistic of ``mean(y) - mean(x)``: difference, standard error and df."""

    difference: float
    se: float
    df: float

    def p_greater(self, null: float = 0.0) -> float:
        """One-sided p-value of H0: difference <= ``null``."""
        if self.se <= 0.0:
            return 0.0 if self.difference > null else 1.0
        return float(t_sf((self.difference - null) / self.se, self.df))


@dataclass(frozen=True)
class WindowTest:
    """Result of a window-level comparison.

    Attributes:
        log_ratio: log of candidate / baseline with bootstrap replicates (for the interval).
        welch: Welch test on the log window values (for the p-value).
        windows: windows used ``(baseline, candidate)``.
    """

    log_ratio: Replicates
    welch: Welch
    windows: tuple[int, int]


def min_window_count(q: float, min_tail: float = 10.0) -> int:
    """Fewest requests for a window's ``q`` percentile to count: ``ceil(min_tail / (1 - q))``."""
    return math.ceil(min_tail / (1.0 - q) - 1e-9)


def weighted_welch(x: np.ndarray, wx: np.ndarray, y: np.ndarray, wy: np.ndarray) -> Welch:
    """Welch t-test of ``mean(y) - mean(x)`` with observation weights.

    The weighted means and variances use the weights; the sample size of each group is Kish's
    effective size ``sum(w)**2 / sum(w**2)``, and the degrees of freedom Welch-Satterthwaite's.
    """
    parts = []
    for v, w in ((x, wx), (y, wy)):
        w = np.asarray(w, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64)
        mean = np.sum(w * v) / np.sum(w)
        n_eff = np.sum(w) ** 2 / np.sum(w**2)
        var = np.sum(w * (v - mean) ** 2) / np.sum(w) * n_eff / max(n_eff - 1.0, 1e-12)
        parts.append((mean, var / n_eff, n_eff))
    (m1, s1, n1), (m2, s2, n2) = parts
    se2 = s1 + s2
    if se2 <= 0.0:
        return Welch(float(m2 - m1), 0.0, math.inf)
    df = se2**2 / (s1**2 / max(n1 - 1.0, 1e-12) + s2**2 / max(n2 - 1.0, 1e-12))
    return Welch(float(m2 - m1), math.sqrt(se2), float(df))


def window_quantile_test(
    baseline: WindowSummaries,
    candidate: WindowSummaries,
    name: str,
    q: float,
    weights: tuple[np.ndarray, np.ndarray],
    *,
    min_tail: float = 10.0,
    min_windows: int = 3,
) -> WindowTest | None:
    """Compare one percentile from per-window summaries.

    Args:
        baseline: baseline windows.
        candidate: candidate windows.
        name: the statistic (``p95``) in ``values``.
        q: its probability (0.95).
        weights: ``(B, W)`` bootstrap weights of each run.
        min_tail: a window needs ``min_tail / (1 - q)`` requests to count.
        min_windows: fewest usable windows per run.

    Returns:
        The test, or None when either run has fewer than ``min_windows`` usable windows.
    """
    need = min_window_count(q, min_tail)
    logs, wts = [], []
    for run in (baseline, candidate):
        v = run.column(name)
        n = np.asarray(run.counts, dtype=np.float64)
        keep = (n >= need) & np.isfinite(v) & (v > 0)
        if np.count_nonzero(keep) < min_windows:
            return None
        logs.append(np.where(keep, np.log(np.where(keep, v, 1.0)), 0.0))
        wts.append(np.where(keep, n, 0.0))
    means, reps = [], []
    for y, n, w in zip(logs, wts, weights, strict=True):
        means.append(np.sum(n * y) / np.sum(n))
        with np.errstate(divide="ignore", invalid="ignore"):
            reps.append((w @ (n * y)) / (w @ n))
    diff = reps[1] - reps[0]
    keep_b, keep_c = wts[0] > 0, wts[1] > 0
    welch = weighted_welch(logs[0][keep_b], wts[0][keep_b], logs[1][keep_c], wts[1][keep_c])
    return WindowTest(
        Replicates(float(means[1] - means[0]), diff[np.isfinite(diff)]),
        welch,
        (int(keep_b.sum()), int(keep_c.sum())),
    )


def window_mean_test(
    baseline: WindowSummaries,
    candidate: WindowSummaries,
    weights: tuple[np.ndarray, np.ndarray],
    *,
    min_windows: int = 3,
) -> WindowTest | None:
    """Compare mean latency from per-window means and counts.

    The pooled mean is exact (``sum(n * mean) / sum(n)``) and is bootstrapped over windows; the
    p-value is a count-weighted Welch test on the log window means.
    """
    sums, ns, logs = [], [], []
    for run in (baseline, candidate):
        v = run.column("mean")
        n = np.asarray(run.counts, dtype=np.float64)
        keep = (n > 0) & np.isfinite(v) & (v > 0)
        if np.count_nonzero(keep) < min_windows:
            return None
        sums.append(np.where(keep, n * np.where(keep, v, 0.0), 0.0))
        ns.append(np.where(keep, n, 0.0))
        logs.append(np.log(np.where(keep, v, 1.0)))
    kb, kc = ns[0] > 0, ns[1] > 0
    return WindowTest(
        log_ratio_of_sums((sums[0], sums[1]), (ns[0], ns[1]), weights),
        weighted_welch(logs[0][kb], ns[0][kb], logs[1][kc], ns[1][kc]),
        (int(kb.sum()), int(kc.sum())),
    )
