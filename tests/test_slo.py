"""SLOs: the grammar of perfstats.slo and its meaning for compare, capacity and bottlenecks."""

from __future__ import annotations

import pytest

from perfstats.errors import ConfigError
from perfstats.slo import (
    ERROR_RATE,
    LatencySlo,
    Objective,
    breaches,
    capacity_objectives,
    compare_slos,
    format_slo,
    latency_slo_for,
    latency_slos,
    parse_endpoint_slos,
    parse_selector,
    parse_slo,
)


@pytest.mark.parametrize("text, expected", [
    ("p95<500", [("p95", "<", 500.0)]),
    ("p99 <= 1.2s", [("p99", "<=", 1200.0)]),
    ("P95 < 250ms", [("p95", "<", 250.0)]),
    ("median<80, max<2s", [("p50", "<", 80.0), ("max", "<", 2000.0)]),
    ("p95<500 and errors<1%", [("p95", "<", 500.0), ("error_rate", "<", 0.01)]),
    ("avg<100 && error_rate<=0.005", [("mean", "<", 100.0), ("error_rate", "<=", 0.005)]),
    ("p90<.5s; err<0.5%", [("p90", "<", 500.0), ("error_rate", "<", 0.005)]),
])
def test_parse(text, expected):
    assert [(o.aggregation, o.op, pytest.approx(o.threshold)) for o in parse_slo(text)] == expected


@pytest.mark.parametrize("text, match", [
    ("", "bad SLO"),
    ("p95>500", "expected METRIC < VALUE"),
    ("p97<500", "unknown metric"),
    ("p95<500%", "not %"),
    ("errors<5ms", "no time unit"),
    ("errors<150%", "between 0 and 1"),
    ("p95<0", "must be > 0"),
    ("p95<500,", "bad SLO clause"),
])
def test_bad_expressions(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_slo(text)


def test_holds_and_text():
    strict, loose = Objective("p95", "<", 500.0), Objective("p95", "<=", 500.0)
    assert not strict.holds(500.0) and loose.holds(500.0) and not loose.holds(float("nan"))
    assert format_slo(parse_slo("p95<500, errors<1%")) == "p95 < 500 ms, error_rate < 1%"


def test_per_endpoint_mapping_names_the_bad_endpoint():
    parsed = parse_endpoint_slos({"*": "p95<500", "POST /api/quote": "p99<1s"},
                                 default_endpoint="ALL")
    assert parsed["POST /api/quote"] == (Objective("p99", "<", 1000.0),)
    assert parse_endpoint_slos("p95<500", default_endpoint="ALL") == {
        "ALL": (Objective("p95", "<", 500.0),)}
    with pytest.raises(ConfigError, match="'GET /x'"):
        parse_endpoint_slos({"GET /x": "p95>1"}, default_endpoint="ALL")
    with pytest.raises(TypeError):
        parse_endpoint_slos(500, default_endpoint="ALL")  # type: ignore[arg-type]


# ----------------------------------------------------------- metrics and k6 tag selectors


def test_selector():
    assert parse_selector("http_req_duration") == ("http_req_duration", ())
    assert parse_selector("http_req_duration{scenario:browse, method:GET}") == (
        "http_req_duration", (("scenario", "browse"), ("method", "GET")))
    for bad in ("", "a b", "checks{scenario}", "checks{}", "checks{:x}"):
        with pytest.raises(ConfigError, match="bad metric"):
            parse_selector(bad)


def test_expression_about_another_metric():
    (checks,) = parse_slo("rate>0.98", metric="checks{scenario:browse}")
    assert (checks.metric, checks.tags, checks.aggregation, checks.op) == (
        "checks", (("scenario", "browse"),), "rate", ">")
    assert checks.holds(0.99) and not checks.holds(0.98) and not checks.is_latency
    assert str(checks) == "checks{scenario:browse}: rate > 98%"
    (count,) = parse_slo("count>=500", metric="iterations")
    assert count.holds(500) and not count.holds(499) and str(count) == "iterations: count >= 500"
    with pytest.raises(ConfigError, match="unknown metric"):
        parse_slo("error_rate<1%", metric="checks")  # the requests' error rate only
    with pytest.raises(ConfigError, match="no unit"):
        parse_slo("count<5ms", metric="iterations")


# ------------------------------------------------------------------ the meaning per command


def test_compare_breach_is_per_check():
    slos = compare_slos({"*": "p(95)<800, rate<0.01", "POST /api/*": "p95<300"})
    assert [(g, str(o)) for g, o in slos] == [
        ("*", "p95 < 800 ms"), ("*", "error_rate < 1%"), ("POST /api/*", "p95 < 300 ms")]
    assert [str(o) for o in breaches(slos, endpoint="POST /api/quote", aggregation="p95",
                                     value=400.0)] == ["p95 < 300 ms"]
    assert breaches(slos, endpoint="GET /", aggregation="p95", value=400.0) == []
    assert breaches(slos, endpoint="GET /", aggregation="p99", value=9e9) == []  # no p99 SLO
    assert breaches(slos, endpoint="GET /", aggregation=ERROR_RATE, value=float("nan")) == []
    assert compare_slos({}) == ()
    with pytest.raises(ConfigError, match="expected a table"):
        compare_slos(3)  # type: ignore[arg-type]


def test_capacity_adds_the_error_budget_once():
    plain = capacity_objectives("p95<500", None, all_requests="ALL")
    assert plain == {"ALL": (Objective("p95", "<", 500.0), Objective(ERROR_RATE, "<=", 0.01))}
    mixed = capacity_objectives({"*": "p95<500", "GET /a": "p99<1s, errors<2%"}, None,
                                all_requests="ALL")
    assert list(mixed) == ["ALL", "GET /a"] and len(mixed["ALL"]) == 1  # an error clause given
    assert capacity_objectives("p95<500", 0.05, all_requests="ALL")["ALL"][1].threshold == 0.05
    with pytest.raises(ConfigError, match="once"):
        capacity_objectives("p95<500, errors<1%", 0.02, all_requests="ALL")
    with pytest.raises(ValueError):
        capacity_objectives("p95<500", 2.0, all_requests="ALL")


def test_bottlenecks_take_the_strictest_latency_threshold():
    assert latency_slos("p95<500") == [LatencySlo(500.0, "p95")]
    assert latency_slos(250) == [LatencySlo(250.0, "max")]
    assert latency_slos("300ms") == [LatencySlo(300.0, "max")]
    assert latency_slos("p99<1.2s, p95<400, errors<1%") == [LatencySlo(400.0, "p95")]
    both = latency_slos({"*": "p95<500", "POST /b": "p99<900"})
    assert both == [LatencySlo(500.0, "p95", "*"), LatencySlo(900.0, "p99", "POST /b")]
    assert latency_slo_for("POST /b", both) == both[1]  # the last matching glob wins
    assert latency_slo_for("GET /a", both) == both[0]
    for bad in ("p95>500", "fast", "errors<1%", "0"):
        with pytest.raises(ConfigError):
            latency_slos(bad)
