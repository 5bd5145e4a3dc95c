"""Capacity planning: the instances formula and its edge cases."""

from __future__ import annotations

import math

import pytest

from perfstats.capacity import instances_for_rps, instances_needed


def test_the_worked_example_of_the_methods_note():
    # 10000 x 1.3 / 450 = 28.89 -> 29.
    assert instances_needed(10000, 450, safety_factor=1.3) == 29


def test_exact_multiples_are_not_rounded_up_by_float_noise():
    assert 100 * 1.1 / 110 > 1.0  # the float product is 1.0000000000000002
    assert instances_needed(100, 110, safety_factor=1.1) == 1
    assert instances_needed(300, 100, safety_factor=1.0) == 3
    assert instances_needed(301, 100, safety_factor=1.0) == 4


def test_minimum_instances_and_zero_peak():
    assert instances_needed(0, 50) == 1
    assert instances_needed(0, 50, min_instances=0) == 0
    assert instances_needed(10, 50, min_instances=3) == 3
    assert instances_needed(1000, 50, min_instances=3) == 30


def test_safety_factor_below_one_warns_but_answers():
    with pytest.warns(UserWarning, match="less than the peak"):
        assert instances_needed(1000, 100, safety_factor=0.8) == 8


@pytest.mark.parametrize("upi", [0, -5, 0.0])
def test_zero_or_negative_users_per_instance_raises(upi):
    with pytest.raises(ValueError, match="per instance must be > 0"):
        instances_needed(1000, upi)


@pytest.mark.parametrize("kwargs, match", [
    ({"peak_users": -1, "users_per_instance": 10}, "peak users"),
    ({"peak_users": math.inf, "users_per_instance": 10}, "peak users"),
    ({"peak_users": 10, "users_per_instance": 10, "safety_factor": 0}, "safety_factor"),
    ({"peak_users": 10, "users_per_instance": 10, "min_instances": -1}, "min_instances"),
    ({"peak_users": 10, "users_per_instance": 10, "min_instances": 1.5}, "min_instances"),
    ({"peak_users": 10, "users_per_instance": 10, "zones": 0}, "zones"),
])
def test_bad_values_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        instances_needed(**kwargs)


@pytest.mark.parametrize("peak, upi", [(math.nan, 10), (10, math.nan), ("10", 10), (True, 10)])
def test_non_numbers_raise_type_error(peak, upi):
    with pytest.raises(TypeError):
        instances_needed(peak, upi)


def test_an_unbounded_users_per_instance_needs_the_minimum():
    # The SLO never broke: users per instance is only known to exceed the tested range; the
    # caller passes that lower bound, but infinity must not crash the formula either.
    assert instances_needed(1000, math.inf) == 1


def test_zone_redundancy_survives_losing_a_zone():
    # 1000 x 1.5 / 100 = 15; over 3 zones each zone must carry 15/2 -> 22.5 -> 23 -> 24 (3 x 8).
    assert instances_needed(1000, 100, zones=3) == 24
    assert instances_needed(1000, 100, zones=1) == 15


def test_the_rps_route():
    assert instances_for_rps(1200, 95, safety_factor=1.2) == 16
    with pytest.raises(ValueError, match="rps per instance"):
        instances_for_rps(1200, 0)
