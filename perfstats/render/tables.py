"""Render polars frames for the terminal and for files: rich table, JSON, CSV, markdown, HTML.

Whole results (headline, warnings, several tables) are rendered by :mod:`perfstats.render.document`.
"""

from __future__ import annotations

import html
import json
import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from perfstats.render.escape import markdown_cell, markdown_text, terminal_cell, terminal_text

FORMATS = ["table", "json", "csv", "markdown"]


def cell_text(value: Any) -> str:
    """A value as table text: empty for None, floats to about 4 significant digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:,.3f}".rstrip(
            "0").rstrip(".")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        if value and isinstance(value[0], dict) and set(value[0]) == {"key", "value"}:
            return ", ".join(f"{d['key']}={d['value']}" for d in value)
        return ", ".join(map(str, value))
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def jsonable(value: Any) -> Any:
    """Convert a value to plain JSON-able data: NaN and infinities to None, dates to ISO 8601,
    numpy scalars to Python ones, tuples to lists, DuckDB MAPs (key/value structs) to dicts."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        if value and isinstance(value[0], dict) and set(value[0]) == {"key", "value"}:
            return {d["key"]: d["value"] for d in value}
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def to_records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``frame`` as JSON-able dicts."""
    return [{k: jsonable(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def to_json(frame: pl.DataFrame) -> str:
    """A JSON list of objects, one per row."""
    return json.dumps(to_records(frame), indent=2)


def to_markdown(frame: pl.DataFrame, *, cell: Callable[[Any], str] = cell_text,
                right: Sequence[str] = ()) -> str:
    """A GitHub-flavoured markdown table (``cell`` formats each value; every cell escaped by
    :func:`~perfstats.render.escape.markdown_cell`, so each row stays one line; the columns
    named in ``right`` right-aligned)."""
    header = "| " + " | ".join(map(markdown_cell, frame.columns)) + " |"
    rule = "|" + "|".join("---:" if c in right else "---" for c in frame.columns) + "|"
    rows = ["| " + " | ".join(markdown_cell(cell(v)) for v in row) + " |"
            for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])


def to_csv(frame: pl.DataFrame) -> str:
    """RFC 4180 CSV with a header row; nested values (lists, maps such as ``labels``, structs)
    as JSON text in their cell."""
    nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()
              or isinstance(dtype, pl.Object)]
    flat = frame.with_columns(
        pl.Series(name, [None if v is None else json.dumps(jsonable(v), ensure_ascii=False)
                         for v in frame[name].to_list()], dtype=pl.String)
        for name in nested)
    return flat.write_csv()


def to_html(frame: pl.DataFrame, *, max_rows: int = 200,
            cell: Callable[[Any], str] = cell_text, right: Sequence[str] = ()) -> str:
    """A plain HTML table for notebooks and reports: every row up to ``max_rows``, numbers and
    the columns named in ``right`` (numbers already written as text) right-aligned, no dtype
    row and no quotes around strings."""
    numeric = [dtype.is_numeric() or name in right
               for name, dtype in zip(frame.columns, frame.dtypes, strict=True)]
    head = "".join(_th(name, num) for name, num in zip(frame.columns, numeric, strict=True))
    rows = []
    for row in frame.head(max_rows).iter_rows():
        cells = "".join(
            f'<td style="text-align:{"right" if num else "left"}">{html.escape(cell(v))}</td>'
            for v, num in zip(row, numeric, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    more = (f"<p><i>{frame.height - max_rows} more rows not shown</i></p>"
            if frame.height > max_rows else "")
    return (f'<table class="perfstats"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>{more}")


def _th(name: str, numeric: bool) -> str:
    """A column heading aligned as its cells are (numbers right, text left)."""
    return f'<th style="text-align:{"right" if numeric else "left"}">{html.escape(name)}</th>'


def render(frame: pl.DataFrame, fmt: str, *, title: str | None = None,
           console: Console | None = None,
           units: Mapping[str, str | None] | None = None) -> str | None:
    """Render ``frame`` in ``fmt``; a table is printed to ``console`` and None returned.

    ``table`` and ``markdown`` are for people and go through :func:`show` (``units`` as
    there); ``json`` and ``csv`` keep every column and value as stored."""
    if fmt == "json":
        return to_json(frame)
    if fmt == "csv":
        return to_csv(frame)
    if fmt == "markdown":
        return show(frame, title=title, units=units).to_markdown()
    if fmt == "table":
        (console or Console()).print(show(frame, title=title, units=units))
        return None
    raise ValueError(f"unknown output format {fmt!r}")


# ---------------------------------------------------------------------------------------------
# The display formatter: how every table a person reads looks (notebook, report, terminal).

LATENCY_COLUMNS = frozenset({"min", "mean", "avg", "med", "median", "p50", "p75", "p90", "p95",
                             "p99", "p99.9", "max", "stddev"})
"""Bare column names that hold a latency in milliseconds when a frame has no unit for them (a
frame with a ``unit`` column gives them that unit when it is the same in every row, else none)."""

_UNIT_SUFFIXES = {"_ms": "ms", "_s": "s", "_rps": "req/s", "_pct": "%", "_bytes": "bytes"}
_NAMED_UNITS = {"rps": "req/s", "throughput": "req/s", "error_rate": "%", "rate": "%",
                "users": "users"}
TERMINAL_WIDTH = 100
"""The width terminal tables are made to fit when the console does not say otherwise."""
_MAX_TEXT = 80
"""Longest text cell shown in a notebook or report before it is shortened (full text on hover)."""


def significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant figures, never in exponent form for |value| >= 1e-3,
    thousands separated, and whole numbers from 10**digits up (1,096.9 -> "1,097")."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return "" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -3:
        return f"{value:.{digits - 1}e}"
    decimals = max(0, digits - 1 - magnitude)
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _unit_of(name: str, dtype: pl.DataType, units: Mapping[str, str | None]) -> str | None:
    if name in units:
        return units[name]
    if name in _NAMED_UNITS:
        return _NAMED_UNITS[name]
    if name.endswith("_rate") and dtype.is_float():
        return "%"
    for suffix, unit in _UNIT_SUFFIXES.items():
        if name.endswith(suffix):
            return unit
    if name in LATENCY_COLUMNS and dtype.is_numeric():
        return "ms"
    if isinstance(dtype, pl.Datetime):
        return "UTC"
    return None


def _label(name: str, unit: str | None) -> str:
    """``p95_ms`` -> ``p95 (ms)``, ``error_rate`` -> ``error rate (%)``, ``run_id`` -> ``run id``.
    """
    base = name
    for suffix in _UNIT_SUFFIXES:
        if unit and base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    base = base.replace("_", " ").strip() or name
    return f"{base} ({unit})" if unit and unit != "users" else base


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "" if math.isnan(value) else (f"{value:,.0f}" if value.is_integer()
                                              and abs(value) < 1e15 else significant(value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        if value and isinstance(value[0], dict) and set(value[0]) == {"key", "value"}:
            return ", ".join(f"{d['key']}={d['value']}" for d in value)
        return "; ".join(_text(v) for v in value)
    return " ".join(str(value).split())


def _shorten(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class DisplayTable:
    """A frame formatted for people: every cell a string, units in the column names, numbers
    to three significant figures, error rates in percent, constant and duplicate columns
    left out and named in ``notes``.

    Shows itself in Jupyter (``_repr_html_``), as markdown and in a rich console; build it with
    :func:`show`.
    """

    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    notes: list[str]
    title: str | None = None
    atomic: list[bool] | None = None
    """Columns whose cells are never wrapped or cut (numbers, timestamps); default ``numeric``."""

    def to_html(self) -> str:
        """An HTML table (numbers right-aligned; long text shortened, in full on hover)."""
        head = "".join(_th(c, num) for c, num in zip(self.columns, self.numeric, strict=True))
        body = []
        for row in self.rows:
            cells = []
            for text, num in zip(row, self.numeric, strict=True):
                short = _shorten(text)
                hover = f' title="{html.escape(text)}"' if short != text else ""
                align = "right" if num else "left"
                cells.append(f'<td style="text-align:{align}"{hover}>{html.escape(short)}</td>')
            body.append(f"<tr>{''.join(cells)}</tr>")
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        notes = "".join(f'<p class="perfstats-note"><i>{html.escape(n)}</i></p>'
                        for n in self.notes)
        return (f'<table class="perfstats">{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(body)}</tbody></table>{notes}")

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_markdown(self) -> str:
        """A GitHub-flavoured markdown table with the notes below it."""
        def esc(text: str) -> str:
            return markdown_cell(_shorten(text))
        align = "|" + "|".join("---:" if n else "---" for n in self.numeric) + "|"
        lines = ["| " + " | ".join(esc(c) for c in self.columns) + " |", align]
        lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in self.rows]
        lines += [""] + [f"_{markdown_text(n)}_" for n in self.notes] if self.notes else []
        title = [f"**{markdown_text(self.title)}**", ""] if self.title else []
        return "\n".join(title + lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def to_rich(self, width: int = TERMINAL_WIDTH) -> tuple[Table, list[str]]:
        """A rich table at most ``width`` characters wide and the notes to print under it.

        Numbers are never cut or wrapped; text wraps. When even that does not fit, columns are
        left out from the right (never the first) and the notes say which.
        """
        from rich import box
        from rich.text import Text

        atomic = self.atomic or self.numeric
        words = [max((len(w) for w in c.split()), default=1) for c in self.columns]
        cells = [max((len(r[i]) for r in self.rows), default=0) for i in range(len(self.columns))]
        # a header wraps at its spaces; a number or timestamp is never wrapped, text is
        least = [max(words[i], cells[i] if atomic[i] else min(cells[i], 12))
                 for i in range(len(self.columns))]
        shown = list(range(len(self.columns)))
        dropped: list[str] = []
        gaps = 2  # a column's right padding and the box's blank separator
        while len(shown) > 1 and sum(least[i] for i in shown) + gaps * (len(shown) - 1) > width:
            dropped.insert(0, self.columns[shown.pop()])
        # the room left goes to whole headers and unwrapped text, left to right
        sizes = {i: least[i] for i in shown}
        room = width - sum(sizes.values()) - gaps * (len(shown) - 1)
        for i in shown:
            grow = min(max(room, 0), max(len(self.columns[i]), cells[i]) - sizes[i])
            sizes[i] += grow
            room -= grow
        title = None if self.title is None else terminal_cell(self.title)
        table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0),
                      pad_edge=False, show_edge=False, title_justify="left")
        for i in shown:
            header = Text(terminal_text(self.columns[i], newlines=False), overflow="fold",
                          no_wrap=False)
            table.add_column(header, justify="right" if self.numeric[i] else "left",
                             no_wrap=atomic[i], width=sizes[i],
                             overflow="crop" if atomic[i] else "fold")
        for row in self.rows:
            table.add_row(*(terminal_cell(row[i]) if atomic[i] or len(row[i]) <= sizes[i]
                            else Text(_at_joints(terminal_cell(row[i]).plain, sizes[i]))
                            for i in shown))
        notes = list(self.notes)
        if dropped:
            notes.append(f"not shown (wider than {width} columns): {', '.join(dropped)}; "
                         "--format csv or json has every column")
        return table, notes

    def __rich_console__(self, console: Console, options: Any) -> Any:
        table, notes = self.to_rich(options.max_width)
        yield table
        yield from map(terminal_cell, notes)

    def __str__(self) -> str:
        console = Console(width=TERMINAL_WIDTH, record=True, file=_Discard(),
                          color_system=None)
        console.print(self)
        return console.export_text()


def _at_joints(text: str, width: int) -> str:
    """``text`` with each word longer than ``width`` broken where a name has a joint (before a
    ``{`` first, else after ``/``, ``:``, ``,`` or ``_``) rather than at the column's edge:
    ``http_req_duration`` / ``{scenario:browse_flow}``, not ``...{scenario:browse_flo`` / ``w}``."""
    words = []
    for word in text.split(" "):
        pieces = []
        while len(word) > width:
            braces = [m.start() for m in _BRACE.finditer(word, 1, width + 1)]
            joints = braces or [m.start() for m in _JOINT.finditer(word, 1, width + 1)]
            cut = joints[-1] if joints else width
            pieces.append(word[:cut])
            word = word[cut:]
        words.append("\n".join([*pieces, word]))
    return " ".join(words)


_BRACE = re.compile(r"(?=\{)")
_JOINT = re.compile(r"(?<=[/:,_])")


class _Discard:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def show(frame: pl.DataFrame, *, title: str | None = None,
         units: Mapping[str, str | None] | None = None, keep: Sequence[str] = (),
         max_rows: int = 200) -> DisplayTable:
    """``frame`` formatted for people, the same in a notebook, a report and a terminal.

    Args:
        frame: any polars frame (``runs()``, ``Run.summary()``, ``Run.table("errors")``, ...).
        title: a caption.
        units: a unit per column name where the name does not say it (None: no unit). Known
            without it: ``*_ms``, ``*_s``, ``rps``, ``*_rate`` (shown in %), the bare latency
            percentiles (ms) and timestamps (UTC).
        keep: columns never left out, even when constant.
        max_rows: rows shown; the notes say how many more there are.

    Returns:
        A :class:`DisplayTable`: it shows itself as HTML in Jupyter and as a table that fits the
        terminal in a rich console; ``str()`` gives the 100-column text.

    Example:
        >>> perfstats.show(run.summary())  # doctest: +SKIP
    """
    units = dict(units or {})
    if "unit" in frame.columns and frame.height:
        given = frame.get_column("unit").unique().to_list()
        bare = given[0] if len(given) == 1 else None
        units = {**{c: bare for c in LATENCY_COLUMNS if c in frame.columns}, **units}
    notes: list[str] = []
    columns = _useful_columns(frame, keep, notes)
    shown = frame.head(max_rows).select(columns)
    labels, rows, numeric, atomic = [], [[] for _ in range(shown.height)], [], []
    for name, dtype in shown.schema.items():
        unit = _unit_of(name, dtype, units)
        labels.append(_label(name, unit))
        numeric.append(dtype.is_numeric())
        values = shown.get_column(name)
        atomic.append(dtype.is_numeric() or dtype.is_temporal() or _short(values))
        if unit == "%" and dtype.is_numeric() and not name.endswith("_pct"):
            values = values * 100
        for row, value in zip(rows, values.to_list(), strict=True):
            row.append(_text(value))
    if frame.height > max_rows:
        notes.append(f"{frame.height - max_rows:,} more rows not shown")
    if frame.is_empty():
        notes.append("no rows")
    return DisplayTable(labels, rows, numeric, notes, title, atomic)


def _short(values: pl.Series) -> bool:
    """Text short enough to keep whole, such as an interval ``[+25.0, +45.5]%``."""
    return values.dtype == pl.String and (values.str.len_chars().max() or 0) <= 20


def _useful_columns(frame: pl.DataFrame, keep: Sequence[str], notes: list[str]) -> list[str]:
    """The columns worth a reader's eye; the others are named in ``notes``."""
    if frame.height < 3:  # with one or two rows a constant column still reads as data
        empty = [c for c in frame.columns if c not in keep and frame.height
                 and frame[c].null_count() == frame.height]
        if empty:
            notes.append(f"empty: {', '.join(empty)}")
        return [c for c in frame.columns if c not in empty] or frame.columns[:1]
    constant, empty, repeated = [], [], []
    text_columns = [c for c, t in frame.schema.items() if t == pl.String]
    for name in frame.columns:
        series = frame.get_column(name)
        if name in keep or name == frame.columns[0]:
            continue
        if series.null_count() == frame.height:
            empty.append(name)
        elif _is_constant(series):
            constant.append(f"{_label(name, None)} {_text(series.drop_nulls()[0])}")
        elif name in text_columns and _repeats(frame, name, text_columns):
            repeated.append(name)
    left_out = {c.split(" ")[0] for c in constant}
    out = [c for c in frame.columns if c not in empty and c not in repeated
           and _label(c, None).split(" ")[0] not in left_out or c in keep]
    if constant:
        notes.append("the same in every row: " + "; ".join(constant))
    if repeated:
        notes.append(f"not shown, part of another column: {', '.join(repeated)}")
    if empty:
        notes.append(f"empty: {', '.join(empty)}")
    return out or frame.columns[:1]


def _is_constant(series: pl.Series) -> bool:
    if series.null_count():
        return False
    try:
        return series.n_unique() == 1
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
        return len({_text(v) for v in series.to_list()}) == 1


def _repeats(frame: pl.DataFrame, name: str, text_columns: Sequence[str]) -> bool:
    """Every value of ``name`` is null or a word-part of the same row's value of an earlier
    text column (``method`` GET and ``tool_name`` /health inside ``endpoint`` GET /health)."""
    for other in text_columns:
        if other == name:
            break
        inside = frame.select(
            (pl.col(name).is_null()
             | pl.col(other).str.contains(pl.col(name), literal=True).fill_null(False))
            .all()).item()
        if inside:
            return True
    return False


def wrap_words(text: str, width: int, *, indent: str = "") -> str:
    """``text`` broken between words (never inside one, nor at a hyphen) to ``width`` columns,
    at least 40; later lines start with ``indent``."""
    return textwrap.fill(text, width=max(width, 40), break_on_hyphens=False,
                         break_long_words=False, subsequent_indent=indent)
