"""The parts of perfstats import each other in one direction only: no cycle between parts.

A part is a sub-package (``readers``, ``stats``, ...) or a top-level module (``run``, ``slo``, ...).
Imports for type checkers alone (under ``if TYPE_CHECKING:``) do not count.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter

from helpers import ROOT

PACKAGE = ROOT / "perfstats"


def _part(module: str) -> str:
    names = module.split(".")
    return names[1] if len(names) > 1 else "__init__"


def _runtime_imports(tree: ast.Module) -> list[str]:
    skipped = {id(node) for stmt in ast.walk(tree) if isinstance(stmt, ast.If)
               and "TYPE_CHECKING" in ast.unparse(stmt.test) for node in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.ImportFrom | ast.Import):
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "perfstats":
            found.extend(f"perfstats.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("perfstats."):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.startswith("perfstats."))
    return found


def part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        source = _part(module.removesuffix(".__init__"))
        targets = {_part(name) for name in _runtime_imports(ast.parse(path.read_text()))}
        graph.setdefault(source, set()).update(targets - {source})
    return graph


def test_no_cycle_between_the_parts() -> None:
    graph = part_graph()
    graph.pop("__init__")  # the public namespace loads every part, on first use
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"parts import each other in a cycle: {exc.args[1]}") from exc
    assert order.index("errors") < order.index("store") < order.index("readers") \
        < order.index("run") < order.index("comparison") < order.index("cli")


def test_the_cycle_check_sees_a_cycle() -> None:
    tree = ast.parse("from perfstats.render.tables import jsonable\n"
                     "if TYPE_CHECKING:\n    from perfstats.run import Run\n")
    assert _runtime_imports(tree) == ["perfstats.render.tables"]
    try:
        list(TopologicalSorter({"stats": {"render"}, "render": {"stats"}}).static_order())
    except CycleError:
        return
    raise AssertionError("graphlib did not report a cycle")
