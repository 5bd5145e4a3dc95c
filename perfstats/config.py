"""Project configuration: ``perfstats.toml`` or ``[tool.perfstats]`` in ``pyproject.toml``.

The file is looked for in the working directory and its parents; the first ``perfstats.toml``, or
``pyproject.toml`` with a ``[tool.perfstats]`` table, wins. ``perfstats compare`` reads its
``compare`` table::

    [compare]                      # in pyproject.toml: [tool.perfstats.compare]
    alpha = 0.05                   # chance of a false NO-GO when nothing changed
    floor_ms = 2                   # latency changes below this are never regressions
    resamples = 2000               # bootstrap resamples per run
    seed = 0
    window_s = "auto"              # or seconds; auto = about 30 windows per run
    endpoints = ["POST /api/*"]    # only these (globs); default: all
    ignore = ["GET /health"]       # never these

    [compare.tolerances]           # worse-direction margins
    p95 = "10%"                    # or 0.10
    p99 = "20%"
    throughput = "10%"             # a drop of 10 %
    error_rate = "0.5pp"           # percentage points (or 0.005)

    [thresholds]                   # k6's syntax, on any tool; a failure fails the gate
    "http_req_duration{scenario:booking_flow}" = ["p(95)<300"]
    booking_success_rate = ["rate>0.98"]

    [compare.worse_when]           # which way a custom metric is worse (default: from its name)
    cache_hit_rate = "lower"       # "higher", "lower" or "either"

    [compare.slo]                  # absolute objectives; glob -> expression
    "*" = "p(95)<800, rate<0.01"   # k6 style
    "POST /api/quote" = "p95<300"  # perfstats style

SLO expressions are those of :func:`perfstats.slo.parse_slo`, k6 spelling included: ``p(95)`` for
``p95``, ``med`` for ``p50``, ``avg`` for ``mean`` and ``rate`` for the error rate.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfstats.errors import ConfigError
from perfstats.slo import Objective, compare_slos
from perfstats.stats.drift import DEFAULT_TOLERANCES, DriftSettings
from perfstats.thresholds import Threshold, parse_thresholds

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_FILE = "perfstats.toml"

_KNOWN_KEYS = {"alpha", "floor_ms", "resamples", "seed", "window_s", "endpoints", "ignore",
               "tolerances", "slo", "min_tail", "min_windows", "worse_when", "slices",
               "declared_thresholds"}
_WORSE_WHEN = ("higher", "lower", "either")


def _fraction(value: Any, *, key: str, points: bool = False) -> float:
    """``0.1``, ``"10%"`` -> 0.1; with ``points``, ``"0.5pp"``/``"0.5%"`` -> 0.005."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a number or a percentage, got {value!r}")
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(%|pp)?\s*", value)
        if match is None or (match[2] == "pp" and not points):
            unit = "'0.5pp', '0.5%' or 0.005" if points else "'10%' or 0.1"
            raise ConfigError(f"{key}: expected e.g. {unit}, got {value!r}")
        out = float(match[1]) / (100.0 if match[2] else 1.0)
    else:
        raise ConfigError(f"{key}: expected a number or a percentage, got {value!r}")
    if not math.isfinite(out) or out < 0:
        raise ConfigError(f"{key}: must be a non-negative number, got {value!r}")
    return out


@dataclass(frozen=True)
class CompareConfig:
    """Settings of ``perfstats compare``.

    Attributes:
        alpha: the chance of a false NO-GO when nothing changed (the testing design of
            :mod:`perfstats.stats.procedure`).
        tolerances: worse-direction margins per metric (fractions; error rate in absolute 0-1).
        floor_ms: latency changes smaller than this are never regressions.
        slos: ``(endpoint glob, objective)`` pairs; a breach fails the gate on its own.
        endpoints: globs of the endpoints to compare (empty: all).
        ignore: globs of endpoints to leave out.
        window_s: window length in seconds for raw samples; None for about 30 windows per run.
        resamples: bootstrap resamples per run.
        seed: bootstrap seed.
        min_tail: a ``q`` percentile needs ``min_tail / (1 - q)`` requests.
        min_windows: fewest windows for a bootstrap or window-level test.
        worse_when: metric name -> ``higher``, ``lower`` or ``either``: which way a custom
            metric is worse (default: inferred from the name, see docs/compare.md).
        slices: compare per-scenario slices when a run has several scenarios.
        thresholds: ``[thresholds]`` in k6's syntax; one that fails on the candidate fails the
            gate (a check of kind ``threshold``, status ``slo_breach``).
        declared_thresholds: re-evaluate the thresholds the candidate run declared (k6) and
            show them beside the tool's own verdict (they do not change the verdict).
        source: the file the settings came from, if any.
    """

    alpha: float = 0.05
    tolerances: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    floor_ms: float = 2.0
    slos: tuple[tuple[str, Objective], ...] = ()
    endpoints: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    window_s: float | None = None
    resamples: int = 2000
    seed: int = 0
    min_tail: float = 10.0
    min_windows: int = 5
    worse_when: Mapping[str, str] = field(default_factory=dict)
    slices: bool = True
    thresholds: tuple[Threshold, ...] = ()
    declared_thresholds: bool = True
    source: str | None = None

    def drift_settings(self) -> DriftSettings:
        """The statistical settings (validated)."""
        return DriftSettings(alpha=self.alpha, tolerances=dict(self.tolerances),
                             floor_ms=self.floor_ms, resamples=self.resamples, seed=self.seed,
                             min_tail=self.min_tail, min_windows=self.min_windows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings (as echoed in a comparison's JSON)."""
        return {
            "alpha": self.alpha,
            "tolerances": dict(self.tolerances),
            "floor_ms": self.floor_ms,
            "slo": [{"endpoint": g, "metric": o.aggregation, "op": o.op, "threshold": o.threshold}
                    for g, o in self.slos],
            "endpoints": list(self.endpoints),
            "ignore": list(self.ignore),
            "window_s": self.window_s,
            "resamples": self.resamples,
            "seed": self.seed,
            "worse_when": dict(self.worse_when),
            "slices": self.slices,
            "thresholds": [{"metric": t.metric, "expression": t.expression}
                           for t in self.thresholds],
            "declared_thresholds": self.declared_thresholds,
            "source": self.source,
        }


def _globs(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{key}: expected a glob or a list of globs, got {value!r}")


def compare_config(table: Mapping[str, Any] | None = None, *, source: str | None = None,
                   thresholds: Mapping[str, Any] | None = None,
                   **overrides: Any) -> CompareConfig:
    """Build a :class:`CompareConfig` from a ``compare`` table and keyword overrides.

    Args:
        table: the ``[compare]`` table as read from TOML (values as in the module docstring).
        source: where the table came from, for messages.
        thresholds: the ``[thresholds]`` table: k6 selector -> expression or list of them.
        **overrides: any :class:`CompareConfig` field; ``endpoints``/``ignore`` extend the file's,
            ``slo`` (a mapping glob -> expression, or one expression for ``*``) replaces it.

    Raises:
        ConfigError: an unknown key or a bad value (named with the file in the message).
    """
    table = dict(table or {})
    where = f"{source}: " if source else ""
    unknown = set(table) - _KNOWN_KEYS
    if unknown:
        raise ConfigError(f"{where}unknown compare setting(s) {sorted(unknown)}; known: "
                          f"{sorted(_KNOWN_KEYS)}")
    values: dict[str, Any] = {"source": source}
    try:
        if "alpha" in table:
            values["alpha"] = _fraction(table["alpha"], key="alpha")
        if "floor_ms" in table:
            values["floor_ms"] = _fraction(table["floor_ms"], key="floor_ms")
        for key in ("resamples", "seed", "min_windows"):
            if key in table:
                if not isinstance(table[key], int) or isinstance(table[key], bool):
                    raise ConfigError(f"{key}: expected an integer, got {table[key]!r}")
                values[key] = table[key]
        if "min_tail" in table:
            values["min_tail"] = _fraction(table["min_tail"], key="min_tail")
        if "window_s" in table and table["window_s"] != "auto":
            values["window_s"] = _fraction(table["window_s"], key="window_s")
            if values["window_s"] <= 0:
                raise ConfigError("window_s: must be > 0 or 'auto'")
        tolerances = dict(DEFAULT_TOLERANCES)
        raw_tol = table.get("tolerances", {})
        if not isinstance(raw_tol, Mapping):
            raise ConfigError(f"tolerances: expected a table, got {raw_tol!r}")
        for metric, value in raw_tol.items():
            if metric not in DEFAULT_TOLERANCES:
                raise ConfigError(f"tolerances: unknown metric {metric!r}; use one of "
                                  f"{sorted(DEFAULT_TOLERANCES)}")
            tolerances[metric] = _fraction(value, key=f"tolerances.{metric}",
                                           points=metric in ("error_rate", "rate"))
        values["tolerances"] = tolerances
        values["slos"] = compare_slos(table.get("slo", {}))
        values["worse_when"] = _worse_when(table.get("worse_when", {}))
        for key in ("slices", "declared_thresholds"):
            if key in table:
                if not isinstance(table[key], bool):
                    raise ConfigError(f"{key}: expected true or false, got {table[key]!r}")
                values[key] = table[key]
        values["endpoints"] = _globs(table.get("endpoints", ()), "endpoints")
        values["ignore"] = _globs(table.get("ignore", ()), "ignore")
    except ConfigError as exc:
        raise ConfigError(f"{where}compare.{exc}") from None
    if thresholds:
        try:
            values["thresholds"] = parse_thresholds(thresholds)
        except ConfigError as exc:
            raise ConfigError(f"{where}{exc}") from None
    for key in ("endpoints", "ignore"):
        if overrides.get(key):
            values[key] = tuple(values.get(key, ())) + tuple(overrides.pop(key))
        overrides.pop(key, None)
    if overrides.get("slo") is not None:
        values["slos"] = compare_slos(overrides.pop("slo"))
    overrides.pop("slo", None)
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = CompareConfig(**values)
    try:
        config.drift_settings()  # validate ranges early
    except ValueError as exc:
        raise ConfigError(f"{where}compare: {exc}") from None
    return config


def _worse_when(spec: Any) -> dict[str, str]:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"worse_when: expected a table metric -> 'higher' | 'lower' | "
                          f"'either', got {spec!r}")
    out = {}
    for metric, value in spec.items():
        if value not in _WORSE_WHEN:
            raise ConfigError(f"worse_when.{metric}: expected 'higher', 'lower' or 'either', "
                              f"got {value!r}")
        out[str(metric)] = str(value)
    return out


def find_config(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The first ``perfstats.toml``, or ``pyproject.toml`` with ``[tool.perfstats]``, from
    ``start`` (default: the working directory) upwards; None if there is none."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "perfstats" in _read_toml(pyproject).get("tool", {}):
            return pyproject
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from None


def read_config(path: str | os.PathLike[str] | None = None) -> tuple[dict[str, Any], str | None]:
    """The perfstats settings table and its file (``{}, None`` when no file is found).

    Args:
        path: a ``perfstats.toml`` or ``pyproject.toml``; None searches from the working
            directory upwards (:func:`find_config`).
    """
    found = Path(path) if path is not None else find_config()
    if found is None:
        return {}, None
    if not found.is_file():
        raise ConfigError(f"{found}: configuration file not found")
    data = _read_toml(found)
    if found.name == "pyproject.toml":
        data = data.get("tool", {}).get("perfstats", {})
    if not isinstance(data, dict):
        raise ConfigError(f"{found}: [tool.perfstats] must be a table")
    return data, str(found)


def load_compare_config(path: str | os.PathLike[str] | None = None,
                        **overrides: Any) -> CompareConfig:
    """The ``compare`` settings from the configuration file (see the module docstring).

    Args:
        path: the file; None searches from the working directory upwards.
        **overrides: see :func:`compare_config`.

    Example:
        >>> load_compare_config(alpha=0.01).alpha  # doctest: +SKIP
        0.01
    """
    data, source = read_config(path)
    table = data.get("compare", {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: compare must be a table")
    return compare_config(table, source=source, thresholds=data.get("thresholds"), **overrides)
