"""Load-step detection on synthetic series with known steps (fixed seeds)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from perfstats.planning.steps import detect_steps

LEVELS = [5, 10, 20, 40, 60, 80, 100]


def k6_stepped_vus(rng: np.random.Generator, jitter: int) -> tuple[np.ndarray, np.ndarray, list]:
    """ramping-vus: each step a 1 s ramp then a 19 s hold, the gauge sampled every second."""
    values, truth = [], []
    previous = 0
    for level in LEVELS:
        values.append(round((previous + level) / 2))  # the ramp second
        truth.append((level, len(values), len(values) + 19))
        values += [level] * 19
        previous = level
    values += [50, 0, 0]
    v = np.array(values, dtype=float)
    if jitter:
        # A VU finishing an iteration late or starting early, now and then, during the holds.
        hold = np.zeros(v.size, dtype=bool)
        for _, start, end in truth:
            hold[start:end] = True
        hits = hold & (rng.random(v.size) < 0.15)
        v[hits] += rng.integers(-jitter, jitter + 1, hits.sum())
    return np.arange(v.size, dtype=float), v, truth


def assert_matches(steps, truth, *, level_rel=0.0, slack=0.0, cover=0.75):
    assert len(steps) == len(truth), [(s.level, s.start, s.end) for s in steps]
    for step, (level, start, end) in zip(steps, truth, strict=True):
        assert step.level == pytest.approx(level, rel=level_rel, abs=1e-9)
        # Never a transition second inside a step (with `slack` for noisy series) ...
        assert step.start >= start - slack and step.end <= end + slack
        # ... and most of the hold is kept.
        assert step.end - step.start >= cover * (end - start)


@pytest.mark.parametrize("seed, jitter", [(1, 0), (2, 1), (3, 1)])
def test_k6_vus_gauge(seed, jitter):
    t, v, truth = k6_stepped_vus(np.random.default_rng(seed), jitter)
    steps = detect_steps(t, v)
    assert_matches(steps, truth, level_rel=0.0)
    assert [s.index for s in steps] == list(range(7))


def test_locust_user_count_starts_at_zero_and_spawns_in_a_second():
    # Locust history: the first row has 0 users; spawn rate 50/s reaches each level within 1 s.
    values = [0, 0]
    truth = []
    for level in LEVELS:
        truth.append((level, len(values), len(values) + 20))
        values += [level] * 20
    values += [0, 0]
    t = np.arange(len(values), dtype=float)
    assert_matches(detect_steps(t, values), truth, cover=1.0)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_noisy_concurrency_from_littles_law(seed):
    # N = X x R per second scatters by ~10 % around the level.
    rng = np.random.default_rng(seed)
    t, v, truth = k6_stepped_vus(rng, 0)
    noisy = v * (1 + 0.10 * rng.standard_normal(v.size))
    steps = detect_steps(t, noisy, rel_tol=0.10)
    assert_matches(steps, truth, level_rel=0.08, slack=2.0, cover=0.7)


def artillery_windows(rates, phase_s, offset_s, window_s=10):
    """Arrivals per second from consecutive phases, summed into clock-aligned windows."""
    per_second = np.concatenate([[0.0] * offset_s] + [[r] * phase_s for r in rates] + [[0.0]])
    pad = (-per_second.size) % window_s
    per_second = np.concatenate([per_second, np.zeros(pad)])
    windows = per_second.reshape(-1, window_s).mean(axis=1)
    starts = np.arange(windows.size, dtype=float) * window_s
    truth = []
    for i, r in enumerate(rates):
        a, b = offset_s + i * phase_s, offset_s + (i + 1) * phase_s
        first, last = -(-a // window_s) * window_s, (b // window_s) * window_s
        truth.append((r, first, last))
    return starts, windows, truth


def test_artillery_twenty_second_phases_in_ten_second_periods():
    # The shared ramp run: phases of 20 s (2..18 arrivals/s) that start 4 s into a period, so
    # every step owns one whole period and the periods between straddle a change.
    starts, rates, truth = artillery_windows([2, 4, 6, 9, 12, 15, 18], 20, 4)
    steps = detect_steps(starts, rates, lengths=10.0)
    assert_matches(steps, truth, cover=1.0)
    assert [s.n_samples for s in steps] == [1] * 7


def test_artillery_long_phases_need_no_special_rule():
    starts, rates, truth = artillery_windows([5, 10, 20, 30], 60, 7)
    steps = detect_steps(starts, rates)
    assert_matches(steps, truth, cover=1.0)
    assert [s.n_samples for s in steps] == [5] * 4


def test_a_fast_ramp_has_no_steps_and_a_slow_one_is_cut_within_tolerance():
    t = np.arange(60.0)
    assert detect_steps(t, 1.1**t) == ()
    slow = detect_steps(t, 100 + t)  # +1 % a second: chunks that stay within rel_tol
    assert len(slow) > 1
    for step in slow:
        assert step.n_samples <= 2 * 0.05 * 160 + 1


def test_a_glitch_inside_a_plateau_does_not_split_it():
    v = np.array([10.0] * 20 + [30.0] * 20)
    v[8] = 3.0
    steps = detect_steps(np.arange(40.0), v)
    assert [(s.level, s.start, s.end) for s in steps] == [(10.0, 0.0, 20.0), (30.0, 20.0, 40.0)]


def test_datetimes_in_datetimes_out():
    base = datetime(2026, 11, 22, 1, 37, tzinfo=timezone.utc).timestamp()
    t = (np.arange(30) + base).astype("datetime64[s]")
    steps = detect_steps(t, [5.0] * 15 + [10.0] * 15)
    assert steps[1].start == datetime(2026, 11, 22, 1, 37, 15, tzinfo=timezone.utc)
    assert steps[1].to_dict()["end"] == "2026-11-22T01:37:30+00:00"
    py = [datetime.fromtimestamp(base + i, tz=timezone.utc) for i in range(30)]
    assert detect_steps(py, [5.0] * 15 + [10.0] * 15) == steps


def test_idle_and_empty_series():
    assert detect_steps([], []) == ()
    assert detect_steps(np.arange(10.0), np.zeros(10)) == ()


def test_bad_arguments():
    with pytest.raises(ValueError, match="min_duration"):
        detect_steps([1, 2], [1, 2], min_duration=0)
    with pytest.raises(ValueError, match="2 values"):
        detect_steps([1, 2], [1, 2, 3])
