"""Service level objectives: ``"p95<500"``, ``"p99 <= 1.2s, error_rate < 1%"``.

Grammar: clauses joined by ``,``, ``;``, ``&&`` or ``and``; a clause is ``METRIC OP VALUE[UNIT]``.
METRIC is a latency statistic (``p50``, ``p90``, ``p95``, ``p99``, ``mean``/``avg``, ``max``;
``median`` means ``p50``) or the error rate (``error_rate``, ``errors``, ``error``); OP is ``<``
or ``<=``; latency UNIT is ``ms`` (default) or ``s``; an error rate is a fraction (``0.01``) or
a percentage (``1%``). k6's threshold spelling is accepted too: ``p(95)<500``, ``med<100``,
``rate<0.01`` (the error rate).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from perfstats.errors import ConfigError

LATENCY_METRICS = ("p50", "p90", "p95", "p99", "mean", "max")
ERROR_RATE = "error_rate"
_ALIASES = {"median": "p50", "med": "p50", "avg": "mean", "errors": ERROR_RATE,
            "error": ERROR_RATE, "err": ERROR_RATE, "rate": ERROR_RATE}
_K6_PERCENTILE = re.compile(r"\bp\(\s*(\d+(?:\.\d+)?)\s*\)", re.IGNORECASE)
_SPLIT = re.compile(r"\s*(?:,|;|&&|\band\b)\s*", re.IGNORECASE)
_CLAUSE = re.compile(
    r"^(?P<metric>[a-z_][a-z0-9_]*)\s*(?P<op><=|<)\s*(?P<value>\d+(?:\.\d*)?|\.\d+)\s*"
    r"(?P<unit>ms|s|%)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Objective:
    """One clause of an SLO.

    Attributes:
        metric: ``p50``, ``p90``, ``p95``, ``p99``, ``mean``, ``max`` or ``error_rate``.
        op: ``<`` or ``<=``.
        threshold: milliseconds for latency, a fraction (0-1) for the error rate.
    """

    metric: str
    op: str
    threshold: float

    @property
    def is_latency(self) -> bool:
        """True for a latency statistic, False for the error rate."""
        return self.metric != ERROR_RATE

    def holds(self, value: float) -> bool:
        """Whether a measured ``value`` meets the objective (NaN never does)."""
        if value is None or math.isnan(value):
            return False
        return value < self.threshold if self.op == "<" else value <= self.threshold

    def __str__(self) -> str:
        if self.is_latency:
            return f"{self.metric} {self.op} {self.threshold:g} ms"
        return f"error_rate {self.op} {self.threshold * 100:g}%"


def parse_slo(text: str) -> tuple[Objective, ...]:
    """Parse an SLO expression into its objectives.

    Args:
        text: e.g. ``"p95<500"``, ``"p99 <= 1.2s and error_rate < 1%"``,
            ``"p(95)<500 && rate<0.01"``.

    Returns:
        The objectives in the order written.

    Raises:
        ConfigError: the expression does not follow the grammar in this module's docstring.

    Example:
        >>> [str(o) for o in parse_slo("p95<500, errors<1%")]
        ['p95 < 500 ms', 'error_rate < 1%']
        >>> [str(o) for o in parse_slo("p(95)<500 && rate<0.01")]
        ['p95 < 500 ms', 'error_rate < 1%']
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"bad SLO {text!r}: expected e.g. 'p95<500' or 'p99<1.2s, errors<1%'")
    objectives = []
    normal = _K6_PERCENTILE.sub(lambda m: f"p{m.group(1)}", text.strip())
    for clause in _SPLIT.split(normal):
        match = _CLAUSE.match(clause)
        if match is None:
            raise ConfigError(
                f"bad SLO clause {clause!r} in {text!r}: expected METRIC < VALUE, e.g. 'p95<500', "
                "'p99<=1.2s' or 'error_rate<1%'")
        metric = match["metric"].lower()
        metric = _ALIASES.get(metric, metric)
        value = float(match["value"])
        unit = (match["unit"] or "").lower()
        if metric == ERROR_RATE:
            if unit in ("ms", "s"):
                raise ConfigError(f"bad SLO clause {clause!r}: an error rate has no time unit")
            value = value / 100.0 if unit == "%" else value
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"bad SLO clause {clause!r}: an error rate is between 0 and "
                                  "1 (or 0% and 100%)")
        elif metric in LATENCY_METRICS:
            if unit == "%":
                raise ConfigError(f"bad SLO clause {clause!r}: a latency is in ms or s, not %")
            value = value * 1000.0 if unit == "s" else value
            if value <= 0:
                raise ConfigError(f"bad SLO clause {clause!r}: the latency must be > 0")
        else:
            raise ConfigError(
                f"bad SLO clause {clause!r}: unknown metric {match['metric']!r}; use one of "
                f"{', '.join(LATENCY_METRICS)} or error_rate")
        objectives.append(Objective(metric, match["op"], value))
    return tuple(objectives)


def format_slo(objectives: tuple[Objective, ...]) -> str:
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
