"""Artillery ``run --output`` JSON reports: 2.x and the legacy 1.x format.

A report is one run of an open-model load (Artillery starts virtual users at an arrival rate).
What is read from where is documented in ``docs/ingest.md`` ("Artillery"); in short:

- 2.x: ``aggregate`` gives the per-endpoint and whole-run summaries (percentiles ``tool-summary``,
  DDSketch values, +-1 %), ``intermediate[]`` one 10 s window per period (``tool-window``).
- 1.x: ``aggregate.latency`` / ``customStats`` give the summaries (stats-lite percentiles,
  ``tool-summary``); each ``intermediate[].latencies`` holds every latency of its window in
  nanoseconds, so the whole-run windows are computed exactly from them (``exact``).

Endpoints are the names the metrics-by-endpoint plugin wrote (a URL path or a request name).
Artillery records no HTTP method, so the endpoint is that name as written and ``method`` is NULL.
A request is counted once it ended, with a response or with an error: ``count`` is responses plus
``errors.*``, ``failures`` is responses with status >= 400 plus ``errors.*``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import polars as pl

from perfstats.errors import IngestError
from perfstats.readers.detect import ARTILLERY_V1, json_number, load_json
from perfstats.readers.shards import mix_summaries
from perfstats.readers.writer import RunWriter, SourceFile
from perfstats.store import ALL_ENDPOINTS

PLUGIN_NAMESPACE = "plugins.metrics-by-endpoint"
"""Default key prefix of the metrics-by-endpoint plugin (its ``metricsNamespace`` option)."""

PERIOD_S = 10.0
"""Length of an Artillery reporting period (2.x periods, 1.x default ``statsInterval``)."""

_STAT_COLUMNS = ("min", "mean", "p50", "p90", "p95", "p99", "max")
_CODES = re.compile(r"(.*)\.codes\.(\d+)", re.DOTALL)
_ERRORS = ".errors."
_PRE_RENAME = ("core.vusers.", "engine.")
_TIME_HISTOGRAMS = ("http.", "vusers.session_length", "socketio.", "websocket.", "scenarioDuration")
_STATS_LITE_KEYS = {"min", "max", "median", "p95", "p99"}

_STATS_SCHEMA = {name: pl.Float64 for name in _STAT_COLUMNS}
_SUMMARY_SCHEMA = {"endpoint": pl.String, "tool_name": pl.String, "method": pl.String,
                   "count": pl.Int64, "failures": pl.Int64, **_STATS_SCHEMA, "rps": pl.Float64,
                   "percentiles": pl.String}
_WINDOW_SCHEMA = {"endpoint": pl.String, "start": pl.Datetime("us", "UTC"),
                  "length_s": pl.Float64, "count": pl.Int64, "failures": pl.Int64,
                  **_STATS_SCHEMA, "total_ms": pl.Float64, "users": pl.Float64,
                  "arrivals": pl.Float64, "percentiles": pl.String}
_ERROR_SCHEMA = {"endpoint": pl.String, "kind": pl.String, "error": pl.String,
                 "count": pl.Int64, "first_seen": pl.Datetime("us", "UTC"),
                 "last_seen": pl.Datetime("us", "UTC")}
_METRIC_SCHEMA = {"metric": pl.String, "type": pl.String, "contains": pl.String,
                  "stat": pl.String, "value": pl.Float64}


class _Shape(Exception):
    """The report does not have the shape Artillery writes (turned into an IngestError)."""


@dataclass
class _Traffic:
    """Requests of one endpoint (or ``ALL``) in one window or the whole run."""

    stats: dict[str, float | None]
    responses: int
    codes: dict[int, int]
    errors: dict[str, int]
    percentiles: str
    total_ms: float | None = None

    @property
    def count(self) -> int:
        return self.responses + sum(self.errors.values())

    @property
    def failures(self) -> int:
        return sum(n for code, n in self.codes.items() if code >= 400) + sum(self.errors.values())


@dataclass
class _Window:
    start: datetime
    length_s: float
    traffic: dict[str, _Traffic]
    users: float | None = None
    arrivals: float | None = None


@dataclass
class _Parsed:
    """What a report holds, normalised across report versions."""

    whole: dict[str, _Traffic]
    windows: list[_Window]
    metrics: list[tuple[str, str, str | None, str, float]]
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    requests: bool = True
    """False when the run made no HTTP request: its ``ALL`` traffic then only holds ``errors.*``."""
    notes: list[str] = field(default_factory=list)


def read(files: list[SourceFile], writer: RunWriter) -> None:
    """Read one Artillery report (2.x or legacy 1.x) into ``writer``'s run; several reports are
    the shards of one distributed run (one per worker or machine), merged by :func:`_merged`.

    Raises:
        IngestError: a report of the wrong shape, or an Artillery 2.0.0 pre-release older than
            2.0.0-12 (``core.*``/``engine.*`` metric names).
    """
    parsed = [_parse_file(source) for source in files]
    _write(writer, parsed[0] if len(parsed) == 1 else _merged(parsed))


def _parse_file(source: SourceFile) -> _Parsed:
    doc = load_json(source.path)
    try:
        if not isinstance(doc, dict):
            raise _Shape("not an Artillery report (the JSON is not an object)")
        return _parse_v1(doc) if source.format == ARTILLERY_V1 else _parse_v2(doc)
    except _Shape as exc:
        raise IngestError(source.path, str(exc)) from None


# --------------------------------------------------------------------------- shape helpers


def _mapping(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Shape(f"{where}.{key} is not an object")
    return value


def _counts(obj: dict[str, Any], where: str) -> dict[str, int]:
    """A ``{name: count}`` object (null values are dropped)."""
    out: dict[str, int] = {}
    for name, value in obj.items():
        if value is None:
            continue
        number = json_number(value, f"{where}[{name!r}]")
        if number is None:
            raise _Shape(f"{where}[{name!r}] is not a number")
        out[name] = int(number)
    return out


def _summaries(obj: dict[str, Any], key: str, where: str) -> dict[str, dict[str, Any]]:
    out = _mapping(obj, key, where)
    for name, value in out.items():
        if not isinstance(value, dict):
            raise _Shape(f"{where}.{key}[{name!r}] is not an object")
    return out


def _epoch(value: Any) -> datetime | None:
    """Epoch milliseconds (number or digit string, 0 = unset) as a UTC datetime."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _Shape(f"timestamp {value!r} is not epoch milliseconds") from None
    ms = json_number(value)
    return datetime.fromtimestamp(ms / 1000, timezone.utc) if ms else None


def _iso(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise _Shape(f"{where}.timestamp is missing")
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Shape(f"{where}.timestamp {value!r} is not an ISO-8601 time") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _status(code: Any) -> int | None:
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


def _records(doc: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    aggregate, intermediate = doc.get("aggregate"), doc.get("intermediate")
    if not isinstance(aggregate, dict):
        raise _Shape("not an Artillery report (no 'aggregate' object)")
    if intermediate is None:
        intermediate = []
    if not isinstance(intermediate, list) or not all(isinstance(p, dict) for p in intermediate):
        raise _Shape("'intermediate' is not a list of objects")
    return aggregate, intermediate


# --------------------------------------------------------------------------- statistics


def _tool_stats(summary: dict[str, Any] | None) -> dict[str, float | None]:
    """min/mean/p50/p90/p95/p99/max of an Artillery summary (``median`` when ``p50`` is absent)."""
    summary = summary or {}
    stats = {name: json_number(summary.get(name), f"response time {name}")
             for name in _STAT_COLUMNS}
    if stats["p50"] is None:
        stats["p50"] = json_number(summary.get("median"), "response time median")
    return stats


def _traffic(summary: dict[str, Any] | None, codes: dict[int, int], errors: dict[str, int],
             percentiles: str, *, sketch: dict[str, Any] | None = None,
             responses: int | None = None) -> _Traffic:
    """Traffic from a tool summary; ``sketch`` (a serialised DDSketch) supplies the exact sum."""
    stats = _tool_stats(summary)
    latencies = json_number((summary or {}).get("count"), "response time count")
    if responses is None:
        responses = int(latencies) if latencies is not None else sum(codes.values())
    total = None
    if (exact := _sketch_sum(sketch)) is not None:
        total = exact[0]
        if stats["mean"] is None:
            stats["mean"] = exact[0] / exact[1]
    elif stats["mean"] is not None and latencies is not None:
        total = stats["mean"] * latencies
    return _Traffic(stats, responses, codes, errors, percentiles, total)


def _sketch_sum(sketch: dict[str, Any] | None) -> tuple[float, float] | None:
    """(sum, count) of a serialised DDSketch: exact, unlike its bucketed quantiles."""
    if sketch is None:
        return None
    total, count = json_number(sketch.get("sum")), json_number(sketch.get("count"))
    return (total, count) if total is not None and count else None


def _exact_traffic(values: np.ndarray, codes: dict[int, int], errors: dict[str, int],
                   responses: int) -> _Traffic:
    """Traffic from every latency of a window: exact statistics, linear-interpolated quantiles."""
    if values.size == 0:
        return _Traffic(dict.fromkeys(_STAT_COLUMNS), responses, codes, errors, "exact", None)
    p50, p90, p95, p99 = np.quantile(values, [0.5, 0.9, 0.95, 0.99], method="linear")
    stats = {"min": float(values.min()), "mean": float(values.mean()), "p50": float(p50),
             "p90": float(p90), "p95": float(p95), "p99": float(p99), "max": float(values.max())}
    return _Traffic(stats, responses, codes, errors, "exact", float(values.sum()))


# --------------------------------------------------------------------------- endpoints


def _endpoint_names(summary_keys: set[str], counter_keys: set[str], namespace: str) -> set[str]:
    head = f"{namespace}.response_time."
    names = {k[len(head):] for k in summary_keys if k.startswith(head)}
    prefix = namespace + "."
    for key in counter_keys:
        if key.startswith(prefix) and (match := _CODES.fullmatch(key[len(prefix):])):
            names.add(match.group(1))
    return names


def _namespace(summary_keys: set[str], counter_keys: set[str]) -> str:
    """The plugin's key prefix: the default one, else a custom ``metricsNamespace`` seen in keys.

    A custom prefix P is recognised when ``P.response_time.<name>`` is a summary and
    ``P.<name>.codes.<status>`` a counter of the same name.
    """
    default = PLUGIN_NAMESPACE + "."
    if any(k.startswith(default) for k in summary_keys | counter_keys):
        return PLUGIN_NAMESPACE
    for key in sorted(summary_keys):
        head, sep, name = key.partition(".response_time.")
        if sep and head not in ("http", "socketio", "websocket") and any(
            k.startswith(f"{head}.{name}.codes.") for k in counter_keys
        ):
            return head
    return PLUGIN_NAMESPACE


def _split_error(rest: str, names: list[str]) -> tuple[str, str] | None:
    """``<name>.errors.<error>`` -> (name, error), matching known names first (both hold dots)."""
    for name in names:
        if rest.startswith(name + _ERRORS):
            return name, rest[len(name) + len(_ERRORS):]
    i = rest.find(_ERRORS)
    return (rest[:i], rest[i + len(_ERRORS):]) if i >= 0 else None


@dataclass
class _Keys:
    """How keys of one report are read: the plugin namespace and its endpoint names."""

    namespace: str
    names: list[str]  # longest first, so that "/a.b" wins over "/a" when splitting error keys

    def endpoint_counts(self, counters: dict[str, int]
                        ) -> tuple[dict[str, dict[int, int]], dict[str, dict[str, int]]]:
        """Per-endpoint status codes and errors from the plugin's counters."""
        codes: dict[str, dict[int, int]] = {}
        errors: dict[str, dict[str, int]] = {}
        prefix = self.namespace + "."
        for key, n in counters.items():
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix):]
            if match := _CODES.fullmatch(rest):
                status = int(match.group(2))
                per = codes.setdefault(match.group(1), {})
                per[status] = per.get(status, 0) + n
            elif (split := _split_error(rest, self.names)) is not None:
                per_err = errors.setdefault(split[0], {})
                per_err[split[1]] = per_err.get(split[1], 0) + n
        return codes, errors

    def endpoints(self, summaries: dict[str, dict[str, Any]], counters: dict[str, int],
                  percentiles: str, sketches: dict[str, dict[str, Any]] | None = None
                  ) -> dict[str, _Traffic]:
        """Traffic per endpoint of one record."""
        head = f"{self.namespace}.response_time."
        by_name = {k[len(head):]: v for k, v in summaries.items() if k.startswith(head)}
        codes, errors = self.endpoint_counts(counters)
        out = {}
        for name in sorted(by_name.keys() | codes.keys() | errors.keys()):
            sketch = (sketches or {}).get(head + name)
            out[name] = _traffic(by_name.get(name), codes.get(name, {}), errors.get(name, {}),
                                 percentiles, sketch=sketch)
        return out

    def is_endpoint_summary(self, name: str) -> bool:
        return name.startswith(f"{self.namespace}.response_time.")


def _keys(summary_keys: set[str], counter_keys: set[str]) -> _Keys:
    namespace = _namespace(summary_keys, counter_keys)
    names = _endpoint_names(summary_keys, counter_keys, namespace)
    return _Keys(namespace, sorted(names, key=lambda n: (-len(n), n)))


def _contains(name: str, kind: str, keys: _Keys) -> str | None:
    if name.endswith("downloaded_bytes"):
        return "data"
    if kind == "histogram" and (name.startswith(_TIME_HISTOGRAMS)
                                or name.startswith(f"{keys.namespace}.server-timing.")):
        return "time"
    return None


# --------------------------------------------------------------------------- 2.x


@dataclass
class _Period:
    """One 2.x period-metrics record (``aggregate`` or an ``intermediate[]`` item)."""

    counters: dict[str, int]
    rates: dict[str, float]
    summaries: dict[str, dict[str, Any]]
    sketches: dict[str, dict[str, Any]]
    start: datetime | None
    first: datetime | None
    last: datetime | None


def _is_sketch(value: dict[str, Any]) -> bool:
    return "mapping" in value and "store" in value


def _period(record: dict[str, Any], where: str) -> _Period:
    counters = _counts(_mapping(record, "counters", where), f"{where}.counters")
    rates = {k: float(v) for k, v in _mapping(record, "rates", where).items()
             if json_number(v) is not None}
    summaries = _summaries(record, "summaries", where)
    histograms = _summaries(record, "histograms", where)
    # Before 2.0.0-18 histograms are serialised DDSketch objects (only their exact sum is used:
    # the summaries next to them hold the quantiles); since then they repeat the summaries.
    sketches = {k: v for k, v in histograms.items() if _is_sketch(v)}
    summaries = {**{k: v for k, v in histograms.items() if k not in sketches}, **summaries}
    return _Period(counters, rates, summaries, sketches, _epoch(record.get("period")),
                   _epoch(record.get("firstMetricAt")), _epoch(record.get("lastMetricAt")))


def _whole_run_v2(p: _Period, percentiles: str) -> _Traffic:
    """All requests of one record: ``http.response_time``, ``http.codes.*`` and ``errors.*``."""
    codes: dict[int, int] = {}
    errors: dict[str, int] = {}
    for key, n in p.counters.items():
        if key.startswith("http.codes.") and (
            status := _status(key.removeprefix("http.codes."))
        ) is not None:
            codes[status] = codes.get(status, 0) + n
        elif key.startswith("errors."):
            errors[key.removeprefix("errors.")] = n
    return _traffic(p.summaries.get("http.response_time"), codes, errors, percentiles,
                    sketch=p.sketches.get("http.response_time"))


def _traffic_v2(p: _Period, keys: _Keys, percentiles: str) -> dict[str, _Traffic]:
    return {**keys.endpoints(p.summaries, p.counters, percentiles, p.sketches),
            ALL_ENDPOINTS: _whole_run_v2(p, percentiles)}


def _version_v2(aggregate: _Period) -> str:
    if aggregate.sketches:
        return ">= 2.0.0-12, < 2.0.0-18 (histograms are serialised DDSketch objects)"
    if "http.response_time.2xx" in aggregate.summaries:
        return ">= 2.0.21 (per-status-class response_time summaries)"
    if any("mean" in s for s in aggregate.summaries.values()):
        return ">= 2.0.0-38 (summaries have a mean)"
    if aggregate.summaries:
        return ">= 2.0.0-18, < 2.0.0-38 (summaries without a mean)"
    return ">= 2.0.0-12 (current metric names)"


def _parse_v2(doc: dict[str, Any]) -> _Parsed:
    aggregate_raw, intermediate_raw = _records(doc)
    aggregate = _period(aggregate_raw, "aggregate")
    periods = [_period(r, f"intermediate[{i}]") for i, r in enumerate(intermediate_raw)]
    every = [aggregate, *periods]
    counter_keys = {k for p in every for k in p.counters}
    summary_keys = {k for p in every for k in (*p.summaries, *p.sketches)}
    if "vusers.created" not in counter_keys and any(
        k.startswith(_PRE_RENAME) for k in counter_keys | summary_keys
    ):
        raise _Shape("unknown Artillery version (pre-2.0.0-12 metric names)")
    if not counter_keys and not summary_keys:
        raise _Shape("Artillery report without any metric (no virtual user ran)")
    keys = _keys(summary_keys, counter_keys)
    windows = []
    for i, p in enumerate(periods):
        start = p.start or _period_of(p.first)
        if start is None:
            raise _Shape(f"intermediate[{i}] has no period")
        windows.append(_Window(start, PERIOD_S, _traffic_v2(p, keys, "tool-window"),
                               arrivals=p.counters.get("vusers.created", 0)))
    windows.sort(key=lambda w: w.start)

    first = aggregate.first or min((p.first for p in periods if p.first), default=None)
    last = aggregate.last or max((p.last for p in periods if p.last), default=None)
    metrics = _metrics_v2(aggregate, keys)
    return _Parsed(
        whole=_traffic_v2(aggregate, keys, "tool-summary"),
        windows=windows,
        metrics=metrics,
        started_at=first,
        ended_at=last,
        duration_s=(last - first).total_seconds() if first and last else None,
        requests=any(k.startswith("http.") for k in counter_keys | summary_keys),
        notes=[f"Artillery version inferred from the report: {_version_v2(aggregate)}"],
    )


def _period_of(ts: datetime | None) -> datetime | None:
    """The start of the wall-clock-aligned 10 s period holding ``ts``."""
    if ts is None:
        return None
    seconds = math.floor(ts.timestamp() / PERIOD_S) * PERIOD_S
    return datetime.fromtimestamp(seconds, timezone.utc)


def _metrics_v2(p: _Period, keys: _Keys) -> list[tuple[str, str, str | None, str, float]]:
    rows: list[tuple[str, str, str | None, str, float]] = []
    for name, n in p.counters.items():
        rows.append((name, "counter", _contains(name, "counter", keys), "count", float(n)))
    for name, rate in p.rates.items():
        rows.append((name, "rate", None, "rate", rate))
    for name, summary in p.summaries.items():
        if name == "http.response_time" or keys.is_endpoint_summary(name):
            continue
        stats = {k: json_number(v, f"{name}.{k}") for k, v in summary.items()}
        if stats.get("mean") is None and (exact := _sketch_sum(p.sketches.get(name))):
            stats["mean"] = exact[0] / exact[1]
        contains = _contains(name, "histogram", keys)
        rows.extend((name, "histogram", contains, stat, v)
                    for stat, v in stats.items() if v is not None)
    return rows


# --------------------------------------------------------------------------- 1.x


def _latencies_ms(raw: Any, where: str) -> np.ndarray | None:
    """``latencies`` in ms: plain nanosecond numbers, or ``[epochMs, uuid, ns, code]`` tuples."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise _Shape(f"{where}.latencies is not a list")
    if not raw:
        return np.empty(0)
    if isinstance(raw[0], list):
        series = pl.DataFrame(raw, orient="row", infer_schema_length=None).to_series(2)
    else:
        series = pl.Series(raw, dtype=pl.Float64, strict=False)
    return series.cast(pl.Float64).drop_nulls().to_numpy() / 1e6


@dataclass
class _Record:
    """One 1.x stats record (``aggregate`` or an ``intermediate[]`` item)."""

    timestamp: datetime
    responses: int
    latency: dict[str, Any]
    latencies: np.ndarray | None
    codes: dict[int, int]
    errors: dict[str, int]
    counters: dict[str, int]
    custom: dict[str, dict[str, Any]]
    elapsed_s: float
    concurrency: float | None
    scenarios_created: float | None


def _record(raw: dict[str, Any], where: str) -> _Record:
    codes: dict[int, int] = {}
    for code, n in _counts(_mapping(raw, "codes", where), f"{where}.codes").items():
        if (status := _status(code)) is not None:
            codes[status] = codes.get(status, 0) + n
    rps = _mapping(raw, "rps", where)
    sent, rate = json_number(rps.get("count")), json_number(rps.get("mean"))
    return _Record(
        timestamp=_iso(raw.get("timestamp"), where),
        responses=int(json_number(raw.get("requestsCompleted")) or 0),
        latency=_mapping(raw, "latency", where),
        latencies=_latencies_ms(raw.get("latencies"), where),
        codes=codes,
        errors=_counts(_mapping(raw, "errors", where), f"{where}.errors"),
        counters=_counts(_mapping(raw, "counters", where), f"{where}.counters"),
        custom=_summaries(raw, "customStats", where),
        # rps.mean is requests sent over the seconds since the previous report
        elapsed_s=sent / rate if sent and rate else PERIOD_S,
        concurrency=json_number(raw.get("concurrency")),
        scenarios_created=json_number(raw.get("scenariosCreated")),
    )


def _windows_v1(records: list[_Record], keys: _Keys, legacy_v2: bool) -> list[_Window]:
    """One window per report interval; ``ALL`` exact from the raw latencies when complete."""
    windows: list[_Window] = []
    previous_end: datetime | None = None
    for r in records:
        if legacy_v2:
            start, length = r.timestamp, PERIOD_S
        else:
            # A 1.x record is written at the end of its interval.
            start = previous_end or r.timestamp - timedelta(seconds=r.elapsed_s)
            length = (r.timestamp - start).total_seconds()
            previous_end = r.timestamp
        if r.latencies is not None and r.latencies.size == r.responses:
            whole = _exact_traffic(r.latencies, r.codes, r.errors, r.responses)
        else:
            whole = _traffic(r.latency, r.codes, r.errors, "tool-window", responses=r.responses)
        traffic = {ALL_ENDPOINTS: whole, **keys.endpoints(r.custom, r.counters, "tool-window")}
        windows.append(_Window(start, length, traffic, r.concurrency, r.scenarios_created))
    return windows


def _version_v1(records: list[dict[str, Any]], legacy_v2: bool) -> str:
    if legacy_v2:
        return "2.x with ARTILLERY_USE_LEGACY_REPORT_FORMAT (summaries with a count)"
    for r in records:
        latencies = r.get("latencies")
        if isinstance(latencies, list) and latencies:
            if isinstance(latencies[0], list):
                return "< 1.6.0 (artillery-core [epochMs, uuid, ns, code] latency tuples)"
            break
    return "1.6.0 to 1.7.x"


def _parse_v1(doc: dict[str, Any]) -> _Parsed:
    aggregate_raw, intermediate_raw = _records(doc)
    aggregate = _record(aggregate_raw, "aggregate")
    records = sorted((_record(r, f"intermediate[{i}]") for i, r in enumerate(intermediate_raw)),
                     key=lambda r: r.timestamp)
    # Artillery 2.x with ARTILLERY_USE_LEGACY_REPORT_FORMAT writes this shape from its 10 s
    # periods: DDSketch summaries (they have a count) and timestamps at the period start.
    legacy_v2 = bool(aggregate.latency) and not set(aggregate.latency) <= _STATS_LITE_KEYS
    keys = _keys({k for r in (aggregate, *records) for k in r.custom},
                 {k for r in (aggregate, *records) for k in r.counters})
    windows = _windows_v1(records, keys, legacy_v2)

    whole = _traffic(aggregate.latency, aggregate.codes, aggregate.errors, "tool-summary",
                     responses=aggregate.responses)
    if records and all(r.latencies is not None and r.latencies.size == r.responses
                       for r in records):
        n = sum(r.responses for r in records)
        if n and n == aggregate.responses:
            # Every latency is in the windows: the mean is exact (percentiles stay stats-lite's).
            whole.stats["mean"] = sum(float(np.sum(r.latencies)) for r in records) / n

    ended = aggregate.timestamp
    if windows:
        started = windows[0].start
        ended = max(ended, windows[-1].start + timedelta(seconds=windows[-1].length_s))
    else:
        started = ended - timedelta(seconds=aggregate.elapsed_s)
    version = _version_v1(intermediate_raw, legacy_v2)
    return _Parsed(
        whole={ALL_ENDPOINTS: whole,
               **keys.endpoints(aggregate.custom, aggregate.counters, "tool-summary")},
        windows=windows,
        metrics=_metrics_v1(aggregate_raw, keys),
        started_at=started,
        ended_at=ended,
        duration_s=(ended - started).total_seconds(),
        notes=[f"Artillery version inferred from the report: {version}"],
    )


def _metrics_v1(aggregate: dict[str, Any], keys: _Keys
                ) -> list[tuple[str, str, str | None, str, float]]:
    rows: list[tuple[str, str, str | None, str, float]] = []
    for name, value in aggregate.items():  # the numbers among its keys are counters
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if (number := json_number(value, f"aggregate.{name}")) is not None:
            rows.append((name, "counter", None, "count", number))
    rps = _mapping(aggregate, "rps", "aggregate")
    rows.extend(("rps", "rate", None, stat, v) for stat, value in rps.items()
                if (v := json_number(value)) is not None)
    for group in ("scenarioCounts", "codes", "errors"):
        counts = _counts(_mapping(aggregate, group, "aggregate"), f"aggregate.{group}")
        rows.extend((f"{group}.{name}", "counter", None, "count", float(n))
                    for name, n in counts.items())
    counters = _counts(_mapping(aggregate, "counters", "aggregate"), "aggregate.counters")
    rows.extend((name, "counter", _contains(name, "counter", keys), "count", float(n))
                for name, n in counters.items())
    histograms = {"scenarioDuration": _mapping(aggregate, "scenarioDuration", "aggregate"),
                  **_summaries(aggregate, "customStats", "aggregate")}
    for name, summary in histograms.items():
        if keys.is_endpoint_summary(name):
            continue
        contains = _contains(name, "histogram", keys)
        rows.extend((name, "histogram", contains, stat, v) for stat, value in summary.items()
                    if (v := json_number(value)) is not None)
    return rows


# --------------------------------------------------------------------------- shards


def _merged(shards: list[_Parsed]) -> _Parsed:
    """One run from the reports of the workers (shards) of one distributed test.

    Counts, status codes, errors, arrivals and counters add up per endpoint and per 10 s period
    (periods are wall-clock aligned, so the workers' periods coincide); rates add up; min and max
    are the extremes and the mean is count-weighted.  A report holds only summaries, no
    mergeable histogram, so the percentiles of a window or endpoint that several workers served
    are a mixture of their summaries (:func:`~perfstats.readers.shards.mix_summaries`, all
    endpoints and periods at once), labelled so in ``percentiles``.
    """
    periods: dict[datetime, list[_Window]] = {}
    for p in shards:
        for w in p.windows:
            periods.setdefault(w.start, []).append(w)
    starts = sorted(periods)
    # Slot 0 is the whole run, slot i the i-th period.
    merged = _merged_traffic([[p.whole for p in shards],
                              *([w.traffic for w in periods[start]] for start in starts)])
    whole = merged[0]
    windows = [
        _Window(start, max(w.length_s for w in periods[start]), merged[slot],
                users=_total([w.users for w in periods[start]]),
                arrivals=_total([w.arrivals for w in periods[start]]))
        for slot, start in enumerate(starts, 1)
    ]
    totals: dict[tuple[str, str, str | None, str], float] = {}
    for p in shards:
        for name, kind, contains, stat, value in p.metrics:
            if kind in ("counter", "rate"):  # per-worker histograms of custom metrics: dropped
                key = (name, kind, contains, stat)
                totals[key] = totals.get(key, 0.0) + value
    first = min((p.started_at for p in shards if p.started_at), default=None)
    last = max((p.ended_at for p in shards if p.ended_at), default=None)
    return _Parsed(
        whole=whole, windows=windows, metrics=[(*k, v) for k, v in totals.items()],
        started_at=first, ended_at=last,
        duration_s=(last - first).total_seconds() if first and last else None,
        requests=any(p.requests for p in shards),
        notes=[*dict.fromkeys(n for p in shards for n in p.notes),
               f"{len(shards)} Artillery reports merged as the shards of one distributed run: "
               "counts, arrivals and throughput add up; percentiles are approximate (a mixture "
               "of the reports' summaries)"],
    )


def _total(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _merged_traffic(slots: list[list[dict[str, _Traffic]]]) -> list[dict[str, _Traffic]]:
    """Per slot (the whole run or one period), the traffic of the workers' parts merged per
    endpoint; the percentiles of all slots and endpoints mixed in one go."""
    shared = [(slot, name, t) for slot, parts in enumerate(slots)
              for name in dict.fromkeys(n for traffic in parts for n in traffic)
              for t in (traffic[name] for traffic in parts if name in traffic)
              if sum(name in traffic for traffic in parts) > 1]
    frame = pl.DataFrame(
        [{"slot": slot, "endpoint": name, "count": t.responses, "failures": 0, "rps": None,
          **t.stats} for slot, name, t in shared],
        schema={"slot": pl.Int64, "endpoint": pl.String, "count": pl.Int64,
                "failures": pl.Int64, "rps": pl.Float64, **_STATS_SCHEMA})
    mixed = {(r["slot"], r["endpoint"]): r
             for r in mix_summaries(frame, ["slot", "endpoint"]).iter_rows(named=True)}
    merged: list[dict[str, _Traffic]] = []
    for slot, parts in enumerate(slots):
        names = list(dict.fromkeys(name for traffic in parts for name in traffic))
        merged.append({})
        for name in names:
            group = [traffic[name] for traffic in parts if name in traffic]
            if len(group) == 1:
                merged[slot][name] = group[0]
                continue
            codes: dict[int, int] = {}
            errors: dict[str, int] = {}
            for t in group:
                for code, n in t.codes.items():
                    codes[code] = codes.get(code, 0) + n
                for error, n in t.errors.items():
                    errors[error] = errors.get(error, 0) + n
            row = mixed[slot, name]
            totals = [t.total_ms for t in group]
            total = None if None in totals else sum(totals)  # type: ignore[arg-type]
            merged[slot][name] = _Traffic({k: row[k] for k in _STAT_COLUMNS},
                                          sum(t.responses for t in group), codes, errors,
                                          row["percentiles"], total)
    return merged


# --------------------------------------------------------------------------- writing


def _write(writer: RunWriter, parsed: _Parsed) -> None:
    def described(traffic: dict[str, _Traffic]) -> list[tuple[str, _Traffic]]:
        return [(name, t) for name, t in traffic.items()
                if name != ALL_ENDPOINTS or parsed.requests]

    duration = parsed.duration_s or 0.0
    summaries = [
        {"endpoint": name, "tool_name": None if name == ALL_ENDPOINTS else name, "method": None,
         "count": t.count, "failures": t.failures, **t.stats,
         "rps": t.count / duration if duration > 0 else None, "percentiles": t.percentiles}
        for name, t in described(parsed.whole)
    ]
    windows = [
        {"endpoint": name, "start": w.start, "length_s": w.length_s, "count": t.count,
         "failures": t.failures, **t.stats, "total_ms": t.total_ms,
         "users": w.users if name == ALL_ENDPOINTS else None,
         "arrivals": w.arrivals if name == ALL_ENDPOINTS else None, "percentiles": t.percentiles}
        for w in parsed.windows for name, t in described(w.traffic)
    ]
    info = writer.info
    info.started_at, info.ended_at = parsed.started_at, parsed.ended_at
    info.duration_s = parsed.duration_s
    info.load_model = "open"
    info.grain = "windows" if windows else "summary"
    info.notes.extend(parsed.notes)
    writer.insert("summaries", pl.DataFrame(summaries, schema=_SUMMARY_SCHEMA))
    writer.insert("windows", pl.DataFrame(windows, schema=_WINDOW_SCHEMA))
    writer.insert("errors", _errors_frame(parsed))
    writer.insert("metrics", pl.DataFrame(parsed.metrics, schema=_METRIC_SCHEMA, orient="row"))


def _error_items(traffic: dict[str, _Traffic]) -> Iterator[tuple[str, str, str, int]]:
    for name, t in traffic.items():
        for code, n in t.codes.items():
            if code >= 400 and n:
                yield name, "http_status", str(code), n
        for error, n in t.errors.items():
            if n:
                yield name, "error", error, n


def _errors_frame(parsed: _Parsed) -> pl.DataFrame:
    """Whole-run error counts; first/last seen are the bounds of the windows holding them."""
    seen = pl.DataFrame(
        [(*item[:3], w.start, w.start + timedelta(seconds=w.length_s))
         for w in parsed.windows for item in _error_items(w.traffic)],
        schema={"endpoint": pl.String, "kind": pl.String, "error": pl.String,
                "first_seen": _ERROR_SCHEMA["first_seen"], "last_seen": _ERROR_SCHEMA["last_seen"]},
        orient="row",
    ).group_by("endpoint", "kind", "error").agg(pl.col("first_seen").min(),
                                                 pl.col("last_seen").max())
    totals = pl.DataFrame(list(_error_items(parsed.whole)),
                          schema={k: _ERROR_SCHEMA[k] for k in ("endpoint", "kind", "error",
                                                                "count")}, orient="row")
    return totals.join(seen, on=["endpoint", "kind", "error"], how="left").select(
        list(_ERROR_SCHEMA))
