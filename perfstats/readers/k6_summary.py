"""k6 end-of-test summaries: ``handleSummary`` data, legacy ``--summary-export`` and the v1.5+
machine-readable summary, normalised into one shape (see FORMATS.md §1.5-1.7).

Normalised stat names, whatever the file wrote: Trends keep k6's names (``avg``, ``min``, ``med``,
``max``, ``p(N)``, ``count``); Rates have ``rate``, ``passes``, ``fails`` (the legacy export's
``value`` and the machine summary's ``matches``/``total`` are converted); Counters ``count`` and
``rate``; Gauges ``value``, ``min``, ``max``.  For ``http_req_failed`` ``passes`` counts *failed*
requests, as in k6.  Threshold ``ok`` is always True when the threshold passed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from perfstats.errors import IngestError
from perfstats.readers.derive import REQUEST_METRIC
from perfstats.readers.detect import (
    K6_MACHINE_SUMMARY,
    K6_SUMMARY,
    K6_SUMMARY_EXPORT,
    json_number,
    load_json,
)

MACHINE_SUMMARY_VERSIONS = ("1.0.0",)
"""Schema versions of the machine-readable summary this reader knows."""

_ENDPOINT_TAGS = {"name", "method", "url"}
_PERCENTILES = {"p50": ("med", "p(50)"), "p90": ("p(90)",), "p95": ("p(95)",),
                "p99": ("p(99)",)}


@dataclass(frozen=True)
class K6Summary:
    """One k6 summary file, normalised.

    Attributes:
        format: the detected format name.
        metrics: metric name (sub-metrics as ``name{tag:value}``) -> ``(type, contains, values)``;
            ``contains`` is None in the legacy export, which does not say.
        thresholds: ``(metric, expression, ok)`` rows, or None when the format has none.
        checks: ``(group path, name, passes, fails)`` rows; group is None when the format does
            not say (machine summary).
        duration_s: test run duration (None when the file does not say).
        tool_version: k6 version (machine summary only).
        generated_at: when k6 wrote the summary, i.e. the end of the run (machine summary only).
        notes: what was inferred rather than read.
        scenarios: the ``options.scenarios`` object (scenario -> options with ``executor``)
            when the file has one (a ``handleSummary`` that passes the script's options on).
    """

    format: str
    metrics: dict[str, tuple[str, str | None, dict[str, float]]]
    thresholds: list[tuple[str, str, bool]] | None
    checks: list[tuple[str | None, str, int, int]]
    duration_s: float | None = None
    tool_version: str | None = None
    generated_at: datetime | None = None
    notes: tuple[str, ...] = ()
    scenarios: dict[str, Any] | None = None

    @property
    def started_at(self) -> datetime | None:
        """Start of the run when the file allows it: generation time minus duration."""
        if self.generated_at is None or self.duration_s is None:
            return None
        return self.generated_at - timedelta(seconds=self.duration_s)

    def value(self, metric: str, stat: str) -> float | None:
        """One stat of one metric, None when absent."""
        entry = self.metrics.get(metric)
        return None if entry is None else entry[2].get(stat)

    def metric_rows(self) -> list[tuple[str, str, str | None, str, float]]:
        """``(metric, type, contains, stat, value)`` rows for the ``metrics`` table."""
        return [(name, kind, contains, stat, value)
                for name, (kind, contains, values) in sorted(self.metrics.items())
                for stat, value in values.items()]

    def endpoint_rows(self) -> list[dict[str, Any]]:
        """``summaries`` rows: one per ``http_req_duration{name:...}`` sub-metric plus ``ALL``.

        The method is not in these files, so the endpoint is the name (``METHOD name`` only when
        the sub-metric also selects a method).  Counts come from the Trend's ``count`` stat, else
        from the matching ``http_reqs`` sub-metric; failures from ``http_req_failed`` (its
        ``passes``).
        """
        rows = []
        for metric in sorted(self.metrics):
            base, tags = split_metric_name(metric)
            if base != REQUEST_METRIC or self.metrics[metric][0] != "trend":
                continue
            if tags and (not set(tags) <= _ENDPOINT_TAGS or not {"name", "url"} & set(tags)):
                continue
            suffix = metric[len(base):]
            name = tags.get("name", tags.get("url"))
            method = tags.get("method")
            endpoint = None if not tags else f"{method} {name}" if method else name
            rows.append(self._endpoint_row(metric, suffix, endpoint, name, method))
        return rows

    def _endpoint_row(self, metric: str, suffix: str, endpoint: str | None, name: str | None,
                      method: str | None) -> dict[str, Any]:
        values = self.metrics[metric][2]
        count = values.get("count", self.value(f"http_reqs{suffix}", "count"))
        failures = self.value(f"http_req_failed{suffix}", "passes")
        rps = None
        if count is not None and self.duration_s:
            rps = count / self.duration_s
        elif endpoint is None:
            rps = self.value("http_reqs", "rate")
        row: dict[str, Any] = {
            "endpoint": endpoint, "tool_name": name, "method": method,
            "count": None if count is None else int(count),
            "failures": None if failures is None else int(failures),
            "min": values.get("min"), "mean": values.get("avg"), "max": values.get("max"),
            "rps": rps, "percentiles": "tool-summary",
        }
        for column, keys in _PERCENTILES.items():
            row[column] = next((values[k] for k in keys if k in values), None)
        return row


def split_metric_name(metric: str) -> tuple[str, dict[str, str]]:
    """``"http_req_duration{name:/a,method:GET}"`` -> ``("http_req_duration", {...})``.

    k6 splits the tag set on ``,`` and each tag on its first ``:`` (``group:::auth`` is the
    group ``::auth``).
    """
    base, brace, rest = metric.partition("{")
    if not brace or not rest.endswith("}"):
        return metric, {}
    tags = {}
    for part in rest[:-1].split(","):
        key, _, value = part.partition(":")
        tags[key.strip()] = value.strip()
    return base, tags


def read_summary(path: Path, fmt: str) -> K6Summary:
    """Parse one k6 summary file of format ``fmt``.

    Raises:
        IngestError: the file is not valid JSON, has an unknown machine-summary version, or a
            part of it has the wrong shape.
    """
    doc = load_json(path)
    if not isinstance(doc, dict):
        raise IngestError(path, "a k6 summary must be a JSON object")
    parse = {K6_SUMMARY: _handle_summary, K6_SUMMARY_EXPORT: _summary_export,
             K6_MACHINE_SUMMARY: _machine_summary}[fmt]
    try:
        return parse(doc)
    except _Version as exc:
        raise IngestError(path, str(exc)) from None
    except _Shape as exc:
        raise IngestError(path, f"not a valid k6 summary ({exc})") from None


class _Shape(Exception):
    """A part of the summary has the wrong shape (message = the reason)."""


class _Version(Exception):
    """A machine-readable summary of a schema version this reader does not know."""


def _expect(condition: bool, reason: str) -> None:
    if not condition:
        raise _Shape(reason)


def _values(name: str, raw: Any) -> dict[str, float]:
    _expect(isinstance(raw, dict), f"metric {name!r}: values must be an object")
    return {k: v for k, v in ((k, json_number(v)) for k, v in raw.items()) if v is not None}


def _metrics_object(doc: dict[str, Any]) -> dict[str, Any]:
    metrics = doc.get("metrics")
    _expect(isinstance(metrics, dict), "'metrics' must be an object")
    for name, metric in metrics.items():
        _expect(isinstance(metric, dict), f"metric {name!r} must be an object")
    return metrics


def _handle_summary(doc: dict[str, Any]) -> K6Summary:
    metrics: dict[str, tuple[str, str | None, dict[str, float]]] = {}
    thresholds: list[tuple[str, str, bool]] = []
    for name, metric in _metrics_object(doc).items():
        kind = metric.get("type")
        _expect(kind in ("counter", "gauge", "rate", "trend"),
                f"metric {name!r}: unknown type {kind!r}")
        metrics[name] = (kind, metric.get("contains"), _values(name, metric.get("values")))
        for expression, result in (metric.get("thresholds") or {}).items():
            _expect(isinstance(result, dict) and isinstance(result.get("ok"), bool),
                    f"metric {name!r}: threshold {expression!r} has no boolean 'ok'")
            thresholds.append((name, expression, result["ok"]))
    state = doc.get("state")
    duration_ms = json_number(state.get("testRunDurationMs")) if isinstance(state, dict) else None
    options = doc.get("options")
    scenarios = options.get("scenarios") if isinstance(options, dict) else None
    return K6Summary(
        format=K6_SUMMARY, metrics=metrics, thresholds=thresholds,
        checks=_group_checks(doc.get("root_group")),
        duration_s=None if duration_ms is None else duration_ms / 1000.0,
        scenarios=scenarios if isinstance(scenarios, dict) else None,
    )


def _export_type(values: dict[str, Any]) -> str:
    """The metric type of a legacy export entry, inferred from its keys (FORMATS.md §1.5)."""
    if "passes" in values and "fails" in values:
        return "rate"
    if "count" in values and "rate" in values:
        return "counter"
    if "value" in values and "min" in values and "max" in values:
        return "gauge"
    return "trend"


def _summary_export(doc: dict[str, Any]) -> K6Summary:
    metrics: dict[str, tuple[str, str | None, dict[str, float]]] = {}
    thresholds: list[tuple[str, str, bool]] = []
    for name, raw in _metrics_object(doc).items():
        kind = _export_type(raw)
        values = _values(name, {k: v for k, v in raw.items() if k != "thresholds"})
        if kind == "rate" and "value" in values:  # the export renames a Rate's rate to value
            values["rate"] = values.pop("value")
        metrics[name] = (kind, None, values)
        raw_thresholds = raw.get("thresholds") or {}
        _expect(isinstance(raw_thresholds, dict), f"metric {name!r}: thresholds must be an object")
        for expression, failed in raw_thresholds.items():
            _expect(isinstance(failed, bool),
                    f"metric {name!r}: threshold {expression!r} must be true or false")
            thresholds.append((name, expression, not failed))  # true means FAILED here
    summary = K6Summary(format=K6_SUMMARY_EXPORT, metrics=metrics, thresholds=thresholds,
                        checks=_group_checks(doc.get("root_group")))
    # The export has no test duration; a Counter's rate is count / duration, so recover it.
    for counter in ("http_reqs", "iterations"):
        count, rate = summary.value(counter, "count"), summary.value(counter, "rate")
        if count and rate:
            return replace(summary, duration_s=count / rate, notes=(
                f"test duration = {counter} count / rate (the legacy export has no duration)",))
    return summary


def _group_checks(group: Any) -> list[tuple[str | None, str, int, int]]:
    """Checks of a group and its sub-groups; groups and checks are arrays (handleSummary) or
    objects keyed by name (legacy export)."""
    if group is None:
        return []
    _expect(isinstance(group, dict), "'root_group' must be an object")
    rows = []
    checks = group.get("checks") or []
    checks = list(checks.values()) if isinstance(checks, dict) else checks
    _expect(isinstance(checks, list), "group checks must be an array or an object")
    path = group.get("path", "")
    rows.extend(_check_row(path, check) for check in checks)
    groups = group.get("groups") or []
    groups = list(groups.values()) if isinstance(groups, dict) else groups
    _expect(isinstance(groups, list), "sub-groups must be an array or an object")
    for sub in groups:
        rows.extend(_group_checks(sub))
    return rows


def _check_row(path: str | None, check: Any) -> tuple[str | None, str, int, int]:
    """One check as ``(group path, name, passes, fails)``, validated."""
    _expect(isinstance(check, dict) and isinstance(check.get("name"), str),
            "a check must be an object with a name")
    passes, fails = json_number(check.get("passes")), json_number(check.get("fails"))
    _expect(passes is not None and fails is not None,
            f"check {check['name']!r}: passes and fails must be numbers")
    return path, check["name"], int(passes), int(fails)


def _machine_summary(doc: dict[str, Any]) -> K6Summary:
    version = doc.get("version")
    if version not in MACHINE_SUMMARY_VERSIONS:
        raise _Version(f"unknown k6 machine-readable summary version {version}")
    results, config, meta = doc.get("results"), doc.get("config"), doc.get("metadata")
    _expect(isinstance(results, dict), "'results' must be an object")
    _expect(isinstance(results.get("metrics", []), list), "'results.metrics' must be an array")
    metrics: dict[str, tuple[str, str | None, dict[str, float]]] = {}
    for metric in results.get("metrics", []):
        _expect(isinstance(metric, dict) and isinstance(metric.get("name"), str),
                "a metric must be an object with a name")
        name, kind = metric["name"], metric.get("type")
        _expect(kind in ("counter", "gauge", "rate", "trend"),
                f"metric {name!r}: unknown type {kind!r}")
        values = _values(name, metric.get("values"))
        if kind == "rate" and "matches" in values and "total" in values:
            matches, total = values.pop("matches"), values.pop("total")
            values.update(passes=matches, fails=total - matches)
        metrics[name] = (kind, metric.get("contains"), values)
    checks_part = results.get("checks") or {}
    _expect(isinstance(checks_part, dict), "'results.checks' must be an object")
    checks = []
    checks.extend(_check_row(None, check) for check in checks_part.get("results") or [])
    duration = json_number(config.get("duration")) if isinstance(config, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    generated = _rfc3339(meta["generatedAt"]) if "generatedAt" in meta else None
    version_text = meta.get("k6Version")
    return K6Summary(
        format=K6_MACHINE_SUMMARY, metrics=metrics, thresholds=None, checks=checks,
        duration_s=duration, tool_version=str(version_text).lstrip("v") if version_text else None,
        generated_at=generated,
    )


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", re.I)


def _rfc3339(text: Any) -> datetime:
    """Go's RFC 3339 time (0-9 fraction digits, ``Z`` or an offset) as an aware datetime."""
    match = _RFC3339.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise _Shape(f"metadata.generatedAt is not an RFC 3339 time: {text!r}")
    whole, fraction, offset = match.groups()
    offset = "+00:00" if offset.upper() == "Z" else offset
    return datetime.fromisoformat(f"{whole}.{(fraction or '0')[:6]:0<6}{offset}")
