"""Load steps in a stepped or ramped test, found from the load level's time series.

The level is what the tool controlled: virtual users or users (k6 ``vus`` gauge, Locust user
count) or the arrival rate (Artillery new virtual users per period). The series is cut into
constant pieces by binary segmentation of the log level (least squares, a BIC-style penalty
scaled by a robust noise estimate; logs because the noise of an estimated level, such as Little's
law N = X R, grows with the level); neighbouring pieces within ``rel_tol`` of each other are
merged; samples that belong to no plateau (the ramp between two levels) are dropped as
transitions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from perfstats.render.tables import jsonable

_MAD_TO_SD = 1.4826
_MAX_GAP = 2
_IDLE_FRACTION = 1e-3


@dataclass(frozen=True)
class LoadStep:
    """One plateau of the load level.

    Attributes:
        index: 0-based position among the steps found.
        start: time of the first steady sample (same kind as the input times: seconds or a
            UTC datetime).
        end: end of the last steady sample (its time plus its length), exclusive.
        level: median load level over the steady samples.
        n_samples: steady samples in the step.
        duration_s: seconds covered by the steady samples.
    """

    index: int
    start: float | datetime
    end: float | datetime
    level: float
    n_samples: int
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (datetimes as ISO 8601)."""
        return {
            "index": self.index,
            "start": jsonable(self.start),
            "end": jsonable(self.end),
            "level": self.level,
            "n_samples": self.n_samples,
            "duration_s": self.duration_s,
        }


def _to_seconds(times: Any) -> tuple[np.ndarray, bool]:
    """Times as float seconds, and whether they were datetimes."""
    if hasattr(times, "to_numpy"):
        times = times.to_numpy()
    arr = np.asarray(times)
    if arr.dtype == object and arr.size and isinstance(arr.flat[0], datetime):
        secs = np.array([t.timestamp() if t.tzinfo else
                         t.replace(tzinfo=timezone.utc).timestamp() for t in arr.flat])
        return secs, True
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[us]").astype(np.int64) / 1e6, True
    return arr.astype(float), False


def _from_seconds(value: float, as_datetime: bool) -> float | datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc) if as_datetime else float(value)


def _noise_sd(values: np.ndarray) -> float:
    """Robust per-sample noise: MAD of first differences (insensitive to a few level jumps)."""
    if values.size < 3:
        return 0.0
    d = np.diff(values)
    return float(_MAD_TO_SD * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def _segment(values: np.ndarray, penalty: float) -> list[tuple[int, int]]:
    """Binary segmentation with an L2 cost: split while the best split gains more than penalty."""
    cs = np.concatenate([[0.0], np.cumsum(values)])
    pieces: list[tuple[int, int]] = []
    stack = [(0, values.size)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            pieces.append((a, b))
            continue
        k = np.arange(a + 1, b)
        left, right = cs[k] - cs[a], cs[b] - cs[k]
        total = cs[b] - cs[a]
        gain = left**2 / (k - a) + right**2 / (b - k) - total**2 / (b - a)
        best = int(np.argmax(gain))
        if gain[best] > penalty:
            stack.extend([(int(k[best]), b), (a, int(k[best]))])
        else:
            pieces.append((a, b))
    return sorted(pieces)


def detect_steps(
    times: Sequence[Any] | np.ndarray | Any,
    levels: Sequence[float] | np.ndarray | Any,
    *,
    lengths: float | Sequence[float] | np.ndarray | None = None,
    rel_tol: float = 0.05,
    abs_tol: float = 0.0,
    min_duration: float = 5.0,
    penalty: float | None = None,
) -> tuple[LoadStep, ...]:
    """Find the load steps (plateaus) in a time series of the load level.

    Transitions between plateaus (the seconds of a ramp, a window that straddles a change) are
    dropped. Steps at level 0 (before the start, after the end) are not steps.

    A plateau must hold for ``min_duration`` seconds. When one sample covers that long (Artillery's
    10 s periods) a step may own a single window, and with phases of about two periods every other
    window straddles a change: a single window whose level lies strictly between its neighbours'
    is then taken as a transition unless the window before it already was one (the load is 0
    before the first sample, so a partial first window starts the alternation right).

    Args:
        times: sample times (seconds, numpy datetime64, datetimes or a polars Series); sorted
            here.
        levels: the load level at each time (users, VUs, arrivals per second...).
        lengths: seconds each sample covers (scalar or per sample); default the median spacing.
        rel_tol: levels within this fraction of each other are one step.
        abs_tol: and levels within this absolute difference.
        min_duration: seconds of steady samples a step needs (> 0).
        penalty: segmentation penalty per change point on the L2 cost of the log level;
            default ``3 log(n) sd^2`` with ``sd`` the robust noise of the log level (MAD of
            first differences; 0 when one sample may be a step), floored so that an exact
            series still splits at every change.

    Returns:
        The steps in time order.

    Raises:
        ValueError: arrays of different length, a bad tolerance or ``min_duration <= 0``.

    Example:
        >>> levels = [5] * 6 + [7] + [10] * 6 + [15] + [20] * 6
        >>> [(s.level, s.start, s.end) for s in detect_steps(range(20), levels)]
        [(5.0, 0.0, 6.0), (10.0, 7.0, 13.0), (20.0, 14.0, 20.0)]
    """
    t, as_datetime = _to_seconds(times)
    v = np.asarray(levels.to_numpy() if hasattr(levels, "to_numpy") else levels, dtype=float)
    if t.shape != v.shape:
        raise ValueError(f"times has {t.size} values but levels {v.size}")
    if rel_tol < 0 or abs_tol < 0:
        raise ValueError("rel_tol and abs_tol must be >= 0")
    if not min_duration > 0:
        raise ValueError(f"min_duration must be > 0 seconds, got {min_duration}")
    keep = np.isfinite(t) & np.isfinite(v)
    order = np.argsort(t[keep], kind="stable")
    t, v = t[keep][order], v[keep][order]
    if lengths is None:
        spacing = float(np.median(np.diff(t))) if t.size > 1 else 1.0
        length = np.full(t.size, spacing)
    else:
        length = np.broadcast_to(np.asarray(lengths, dtype=float), keep.shape)[keep][order]
    if t.size == 0:
        return ()

    top = float(np.max(v))
    if top <= 0:
        return ()
    # Idle samples (0 users) sit at a low floor in log space instead of at -inf.
    y = np.log(np.maximum(v, top * _IDLE_FRACTION))
    # A one-sample step leaves no within-step spread to tell noise from level changes, so when
    # one sample may be a step the level is taken as exact (only the tolerances merge levels).
    single = float(np.median(length)) >= min_duration
    sd = 0.0 if single else _noise_sd(y)
    if penalty is None:
        penalty = 3.0 * math.log(max(y.size, 2)) * max(sd, 1e-9) ** 2
    groups = _merge(v, _segment(y, penalty), rel_tol, abs_tol)
    plateaus = _plateaus(v, length, groups, rel_tol, abs_tol, min_duration)

    steps: list[LoadStep] = []
    for a, b in plateaus:
        level = float(np.median(v[a:b]))
        if level <= 0:
            continue
        steps.append(LoadStep(
            index=len(steps),
            start=_from_seconds(t[a], as_datetime),
            end=_from_seconds(t[b - 1] + length[b - 1], as_datetime),
            level=level,
            n_samples=b - a,
            duration_s=float(np.sum(length[a:b])),
        ))
    return tuple(steps)


def _within(a: float, b: float, rel_tol: float, abs_tol: float) -> bool:
    return abs(a - b) <= max(rel_tol * max(abs(a), abs(b)), abs_tol)


def _merge(
    v: np.ndarray, pieces: list[tuple[int, int]], rel_tol: float, abs_tol: float
) -> list[tuple[int, int]]:
    """Join consecutive pieces whose level is within tolerance of the group built so far."""
    groups: list[tuple[int, int]] = []
    for a, b in pieces:
        if groups:
            ga, _ = groups[-1]
            if _within(float(np.median(v[ga:a])), float(np.median(v[a:b])), rel_tol, abs_tol):
                groups[-1] = (ga, b)
                continue
        groups.append((a, b))
    # Trim ramp samples that the segmentation left on a plateau's edges.
    trimmed = []
    for a, b in groups:
        level = float(np.median(v[a:b]))
        while b - a > 1 and not _within(v[a], level, rel_tol, abs_tol):
            a += 1
        while b - a > 1 and not _within(v[b - 1], level, rel_tol, abs_tol):
            b -= 1
        trimmed.append((a, b))
    return trimmed


def _plateaus(
    v: np.ndarray, length: np.ndarray, groups: list[tuple[int, int]], rel_tol: float,
    abs_tol: float, min_duration: float,
) -> list[tuple[int, int]]:
    """Keep the groups that are steady load levels, dropping transitions."""
    # A glitch of a sample or two inside a plateau does not cut it in two: bridge it.
    bridged: list[tuple[int, int]] = []
    for a, b in groups:
        level = float(np.median(v[a:b]))
        j = len(bridged) - 1
        while j >= 0 and a - bridged[j][1] <= _MAX_GAP:
            if _within(float(np.median(v[bridged[j][0]:bridged[j][1]])), level, rel_tol, abs_tol):
                break
            j -= 1
        if j >= 0 and a - bridged[j][1] <= _MAX_GAP:
            bridged[j:] = [(bridged[j][0], b)]
        else:
            bridged.append((a, b))

    levels = [float(np.median(v[a:b])) for a, b in bridged]
    kept: list[tuple[int, int]] = []
    previous_was_transition = False
    for i, (a, b) in enumerate(bridged):
        if float(np.sum(length[a:b])) < min_duration * (1 - 1e-9):
            previous_was_transition = True
            continue
        before = levels[i - 1] if i > 0 else 0.0
        after = levels[i + 1] if i + 1 < len(bridged) else 0.0
        between = min(before, after) < levels[i] < max(before, after) and not (
            _within(levels[i], before, rel_tol, abs_tol)
            or _within(levels[i], after, rel_tol, abs_tol))
        if b - a == 1 and between and not previous_was_transition:
            previous_was_transition = True
            continue
        previous_was_transition = False
        kept.append((a, b))
    return kept
