"""History over stored runs: real runs from data/ (plumbing, labels, export) and a synthetic store
with injected level shifts (change points, noise, auto baseline); the detectable change by
simulation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from helpers import StoredRuns
from scipy import stats

import perfstats
from perfstats.cli import cli
from perfstats.errors import InsufficientDataError, StoreError
from perfstats.store import SCHEMA, Store
from perfstats.trends.series import (
    METRICS,
    baseline_runs,
    detectable_change,
    export_parquet,
    history,
)

REAL_RUNS = [  # (folder, labels), in the order the tools ran them
    ("locust/baseline", {"branch": "main", "tool": "locust"}),
    ("locust/candidate", {"branch": "feature", "tool": "locust"}),
    ("artillery/baseline", {"branch": "main", "tool": "artillery"}),
    ("artillery/candidate", {"branch": "feature", "tool": "artillery"}),
    ("artillery-v1/baseline", {"branch": "main", "tool": "artillery"}),
]


@pytest.fixture
def real_store(stored_runs: StoredRuns):
    return stored_runs.in_memory(*(folder for folder, _ in REAL_RUNS), labels=dict(REAL_RUNS))


def test_real_series_match_each_run_summary(real_store):
    store, runs = real_store
    found = history(db=store, metric=["p95", "error_rate"], like="all")
    assert found.series["run_id"].n_unique() == len(runs)
    assert found.warnings and "differ in kind" in found.warnings[0]
    for run in runs:
        summary = run.summary()
        for metric in ("p95", "error_rate"):
            expected = dict(zip(summary["endpoint"], summary[metric], strict=True))
            got = found.series.filter((pl.col("run_id") == run.run_id)
                                      & (pl.col("metric") == metric))
            assert dict(zip(got["endpoint"], got["value"], strict=True)) == {
                k: v for k, v in expected.items() if v is not None}
    # Every endpoint's series is in run start order.
    for group in found.series.partition_by("endpoint", "metric"):
        assert group["started_at"].is_sorted()


def test_real_labels_endpoint_glob_and_exclude(real_store):
    store, runs = real_store
    main = history(db=store, labels={"branch": "main"}, like="all")
    assert set(main.series["run_id"]) == {r.run_id for r in runs if r.labels["branch"] == "main"}
    quote = history(db=store, endpoint="*quote*", labels={"tool": "artillery"}, like="all")
    assert set(quote.series["endpoint"]) == {"/api/quote"}
    assert quote.series.height == 3
    # The candidate's +30 % on quote shows in the series (median 40 -> 52 ms on the server).
    values = dict(zip(quote.series["run_id"], quote.series["value"], strict=True))
    assert values[runs[3].run_id] > 1.1 * values[runs[2].run_id]
    left = history(db=store, labels={"tool": "artillery"}, exclude=[runs[3].run_id],
                   like="all")
    assert runs[3].run_id not in set(left.series["run_id"])
    # Three runs cannot hold a change point (two runs per side at least).
    assert quote.change_points.is_empty()
    noise = quote.noise.row(0, named=True)
    assert noise["n_runs"] == 3 and noise["since_run_id"] == runs[2].run_id
    assert noise["cv_pct"] == pytest.approx(
        100 * np.std(list(values.values()), ddof=1) / np.mean(list(values.values())))


def test_real_baseline_runs_follow_the_label(real_store):
    store, runs = real_store
    assert baseline_runs(db=store, labels={"branch": "main", "tool": "artillery"}) == [
        runs[2].run_id, runs[4].run_id]
    with pytest.raises(InsufficientDataError, match="branch=nope"):
        baseline_runs(db=store, labels={"branch": "nope"})


def test_real_export_parquet_round_trip(real_store, tmp_path):
    store, runs = real_store
    written = export_parquet(tmp_path / "export", db=store)
    assert set(written["table"]) == set(SCHEMA)
    con = duckdb.connect()
    for table, rows in zip(written["table"], written["rows"], strict=True):
        if table == "perfstats_meta" or rows == 0:
            continue
        dirs = sorted(p.name for p in (tmp_path / "export" / table).iterdir())
        with store.connect() as src:
            ids = sorted(r[0] for r in src.execute(f"SELECT DISTINCT run_id FROM {table}")
                         .fetchall())
            original = src.sql(f"SELECT * FROM {table}").pl()
        assert dirs == [f"run_id={i}" for i in ids]
        back = con.sql(f"SELECT * FROM read_parquet('{tmp_path}/export/{table}/*/*.parquet', "
                       "hive_partitioning = true)").pl()
        assert back.height == rows == original.height
        key = [c for c, t in original.schema.items() if not t.is_nested()]
        assert back.select(original.columns).sort(key).equals(original.sort(key)), table
    with pytest.raises(StoreError, match="overwrite"):
        export_parquet(tmp_path / "export", db=store)
    assert export_parquet(tmp_path / "export", db=store, overwrite=True).height == len(SCHEMA)


# A synthetic store: 80 runs on main (one every 6 h) with 3 % lognormal run-to-run noise on every
# endpoint, quote x1.30 from run 40, deals x0.80 from run 60; 10 runs on a feature branch at
# double latency, interleaved.
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
ENDPOINTS = {"ALL": 60.0, "POST /api/quote": 40.0, "GET /api/deals": 20.0, "POST /api/login": 90.0}
SHIFTS = {"POST /api/quote": (40, 1.30), "GET /api/deals": (60, 0.80)}


def synthetic_store(main_runs: int = 80, seed: int = 5) -> Store:
    rng = np.random.default_rng(seed)
    n = main_runs + 10
    branch = ["main"] * main_runs + ["feature"] * 10
    hours = np.r_[6.0 * np.arange(main_runs), 6.0 * np.arange(10) * 8 + 3]
    run_ids = [f"r{i:03d}" for i in range(n)]
    runs = pl.DataFrame({
        "run_id": run_ids, "tool": "k6", "format": "k6-json", "grain": "summary",
        "source_files": [["synthetic"]] * n, "content_hash": run_ids,
        "started_at": [START + timedelta(hours=float(h)) for h in hours],
        "ingested_at": START + timedelta(days=200), "branch": branch,
    })
    rows = []
    for endpoint, base in ENDPOINTS.items():
        at, factor = SHIFTS.get(endpoint, (n, 1.0))
        level = base * np.where(np.arange(n) >= at, factor, 1.0)
        level[main_runs:] = 2 * base
        rows.append(pl.DataFrame({
            "run_id": run_ids, "endpoint": endpoint, "count": 1000, "failures": 5,
            "p95": level * np.exp(0.03 * rng.standard_normal(n)), "percentiles": "tool-summary",
        }))
    summaries = pl.concat(rows)
    store = perfstats.open_store(":memory:")
    with store.connect(write=True) as con:
        con.register("new_runs", runs.to_arrow())
        con.register("new_summaries", summaries.to_arrow())
        con.execute("INSERT INTO runs (run_id, tool, format, grain, source_files, content_hash, "
                    "started_at, ingested_at, labels) SELECT run_id, tool, format, grain, "
                    "source_files, content_hash, started_at, ingested_at, "
                    "MAP {'branch': branch} FROM new_runs")
        con.execute("INSERT INTO summaries (run_id, endpoint, count, failures, p95, percentiles) "
                    "SELECT * FROM new_summaries")
    return store


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_store()


def test_synthetic_change_points_where_injected(synthetic):
    found = history(db=synthetic, labels={"branch": "main"})
    cps = found.change_points.sort("endpoint")
    assert cps.select("endpoint", "index", "run_id").rows() == [
        ("GET /api/deals", 60, "r060"), ("POST /api/quote", 40, "r040")]
    for row in cps.iter_rows(named=True):
        at, factor = SHIFTS[row["endpoint"]]
        assert row["change_pct"] == pytest.approx(100 * (factor - 1), abs=2)
        assert row["before"] == pytest.approx(ENDPOINTS[row["endpoint"]], rel=0.02)
        assert row["p_value"] < 1e-6
    noise = {r["endpoint"]: r for r in found.noise.iter_rows(named=True)}
    assert noise["GET /api/deals"]["n_runs"] == 20 and noise["POST /api/quote"]["n_runs"] == 40
    assert noise["ALL"]["n_runs"] == 80 and noise["ALL"]["since_run_id"] == "r000"
    for row in noise.values():
        assert 2.0 < row["cv_pct"] < 4.0  # injected: 3 %
        assert row["min_detectable_change_pct"] == pytest.approx(
            100 * detectable_change(row["cv_pct"] / 100, row["n_runs"]))


def test_synthetic_labels_keep_the_branches_apart(synthetic):
    assert history(db=synthetic).series["run_id"].n_unique() == 90
    feature = history(db=synthetic, labels={"branch": "feature"})
    assert feature.series["run_id"].n_unique() == 10 and feature.change_points.is_empty()
    main = history(db=synthetic, labels={"branch": "main"})
    assert main.series["value"].max() < 1.5 * max(ENDPOINTS.values())  # no feature run inside


def test_synthetic_baseline_runs_start_at_the_latest_change(synthetic):
    runs = baseline_runs(db=synthetic, labels={"branch": "main"})
    assert runs == [f"r{i:03d}" for i in range(60, 80)]
    # Only the quote endpoint: its regime started at run 40.
    quote = baseline_runs(db=synthetic, labels={"branch": "main"}, endpoint="*quote")
    assert quote == [f"r{i:03d}" for i in range(40, 80)]
    # Leaving the candidate out of its own baseline.
    assert "r079" not in baseline_runs(db=synthetic, labels={"branch": "main"}, exclude=["r079"])


def test_series_come_from_one_query(synthetic, monkeypatch):
    calls = []
    original = Store.query

    def counting(self, sql, params=None):
        calls.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(Store, "query", counting)
    history(db=synthetic, metric=["p95", "p99", "error_rate"])
    assert len(calls) == 2  # the series, and what kind of run each run is (not one per run)


def test_result_renders(synthetic):
    found = history(db=synthetic, labels={"branch": "main"})
    data = json.loads(json.dumps(found.to_dict()))
    assert data["settings"]["labels"] == {"branch": "main"}
    assert len(data["series"]) == 4 * 80 and len(data["change_points"]) == 2
    assert data["series"][0]["labels"] == {"branch": "main"}
    text = found.to_markdown()
    assert "### Change points" in text and "POST /api/quote" in text and "r040" in text
    assert "<table" in found._repr_html_()
    spec = found.chart().to_dict()
    assert len(spec["layer"]) == 2  # the series and the change-point rules
    assert found.chart(endpoint="POST /api/quote").to_dict()["title"]["text"].endswith("quote")
    summary = found.display_frame().filter(pl.col("endpoint") == "POST /api/quote").row(
        0, named=True)
    assert summary["change_points"] == 1 and len(summary["trend"]) == 30


def test_bad_arguments(synthetic):
    with pytest.raises(ValueError, match="unknown metric"):
        history(db=synthetic, metric="p42")
    with pytest.raises(InsufficientDataError, match="no stored run"):
        history(db=synthetic, endpoint="nothing*")
    with pytest.raises(InsufficientDataError):
        history(db=perfstats.open_store(":memory:"))
    assert set(METRICS) >= {"p50", "p95", "p99", "mean", "error_rate", "rps"}


@pytest.mark.parametrize("n_runs", [3, 5, 10, 30])
def test_detectable_change_has_the_stated_power(n_runs):
    # One new run, shifted by the detectable change, against n stable runs (cv 5 %): a one-sided
    # t-test at 5 % flags it in 80 % of cases.
    rng = np.random.default_rng(n_runs)
    change = detectable_change(0.05, n_runs)
    base = rng.normal(100, 5, (20_000, n_runs))
    new = rng.normal(100 * (1 + change), 5, 20_000)
    t = (new - base.mean(axis=1)) / (base.std(axis=1, ddof=1) * np.sqrt(1 + 1 / n_runs))
    assert (t > stats.t.ppf(0.95, n_runs - 1)).mean() == pytest.approx(0.80, abs=0.015)
    assert np.isnan(detectable_change(0.05, 1))


def test_cli_history_and_export(tmp_path):
    db = tmp_path / "store.duckdb"
    store = synthetic_store()
    with store.connect() as con:
        con.execute(f"ATTACH '{db}' AS f")
        for table in SCHEMA:
            con.execute(f"CREATE TABLE f.{table} AS SELECT * FROM {table}")
        con.execute("DETACH f")
    runner = CliRunner()
    out = runner.invoke(cli, ["history", "--db", str(db), "--label", "branch=main",
                              "--format", "json"], catch_exceptions=False)
    assert out.exit_code == 0
    data = json.loads(out.output)
    assert sorted(c["run_id"] for c in data["change_points"]) == ["r040", "r060"]
    out = runner.invoke(cli, ["history", "--db", str(db), "--label", "branch=main",
                              "--endpoint", "POST *", "--metric", "p95", "--format", "markdown"])
    assert out.exit_code == 0 and "POST /api/quote" in out.output and "GET" not in out.output
    out = runner.invoke(cli, ["history", "--db", str(db), "--label", "branch=main"])
    assert out.exit_code == 0 and "change points" in out.output
    out = runner.invoke(cli, ["history", "--db", str(db), "--label", "branch=none"])
    assert out.exit_code == 2 and "branch=none" in out.output
    out = runner.invoke(cli, ["export", "--db", str(db), "--parquet", str(tmp_path / "pq")])
    assert out.exit_code == 0 and (tmp_path / "pq" / "summaries" / "run_id=r000").is_dir()
    out = runner.invoke(cli, ["export", "--db", str(db), "--parquet", str(tmp_path / "pq")])
    assert out.exit_code == 2 and "--overwrite" in out.output


def test_like_with_like_leaves_out_a_ramp_and_other_load_levels_and_says_so(stored_runs):
    """Steady 20-user runs, a 100-user ramp and a 3-user smoke run of the same k6 script: by
    default only the runs of the latest run's kind form the series; the others are named."""
    store, (ramp, smoke, base, cand) = stored_runs.in_memory(
        *(f"k6/{name}" for name in ("ramp", "smoke", "baseline", "candidate")))
    found = history(db=store)
    assert set(found.series["run_id"]) == {base.run_id, cand.run_id}
    left = dict(zip(found.left_out["run_id"], found.left_out["reason"], strict=True))
    assert left == {ramp.run_id: "other shape, max users", smoke.run_id: "other max users"}
    assert "ramped 100 users" in found.left_out.filter(pl.col("run_id") == ramp.run_id)["kind"][0]
    (warning,) = found.warnings
    assert warning.startswith("compared like with like: 2 run(s) of the latest run's kind "
                              "(k6, closed model, steady 20 users, 6 endpoints); left out 2")
    # Mixed, the run-to-run noise is meaningless: the same endpoint's cv goes from a few % to
    # over 100 %.
    mixed = history(db=store, like="all")
    cv = {like: dict(zip(h.noise["endpoint"], h.noise["cv_pct"], strict=True))["ALL"]
          for like, h in (("latest", found), ("all", mixed))}
    assert cv["latest"] < 15 < 100 < cv["all"]
    assert "differ in kind" in mixed.warnings[0]
    assert found.to_dict()["left_out"][0]["run_id"] in left and found.to_dict()["warnings"]

    result = CliRunner().invoke(cli, ["history", "--db", ":memory:"])
    assert result.exit_code == 2  # no store: nothing to follow (CLI message test elsewhere)
