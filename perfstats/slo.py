"""Service level objectives: one grammar, and what an SLO means to each command.

The grammar
-----------
An SLO expression is clauses joined by ``,``, ``;``, ``&&`` or ``and``; a clause is
``AGGREGATION OP VALUE[UNIT]``, as in k6's thresholds::

    p95<500            p(95)<500          p99 <= 1.2s        avg<100, max<2s
    errors<1%          error_rate<=0.005  rate<0.01          med<80 && p(99)<900

- AGGREGATION: a percentile (``p50``, ``p90``, ``p95``, ``p99``, or k6's ``p(N)`` for those),
  ``mean`` (``avg``), ``p50`` (``med``, ``median``), ``min``, ``max``, the request error rate
  (``error_rate``, ``errors``, ``error``, ``err``; k6's ``rate``), ``count`` or ``value``.
- OP: ``<`` or ``<=`` for the requests' latency and error rate (an SLO is an upper bound there);
  ``>``, ``>=``, ``==`` and ``!=`` as well for other metrics.
- VALUE: a number; latency in ``ms`` (default) or ``s``; a rate as a fraction (``0.01``) or a
  percentage (``1%``).

Every clause is about a *metric*, optionally narrowed by tags, k6's sub-metric selector
``http_req_duration{scenario:browse}``. An expression given alone is about the requests:
latency aggregations read ``http_req_duration``, the error rate is the share of failed
requests. :func:`parse_selector` reads a selector and ``parse_slo(text, metric=...)`` an
expression for it, as a k6 ``thresholds`` mapping pairs them (``{selector: [expression]}``).

What an SLO means to each command
---------------------------------
- **compare** (:func:`compare_slos`, :func:`breaches`): ``{endpoint glob: expression}``. A check
  (endpoint x metric) is an SLO breach when the candidate's value of that metric fails an
  objective of the same aggregation whose glob matches the endpoint; a breach fails the gate on
  its own. Objectives compare does not check are reported as warnings.
- **capacity** (:func:`capacity_objectives`): per load step, each objective is read on the step's
  value (its percentile, mean or error rate), for all requests (``ALL``) or one endpoint; a step
  meets the SLO when every objective holds. An error-rate objective is always there (the error
  budget, default :data:`DEFAULT_ERROR_BUDGET`).
- **bottlenecks** (:func:`latency_slos`, :func:`latency_slo_for`): one latency threshold per
  endpoint glob, the strictest latency clause of its expression; the time *every* request spends
  above it is SLO excess (the percentile named only phrases the gain). Error-rate clauses are
  left to the errors factor. A bare number of ms means every request should stay under it.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from perfstats.errors import ConfigError

REQUESTS = "http_req_duration"
"""The metric an expression given alone is about: the requests (their latency and failures)."""
ERROR_RATE = "error_rate"
"""The aggregation of the requests' error rate (k6: ``http_req_failed`` ``rate``)."""
LATENCY_METRICS = ("p50", "p90", "p95", "p99", "mean", "min", "max")
"""The latency aggregations of the requests."""
OTHER_AGGREGATIONS = ("rate", "count", "value")
"""Aggregations of other metrics (k6 Rate, Counter and Gauge)."""
UPPER_BOUNDS = ("<", "<=")
OPERATORS = ("<=", ">=", "==", "!=", "<", ">")
DEFAULT_ERROR_BUDGET = 0.01
"""capacity's error-rate objective when the SLO has none: at most 1 % of requests fail."""

_ALIASES = {"median": "p50", "med": "p50", "avg": "mean", "errors": ERROR_RATE,
            "error": ERROR_RATE, "err": ERROR_RATE}
_K6_PERCENTILE = re.compile(r"\bp\(\s*(\d+(?:\.\d+)?)\s*\)", re.IGNORECASE)
_SPLIT = re.compile(r"\s*(?:,|;|&&|\band\b)\s*", re.IGNORECASE)
_CLAUSE = re.compile(
    r"^(?P<agg>[a-z_][a-z0-9_.]*)\s*(?P<op><=|>=|==|!=|<|>)\s*"
    r"(?P<value>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ms|s|%)?$", re.IGNORECASE)
_PERCENTILE = re.compile(r"p(?:[1-9]\d?(?:\.\d+)?|0\.\d*[1-9]\d*)")
"""Any percentile of another metric, as k6 allows in thresholds: ``p(99.9)``, ``p(75)``."""
_SELECTOR = re.compile(r"^\s*(?P<name>[A-Za-z_][\w.-]*)\s*(?:\{(?P<tags>.*)\})?\s*$")
"""A metric and its tags; a tag value may hold braces (``{name:/api/deals/{id}}``)."""

Tags = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Objective:
    """One clause of an SLO: ``aggregation op threshold`` of a metric (and tags).

    Attributes:
        aggregation: ``p50``, ``p90``, ``p95``, ``p99``, ``mean``, ``min``, ``max`` or
            ``error_rate`` for the requests; ``rate``, ``count`` or ``value`` for other metrics.
        op: ``<``, ``<=`` (``>``, ``>=``, ``==``, ``!=`` for other metrics).
        threshold: milliseconds for latency, a fraction (0-1) for a rate.
        metric: the metric it reads (:data:`REQUESTS` by default).
        tags: the sub-metric selector, ``(("scenario", "browse"),)``; empty: every sample.
    """

    aggregation: str
    op: str
    threshold: float
    metric: str = REQUESTS
    tags: Tags = ()

    @property
    def is_latency(self) -> bool:
        """True for a latency aggregation of the requests."""
        return self.metric == REQUESTS and self.aggregation in LATENCY_METRICS

    @property
    def selector(self) -> str:
        """The metric with its tags, k6's spelling: ``http_req_duration{scenario:browse}``."""
        if not self.tags:
            return self.metric
        return self.metric + "{" + ",".join(f"{k}:{v}" for k, v in self.tags) + "}"

    def holds(self, value: float | None) -> bool:
        """Whether a measured ``value`` meets the objective (None and NaN never do)."""
        if value is None or math.isnan(value):
            return False
        t = self.threshold
        return {"<": value < t, "<=": value <= t, ">": value > t, ">=": value >= t,
                "==": value == t, "!=": value != t}[self.op]

    def __str__(self) -> str:
        prefix = "" if self.metric == REQUESTS and not self.tags else f"{self.selector}: "
        if self.is_latency:
            return f"{prefix}{self.aggregation} {self.op} {self.threshold:g} ms"
        if self.aggregation in (ERROR_RATE, "rate"):
            return f"{prefix}{self.aggregation} {self.op} {self.threshold * 100:g}%"
        return f"{prefix}{self.aggregation} {self.op} {self.threshold:g}"


# --------------------------------------------------------------------------------- grammar


def parse_selector(text: str) -> tuple[str, Tags]:
    """A metric with an optional k6 tag selector: ``"http_req_duration{scenario:browse}"``.

    Raises:
        ConfigError: not ``NAME`` or ``NAME{tag:value,...}``.

    Example:
        >>> parse_selector("http_req_duration{scenario:browse}")
        ('http_req_duration', (('scenario', 'browse'),))
    """
    match = _SELECTOR.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"bad metric {text!r}: expected NAME or NAME{{tag:value}}")
    tags = []
    for pair in [] if match["tags"] is None else match["tags"].split(","):
        key, sep, value = pair.partition(":")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"bad metric {text!r}: a tag is 'name:value', got {pair.strip()!r}")
        tags.append((key.strip(), value.strip()))
    return match["name"], tuple(tags)


def parse_slo(text: str, *, metric: str = REQUESTS, kind: str | None = None
              ) -> tuple[Objective, ...]:
    """Parse an SLO expression into its objectives (the grammar is in this module's docstring).

    Args:
        text: e.g. ``"p95<500"``, ``"p99 <= 1.2s and error_rate < 1%"``,
            ``"p(95)<500 && rate<0.01"``.
        metric: the metric (with an optional tag selector) the clauses are about; default the
            requests, where ``rate`` is their error rate.
        kind: the metric's kind when known (``trend``, ``rate``, ``counter``, ``gauge``), as
            for a k6 threshold: any percentile (``p(99.9)``) is accepted, and a Counter's
            ``rate`` is per second (k6's meaning), any non-negative number.

    Returns:
        The objectives in the order written.

    Raises:
        ConfigError: the expression does not follow the grammar.

    Example:
        >>> [str(o) for o in parse_slo("p95<500, errors<1%")]
        ['p95 < 500 ms', 'error_rate < 1%']
        >>> [str(o) for o in parse_slo("p(95)<500 && rate<0.01")]
        ['p95 < 500 ms', 'error_rate < 1%']
        >>> [str(o) for o in parse_slo("rate>0.98", metric="checks{scenario:browse}")]
        ['checks{scenario:browse}: rate > 98%']
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"bad SLO {text!r}: expected e.g. 'p95<500' or 'p99<1.2s, errors<1%'")
    name, tags = parse_selector(metric)
    normal = _K6_PERCENTILE.sub(lambda m: f"p{m.group(1)}", text.strip())
    return tuple(_clause(clause, text, name, tags, kind) for clause in _SPLIT.split(normal))


def _clause(clause: str, text: str, metric: str, tags: Tags, kind: str | None = None
            ) -> Objective:
    match = _CLAUSE.match(clause)
    if match is None:
        raise ConfigError(
            f"bad SLO clause {clause!r} in {text!r}: expected METRIC < VALUE, e.g. 'p95<500', "
            "'p99<=1.2s' or 'error_rate<1%'")
    requests = metric == REQUESTS
    aggregation = match["agg"].lower()
    aggregation = _ALIASES.get(aggregation, aggregation)
    if requests and aggregation == "rate":
        aggregation = ERROR_RATE
    op, value, unit = match["op"], float(match["value"]), (match["unit"] or "").lower()
    known = (*LATENCY_METRICS, ERROR_RATE) if requests else (*LATENCY_METRICS,
                                                             *OTHER_AGGREGATIONS)
    # Any percentile (p(99.9)) for other metrics and for thresholds of a known kind, as in k6;
    # request SLOs keep the percentiles the commands compute.
    percentile = (not requests or kind is not None) and _PERCENTILE.fullmatch(aggregation)
    if aggregation not in known and not percentile:
        raise ConfigError(
            f"bad SLO clause {clause!r}: unknown metric {match['agg']!r}; use one of "
            f"{', '.join(known)}")
    if requests and op not in UPPER_BOUNDS:
        raise ConfigError(f"bad SLO clause {clause!r} in {text!r}: expected METRIC < VALUE "
                          "(a request SLO is an upper bound: < or <=)")
    if aggregation == "rate" and kind == "counter":
        if unit:
            raise ConfigError(f"bad SLO clause {clause!r}: a counter's rate is per second, "
                              "without a unit")
    elif aggregation in (ERROR_RATE, "rate"):
        if unit in ("ms", "s"):
            raise ConfigError(f"bad SLO clause {clause!r}: an error rate has no time unit")
        value = value / 100.0 if unit == "%" else value
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"bad SLO clause {clause!r}: an error rate is between 0 and "
                              "1 (or 0% and 100%)")
    elif aggregation in LATENCY_METRICS or percentile:
        if unit == "%":
            raise ConfigError(f"bad SLO clause {clause!r}: a latency is in ms or s, not %")
        value = value * 1000.0 if unit == "s" else value
        if requests and value <= 0:
            raise ConfigError(f"bad SLO clause {clause!r}: the latency must be > 0")
    elif unit:
        raise ConfigError(f"bad SLO clause {clause!r}: a {aggregation} has no unit")
    return Objective(aggregation, op, value, metric, tags)


def format_slo(objectives: Iterable[Objective]) -> str:
    """The canonical text of parsed objectives (``"p95 < 500 ms, error_rate < 1%"``)."""
    return ", ".join(str(o) for o in objectives)


def parse_endpoint_slos(spec: str | Mapping[str, str], *, default_endpoint: str
                        ) -> dict[str, tuple[Objective, ...]]:
    """One expression for ``default_endpoint`` or ``{endpoint: expression}``.

    Raises:
        ConfigError: a bad expression (the endpoint is named in the message).
        TypeError: ``spec`` is neither a string nor a mapping of strings.
    """
    if isinstance(spec, str):
        return {default_endpoint: parse_slo(spec)}
    if not isinstance(spec, Mapping):
        raise TypeError(f"slo must be an expression or a mapping endpoint -> expression, "
                        f"got {type(spec).__name__}")
    out: dict[str, tuple[Objective, ...]] = {}
    for endpoint, text in spec.items():
        try:
            out[str(endpoint)] = parse_slo(text)
        except ConfigError as exc:
            raise ConfigError(f"endpoint {endpoint!r}: {exc}") from None
    if not out:
        raise ConfigError("the SLO mapping is empty")
    return out


# ----------------------------------------------------------------------- compare: per check


def compare_slos(spec: str | Mapping[str, str]) -> tuple[tuple[str, Objective], ...]:
    """compare's SLOs: ``(endpoint glob, objective)`` pairs from one expression (for ``*``) or
    ``{glob: expression}`` (``[compare.slo]`` of perfstats.toml).

    Raises:
        ConfigError: a bad expression or a value that is neither of those.
    """
    if not isinstance(spec, str | Mapping):
        raise ConfigError(f"slo: expected a table glob -> expression, got {spec!r}")
    if not spec:
        return ()
    parsed = parse_endpoint_slos(spec, default_endpoint="*")
    return tuple((glob, o) for glob, objectives in parsed.items() for o in objectives)


def breaches(slos: Iterable[tuple[str, Objective]], *, endpoint: str, aggregation: str,
             value: float | None) -> list[Objective]:
    """The objectives a check (``endpoint``, ``aggregation``, its ``value``) breaks.

    Only objectives of the same aggregation whose glob matches the endpoint apply; a missing
    value (None or NaN) breaks none (there is nothing to judge).
    """
    if value is None or math.isnan(value):
        return []
    return [o for glob, o in slos
            if o.aggregation == aggregation and fnmatch.fnmatchcase(endpoint, glob)
            and not o.holds(value)]


# --------------------------------------------------------------------- capacity: per step


def capacity_objectives(slo: str | Mapping[str, str], error_budget: float | None, *,
                        all_requests: str) -> dict[str, tuple[Objective, ...]]:
    """capacity's objectives per endpoint (``all_requests`` first, then endpoints by name).

    ``*`` means every request (``all_requests``). Without an error-rate clause anywhere, the
    error budget (default :data:`DEFAULT_ERROR_BUDGET`) becomes ``error_rate <= budget`` of all
    requests.

    Raises:
        ValueError: an error budget outside 0-1.
        ConfigError: a bad expression, or an error-rate clause and an error budget both.
    """
    if error_budget is not None and not 0.0 <= error_budget <= 1.0:
        raise ValueError(f"error_budget is a fraction between 0 and 1, got {error_budget}")
    parsed = parse_endpoint_slos(slo, default_endpoint=all_requests)
    out: dict[str, tuple[Objective, ...]] = {}
    for endpoint, objs in parsed.items():
        key = all_requests if endpoint in ("*", all_requests) else endpoint
        out[key] = out.get(key, ()) + objs
    whole = out.get(all_requests, ())
    has_error_clause = any(o.aggregation == ERROR_RATE for objs in out.values() for o in objs)
    if error_budget is not None and has_error_clause:
        raise ConfigError("give the error-rate objective once: in the SLO expression or as "
                          "error_budget, not both")
    if not has_error_clause:
        budget = DEFAULT_ERROR_BUDGET if error_budget is None else error_budget
        whole = whole + (Objective(ERROR_RATE, "<=", budget),)
    out[all_requests] = whole
    return {k: out[k] for k in sorted(out, key=lambda k: (k != all_requests, k))}


# --------------------------------------------------------- bottlenecks: a latency threshold

SloSpec = str | float | int
"""An SLO for bottlenecks: an expression or a number of ms every request should stay under."""


@dataclass(frozen=True)
class LatencySlo:
    """The latency objective of some endpoints for bottlenecks: ``metric`` below ``threshold_ms``.

    Attributes:
        threshold_ms: latency above which a request's time counts as SLO excess.
        metric: ``p50``, ``p90``, ``p95``, ``p99``, ``mean`` or ``max`` (every request).
        endpoint: glob over the endpoint names it applies to.
    """

    threshold_ms: float
    metric: str = "max"
    endpoint: str = "*"

    def __str__(self) -> str:
        return f"{self.metric} < {self.threshold_ms:g} ms"


def _latency_slo(spec: SloSpec, endpoint: str) -> LatencySlo:
    """The strictest latency clause of an SLO expression (a bare number: every request below)."""
    if isinstance(spec, bool):
        raise ConfigError(f"bad SLO {spec!r}: expected e.g. 'p95<500' or a number of ms")
    text = str(spec).strip()
    number = re.fullmatch(r"(\d+(?:\.\d*)?)\s*(ms)?", text)
    if isinstance(spec, int | float) or number:
        value = float(spec) if isinstance(spec, int | float) else float(number[1])
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"bad SLO {spec!r}: the threshold must be a positive number of ms")
        return LatencySlo(value, "max", endpoint)
    latency = [o for o in parse_slo(text) if o.is_latency]
    if not latency:
        raise ConfigError(f"SLO {text!r} has no latency objective (e.g. 'p95<500')")
    return _strictest(latency, endpoint)


def _strictest(objectives: Sequence[Objective], endpoint: str) -> LatencySlo:
    best = min(objectives, key=lambda o: o.threshold)
    return LatencySlo(best.threshold, best.aggregation, endpoint)


def strictest_latency(pairs: Iterable[tuple[str, Objective]]) -> list[LatencySlo]:
    """bottlenecks' reading of compare's ``(glob, objective)`` pairs: each glob's strictest
    latency clause (error-rate clauses dropped)."""
    by_glob: dict[str, list[Objective]] = {}
    for glob, objective in pairs:
        if objective.is_latency:
            by_glob.setdefault(glob, []).append(objective)
    return [_strictest(objs, glob) for glob, objs in by_glob.items()]


def latency_slos(
    slo: SloSpec | Mapping[str, SloSpec] | Sequence[LatencySlo] | None,
) -> list[LatencySlo]:
    """bottlenecks' latency objectives from one SLO for every endpoint, ``{glob: SLO}`` or a list.

    Of several latency clauses the strictest threshold counts; error-rate clauses are left to
    the errors factor. Later mapping entries win: ``{"*": "p95<500", "POST /api/quote":
    "p95<300"}`` sets a default and one override.

    Raises:
        ConfigError: a bad SLO expression.

    Example:
        >>> [str(s) for s in latency_slos("p95<500, p99<1s")]
        ['p95 < 500 ms']
    """
    if slo is None:
        return []
    if isinstance(slo, Mapping):
        if not slo:
            raise ConfigError("the SLO mapping is empty")
        return [_latency_slo(spec, str(glob)) for glob, spec in slo.items()]
    if isinstance(slo, str | int | float):
        return [_latency_slo(slo, "*")]
    out = list(slo)
    if not all(isinstance(s, LatencySlo) for s in out):
        raise TypeError("slo must be an SLO expression, a number of ms, a mapping of endpoint "
                        "globs to those, or LatencySlo objects")
    return out


def latency_slo_for(endpoint: str, slos: Sequence[LatencySlo]) -> LatencySlo | None:
    """The objective of ``endpoint``: the last one whose glob matches it."""
    found = None
    for s in slos:
        if fnmatch.fnmatchcase(endpoint, s.endpoint):
            found = s
    return found
