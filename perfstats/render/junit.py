"""JUnit XML, the test report format CI systems read (compare's ``--junit``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree import ElementTree

from perfstats.render.escape import xml_tree


@dataclass(frozen=True)
class Case:
    """One test case: ``outcome`` is ``failed``, ``skipped`` or ``passed``; ``kind`` names
    the failure (e.g. ``regression``); ``text`` says what was measured."""

    classname: str
    name: str
    outcome: str
    text: str
    kind: str = ""


def junit_xml(suite: str, cases: Iterable[Case]) -> str:
    """A ``<testsuite>`` document with one ``<testcase>`` per case; every name and text escaped
    to the characters XML 1.0 allows (:func:`perfstats.render.escape.xml_text`)."""
    cases = list(cases)
    root = ElementTree.Element(
        "testsuite", name=suite, tests=str(len(cases)),
        failures=str(sum(c.outcome == "failed" for c in cases)),
        skipped=str(sum(c.outcome == "skipped" for c in cases)))
    for c in cases:
        case = ElementTree.SubElement(root, "testcase", classname=c.classname, name=c.name)
        if c.outcome == "failed":
            ElementTree.SubElement(case, "failure", message=c.text, type=c.kind).text = c.text
        elif c.outcome == "skipped":
            ElementTree.SubElement(case, "skipped", message=c.text)
        else:
            ElementTree.SubElement(case, "system-out").text = c.text
    xml_tree(root)  # names from the data may hold characters XML 1.0 forbids
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
