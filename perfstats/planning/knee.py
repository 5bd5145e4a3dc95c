"""Kneedle: the point of maximum curvature of a discrete curve.

Satopää, Albrecht, Irwin and Raghavan, "Finding a 'Kneedle' in a Haystack: Detecting Knee Points in
System Behavior", ICDCS Workshops 2011. Offline mode (the first knee), no smoothing; the traversal
follows the kneed package (v0.8.6), including its reset of the threshold to 0 after a local
minimum of the difference curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

Curve = Literal["concave", "convex"]
Direction = Literal["increasing", "decreasing"]


@dataclass(frozen=True)
class Knee:
    """A knee found by :func:`find_knee`.

    Attributes:
        x: the knee's x value.
        y: y at the knee.
        index: position of the knee in the input (original order).
        curve: ``concave`` or ``convex``, as asked.
        direction: ``increasing`` or ``decreasing``, as asked.
    """

    x: float
    y: float
    index: int
    curve: str
    direction: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""
        return asdict(self)


def _neighbours(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Endpoints are compared with themselves (scipy argrelextrema, mode="clip").
    left = np.concatenate([values[:1], values[:-1]])
    right = np.concatenate([values[1:], values[-1:]])
    return left, right


def find_knee(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    curve: Curve = "concave",
    direction: Direction = "increasing",
    sensitivity: float = 1.0,
) -> Knee | None:
    """Locate the knee (concave) or elbow (convex) of ``y`` against ``x`` with Kneedle.

    Both axes are min-max normalised; the curve is mapped to concave-increasing; the difference
    curve ``y_d = y_n - x_n`` is scanned from its first local maximum on, and the knee is the last
    local maximum before ``y_d`` drops below ``y_d(max) - sensitivity * mean(diff(x_n))``.
    For latency against load use ``curve="convex"``; for throughput against load
    ``curve="concave"``.

    Args:
        x: the x values (sorted here; ties keep their order).
        y: the y values.
        curve: ``concave`` or ``convex``.
        direction: ``increasing`` or ``decreasing``.
        sensitivity: S; larger values need a more pronounced knee.

    Returns:
        The knee, or None when there is none (fewer than 3 points, a flat axis, no drop).

    Raises:
        ValueError: arrays of different length, non-finite values, or a bad option.

    Example:
        >>> find_knee(range(10), [0, 60, 80, 85, 90, 95, 96, 97, 98, 99]).x
        2.0
    """
    xs = np.asarray(x, dtype=float).ravel()
    ys = np.asarray(y, dtype=float).ravel()
    if xs.shape != ys.shape:
        raise ValueError(f"x has {xs.size} values but y {ys.size}")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise ValueError("x and y must be finite numbers")
    if curve not in ("concave", "convex"):
        raise ValueError(f"curve must be 'concave' or 'convex', got {curve!r}")
    if direction not in ("increasing", "decreasing"):
        raise ValueError(f"direction must be 'increasing' or 'decreasing', got {direction!r}")
    if sensitivity < 0:
        raise ValueError(f"sensitivity must be >= 0, got {sensitivity}")
    if xs.size < 3:
        return None
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    x_span, y_span = np.ptp(xs), np.ptp(ys)
    if x_span == 0 or y_span == 0:
        return None
    x_n = (xs - xs.min()) / x_span
    y_n = (ys - ys.min()) / y_span
    # Map every shape to concave-increasing; two of the four mappings reverse the point order.
    flipped = (curve == "convex") == (direction == "increasing")
    if curve == "convex":
        y_n = 1.0 - y_n
    if flipped:
        y_n = y_n[::-1]
    diff = y_n - x_n

    left, right = _neighbours(diff)
    maxima = np.flatnonzero((diff >= left) & (diff >= right))
    minima = (diff <= left) & (diff <= right)
    thresholds = diff[maxima] - sensitivity * abs(float(np.mean(np.diff(x_n))))
    is_max = np.zeros(diff.size, dtype=bool)
    is_max[maxima] = True
    threshold_of = np.full(diff.size, np.nan)
    threshold_of[maxima] = thresholds

    threshold, at = np.nan, -1
    for i in range(int(maxima[0]), diff.size - 1):
        if is_max[i]:
            threshold, at = threshold_of[i], i
        if minima[i]:
            threshold = 0.0
        if diff[i + 1] < threshold:
            pos = diff.size - 1 - at if flipped else at
            return Knee(
                x=float(xs[pos]),
                y=float(ys[pos]),
                index=int(order[pos]),
                curve=curve,
                direction=direction,
            )
    return None
