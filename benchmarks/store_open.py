"""Benchmark: CPU milliseconds of opening stores, in this process (issue 11: the quick test loop).

Prints the mean CPU time (``time.process_time``: every thread of the process, DuckDB's included)
over --repeat repetitions, after one warm-up, of: a new in-memory store; ``perfstats.load`` of a
k6 summary (a new in-memory store plus an ingest); one read (``runs()``) of a file store; one
opening of a file store for writing (nothing written); one read of a store file that does not
exist (answered from an empty schema).
Usage: python benchmarks/store_open.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import perfstats

DATA = Path(__file__).resolve().parent.parent / "data"


def cpu_ms(action: Callable[[], object], repeat: int) -> float:
    """Mean CPU milliseconds of ``action`` over ``repeat`` calls (after one warm-up call)."""
    action()
    started = time.process_time()
    for _ in range(repeat):
        action()
    return (time.process_time() - started) / repeat * 1000


def _open_to_write(path: Path) -> None:
    with perfstats.open_store(path).connect(write=True):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stored = Path(tmp) / "s.duckdb"
        perfstats.ingest(DATA / "k6" / "smoke" / "summary.json", db=stored)
        cases: dict[str, Callable[[], object]] = {
            "open_store(':memory:')": lambda: perfstats.open_store(":memory:"),
            "load(k6 summary.json)": lambda: perfstats.load(DATA / "k6" / "baseline" /
                                                            "summary.json"),
            "read of a file store": lambda: perfstats.open_store(stored).runs(),
            "open of a file to write": lambda: _open_to_write(stored),
            "read of a missing file": lambda: perfstats.open_store(Path(tmp) / "no.duckdb").runs(),
        }
        for name, action in cases.items():
            print(f"{name:24s} {cpu_ms(action, args.repeat):6.2f} CPU-ms "
                  f"(mean of {args.repeat})")


if __name__ == "__main__":
    main()
