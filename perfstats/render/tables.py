"""Render polars frames for the terminal and for files: rich table, JSON, CSV, markdown."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

FORMATS = ["table", "json", "csv", "markdown"]


def _cell(value: Any) -> str:
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


def to_markdown(frame: pl.DataFrame, *, cell: Callable[[Any], str] = _cell) -> str:
    """A GitHub-flavoured markdown table (``cell`` formats each value)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v).replace("|", "\\|") for v in row) + " |"
            for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])


def to_html(frame: pl.DataFrame, *, max_rows: int = 200) -> str:
    """A plain HTML table for notebooks and reports: every row up to ``max_rows``, numbers
    right-aligned, no dtype row and no quotes around strings."""
    numeric = [dtype.is_numeric() for dtype in frame.dtypes]
    head = "".join(f"<th>{html.escape(name)}</th>" for name in frame.columns)
    rows = []
    for row in frame.head(max_rows).iter_rows():
        cells = "".join(
            f'<td style="text-align:{"right" if num else "left"}">{html.escape(_cell(v))}</td>'
            for v, num in zip(row, numeric, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    more = (f"<p><i>{frame.height - max_rows} more rows not shown</i></p>"
            if frame.height > max_rows else "")
    return (f'<table class="perfstats"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>{more}")


def to_rich(frame: pl.DataFrame, title: str | None = None) -> Table:
    """A rich table (numbers right-aligned)."""
    table = Table(title=title, show_lines=False)
    for name, dtype in frame.schema.items():
        table.add_column(name, justify="right" if dtype.is_numeric() else "left")
    for row in frame.iter_rows():
        table.add_row(*(_cell(v) for v in row))
    return table


def render(frame: pl.DataFrame, fmt: str, *, title: str | None = None,
           console: Console | None = None) -> str | None:
    """Render ``frame`` in ``fmt``; a table is printed to ``console`` and None returned."""
    if fmt == "json":
        return to_json(frame)
    if fmt == "csv":
        nested = [n for n, t in frame.schema.items() if isinstance(t, pl.List | pl.Struct)]
        flat = frame.with_columns(pl.Series(n, [_cell(v) for v in frame[n]]) for n in nested)
        return flat.write_csv()
    if fmt == "markdown":
        return to_markdown(frame)
    if fmt == "table":
        (console or Console()).print(to_rich(frame, title))
        return None
    raise ValueError(f"unknown output format {fmt!r}")
