"""The team store (DuckLake on PostgreSQL) against the file store (one DuckDB file).

1. Ingest a synthetic k6 NDJSON file of ``--size`` (benchmarks/make_k6_ndjson.py) into each,
   then compare it with a second one of the same size (block bootstrap over raw samples).
2. Growth: store 100, 1,000, 10,000 runs (``--runs``) of 7 endpoint summaries each (the runs of
   benchmarks/history.py), added ``--per-commit`` runs per commit as CI runners would (each
   commit writes its own small Parquet files), and time at each size: ``history()`` over all
   endpoints, ``runs()``, and the ingest of one real run (data/k6/smoke).  The team store is
   timed again after DuckLake merged its small files (``ducklake_merge_adjacent_files``).

Every figure is the median of ``--repeat`` calls in this process (the team store's first call
also pays for loading the extensions and attaching the lake: printed apart as "open").

Usage (needs perfstats[team] and a PostgreSQL server where the user may create databases)::

    python benchmarks/team_store.py --postgres "host=127.0.0.1 port=5432 user=postgres" \\
        [--size 1GB] [--runs 100,1000,10000] [--per-commit 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from history import ENDPOINTS, build

import perfstats
from perfstats.store import RUN_TABLES
from perfstats.store.team import LAKE

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_k6_ndjson",
                                                  ROOT / "benchmarks" / "make_k6_ndjson.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(call: Callable[[], object], repeat: int = 1) -> float:
    """Median wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def new_team_store(postgres: str, root: Path) -> str:
    """A fresh team store: its own database and data directory."""
    name = f"perfstats_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres, autocommit=True) as pg:
        pg.execute(f"CREATE DATABASE {name}")
    conninfo = " ".join(p for p in postgres.split() if not p.startswith("dbname="))
    return f"ducklake:postgres:{conninfo} dbname={name} data_path={root / name}"


def ingest_and_compare(postgres: str, root: Path, size: int, repeat: int) -> None:
    make = _generator()
    files = [root / f"k6-{seed}.json" for seed in (1, 2)]
    for seed, path in enumerate(files, 1):
        t0 = time.perf_counter()
        written, points = make.write(path, size, seed=seed)
        print(f"k6 NDJSON {path.name}: {written / 1e6:.0f} MB, {points:,} points "
              f"(made in {time.perf_counter() - t0:.1f} s)")
    stores = {"file": str(root / "one.duckdb"), "team": new_team_store(postgres, root)}
    for kind, db in stores.items():
        if kind == "team":
            print(f"  team store open (extensions + attach): "
                  f"{timed(lambda db=db: perfstats.runs(db=db)):.2f} s")
        ingest = timed(lambda db=db: perfstats.ingest(files[0], db=db))
        second = perfstats.ingest(files[1], db=db)
        first = perfstats.runs(db=db)["run_id"][0]
        compare = timed(lambda db=db, a=first, b=second.run_id: perfstats.compare(a, b, db=db),
                        repeat)
        summary = timed(lambda db=db, b=second.run_id: perfstats.load(b, db=db).summary(),
                        repeat)
        print(f"  {kind:4} store: ingest {ingest:.2f} s ({size / 1e6 / ingest:.0f} MB/s), "
              f"compare {compare:.2f} s, summary {summary:.3f} s")


def _compact(db: str) -> float:
    store = perfstats.open_store(db)
    with store.connect(write=True) as con:
        t0 = time.perf_counter()
        con.execute(f"CALL ducklake_merge_adjacent_files('{LAKE}')")
        return time.perf_counter() - t0


def growth(postgres: str, root: Path, sizes: list[int], per_commit: int, repeat: int) -> None:
    stores = {"file": str(root / "growth.duckdb"), "team": new_team_store(postgres, root)}
    smoke = ROOT / "data" / "k6" / "smoke"
    print(f"growth: runs of {len(ENDPOINTS)} endpoint summaries, {per_commit} runs per commit")
    for kind, db in stores.items():
        store = perfstats.open_store(db)
        perfstats.runs(db=db)
        stored = 0
        for target in sizes:
            t0 = time.perf_counter()
            while stored < target:
                batch = min(per_commit, target - stored)
                build(store, batch, start=stored)
                stored += batch
            built = time.perf_counter() - t0
            figures = {
                "history": timed(lambda db=db: perfstats.history(db=db), repeat),
                "runs": timed(lambda db=db: perfstats.runs(db=db), repeat),
            }
            # One real run in and out again, so every size is timed on the same store.
            t0 = time.perf_counter()
            run = perfstats.ingest(smoke, db=db)
            figures["ingest"] = time.perf_counter() - t0
            with store.connect(write=True) as con:
                for table in ["runs", *RUN_TABLES]:
                    con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run.run_id])
            line = ", ".join(f"{k} {v:.3f} s" for k, v in figures.items())
            print(f"  {kind:4} {target:>6,} runs (added in {built:.1f} s): {line}")
            if kind == "team":
                merged = _compact(db)
                after = timed(lambda db=db: perfstats.history(db=db), repeat)
                print(f"       after merging files ({merged:.1f} s): history {after:.3f} s")


def main() -> None:
    make = _generator()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True, help="libpq connection string")
    parser.add_argument("--size", type=make.parse_size, default=make.parse_size("1GB"))
    parser.add_argument("--runs", default="100,1000,10000")
    parser.add_argument("--per-commit", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-ingest", action="store_true", help="only the growth figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not args.skip_ingest:
            ingest_and_compare(args.postgres, root, args.size, args.repeat)
        growth(args.postgres, root, [int(n) for n in args.runs.split(",")], args.per_commit,
               args.repeat)


if __name__ == "__main__":
    main()
