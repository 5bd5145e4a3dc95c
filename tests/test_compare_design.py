"""The testing design of compare: families, summaries' sampling error, floor and common mode."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perfstats.stats.common_mode import common_shifts
from perfstats.stats.drift import drift_checks, verdict
from perfstats.stats.procedure import ANY, gatekept_adjusted, hochberg
from perfstats.stats.sampling_error import mean_log_se, percentile_log_se
from perfstats.stats.simulate import at_grain, synthetic_run


def test_hochberg_costs_nothing_when_a_family_agrees():
    assert hochberg(np.array([0.01, 0.01, 0.01, 0.01])).tolist() == [0.01] * 4
    # A lone small p-value pays for the family's size.
    assert hochberg(np.array([0.01, 0.6, 0.7, 0.8])).tolist() == pytest.approx(
        [0.04, 0.8, 0.8, 0.8])


def test_primaries_across_families_and_secondaries_behind_them():
    p = [0.04, 0.001, 0.9, 0.02, 1.0, 0.001, 0.3]
    families = [("a", "latency"), ("a", "latency"), ("b", "latency"), ("a", "errors"),
                ("b", "errors"), ("ALL", "latency"), ("c", "latency")]
    live = [True, True, True, True, False, True, True]
    gates = [None, None, None, None, None, ANY, None]
    # In each latency family the check of rank 0 (here the first of "a") is the primary.
    out = gatekept_adjusted(p, families, priority=[0, 1, 0, 0, 0, 0, 0], live=live, gates=gates)
    # Four live primary families: a, b, c latency and a/errors (b/errors has no failure).
    assert out.families == 4
    assert out.primary.tolist() == [True, False, True, True, True, True, True]
    # Benjamini-Hochberg over the primaries 0.04, 0.9, 0.02, 0.3.
    assert out.p_adjusted[[0, 2, 3, 6]].tolist() == pytest.approx([0.08, 0.9, 0.08, 0.4])
    # The secondary is tested at the level its primary passed at, never below the primary.
    assert out.p_adjusted[1] == pytest.approx(0.08) and out.gate_p[1] == pytest.approx(0.08)
    # ALL is gated by the best latency family: never below its adjusted p-value.
    assert out.p_adjusted[5] == pytest.approx(0.08) and out.gate_p[5] == pytest.approx(0.08)
    # Bonferroni would have needed 0.0125 for the lone change; with several families changed
    # BH loosens: two primaries of 0.02 over four families are both rejected at 0.04.
    two = gatekept_adjusted([0.02, 0.02, 0.5, 0.6], [("a", "x"), ("b", "x"), ("c", "x"),
                                                     ("d", "x")])
    assert two.p_adjusted.tolist() == pytest.approx([0.04, 0.04, 0.6, 0.6])
    # A gate that is not rejected keeps what it gates from being rejected.
    out = gatekept_adjusted([0.5, 0.0001], [("a", "x"), ("a slice", "x")],
                            gates=[None, ("a", "x")])
    assert out.p_adjusted[1] >= out.p_adjusted[0] == 0.5
    # A secondary with a tiny p-value waits for its primary.
    out = gatekept_adjusted([0.3, 1e-6], [("a", "x"), ("a", "x")], priority=[0, 1])
    assert out.p_adjusted.tolist() == pytest.approx([0.3, 0.3])


def test_percentile_standard_error_from_a_summary():
    rng = np.random.default_rng(4)
    n, sigma = 2000, 0.5
    draws = np.exp(sigma * rng.standard_normal((400, n))) * 40.0
    logs = {q: np.log(np.quantile(draws, q, axis=1)) for q in (0.5, 0.95)}
    summary = {f"p{round(q * 100)}": float(np.exp(np.median(v))) for q, v in
               {0.5: logs[0.5], 0.9: np.log(np.quantile(draws, 0.9, axis=1)),
                0.95: logs[0.95], 0.99: np.log(np.quantile(draws, 0.99, axis=1))}.items()}
    summary["mean"] = float(draws.mean())
    # The estimate from the reported percentiles matches the spread of 400 independent runs.
    for q in (0.5, 0.95):
        estimated = percentile_log_se(q, n, summary)
        assert estimated == pytest.approx(float(np.std(logs[q])), rel=0.2)
    assert mean_log_se(n, summary) == pytest.approx(float(np.std(np.log(draws.mean(axis=1)))),
                                                    rel=0.25)
    assert percentile_log_se(0.5, 1, summary) is None
    assert percentile_log_se(0.5, 100, {"p50": 10.0}) is None


def test_an_environment_shift_is_said_before_the_verdict():
    rng = np.random.default_rng(3)
    base = synthetic_run(duration_s=120.0, rng=rng)
    cand = synthetic_run(duration_s=120.0, rng=rng, scale=1.6)
    checks, shifts = common_shifts(drift_checks(base, cand))
    assert verdict(checks) == "NO-GO"
    assert shifts and shifts[0].moved == shifts[0].endpoints == 5
    assert shifts[0].message().startswith("all 5 endpoints slower (p")
    assert "did the load generator or environment change?" in shifts[0].message()
    # Relative to the common shift, no endpoint stands out.
    p50 = [c for c in checks if c.metric == "p50"]
    assert all(abs(c.change_vs_common_pct) < 10 for c in p50)
    assert all(c.change_pct > 50 for c in p50)


def test_one_endpoint_slower_is_not_a_common_shift():
    rng = np.random.default_rng(5)
    base = synthetic_run(duration_s=120.0, rng=rng)
    cand = synthetic_run(duration_s=120.0, rng=rng, scale={"POST /api/quote": 1.6})
    checks, shifts = common_shifts(drift_checks(base, cand))
    assert not shifts
    quote = next(c for c in checks if c.endpoint == "POST /api/quote" and c.metric == "p50")
    assert quote.change_pct > 50 and quote.change_vs_common_pct is None


def test_summary_grain_of_an_a_a_pair_is_not_no_go():
    rng = np.random.default_rng(11)
    for _ in range(3):
        base = at_grain(synthetic_run(duration_s=75.0, rng=rng), "summary")
        cand = at_grain(synthetic_run(duration_s=75.0, rng=rng, scale=1.03), "summary")
        checks = drift_checks(base, cand)
        assert verdict(checks) == "GO"
        assert {c.method for c in checks if c.metric == "p95"} == {"summary"}
        assert all(math.isfinite(c.p_value) for c in checks if c.method == "summary")
