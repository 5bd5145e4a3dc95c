"""SLO expressions: the grammar of perfstats.slo."""

from __future__ import annotations

import pytest

from perfstats.errors import ConfigError
from perfstats.slo import Objective, format_slo, parse_endpoint_slos, parse_slo


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
    assert [(o.metric, o.op, pytest.approx(o.threshold)) for o in parse_slo(text)] == expected


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
