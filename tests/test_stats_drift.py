"""The drift gate on arrays: statuses, methods, the testing design, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perfstats.stats.decision import classify, classify_threshold, detectable_change
from perfstats.stats.drift import (
    DriftSettings,
    EndpointData,
    RunData,
    auto_window_s,
    drift_checks,
    verdict,
    window_summaries,
)
from perfstats.stats.simulate import ALL, SyntheticEndpoint, synthetic_run

ENDPOINTS = (
    SyntheticEndpoint("GET /a", 40.0, 20.0, 0.3),
    SyntheticEndpoint("POST /b", 20.0, 50.0, 0.4, error_rate=0.01),
)


def _pair(seed=1, scale=1.0, duration_s=600.0, **kw):
    rng = np.random.default_rng(seed)
    base = synthetic_run(ENDPOINTS, duration_s=duration_s, rng=rng, **kw)
    cand = synthetic_run(ENDPOINTS, duration_s=duration_s, rng=rng, scale=scale, **kw)
    return base, cand


def _by_key(checks):
    return {(c.endpoint, c.metric): c for c in checks}


def test_classify_statuses():
    m = math.log(1.1)
    assert classify(0.3, 0.2, 0.4, m, p_adjusted=0.01, alpha=0.05) == "regression"
    # The point estimate beyond the margin and significant: a regression, even when the interval
    # reaches below the margin.
    assert classify(0.15, 0.05, 0.25, m, p_adjusted=0.01, alpha=0.05) == "regression"
    # Beyond the margin but not significant after the adjustment: not a regression.
    assert classify(0.3, 0.2, 0.4, m, p_adjusted=0.2, alpha=0.05) == "inconclusive"
    # Significant but within the margin: not a regression.
    assert classify(0.05, 0.01, 0.09, m, p_adjusted=0.001, alpha=0.05) == "ok"
    assert classify(0.0, -0.05, 0.05, m, p_adjusted=1.0, alpha=0.05) == "ok"
    assert classify(-0.1, -0.3, -0.02, m, p_adjusted=1.0, alpha=0.05) == "improved"
    assert classify(0.05, -0.2, 0.3, m, p_adjusted=1.0, alpha=0.05) == "inconclusive"
    # Below the absolute floor: never a regression, and never ok when wholly beyond the margin.
    assert classify(0.3, 0.2, 0.4, m, p_adjusted=0.01, alpha=0.05, below_floor=True,
                    within_floor=True) == "inconclusive"
    assert classify(0.05, -0.2, 0.3, m, p_adjusted=1.0, alpha=0.05,
                    within_floor=True) == "ok"
    assert classify_threshold(0.2, m) == "regression"
    assert classify_threshold(-0.2, m) == "improved"
    assert classify_threshold(0.05, m) == "ok"
    # Detectable change: max(margin, null + z_0.95 se) + z_0.8 se.
    assert detectable_change(0.01, m, 0.05) == pytest.approx(m + 0.008416, abs=1e-5)
    assert detectable_change(0.1, m, 0.05, null=m / 2) == pytest.approx(
        m / 2 + 0.24865, abs=1e-4)


def test_identical_data_is_go_and_equivalent():
    base, _ = _pair()
    checks = drift_checks(base, base)
    assert verdict(checks) == "GO"
    statuses = {c.status for c in checks}
    assert "regression" not in statuses
    by = _by_key(checks)
    assert by[("GET /a", "p50")].status == "ok"
    assert by[("GET /a", "p50")].change_pct == pytest.approx(0.0)
    assert {c.endpoint for c in checks} == {ALL, "GET /a", "POST /b"}
    assert len(checks) == 3 * 6


def test_a_real_regression_is_caught_on_its_endpoint_only():
    base, cand = _pair(scale={"POST /b": 1.4})
    checks = drift_checks(base, cand)
    assert verdict(checks) == "NO-GO"
    flagged = {(c.endpoint, c.metric) for c in checks if c.status == "regression"}
    assert {("POST /b", "p50"), ("POST /b", "mean")} <= flagged
    assert all(e in ("POST /b", ALL) for e, _ in flagged)
    check = _by_key(checks)[("POST /b", "p50")]
    assert check.method == "block-bootstrap"
    assert 25 < check.change_pct < 55 and check.ci_low > 10 and check.p_adjusted <= 0.05
    assert check.ci_unit == "%"


def test_results_are_seeded():
    base, cand = _pair(scale=1.05)
    first = drift_checks(base, cand, DriftSettings(seed=3, resamples=500))
    again = drift_checks(base, cand, DriftSettings(seed=3, resamples=500))
    other = drift_checks(base, cand, DriftSettings(seed=4, resamples=500))
    assert [c.ci_low for c in first] == [c.ci_low for c in again]
    assert [c.ci_low for c in first] != [c.ci_low for c in other]


def test_error_rate_regression_and_throughput_drop():
    rng = np.random.default_rng(5)
    worse = (SyntheticEndpoint("GET /a", 40.0, 20.0, 0.3),
             SyntheticEndpoint("POST /b", 20.0, 50.0, 0.4, error_rate=0.04))
    base = synthetic_run(ENDPOINTS, duration_s=600, rng=rng)
    cand = synthetic_run(worse, duration_s=600, rng=rng)
    err = _by_key(drift_checks(base, cand))[("POST /b", "error_rate")]
    assert err.status == "regression" and err.method == "z-test" and err.ci_unit == "pp"
    assert err.ci_low > 0.5
    slow = (SyntheticEndpoint("GET /a", 30.0, 20.0, 0.3),
            SyntheticEndpoint("POST /b", 20.0, 50.0, 0.4, error_rate=0.01))
    cand = synthetic_run(slow, duration_s=600, rng=rng)
    rate = _by_key(drift_checks(base, cand))[("GET /a", "throughput")]
    assert rate.status == "regression" and rate.change_pct == pytest.approx(-25, abs=3)
    assert rate.ci_high < -10


def _summary_only(run: RunData) -> RunData:
    out = {}
    for name, data in run.endpoints.items():
        hist = data.histogram
        q = hist.quantiles([0.5, 0.95, 0.99])
        summary = {"p50": q[0], "p95": q[1], "p99": q[2], "mean": hist.sums.sum() / hist.total}
        out[name] = EndpointData(data.count, data.errors, summary)
    return RunData(out, run.duration_s)


def _windows_only(run: RunData) -> RunData:
    out = {}
    for name, data in run.endpoints.items():
        summary = _summary_only(RunData({name: data}, run.duration_s)).endpoints[name].summary
        out[name] = EndpointData(data.count, data.errors, summary,
                                 windows=window_summaries(data.histogram))
    return RunData(out, run.duration_s)


def test_summary_only_runs_carry_their_sampling_error():
    base, cand = _pair(scale={"POST /b": 1.3})
    checks = drift_checks(_summary_only(base), _summary_only(cand))
    latency = [c for c in checks if c.metric in ("p50", "p95", "p99", "mean", "throughput")]
    # Count and percentiles give a standard error: an interval and a p-value, not a threshold.
    assert {c.method for c in latency} == {"summary"}
    assert all(c.p_value is not None and c.ci_low is not None for c in latency)
    by = _by_key(checks)
    assert by[("POST /b", "p50")].status == "regression"
    assert by[("POST /b", "p95")].ci_low > 0
    assert by[("GET /a", "p95")].status not in ("regression", "improved")
    # Error counts are still counts: they keep their exact test.
    assert by[("POST /b", "error_rate")].method in ("z-test", "fisher-exact")


def test_window_summaries_use_window_level_tests():
    base, cand = _pair(scale={"POST /b": 1.3})
    checks = _by_key(drift_checks(_windows_only(base), _windows_only(cand)))
    assert checks[("POST /b", "p50")].method == "window-level"
    assert checks[("POST /b", "mean")].status == "regression"
    assert checks[("GET /a", "p50")].status in ("ok", "improved", "inconclusive")
    assert checks[("GET /a", "throughput")].method == "window-level"


def test_too_few_requests_and_missing_endpoints():
    base, cand = _pair(duration_s=30.0)
    checks = _by_key(drift_checks(base, cand))
    # POST /b has ~600 requests: too few for p99 (needs 1000).
    assert checks[("POST /b", "p99")].status == "insufficient_data"
    assert "1000" in checks[("POST /b", "p99")].note
    only = RunData({"GET /a": base.endpoints["GET /a"]}, base.duration_s)
    checks = _by_key(drift_checks(base, only))
    assert checks[("POST /b", "p50")].status == "insufficient_data"
    assert "candidate" in checks[("POST /b", "p50")].note
    unknown = RunData({"GET /a": EndpointData(1000, None, {"p50": 10.0})}, 60.0)
    assert _by_key(drift_checks(unknown, unknown))[("GET /a", "error_rate")].status == \
        "insufficient_data"


def test_absolute_floor_keeps_tiny_endpoints_quiet():
    fast = (SyntheticEndpoint("GET /health", 30.0, 1.0, 0.2),)
    rng = np.random.default_rng(8)
    base = synthetic_run(fast, duration_s=600, rng=rng)
    cand = synthetic_run(fast, duration_s=600, rng=rng, scale=1.5)
    checks = _by_key(drift_checks(base, cand))
    # +50 % of 1 ms is 0.5 ms, under the 2 ms floor: not a regression, but not ok either (the
    # interval lies wholly beyond the tolerance); the note names the floor.
    p50 = checks[("GET /health", "p50")]
    assert p50.status == "inconclusive" and p50.ci_low > 10
    assert "absolute floor" in p50.note and p50.floor_ms == 2.0
    tight = _by_key(drift_checks(base, cand, DriftSettings(floor_ms=0.0)))
    assert tight[("GET /health", "p50")].status == "regression"


def test_settings_are_validated_and_json_ready():
    with pytest.raises(ValueError):
        DriftSettings(alpha=0.7)
    with pytest.raises(ValueError):
        DriftSettings(tolerances={"p42": 0.1})
    with pytest.raises(ValueError):
        DriftSettings(resamples=10)
    assert auto_window_s(75) == 2.0 and auto_window_s(10) == 1.0 and auto_window_s(1800) == 60
    base, _ = _pair(duration_s=30.0)
    for check in drift_checks(base, base):
        assert all(not (isinstance(v, float) and math.isnan(v))
                   for v in check.to_dict().values())
