"""How big the run charts get on a large k6 run: the frames are aggregated in DuckDB first.

Writes a synthetic k6 NDJSON file (benchmarks/make_k6_ndjson.py), ingests it into a file store,
then times ``Run.timeline()`` and ``Run.quantiles()`` and prints the rows and JSON size of each
chart's spec next to the number of samples.

Usage::

    python benchmarks/report.py [--size 300MB] [--workdir benchmarks/out]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import perfstats
from perfstats.render import charts

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="300MB")
    parser.add_argument("--workdir", type=Path, default=HERE / "out")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    points = args.workdir / f"report-k6-{args.size}.json"
    store = args.workdir / f"report-{args.size}.duckdb"
    if not points.exists():
        subprocess.run([sys.executable, str(HERE / "make_k6_ndjson.py"), str(points),
                        "--size", args.size], check=True)
    started = time.perf_counter()
    run = perfstats.ingest(points, db=store)
    print(f"ingest {points.name}: {time.perf_counter() - started:.1f} s")
    samples = run.summary().filter(endpoint="ALL")["count"][0]
    windows = run.windows().height
    print(f"run {run.run_id}: {samples:,} requests over {run.meta['duration_s']:.0f} s, "
          f"{windows:,} stored 1 s windows")

    for name, frame_of, chart_of in (
        ("timeline", run.timeline, charts.latency_over_time),
        ("timeline", run.timeline, charts.throughput_over_time),
        ("quantiles", run.quantiles, charts.latency_distribution),
    ):
        started = time.perf_counter()
        frame = frame_of()
        took = time.perf_counter() - started
        spec = json.dumps(chart_of(frame).to_dict())
        print(f"{chart_of.__name__:>22}: run.{name}() {took:.2f} s -> {frame.height:,} rows, "
              f"spec {len(spec) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
