"""Over-time patterns (rising latency, spikes, rising errors, capacity limit) on seeded synthetic
windows: each found with its evidence, none on steady runs. On data/'s runs:
tests/test_bottlenecks.py."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from perfstats.diagnosis.patterns import find_patterns

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def synthetic_windows(series: dict[str, dict[str, np.ndarray]], users: np.ndarray) -> pl.DataFrame:
    """1 s windows: per endpoint ``count``, ``mean`` and ``failures`` arrays; ALL rows summed."""
    frames = []
    for endpoint, cols in series.items():
        n = len(cols["count"])
        frames.append(pl.DataFrame({
            "endpoint": endpoint, "start": [T0 + timedelta(seconds=i) for i in range(n)],
            "length_s": 1.0, "count": cols["count"].astype(np.int64),
            "failures": cols.get("failures", np.zeros(n)).astype(np.int64),
            "mean": cols["mean"].astype(np.float64)}))
    per = pl.concat(frames).with_columns(total_ms=pl.col("mean") * pl.col("count"))
    whole = per.group_by("start").agg(
        pl.col("length_s").first(), pl.col("count").sum(), pl.col("failures").sum(),
        pl.col("total_ms").sum()).sort("start").with_columns(
        endpoint=pl.lit("ALL"), mean=pl.col("total_ms") / pl.col("count"),
        users=pl.Series(users, dtype=pl.Float64))
    return pl.concat([per.with_columns(users=pl.lit(None, pl.Float64)), whole],
                     how="diagonal_relaxed")


def steady_series(rng: np.random.Generator, n: int = 120) -> dict[str, np.ndarray]:
    return {"count": np.full(n, 40), "mean": 50.0 * np.exp(rng.normal(0, 0.1, n)),
            "failures": rng.binomial(40, 0.01, n)}


def test_patterns_found_with_their_evidence() -> None:
    rng = np.random.default_rng(11)
    n = 120
    t = np.arange(n)
    leak = steady_series(rng)
    leak["mean"] = leak["mean"] * (1 + t / n)  # doubles over the run
    spiky = steady_series(rng)
    spiky["mean"][[40, 80]] *= 6
    errors = steady_series(rng)
    errors["failures"] = rng.binomial(40, 0.002 + 0.1 * t / n)
    windows = synthetic_windows({"GET /leak": leak, "GET /spiky": spiky, "GET /err": errors,
                                 "GET /flat": steady_series(rng)}, users=np.full(n, 20.0))
    found = find_patterns(windows)
    pairs = set(zip(found["endpoint"], found["pattern"], strict=True))
    assert ("GET /leak", "rising latency") in pairs
    assert ("GET /spiky", "spikes") in pairs
    assert ("GET /err", "rising errors") in pairs
    assert not any(e == "GET /flat" for e, _ in pairs)
    assert not any(p == "capacity limit" for _, p in pairs)
    leak_row = found.filter((pl.col("endpoint") == "GET /leak")
                            & (pl.col("pattern") == "rising latency")).row(0, named=True)
    assert 0.7 < leak_row["change"] < 1.3  # the mean doubled: +100 %
    assert leak_row["p_value"] < 1e-6
    assert "at a steady load" in leak_row["evidence"]
    spikes = found.filter(pl.col("pattern") == "spikes").row(0, named=True)
    assert spikes["evidence"].startswith("2 of 120 windows spike")
    assert "rose from" in found.filter(pl.col("pattern") == "rising errors")["evidence"][0]


def test_capacity_limit_on_a_closed_model_ramp() -> None:
    # users step 10..100; the server completes at most 300 req/s; think time 50 ms, so by
    # Little's law R = N / X - Z: 50 ms until 30 users, then climbing to 283 ms at 100 users
    rng = np.random.default_rng(3)
    users = np.repeat(np.arange(10, 101, 10), 12).astype(float)
    throughput = np.minimum(users * 10.0, 300.0)
    latency = (users / throughput - 0.05) * 1000.0
    series = {"count": rng.poisson(throughput), "mean": latency * np.exp(rng.normal(0, .05,
                                                                                    len(users)))}
    found = find_patterns(synthetic_windows({"GET /cap": series}, users=users))
    cap = found.filter((pl.col("endpoint") == "GET /cap") & (pl.col("pattern") == "capacity limit"))
    assert cap.height == 1
    evidence = cap["evidence"][0]
    plateau = float(re.search(r"levelled off at about ([\d.]+) req/s", evidence)[1])
    assert 270 < plateau < 330  # the server's 300 req/s
    assert re.search(r"users (30|40)\.0 -> 100\.0", evidence)
    # the load moved, so the climb is not called a leak
    assert found.filter(pl.col("pattern") == "rising latency").is_empty()


def test_steady_runs_raise_no_patterns() -> None:
    # 50 seeded steady runs (lognormal window means, 1 % errors): no pattern at all
    hits = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        windows = synthetic_windows({"GET /x": steady_series(rng), "GET /y": steady_series(rng)},
                                    users=np.full(120, 20.0))
        hits += find_patterns(windows).height
    assert hits == 0

