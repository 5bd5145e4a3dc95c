"""Escaping of text from the data (endpoint names, tags, labels, file names) for each output.

Every output perfstats writes goes through one of these functions, so that a name in a result
file cannot break the file a CI system reads or take over a terminal:

- :func:`xml_text` / :func:`xml_tree`: JUnit XML, characters XML 1.0 allows only;
- :func:`markdown_text` / :func:`markdown_cell`: markdown (GitHub step summaries), HTML escaped,
  no line breaks inside a table row, pipes escaped;
- :func:`terminal_text` / :func:`terminal_cell`: the terminal, control and escape characters shown
  as ``\\xNN`` and rich markup taken literally.

CSV and JSON writers quote by themselves (the CSV writer flattens nested values to JSON text).
A replaced character is shown visibly (``\\x1b``), never dropped, so two names that differ only
in such a character stay distinct.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

    from rich.text import Text

# XML 1.0 allows #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# C0 controls but tab and newline, DEL and the C1 controls (which include CSI, \x9b).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_OR_NEWLINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_BREAK = re.compile("\r\n|[\r\n\u2028\u2029]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 forbids (most C0 controls, lone surrogates,
    U+FFFE/U+FFFF) shown as ``\\xNN``; the XML writer escapes ``<``, ``&`` and quotes."""
    return _NOT_XML.sub(_visible, text)


def xml_tree(root: Element) -> Element:
    """Apply :func:`xml_text` to every tag, attribute and text of an ElementTree, in place."""
    for element in root.iter():
        element.attrib = {xml_text(k): xml_text(v) for k, v in element.attrib.items()}
        if element.text:
            element.text = xml_text(element.text)
        if element.tail:
            element.tail = xml_text(element.tail)
    return root


def _html(text: str) -> str:
    # ``<`` and ``&`` are what start a tag or an entity; ``>`` alone is plain text mid-line.
    return text.replace("&", "&amp;").replace("<", "&lt;")


def markdown_text(text: str) -> str:
    """``text`` for a line of markdown: HTML special characters as entities (no raw tags such as
    ``<script>``), line breaks as spaces, control characters as ``\\xNN``."""
    one_line = _LINE_BREAK.sub(" ", text)
    return _html(_CONTROL.sub(_visible, one_line))


def markdown_cell(text: str) -> str:
    """``text`` for a cell of a markdown table: :func:`markdown_text` with pipes escaped and
    line breaks as ``<br>`` (the row stays one line)."""
    escaped = _html(_CONTROL.sub(_visible, text.replace("\r\n", "\n")))
    return _LINE_BREAK.sub("<br>", escaped).replace("\\", "\\\\").replace("|", "\\|")


def terminal_text(text: str, *, newlines: bool = True) -> str:
    """``text`` for the terminal: control characters (ESC, CSI, BEL, backspace, carriage
    return...) shown as ``\\xNN`` so no escape sequence from the data reaches the terminal;
    newlines and tabs kept unless ``newlines`` is False."""
    pattern = _CONTROL if newlines else _CONTROL_OR_NEWLINE
    return pattern.sub(_visible, text)


def terminal_cell(text: str) -> Text:
    """``text`` as a rich ``Text`` for a table cell or title: one line, control characters
    shown, rich markup (``[bold]``) and emoji codes taken literally."""
    from rich.text import Text

    return Text(terminal_text(text, newlines=False))
