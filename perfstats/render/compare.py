"""How a comparison reads: the headline, the check tables (terminal, markdown, HTML), their cells.

Everything here works on the checks frame of :class:`perfstats.Comparison` (columns
``perfstats.comparison.gate.CHECK_SCHEMA``), already ordered worst first. The terminal table is
laid out for a narrow terminal: one line per endpoint, then one line per check of it, so that no
number, interval or status is ever cut; an endpoint name longer than the terminal wraps instead.
Names are never read as markup (``/api/deals/[id]`` stays as it is).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl
from rich.text import Text

from perfstats.render.escape import terminal_text
from perfstats.render.tables import wrap_words
from perfstats.stats.decision import FAILING, STATUSES
from perfstats.stats.drift import DriftSettings
from perfstats.store import ALL_ENDPOINTS

STATUS_STYLES = {"regression": "bold red", "slo_breach": "bold red", "inconclusive": "yellow",
                 "insufficient_data": "dim", "improved": "green", "ok": "green"}
P_COLUMN = "p>tol"
"""Name of the p-value column: the adjusted p-value of "worse than ``null_fraction`` of the
tolerance"."""
P_LEGEND = (f"{P_COLUMN} = adjusted p-value (over the families of checks) that the change is "
            f"worse than {DriftSettings().null_fraction:g} of its tolerance: near 0 with a change "
            "beyond the tolerance flags a regression, near 1 means no evidence of one (a change "
            "can be real and still within its tolerance); intervals are 90 %.")
NAMED_IN_HEADLINE = 3
"""Up to this many failing checks are named in the headline; beyond, the first and the last."""
DISPLAY_COLUMNS = ("endpoint", "metric", "status", "baseline", "candidate", "change", "interval",
                   "tolerance", P_COLUMN, "method")
"""Columns of the readable check table (markdown, HTML); ``vs common`` comes after ``change``
when the endpoints share a common shift."""
COMMON_COLUMN = "vs common"
NUMBER_COLUMNS = ("baseline", "candidate", "change", COMMON_COLUMN, "tolerance", P_COLUMN)
"""Columns of the readable check and threshold tables that hold numbers (right-aligned)."""
_GAP = 2
_NO_BREAK = "\u00a0"


# --------------------------------------------------------------------------------- cells


def subject(row: Mapping[str, Any]) -> str:
    """What a check is about: the endpoint, custom metric or check, with its slice in k6's tag
    notation (``POST /api/quote{scenario:quote_flow}``)."""
    cut = row.get("slice") or ""
    return f"{row['endpoint']}{{{cut}}}" if cut else str(row["endpoint"])


def value_text(metric: str, value: float | None) -> str:
    """A measured value with its unit: ``41.0 ms``, ``82.26/s``, ``1.93%``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if metric in ("error_rate", "rate"):
        return f"{value * 100:.2f}%"
    if metric in ("throughput", "per_second"):
        return f"{value:,.2f}/s"
    if metric not in _LATENCY:  # a threshold expression: the aggregation's own value
        return f"{value:.6g}"
    return f"{value:,.1f} ms" if value >= 10 else f"{value:,.2f} ms"


_LATENCY = frozenset({"p50", "p90", "p95", "p99", "mean", "min", "max"})


def threshold_rows(thresholds: pl.DataFrame) -> pl.DataFrame:
    """Threshold results as readable strings: metric, expression, baseline and candidate
    values, perfstats' verdict and the tool's own (for thresholds the run declared)."""
    def verdict(ok: bool | None) -> str:
        return "" if ok is None else ("pass" if ok else "FAIL")

    rows = [{
        "threshold": f"{r['metric']} {r['expression']}", "source": r["source"],
        "baseline": "" if r["baseline"] is None else f"{r['baseline']:.6g}",
        "candidate": "" if r["value"] is None else f"{r['value']:.6g}",
        "perfstats": verdict(r["ok"]), "tool": verdict(r["tool_ok"]), "method": r["method"],
    } for r in thresholds.iter_rows(named=True)]
    return pl.DataFrame(rows, schema={c: pl.String for c in (
        "threshold", "source", "baseline", "candidate", "perfstats", "tool", "method")})


def thresholds_text(thresholds: pl.DataFrame, *, width: int = 100) -> Text:
    """The threshold results for a terminal: one line each, failures first."""
    out = Text()
    if thresholds.is_empty():
        return out
    frame = threshold_rows(thresholds.sort("ok", "metric", nulls_last=True))
    out.append("thresholds (candidate; the tool's own verdict beside perfstats')\n",
               style="bold")
    name_width = min(max(len(t) for t in frame["threshold"]), max(width - 40, 20))
    for row in frame.iter_rows(named=True):
        line = f"{_INDENT}{row['threshold']:<{name_width}}  {row['candidate']:>10}  "
        out.append(line)
        out.append(f"{row['perfstats']:<4}", style="bold red" if row["perfstats"] == "FAIL"
                   else "green")
        tool = f"  {row['source']}: {row['tool']}" if row["tool"] else f"  ({row['source']})"
        out.append(tool + "\n")
    return out


def change_text(row: Mapping[str, Any]) -> str:
    """The change: ``+35.9%`` (latency, throughput) or ``+1.12 pp`` (error rate, Rates)."""
    if row["metric"] in ("error_rate", "rate"):
        return "" if row["change_abs"] is None else f"{row['change_abs'] * 100:+.2f} pp"
    return "" if row["change_pct"] is None else f"{row['change_pct']:+.1f}%"


def _unit(row: Mapping[str, Any]) -> str:
    return " pp" if row["ci_unit"] == "pp" else "%"


def interval_text(row: Mapping[str, Any], *, unit: bool = True) -> str:
    """The 90 % interval of the change, ``[+25.0, +45.5]%``; empty when there is none."""
    if row["ci_low"] is None or row["ci_high"] is None:
        return ""
    digits = 2 if row["ci_unit"] == "pp" else 1
    text = f"[{row['ci_low']:+.{digits}f}, {row['ci_high']:+.{digits}f}]"
    return text + _unit(row) if unit else text


def tolerance_text(row: Mapping[str, Any]) -> str:
    """The margin the change was held against, in the worse direction: ``+10%``, ``+0.5 pp``."""
    value = row.get("tolerance")
    if value is None:
        return ""
    return f"{value:+.2g}{_unit(row)}" if abs(value) < 1 else f"{value:+.3g}{_unit(row)}"


def p_text(row: Mapping[str, Any]) -> str:
    """The adjusted p-value of "worse than the tolerance", two significant digits."""
    p = row["p_adjusted"]
    if p is None:
        return ""
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def check_text(row: Mapping[str, Any]) -> str:
    """One check in words, for the headline: what changed, how sure, against which tolerance."""
    name = f"{subject(row)} {row['metric']}"
    if row["status"] == "slo_breach":
        breach = row["note"].split(";", 1)[0] if row["note"] else "breaks its SLO"
        return f"{name} {value_text(row['metric'], row['candidate'])} {breach}"
    interval = interval_text(row) or (
        "(threshold-only, no interval)" if row["method"] == "threshold-only" else "")
    parts = [name, change_text(row), interval]
    tolerance = tolerance_text(row)
    if tolerance:
        parts.append(f"vs tolerance {tolerance}")
    return " ".join(p for p in parts if p)


def status_counts(checks: pl.DataFrame) -> str:
    """``2 regression, 7 inconclusive, 28 ok (37 checks)``, statuses worst first."""
    counts = dict(checks["status"].value_counts().iter_rows())
    parts = [f"{counts[s]} {s}" for s in STATUSES if s in counts]
    parts += [f"{n} {s}" for s, n in counts.items() if s not in STATUSES]
    return f"{', '.join(parts)} ({checks.height} checks)"


def headline(verdict: str, ordered: pl.DataFrame, *, space: str = " ") -> str:
    """Verdict, status counts and the failing checks with change, interval and tolerance.

    Args:
        verdict: ``GO`` or ``NO-GO``.
        ordered: the checks, worst first.
        space: the space inside the words about one check (a no-break space keeps each of them
            on one line when the headline is wrapped).
    """
    line = f"{verdict}: {status_counts(ordered)}"
    failing = ordered.filter(pl.col("status").is_in(list(FAILING))).to_dicts()
    if not failing:
        return line + "; no regression or SLO breach"
    named = [check_text(row) for row in failing]
    if len(named) > NAMED_IN_HEADLINE:
        named = [f"first {named[0]}", f"... {len(named) - 2} more ...", f"last {named[-1]}"]
    return f"{line}; failing: " + "; ".join(n.replace(" ", space) for n in named)


# --------------------------------------------------------------------------------- tables


def attention(ordered: pl.DataFrame, *, all_checks: bool = False) -> pl.DataFrame:
    """The checks a reader must see: every check that is not ``ok`` (all with ``all_checks``)."""
    return ordered if all_checks else ordered.filter(pl.col("status") != "ok")


def display_frame(ordered: pl.DataFrame) -> pl.DataFrame:
    """The checks as readable strings (:data:`DISPLAY_COLUMNS`), for markdown and HTML."""
    rows = [{
        "endpoint": subject(row), "metric": row["metric"], "status": row["status"],
        "baseline": value_text(row["metric"], row["baseline"]),
        "candidate": value_text(row["metric"], row["candidate"]),
        "change": change_text(row), "interval": interval_text(row),
        "tolerance": tolerance_text(row), P_COLUMN: p_text(row), "method": row["method"],
        COMMON_COLUMN: common_text(row),
    } for row in ordered.iter_rows(named=True)]
    columns = list(DISPLAY_COLUMNS)
    if has_common_shift(ordered):
        columns.insert(columns.index("change") + 1, COMMON_COLUMN)
    return pl.DataFrame(rows, schema={c: pl.String for c in (*DISPLAY_COLUMNS, COMMON_COLUMN)}
                        ).select(columns)


def has_common_shift(checks: pl.DataFrame) -> bool:
    """Whether the endpoints share a shift beyond its tolerance on some metric, as the checks'
    change relative to the common shift (``change_vs_common_pct``) tells: the shift is
    ``(1 + change) / (1 + change vs common) - 1``, one value per metric."""
    if "change_vs_common_pct" not in checks.columns:
        return False
    rows = checks.filter(pl.col("change_vs_common_pct").is_not_null() & (pl.col("ci_unit") == "%")
                         & pl.col("change_pct").is_not_null() & pl.col("tolerance").is_not_null())
    shift = (1 + pl.col("change_pct") / 100) / (1 + pl.col("change_vs_common_pct") / 100) - 1
    beyond = rows.filter((100 * shift).abs() > pl.col("tolerance").abs())
    return beyond.height > 0


def common_text(row: Mapping[str, Any]) -> str:
    """The change relative to the shift most endpoints share, ``+4.1%``; empty without one."""
    value = row.get("change_vs_common_pct")
    return "" if value is None else f"{value:+.1f}%"


_TERMINAL = (  # (header, cell, right-aligned)
    ("metric", lambda r: r["metric"], False),
    ("status", lambda r: r["status"], False),
    ("baseline", lambda r: value_text(r["metric"], r["baseline"]), True),
    ("candidate", lambda r: value_text(r["metric"], r["candidate"]), True),
    ("change", change_text, True),
    ("interval", lambda r: interval_text(r, unit=False) or (
        "threshold-only" if r["method"] == "threshold-only" else ""), False),
    ("tolerance", tolerance_text, True),
    (P_COLUMN, p_text, True),
)
_METHOD = ("method", lambda r: r["method"], False)
SHORT_METHODS = {"block-bootstrap": "boot", "window-level": "windows", "fisher-exact": "fisher",
                 "poisson-exact": "poisson", "threshold-only": "no-test",
                 "threshold (exact)": "thresh", "threshold (tool-summary)": "thr-sum", "none": ""}
"""The method column's names in a terminal too narrow for the full ones (``summary`` and
``z-test`` stay as they are); a line under the table spells out those used."""
_INDENT = "  "


def _endpoint_label(name: str) -> str:
    return f"{ALL_ENDPOINTS} (whole run)" if name == ALL_ENDPOINTS else terminal_text(
        name, newlines=False)


def terminal_table(ordered: pl.DataFrame, *, width: int = 100) -> Text:
    """The checks as text for a terminal of ``width`` columns: a line per endpoint (in the order
    of its worst check), under it a line per check. No cell is ever cut. The method of each
    check is the last column: its full name when that fits, else its short name
    (:data:`SHORT_METHODS`, spelled out under the table), with the gaps narrowed to one space
    if need be; only when even that does not fit are the methods listed under the table."""
    rows = ordered.to_dicts()
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(subject(row), []).append(row)
    columns = list(_TERMINAL)
    if has_common_shift(ordered):
        columns.insert(5, (COMMON_COLUMN, common_text, True))
    cells = [[cell(r) for _, cell, _ in columns] for r in rows]
    widths = _widths([h for h, _, _ in columns], cells)
    full = max([len(_METHOD[0]), *(len(r["method"]) for r in rows)])
    short = max([len(_METHOD[0]), *(len(_short_method(r["method"])) for r in rows)])
    method = None
    for gap, name, method_width in ((_GAP, _METHOD[1], full), (_GAP, _short_row, short),
                                    (1, _short_row, short)):
        if _line_width([*widths, method_width], gap) <= width:
            method = (_METHOD[0], name, False)
            columns.append(method)
            widths.append(method_width)
            break
    else:
        gap = _GAP if _line_width(widths, _GAP) <= width else 1
    out = Text()
    out.append(_INDENT + _join([h for h, _, _ in columns], widths, columns, gap) + "\n",
               style="bold")
    for endpoint, members in groups.items():
        out.append(_endpoint_label(endpoint) + "\n", style="bold")
        for row in members:
            texts = [cell(row) for _, cell, _ in columns]
            last = max(k for k, t in enumerate(texts) if t)
            out.append(_INDENT)
            for k, (text, (_, _, right)) in enumerate(zip(texts[:last + 1], columns,
                                                          strict=False)):
                if k:
                    out.append(" " * gap)
                padded = text.rjust(widths[k]) if right else text.ljust(widths[k])
                out.append(padded.rstrip() if k == last else padded,
                           style=STATUS_STYLES.get(text) if k == 1 else None)
            out.append("\n")
    used = sorted({r["method"] for r in rows} - {"none"})
    if method is None:
        out.append(_wrapped(f"methods: {', '.join(used)} (a wider terminal shows the method "
                            "of each check)", width), style="dim")
    elif method[1] is _short_row:
        spelled = [f"{_short_method(m)} = {m}" for m in used if _short_method(m) != m]
        if spelled:
            out.append(_wrapped(f"method: {', '.join(spelled)}", width), style="dim")
    return out


def _short_method(method: str) -> str:
    return SHORT_METHODS.get(method, method)


def _short_row(row: Mapping[str, Any]) -> str:
    return _short_method(row["method"])


def terminal_report(ordered: pl.DataFrame, *, verdict: str, title: str,
                    warnings: Sequence[str], notes: Sequence[str] = (), all_checks: bool = False,
                    width: int = 100, thresholds: pl.DataFrame | None = None) -> Text:
    """What ``perfstats compare`` prints: title, the checks that are not ``ok`` (every check
    with ``all_checks``), the legend, the warnings, notes (e.g. a common-mode shift) and last
    the headline."""
    shown = attention(ordered, all_checks=all_checks)
    out = Text()  # the title's style on its span only: a Text's own style covers every line
    out.append(terminal_text(title) + "\n", style="bold")
    if shown.height:
        out.append_text(terminal_table(shown, width=width))
    hidden = ordered.height - shown.height
    if hidden:
        out.append(f"{hidden} ok check{'s' if hidden != 1 else ''} not shown (--all shows every "
                   "check)\n", style="dim")
    if shown.height:
        for line in legend(ordered):
            out.append(_wrapped(line, width), style="dim")
    if thresholds is not None:
        out.append_text(thresholds_text(thresholds, width=width))
    for warning in warnings:
        out.append(_wrapped(f"warning: {terminal_text(warning)}", width, indent="  "))
    for note in notes:
        out.append(_wrapped(f"note: {terminal_text(note)}", width, indent="  "))
    kept = _wrapped(terminal_text(headline(verdict, ordered, space=_NO_BREAK)), width,
                    indent="  ")
    out.append(kept.replace(_NO_BREAK, " ").rstrip("\n"), style=_verdict_style(verdict))
    return out


def legend(checks: pl.DataFrame) -> list[str]:
    """What the columns mean: the p-value column, and the absolute latency floor when the
    checks carry the one used (``floor_ms``)."""
    lines = [P_LEGEND]
    if "floor_ms" in checks.columns:
        floors = sorted(set(checks["floor_ms"].drop_nulls().to_list()))
        if floors:
            shown = ", ".join(f"{f:g}" for f in floors)
            lines.append(f"A latency change must also exceed the absolute floor of {shown} ms "
                         "(the tools' timing resolution) to be a regression.")
    return lines


def _wrapped(text: str, width: int, *, indent: str = "") -> str:
    """``text`` broken between words to ``width`` columns (a line of the report's text)."""
    return wrap_words(text, width, indent=indent) + "\n"


def _verdict_style(verdict: str) -> str:
    return "bold red" if verdict == "NO-GO" else "bold green"


def _widths(headers: Sequence[str], cells: Iterable[Sequence[str]]) -> list[int]:
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    return widths


def _line_width(widths: Sequence[int], gap: int) -> int:
    return len(_INDENT) + sum(widths) + gap * (len(widths) - 1)


def _join(texts: Sequence[str], widths: Sequence[int], columns: Sequence[tuple[Any, ...]],
          gap: int) -> str:
    cells = [t.rjust(w) if c[2] else t.ljust(w) for t, w, c in zip(texts, widths, columns,
                                                                    strict=True)]
    return (" " * gap).join(cells).rstrip()
