"""Benchmark: ``perfstats.compare`` on two synthetic raw-sample runs of 5 M requests each.

Two k6-like runs (six endpoints, lognormal latency, 1 % errors on one endpoint; the candidate's
``POST /api/quote`` is 20 % slower) are written straight into the ``samples`` table of a file store
with DuckDB's own random generator. A fresh subprocess then opens the store and times
``perfstats.compare(baseline, candidate)``: the per-window histograms of both runs (one DuckDB query
over the 10 M samples), the bootstrap of every check and the rest. It prints the compare time, the
subprocess's peak RSS (``ru_maxrss``) and its RSS before the compare (imports and an open store).

Target (issue 3): under 10 s on a 2-core machine.

Usage::

    python benchmarks/compare.py [--samples 5000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import perfstats  # noqa: E402

ENDPOINTS = [  # name, share of requests, median ms, sigma, error rate
    ("GET /api/deals", 0.30, 15.0, 0.3, 0.0),
    ("GET /api/deals/{id}", 0.30, 8.0, 0.3, 0.0),
    ("POST /api/auth/login", 0.10, 60.0, 0.35, 0.0),
    ("POST /api/quote", 0.12, 40.0, 0.8, 0.0),
    ("POST /api/bookings", 0.12, 30.0, 0.35, 0.01),
    ("GET /health", 0.06, 1.0, 0.2, 0.0),
]

_CHILD = """
import json, resource, sys, time
import perfstats
store = perfstats.Store(sys.argv[1])
base, cand = perfstats.load(sys.argv[2], db=store), perfstats.load(sys.argv[3], db=store)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
result = perfstats.compare(base, cand, config=perfstats.config.compare_config())
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
flagged = result.checks.filter(result.checks["status"] == "regression")
print(json.dumps({"seconds": seconds, "peak_rss_kb": peak, "rss_before_kb": before,
                  "verdict": result.verdict, "checks": result.checks.height,
                  "regressions": sorted(set(flagged["endpoint"]))}))
"""


def write_run(store: perfstats.Store, run_id: str, samples: int, *, duration_s: float,
              slowdown: float, seed: float) -> None:
    """Insert one synthetic run of ``samples`` requests (grain ``samples``) with SQL."""
    cases, bounds = [], 0.0
    for name, share, median, sigma, errors in ENDPOINTS:
        bounds += share
        factor = slowdown if name == "POST /api/quote" else 1.0
        cases.append((bounds, name, median * factor, sigma, errors))
    endpoint = " ".join(f"WHEN u < {b!r} THEN '{n}'" for b, n, *_ in cases)
    median = " ".join(f"WHEN u < {b!r} THEN {m!r}" for b, _, m, *_ in cases)
    sigma = " ".join(f"WHEN u < {b!r} THEN {s!r}" for b, _, _, s, _ in cases)
    error = " ".join(f"WHEN u < {b!r} THEN {e!r}" for b, *_, e in cases)
    with store.connect(write=True) as con:
        con.execute("SELECT setseed(?)", [seed])
        con.execute(
            "INSERT INTO runs (run_id, tool, format, grain, source_files, content_hash, "
            "started_at, ended_at, duration_s, load_model, max_users, labels, ingested_at) "
            "VALUES (?, 'k6', 'k6-json', 'samples', ['synthetic'], ?, "
            "TIMESTAMPTZ '2026-01-01 00:00:00+00', "
            "TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(?), ?, 'closed', 100, "
            "MAP {}, now())", [run_id, run_id, duration_s, duration_s])
        names = ", ".join(f"('{n}')" for n, *_ in ENDPOINTS)
        con.execute(f"""
            INSERT INTO tag_sets (run_id, tag_set, endpoint, expected_response)
            SELECT ?, hash(endpoint, ok), endpoint, ok
            FROM (VALUES {names}) e(endpoint), (VALUES (true), (false)) o(ok)
            """, [run_id])
        con.execute(f"""
            INSERT INTO points (run_id, metric, ts, value, tag_set)
            SELECT ?, 'http_req_duration',
                   TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_microseconds(
                       CAST(i * {duration_s * 1e6 / samples!r} AS BIGINT)),
                   (CASE {median} END) * exp((CASE {sigma} END)
                       * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())),
                   hash(CASE {endpoint} END, random() >= (CASE {error} END))
            FROM (SELECT i, random() AS u FROM range(?) t(i))
            """, [run_id, samples])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5_000_000, help="requests per run")
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="timed compares (fresh processes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.duckdb")
        store = perfstats.Store(path)
        started = time.perf_counter()
        write_run(store, "bench-baseline", args.samples, duration_s=args.duration, slowdown=1.0,
                  seed=0.1)
        write_run(store, "bench-candidate", args.samples, duration_s=args.duration,
                  slowdown=1.2, seed=0.2)
        print(f"wrote 2 runs x {args.samples:,} samples in {time.perf_counter() - started:.1f} s")
        results = []
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, "-c", _CHILD, path, "bench-baseline",
                                  "bench-candidate"], check=True, capture_output=True, text=True,
                                 cwd=tmp)
            # DuckDB may draw a progress bar on stdout before the result line.
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        best = min(results, key=lambda r: r["seconds"])
        times = ", ".join(f"{r['seconds']:.2f}" for r in results)
        print(f"compare: {best['seconds']:.2f} s (best of {args.repeat}; all: {times}), "
              "target < 10 s")
        print(f"peak RSS of the compare process: {best['peak_rss_kb'] / 1024:.0f} MB "
              f"({best['rss_before_kb'] / 1024:.0f} MB before the compare: imports, open store)")
        print(f"verdict {best['verdict']}, {best['checks']} checks, regressions on: "
              f"{', '.join(best['regressions']) or 'none'}")


if __name__ == "__main__":
    main()
