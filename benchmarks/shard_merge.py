"""Benchmark: merging the per-second windows of a distributed Locust run (``--one-run``).

Synthesises the CSV outputs (``locust_stats_history.csv`` with "current" percentiles,
``locust_stats.csv``) of ``--processes`` standalone Locust processes that ran one test for
``--seconds`` with ``--endpoints`` endpoints each, then prints:

- the time to merge the processes' windows into one run's
  (``perfstats.readers.locust._merged_windows_of``: counts add up, the percentiles of each
  (endpoint, second) that several processes wrote are the mixture of theirs), best of
  ``--repeat``, and how many windows were mixed;
- the whole ``perfstats.ingest([process-1, process-2, ...])`` of the files into a memory store.

With ``--frame`` no file is written: a synthetic frame of the processes' windows (p50..p99 of
random log-normal latencies) is mixed directly, and the peak RSS printed (for many processes).

The mixture is :func:`perfstats.readers.shards.mix_summaries`, all windows at once.

Usage::

    python benchmarks/shard_merge.py [--seconds 3600] [--endpoints 10] [--processes 2] [--frame]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

import perfstats  # noqa: E402
from perfstats.readers import locust  # noqa: E402
from perfstats.readers.shards import mix_summaries  # noqa: E402
from perfstats.store import ALL_ENDPOINTS  # noqa: E402

_COLUMNS = ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
_QUANTILES = [0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0]
_START = 1_796_659_320


def _bucket(ms: np.ndarray) -> np.ndarray:
    """Locust's response-time bucket (2 significant digits)."""
    step = np.where(ms < 100, 1, np.where(ms < 1000, 10, np.where(ms < 10000, 100, 1000)))
    return np.round(ms / step) * step


def write_process(directory: Path, seconds: int, endpoints: int, seed: int) -> None:
    """The CSV files one Locust process writes: a history row per endpoint (and Aggregated) per
    second with cumulative counts and the last 10 s's percentiles, and the final stats."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    names = [f"/api/endpoint-{e}" for e in range(endpoints)]
    scale = rng.uniform(20, 120, endpoints)
    per_second = rng.poisson(8, (seconds, endpoints))
    latencies = [[rng.lognormal(np.log(scale[e]), 0.5, per_second[t, e])
                  for e in range(endpoints)] for t in range(seconds)]
    rows = []
    counts = np.cumsum(per_second, axis=0)
    sums = np.zeros(endpoints)
    low, high = np.full(endpoints, np.inf), np.zeros(endpoints)
    for t in range(seconds):
        recent_all = []
        for e in range(endpoints):
            values = latencies[t][e]
            sums[e] += values.sum()
            if values.size:
                low[e], high[e] = min(low[e], values.min()), max(high[e], values.max())
            recent = np.concatenate([latencies[s][e] for s in range(max(0, t - 9), t + 1)])
            recent_all.append(recent)
            rows.append(_row(_START + t, 10, "GET", names[e], recent, counts[t, e],
                             sums[e], low[e], high[e]))
        pooled = np.concatenate(recent_all)
        rows.append(_row(_START + t, 10 * endpoints, "", "Aggregated", pooled,
                         counts[t].sum(), sums.sum(), low.min(), high.max()))
    header = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", *_COLUMNS,
              "Total Request Count", "Total Failure Count", "Total Median Response Time",
              "Total Average Response Time", "Total Min Response Time",
              "Total Max Response Time", "Total Average Content Size"]
    pl.DataFrame(rows, schema=header, orient="row").write_csv(
        directory / "locust_stats_history.csv")
    stats = ["Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
             "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
             + ",".join(_COLUMNS)]
    for method, name, which in [*(("GET", n, [e]) for e, n in enumerate(names)),
                                ("", "Aggregated", range(endpoints))]:
        every = np.concatenate([latencies[t][e] for t in range(seconds) for e in which])
        stats.append(",".join(map(str, [method, name, every.size, 0,
                                        _bucket(np.median(every)),
                                        every.mean(), every.min(), every.max(), 100.0,
                                        every.size / seconds, 0.0,
                                        *_bucket(np.quantile(every, _QUANTILES))])))
    (directory / "locust_stats.csv").write_text("\n".join(stats) + "\n")


def _row(ts: int, users: int, method: str, name: str, recent: np.ndarray, count: int,
         total: float, low: float, high: float) -> list:
    shown = _bucket(np.quantile(recent, _QUANTILES)) if recent.size else np.zeros(11)
    return [ts, users, method, name, 0.0, 0.0, *(int(v) for v in shown), int(count), 0,
            int(shown[0]), total / count if count else 0.0, low if count else 0,
            high if count else 0, 100.0]


def _windows(directory: Path) -> pl.DataFrame:
    run = perfstats.ingest(directory, db=":memory:")
    return run.store.query("SELECT * FROM windows WHERE run_id = ?", [run.run_id])


def frame_mixture(processes: int, endpoints: int, seconds: int) -> None:
    """Mix a synthetic frame of ``endpoints x seconds`` windows written by every process."""
    rng = np.random.default_rng(0)
    n = processes * endpoints * seconds
    knots = np.sort(rng.lognormal(3, 1, (n, 4)), axis=1)
    rows = pl.DataFrame({
        "window": np.repeat(np.arange(endpoints * seconds), processes),
        "count": rng.integers(1, 50, n), "failures": 0, "rps": None, "mean": knots.mean(axis=1),
        "min": None, "p50": knots[:, 0], "p90": knots[:, 1], "p95": knots[:, 2],
        "p99": knots[:, 3], "max": None})
    start = time.perf_counter()
    mix_summaries(rows, "window")
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{processes} processes x {endpoints} endpoints x {seconds} s: "
          f"{endpoints * seconds} windows of {processes} shards mixed in {elapsed:.2f} s "
          f"(peak RSS {peak:.0f} MB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--frame", action="store_true", help="mix a synthetic frame, no files")
    args = parser.parse_args(argv)
    if args.frame:
        frame_mixture(args.processes, args.endpoints, args.seconds)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp, f"process-{p}") for p in range(1, args.processes + 1)]
        for seed, directory in enumerate(dirs):
            write_process(directory, args.seconds, args.endpoints, seed)
        frames = [_windows(d) for d in dirs]
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            merged = locust._merged_windows_of(frames)
            times.append(time.perf_counter() - start)
        assert merged is not None
        mixed = merged.filter(pl.col("percentiles").str.starts_with("approximate")).height
        start = time.perf_counter()
        run = perfstats.ingest(dirs, db=":memory:")
        ingest_s = time.perf_counter() - start
    print(f"{args.processes} Locust processes x {args.endpoints} endpoints x {args.seconds} s: "
          f"{merged.height} merged windows, {mixed} of them mixtures")
    print(f"merge of the windows: {min(times):.2f} s (best of {args.repeat})")
    print(f"perfstats.ingest of the {args.processes} processes as one run: {ingest_s:.2f} s "
          f"({run.windows(ALL_ENDPOINTS).height} seconds of ALL)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
