"""Change-point detection: the Otava/Hunter and MongoDB reference vectors (../shared/reference and
METHODS.md section 3), and precision/recall/false-alarm rates by simulation with fixed seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from perfstats.trends.changepoint import ChangePoint, _otava, best_split, detect_change_points

# Otava tests/change_point_divisive_test.py
DIVISIVE = [0.3, 2.4, 1.5, -0.9, -0.5, 99.7, 98.3, 99.1, 149.0, 149.7, 149.5, 149.1, 148.8, 150.0]
# mongodb/signal-processing-algorithms tests/test_detection.py::test_random_ish_data
RANDOM_ISH = [float(v) for v in (
    "41 18 23 3 32 11 40 13 29 48 47 35 18 21 6 2 23 3 4 7 "
    "120 103 102 81 71 62 115 61 108 63 70 98 65 96 64 74 70 113 90 114 "
    "208 196 153 150 225 179 206 165 177 151 218 217 244 245 229 195 225 229 176 250"
).split()]


def indices(points: list[ChangePoint]) -> list[int]:
    return [cp.index for cp in points]


@pytest.fixture
def single(shared_dir):
    path = shared_dir / "reference" / "changepoint_otava_single_series.json"
    return json.loads(path.read_text())


@pytest.fixture
def tigerbeetle(shared_dir):
    return json.loads((shared_dir / "reference" / "changepoint_tigerbeetle.json").read_text())


def test_single_series_first_candidate(single):
    tau, kappa, q_hat = best_split(np.array(single["series"]))
    assert (tau, kappa) == (10, 20)
    expected = single["expected_stats_at_change_point_10"]["qhat_first_candidate"]
    assert q_hat == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("case", range(3))
def test_single_series_expected_change_points(single, case):
    expected = single["expected"][case]
    params = expected["params"]
    if "permutations" in params:
        found = detect_change_points(single["series"], method="permutation",
                                     p_value=params["max_pvalue"],
                                     permutations=params["permutations"], min_magnitude=0.0)
    else:
        found = detect_change_points(single["series"], window=params["window_len"],
                                     p_value=params["max_pvalue"],
                                     min_magnitude=params["min_magnitude"], otava_compat=True)
    assert indices(found) == expected["change_points"]


def test_single_series_statistics_in_both_modes(single):
    stats = single["expected_stats_at_change_point_10"]
    (compat,) = detect_change_points(single["series"], window=10, p_value=1e-4, otava_compat=True)
    (default,) = detect_change_points(single["series"], window=10, p_value=1e-4)
    for cp in (compat, default):
        assert cp.index == 10
        assert cp.mean_before == pytest.approx(stats["mean_before"])
        assert cp.mean_after == pytest.approx(stats["mean_after"])
        assert cp.magnitude == pytest.approx(stats["magnitude_max_abs_rel_change"])
        assert 100 * cp.relative_change == pytest.approx(stats["forward_change_percent"])
    assert compat.p_value == pytest.approx(stats["pvalue_otava_convention"], rel=1e-9)
    # The default p-value is the larger of Welch's and the textbook Student's (both ddof=1).
    assert default.p_value == pytest.approx(
        max(stats["pvalue_welch"], stats["pvalue_textbook_student_ddof1"]), rel=1e-6)


def test_tigerbeetle_every_case_exact_with_otava_compat(tigerbeetle):
    for case in tigerbeetle["cases"] + tigerbeetle["derived_cases"]:
        p = case["params"]
        found = detect_change_points(tigerbeetle["series"], window=p["window_len"],
                                     p_value=p["max_pvalue"], min_magnitude=p["min_magnitude"],
                                     otava_compat=True)
        assert indices(found) == case["change_points"], p


def test_tigerbeetle_statistics_with_otava_compat(tigerbeetle):
    found = detect_change_points(tigerbeetle["series"], window=30, p_value=0.01,
                                 min_magnitude=0.05, otava_compat=True)
    for cp in found:
        expected = tigerbeetle["stats_for_case_w30_p0.01_m0.05"][str(cp.index)]
        assert cp.p_value == pytest.approx(expected["pvalue"], rel=1e-2)
        assert cp.mean_before == pytest.approx(expected["mean_before"], abs=0.05)
        assert cp.mean_after == pytest.approx(expected["mean_after"], abs=0.05)
        assert 100 * cp.relative_change == pytest.approx(expected["forward_change_percent"],
                                                         abs=0.005)


def test_tigerbeetle_robust_cases_with_correct_neighbour_recomputation(tigerbeetle):
    # "robust" means: also obtained when the merge step re-tests the true neighbours (k-1, k),
    # with Otava's t-test unchanged. That is the default merge step.
    series = np.array(tigerbeetle["series"], dtype=float)
    robust = [c for c in tigerbeetle["cases"] if c["stability"] == "robust"]
    assert len(robust) == 5
    for case in robust:
        p = case["params"]
        found = _otava(series, p["max_pvalue"], p["min_magnitude"], p["window_len"],
                       otava_test=True, otava_merge=False)
        assert indices(found) == case["change_points"], p


def test_tigerbeetle_robust_cases_with_defaults_are_a_stricter_subset(tigerbeetle):
    # The default test (Welch and Student must both agree, two runs per side) is stricter than
    # Otava's population-std Student test: it may keep fewer points, never new ones.
    robust = [c for c in tigerbeetle["cases"] if c["stability"] == "robust"]
    for case in robust + tigerbeetle["derived_cases"]:
        p = case["params"]
        found = indices(detect_change_points(tigerbeetle["series"], window=p["window_len"],
                                             p_value=p["max_pvalue"],
                                             min_magnitude=p["min_magnitude"]))
        assert 71 in found and set(found) <= set(case["change_points"]), p


def test_divisive_vector():
    assert best_split(np.array(DIVISIVE))[0] == 5
    assert best_split(np.array(DIVISIVE))[2] == pytest.approx(761.2821, abs=1e-4)
    assert indices(detect_change_points(DIVISIVE, p_value=0.01, min_magnitude=0)) == [5, 8]
    assert indices(detect_change_points(DIVISIVE, p_value=0.01, min_magnitude=0,
                                        otava_compat=True)) == [5, 8]


def test_divisive_vector_permutation_test():
    # The split at 8 leaves 3 values near 99 and 6 near 149 in [5, 14): 2 of the C(9, 3) = 84
    # arrangements of that segment reach the observed Q-hat exactly (values first or last), so
    # its exact permutation p-value is 2/84 = 0.024. It passes at 0.05 and not at 0.01 (with ties
    # counted as extreme; METHODS.md's "[5, 8] at 0.01" needs such ties lost to rounding, or a
    # lucky draw with R = 100).
    # R = 999 resolves 0.024 from both levels for every seed.
    for seed in range(5):
        found = detect_change_points(DIVISIVE, method="permutation", p_value=0.05,
                                     min_magnitude=0, permutations=999, seed=seed)
        assert indices(found) == [5, 8]
        assert found[1].p_value == pytest.approx(2 / 84, abs=0.012)
        assert indices(detect_change_points(DIVISIVE, method="permutation", p_value=0.01,
                                            min_magnitude=0, permutations=999, seed=seed)) == [5]


def test_random_ish_vector():
    for seed in range(3):
        found = detect_change_points(RANDOM_ISH, method="permutation", p_value=0.01, seed=seed)
        assert indices(found) == [20, 40]
    # The t-test variant finds the robust pair too, plus the seed-dependent third point (50)
    # that MongoDB's variant reports for some seeds.
    assert {20, 40} <= set(indices(detect_change_points(RANDOM_ISH, p_value=0.01)))


@pytest.mark.parametrize("series, expected", [
    ([50.0] * 15 + [100.0] * 15, [15]),
    ([50.0] * 14 + [74.0] + [100.0] * 15, [15]),
    ([50.0] * 14 + [76.0] + [100.0] * 15, [14]),
    ([50.0] * 30, []),
])
@pytest.mark.parametrize("method", ["otava", "permutation"])
def test_mongodb_simple_vectors(series, expected, method):
    assert indices(detect_change_points(series, p_value=0.01, method=method)) == expected


def test_accepts_any_array_like_and_reports_plain_values():
    as_list = detect_change_points([1.0] * 10 + [2.0] * 10)
    assert as_list == detect_change_points(np.array([1.0] * 10 + [2.0] * 10))
    assert as_list == detect_change_points(tuple([1] * 10 + [2] * 10))
    assert as_list[0].to_dict() == {"index": 10, "mean_before": 1.0, "mean_after": 2.0,
                                    "relative_change": 1.0, "magnitude": 1.0, "p_value": 0.0}
    assert detect_change_points([]) == [] and detect_change_points([3.0]) == []


@pytest.mark.parametrize("kwargs", [{"p_value": 0}, {"p_value": 1.5}, {"min_magnitude": -0.1},
                                    {"window": 1}, {"permutations": 0}, {"method": "pelt"},
                                    {"method": "permutation", "otava_compat": True}])
def test_rejects_bad_options(kwargs):
    with pytest.raises(ValueError):
        detect_change_points([1.0, 2.0, 3.0], **kwargs)


@pytest.mark.parametrize("values", [[[1.0, 2.0]], [1.0, float("nan"), 2.0], [1.0, float("inf")]])
def test_rejects_bad_series(values):
    with pytest.raises(ValueError):
        detect_change_points(values)


def test_permutation_test_is_reproducible_by_seed():
    rng = np.random.default_rng(3)
    x = np.r_[rng.normal(100, 5, 25), rng.normal(108, 5, 25)]
    runs = [detect_change_points(x, method="permutation", seed=s) for s in (11, 11, 12)]
    assert runs[0] == runs[1]
    assert all(p.p_value * 200 == round(p.p_value * 200) for p in runs[2])


# Simulation: levels step by +-k noise sd at known indices, multiplicative noise of relative sd cv.

def simulate(rng, length, truth, shift_sd, cv):
    level = np.full(length, 100.0)
    for t in truth:
        level[t:] *= 1 + rng.choice([-1, 1]) * shift_sd * cv
    return level * (1 + cv * rng.standard_normal(length))


def precision_recall(found_sets, truth, tolerance=1):
    hits = found = 0
    for found_set in found_sets:
        found += len(found_set)
        unused = list(found_set)
        for t in truth:
            match = next((f for f in unused if abs(f - t) <= tolerance), None)
            if match is not None:
                hits += 1
                unused.remove(match)
    return hits / max(found, 1), hits / (len(truth) * len(found_sets))


@pytest.mark.slow
@pytest.mark.parametrize("length, truth", [(60, (20, 40)), (120, (30, 60, 90))])
def test_otava_simulation_precision_recall_and_false_alarms(length, truth):
    # cv 2% is left out: there a 3 sd shift (6%) sits just above min_magnitude (5%) and recall
    # drops to 0.91 by design, not by lack of power.
    rng = np.random.default_rng(20260101 + length)
    for shift_sd in (3, 4, 6):
        for cv in (0.03, 0.05, 0.1):
            found = [indices(detect_change_points(simulate(rng, length, truth, shift_sd, cv)))
                     for _ in range(100)]
            precision, recall = precision_recall(found, truth)
            assert precision >= 0.9 and recall >= 0.9, (shift_sd, cv, precision, recall)
    for cv in (0.02, 0.05, 0.1):
        alarms = sum(bool(detect_change_points(simulate(rng, length, (), 0, cv)))
                     for _ in range(200))
        assert alarms <= 10, (cv, alarms)  # >= 95% of stationary series stay clean


@pytest.mark.slow
def test_permutation_simulation_precision_recall_and_false_alarms():
    rng = np.random.default_rng(77)
    for shift_sd in (3, 6):
        found = [indices(detect_change_points(simulate(rng, 60, (20, 40), shift_sd, 0.05),
                                              method="permutation", seed=i)) for i in range(30)]
        precision, recall = precision_recall(found, (20, 40))
        assert precision >= 0.9 and recall >= 0.9, (shift_sd, precision, recall)
    alarms = sum(bool(detect_change_points(simulate(rng, 60, (), 0, 0.05), method="permutation",
                                           seed=i)) for i in range(40))
    assert alarms <= 2
