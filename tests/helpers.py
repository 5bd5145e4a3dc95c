"""Paths and helpers shared by the test modules (fixtures are in conftest.py)."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

from perfstats.store import RUN_TABLES, Store

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SHARED = ROOT.parent / "shared"
HARNESS = DATA / "k6-harness"
"""The k6 1.1 harness runs (four scenarios, custom metrics, checks, thresholds)."""


def table_counts(store: Store) -> dict[str, int]:
    """Rows of ``runs`` and of every per-run table: equal before and after = store unchanged."""
    with store.connect() as con:  # one connection: a file store opens the file per query
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                for t in ["runs", *RUN_TABLES]}


@cache
def k6_generator() -> ModuleType:
    """``benchmarks/make_k6_ndjson.py``, the synthetic k6 NDJSON writer, as a module."""
    spec = importlib.util.spec_from_file_location("make_k6_ndjson",
                                                  ROOT / "benchmarks" / "make_k6_ndjson.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
