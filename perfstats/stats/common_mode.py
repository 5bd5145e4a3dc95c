"""Common-mode shift: when most endpoints move together, the cause is rarely in every endpoint.

A load generator that was itself short of CPU, a noisy neighbour, another machine: all of them
make every endpoint slower by a similar factor, while a code change usually touches a few. For each
relative metric (p50, p95, p99, mean, throughput) the common shift is the median change across the
endpoints (the whole-run entry and scenario slices left out), on the log scale. When at least
:data:`MIN_ENDPOINTS` endpoints have the metric and at least :data:`MOST` of them moved beyond their
tolerance in the same direction, the comparison says so before its verdict, and every check gets
its change relative to the common shift of its metric, ``change_vs_common_pct`` (None otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from perfstats.stats.drift import ALL_ENDPOINTS, Check

MIN_ENDPOINTS = 3
"""Fewest endpoints with a metric for a common shift to be looked for."""
MOST = 2 / 3
"""Share of the endpoints that must move beyond their tolerance together."""
_RELATIVE = ("p50", "p95", "p99", "mean", "throughput")


@dataclass(frozen=True)
class CommonShift:
    """Endpoints that moved together on one metric.

    Attributes:
        metric: the metric (``p50``...).
        median_pct: the common shift, the median change across the endpoints, in per cent.
        moved: endpoints beyond their tolerance in the common direction.
        endpoints: endpoints with the metric.
        low_pct, high_pct: the smallest and largest change among ``moved``, in per cent.
    """

    metric: str
    median_pct: float
    moved: int
    endpoints: int
    low_pct: float
    high_pct: float

    def message(self) -> str:
        """The warning shown before the verdict."""
        worse = self.median_pct > 0 if self.metric != "throughput" else self.median_pct < 0
        how = ("slower" if self.metric != "throughput" else "lower in throughput") if worse \
            else ("faster" if self.metric != "throughput" else "higher in throughput")
        count = f"all {self.endpoints}" if self.moved == self.endpoints \
            else f"{self.moved} of {self.endpoints}"
        return (f"{count} endpoints {how} ({self.metric}) by {abs(self.low_pct):.0f}-"
                f"{abs(self.high_pct):.0f} %: did the load generator or environment change? "
                f"Each check's change relative to the common shift ({self.median_pct:+.1f} %) is "
                "in change_vs_common_pct")


def _endpoint_rows(checks: Sequence[Check], metric: str) -> list[Check]:
    """The endpoints' checks of ``metric`` that can speak for a shift: a statistic with too few
    requests to be tested (``insufficient_data``, e.g. the p99 of 500 requests) moves by chance
    alone and is left out."""
    return [c for c in checks if c.metric == metric and c.kind == "http" and not c.slice
            and c.endpoint != ALL_ENDPOINTS and c.change_pct is not None
            and c.change_pct > -100.0 and c.status != "insufficient_data"]


def common_shifts(checks: Sequence[Check]) -> tuple[list[Check], list[CommonShift]]:
    """The metrics on which most endpoints moved together (worst first: the largest share moved),
    and the checks, with ``change_vs_common_pct`` filled in when there is such a metric."""
    common: dict[str, float] = {}
    found: list[CommonShift] = []
    for metric in _RELATIVE:
        rows = _endpoint_rows(checks, metric)
        if len(rows) < MIN_ENDPOINTS:
            continue
        logs = sorted(math.log1p(c.change_pct / 100.0) for c in rows)
        mid = len(logs) // 2
        median = logs[mid] if len(logs) % 2 else (logs[mid - 1] + logs[mid]) / 2
        common[metric] = median
        tolerance = {c.endpoint: abs(c.tolerance or 0.0) for c in rows}
        up = [c for c in rows if c.change_pct > tolerance[c.endpoint]]
        down = [c for c in rows if c.change_pct < -tolerance[c.endpoint]]
        moved = up if len(up) >= len(down) else down
        if len(moved) >= max(MIN_ENDPOINTS, math.ceil(MOST * len(rows))):
            changes = sorted(abs(c.change_pct) for c in moved if c.change_pct is not None)
            sign = 1.0 if moved is up else -1.0
            found.append(CommonShift(metric, 100.0 * math.expm1(median), len(moved), len(rows),
                                     sign * changes[0], sign * changes[-1]))
    if not found:  # nothing moved together: no relative change to show
        return list(checks), []
    out = []
    for check in checks:
        if check.metric in common and check.change_pct is not None and check.change_pct > -100:
            relative = 100.0 * math.expm1(math.log1p(check.change_pct / 100.0) - common[
                check.metric])
            check = replace(check, change_vs_common_pct=relative)
        out.append(check)
    found.sort(key=lambda s: -s.moved / s.endpoints)
    return out, found
