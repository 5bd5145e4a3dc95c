"""The multiple-testing design of the gate: one primary check per family, Benjamini-Hochberg across
families' primaries, the other checks of a family gatekept behind its primary.

A comparison makes dozens of checks, but they are not dozens of independent questions: the p50,
p95, p99 and mean of one endpoint move together when that endpoint gets slower. The checks are
therefore grouped into **families** (by default one per series and kind: an endpoint's latency
statistics and throughput, its error rate; a custom metric's statistics), and each family has one
**primary** check, the one that answers its question best (for latency the mean, which moves when
any part of the distribution moves; the order is the caller's ``priority``):

- **across families**, Benjamini-Hochberg (1995) over the primaries' p-values. When nothing
  changed it controls the chance of any rejection (its FWER equals its FDR under the complete
  null), and when several families really changed (one fault seen by an error rate, a success
  Rate and the checks) each of them is tested at a level that grows with the number rejected;
- **within a family**, the other checks (secondaries) are tested only once the primary is
  rejected, at the level it passed at, with Hochberg's step-up procedure (1988) among them
  (serial gatekeeping: a secondary's adjusted p-value is at least its primary's), so the
  secondaries cost the primary nothing;
- families that restate others are **gated** and not counted: the whole-run ``ALL`` entry (by
  any endpoint family of its kind) and the scenario slices of a series (by the series): tested
  only once their gate is rejected, at the level it passed at, shared among the families it
  gates.

A family whose primary can never be rejected (an error rate with no failure in either run, whose
exact p-value is 1 whatever happens) is not counted, as Tarone (1990) showed for discrete tests.

``adjusted[i] <= alpha`` rejects: with every null true, the chance of any rejection, and so of a
false NO-GO, is at most alpha (docs/compare.md, "The testing design", measures it).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from perfstats.stats.fdr import benjamini_hochberg


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
"""A gated family's gate meaning: any primary family of the same kind."""


@dataclass(frozen=True)
class Adjustment:
    """The outcome of :func:`gatekept_adjusted`.

    Attributes:
        p_adjusted: per check, the adjusted p-value (nan where there was no test).
        families: the number of primary families counted (F).
        primary: per check, whether it is its family's primary check.
        gate_p: per check, the adjusted p-value of what gates it (its family's primary for a
            secondary, the gate family's primary for a gated family's checks); nan for a
            counted primary.
    """

    p_adjusted: np.ndarray
    families: int
    primary: np.ndarray
    gate_p: np.ndarray


def gatekept_adjusted(
    p_values: Sequence[float | None] | np.ndarray,
    families: Sequence[tuple[Hashable, str]],
    *,
    priority: Sequence[int] | None = None,
    live: Sequence[bool] | None = None,
    gates: Sequence[Hashable | None] | None = None,
    across: Callable[[np.ndarray], np.ndarray] = benjamini_hochberg,
) -> Adjustment:
    """Adjusted p-values of the gatekeeping design: BH across primaries, secondaries behind them.

    Args:
        p_values: one p-value per check; None or nan for checks without a test (not counted).
        families: the family of each check as ``(subject, kind)``, e.g. ``("POST /api/quote",
            "latency")``.
        priority: per check, its rank for being the family's primary (lowest first; ties: the
            first check). The primary is the tested check of lowest rank. Default: the first.
        live: per check, whether its test can reach significance at all; a family whose primary
            is not live is left out of the count (Tarone 1990). Default: every tested check.
        gates: per check, None for a primary family, else the family that gates it: a
            ``(subject, kind)`` key (a scenario slice of an endpoint is gated by the endpoint's
            family), or :data:`ANY` for any primary family of its kind (the whole-run ``ALL``
            entry). Gated families are not counted; they are tested only once their gate's
            primary is rejected, at the level it passed at, shared among the families it gates.
        across: the adjustment over the counted primaries' p-values (Benjamini-Hochberg; a
            Bonferroni one is what benchmarks/gate_designs.py compares it with).

    Returns:
        The :class:`Adjustment`.

    Example:
        >>> out = gatekept_adjusted([0.004, 0.002, 0.5, 0.01], [("a", "x"), ("a", "x"),
        ...                         ("b", "x"), ("c", "x")], priority=[0, 1, 0, 0])
        >>> out.p_adjusted.round(3).tolist(), out.families
        ([0.012, 0.012, 0.5, 0.015], 3)
    """
    p = np.array([np.nan if v is None else v for v in p_values], dtype=np.float64)
    if len(families) != len(p):
        raise ValueError("one family per p-value")
    rank = np.zeros(len(p)) if priority is None else np.asarray(priority, dtype=np.float64)
    alive = np.isfinite(p) if live is None else np.isfinite(p) & np.asarray(live, dtype=bool)
    gate_of: dict[tuple[Hashable, str], Hashable | None] = {}
    groups: dict[tuple[Hashable, str], list[int]] = {}
    for index, family in enumerate(families):
        gate_of.setdefault(family, None if gates is None else gates[index])
        if np.isfinite(p[index]):
            groups.setdefault(family, []).append(index)
    for members in groups.values():  # the primary first, then the secondaries in order
        members.sort(key=lambda i: (rank[i], i))
    primary = {f: m for f, m in groups.items()
               if gate_of[f] is None or (gate_of[f] != ANY and gate_of[f] not in groups)}
    if not primary:  # nothing to gate on: the gated families stand on their own
        primary = groups
    counted = [f for f, m in primary.items() if alive[m[0]]]
    n_families = max(1, len(counted))
    firsts = dict(zip(counted, across(np.array([p[primary[f][0]] for f in counted])),
                      strict=True))
    out = np.full(p.shape, np.nan)
    gate_p = np.full(p.shape, np.nan)
    is_primary = np.zeros(p.shape, dtype=bool)
    # Per gate key: (adjusted p of the primary, the factor its level was divided by).
    passed: dict[Hashable, tuple[float, float]] = {}

    def test(members: list[int], first: float, factor: float) -> None:
        head, rest = members[0], members[1:]
        out[head] = first
        is_primary[head] = True
        if rest:
            out[rest] = np.maximum(np.minimum(hochberg(p[rest]) * factor, 1.0), first)
            gate_p[rest] = first

    for family, members in primary.items():
        head = p[members[0]]
        first = float(firsts.get(family, min(1.0, head * n_families)))
        factor = first / head if head > 0 else float(n_families)
        test(members, first, factor)
        for key in (family, (ANY, family[1])):
            if first < passed.get(key, (np.inf, 0.0))[0]:
                passed[key] = (first, factor)
    gated = [f for f in groups if f not in primary]
    shares: dict[Hashable, int] = {}

    def key_of(family: tuple[Hashable, str]) -> Hashable:
        return (ANY, family[1]) if gate_of[family] == ANY else gate_of[family]

    for family in gated:
        shares[key_of(family)] = shares.get(key_of(family), 0) + 1
    for family in gated:
        key = key_of(family)
        opened, factor = passed.get(key, (1.0, float(n_families)))
        members = groups[family]
        first = max(opened, min(1.0, float(p[members[0]]) * factor * shares[key]))
        test(members, first, factor * shares[key])
        gate_p[members[0]] = opened
    return Adjustment(out, n_families, is_primary, gate_p)
