"""Error-rate comparison: Fisher's exact or a pooled two-proportion z-test, Newcombe interval.

The 2x2 table is (failed, succeeded) x (baseline, candidate). When any expected cell is below 5 the
normal approximation is unreliable (METHODS.md 2.9: 0/2000 vs 3/2000 gives z p = 0.042 but Fisher
p = 0.125), so Fisher's exact test is used; otherwise the pooled z-test. The interval of the
difference ``p_candidate - p_baseline`` is Newcombe's (1998) hybrid score interval (his method 10),
built from the two Wilson intervals.

The gate asks whether the rise exceeds a margin (e.g. 0.5 percentage points), so
:func:`compare_error_rates` also gives the p-value of H0: difference <= margin. It is an
intersection-union test: the larger of the no-change p-value (Fisher or z) and the margin p-value
obtained by inverting the Newcombe interval, so it is never smaller than the exact test's.

The normal distribution comes from :mod:`perfstats.stats.tails`, and ``scipy.stats`` is imported
only for a Fisher test with errors on either side: it costs a ``perfstats compare`` process about
0.6 s of CPU to import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perfstats.stats.tails import norm_cdf, norm_ppf, norm_sf


def fisher_p(errors_b: int, n_b: int, errors_c: int, n_c: int, *, alternative: str) -> float:
    """Fisher's exact test p-value; ``alternative="greater"`` tests H1: candidate rate is higher."""
    if errors_b + errors_c in (0, n_b + n_c):
        return 1.0  # a column of the table is empty: scipy's fisher_exact gives 1 for it too
    from scipy import stats

    table = [[errors_c, n_c - errors_c], [errors_b, n_b - errors_b]]
    return float(stats.fisher_exact(table, alternative=alternative).pvalue)


def pooled_z_p(errors_b: int, n_b: int, errors_c: int, n_c: int, *, alternative: str) -> float:
    """Pooled two-proportion z-test p-value (``greater``: H1 candidate rate is higher)."""
    pooled = (errors_b + errors_c) / (n_b + n_c)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_b + 1.0 / n_c))
    diff = errors_c / n_c - errors_b / n_b
    if se == 0.0:
        return 1.0 if alternative != "two-sided" or diff == 0 else 0.0
    z = diff / se
    if alternative == "greater":
        return float(norm_sf(z))
    if alternative == "less":
        return float(norm_cdf(z))
    return float(2.0 * norm_sf(abs(z)))


def wilson_interval(errors: int, n: int, confidence: float) -> tuple[float, float]:
    """Two-sided Wilson score interval of a proportion."""
    return _wilson(errors, n, float(norm_ppf(0.5 + confidence / 2.0)))


def _wilson(errors: int, n: int, z: float) -> tuple[float, float]:
    p = errors / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    errors_b: int, n_b: int, errors_c: int, n_c: int, confidence: float
) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``p_candidate - p_baseline``.

    Example:
        >>> [round(v, 4) for v in newcombe_interval(48, 80, 56, 70, 0.95)]  # Newcombe 1998, ex. (a)
        [0.0524, 0.3339]
    """
    return _newcombe(errors_b, n_b, errors_c, n_c, float(norm_ppf(0.5 + confidence / 2.0)))


def _newcombe(errors_b: int, n_b: int, errors_c: int, n_c: int, z: float) -> tuple[float, float]:
    p_b, p_c = errors_b / n_b, errors_c / n_c
    lo_b, hi_b = _wilson(errors_b, n_b, z)
    lo_c, hi_c = _wilson(errors_c, n_c, z)
    diff = p_c - p_b
    down = math.sqrt((p_c - lo_c) ** 2 + (hi_b - p_b) ** 2)
    up = math.sqrt((hi_c - p_c) ** 2 + (p_b - lo_b) ** 2)
    return diff - down, diff + up


def newcombe_p_beyond(errors_b: int, n_b: int, errors_c: int, n_c: int, margin: float) -> float:
    """One-sided p-value of H0: ``p_candidate - p_baseline <= margin``, by inverting Newcombe.

    It is ``Phi(-z)`` for the ``z`` at which the interval's lower limit equals the margin (or
    ``Phi(z)`` at which its upper limit does, when the observed difference is below the margin).
    """
    diff = errors_c / n_c - errors_b / n_b
    if diff == margin:
        return 0.5
    side = 0 if diff > margin else 1

    def gap(z: float) -> float:
        return _newcombe(errors_b, n_b, errors_c, n_c, z)[side] - margin

    top = 40.0
    if gap(top) * gap(1e-12) > 0:
        z = top
    else:
        from scipy.optimize import brentq

        z = brentq(gap, 1e-12, top, xtol=1e-10)
    return float(norm_sf(z) if side == 0 else norm_cdf(z))


@dataclass(frozen=True)
class ErrorRateTest:
    """Comparison of two error rates.

    Attributes:
        baseline: baseline error rate (0-1).
        candidate: candidate error rate (0-1).
        difference: ``candidate - baseline``.
        ci_low: lower bound of the Newcombe interval of the difference.
        ci_high: upper bound.
        p_greater: one-sided p-value of H0: candidate rate <= baseline rate (Fisher or z).
        p_beyond: p-value of H0: difference <= margin (intersection-union: the larger of
            ``p_greater`` and the Newcombe margin p-value).
        method: ``"fisher-exact"`` or ``"z-test"``.
        se: standard error of the difference (unpooled), for the detectable change.
    """

    baseline: float
    candidate: float
    difference: float
    ci_low: float
    ci_high: float
    p_greater: float
    p_beyond: float
    method: str
    se: float


def compare_error_rates(
    errors_b: int,
    n_b: int,
    errors_c: int,
    n_c: int,
    *,
    confidence: float = 0.90,
    margin: float = 0.0,
) -> ErrorRateTest:
    """Compare the error rates of two runs.

    Args:
        errors_b: failed requests in the baseline.
        n_b: requests in the baseline (> 0).
        errors_c: failed requests in the candidate.
        n_c: requests in the candidate (> 0).
        confidence: level of the Newcombe interval.
        margin: rise of the error rate (0-1) that is tolerated, for ``p_beyond``.

    Example:
        >>> test = compare_error_rates(0, 2000, 3, 2000)
        >>> test.method, round(test.p_greater, 4)
        ('fisher-exact', 0.1249)
    """
    if n_b <= 0 or n_c <= 0:
        raise ValueError("both runs need at least one request")
    if not (0 <= errors_b <= n_b and 0 <= errors_c <= n_c):
        raise ValueError("error counts must lie between 0 and the request counts")
    failed, total = errors_b + errors_c, n_b + n_c
    expected = [r * c / total for r in (failed, total - failed) for c in (n_b, n_c)]
    exact = min(expected) < 5.0
    test = fisher_p if exact else pooled_z_p
    p_b, p_c = errors_b / n_b, errors_c / n_c
    lo, hi = newcombe_interval(errors_b, n_b, errors_c, n_c, confidence)
    p_greater = test(errors_b, n_b, errors_c, n_c, alternative="greater")
    return ErrorRateTest(
        baseline=p_b,
        candidate=p_c,
        difference=p_c - p_b,
        ci_low=lo,
        ci_high=hi,
        p_greater=p_greater,
        p_beyond=max(p_greater, newcombe_p_beyond(errors_b, n_b, errors_c, n_c, margin)),
        method="fisher-exact" if exact else "z-test",
        se=math.sqrt(p_b * (1 - p_b) / n_b + p_c * (1 - p_c) / n_c),
    )
