"""Which testing design for the compare gate: candidate procedures on the same simulated checks.

Each pair of synthetic runs of benchmarks/gate_calibration.py (same scenarios, seeds and input
grains) is tested once; the candidate multiple-testing designs then judge the same unadjusted
checks, so that their differences are the designs' alone:

- ``previous``: families {p50, p95, p99, mean, throughput} and {error rate} per endpoint, Hochberg
  within a family, Bonferroni across families;
- ``P / ACROSS / throughput F``: one primary check per family (``P``: p50 or mean), the others
  tested only once it is rejected (Hochberg among them), ``ACROSS`` (Bonferroni or BH) over the
  families' primaries; ``throughput in latency`` keeps throughput among the latency family's
  secondaries, ``throughput own`` makes the whole run's throughput a family of its own that gates
  the endpoints' (the design of perfstats.stats.procedure, ``mean / BH / throughput own``).

    nice python benchmarks/gate_designs.py [--pairs N] [--scenario INDEX]...

Prints one markdown row per scenario, grain and design: the share of NO-GO pairs, of pairs with a
regression flagged on the changed endpoint, and of pairs with one on another endpoint.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import numpy as np
from gate_calibration import SCENARIOS, pairs_of

from perfstats.stats import drift
from perfstats.stats.fdr import benjamini_hochberg
from perfstats.stats.procedure import ANY, gatekept_adjusted, hochberg
from perfstats.stats.simulate import ALL, GRAINS, at_grain

Adjust = Callable[[Sequence[drift._Pending]], tuple[np.ndarray, int]]


def _bonferroni(p: np.ndarray) -> np.ndarray:
    return np.minimum(np.asarray(p) * len(p), 1.0)


def _family(check: drift._Pending, throughput_own: bool) -> tuple[object, str]:
    series, kind = drift._family(check)
    return series, ("latency" if kind == "throughput" and not throughput_own else kind)


def _gate(check: drift._Pending, throughput_own: bool) -> object:
    if throughput_own:
        return drift._gate(check)
    if check.slice:
        return (check.endpoint, check.kind, ""), _family(check, False)[1]
    return ANY if check.endpoint == ALL and check.kind == "http" else None


def previous(checks: Sequence[drift._Pending]) -> tuple[np.ndarray, int]:
    """Hochberg within a family of all its checks, Bonferroni across families (ALL and slices
    gated as in the current design)."""
    p = np.array([np.nan if c.p_value is None else c.p_value for c in checks])
    families = [_family(c, False) for c in checks]
    groups: dict[tuple[object, str], list[int]] = {}
    for i, family in enumerate(families):
        if np.isfinite(p[i]):
            groups.setdefault(family, []).append(i)
    gated = {f for f, m in groups.items() if _gate(checks[m[0]], False) is not None}
    counted = [f for f in groups if f not in gated and any(checks[i].live for i in groups[f])]
    n = max(1, len(counted))
    out = np.full(len(p), np.nan)
    best: dict[object, float] = {}
    for family, members in groups.items():
        if family in gated:
            continue
        out[members] = np.minimum(hochberg(p[members]) * n, 1.0)
        for key in (family, (ANY, family[1])):
            best[key] = min(best.get(key, 1.0), float(out[members].min()))
    for family in gated:
        members = groups[family]
        gate = _gate(checks[members[0]], False)
        key = (ANY, family[1]) if gate == ANY else gate
        out[members] = np.maximum(np.minimum(hochberg(p[members]) * n, 1.0), best.get(key, 1.0))
    return out, n


def gatekept(primary: str, across: str, throughput_own: bool) -> Adjust:
    """One primary per family, secondaries behind it; ``across`` is ``bonferroni`` or ``bh``."""
    order = (primary, *(m for m in drift.PRIMARY_ORDER if m != primary), "throughput")

    def adjust(checks: Sequence[drift._Pending]) -> tuple[np.ndarray, int]:
        out = gatekept_adjusted(
            [c.p_value for c in checks], [_family(c, throughput_own) for c in checks],
            priority=[order.index(c.metric) if c.metric in order else 0 for c in checks],
            live=[c.live for c in checks], gates=[_gate(c, throughput_own) for c in checks],
            across=_bonferroni if across == "bonferroni" else benjamini_hochberg)
        return out.p_adjusted, out.families

    return adjust


DESIGNS: dict[str, Adjust] = {
    "previous": previous,
    "p50 / Bonferroni / throughput in latency": gatekept("p50", "bonferroni", False),
    "mean / Bonferroni / throughput in latency": gatekept("mean", "bonferroni", False),
    "mean / BH / throughput in latency": gatekept("mean", "bh", False),
    "p50 / BH / throughput own": gatekept("p50", "bh", True),
    "mean / BH / throughput own": gatekept("mean", "bh", True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--scenario", type=int, action="append",
                        help="index into gate_calibration.SCENARIOS (default: the 75 s ones)")
    args = parser.parse_args()
    settings = drift.DriftSettings()
    print("| scenario | grain | design | NO-GO | caught | other endpoint |")
    print("|---|---|---|---|---|---|")
    for index in args.scenario or [0, 3, 4]:
        scenario = SCENARIOS[index]
        counts = {(g, d): np.zeros(3) for g in GRAINS for d in DESIGNS}
        for base, cand in pairs_of(scenario, args.pairs):
            for grain in GRAINS:
                checks = drift.pending_checks(at_grain(base, grain), at_grain(cand, grain),
                                              settings)
                for name, adjust in DESIGNS.items():
                    adjusted, families = adjust(checks)
                    done = [drift._finish(c, None if c.p_value is None else float(a), settings,
                                          families) for c, a in zip(checks, adjusted, strict=True)]
                    flagged = {c.endpoint for c in done if c.status == "regression"}
                    counts[grain, name] += (bool(flagged), scenario.target in flagged,
                                            bool(flagged - {scenario.target, ALL}))
        for (grain, name), (no_go, caught, other) in counts.items():
            hit = "" if scenario.target is None else f"{caught / args.pairs:.1%}"
            print(f"| {scenario.label} | {grain} | {name} | {no_go / args.pairs:.1%} | {hit} | "
                  f"{other / args.pairs:.1%} |", flush=True)


if __name__ == "__main__":
    main()
