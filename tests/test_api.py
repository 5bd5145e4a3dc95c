"""The public API: perfstats.__all__ against what the package really exports, and docs/api.md
against both (every name there with its real signature)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import types

from helpers import ROOT

import perfstats

API_PAGE = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
HEADINGS = re.findall(r"^### `([^`]+)`$", API_PAGE, flags=re.MULTILINE)


def _plain_signature(function: object) -> str:
    """``name(a, b, *, c=1)``: the parameters and defaults without annotations."""
    parts, starred = [], False
    for p in inspect.signature(function).parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            parts.append(f"*{p.name}")
            starred = True
        elif p.kind is p.VAR_KEYWORD:
            parts.append(f"**{p.name}")
        else:
            if p.kind is p.KEYWORD_ONLY and not starred:
                parts.append("*")
                starred = True
            parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return f"{function.__name__}({', '.join(parts)})"


def _is_function(value: object) -> bool:
    return callable(value) and not isinstance(value, type | types.ModuleType)


def test_all_is_sorted_unique_and_every_name_resolves():
    names = perfstats.__all__
    assert names == sorted(names) and len(set(names)) == len(names)
    for name in names:
        assert getattr(perfstats, name) is not None, name


def test_every_public_attribute_is_in_all():
    for name in perfstats.__all__:  # load every lazy name, then look at the namespace
        getattr(perfstats, name)
    public = {name for name, value in vars(perfstats).items()
              if not name.startswith("_") and name != "annotations"  # from __future__
              and not (isinstance(value, types.ModuleType) and name != "charts")}  # subpackages
    assert public == set(perfstats.__all__) - {"__version__"}
    assert set(dir(perfstats)) >= set(perfstats.__all__)


def test_lazy_table_and_type_checking_imports_agree():
    """Every lazily loaded name is in __all__, comes from the module _LAZY names, and is
    imported from there in the TYPE_CHECKING block (what type checkers and IDEs read)."""
    lazy = perfstats._LAZY
    assert set(lazy) <= set(perfstats.__all__)
    for name, module in lazy.items():
        loaded = importlib.import_module(module)
        assert getattr(perfstats, name) is (loaded if name == "charts" else getattr(loaded, name))
    tree = ast.parse((ROOT / "perfstats" / "__init__.py").read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If))
    typed = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            typed[alias.name] = f"{node.module}.{alias.name}" if alias.name == "charts" \
                else node.module
    assert typed == lazy


def test_every_name_is_documented_with_its_signature():
    documented = {h.split("(")[0] for h in HEADINGS}
    assert documented == set(perfstats.__all__), (
        f"missing from docs/api.md: {sorted(set(perfstats.__all__) - documented)}; "
        f"not in __all__: {sorted(documented - set(perfstats.__all__))}")
    for name in perfstats.__all__:
        value = getattr(perfstats, name)
        if _is_function(value):
            assert _plain_signature(value) in HEADINGS, f"docs/api.md: {_plain_signature(value)}"
            assert inspect.getdoc(value), f"{name} has no docstring"
        elif isinstance(value, type):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_db_is_keyword_only_everywhere():
    for name in perfstats.__all__:
        value = getattr(perfstats, name)
        if _is_function(value) and name != "open_store":  # its one argument is the store
            db = inspect.signature(value).parameters.get("db")
            assert db is None or db.kind is db.KEYWORD_ONLY, name


def test_the_readme_links_the_api_page():
    assert "(docs/api.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
