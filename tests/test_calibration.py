"""Calibration of the drift gate by simulation (fixed seeds, default settings).

Synthetic runs (perfstats.stats.simulate): five endpoints at 100 req/s in total, lognormal latency
(sigma 0.3-0.8), AR(1) log-latency noise per endpoint (time constant 0.25 s) plus a noise shared by
all endpoints (time constant 2 s, 10 % of the variance), Poisson arrivals, independent errors.
Every candidate is 3 % slower than its baseline on every endpoint: a run-to-run level shift that no
within-run statistic can see, which is what the tolerance is for. Each grain (raw samples,
per-window summaries, one summary per run) is judged on its own pairs. The measured rates and the
before/after table (benchmarks/gate_calibration.py) are in docs/compare.md.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from perfstats.stats.simulate import DEFAULT_ENDPOINTS, GRAINS, simulate_pairs


@pytest.mark.slow
@pytest.mark.parametrize("grain", GRAINS)
@pytest.mark.parametrize(("duration_s", "pairs"), [(75.0, 80), (600.0, 40), (1800.0, 25)])
def test_false_no_go_rate_at_every_length_and_grain(duration_s, pairs, grain):
    result = simulate_pairs(pairs, seed=int(duration_s) + 1, duration_s=duration_s, grain=grain)
    # measured 0-2.5 % (docs/compare.md: 0-3.5 % over 200-1,000 pairs)
    assert result.no_go_rate <= 0.05


@pytest.mark.slow
def test_false_no_go_rate_under_strong_autocorrelation():
    # Per-request correlation 0.94-0.97 and 30 % of the variance in a 5 s shared noise: windows
    # of 10 s are barely longer than the noise, the hardest case for a block bootstrap.
    result = simulate_pairs(60, seed=5, duration_s=300.0, tau_s=1.0, shared_share=0.3,
                            shared_tau_s=5.0)
    assert result.no_go_rate <= 0.05  # measured: 0.033 (at half the tolerance: 0.017)


@pytest.mark.slow
def test_power_for_errors_one_to_four_percent_on_a_thousand_requests():
    endpoints = [replace(ep, rate=1000 / 75) if ep.name == "POST /api/bookings" else ep
                 for ep in DEFAULT_ENDPOINTS]
    result = simulate_pairs(40, seed=4, duration_s=75.0, endpoints=endpoints,
                            target="POST /api/bookings", error_rate=0.04)
    assert result.caught_rate >= 0.80  # measured: 1.0
    assert result.false_regression_rate <= 0.05


@pytest.mark.slow
def test_power_for_twenty_percent_on_one_endpoint_in_ten_minutes():
    # POST /api/bookings: 15 req/s, median 30 ms, sigma 0.35 (9,000 requests per run); the whole
    # distribution +20 %, so its p95 too.
    result = simulate_pairs(40, seed=20, duration_s=600.0, target="POST /api/bookings",
                            effect=1.20)
    assert result.caught_rate >= 0.80  # measured: 1.0
    # The p95 itself, a secondary tested behind the mean: 0.99 over 200 pairs.
    assert result.p95_caught_rate >= 0.80
    assert result.false_regression_rate <= 0.05


@pytest.mark.slow
def test_power_for_fifteen_percent_in_thirty_minutes_is_not_less_than_before():
    result = simulate_pairs(25, seed=15, duration_s=1800.0, target="POST /api/bookings",
                            effect=1.15)
    assert result.caught_rate >= 0.90  # measured: 1.0 (the previous design: 0.905)
    assert result.false_regression_rate == 0.0


@pytest.mark.slow
def test_power_for_twenty_five_percent_on_a_small_endpoint_of_a_short_run():
    # POST /api/auth/login: 10 req/s (750 requests in 75 s), median 60 ms, sigma 0.35, +25 %.
    # The 80 % target, reached by testing against 0.45 of the tolerance (docs/compare.md, "The
    # question each p-value answers"): measured 0.825 here; 0.845 over 1,000 pairs (the null at
    # half the tolerance: 0.822; a single planned test of the endpoint: 0.963).
    result = simulate_pairs(120, seed=25, duration_s=75.0, target="POST /api/auth/login",
                            effect=1.25)
    assert result.caught_rate >= 0.80
    # When one endpoint really changed the verdict is right, and Benjamini-Hochberg across the
    # families holds the share of flagged endpoints that did not change at alpha; the share of
    # pairs that flag one more endpoint is higher (measured here: 0.0375 and 0.067).
    assert result.false_discovery_rate <= 0.05
    assert result.false_regression_rate <= 0.10
