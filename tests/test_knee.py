"""Kneedle against the curves of kneed v0.8.6 and the paper's Figure 2 (../shared/reference)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from perfstats.planning.knee import find_knee


def examples(shared_dir):
    return json.loads((shared_dir / "reference" / "kneedle_examples.json").read_text())["examples"]


def test_every_reference_curve(shared_dir):
    cases = examples(shared_dir)
    assert len(cases) == 7
    for case in cases:
        knee = find_knee(case["x"], case["y"], curve=case["curve"], direction=case["direction"],
                         sensitivity=case.get("S", 1.0))
        assert knee is not None and knee.x == pytest.approx(case["expected_knee_x"]), case["name"]
        assert case["y"][knee.index] == knee.y


def test_unsorted_input_gives_the_same_knee_and_the_original_index():
    x = np.arange(10.0)
    y = np.array([1, 2, 3, 4, 5, 10, 15, 20, 40, 100.0])
    order = np.random.default_rng(5).permutation(10)
    knee = find_knee(x[order], y[order], curve="convex")
    assert knee is not None and knee.x == 7.0
    assert x[order][knee.index] == 7.0


def test_latency_against_load_turns_up_where_the_queue_starts():
    # An M/M/1-like response time R = S / (1 - U) against load: the knee is before saturation.
    load = np.arange(10, 100, 10.0)
    latency = 50.0 / (1.0 - load / 100.0)
    knee = find_knee(load, latency, curve="convex", direction="increasing")
    assert knee is not None and knee.x == 70.0


def test_no_knee_cases():
    assert find_knee([1, 2], [1, 2]) is None
    assert find_knee([1, 2, 3, 4], [5, 5, 5, 5]) is None
    assert find_knee([3, 3, 3], [1, 2, 3]) is None


def test_bad_options():
    with pytest.raises(ValueError, match="curve"):
        find_knee([1, 2, 3], [1, 2, 3], curve="s-shaped")
    with pytest.raises(ValueError, match="direction"):
        find_knee([1, 2, 3], [1, 2, 3], direction="up")
    with pytest.raises(ValueError, match="3 values"):
        find_knee([1, 2, 3], [1, 2])
