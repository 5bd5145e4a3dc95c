"""One renderer for every result: a result describes itself as a small :class:`Document`
(title, lead lines, warnings, named sections holding a table, bullets or a paragraph), and this
module turns that into markdown, HTML (notebooks) or plain text.

Every result class (``Comparison``, ``CapacityPlan``, ``Bottlenecks``, ``History``, ``Run``,
``USLFit``, ``ChangePoint``) derives from :class:`Result`: it gives ``headline()``,
``warnings``, ``to_dict()``, ``chart(**options)`` and ``document()``, and gets ``to_markdown()``,
``to_text()``, ``_repr_html_()``, ``details()`` and ``str()`` from here.

A report page says the answer first (:func:`perfstats.headline`: the runs, the answer, the
warnings) and shows the result's detail further down; ``result.details()`` is that detail: the
document without its answer (title, lead, points and warnings), so the page says them once.
"""

from __future__ import annotations

import html
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from perfstats.render.escape import markdown_text
from perfstats.render.tables import DisplayTable, cell_text, to_html, to_markdown

if TYPE_CHECKING:
    import altair as alt
    import polars as pl

TONES = {"good": "#2ca02c", "bad": "#d62728"}
"""Title colours in HTML: a GO verdict is ``good``, NO-GO ``bad``."""


@dataclass(frozen=True)
class Section:
    """One named part of a document: a table, bullet points or a paragraph (any of them).

    Attributes:
        title: its heading; None for none.
        table: a frame shown as a table, or a frame already formatted for people
            (:func:`perfstats.render.tables.show`).
        bullets: items of a list.
        text: a paragraph (lines joined by line breaks).
        collapsed: folded away (``<details>``) in markdown and HTML.
        cell: how a table cell is written (default: :func:`perfstats.render.tables.cell_text`).
        right: columns of ``table`` right-aligned although they hold text (numbers with
            their units, already written).
    """

    title: str | None = None
    table: pl.DataFrame | DisplayTable | None = None
    bullets: Sequence[str] = ()
    text: Sequence[str] = ()
    collapsed: bool = False
    cell: Callable[[Any], str] | None = None
    right: Sequence[str] = ()


@dataclass(frozen=True)
class Document:
    """What a result says, before it is rendered.

    Attributes:
        title: the heading (markdown may emphasise part of it with ``**``).
        lead: lines under the title (one paragraph), the answer first.
        points: the answer's further points, a list under the lead.
        warnings: reasons to distrust a number.
        sections: the rest, in order.
        tone: ``good`` or ``bad`` colours the title in HTML; None leaves it plain.
    """

    title: str
    lead: Sequence[str] = ()
    points: Sequence[str] = ()
    warnings: Sequence[str] = ()
    sections: Sequence[Section] = ()
    tone: str | None = None

    def details(self) -> Document:
        """The sections alone: no title, lead, points or warnings (a page that has shown the
        answer with :func:`perfstats.headline` shows this further down)."""
        return Document(title="", sections=self.sections)

    def _repr_html_(self) -> str:
        return to_html_document(self)

    def __str__(self) -> str:
        return text(self)


def markdown(doc: Document, *, level: int = 2) -> str:
    """GitHub-flavoured markdown: ``##`` title, lead, points, warnings, sections (``###``).

    The title is written as given (it may hold ``**`` emphasis); every other text is escaped by
    :func:`perfstats.render.escape.markdown_text`."""
    out = [f"{'#' * level} {doc.title}", ""] if doc.title else []
    if doc.lead:
        out += [*map(markdown_text, doc.lead), ""]
    if doc.points:
        out += [*(f"- {markdown_text(p)}" for p in doc.points), ""]
    if doc.warnings:
        out += ["**Warnings**", "", *(f"- {markdown_text(w)}" for w in doc.warnings), ""]
    for section in doc.sections:
        body = _markdown_body(section)
        if section.collapsed:
            out += [f"<details><summary>{section.title or 'more'}</summary>", "", *body,
                    "</details>", ""]
        else:
            out += ([f"{'#' * (level + 1)} {section.title}", ""] if section.title else []) + body
    return "\n".join(out).rstrip("\n") + "\n"


def _markdown_body(section: Section) -> list[str]:
    out = []
    if isinstance(section.table, DisplayTable):
        out += [section.table.to_markdown(), ""]
    elif section.table is not None:
        out += [to_markdown(section.table, cell=section.cell or cell_text, right=section.right),
                ""]
    if section.bullets:
        out += [*(f"- {markdown_text(b)}" for b in section.bullets), ""]
    if section.text:
        out += [*map(markdown_text, section.text), ""]
    return out


def to_html_document(doc: Document) -> str:
    """HTML for notebooks and reports: every text escaped, tables by
    :func:`perfstats.render.tables.to_html`."""
    colour = TONES.get(doc.tone or "")
    title = html.escape(doc.title.replace("**", ""))
    title = f"<b style='color:{colour}'>{title}</b>" if colour else f"<b>{title}</b>"
    opening = [title] if doc.title else []
    opening += [html.escape(line) for line in doc.lead]
    out = [f"<p>{'<br>'.join(opening)}</p>"] if opening else []
    if doc.points:
        out.append("<ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in doc.points) + "</ul>")
    if doc.warnings:
        out.append("<p><b>Warnings</b></p><ul>"
                   + "".join(f"<li>{html.escape(w)}</li>" for w in doc.warnings) + "</ul>")
    for section in doc.sections:
        body = ""
        if isinstance(section.table, DisplayTable):
            body += section.table.to_html()
        elif section.table is not None:
            body += to_html(section.table, cell=section.cell or cell_text, right=section.right)
        if section.bullets:
            body += "<ul>" + "".join(f"<li>{html.escape(b)}</li>" for b in section.bullets) \
                + "</ul>"
        if section.text:
            body += "<p>" + "<br>".join(html.escape(t) for t in section.text) + "</p>"
        name = html.escape(section.title or "more")
        if section.collapsed:
            out.append(f"<details><summary>{name}</summary>{body}</details>")
        else:
            out.append((f"<p><b>{name}</b></p>" if section.title else "") + body)
    return f'<div class="perfstats-result">{"".join(out)}</div>'


def text(doc: Document) -> str:
    """Plain text for a terminal or a log: title, lead, warnings, sections (tables aligned)."""
    out = [*([doc.title.replace("**", "")] if doc.title else []), *doc.lead,
           *(f"- {p}" for p in doc.points)]
    if doc.warnings:
        out += ["", "Warnings:", *(f"  - {w}" for w in doc.warnings)]
    for section in doc.sections:
        out += ["", f"{section.title}:" if section.title else ""]
        if isinstance(section.table, DisplayTable):
            out.append(str(section.table).rstrip("\n"))
        elif section.table is not None:
            out.append(_aligned(section.table, section.cell or cell_text))
        out += [f"  - {b}" for b in section.bullets]
        out += list(section.text)
    return "\n".join(line for i, line in enumerate(out) if line or (i and out[i - 1])) + "\n"


def _aligned(frame: pl.DataFrame, cell: Callable[[Any], str]) -> str:
    rows = [list(frame.columns), *([cell(v) for v in row] for row in frame.iter_rows())]
    widths = [max(len(r[i]) for r in rows) for i in range(len(frame.columns))]
    numeric = [dtype.is_numeric() for dtype in frame.dtypes]
    return "\n".join(
        "  ".join(v.rjust(w) if num else v.ljust(w)
                  for v, w, num in zip(row, widths, numeric, strict=True)).rstrip()
        for row in rows)


class Result(ABC):
    """The shape every result object has (see the module docstring)."""

    __slots__ = ()
    warnings: tuple[str, ...]

    @abstractmethod
    def headline(self) -> str:
        """The answer in one line."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""

    @abstractmethod
    def chart(self, **options: Any) -> alt.TopLevelMixin:
        """An altair chart of the result (the options are the class's own, keyword-only)."""

    @abstractmethod
    def document(self, **options: Any) -> Document:
        """The result as a :class:`Document`, which markdown, HTML and text render."""

    def to_markdown(self, **options: Any) -> str:
        """Markdown for a pull request or a report (options: those of :meth:`document`)."""
        return markdown(self.document(**options))

    def to_text(self, **options: Any) -> str:
        """Plain text for a terminal or a log (options: those of :meth:`document`)."""
        return text(self.document(**options))

    def details(self, **options: Any) -> Document:
        """The detail without the answer: :meth:`document` with no title, lead, points or
        warnings, for a page that shows them first (``perfstats.headline(result, ...)``).
        Displays itself in Jupyter; ``str()`` is plain text (options: those of
        :meth:`document`)."""
        return self.document(**options).details()

    def _repr_html_(self) -> str:
        return to_html_document(self.document())

    def __str__(self) -> str:
        return self.headline()
