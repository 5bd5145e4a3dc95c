"""Capacity planning: the instances formula, and plans from the ramp runs in data/."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from helpers import DATA

import perfstats
from perfstats.cli import cli
from perfstats.errors import ConfigError, InsufficientDataError
from perfstats.planning.plan import capacity, instances_for_rps, instances_needed


def test_the_worked_example_of_the_methods_note():
    # 10000 x 1.3 / 450 = 28.89 -> 29.
    assert instances_needed(10000, 450, safety_factor=1.3) == 29


def test_exact_multiples_are_not_rounded_up_by_float_noise():
    assert 100 * 1.1 / 110 > 1.0  # the float product is 1.0000000000000002
    assert instances_needed(100, 110, safety_factor=1.1) == 1
    assert instances_needed(300, 100, safety_factor=1.0) == 3
    assert instances_needed(301, 100, safety_factor=1.0) == 4


def test_minimum_instances_and_zero_peak():
    assert instances_needed(0, 50) == 1
    assert instances_needed(0, 50, min_instances=0) == 0
    assert instances_needed(10, 50, min_instances=3) == 3
    assert instances_needed(1000, 50, min_instances=3) == 30


def test_safety_factor_below_one_warns_but_answers():
    with pytest.warns(UserWarning, match="less than the peak"):
        assert instances_needed(1000, 100, safety_factor=0.8) == 8


@pytest.mark.parametrize("upi", [0, -5, 0.0])
def test_zero_or_negative_users_per_instance_raises(upi):
    with pytest.raises(ValueError, match="per instance must be > 0"):
        instances_needed(1000, upi)


@pytest.mark.parametrize("kwargs, match", [
    ({"peak_users": -1, "users_per_instance": 10}, "peak users"),
    ({"peak_users": math.inf, "users_per_instance": 10}, "peak users"),
    ({"peak_users": 10, "users_per_instance": 10, "safety_factor": 0}, "safety_factor"),
    ({"peak_users": 10, "users_per_instance": 10, "min_instances": -1}, "min_instances"),
    ({"peak_users": 10, "users_per_instance": 10, "min_instances": 1.5}, "min_instances"),
    ({"peak_users": 10, "users_per_instance": 10, "zones": 0}, "zones"),
])
def test_bad_values_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        instances_needed(**kwargs)


@pytest.mark.parametrize("peak, upi", [(math.nan, 10), (10, math.nan), ("10", 10), (True, 10)])
def test_non_numbers_raise_type_error(peak, upi):
    with pytest.raises(TypeError):
        instances_needed(peak, upi)


def test_an_unbounded_users_per_instance_needs_the_minimum():
    # The SLO never broke: users per instance is only known to exceed the tested range; the
    # caller passes that lower bound, but infinity must not crash the formula either.
    assert instances_needed(1000, math.inf) == 1


def test_zone_redundancy_survives_losing_a_zone():
    # 1000 x 1.5 / 100 = 15; over 3 zones each zone must carry 15/2 -> 22.5 -> 23 -> 24 (3 x 8).
    assert instances_needed(1000, 100, zones=3) == 24
    assert instances_needed(1000, 100, zones=1) == 15


def test_the_rps_route():
    assert instances_for_rps(1200, 95, safety_factor=1.2) == 16
    with pytest.raises(ValueError, match="rps per instance"):
        instances_for_rps(1200, 0)


# --------------------------------------------------------------------------- plans from real runs

# Ground truth of the ramp runs (../shared/data/MANIFEST.md, "ramp: capacity mode"): the model's
# maximum throughput for each tool's request mix, and the server's own per-step throughput
# (completed req/s, first 3 s and last 1 s of each step dropped).
TRUE_X_MAX = {"k6": 113.7, "artillery": 113.7, "locust": 135.6}
SERVER_STEP_RPS = {
    "k6": [19.8, 39.6, 77.0, 112.5, 98.7, 91.4, 87.4],
    "locust": [13.9, 27.7, 57.2, 112.4, 120.7, 112.2, 113.0],
    "artillery": [14.0, 28.0, 42.2, 63.2, 83.8],  # arrival steps 2..12/s, below saturation
}


@pytest.fixture(scope="module")
def ramp_store(tmp_path_factory, stored_runs):
    """One file store holding the three ramp runs; ``{tool: run_id}``."""
    path = tmp_path_factory.mktemp("capacity") / "ramps.duckdb"
    tools = ("k6", "artillery", "locust")
    ids = stored_runs.copy(path, *(f"{tool}/ramp" for tool in tools))
    return path, dict(zip(tools, ids, strict=True))


@pytest.fixture(scope="module")
def plans(ramp_store):
    path, ids = ramp_store
    return {tool: capacity(run_id, db=path, peak_users=2000, target_rps=1000)
            for tool, run_id in ids.items()}


@pytest.mark.parametrize("tool", ["k6", "artillery", "locust"])
def test_usl_x_max_is_within_15_percent_of_the_true_capacity(plans, tool):
    plan = plans[tool]
    assert plan.usl is not None
    assert abs(plan.usl.x_max / TRUE_X_MAX[tool] - 1) <= 0.15, plan.usl.x_max
    # Measured: k6 107.0 (-5.9 %), Artillery 101.2 (-11.0 %), Locust 120.7 (-11.0 %); the
    # measured plateau sits a few % under the model maximum because a queue is always present.


@pytest.mark.parametrize("tool", ["k6", "locust"])
def test_closed_model_steps_are_the_configured_user_levels(plans, tool):
    steps = plans[tool].steps
    assert steps["concurrency"].to_list() == [5, 10, 20, 40, 60, 80, 100]
    assert steps["steady_s"].min() >= 16  # 20 s steps, transition and 3 s settling dropped


@pytest.mark.parametrize("tool", ["k6", "locust", "artillery"])
def test_step_throughput_matches_the_servers_own_count(plans, tool):
    measured = plans[tool].steps["throughput_rps"].to_list()
    for ours, server in zip(measured, SERVER_STEP_RPS[tool], strict=False):
        assert ours == pytest.approx(server, rel=0.05)


@pytest.mark.parametrize("tool", ["k6", "artillery", "locust"])
def test_users_per_instance_is_consistent_with_the_slo(plans, tool):
    plan = plans[tool]
    assert plan.slo_status == "met-then-broken"
    low, high = plan.users_per_instance_range
    assert low <= plan.users_per_instance <= high
    steps = plan.steps
    below = steps.filter(pl.col("concurrency") <= low)
    above = steps.filter(pl.col("concurrency") >= high)
    assert below.height and above.height
    assert (below["p95_ms"] < 500).all() and (below["error_rate"] <= 0.01).all()
    assert (above["p95_ms"] >= 500).any() and not above["slo_ok"].any()
    assert below["slo_ok"].all()
    # The route by request rate uses the best throughput delivered within the SLO.
    assert plan.rps_per_instance >= below["throughput_rps"].max()


def test_k6_step_percentiles_are_exact_from_the_raw_samples(plans, ramp_store):
    path, ids = ramp_store
    plan = plans["k6"]
    samples = perfstats.load(ids["k6"], db=path).samples().with_columns(
        pl.col("ts").dt.convert_time_zone("UTC"))
    for step in plan.steps.iter_rows(named=True):
        lo = step["end"] - timedelta(seconds=step["steady_s"])
        values = samples.filter((pl.col("ts") >= lo) & (pl.col("ts") < step["end"]))["value"]
        assert values.len() == step["requests"]
        for q in (50, 95, 99):
            exact = float(np.quantile(values.to_numpy(), q / 100))
            assert step[f"p{q}_ms"] == pytest.approx(exact, rel=1e-9)


@pytest.mark.parametrize("tool", ["k6", "locust"])
def test_littles_law_holds_on_the_closed_model_runs(plans, tool):
    plan = plans[tool]
    assert plan.little["model"] == "closed" and plan.little["flagged_steps"] == []
    ratios = plan.steps["little_ratio"].to_numpy()
    assert np.all(np.abs(ratios - 1) < 0.05)


def test_the_knee_is_reported_three_ways(plans):
    knee = plans["k6"].knee
    # Kneedle: p95 turns up after 40 VUs; the SLO breaks between 40 and 60; USL N* ~ 47.
    assert knee["kneedle"] == 40
    assert 40 < knee["slo_crossing"] < 60
    assert 40 < knee["usl_n_star"] < 60


def test_instances_by_users_and_by_request_rate(plans):
    plan = plans["k6"]
    users = plan.instances["users"]
    assert users["instances"] == instances_needed(2000, plan.users_per_instance)
    low, high = plan.users_per_instance_range
    assert users["range"] == [instances_needed(2000, high), instances_needed(2000, low)]
    rps = plan.instances["rps"]
    assert rps["instances"] == instances_for_rps(1000, plan.rps_per_instance)
    assert rps["range"][0] <= rps["instances"] <= rps["range"][1]


def test_open_model_has_no_users_route_without_a_given_users_per_instance(plans, ramp_store):
    plan = plans["artillery"]
    assert plan.concurrency == "requests in flight"
    assert plan.instances["users"]["instances"] is None
    assert any("open-model run" in w for w in plan.warnings)
    path, ids = ramp_store
    given = capacity(ids["artillery"], db=path, peak_users=2000, users_per_instance=40)
    assert given.instances["users"]["instances"] == 75


def test_slo_never_met(ramp_store):
    path, ids = ramp_store
    plan = capacity(ids["k6"], db=path, slo="p95<100", peak_users=1000, target_rps=500)
    assert plan.slo_status == "never-met"
    assert plan.users_per_instance is None and plan.rps_per_instance is None
    assert plan.instances["users"]["instances"] is None
    # At least this many: even the lowest load (5 VUs) broke the SLO.
    assert plan.instances["users"]["range"] == [instances_needed(1000, 5), None]
    assert not plan.steps["slo_ok"].any()


def test_slo_never_broken(ramp_store):
    path, ids = ramp_store
    plan = capacity(ids["k6"], db=path, slo="p95<5s", peak_users=1000)
    assert plan.slo_status == "never-broken"
    assert plan.users_per_instance == 100  # a lower bound: the largest tested load
    assert plan.instances["users"]["instances"] == instances_needed(1000, 100)
    assert plan.instances["users"]["range"] == [None, instances_needed(1000, 100)]
    assert any("lower bound" in w for w in plan.warnings)


def test_per_endpoint_slo_and_error_budget(ramp_store):
    path, ids = ramp_store
    plan = capacity(ids["k6"], db=path, slo={"*": "p95<500", "POST /api/quote": "p95<900"})
    assert set(plan.slo) == {"ALL", "POST /api/quote"}
    whole = capacity(ids["k6"], db=path)
    assert plan.users_per_instance <= whole.users_per_instance
    strict = capacity(ids["k6"], db=path, error_budget=0.0)
    # No failed request at 5 and 10 VUs; 5 injected HTTP 500s at 20 VUs.
    assert strict.users_per_instance == 10 and strict.users_per_instance_range == (10, 20)
    assert strict.steps["slo_broken_by"][2] == "error_rate <= 0%"
    with pytest.raises(ConfigError, match="not both"):
        capacity(ids["k6"], db=path, slo="p95<500, errors<1%", error_budget=0.02)
    with pytest.raises(ConfigError, match="does not have"):
        capacity(ids["k6"], db=path, slo={"GET /nope": "p95<500"})
    with pytest.raises(ConfigError, match="unknown metric"):
        capacity(ids["k6"], db=path, slo="p97<500")


def test_a_run_without_steps_is_refused():
    with pytest.raises(InsufficientDataError, match="load step"):
        capacity(DATA / "k6" / "smoke")


def test_plan_outputs(plans):
    plan = plans["k6"]
    data = json.loads(json.dumps(plan.to_dict(), allow_nan=False))
    for key in ("users_per_instance", "rps_per_instance", "instances", "knee", "steps", "usl",
                "assumptions"):
        assert key in data
    assert set(data["usl"]) >= {"sigma", "kappa", "lambda", "n_star", "x_max", "ci"}
    assert len(data["steps"]) == 7 and data["steps"][0]["concurrency"] == 5
    markdown = plan.to_markdown()
    assert "### Load steps" in markdown and "### Assumptions" in markdown
    assert "Capacity plan" in plan._repr_html_()
    spec = plan.chart().to_dict()
    assert len(spec["vconcat"]) == 2
    assert "area" in json.dumps(spec["vconcat"][0])  # the USL band


def test_cli_json_table_markdown_and_exit_codes(ramp_store):
    path, ids = ramp_store
    runner = CliRunner()
    base = ["capacity", ids["locust"], "--db", str(path)]
    result = runner.invoke(cli, [*base, "--peak-users", "2000", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["instances"]["users"]["instances"] == instances_needed(
        2000, data["users_per_instance"])
    table = runner.invoke(cli, [*base, "--peak-users", "2000", "--target-rps", "500"])
    assert table.exit_code == 0 and "Per instance at the SLO" in table.output
    markdown = runner.invoke(cli, [*base, "--format", "markdown", "--safety-factor", "1.2"])
    assert markdown.exit_code == 0 and markdown.output.startswith("## Capacity plan")
    never = runner.invoke(cli, [*base, "--slo", "p95<10"])
    assert never.exit_code == 1
    bad = runner.invoke(cli, [*base, "--slo", "p95>10"])
    assert bad.exit_code == 2 and "bad SLO" in bad.output


def test_the_answer_comes_first_in_words(plans):
    """The k6 ramp: instances with their range, the capacity of one instance at the SLO, what
    limits it; then the evidence explains X_max beside the measured req/s and the USL terms."""
    plan = plans["k6"]
    title, instances, by_rate, per_instance, limit = plan.findings()
    assert by_rate.startswith("Instances needed: ") and "1,000 target req/s" in by_rate
    assert title.startswith(f"Capacity plan for run {plan.run_id} (k6) at the SLO p95 < 500 ms")
    assert instances.startswith("Instances needed: ")
    entry = plan.instances["users"]
    assert f"{entry['instances']} (range {entry['range'][0]} to {entry['range'][1]})" in instances
    assert per_instance.startswith(f"Per instance at the SLO: {plan.users_per_instance:.3g} users")
    assert "req/s" in per_instance
    assert limit.startswith("Limiting factor: p95 < 500 ms first broke at the step at 60 users")
    evidence = " ".join(plan.evidence())
    assert "X_max" in evidence and "is measured (the best step within the SLO)" in evidence
    assert "no serial part (sigma 0)" in evidence and "no Amdahl ceiling" in evidence
    assert "response time + think time" in evidence
    assert "inf" not in plan._repr_html_().replace("info", "")
    markdown = plan.to_markdown()
    assert markdown.index("Instances needed") < markdown.index("### Evidence") < markdown.index(
        "### Load steps") < markdown.index("### Assumptions")


def test_without_a_peak_the_missing_input_is_named(ramp_store, monkeypatch):
    path, ids = ramp_store
    monkeypatch.setenv("COLUMNS", "100")
    result = CliRunner().invoke(cli, ["capacity", ids["k6"], "--db", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 100  # every line wrapped to the terminal, words kept whole
    assert lines[1].startswith("Instances needed: not computed: the expected peak is missing; ")
    assert "give --peak-users N (concurrent users)" in " ".join(lines[1:3])
    assert lines[3].startswith("Per instance at the SLO")


def test_both_charts_share_one_x_range_and_knees_have_a_legend(plans):
    spec = plans["k6"].chart().to_dict()
    domains = {tuple(layer["encoding"]["x"]["scale"]["domain"]) for panel in spec["vconcat"]
               for layer in panel["layer"] if "field" in layer["encoding"].get("x", {})}
    assert len(domains) == 1 and next(iter(domains))[0] == 0
    texts = [layer for panel in spec["vconcat"] for layer in panel["layer"]
             if layer["mark"]["type"] == "text"]
    assert all(t["encoding"]["text"]["field"] == "label" for t in texts)  # only the SLO's
    knees = [layer for layer in spec["vconcat"][0]["layer"] if "color" in layer["encoding"]]
    assert knees and knees[0]["encoding"]["color"]["legend"]["orient"] == "bottom"


def test_a_grpc_request_type_is_not_server_throughput_unless_asked(sample_runs):
    # data/locust-distributed: 5,768 requests of which 502 grpc (events.request.fire, never sent
    # to the HTTP server); the run has one load step, so the rebuilt windows are checked here.
    from perfstats.planning.traffic import counted, server_windows

    run = sample_runs["locust-distributed/baseline"]
    traffic = counted(run)
    grpc = run.summary().filter(pl.col("protocol") == "grpc")
    assert traffic.left_out == {grpc["endpoint"].item(): "grpc"}
    assert traffic.left_out_requests == grpc["count"].item() > 0
    assert "--include-protocol grpc" in traffic.sentence()
    # The tool's whole-run row adds both protocols up, and says so.
    assert run.summary().filter(pl.col("endpoint") == "ALL")["protocol"].item() == "http+grpc"
    windows = run.windows()
    whole = windows.filter(pl.col("endpoint") == "ALL")
    server = server_windows(windows, list(traffic.left_out)).filter(pl.col("endpoint") == "ALL")
    http = run.summary().filter((pl.col("protocol") == "http") & (pl.col("endpoint") != "ALL"))
    assert server["count"].sum() == http["count"].sum() == whole["count"].sum() - \
        grpc["count"].item()
    assert server["failures"].sum() == http["failures"].sum()
    assert server.select("start", "users").equals(whole.select("start", "users"))
    asked = counted(run, ["GRPC"])
    assert asked.left_out == {} and asked.included == ("grpc",)
    with pytest.raises(ValueError, match="protocol names"):
        counted(run, "grpc")


@pytest.fixture(scope="module")
def grpc_ramp(tmp_path_factory, stored_runs):
    """data/locust/ramp with its GET /health endpoint relabelled as a grpc request type (the
    same rows, only the name and method changed), so that a stepped run has one."""
    path = tmp_path_factory.mktemp("grpc") / "ramp.duckdb"
    (run_id,) = stored_runs.copy(path, "locust/ramp")
    store = perfstats.Store(path)
    with store.connect(write=True) as con:
        for table in ("summaries", "windows", "histograms", "errors"):
            con.execute(f"UPDATE {table} SET endpoint = 'grpc health.Check' "
                        "WHERE endpoint = 'GET /health' AND run_id = ?", [run_id])
        con.execute("UPDATE summaries SET method = 'grpc' WHERE endpoint = 'grpc health.Check'")
    return path, run_id


def test_capacity_leaves_grpc_out_of_throughput_unless_included(grpc_ramp):
    path, run_id = grpc_ramp
    default = capacity(run_id, db=path, target_rps=1000)
    counted_too = capacity(run_id, db=path, target_rps=1000, include_protocols=["grpc"])
    runner = CliRunner()
    cli_json = json.loads(runner.invoke(cli, ["capacity", run_id, "--db", str(path),
                                              "--target-rps", "1000", "--include-protocol",
                                              "grpc", "--format", "json"]).output)
    windows = perfstats.load(run_id, db=path).windows()
    health = windows.filter(pl.col("endpoint") == "grpc health.Check")["count"].sum()
    assert health > 0
    a, b = default.steps, counted_too.steps
    assert a["step"].to_list() == b["step"].to_list()
    # Every step loses the grpc requests, and only them.
    assert (a["throughput_rps"] < b["throughput_rps"]).all()
    assert any("grpc" in w and "--include-protocol grpc" in w for w in default.warnings)
    assert any("grpc" in line for line in default.assumptions)
    assert not any("left out" in w for w in counted_too.warnings)
    assert cli_json["inputs"]["include_protocols"] == ["grpc"]
    assert cli_json["rps_per_instance"] == pytest.approx(counted_too.rps_per_instance)
    assert default.rps_per_instance < counted_too.rps_per_instance
    # The steps' percentiles without the grpc requests are a labelled estimate.
    assert default.steps["p95_ms"].is_not_null().all()
