"""Turning an estimate, its interval and its adjusted p-value into a check status.

Everything here works on an *oriented* scale on which positive means worse: the log ratio for
latency, minus the log ratio for throughput, the difference for error rates. ``margin`` is the
relative tolerance on that scale; the absolute latency floor is applied separately.

Statuses, from the worst:

- ``regression``: the change is beyond the tolerance (point estimate), it is significant after
  the adjustment over all checks (:mod:`.procedure`), and a latency change is larger than the
  absolute floor;
- ``slo_breach``: the candidate breaks an absolute SLO (applied by the caller, not here);
- ``inconclusive``: neither a regression nor within tolerance; the note says why;
- ``insufficient_data``: too few requests or windows for the statistic;
- ``improved``: the interval lies entirely on the better side of zero and not inside the margin;
- ``ok``: the whole interval lies inside the margin (equivalence, in the spirit of TOST), or
  inside the absolute floor without lying wholly beyond the margin.
"""

from __future__ import annotations

from statistics import NormalDist

STATUSES = ("regression", "slo_breach", "inconclusive", "insufficient_data", "improved", "ok")
"""All statuses, worst first."""
FAILING = frozenset({"regression", "slo_breach"})
"""Statuses that make the verdict NO-GO."""


def classify(
    estimate: float,
    low: float,
    high: float,
    margin: float,
    p_adjusted: float,
    alpha: float,
    *,
    below_floor: bool = False,
    within_floor: bool = False,
) -> str:
    """Status of a check with an interval ``[low, high]`` on the oriented scale.

    A regression is a change beyond the margin (the point estimate) that is significant after the
    adjustment (``p_adjusted``: of "no change", over all checks) and, for latency, larger than the
    absolute floor (``below_floor`` false). ``ok`` needs the whole interval inside the margin, or
    inside the absolute floor while not wholly beyond the margin (``within_floor``): an interval
    wholly beyond the margin is never ``ok``.
    """
    if p_adjusted <= alpha and estimate > margin and not below_floor:
        return "regression"
    if (-margin < low and high < margin) or (within_floor and low <= margin):
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


def detectable_change(
    se: float, margin: float, alpha: float, power: float = 0.8, *, null: float = 0.0
) -> float:
    """Smallest oriented change flagged as a regression with probability ``power``.

    The estimate must exceed the margin and reject H0 "change <= ``null``" at level ``alpha``
    (the level a lone regression is tested at after the adjustment): under a normal
    approximation of the estimate the change must be ``max(margin, null + z_{1-alpha} * se) +
    z_{power} * se``.
    """
    normal = NormalDist()
    return max(margin, null + normal.inv_cdf(1.0 - alpha) * se) + normal.inv_cdf(power) * se
