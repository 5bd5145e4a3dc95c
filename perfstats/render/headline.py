"""The first lines of a report page: which runs, then a result's answer, then its warnings."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from perfstats.render.escape import markdown_text


@dataclass(frozen=True)
class Headline:
    """A result's answer for people: ``about`` (the runs: ids, tools, dates, labels), the
    answer lines (the first is the verdict or title) and the warnings. Shows itself in Jupyter
    as HTML and as markdown; ``str()`` is plain text."""

    about: str
    lines: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    def _repr_html_(self) -> str:
        first, *rest = self.lines or ("",)
        items = "".join(f"<li><b>{html.escape(line)}</b></li>" for line in rest)
        items += "".join(f"<li>warning: {html.escape(w)}</li>" for w in self.warnings)
        return (f'<div class="perfstats-headline"><p>{html.escape(self.about)}</p>'
                f'<p style="font-size:1.25em"><b>{html.escape(first)}</b></p>'
                + (f"<ul>{items}</ul>" if items else "") + "</div>")

    def _repr_markdown_(self) -> str:
        first, *rest = self.lines or ("",)
        out = [markdown_text(self.about), "", f"**{markdown_text(first)}**", ""]
        out += [f"- **{markdown_text(line)}**" for line in rest]
        out += [f"- warning: {markdown_text(w)}" for w in self.warnings]
        return "\n".join(out)

    def __str__(self) -> str:
        return "\n".join([self.about, *self.lines, *(f"warning: {w}" for w in self.warnings)])


def describe_run(run: Any) -> str:
    """``run e6803dcc2e3c (k6, started 2026-11-22 02:10 UTC, branch=main)``."""
    started = run.meta.get("started_at")
    when = started.strftime("%Y-%m-%d %H:%M UTC") if hasattr(started, "strftime") else "start ?"
    parts = [run.tool, f"started {when}", *(f"{k}={v}" for k, v in run.labels.items())]
    return f"run {run.run_id} ({', '.join(parts)})"


def headline(result: Any, *runs: Any, roles: Sequence[str] = ()) -> Headline:
    """The answer of ``result`` (anything with ``headline()``: a comparison, a capacity plan,
    a run...) under a line naming ``runs`` with their tool, start and labels.

    Args:
        result: the result; its ``findings()`` (a capacity plan's answer lines) or else its
            ``headline()`` give the answer, its
            ``warnings`` (when it has them) are listed under the answer.
        runs: the runs it is about (:class:`perfstats.Run`), in the order of ``roles``.
        roles: a word per run, e.g. ``("baseline", "candidate")``.

    Example:
        >>> perfstats.headline(perfstats.compare(base, cand), base, cand,
        ...                    roles=("baseline", "candidate"))  # doctest: +SKIP
    """
    found = result.findings() if hasattr(result, "findings") else result.headline()
    lines = (found,) if isinstance(found, str) else tuple(found)
    padded = [*roles, *[""] * len(runs)][:len(runs)]
    named = [f"{role}: {describe_run(run)}" if role else describe_run(run)
             for role, run in zip(padded, runs, strict=True)]
    return Headline(" · ".join(named), lines, tuple(getattr(result, "warnings", ()) or ()))
