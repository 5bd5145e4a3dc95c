"""The multiple-testing design of the gate: families of checks, Hochberg within, Bonferroni across.

A comparison makes dozens of checks, but they are not dozens of independent questions: the p50,
p95, p99 and mean of one endpoint move together when that endpoint gets slower, and counting them
as four tests (as a Benjamini-Hochberg adjustment over every check does) taxes the one real change
four times. The checks are therefore grouped into **families** (by default one per endpoint and
kind: its latency percentiles and mean, its error rate, its throughput; a custom metric's statistics
form one family too), and the adjustment has two levels:

- **within a family**, Hochberg's step-up procedure (1988), valid under the positive dependence of
  percentiles of one distribution: when the family's checks agree it costs nothing (four equal
  p-values of 0.01 are all rejected at 0.01), and when one stands alone it costs the family's size;
- **across families**, Bonferroni: each family gets ``alpha / F``. Unlike an adaptive procedure,
  this level does not loosen when many families are rejected, which matters because a run-to-run
  shift can make every endpoint "significantly" slower in a long run (see docs/compare.md, "The
  testing design");
- families that restate others are **secondary**: the whole-run ``ALL`` entry (its endpoints) and
  the scenario slices of a series (the series): not counted, and tested only once their gate (an
  endpoint family of the same kind; the series' own family) is rejected, at the level it passes
  on, shared among the families it gates (serial gatekeeping).

A family whose hypotheses can never be rejected (an error rate with no failure in either run, whose
exact p-value is 1 whatever happens) is not counted, as Tarone (1990) showed for discrete tests.

``adjusted[i] <= alpha`` then controls the family-wise error rate at ``alpha``: the chance that any
check with no real change is flagged, and so of a false NO-GO, is at most alpha.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np


def hochberg(p_values: np.ndarray) -> np.ndarray:
    """Hochberg (1988) step-up adjusted p-values of one family (no missing values).

    The adjusted value of the i-th smallest of m p-values is ``min_{j >= i} (m - j + 1) p_(j)``,
    capped at 1.

    Example:
        >>> hochberg(np.array([0.01, 0.02, 0.03])).round(3).tolist()
        [0.03, 0.03, 0.03]
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (m - np.arange(m))
    out = np.empty(m)
    out[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return out


ANY = "*"
"""A secondary family's gate meaning: any primary family of the same kind."""


def family_adjusted(
    p_values: Sequence[float | None] | np.ndarray,
    families: Sequence[tuple[Hashable, str]],
    *,
    live: Sequence[bool] | None = None,
    gates: Sequence[Hashable | None] | None = None,
) -> tuple[np.ndarray, int]:
    """Adjusted p-values of the two-level design: Hochberg within a family, Bonferroni across.

    Args:
        p_values: one p-value per check; None or nan for checks without a test (not counted).
        families: the family of each check as ``(subject, kind)``, e.g. ``("POST /api/quote",
            "latency")``.
        live: per check, whether its test can reach significance at all; families with no live
            check are left out of the count (Tarone 1990). Default: every tested check is live.
        gates: per check, None for a primary family, else the family that gates it: a
            ``(subject, kind)`` key (a scenario slice of an endpoint is gated by the endpoint's
            family), or :data:`ANY` for any primary family of its kind (the whole-run ``ALL``
            entry). Secondary families are not counted; they are tested only once their gate is
            rejected, at the level it passes on, shared among the families it gates (a serial
            gatekeeper: the adjusted p-value is at least the gate's).

    Returns:
        The adjusted p-values (nan where there was no test) and the number of primary families
        counted.

    Example:
        >>> adj, families = family_adjusted([0.001, 0.002, 0.5], [("a", "x"), ("a", "x"),
        ...                                                        ("b", "x")])
        >>> adj.round(3).tolist(), families
        ([0.004, 0.004, 1.0], 2)
    """
    p = np.array([np.nan if v is None else v for v in p_values], dtype=np.float64)
    if len(families) != len(p):
        raise ValueError("one family per p-value")
    alive = np.isfinite(p) if live is None else np.isfinite(p) & np.asarray(live, dtype=bool)
    gate_of: dict[tuple[Hashable, str], Hashable | None] = {}
    groups: dict[tuple[Hashable, str], list[int]] = {}
    for index, family in enumerate(families):
        gate_of.setdefault(family, None if gates is None else gates[index])
        if np.isfinite(p[index]):
            groups.setdefault(family, []).append(index)
    primary = {f: m for f, m in groups.items()
               if gate_of[f] is None or (gate_of[f] != ANY and gate_of[f] not in groups)}
    if not primary:  # nothing to gate on: the secondary families stand on their own
        primary = groups
    counted = max(1, sum(1 for members in primary.values() if alive[members].any()))
    out = np.full(p.shape, np.nan)
    best: dict[Hashable, float] = {}
    for family, members in primary.items():
        idx = np.asarray(members)
        out[idx] = np.minimum(hochberg(p[idx]) * counted, 1.0)
        best[family] = float(out[idx].min())
        best[(ANY, family[1])] = min(best.get((ANY, family[1]), 1.0), best[family])
    gated = [f for f in groups if f not in primary]
    shares: dict[Hashable, int] = {}
    for family in gated:
        key = (ANY, family[1]) if gate_of[family] == ANY else gate_of[family]
        shares[key] = shares.get(key, 0) + 1
    for family in gated:
        key = (ANY, family[1]) if gate_of[family] == ANY else gate_of[family]
        idx = np.asarray(groups[family])
        own = np.minimum(hochberg(p[idx]) * counted * shares[key], 1.0)
        out[idx] = np.maximum(own, best.get(key, 1.0))
    return out, counted
