"""Histograms, vectorised quantiles, the window bootstrap and the window-level tests."""

from __future__ import annotations

import numpy as np
import pytest

from perfstats.stats.bootstrap import Replicates, bootstrap_histograms, resample_weights
from perfstats.stats.histogram import (
    GAMMA,
    WindowHistogram,
    bucket_index,
    bucket_lower_ms,
    quantile_columns,
    quantiles_from_counts,
    quantiles_from_cumulative,
)
from perfstats.stats.windowlevel import (
    WindowSummaries,
    min_window_count,
    weighted_welch,
    window_mean_test,
    window_quantile_test,
)


def _hist(rng, n=20000, windows=30, median=40.0, sigma=0.5, scale=1.0):
    t = np.sort(rng.uniform(0, windows, n))
    latency = median * scale * np.exp(sigma * rng.standard_normal(n))
    return WindowHistogram.from_samples(t.astype(int), latency, rng.random(n) < 0.01,
                                        np.ones(windows)), latency


def test_buckets_are_one_percent_wide():
    idx = bucket_index(np.array([1.0, 1.0099, 1.0101, 100.0, 0.0, 1e-9]))
    assert idx[:3].tolist() == [0, 0, 1]
    assert idx[4] == idx[5] == bucket_index(np.array([1e-3]))[0]
    lower = bucket_lower_ms(idx[3])
    assert lower <= 100.0 < lower * GAMMA


def test_pooled_quantiles_match_numpy_within_bucket_width():
    rng = np.random.default_rng(3)
    hist, latency = _hist(rng, n=50000)
    exact = np.quantile(latency, [0.5, 0.95, 0.99])
    assert hist.quantiles([0.5, 0.95, 0.99]) == pytest.approx(exact, rel=0.005)
    assert hist.total == 50000 and hist.n_windows == 30
    assert np.sum(hist.sums) == pytest.approx(latency.sum())


def test_quantiles_are_vectorised_over_rows_and_handle_empty_rows():
    buckets = bucket_index(np.array([10.0, 20.0, 150.0]))
    counts = np.array([[50, 45, 5], [0, 0, 0], [0, 10, 0]])
    q = quantiles_from_counts(counts, buckets, [0.6, 0.99])
    assert q[0] == pytest.approx([20.04, bucket_lower_ms(buckets[2]) * GAMMA**0.8], rel=1e-3)
    assert np.isnan(q[1]).all()
    assert 20.0 <= q[2, 0] < 20.0 * GAMMA
    with pytest.raises(ValueError):
        quantiles_from_counts(counts, buckets, [1.0])


def test_merging_adds_counts():
    rng = np.random.default_rng(4)
    a, la = _hist(rng, n=3000, median=10)
    b, lb = _hist(rng, n=2000, median=100)
    merged = a.merge(b)
    assert merged.total == 5000
    assert merged.quantiles([0.5]) == pytest.approx(np.quantile(np.r_[la, lb], [0.5]), rel=0.01)
    with pytest.raises(ValueError):
        a.merge(WindowHistogram(a.buckets, a.counts[:2], a.sums[:2], a.errors[:2], a.lengths[:2]))


def test_quantile_columns_bound_every_mixture():
    # The q-quantile of any weighted mix of windows lies in the kept columns, so the compressed
    # bootstrap equals the full one.
    rng = np.random.default_rng(5)
    hist, _ = _hist(rng, n=6000, windows=12)
    cum = np.cumsum(hist.counts.astype(float), axis=1)
    keep = quantile_columns(cum, [0.5, 0.95, 0.99])
    assert len(keep) < cum.shape[1]
    weights = resample_weights(12, 500, rng)
    full = quantiles_from_counts(weights @ hist.counts, hist.buckets, [0.5, 0.95, 0.99])
    compressed = quantiles_from_cumulative(weights @ cum[:, keep], hist.buckets[keep],
                                           [0.5, 0.95, 0.99])
    assert compressed == pytest.approx(full, rel=1e-12)


def test_bootstrap_is_seeded_and_covers_the_truth():
    rng = np.random.default_rng(6)
    base, _ = _hist(rng)
    cand, _ = _hist(rng, scale=1.2)
    w1 = (resample_weights(30, 1000, np.random.default_rng(1)),
          resample_weights(30, 1000, np.random.default_rng(2)))
    w2 = (resample_weights(30, 1000, np.random.default_rng(1)),
          resample_weights(30, 1000, np.random.default_rng(2)))
    first, second = bootstrap_histograms(base, cand, w1), bootstrap_histograms(base, cand, w2)
    for metric in ("p50", "p95", "p99", "mean"):
        assert first.log_ratios[metric].replicates == pytest.approx(
            second.log_ratios[metric].replicates)
    for metric in ("p50", "p95", "mean"):
        low, high = first.log_ratios[metric].interval(0.99)
        assert low < np.log(1.2) < high
        assert first.log_ratios[metric].p_greater(0.0) < 1e-6
    assert first.baseline["mean"] == pytest.approx(np.sum(base.sums) / base.total)


def test_replicates_p_values_and_degenerate_case():
    reps = Replicates(0.2, np.random.default_rng(0).normal(0.2, 0.1, 4000))
    assert reps.se == pytest.approx(0.1, rel=0.05)
    assert reps.p_greater(0.0) == pytest.approx(0.0228, abs=0.004)
    assert reps.p_less(0.0) == pytest.approx(1 - 0.0228, abs=0.004)
    flat = Replicates(0.0, np.zeros(100))
    assert flat.p_greater() == 0.5


def _summaries(rng, windows=20, per_window=300, median=40.0, scale=1.0):
    counts = rng.poisson(per_window, windows)
    values = {"p50": [], "p95": [], "mean": []}
    for n in counts:
        x = median * scale * np.exp(0.5 * rng.standard_normal(n))
        values["p50"].append(np.quantile(x, 0.5))
        values["p95"].append(np.quantile(x, 0.95))
        values["mean"].append(x.mean())
    return WindowSummaries(counts, {k: np.array(v) for k, v in values.items()},
                           np.zeros(windows, int), np.full(windows, 10.0))


def test_window_level_tests_detect_a_shift_and_drop_thin_windows():
    rng = np.random.default_rng(8)
    base, cand = _summaries(rng), _summaries(rng, scale=1.3)
    weights = (resample_weights(20, 1000, rng), resample_weights(20, 1000, rng))
    for test in (window_quantile_test(base, cand, "p95", 0.95, weights),
                 window_mean_test(base, cand, weights)):
        assert test is not None
        low, high = test.log_ratio.interval(0.99)
        assert low < np.log(1.3) < high
        assert test.welch.p_greater(np.log(1.1)) < 0.01
    assert min_window_count(0.95) == 200 and min_window_count(0.99) == 1000
    # 300 requests per window are too few for p99: no test.
    assert window_quantile_test(base, cand, "p99", 0.99, weights) is None


def test_weighted_welch_matches_scipy_with_equal_weights():
    from scipy import stats

    rng = np.random.default_rng(9)
    x, y = rng.normal(0, 1, 15), rng.normal(0.8, 2, 25)
    welch = weighted_welch(x, np.ones(15), y, np.ones(25))
    expected = stats.ttest_ind(y, x, equal_var=False, alternative="greater")
    assert welch.p_greater() == pytest.approx(expected.pvalue, rel=1e-9)
