"""Calibration of the drift gate by simulation (fixed seeds, default settings).

Synthetic runs (perfstats.stats.simulate): five endpoints at 100 req/s in total, lognormal latency
(sigma 0.3-0.8), AR(1) log-latency noise per endpoint (time constant 0.25 s) plus a noise shared by
all endpoints (time constant 2 s, 10 % of the variance), Poisson arrivals, independent errors.
Every A/A candidate is 3 % slower than its baseline on every endpoint: a run-to-run level shift
that no within-run statistic can see, which is what the tolerance is for. The measured rates are
quoted in docs/compare.md.
"""

from __future__ import annotations

import pytest

from perfstats.stats.simulate import simulate_pairs


@pytest.mark.slow
def test_false_no_go_rate_of_ten_minute_runs():
    result = simulate_pairs(200, seed=20261122, duration_s=600.0)
    assert result.pairs == 200
    assert result.no_go_rate <= 0.05  # measured: 0.0


@pytest.mark.slow
def test_false_no_go_rate_of_short_runs_like_the_sample_data():
    result = simulate_pairs(100, seed=75, duration_s=75.0)
    assert result.no_go_rate <= 0.05  # measured: 0.01


@pytest.mark.slow
def test_false_no_go_rate_under_strong_autocorrelation():
    # Per-request correlation 0.94-0.97 and 30 % of the variance in a 5 s shared noise: windows
    # of 10 s are barely longer than the noise, the hardest case for a block bootstrap.
    result = simulate_pairs(100, seed=5, duration_s=300.0, tau_s=1.0, shared_share=0.3,
                            shared_tau_s=5.0)
    assert result.no_go_rate <= 0.05  # measured: 0.02


@pytest.mark.slow
def test_power_for_a_fifteen_percent_shift_on_one_endpoint():
    # POST /api/bookings: 15 req/s, median 30 ms, sigma 0.35; 30-minute runs (27,000 requests
    # of that endpoint per run). The whole latency distribution moves by +15 % (so does p95),
    # 5 points beyond the 10 % tolerance.
    result = simulate_pairs(200, seed=5, duration_s=1800.0, shift=1.0,
                            target="POST /api/bookings", effect=1.15)
    assert result.caught_rate >= 0.80  # measured: 0.905 (the p95 check alone: 0.675)
    assert result.false_regression_rate == 0.0
