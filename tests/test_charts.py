"""Chart builders and the frames they plot: Run.timeline (aggregated, exact where the data
allows), Run.quantiles (the ECDF in ~200 points), titled axes with units, no oversized charts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import altair as alt
import numpy as np
import polars as pl
import pytest
from helpers import SampleRuns

import perfstats
from perfstats.render import charts


@pytest.fixture
def k6(sample_runs: SampleRuns) -> perfstats.Run:
    return sample_runs["k6/baseline"]


def _axes(spec: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every positional encoding with a field, anywhere in a (layered, faceted...) spec."""
    if isinstance(spec, dict):
        for channel, enc in (spec.get("encoding") or {}).items():
            if channel in ("x", "y") and isinstance(enc, dict) and "field" in enc \
                    and enc.get("axis", {}) is not None and enc.get("scale", {}) is not None:
                yield channel, enc
        for value in spec.values():
            yield from _axes(value)
    elif isinstance(spec, list):
        for value in spec:
            yield from _axes(value)


def _rows(spec: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    """The inline rows of ``node`` (altair moves them to the top-level ``datasets``)."""
    data = node["data"]
    return data["values"] if "values" in data else spec["datasets"][data["name"]]


def _assert_titled_axes(chart: alt.TopLevelMixin) -> None:
    spec = chart.to_dict()  # validates against the Vega-Lite schema
    axes = list(_axes(spec))
    assert axes
    for channel, enc in axes:
        title = enc.get("title")
        assert title, f"{channel} axis of {enc['field']} has no title"
        if enc["type"] in ("quantitative", "temporal"):
            assert "(" in title and title.endswith(")"), f"no unit in the {channel} title {title!r}"


def test_timeline_keeps_windows_when_few(k6: perfstats.Run) -> None:
    timeline = k6.timeline()
    windows = k6.windows()
    assert timeline.height == windows.height  # 76 one-second windows per endpoint: kept as is
    assert timeline["elapsed_s"].min() == 0
    counts = timeline.group_by("endpoint").agg(pl.col("count").sum())
    summary = k6.summary().select("endpoint", "count")
    assert counts.join(summary, on="endpoint").filter(
        pl.col("count") != pl.col("count_right")).is_empty()


def test_timeline_merges_long_runs_exactly_from_samples(k6: perfstats.Run) -> None:
    timeline = k6.timeline(max_points=8)
    per_endpoint = timeline.group_by("endpoint").len()
    assert per_endpoint["len"].max() <= 8
    assert set(timeline["percentiles"]) == {"exact"}
    # Counts add up to the run's, rps is count over covered seconds.
    assert timeline.filter(endpoint="ALL")["count"].sum() == k6.summary().filter(
        endpoint="ALL")["count"][0]
    assert np.allclose(timeline["rps"] * timeline["length_s"], timeline["count"])
    # A merged window's p95 is the exact p95 of its samples (quantile type 7, as k6).
    row = timeline.filter(endpoint="POST /api/quote").row(2, named=True)
    t0 = timeline["start"].min()
    samples = k6.samples().filter(pl.col("endpoint") == "POST /api/quote")
    elapsed = (samples["ts"] - t0).dt.total_microseconds() / 1e6
    inside = samples.filter((elapsed >= row["elapsed_s"])
                            & (elapsed < row["elapsed_s"] + row["length_s"]))["value"]
    assert inside.len() == row["count"]
    assert row["p95"] == pytest.approx(np.percentile(inside.to_numpy(), 95), rel=1e-9)


def test_timeline_of_window_runs_bounds_merged_percentiles(sample_runs: SampleRuns) -> None:
    run = sample_runs["artillery/baseline"]
    windows = run.windows()
    merged = run.timeline(max_points=3)
    assert merged.group_by("endpoint").len()["len"].max() <= 3
    assert set(merged["percentiles"]) == {"max-of-windows"}
    first = merged.filter(endpoint="ALL").row(0, named=True)
    covered = windows.filter((pl.col("endpoint") == "ALL")
                             & (pl.col("start") < first["start"]
                                + pl.duration(seconds=first["length_s"])))
    assert first["count"] == covered["count"].sum()
    assert first["p95"] == covered["p95"].max()  # an upper bound: never an average


def test_quantiles_from_samples_histograms_and_summaries(k6: perfstats.Run,
                                                         sample_runs: SampleRuns) -> None:
    exact = k6.quantiles()
    assert set(exact["source"]) == {"exact"}
    assert exact.group_by("endpoint").len()["len"].min() >= 195
    medians = exact.filter(pl.col("q") == 0.5).join(k6.summary(), on="endpoint")
    assert np.allclose(medians["latency_ms"], medians["p50"])
    for part in exact.partition_by("endpoint"):
        assert part["latency_ms"].is_sorted() and part["q"].is_sorted()

    buckets = sample_runs["locust/baseline"].quantiles()
    assert set(buckets["source"]) == {"histogram"}
    for part in buckets.partition_by("endpoint"):
        assert part["q"].is_sorted() and part["q"][-1] == pytest.approx(1.0)

    artillery = sample_runs["artillery/baseline"]
    points = artillery.quantiles().filter(endpoint="ALL")
    summary = artillery.summary().filter(endpoint="ALL").row(0, named=True)
    assert points["q"].to_list() == [0.0, 0.5, 0.9, 0.95, 0.99, 1.0]
    assert points["latency_ms"].to_list() == [summary[k] for k in
                                              ("min", "p50", "p90", "p95", "p99", "max")]


def test_every_builder_titles_its_axes_with_units(k6: perfstats.Run,
                                                  sample_runs: SampleRuns) -> None:
    timeline = k6.timeline()
    other = sample_runs["k6/smoke"]
    _assert_titled_axes(k6.chart())
    _assert_titled_axes(charts.throughput_over_time(timeline))
    _assert_titled_axes(charts.latency_distribution({"baseline": k6.quantiles(),
                                                     "candidate": other.quantiles()}))
    changes = pl.DataFrame({"endpoint": ["A", "B"], "change": [0.3, -0.02],
                            "ci_low": [0.2, -0.05], "ci_high": [0.4, 0.01],
                            "verdict": ["regression", "no change"]})
    _assert_titled_axes(charts.change_per_endpoint(changes, thresholds=[0.1]))
    steps = pl.DataFrame({"users": [5.0, 10, 20, 40], "rps": [20.0, 40, 70, 90],
                          "p95": [100.0, 110, 150, 400]})
    _assert_titled_axes(charts.capacity_curve(steps, fit=steps, slo=None, marks={"knee": 20}))
    _assert_titled_axes(charts.capacity_curve(steps, y="p95", y_title="p95 latency (ms)",
                                              slo=300, marks={"knee": 20.0}))
    _assert_titled_axes(charts.bottleneck_bars(
        pl.DataFrame({"endpoint": ["A", "B"], "impact": [0.7, 0.3], "lo": [0.6, 0.2],
                      "hi": [0.8, 0.4]}), low="lo", high="hi"))
    series = pl.DataFrame({
        "started_at": [datetime(2025, 1, d, tzinfo=timezone.utc) for d in (1, 2, 3)],
        "value": [100.0, 101, 130], "endpoint": ["ALL"] * 3, "run_id": ["a", "b", "c"]})
    _assert_titled_axes(charts.history_series(series, change_points=series.tail(1)))


def test_run_colours_and_sorted_changes(k6: perfstats.Run) -> None:
    spec = charts.latency_distribution({"baseline": k6.quantiles(),
                                        "candidate": k6.quantiles()}).to_dict()
    scale = spec["spec"]["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == {
        "baseline": charts.RUN_COLORS["baseline"], "candidate": charts.RUN_COLORS["candidate"]}
    changes = pl.DataFrame({"endpoint": ["small", "big"], "change": [0.01, 0.5],
                            "ci_low": [-0.02, 0.4], "ci_high": [0.03, 0.6],
                            "verdict": ["no change", "regression"]})
    layered = charts.change_per_endpoint(changes).to_dict()
    points = layered["layer"][-1]["encoding"]
    assert points["y"]["sort"] == ["big", "small"]
    assert _rows(layered, layered["layer"][0]) == [{"at": 0.0, "kind": "no change"}]


def test_builders_refuse_unaggregated_frames_and_missing_columns() -> None:
    big = pl.DataFrame({"endpoint": ["ALL"] * (charts.MAX_ROWS + 1),
                        "elapsed_s": np.arange(charts.MAX_ROWS + 1, dtype=float),
                        "p50": 1.0, "p95": 2.0, "p99": 3.0})
    with pytest.raises(ValueError, match="aggregate first"):
        charts.latency_over_time(big)
    with pytest.raises(ValueError, match="needs the column.*rps"):
        charts.throughput_over_time(big)


def test_chart_data_is_inline_json(k6: perfstats.Run) -> None:
    spec = k6.chart().to_dict()
    rows = _rows(spec, spec)
    assert isinstance(rows[0]["start"], str) and rows[0]["start"].endswith("Z")
    assert all(v is None or np.isfinite(v) for r in rows for v in r.values()
               if isinstance(v, float))


@pytest.mark.parametrize(("seconds", "shown"), [
    (83, "%Y-%m-%d %H:%M:%S"), (3 * 3600, "%Y-%m-%d %H:%M"), (40 * 86400, "%Y-%m-%d")])
def test_history_time_labels_are_fine_enough_for_the_span(seconds: int, shown: str) -> None:
    # Two runs 83 s apart got ticks every 30 s labelled to the minute: "01:53" twice.
    start = datetime(2026, 11, 22, 1, 52, 22, tzinfo=timezone.utc)
    series = pl.DataFrame({"started_at": [start, start + timedelta(seconds=seconds)],
                           "value": [100.0, 101], "endpoint": ["ALL"] * 2, "run_id": ["a", "b"]})
    spec = charts.history_series(series).to_dict()
    axes = [layer["encoding"]["x"]["axis"] for layer in spec.get("layer", [spec])
            if "x" in layer.get("encoding", {})]
    assert axes and all(axis["format"] == shown for axis in axes), axes
