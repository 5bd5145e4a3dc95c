"""Time a history query over all endpoints of a store holding 1,000 synthetic runs.

The runs (7 endpoints each, ``ALL`` included) are inserted in bulk by SQL: one INSERT for the runs
and one for their summaries, with lognormal run-to-run noise (3 % on p95) and level shifts at known
runs. The script prints the build time, then the median and best of several ``history()`` calls
over all endpoints (target: under 2 s), and the change points found against the injected ones.

Usage::

    python benchmarks/history.py [--runs 1000] [--repeat 5] [--db PATH]
"""

from __future__ import annotations

import argparse
import statistics
import time

import perfstats
from perfstats.trends.series import history

ENDPOINTS = ["ALL", "POST /api/auth/login", "GET /api/deals", "GET /api/deals/{id}",
             "POST /api/quote", "POST /api/bookings", "GET /health"]
# (endpoint, first run of the new level, factor)
SHIFTS = [("POST /api/quote", 300, 1.30), ("GET /api/deals", 700, 0.85), ("ALL", 500, 1.10)]


def build(store: perfstats.Store, runs: int, seed: float = 0.42, *, start: int = 0) -> None:
    """Insert ``runs`` synthetic runs and their per-endpoint summaries (two SQL statements);
    ``start`` is the number of the first (to add runs to those of an earlier call)."""
    shift = " * ".join(f"CASE WHEN e.endpoint = '{e}' AND i >= {at} THEN {f} ELSE 1 END"
                       for e, at, f in SHIFTS)
    endpoints = ", ".join(f"'{e}'" for e in ENDPOINTS)
    with store.connect(write=True) as con:
        con.execute(f"SELECT setseed({(seed + start * 1e-6) % 1})")
        con.execute(f"""
            INSERT INTO runs (run_id, tool, format, tool_version, grain, source_files,
                              content_hash, started_at, ended_at, duration_s, load_model,
                              max_users, labels, ingested_at)
            SELECT printf('run%05d', i), 'k6', 'k6-json', '0.45.1', 'summary', ['synthetic'],
                   sha256(i::VARCHAR), TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_hours(6 * i),
                   TIMESTAMPTZ '2026-01-01 00:01:15+00' + to_hours(6 * i), 75.0, 'closed', 20,
                   MAP {{'branch': 'main', 'build': i::VARCHAR}}, now()
            FROM range({start}, {start + runs}) t(i)""")
        con.execute(f"""
            INSERT INTO summaries (run_id, endpoint, tool_name, method, count, failures, min,
                                   mean, p50, p90, p95, p99, max, rps, percentiles)
            SELECT printf('run%05d', i), e.endpoint, e.endpoint, NULL, 1500, 3,
                   base * 0.3, base * 0.8 * level, base * 0.7 * level, base * 0.9 * level,
                   base * level * exp(0.03 * z), base * 1.4 * level * exp(0.05 * z),
                   base * 2 * level, 20.0, 'tool-summary'
            FROM (SELECT i, e.endpoint, 40 + 10 * e.k AS base, {shift} AS level,
                         sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS z
                  FROM range({start}, {start + runs}) t(i)
                  CROSS JOIN (SELECT unnest([{endpoints}]) AS endpoint,
                                     generate_subscripts([{endpoints}], 1) AS k) e) AS e""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", default=":memory:", help="store path (default: in memory)")
    args = parser.parse_args()
    store = perfstats.open_store(args.db)
    t0 = time.perf_counter()
    build(store, args.runs)
    print(f"built {args.runs} runs x {len(ENDPOINTS)} endpoints in "
          f"{time.perf_counter() - t0:.2f} s")
    timings = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = history(db=store)
        timings.append(time.perf_counter() - t0)
    print(f"history() over all endpoints ({result.series.height} values): median "
          f"{statistics.median(timings):.3f} s, best {min(timings):.3f} s (target < 2 s)")
    print("injected:", ", ".join(f"{e} at run {at} x{f}" for e, at, f in SHIFTS))
    print(result.change_points.select("endpoint", "index", "change_pct", "p_value"))


if __name__ == "__main__":
    main()
