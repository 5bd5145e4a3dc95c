"""Configuration of compare: perfstats.toml / [tool.perfstats], SLO expressions in both styles."""

from __future__ import annotations

import pytest

from perfstats.config import (
    compare_config,
    find_config,
    load_compare_config,
    read_config,
)
from perfstats.errors import ConfigError
from perfstats.slo import parse_slo

EXAMPLE = """
[compare]
alpha = 0.01
floor_ms = 5
resamples = 1000
seed = 7
window_s = 5
endpoints = ["POST /api/*"]
ignore = ["GET /health"]

[compare.tolerances]
p95 = "15%"
p99 = 0.2
throughput = "5%"
error_rate = "1pp"

[compare.slo]
"*" = "p(95)<800, rate<0.01"
"POST /api/quote" = "p95 < 300 && med<100"
"""


def test_k6_and_perfstats_slo_spellings():
    assert [str(o) for o in parse_slo("p(95)<500")] == ["p95 < 500 ms"]
    assert [str(o) for o in parse_slo("p(99) <= 1.5s && rate<0.01")] == [
        "p99 <= 1500 ms", "error_rate < 1%"]
    assert [str(o) for o in parse_slo("med<100, avg<80, error_rate<1%")] == [
        "p50 < 100 ms", "mean < 80 ms", "error_rate < 1%"]
    for bad in ("p(95)>500", "rate<5s", "latency<3", ""):
        with pytest.raises(ConfigError):
            parse_slo(bad)


def test_perfstats_toml_is_found_from_a_subdirectory(tmp_path, monkeypatch):
    (tmp_path / "perfstats.toml").write_text(EXAMPLE)
    sub = tmp_path / "ci" / "perf"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert find_config() == tmp_path / "perfstats.toml"
    config = load_compare_config()
    assert config.source == str(tmp_path / "perfstats.toml")
    assert config.alpha == 0.01 and config.floor_ms == 5 and config.resamples == 1000
    assert config.seed == 7 and config.window_s == 5
    assert config.tolerances["p95"] == pytest.approx(0.15)
    assert config.tolerances["p99"] == pytest.approx(0.2)
    assert config.tolerances["throughput"] == pytest.approx(0.05)
    assert config.tolerances["error_rate"] == pytest.approx(0.01)
    assert config.tolerances["mean"] == pytest.approx(0.10)  # default kept
    assert config.endpoints == ("POST /api/*",) and config.ignore == ("GET /health",)
    slos = [(glob, str(o)) for glob, o in config.slos]
    assert ("*", "p95 < 800 ms") in slos and ("*", "error_rate < 1%") in slos
    assert ("POST /api/quote", "p50 < 100 ms") in slos
    settings = config.drift_settings()
    assert settings.alpha == 0.01 and settings.tolerance("p95") == pytest.approx(0.15)


def test_pyproject_tool_table_and_overrides(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n\n[tool.perfstats.compare]\nalpha = 0.1\nignore = 'GET /x'\n")
    monkeypatch.chdir(tmp_path)
    config = load_compare_config(ignore=["GET /y"], slo="p99<2s")
    assert config.alpha == 0.1
    assert config.ignore == ("GET /x", "GET /y")
    assert [(g, str(o)) for g, o in config.slos] == [("*", "p99 < 2000 ms")]
    data, source = read_config()
    assert source == str(tmp_path / "pyproject.toml") and "compare" in data


def test_no_file_gives_the_calibrated_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if find_config() is None:
        config = load_compare_config()
        assert config.source is None
        assert config.alpha == 0.05 and config.resamples == 2000 and config.window_s is None
    explicit = compare_config()
    assert explicit.tolerances["error_rate"] == 0.005 and explicit.floor_ms == 2.0


@pytest.mark.parametrize("table", [
    {"alpha": 2.0},
    {"alpah": 0.1},
    {"tolerances": {"p42": 0.1}},
    {"tolerances": {"p95": "10pp"}},
    {"tolerances": {"error_rate": "lots"}},
    {"resamples": 10},
    {"resamples": "many"},
    {"window_s": 0},
    {"slo": {"*": "p95 > 3"}},
    {"endpoints": [1, 2]},
])
def test_bad_settings_are_config_errors(table):
    with pytest.raises((ConfigError, ValueError)):
        compare_config(table, source="perfstats.toml")


def test_bad_file_is_named(tmp_path):
    path = tmp_path / "perfstats.toml"
    path.write_text("[compare\nalpha=")
    with pytest.raises(ConfigError, match="perfstats.toml"):
        load_compare_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_compare_config(tmp_path / "missing.toml")
