"""Benchmark: ``perfstats.compare`` and ``perfstats.bottlenecks`` on the bundled runs of data/.

Every pair of data/ (k6, k6-harness, artillery, artillery-harness, locust, locust-distributed:
baseline against candidate) is ingested into one in-memory store, compared and ranked once to warm
up, then ``--repeat`` times each; it prints, per pair, the median CPU milliseconds of the process
(``time.process_time``: DuckDB's threads included) and wall milliseconds per call, and the number
of store queries per compare. These are the calls every CI gate and the quick test loop pay.

Usage::

    python benchmarks/compare_small.py [--repeat 5] [--pairs k6,locust]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import perfstats  # noqa: E402
import perfstats.store as store_module  # noqa: E402

DATA = HERE.parent / "data"
PAIRS = ("k6", "k6-harness", "artillery", "artillery-harness", "locust", "locust-distributed")


def _timed(call: Any, repeat: int) -> tuple[float, float]:
    """Median CPU and wall milliseconds of ``repeat`` calls."""
    cpu, wall = [], []
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        call()
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return statistics.median(cpu), statistics.median(wall)


def _queries(call: Any) -> int:
    """Store queries (``fetch_frame`` calls) one call makes."""
    counted = [0]
    original = store_module.fetch_frame

    def counting(*args: Any, **kwargs: Any) -> Any:
        counted[0] += 1
        return original(*args, **kwargs)

    modules = [m for m in list(sys.modules.values())
               if m is not None and getattr(m, "fetch_frame", None) is original]
    for module in modules:
        module.fetch_frame = counting  # type: ignore[attr-defined]
    try:
        call()
    finally:
        for module in modules:
            module.fetch_frame = original  # type: ignore[attr-defined]
    return counted[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pairs", default=",".join(PAIRS))
    args = parser.parse_args()
    store = perfstats.Store(":memory:")
    print(f"{'pair':<20} {'compare cpu ms':>14} {'wall ms':>8} {'queries':>7} "
          f"{'bottlenecks cpu ms':>18} {'wall ms':>8}")
    totals = [0.0, 0.0]
    for pair in args.pairs.split(","):
        base = perfstats.ingest(DATA / pair / "baseline", db=store)
        cand = perfstats.ingest(DATA / pair / "candidate", db=store)

        def compare(base: perfstats.Run = base, cand: perfstats.Run = cand) -> None:
            perfstats.compare(base, cand)

        def bottlenecks(base: perfstats.Run = base, cand: perfstats.Run = cand) -> None:
            # By run id, as a CI step asks: nothing read for an earlier call is reused.
            perfstats.bottlenecks(cand.run_id, baseline=base.run_id, db=store)

        compare()
        bottlenecks()
        queries = _queries(compare)
        c_cpu, c_wall = _timed(compare, args.repeat)
        b_cpu, b_wall = _timed(bottlenecks, args.repeat)
        totals[0] += c_cpu
        totals[1] += b_cpu
        print(f"{pair:<20} {c_cpu:>14.0f} {c_wall:>8.0f} {queries:>7} {b_cpu:>18.0f} "
              f"{b_wall:>8.0f}", flush=True)
    print(f"{'total':<20} {totals[0]:>14.0f} {'':>8} {'':>7} {totals[1]:>18.0f}")


if __name__ == "__main__":
    main()
