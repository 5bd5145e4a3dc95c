"""Change points in a series with one value per run (for example each run's p95).

Two detectors are offered:

* ``method="otava"`` (default): the deterministic Hunter/Otava split-merge variant of E-divisive
  (Fleming et al., ICPE 2023). Sliding windows of ``window`` values, stepping by ``window // 2``,
  are split recursively at the E-divisive candidate (the ``tau`` of the ``(tau, kappa)`` pair that
  maximises Q-hat, Matteson & James 2014, exponent 1) while a two-sample t-test passes a relaxed
  first-pass threshold (10x ``p_value`` below 0.05). The union of these "weak" change points is
  then merged: the point with the largest p-value is dropped while that p-value is
  ``>= p_value``, then the point with the smallest magnitude while it is ``<= min_magnitude``.
  A change point is tested on the segments between its neighbours, so each drop re-tests the two
  neighbours of the dropped point.
* ``method="permutation"``: the original E-divisive of Matteson & James (JASA 2014): the
  candidate's Q-hat is compared with the Q-hat maxima of ``permutations`` seeded shuffles of the
  current segments, ``p = #{Q_perm >= Q} / (R + 1)``, recursing while ``p <= p_value``; then points
  are dropped, smallest first, while their magnitude is ``<= min_magnitude``.

Default t-test: both Welch's test and the pooled Student test (ddof=1) must reject, i.e. the
p-value is the larger of the two. Welch alone is badly anti-conservative when a short segment's
few values happen to lie close together: in our simulation it put a false change point in up to
22% of stationary 60-run series, against at most 3.5% when both tests must agree. Each side needs
two values, so a single outlying run is never a regime of its own. In the split step the
candidate's right side is the ``[tau, kappa)`` that E-divisive chose rather than the rest of the
window, so that an up-then-down pair inside one window cannot mask the first step.

``otava_compat=True`` reproduces Apache Otava 0.8.0 exactly instead: a pooled Student t-test fed
with population standard deviations (ddof=0), the split step testing against the rest of the
window, and, after a drop in the merge step, re-tests of the two points *right* of the dropped one
while its left neighbour keeps stale stats; the reported stats are Otava's.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from perfstats.render.document import Document, Result, Section

if TYPE_CHECKING:
    import altair as alt

__all__ = ["ChangePoint", "detect_change_points"]

Method = Literal["otava", "permutation"]


@dataclass(frozen=True, slots=True)
class ChangePoint(Result):
    """A change in level between two segments of a series.

    Attributes:
        index: 0-based index of the first value of the new regime (``series[:index]`` is before).
        mean_before: mean of the segment from the previous change point (or the start) to ``index``.
        mean_after: mean of the segment from ``index`` to the next change point (or the end).
        magnitude: ``max(|after/before - 1|, |before/after - 1|)``, the symmetric relative size of
            the change that ``min_magnitude`` is compared with.
        p_value: p-value of the test that accepted the point (t-test or permutation test).
    """

    index: int
    mean_before: float
    mean_after: float
    magnitude: float
    p_value: float

    @property
    def relative_change(self) -> float:
        """Signed relative change ``mean_after / mean_before - 1`` (0.0 when mean_before is 0)."""
        return _forward_change(self.mean_before, self.mean_after)

    @property
    def warnings(self) -> tuple[str, ...]:
        """None: the test that accepted the point is in its p-value."""
        return ()

    def headline(self) -> str:
        """One line: where, from what level to what, and how sure."""
        return (f"change at index {self.index}: {self.mean_before:.4g} -> {self.mean_after:.4g} "
                f"({100 * self.relative_change:+.1f}%), p {self.p_value:.3g}")

    def document(self) -> Document:
        """The change point's figures as one table row."""
        return Document(title=f"Change point at index {self.index}", lead=[self.headline()],
                        sections=[Section(table=pl.DataFrame([self.to_dict()]))])

    def chart(self, *, series: ArrayLike, title: str = "Change point") -> alt.LayerChart:
        """The ``series`` the point was found in, by position, with the point as a dashed rule.

        Args:
            series: the values :func:`detect_change_points` was given.
            title: chart title.
        """
        from perfstats.render import charts

        values = np.asarray(series, dtype=np.float64)
        frame = pl.DataFrame({"position": np.arange(values.size), "value": values})
        return charts.history_series(
            frame, x="position", color=None, y_title="value", x_title="position in the series",
            change_points=pl.DataFrame({"position": [self.index]}), title=title)

    def to_dict(self) -> dict[str, int | float]:
        """Return the change point as plain JSON-serialisable values."""
        return {
            "index": self.index,
            "mean_before": self.mean_before,
            "mean_after": self.mean_after,
            "relative_change": self.relative_change,
            "magnitude": self.magnitude,
            "p_value": self.p_value,
        }


def detect_change_points(
    values: ArrayLike,
    *,
    p_value: float = 0.001,
    min_magnitude: float = 0.05,
    window: int = 50,
    method: Method = "otava",
    permutations: int = 199,
    seed: int | None = 0,
    otava_compat: bool = False,
) -> list[ChangePoint]:
    """Find the change points of a 1-D series, in index order.

    Args:
        values: one finite value per run, in run order (any 1-D array-like).
        p_value: significance level; a change point is kept only if its p-value is below it.
        min_magnitude: smallest kept change, as ``max(|a/b - 1|, |b/a - 1|)`` of the segment means
            (0.05 = 5 %). Relative sizes only make sense for positive values such as latencies.
        window: window length of the Otava split step (ignored by ``"permutation"``).
        method: ``"otava"`` (deterministic t-test variant) or ``"permutation"`` (Matteson & James).
        permutations: number of permutations of the permutation test (``R``; the smallest
            non-zero p-value is ``1 / (R + 1)``).
        seed: seed of the permutation test's random generator.
        otava_compat: reproduce Apache Otava 0.8.0 exactly, quirks included (``"otava"`` only).

    Returns:
        The change points sorted by index; empty when the series has fewer than 2 values.

    Raises:
        ValueError: on a series that is not 1-D or not finite, or on an out-of-range option.

    Example:
        >>> [cp.index for cp in detect_change_points([1.0] * 10 + [2.0] * 10)]
        [10]
    """
    series = np.asarray(values, dtype=np.float64)
    if series.ndim != 1:
        raise ValueError(f"values must be 1-D, got an array of shape {series.shape}")
    if not np.all(np.isfinite(series)):
        raise ValueError("values must be finite (no NaN or infinity)")
    if not 0.0 < p_value <= 1.0:
        raise ValueError(f"p_value must be in (0, 1], got {p_value}")
    if min_magnitude < 0.0:
        raise ValueError(f"min_magnitude must be >= 0, got {min_magnitude}")
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window}")
    if permutations < 1:
        raise ValueError(f"permutations must be at least 1, got {permutations}")
    if method == "otava":
        return _otava(
            series,
            p_value,
            min_magnitude,
            window,
            otava_test=otava_compat,
            otava_merge=otava_compat,
        )
    if method == "permutation":
        if otava_compat:
            raise ValueError("otava_compat applies to method='otava' only")
        rng = np.random.default_rng(seed)
        return _permutation(series, p_value, min_magnitude, permutations, rng)
    raise ValueError(f"method must be 'otava' or 'permutation', got {method!r}")


def best_split(segment: NDArray[np.float64]) -> tuple[int, int, float]:
    """Return the E-divisive candidate ``(tau, kappa, q_hat)`` of a segment of at least 2 values.

    Q-hat(tau, kappa) = mn/(m+n) * E-hat(X, Y) with X = segment[:tau] (n values), Y =
    segment[tau:kappa] (m values) and exponent 1, maximised over ``0 < tau < kappa <= len``. Ties go
    to the first pair in (tau, kappa) row-major order.
    """
    q_hat = _q_hat(segment[None, :])[0]
    row, col = np.unravel_index(np.argmax(q_hat), q_hat.shape)
    return int(row) + 1, int(col) + 2, float(q_hat[row, col])


def _q_hat(batch: NDArray[np.float64]) -> NDArray[np.float64]:
    """Q-hat of every (tau, kappa) pair for each row of ``batch`` (shape rows x len).

    Returns shape (rows, len - 1, len - 1): entry [r, i, j] is Q-hat(tau = i + 1, kappa = j + 2)
    of row r, and -inf where kappa <= tau. All pairs come from a 2-D prefix sum of the distance
    matrix: O(len^2) time and memory per row.
    """
    size = batch.shape[1]
    dist = np.abs(batch[:, :, None] - batch[:, None, :])
    prefix = np.zeros((batch.shape[0], size + 1, size + 1))
    prefix[:, 1:, 1:] = dist.cumsum(axis=1).cumsum(axis=2)
    diagonal = np.diagonal(prefix, axis1=1, axis2=2)
    p_tt = diagonal[:, 1:size, None]
    p_kk = diagonal[:, None, 2:]
    p_tk = prefix[:, 1:size, 2:]
    n = np.arange(1, size, dtype=np.float64)[:, None]
    m = np.arange(2, size + 1, dtype=np.float64)[None, :] - n
    # Sums over pairs i < k inside X and inside Y (the distance matrix is symmetric).
    within_x = p_tt / 2.0
    within_y = (p_kk - 2.0 * p_tk + p_tt) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        coef_x = np.where(n > 1, 2.0 * m / ((m + n) * (n - 1)), 0.0)
        coef_y = np.where(m > 1, 2.0 * n / ((m + n) * (m - 1)), 0.0)
    q_hat = 2.0 / (m + n) * (p_tk - p_tt) - coef_x * within_x - coef_y * within_y
    return np.where(m > 0, q_hat, -np.inf)


def _max_q_hat_rows(batch: NDArray[np.float64]) -> NDArray[np.float64]:
    """Largest Q-hat of each row, in chunks that keep the working arrays near 4 M values."""
    size = batch.shape[1]
    if size < 2:
        return np.full(batch.shape[0], -np.inf)
    chunk = max(1, 4_000_000 // (size * size))
    return np.concatenate(
        [_q_hat(batch[i : i + chunk]).max(axis=(1, 2)) for i in range(0, len(batch), chunk)]
    )


def _forward_change(before: float, after: float) -> float:
    return after / before - 1.0 if before != 0 else 0.0


def _magnitude(before: float, after: float) -> float:
    return max(abs(_forward_change(before, after)), abs(_forward_change(after, before)))


def _t_test(left: NDArray[np.float64], right: NDArray[np.float64], compat: bool) -> float:
    """Two-sided p-value of a difference in means between two segments."""
    n1, n2 = len(left), len(right)
    m1, m2 = float(left.mean()), float(right.mean())
    if compat:
        # Otava: population std (ddof=0) inside the pooled Student test, needing 3 values.
        if n1 + n2 < 3:
            return 1.0
        s1, s2 = float(left.std()), float(right.std())
    else:
        # One run is an outlier, not a regime: each side needs two values.
        if n1 < 2 or n2 < 2:
            return 1.0
        s1, s2 = float(left.std(ddof=1)), float(right.std(ddof=1))
    if s1 == 0.0 and s2 == 0.0:
        return 0.0 if m1 != m2 else 1.0
    p = float(stats.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=True).pvalue)
    if not compat:
        # Welch alone is far too liberal when a short segment's few values happen to lie close
        # together, so the pooled-variance test must agree as well.
        welch = stats.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False)
        p = max(p, float(welch.pvalue))
    return 1.0 if np.isnan(p) else p


@dataclass(frozen=True, slots=True)
class _Stats:
    p_value: float
    mean_before: float
    mean_after: float

    @property
    def magnitude(self) -> float:
        return _magnitude(self.mean_before, self.mean_after)


def _segment_stats(
    series: NDArray[np.float64], indices: list[int], pos: int, compat: bool
) -> _Stats:
    """T-test the point at list position ``pos`` against the segments between its neighbours."""
    index = indices[pos]
    lower = max((i for i in indices if i < index), default=0)
    upper = min((i for i in indices if i > index), default=len(series))
    left, right = series[lower:index], series[index:upper]
    return _Stats(_t_test(left, right, compat), float(left.mean()), float(right.mean()))


def _divisive_t_test(segment: NDArray[np.float64], threshold: float, compat: bool) -> list[int]:
    """Recursive E-divisive on one window, accepting candidates while the t-test passes."""
    found: list[int] = []
    cache: dict[tuple[int, int], _Candidate] = {}
    while True:
        best = _max_q_hat(segment, [0, *found, len(segment)], cache)
        if best is None:
            return found
        # Otava tests the candidate against the rest of its segment. By default the right side
        # is the Y = [tau, kappa) that E-divisive picked, so that a second change further on
        # (say up then down past the start level) cannot mask the first one.
        right = segment[best.index : best.stop if compat else best.kappa]
        if _t_test(segment[best.start : best.index], right, compat) > threshold:
            return found
        found = sorted([*found, best.index])


def _split(series: NDArray[np.float64], window: int, threshold: float, compat: bool) -> list[int]:
    """Otava's split step: union of the windowed divisive results (the weak change points)."""
    step = window // 2
    start = 0
    weak: list[int] = []
    while start < len(series):
        end = min(start + window, len(series))
        found = [start + i for i in _divisive_t_test(series[start:end], threshold, compat)]
        start = max(found[-1] if found else 0, start + step)
        # Overlapping windows can find the same index twice.
        weak.extend(i for i in found if i not in weak)
    return sorted(weak)


def _otava(
    series: NDArray[np.float64],
    p_value: float,
    min_magnitude: float,
    window: int,
    *,
    otava_test: bool,
    otava_merge: bool,
) -> list[ChangePoint]:
    """Split-merge; ``otava_test``/``otava_merge`` switch on Otava's t-test/merge quirks."""
    if len(series) < 2:
        return []
    if p_value < 0.05:
        first_pass = 10 * p_value
    elif p_value < 0.5:
        first_pass = 2 * p_value
    else:
        first_pass = p_value
    indices = _split(series, window, first_pass, otava_test)
    point_stats = [_segment_stats(series, indices, pos, otava_test) for pos in range(len(indices))]
    while indices:
        weakest = int(np.argmax([s.p_value for s in point_stats]))
        if point_stats[weakest].p_value < p_value:
            weakest = int(np.argmin([s.magnitude for s in point_stats]))
            if point_stats[weakest].magnitude > min_magnitude:
                break
        del indices[weakest]
        del point_stats[weakest]
        # Otava refreshes list positions k and k + 1 (the right neighbour and the one after it);
        # the neighbours that really changed are k - 1 and k.
        for refresh in (weakest, weakest + 1) if otava_merge else (weakest - 1, weakest):
            if 0 <= refresh < len(indices):
                point_stats[refresh] = _segment_stats(series, indices, refresh, otava_test)
    return [
        ChangePoint(i, s.mean_before, s.mean_after, s.magnitude, s.p_value)
        for i, s in zip(indices, point_stats, strict=True)
    ]


class _Candidate(NamedTuple):
    """An E-divisive candidate in absolute indices: X = [start, index), Y = [index, kappa)."""

    q_hat: float
    index: int
    kappa: int
    start: int
    stop: int


def _max_q_hat(
    series: NDArray[np.float64],
    bounds: list[int],
    cache: dict[tuple[int, int], _Candidate] | None = None,
) -> _Candidate | None:
    """Best candidate over the segments between ``bounds``; ties go to the first segment.

    ``cache`` keeps the candidate of each unchanged segment from one round to the next.
    """
    best: _Candidate | None = None
    for lo, hi in pairwise(bounds):
        if hi - lo < 2:
            continue
        candidate = cache.get((lo, hi)) if cache is not None else None
        if candidate is None:
            tau, kappa, q_hat = best_split(series[lo:hi])
            candidate = _Candidate(q_hat, lo + tau, lo + kappa, lo, hi)
            if cache is not None:
                cache[(lo, hi)] = candidate
        if best is None or candidate.q_hat > best.q_hat:
            best = candidate
    return best


def _permutation(
    series: NDArray[np.float64],
    p_value: float,
    min_magnitude: float,
    permutations: int,
    rng: np.random.Generator,
) -> list[ChangePoint]:
    found: dict[int, float] = {}
    while True:
        bounds = [0, *sorted(found), len(series)]
        best = _max_q_hat(series, bounds)
        if best is None:
            break
        # Row r of each block is the r-th permutation of that segment (sorting uniform keys
        # gives uniform permutations); the statistic is the largest Q-hat over all segments.
        permuted_q = np.max(
            [
                _max_q_hat_rows(series[lo:hi][rng.random((permutations, hi - lo)).argsort(axis=1)])
                for lo, hi in pairwise(bounds)
            ],
            axis=0,
        )
        # A permutation that re-creates the observed split ties with it up to rounding; a tie
        # counts as "at least as extreme", or float noise would decide the p-value.
        exceed = int(np.count_nonzero(permuted_q >= best.q_hat - 1e-9 * abs(best.q_hat)))
        p = exceed / (permutations + 1)
        if p > p_value:
            break
        found[best.index] = p
    indices = sorted(found)
    # Drop the smallest change while it is below min_magnitude; means are re-read from the
    # segments between the remaining neighbours after every drop.
    while indices:
        point_stats = [_segment_stats(series, indices, pos, False) for pos in range(len(indices))]
        weakest = int(np.argmin([s.magnitude for s in point_stats]))
        if point_stats[weakest].magnitude > min_magnitude:
            break
        del indices[weakest]
    result = []
    for pos, index in enumerate(indices):
        s = _segment_stats(series, indices, pos, False)
        result.append(ChangePoint(index, s.mean_before, s.mean_after, s.magnitude, found[index]))
    return result
