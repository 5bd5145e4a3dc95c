"""Turning an estimate, its interval and its adjusted p-value into a check status.

Everything here works on an *oriented* scale on which positive means worse: the log ratio for
latency, minus the log ratio for throughput, the difference for error rates. ``margin`` is the
tolerance on that scale (for latency already raised to the absolute floor).

Statuses, from the worst:

- ``regression``: the p-value of "within tolerance" is significant after Benjamini-Hochberg, and
  the whole interval lies beyond the margin;
- ``slo_breach``: the candidate breaks an absolute SLO (applied by the caller, not here);
- ``inconclusive``: neither a regression nor within tolerance; the data cannot tell;
- ``insufficient_data``: too few requests or windows for the statistic;
- ``improved``: the interval lies entirely on the better side of zero and not inside the margin;
- ``ok``: the whole interval lies inside the margin (equivalence, in the spirit of TOST).
"""

from __future__ import annotations

from statistics import NormalDist

STATUSES = ("regression", "slo_breach", "inconclusive", "insufficient_data", "improved", "ok")
"""All statuses, worst first."""
FAILING = frozenset({"regression", "slo_breach"})
"""Statuses that make the verdict NO-GO."""


def classify(
    low: float, high: float, margin: float, p_adjusted: float, alpha: float
) -> str:
    """Status of a check with an interval ``[low, high]`` on the oriented scale."""
    if p_adjusted <= alpha and low > margin:
        return "regression"
    if -margin < low and high < margin:
        return "ok"
    if high < 0.0:
        return "improved"
    return "inconclusive"


def classify_threshold(estimate: float, margin: float) -> str:
    """Status of a check with no uncertainty estimate: tolerance applied to the point change."""
    if estimate > margin:
        return "regression"
    if estimate < -margin:
        return "improved"
    return "ok"


def detectable_change(se: float, margin: float, alpha: float, power: float = 0.8) -> float:
    """Smallest oriented change flagged as a regression with probability ``power``.

    The lower one-sided ``1 - alpha`` bound must clear the margin: change ``>= margin +
    (z_{1-alpha} + z_{power}) * se`` under a normal approximation of the estimate.
    """
    normal = NormalDist()
    return margin + (normal.inv_cdf(1.0 - alpha) + normal.inv_cdf(power)) * se
