"""Paths and helpers shared by the test modules (fixtures are in conftest.py)."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

import perfstats
from perfstats.store import RUN_TABLES, Store

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SHARED = ROOT.parent / "shared"
HARNESS = DATA / "k6-harness"
"""The k6 1.1 harness runs (four scenarios, custom metrics, checks, thresholds)."""


class SampleRuns:
    """The runs of data/, each ingested on its first use into one in-memory store kept for the
    session (per xdist worker).  Tests only read them: a test that changes a store, or reads what
    a store holds as a whole (runs, history), ingests into a store of its own."""

    def __init__(self) -> None:
        self.store = perfstats.open_store(":memory:")
        self._runs: dict[str, perfstats.Run] = {}

    def __getitem__(self, name: str | tuple[str, ...]) -> perfstats.Run:
        """The run of ``data/<name>`` (a run's directory or one file), or of several such paths
        ingested together as one run (the shards of a distributed run)."""
        if name not in self._runs:
            paths = DATA / name if isinstance(name, str) else [DATA / n for n in name]
            self._runs[name] = perfstats.ingest(paths, db=self.store)
        return self._runs[name]

    def of(self, paths: Path | list[Path]) -> perfstats.Run:
        """The run of a path under data/, or of several paths ingested together as one run."""
        if isinstance(paths, Path):
            return self[paths.relative_to(DATA).as_posix()]
        return self[tuple(p.relative_to(DATA).as_posix() for p in paths)]


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
