"""history follows any metric a run recorded: ``perfstats history --metric quote_duration:p95``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import DATA

import perfstats
from perfstats.cli import cli
from perfstats.errors import ArgumentError


@pytest.fixture(scope="module")
def store_path(tmp_path_factory, stored_runs):
    harness = DATA / "k6-harness"
    if not harness.is_dir():
        pytest.skip("no k6-harness runs in data/")
    path = tmp_path_factory.mktemp("history") / "h.duckdb"
    # k6/baseline has no quote_duration
    stored_runs.copy(path, "k6-harness/baseline", "k6-harness/candidate", "k6/baseline")
    return path


def test_custom_trend_and_tagged_sub_metric(store_path):
    found = perfstats.history(db=store_path, metric=["quote_duration:p95",
                                                     "http_req_duration{scenario:quote_flow}:p(95)"],
                              like="all")  # the two runs' peak VUs differ (arrival-rate)
    series = {(r["endpoint"], r["run_id"]): r["value"] for r in found.series.iter_rows(named=True)}
    runs = perfstats.runs(db=store_path)
    summary = {(m, r): v for r in runs["run_id"] for m, v in perfstats.open_store(store_path).query(
        "SELECT metric, value FROM metrics WHERE run_id = ? AND stat = 'p(95)'", [r]).iter_rows()}
    for (endpoint, run_id), value in series.items():
        assert value == pytest.approx(summary[(endpoint, run_id)], rel=1e-9)  # k6's own p(95)
    assert len(series) == 4  # two harness runs x two metrics; the older run has neither


def test_rate_and_counter_and_cli(store_path):
    found = perfstats.history(db=store_path, metric=["booking_success_rate:rate",
                                                     "bookings_created:count"], like="all")
    values = dict(zip(found.series["metric"] + "@" + found.series["run_id"],
                      found.series["value"], strict=True))
    assert sorted(v for k, v in values.items() if k.startswith("booking_success")) == \
        pytest.approx([974 / 998, 990 / 998])
    assert sorted(v for k, v in values.items() if k.startswith("bookings_created")) == [974, 990]
    out = CliRunner().invoke(cli, ["history", "--db", str(store_path), "--metric",
                                   "quote_duration:p95", "--all-kinds", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert {r["endpoint"] for r in json.loads(out.stdout)["series"]} == {"quote_duration"}


def test_bad_metric_specs(store_path):
    with pytest.raises(ArgumentError, match="unknown metric"):
        perfstats.history(db=store_path, metric="p42")
    with pytest.raises(ArgumentError, match="bad metric"):
        perfstats.history(db=store_path, metric="quote_duration:p(95")
