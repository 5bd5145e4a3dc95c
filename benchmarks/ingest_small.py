"""Benchmark: CPU and wall milliseconds of one ingest of each of data/'s sample runs.

Each run of data/ (a directory per run, data/README.md; plus the k6 CSV outputs and the
distributed runs given as their shards) is ingested --repeat times into a new in-memory store,
inside this one process, after one warm-up ingest of every run.  Prints, per run, the mean
CPU milliseconds (``time.process_time``: every thread of the process, DuckDB's included) and wall
milliseconds of one ingest, and the totals over the runs.  These are the ingests of the quick
test loop and of every ``perfstats compare PATH PATH`` (each into a throw-away store).
Usage: python benchmarks/ingest_small.py [--repeat 5] [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import perfstats

DATA = Path(__file__).resolve().parent.parent / "data"


def runs() -> dict[str, list[Path]]:
    """Name -> the paths of one run (one path: a run directory or file; several: one run)."""
    found: dict[str, list[Path]] = {}
    for directory in sorted(p for p in DATA.rglob("*") if p.is_dir()):
        if directory.name == "server" or not any(
                f.is_file() and f.name not in ("k6.log", "console.log", "console.log.gz")
                for f in directory.iterdir()):
            continue
        found[str(directory.relative_to(DATA))] = [directory]
    for name in ("k6/baseline", "k6-harness/baseline"):
        found[f"{name} (csv)"] = [DATA / name / "points.csv.gz", DATA / name / "summary.json"
                                  if (DATA / name / "summary.json").exists()
                                  else DATA / name / "handle-summary.json"]
    for tool, parts in (("k6-split", ("segment-1", "segment-2")),
                        ("artillery-split", ("worker-1", "worker-2")),
                        ("locust-split", ("worker-1", "worker-2"))):
        found[f"{tool}/{'+'.join(parts)}"] = [DATA / tool / part for part in parts]
    return found


def ingest_once(paths: list[Path]) -> tuple[float, float]:
    """CPU and wall seconds of one ingest of ``paths`` into a new in-memory store."""
    store = perfstats.open_store(":memory:")
    cpu, wall = time.process_time(), time.perf_counter()
    perfstats.ingest(paths[0] if len(paths) == 1 else paths, db=store)
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="only the runs whose name contains this")
    args = parser.parse_args()
    cases = {name: paths for name, paths in runs().items() if args.only in name}
    for paths in cases.values():
        ingest_once(paths)
    total_cpu = total_wall = 0.0
    print(f"{'run':40s} {'CPU-ms':>8s} {'wall-ms':>8s}   (mean of {args.repeat})")
    for name, paths in cases.items():
        cpu = wall = 0.0
        for _ in range(args.repeat):
            c, w = ingest_once(paths)
            cpu, wall = cpu + c, wall + w
        cpu, wall = cpu / args.repeat * 1000, wall / args.repeat * 1000
        total_cpu, total_wall = total_cpu + cpu, total_wall + wall
        print(f"{name:40s} {cpu:8.1f} {wall:8.1f}")
    print(f"{'total (one ingest of each run)':40s} {total_cpu:8.1f} {total_wall:8.1f}")


if __name__ == "__main__":
    main()
