"""Benjamini-Hochberg and error-rate tests against the verified vectors of METHODS.md 2.7, 2.9."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from perfstats.diagnosis.patterns import _one_sided_p
from perfstats.stats.fdr import benjamini_hochberg
from perfstats.stats.proportions import (
    _wilson,
    compare_error_rates,
    fisher_p,
    newcombe_interval,
    newcombe_p_beyond,
    pooled_z_p,
    wilson_interval,
)
from perfstats.stats.tails import norm_sf, t_ppf
from perfstats.stats.windowlevel import Welch

BH_1995 = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240,
           0.4262, 0.5719, 0.6528, 0.7590, 1.0]


def test_bh_1995_worked_example():
    adjusted = benjamini_hochberg(BH_1995)
    assert int(np.sum(adjusted <= 0.05)) == 4
    assert adjusted[:5] == pytest.approx([0.0015, 0.003, 0.0095, 0.035625, 0.0603])
    assert adjusted == pytest.approx(stats.false_discovery_control(BH_1995))


def test_bh_ignores_missing_and_keeps_order():
    adjusted = benjamini_hochberg([0.04, None, 0.01, float("nan"), 0.03])
    assert np.isnan(adjusted[1]) and np.isnan(adjusted[3])
    assert adjusted[[0, 2, 4]] == pytest.approx([0.04, 0.03, 0.04])
    assert benjamini_hochberg([]).shape == (0,)


@pytest.mark.parametrize(
    ("b", "c", "fisher", "z"),
    [((3, 10000), (15, 10000), 0.003756, 0.00233), ((0, 2000), (3, 2000), 0.1249, 0.0416)],
)
def test_methods_error_rate_examples(b, c, fisher, z):
    assert fisher_p(*b, *c, alternative="greater") == pytest.approx(fisher, abs=5e-6 if
                                                                    fisher < 0.01 else 5e-5)
    assert pooled_z_p(*b, *c, alternative="greater") == pytest.approx(z, abs=5e-5)


def test_test_choice_follows_expected_cells():
    # 0/2000 vs 3/2000: expected failures 1.5 per run -> Fisher, which does not "pass" it.
    small = compare_error_rates(0, 2000, 3, 2000)
    assert small.method == "fisher-exact"
    assert small.p_greater == pytest.approx(0.1249, abs=5e-5)
    # 3/10000 vs 15/10000: expected failures 9 per run -> pooled z.
    large = compare_error_rates(3, 10000, 15, 10000)
    assert large.method == "z-test"
    assert large.p_greater == pytest.approx(0.00233, abs=5e-5)


def test_newcombe_1998_examples():
    # Newcombe (1998) Table II, examples (a) 56/70 - 48/80 and (e) 0/10 - 0/20 (method 10).
    assert newcombe_interval(48, 80, 56, 70, 0.95) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert newcombe_interval(0, 20, 0, 10, 0.95) == pytest.approx((-0.1611, 0.2775), abs=1e-4)
    assert wilson_interval(0, 10, 0.95) == pytest.approx((0.0, 0.2775), abs=1e-4)


def test_margin_p_value_inverts_the_interval():
    test = compare_error_rates(9, 900, 36, 900, confidence=0.90, margin=0.005)
    # The lower 90 % limit is the margin at which the one-sided p-value is exactly 5 %.
    assert newcombe_p_beyond(9, 900, 36, 900, test.ci_low) == pytest.approx(0.05, abs=1e-9)
    assert newcombe_p_beyond(9, 900, 36, 900, test.ci_high) == pytest.approx(0.95, abs=1e-9)
    assert newcombe_p_beyond(9, 900, 36, 900, 0.03) == pytest.approx(0.5)
    # Intersection-union: never below the exact no-change p-value.
    assert test.p_beyond >= test.p_greater
    assert compare_error_rates(0, 2000, 3, 2000, margin=0.0).p_beyond >= 0.1249


def test_error_rate_arguments_are_checked():
    with pytest.raises(ValueError):
        compare_error_rates(0, 0, 1, 10)
    with pytest.raises(ValueError):
        compare_error_rates(11, 10, 1, 10)


@pytest.mark.parametrize(("b", "c"), [((0, 2000), (0, 1500)), ((7, 7), (3, 3)), ((0, 1), (0, 1))])
@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_fisher_with_an_empty_column_is_scipys_answer_without_scipy_stats(b, c, alternative):
    table = [[c[0], c[1] - c[0]], [b[0], b[1] - b[0]]]
    assert fisher_p(*b, *c, alternative=alternative) == stats.fisher_exact(
        table, alternative=alternative).pvalue == 1.0



def test_the_normal_and_t_tails_are_bit_for_bit_those_of_scipy_stats():
    # proportions and windowlevel call scipy.special's ndtr, ndtri and stdtr, the functions that
    # scipy.stats.norm and scipy.stats.t call: no p-value may move in its last digit (the compare
    # JSON prints them whole).
    rng = np.random.default_rng(11)
    n_b, n_c = 5000, 4000
    for errors_b, errors_c in rng.integers(1, 400, size=(300, 2)).tolist():
        pooled = (errors_b + errors_c) / (n_b + n_c)
        z = ((errors_c / n_c - errors_b / n_b)
             / math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_b + 1.0 / n_c)))
        args = (errors_b, n_b, errors_c, n_c)
        assert pooled_z_p(*args, alternative="greater") == stats.norm.sf(z)
        assert pooled_z_p(*args, alternative="less") == stats.norm.cdf(z)
        assert pooled_z_p(*args, alternative="two-sided") == 2.0 * stats.norm.sf(abs(z))
    for confidence in rng.uniform(0.5, 0.999, 300).tolist():
        z = float(stats.norm.ppf(0.5 + confidence / 2.0))
        assert wilson_interval(5, 80, confidence) == _wilson(5, 80, z)
    for df in [0.7, 3.0, 12.4, 150.0, math.inf]:
        for value in rng.normal(0, 4, 300).tolist():
            assert Welch(difference=value, se=1.0, df=df).p_greater() == stats.t.sf(value, df)


def test_the_patterns_and_usl_tails_are_bit_for_bit_those_of_scipy_stats():
    # perfstats.stats.tails stands in for scipy.stats in the patterns' slope test and the USL
    # intervals too, so that `perfstats bottlenecks` and `perfstats capacity` do not import
    # it: their p-values and intervals may not move in the last digit either.
    rng = np.random.default_rng(12)
    n = 2000
    frame = pl.DataFrame({"slope": rng.normal(0, 3, n), "se": rng.uniform(0, 2, n),
                          "n": rng.integers(0, 300, n)})
    frame = frame.with_columns(se=pl.when(pl.int_range(n) % 97 == 0).then(0.0)
                               .otherwise(pl.col("se")))  # some infinite t statistics
    tstat = (frame["slope"] / frame["se"]).to_numpy()
    expected = stats.t.sf(tstat, np.maximum(frame["n"].to_numpy() - 2, 1))
    expected = np.where(np.isfinite(expected), expected, np.where(tstat > 0, 0.0, 1.0))
    assert np.isinf(tstat).sum() > 10
    assert np.array_equal(_one_sided_p(frame).to_numpy(), expected)
    z = rng.normal(0, 3, n)
    assert np.array_equal(norm_sf(z), stats.norm.sf(z))
    for df in range(1, 400):
        for level in (0.8, 0.9, 0.95, 0.975, 0.99, *rng.uniform(0.5, 0.999, 5).tolist()):
            assert t_ppf(level, df) == stats.t.ppf(level, df)
