"""False NO-GO rate and power of the compare gate, by simulation: the table of docs/compare.md.

Every pair of synthetic runs (perfstats.stats.simulate: five endpoints at 100 req/s, autocorrelated
lognormal latency, the candidate 3 % slower on every endpoint as repeated real runs are) is
generated once and judged at each input grain: raw samples, per-window summaries and one summary
per endpoint. Fixed seeds; default settings of ``perfstats compare``.

    nice python benchmarks/gate_calibration.py [--pairs N] [--only aa|power|TEXT]
                                              [--null-fraction 0.5,0.4]

Prints one markdown table row per scenario, grain (and null fraction, when several are given:
each pair is judged at each): pairs, NO-GO rate, and for power scenarios
the share of pairs with a regression flagged on the changed endpoint, the share a single planned
test of that endpoint's checks would flag (same rule, no adjustment for the other checks), and the
share with a regression flagged on any other endpoint.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from perfstats.stats.drift import Check, DriftSettings, RunData, drift_checks, verdict
from perfstats.stats.simulate import ALL, DEFAULT_ENDPOINTS, GRAINS, at_grain, synthetic_run

ALPHA = 0.05
SHIFT = 1.03
"""Run-to-run level shift of every endpoint of the candidate."""


@dataclass(frozen=True)
class Scenario:
    """One row group of the table."""

    label: str
    duration_s: float
    target: str | None = None
    effect: float = 1.0
    error_rate: float | None = None
    bookings_rate: float | None = None
    seed: int = 0


SCENARIOS = (
    Scenario("A/A, 75 s", 75.0, seed=75),
    Scenario("A/A, 10 min", 600.0, seed=600),
    Scenario("A/A, 30 min", 1800.0, seed=1800),
    Scenario("+25 % latency, login (750 requests), 75 s", 75.0, "POST /api/auth/login", 1.25,
             seed=25),
    Scenario("errors 1 % -> 4 %, bookings (1,000 requests), 75 s", 75.0, "POST /api/bookings",
             error_rate=0.04, bookings_rate=1000 / 75, seed=4),
    Scenario("+20 % latency, bookings (9,000 requests), 10 min", 600.0, "POST /api/bookings",
             1.20, seed=20),
    Scenario("+15 % latency, bookings (27,000 requests), 30 min", 1800.0, "POST /api/bookings",
             1.15, seed=15),
)


def single_test(check: Check) -> bool:
    """Would this check be a regression if it were the only one planned (no adjustment)?"""
    tolerance = getattr(check, "tolerance", None)
    if tolerance is None or check.p_value is None or check.p_value > ALPHA \
            or check.change_pct is None:
        return False
    if check.metric == "error_rate":
        return check.change_abs is not None and 100 * check.change_abs > abs(tolerance)
    worse = -check.change_pct if check.metric == "throughput" else check.change_pct
    floor = getattr(check, "floor_ms", None)
    return worse > abs(tolerance) and (floor is None or (check.change_abs or 0) > floor)


def pairs_of(scenario: Scenario, pairs: int) -> Iterator[tuple[RunData, RunData]]:
    """The scenario's simulated (baseline, candidate) pairs, the same ones for a given seed:
    every endpoint of the candidate shifted by the run-to-run :data:`SHIFT`, the target by the
    scenario's effect (or its error rate)."""
    endpoints = [replace(ep, rate=scenario.bookings_rate)
                 if scenario.bookings_rate and ep.name == "POST /api/bookings" else ep
                 for ep in DEFAULT_ENDPOINTS]
    changed = [replace(ep, error_rate=scenario.error_rate)
               if scenario.error_rate is not None and ep.name == scenario.target else ep
               for ep in endpoints]
    scale = {ep.name: SHIFT for ep in endpoints}
    if scenario.target is not None and scenario.error_rate is None:
        scale[scenario.target] = scenario.effect
    rng = np.random.default_rng(scenario.seed)
    for _ in range(pairs):
        base = synthetic_run(endpoints, duration_s=scenario.duration_s, rng=rng)
        yield base, synthetic_run(changed, duration_s=scenario.duration_s, scale=scale, rng=rng)


def run(scenario: Scenario, pairs: int,
        settings: list[DriftSettings]) -> list[dict[str, tuple[float, ...]]]:
    """Per settings, per grain: (NO-GO rate, caught rate, other-endpoint regression rate, caught
    by a single planned test of the changed endpoint's checks); every settings judge the same
    pairs."""
    counts = [{g: np.zeros(4) for g in GRAINS} for _ in settings]
    for base, cand in pairs_of(scenario, pairs):
        for grain in GRAINS:
            b, c = at_grain(base, grain), at_grain(cand, grain)
            for count, setting in zip(counts, settings, strict=True):
                checks = drift_checks(b, c, setting)
                flagged = {c.endpoint for c in checks if c.status == "regression"}
                count[grain] += (verdict(checks) == "NO-GO", scenario.target in flagged,
                                 bool(flagged - {scenario.target, ALL}),
                                 any(single_test(c) for c in checks
                                     if c.endpoint == scenario.target))
    return [{g: tuple(float(v) for v in count[g] / pairs) for g in GRAINS} for count in counts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--only", help="aa, power, or text in the scenario's label")
    parser.add_argument("--null-fraction", default=str(DriftSettings().null_fraction),
                        help="comma-separated null fractions to judge each pair at")
    args = parser.parse_args()
    fractions = [float(f) for f in args.null_fraction.split(",")]
    print("| scenario | grain | null fraction | pairs | NO-GO | caught | single planned test "
          "| other endpoint |")
    print("|---|---|---|---|---|---|---|---|")
    for scenario in SCENARIOS:
        if args.only == "aa" and scenario.target is not None:
            continue
        if args.only == "power" and scenario.target is None:
            continue
        if args.only not in (None, "aa", "power") and args.only not in scenario.label:
            continue
        start = time.perf_counter()
        each = run(scenario, args.pairs,
                        [DriftSettings(null_fraction=f) for f in fractions])
        for fraction, rates in zip(fractions, each, strict=True):
            for grain, (no_go, caught, other, single) in rates.items():
                hit = "" if scenario.target is None else f"{caught:.1%}"
                alone = "" if scenario.target is None else f"{single:.1%}"
                print(f"| {scenario.label} | {grain} | {fraction:g} | {args.pairs} | "
                      f"{no_go:.1%} | {hit} | {alone} | {other:.1%} |", flush=True)
        print(f"<!-- {scenario.label}: {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
