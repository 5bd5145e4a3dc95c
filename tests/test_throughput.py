"""One duration and one throughput per run: summary and compare agree with each other and with the
tool's own figure; distributed Locust history rows are windows of the period they really have."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
import pytest
from helpers import DATA, SampleRuns

import perfstats

K6 = ["k6/baseline", "k6/candidate", "k6/ramp", "k6/smoke", "k6-harness/baseline",
      "k6-harness/candidate"]
LOCUST = ["locust-distributed/baseline", "locust-distributed/candidate"]
ARTILLERY = ["artillery/baseline", "artillery/candidate", "artillery/ramp",
             "artillery-harness/baseline", "artillery-harness/candidate"]


def _k6_rate(folder: Path) -> float:
    """k6's own http_reqs rate (count / test run duration) from its end-of-test summary."""
    summary = json.loads((folder / "summary-export.json").read_text())
    return float(summary["metrics"]["http_reqs"]["rate"])


def _locust_rate(stats_csv: Path) -> float:
    """Locust's own Requests/s of the Aggregated row (count / (last request - start))."""
    with open(stats_csv, newline="") as fh:
        return float(next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
                     ["Requests/s"])


def _artillery_rate(report: Path) -> float:
    """Artillery's requests over its counters' span (first to last counter)."""
    aggregate = json.loads(report.read_text())["aggregate"]
    span_s = (aggregate["lastCounterAt"] - aggregate["firstCounterAt"]) / 1000.0
    return aggregate["counters"]["http.requests"] / span_s


def _throughputs(sample_runs: SampleRuns, name: str) -> tuple[dict[str, float], dict[str, float]]:
    """Per endpoint: summary's rps and compare's throughput of the run ``name``."""
    summary = dict(sample_runs[name].summary().select("endpoint", "rps").iter_rows())
    checks = sample_runs.compared(name, name).checks.filter(
        (pl.col("metric") == "throughput") & (pl.col("kind") == "http")
        & (pl.col("slice").fill_null("") == ""))
    return summary, dict(checks.select("endpoint", "baseline").iter_rows())


def _tool_rate(name: str) -> float:
    folder = DATA / name
    if name.startswith("k6"):
        return _k6_rate(folder)
    if name.startswith("locust"):
        return _locust_rate(folder / "locust_stats.csv")
    return _artillery_rate(folder / "report.json")


@pytest.mark.parametrize("name", K6 + LOCUST + ARTILLERY)
def test_one_throughput_equal_to_the_tools_own(name: str, sample_runs: SampleRuns) -> None:
    run = sample_runs[name]
    summary, compared = _throughputs(sample_runs, name)
    expected = _tool_rate(name)
    assert summary["ALL"] == pytest.approx(expected, rel=1e-9)
    assert compared["ALL"] == pytest.approx(expected, rel=1e-9)
    # Every endpoint: the same duration in summary and compare.
    for endpoint, rate in compared.items():
        assert summary[endpoint] == pytest.approx(rate, rel=1e-9), endpoint
    count = run.summary().filter(pl.col("endpoint") == "ALL")["count"][0]
    assert run.meta["duration_s"] == pytest.approx(count / expected, rel=1e-9)


@pytest.mark.parametrize("name", ["locust/baseline", "locust/candidate", "locust/ramp"])
def test_a_locust_stats_file_alone_gives_its_own_requests_per_second(name: str) -> None:
    stats = DATA / name / "locust_stats.csv"
    run = perfstats.ingest(stats, db=":memory:")
    assert run.summary().filter(pl.col("endpoint") == "ALL")["rps"][0] == pytest.approx(
        _locust_rate(stats), rel=1e-9)


def test_distributed_locust_history_rows_are_windows_of_their_real_period() -> None:
    path = DATA / "locust-distributed/baseline/locust_stats_history.csv"
    run = perfstats.ingest(path, db=":memory:", fmt="locust-history")
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["Name"] == "Aggregated"]
    counts = [int(r["Total Request Count"]) for r in rows]
    new = [b - a for a, b in zip(counts, counts[1:], strict=False)]
    # As written: a row every second, but new requests only every third one or so.
    assert {int(b["Timestamp"]) - int(a["Timestamp"]) for a, b in zip(rows, rows[1:],
                                                                       strict=False)} == {1}
    assert sum(n == 0 for n in new) > len(new) / 4
    windows = run.windows("ALL")
    busy = windows.filter(pl.col("count") > 0)
    assert busy["length_s"].median() == 3.0
    # From the first window with requests to the last but one, none is empty, and no request
    # is lost or counted twice.
    first = next(k for k, c in enumerate(windows["count"]) if c > 0)
    assert (windows["count"][first:-1] > 0).all()
    assert windows["count"].sum() == counts[-1]
    assert any("every 3 s" in note for note in run.meta["notes"])


def test_a_local_locust_history_keeps_its_one_second_windows() -> None:
    run = perfstats.ingest(DATA / "locust/baseline/locust_stats_history.csv", db=":memory:",
                           fmt="locust-history")
    assert (run.windows()["length_s"] == 1.0).all()
    assert not any("every" in note for note in run.meta["notes"])
