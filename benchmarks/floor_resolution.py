"""The absolute latency floor of compare, from A/A differences of fast endpoints in real runs.

For every pair of runs of data/ made with one tool against an unchanged endpoint (the endpoints the
candidate server did not change, and the A/A pair k6/aa-rerun), prints the absolute change of the
p50, p95 and mean of the fast endpoints (baseline p50 under 20 ms), the tool's timing resolution,
and the largest change seen: what a floor must cover so that a fast endpoint's sampling and
rounding noise is never a regression on its own.

    python benchmarks/floor_resolution.py
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from perfstats.comparison.gate import compare
from perfstats.config import compare_config

DATA = Path(__file__).resolve().parents[1] / "data"
PAIRS = {
    "k6": ("k6/baseline", "k6/candidate"),
    "k6 1.1 (A/A)": ("k6/aa-rerun/first", "k6/aa-rerun/second"),
    "k6 1.1 harness": ("k6-harness/baseline", "k6-harness/candidate"),
    "Artillery 2": ("artillery/baseline", "artillery/candidate"),
    "Artillery 2 harness": ("artillery-harness/baseline", "artillery-harness/candidate"),
    "Locust": ("locust/baseline", "locust/candidate"),
    "Locust distributed": ("locust-distributed/baseline", "locust-distributed/candidate"),
}
RESOLUTION = {"k6": "exact (float ms)", "Artillery": "whole ms per sample; DDSketch 1 %",
              "Locust": "rounded to 1 ms below 100 ms"}
CHANGED = ("quote", "bookings")
"""Endpoints the candidate servers changed (latency or errors): left out."""


def main() -> None:
    print("| tool | pair | endpoint | metric | baseline ms | change ms |")
    print("|---|---|---|---|---|---|")
    worst: dict[str, float] = {}
    for tool, (base, cand) in PAIRS.items():
        result = compare(DATA / base, DATA / cand, config=compare_config(floor_ms=0.0))
        rows = result.checks.filter(
            (pl.col("kind") == "http") & (pl.col("slice") == "")
            & pl.col("metric").is_in(["p50", "p95", "mean"]) & pl.col("baseline").is_not_null()
            & ~pl.col("endpoint").str.contains("|".join(CHANGED)) & (pl.col("endpoint") != "ALL"))
        fast = rows.filter(pl.col("endpoint").is_in(
            rows.filter((pl.col("metric") == "p50") & (pl.col("baseline") < 20))["endpoint"]))
        for row in fast.iter_rows(named=True):
            change = abs(row["candidate"] - row["baseline"])
            family = tool.split()[0]
            worst[family] = max(worst.get(family, 0.0), change)
            print(f"| {tool} | {base} | {row['endpoint']} | {row['metric']} | "
                  f"{row['baseline']:.2f} | {change:.2f} |")
    print()
    print("| tool | timing resolution | largest A/A change of a fast endpoint (ms) |")
    print("|---|---|---|")
    for family, change in worst.items():
        print(f"| {family} | {RESOLUTION[family]} | {change:.2f} |")


if __name__ == "__main__":
    main()
