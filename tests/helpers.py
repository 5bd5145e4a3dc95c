"""Paths and helpers shared by the test modules (fixtures are in conftest.py)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import perfstats
from perfstats.config import compare_config
from perfstats.store import RUN_TABLES, Store

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SHARED = ROOT.parent / "shared"
HARNESS = DATA / "k6-harness"
"""The k6 1.1 harness runs (four scenarios, custom metrics, checks, thresholds)."""


Name = str | tuple[str, ...]
"""A run of data/: ``"k6/baseline"`` (a run's directory or one file under data/), or several
such paths ingested together as one run (the shards of a distributed run)."""


class StoredRuns:
    """data/'s runs, each ingested once per session into a template store file of its own, in a
    folder the xdist workers share (a worker that finds a template made uses it); a store of
    several of them is put together from those files once.  For tests that need runs in a
    store but do not test ingesting them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._ids: dict[Name, str] = {}

    def _made(self, key: str, make: Callable[[Path], None]) -> Path:
        """The template file ``key``: made by ``make`` into a file of this process, then moved
        into place in one step, so another worker sees it whole or not at all."""
        path = self.folder / f"{key}.duckdb"
        if not path.exists():
            part = self.folder / f"{key}.{os.getpid()}.part"
            make(part)
            part.replace(path)
        return path

    def template(self, name: Name) -> tuple[Path, str]:
        """The template store file holding the run ``name`` alone, and its run id."""
        paths = DATA / name if isinstance(name, str) else [DATA / n for n in name]

        def ingest(part: Path) -> None:
            self._ids[name] = perfstats.ingest(paths, db=part).run_id

        path = self._made(_key(name), ingest)
        if name not in self._ids:  # made by another worker
            self._ids[name] = str(perfstats.open_store(path).runs()["run_id"][0])
        return path, self._ids[name]

    def copy_into(self, store: Store, name: Name, labels: dict[str, str] | None = None) -> str:
        """Copy the run ``name`` into ``store`` (rows as ingested, with ``labels`` as ingest's
        ``labels`` would give them; nothing when the store has it already, as two names may
        be one run: a directory and its one file); returns its run id."""
        path, run_id = self.template(name)
        with store.connect(write=True) as con:
            if not con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall():
                con.execute(f"ATTACH '{path}' AS stored_template (READ_ONLY)")
                try:
                    for table in ["runs", *RUN_TABLES]:
                        con.execute(f"INSERT INTO {table} SELECT * FROM stored_template.{table}")
                finally:
                    con.execute("DETACH stored_template")
            _label(con, run_id, labels)
        return run_id

    def in_memory(self, *names: Name, labels: dict[Name, dict[str, str]] | None = None
                  ) -> tuple[Store, list[perfstats.Run]]:
        """A new in-memory store holding the runs ``names`` (copied, not ingested again), each
        with its ``labels[name]``."""
        store = perfstats.open_store(":memory:")
        return store, [perfstats.load(self.copy_into(store, name, (labels or {}).get(name)),
                                      db=store) for name in names]

    def copy(self, to: Path, *names: Name, labels: dict[Name, dict[str, str]] | None = None
             ) -> list[str]:
        """Write a store file ``to`` holding the runs ``names`` (a copy of a template file: a
        few milliseconds, and the test's own to change), each with its ``labels[name]``;
        returns their run ids in that order."""
        unique = tuple(dict.fromkeys(names))

        def put_together(part: Path) -> None:
            for name in unique:
                self.copy_into(perfstats.open_store(part), name)

        template = (self.template(unique[0])[0] if len(unique) == 1
                    else self._made(_key(unique), put_together))
        shutil.copyfile(template, to)  # a file store is closed after each operation: no WAL
        if labels:
            with perfstats.open_store(to).connect(write=True) as con:
                for name, these in labels.items():
                    _label(con, self.template(name)[1], these)
        return [self.template(name)[1] for name in names]


def templates_key() -> str:
    """What the template files depend on: perfstats' code, this file (which makes them), data/,
    and the versions of Python and of the libraries an ingest runs on.  Templates kept between
    sessions under another key are stale: a change to any of these makes them again."""
    import duckdb
    import numpy
    import polars
    import pyarrow

    digest = hashlib.sha1()
    code = [*(ROOT / "perfstats").rglob("*.py"), ROOT / "tests" / "helpers.py"]
    for path in sorted([*code, *DATA.rglob("*")]):
        if path.is_file():
            digest.update(path.relative_to(ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    for version in (sys.version, duckdb.__version__, polars.__version__, pyarrow.__version__,
                    numpy.__version__):
        digest.update(version.encode())
    return digest.hexdigest()[:16]


def _key(name: object) -> str:
    return hashlib.sha1(repr(name).encode()).hexdigest()[:16]


def _label(con: Any, run_id: str, labels: dict[str, str] | None) -> None:
    """Give a stored run ``labels``, as ingest's ``labels`` would have."""
    if labels:
        con.execute("UPDATE runs SET labels = MAP(?, ?) WHERE run_id = ?",
                    [list(labels), list(labels.values()), run_id])


class SampleRuns:
    """The runs of data/, each put on its first use into one in-memory store kept for the session
    (per xdist worker), from its template in :class:`StoredRuns`.  Tests only read them: a test
    that changes a store, or reads what a store holds as a whole (runs, history), gets a store of
    its own (the ``stored`` fixture)."""

    def __init__(self, stored: StoredRuns) -> None:
        self.store = perfstats.open_store(":memory:")
        self._stored = stored
        self._runs: dict[Name, perfstats.Run] = {}
        self._compared: dict[tuple[str, str], perfstats.Comparison] = {}

    def __getitem__(self, name: Name) -> perfstats.Run:
        """The run ``name`` (see :data:`Name`)."""
        if name not in self._runs:
            self._runs[name] = perfstats.load(self._stored.copy_into(self.store, name),
                                              db=self.store)
        return self._runs[name]

    def compared(self, baseline: Name | Path, candidate: Name | Path) -> perfstats.Comparison:
        """``compare()`` of two of these runs (names, or paths under data/) with the default
        settings (``compare_config()``), computed once per session for the tests that only read
        it."""
        baseline, candidate = (_named(n) for n in (baseline, candidate))
        if (baseline, candidate) not in self._compared:
            self._compared[baseline, candidate] = perfstats.compare(
                self[baseline], self[candidate], config=compare_config())
        return self._compared[baseline, candidate]

    def name_of(self, run: object) -> Name | None:
        """The name of ``run`` when it is one of these runs (the very object), else None."""
        return next((name for name, known in self._runs.items() if known is run), None)

    def of(self, paths: Path | list[Path]) -> perfstats.Run:
        """The run of a path under data/, or of several paths ingested together as one run."""
        return self[_named(paths)]


def _named(run: Name | Path | list[Path]) -> Name:
    """The :data:`Name` of a run given by its path(s) under data/ (a name stays itself)."""
    if isinstance(run, Path):
        return run.relative_to(DATA).as_posix()
    if isinstance(run, list):
        return tuple(p.relative_to(DATA).as_posix() for p in run)
    return run


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
