"""Thresholds in k6's own syntax, evaluated by perfstats on a run of any tool.

A threshold pairs a metric, optionally narrowed by k6's tag selector, with expressions of
:mod:`perfstats.slo`'s grammar, as k6's ``options.thresholds`` and ``[thresholds]`` of
perfstats.toml write them::

    [thresholds]
    "http_req_duration{scenario:booking_flow}" = ["p(95)<300"]
    booking_success_rate = ["rate>0.98"]
    checks = ["rate>0.99"]
    bookings_created = ["count>500"]
    "http_req_duration{name:/api/quote}" = ["p(99)<800"]      # Locust and Artillery too

:func:`evaluate` computes each aggregation on a stored run: from raw samples when the run has
them (``exact``: k6's own definitions, percentiles by linear interpolation), else from the
figures the tool wrote (``tool-summary``: k6 summaries, Artillery aggregates, the per-endpoint
summaries of every tool, where ``http_req_duration{name:NAME}`` is the endpoint NAME). A metric
or tag the run does not have is an error, never a silent pass. :func:`declared_thresholds` reads
the thresholds a k6 run declared, with k6's own verdict, so that both can be shown side by side.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from perfstats.errors import ConfigError
from perfstats.slo import Objective, Tags, parse_selector, parse_slo
from perfstats.store import ALL_ENDPOINTS, Store

RESULT_SCHEMA: dict[str, Any] = {
    "source": pl.String, "metric": pl.String, "expression": pl.String, "value": pl.Float64,
    "ok": pl.Boolean, "tool_ok": pl.Boolean, "method": pl.String, "count": pl.Int64,
    "note": pl.String,
}
"""Columns of :func:`evaluate`'s frame: where the threshold comes from (``config`` or the
tool, ``k6``), the selector and expression as written, perfstats' value of the (first failing)
clause, its verdict, the tool's own verdict (None when the tool gave none), how the value was
obtained, the number of samples it rests on, and a note."""

_COLUMNS = {"name": "name", "method": "method", "status": "status", "url": "url",
            "group": "grp", "scenario": "scenario", "error_code": "error_code",
            "check": "check_name"}
_KINDS = {"trend": "trend", "histogram": "trend", "rate": "rate", "counter": "counter",
          "gauge": "gauge"}
_STAT_NAMES = {"p50": ("med", "median", "p50", "p(50)"), "mean": ("avg", "mean"),
               "min": ("min",), "max": ("max",), "count": ("count",), "rate": ("rate",),
               "value": ("value",)}
_ARTILLERY_ENDPOINT = re.compile(r"^plugins\.metrics-by-endpoint\.response_time\.(?P<name>.+)$")


@dataclass(frozen=True)
class Threshold:
    """One threshold: a metric selector and one expression.

    Attributes:
        metric: the selector as written, ``http_req_duration{scenario:booking_flow}``.
        expression: the expression as written, ``p(95)<300``.
        source: ``config`` (perfstats.toml) or the tool that declared it (``k6``).
        tool_ok: the tool's own verdict (True = passed), None when it gave none.
    """

    metric: str
    expression: str
    source: str = "config"
    tool_ok: bool | None = None


def parse_thresholds(table: Mapping[str, Any], *, where: str = "thresholds"
                     ) -> tuple[Threshold, ...]:
    """``{selector: expression | [expressions]}`` (the ``[thresholds]`` table) as thresholds.

    Every expression is parsed at once, so a bad one fails before any run is read.

    Raises:
        ConfigError: a bad selector or expression (named in the message).
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table metric -> [expressions], got {table!r}")
    out = []
    for metric, spec in table.items():
        items = [spec] if isinstance(spec, str) else spec
        if not isinstance(items, Sequence) or not items or not all(
                isinstance(e, str) for e in items):
            raise ConfigError(f"{where}.{metric}: expected an expression or a list of them, "
                              f"got {spec!r}")
        for expression in items:
            try:
                parse_slo(expression, metric=str(metric))
            except ConfigError as exc:
                try:  # a Counter's rate is per second; the kind is known once a run is read
                    parse_slo(expression, metric=str(metric), kind="counter")
                except ConfigError:
                    raise ConfigError(f"{where}.{metric}: {exc}") from None
            out.append(Threshold(str(metric), expression))
    return tuple(out)


def declared_thresholds(store: Store, run_id: str) -> tuple[Threshold, ...]:
    """The thresholds the run declared itself (k6 ``options.thresholds``), with its verdicts."""
    frame = store.query("SELECT t.metric, t.expression, t.ok, r.tool FROM thresholds t JOIN runs "
                        "r USING (run_id) WHERE run_id = ? ORDER BY t.metric, t.expression",
                        [run_id])
    return tuple(Threshold(m, e, str(tool), ok) for m, e, ok, tool in frame.iter_rows())


# ---------------------------------------------------------------------------------------------


def _tag_sql(key: str) -> str:
    if key in _COLUMNS:
        return f"CAST({_COLUMNS[key]} AS VARCHAR)"
    if key == "expected_response":
        return "lower(CAST(expected_response AS VARCHAR))"
    quoted = key.replace('"', '\\"')
    return f"json_extract_string(extra, '$.\"{quoted}\"')"


def _quantile(aggregation: str) -> float | None:
    if aggregation == "p50":
        return 0.5
    if re.fullmatch(r"p\d+(?:\.\d+)?", aggregation):
        return float(aggregation[1:]) / 100.0
    return None


def _aggregate_sql(aggregation: str, kind: str | None) -> str:
    """The SQL of one aggregation of a selector's samples (k6's definitions: a Counter's count
    is its sum and its rate per second of the run); a percentile reads the list
    ``quantiles``."""
    if _quantile(aggregation) is not None:
        return "quantiles"
    if aggregation == "error_rate":  # the requests' failures, k6's http_req_failed
        return "avg(CASE WHEN coalesce(expected_response, true) THEN 0 ELSE 1 END)"
    if aggregation == "rate" and kind == "counter":
        return "sum(value) / $duration"
    return {"mean": "avg(value)", "min": "min(value)", "max": "max(value)",
            "count": "sum(value)" if kind == "counter" else "count(*)",
            "rate": "avg(CASE WHEN value <> 0 THEN 1.0 ELSE 0.0 END)",
            "value": "arg_max(value, ts)"}[aggregation]


class RunFacts:
    """What evaluating thresholds needs of one run, read once.

    The clauses computed from raw samples are computed together: :meth:`prefetch` reads every
    one of them in one pass over the run's samples, and :meth:`value` answers from that.
    """

    def __init__(self, store: Store, run_id: str, *, meta: Mapping[str, Any] | None = None,
                 sampled: Iterable[str] | None = None) -> None:
        self.store, self.run_id = store, run_id
        self.meta = dict(meta) if meta is not None else store.run_meta(run_id)
        metrics = store.query("SELECT metric, type, stat, value FROM metrics WHERE run_id = ?",
                              [run_id])
        self.kinds = {str(m).split("{", 1)[0]: _KINDS[t] for m, t in metrics.select(
            "metric", "type").unique(maintain_order=True).iter_rows() if t in _KINDS}
        self.stats: dict[str, dict[str, float]] = {}
        for metric, _, stat, value in metrics.iter_rows():
            if stat is not None:
                self.stats.setdefault(str(metric), {})[str(stat)] = value
        # The metric names of the raw samples, unless the caller has read them already.
        self.sampled = set(sampled if sampled is not None else store.sampled_metrics(run_id))
        self.summaries = {r["tool_name"] or r["endpoint"]: r for r in store.query(
            "SELECT * FROM summaries WHERE run_id = ?", [run_id]).iter_rows(named=True)}
        self.endpoints = {r["endpoint"]: r for r in self.summaries.values()}
        self._exact: dict[tuple[str, Tags, str], tuple[Any, int]] = {}

    @property
    def duration_s(self) -> float:
        return float(self.meta.get("duration_s") or 0.0)

    def value(self, objective: Objective, selector: str) -> tuple[float | None, str, int]:
        """(value, method, count) of one clause; raises ConfigError for what the run lacks."""
        metric = objective.metric
        if metric in self.sampled:
            return self._from_samples(objective, selector)
        if selector in self.stats or metric in self.stats:
            return self._from_stats(objective, selector)
        return self._from_summaries(objective, selector)

    def prefetch(self, thresholds: Iterable[Threshold]) -> None:
        """Compute every clause of ``thresholds`` that reads raw samples, in one DuckDB query
        (one scan of the run's samples, whatever the number of thresholds). A threshold that
        does not parse is left for its evaluation to report."""
        objectives: list[Objective] = []
        for threshold in thresholds:
            try:
                objectives.extend(_objectives(self, threshold))
            except ConfigError:
                continue
        self._compute(objectives)

    def _compute(self, objectives: Sequence[Objective]) -> None:
        """One pass over the samples: each sample is counted in every selector it matches
        (``sel``), and each aggregation any clause asks for is computed per selector."""
        wanted = [o for o in objectives if o.metric in self.sampled
                  and (o.metric, o.tags, o.aggregation) not in self._exact]
        if not wanted:
            return
        selectors = {key: i for i, key in enumerate(dict.fromkeys((o.metric, o.tags)
                                                                  for o in wanted))}
        aggregates = {o: _aggregate_sql(o.aggregation, self.kinds.get(o.metric)) for o in wanted}
        # Percentiles by linear interpolation (k6's), every level from one sort of the values
        # of each selector that has one.
        levels = list(dict.fromkeys(q for o in wanted if (q := _quantile(o.aggregation))
                                    is not None))
        ranked = sorted({selectors[o.metric, o.tags] for o in wanted
                          if _quantile(o.aggregation) is not None})
        quantiles = "quantile_cont(value, [{}]) FILTER (WHERE sel IN ({}))".format(
            ", ".join(f"CAST({q!r} AS DOUBLE)" for q in levels), ", ".join(map(str, ranked)))
        columns = list(dict.fromkeys(aggregates.values()))
        params: dict[str, Any] = {"run": self.run_id}
        if "sum(value) / $duration" in columns:  # DuckDB refuses a parameter it does not use
            params["duration"] = self.duration_s or math.nan
        branches: dict[str, list[str]] = {}
        for (metric, tags), i in selectors.items():
            match = []
            for j, (key, value) in enumerate(tags):
                params[f"t{i}_{j}"] = value
                match.append(f"{_tag_sql(key)} = $t{i}_{j}")
            branches.setdefault(metric, []).append(
                f"CASE WHEN {' AND '.join(match)} THEN {i} END" if match else str(i))
        params.update({f"m{k}": metric for k, metric in enumerate(branches)})
        cases = " ".join(f"WHEN $m{k} THEN [{', '.join(b)}]"
                         for k, b in enumerate(branches.values()))
        select = ", ".join(f"{quantiles if c == 'quantiles' else c} AS c{k}"
                           for k, c in enumerate(columns))
        frame = self.store.query(f"""
            SELECT sel, count(*) AS n, {select}
            FROM (SELECT ts, value, expected_response, unnest(CASE metric {cases} END) AS sel
                  FROM samples WHERE run_id = $run
                  AND metric IN ({', '.join(f'$m{k}' for k in range(len(branches)))}))
            WHERE sel IS NOT NULL GROUP BY sel
            """, params)
        found = {row[0]: (int(row[1]), dict(zip(columns, row[2:], strict=True)))
                 for row in frame.iter_rows()}
        for o in wanted:
            n, values = found.get(selectors[o.metric, o.tags], (0, {}))
            value = values.get(aggregates[o])
            if value is not None and aggregates[o] == "quantiles":
                value = value[levels.index(_quantile(o.aggregation))]
            self._exact[o.metric, o.tags, o.aggregation] = (value, n)

    def _from_samples(self, o: Objective, selector: str) -> tuple[float | None, str, int]:
        key = (o.metric, o.tags, o.aggregation)
        if key not in self._exact:
            self._compute([o])
        value, n = self._exact[key]
        if not n:
            self._missing_tags(o, selector)
        return (None if value is None else float(value)), "exact", n

    def _missing_tags(self, o: Objective, selector: str) -> None:
        for key, wanted in o.tags:
            frame = self.store.query(
                f"SELECT DISTINCT {_tag_sql(key)} AS v FROM samples WHERE run_id = ? AND "
                f"metric = ? AND {_tag_sql(key)} IS NOT NULL ORDER BY v", [self.run_id, o.metric])
            seen = [v for v in frame["v"].to_list() if v != ""]
            if wanted not in seen:
                have = ", ".join(seen[:12]) + (" ..." if len(seen) > 12 else "") or "none"
                raise ConfigError(f"threshold on {selector}: run {self.run_id} has no "
                                  f"{o.metric} samples with {key}={wanted} ({key} values: "
                                  f"{have})")
        raise ConfigError(f"threshold on {selector}: run {self.run_id} has no {o.metric} "
                          "samples with all these tags")

    def _from_stats(self, o: Objective, selector: str) -> tuple[float | None, str, int]:
        name = selector if selector in self.stats else o.metric
        if name != selector and o.tags:
            self._unknown(selector)
        stats = self.stats[name]
        kind = self.kinds.get(o.metric)
        agg = o.aggregation
        q = _quantile(agg)
        names = _STAT_NAMES.get(agg, ())
        if q is not None and agg != "p50":
            level = f"{q * 100:g}"
            names = (f"p({level})", f"p{level}", f"p{level.replace('.', '')}")
        if agg == "error_rate":
            names = ("rate",)
        if agg == "rate" and kind == "counter":
            names = ("rate",)
        count = stats.get("count") or ((stats.get("passes") or 0) + (stats.get("fails") or 0))
        for stat in names:
            if stat in stats and stats[stat] is not None:
                return float(stats[stat]), "tool-summary", int(count or 0)
        raise ConfigError(f"threshold on {selector}: run {self.run_id}'s summary has no {agg} "
                          f"of {name} (it has {', '.join(sorted(stats))})")

    def _from_summaries(self, o: Objective, selector: str) -> tuple[float | None, str, int]:
        metric, tags = o.metric, dict(o.tags)
        artillery = _ARTILLERY_ENDPOINT.match(metric)
        if metric in ("http_req_duration", "http_req_failed", "http_reqs", "http.response_time"
                      ) or artillery:
            if artillery:
                tags = {"name": artillery["name"]}
            if set(tags) - {"name"}:
                self._unknown(selector)
            row = self.summaries.get(tags["name"]) or self.endpoints.get(tags["name"]) \
                if "name" in tags else self.endpoints.get(ALL_ENDPOINTS)
            if row is None:
                names = ", ".join(sorted(k for k in self.summaries if k != ALL_ENDPOINTS))
                raise ConfigError(f"threshold on {selector}: run {self.run_id} has no endpoint "
                                  f"{tags.get('name')!r} (endpoints: {names})")
            count = int(row["count"] or 0)
            agg = o.aggregation
            if metric == "http_req_failed" or agg == "error_rate":
                value = None if not count or row["failures"] is None else row["failures"] / count
            elif metric == "http_reqs":
                value = count if agg == "count" else (row["rps"] if row["rps"] is not None
                                                      else count / (self.duration_s or math.nan))
            else:
                value = row.get(agg)
                if agg not in row:
                    raise ConfigError(f"threshold on {selector}: the tool's summary has no "
                                      f"{agg} (it has p50, p90, p95, p99, mean, min, max)")
            return (None if value is None else float(value)), "tool-summary", count
        self._unknown(selector)
        raise AssertionError  # pragma: no cover

    def _unknown(self, selector: str) -> None:
        known = sorted({m.split("{", 1)[0] for m in (*self.sampled, *self.stats)})
        raise ConfigError(f"threshold on {selector}: run {self.run_id} has no such metric "
                          f"(it has {', '.join(known[:20])}{' ...' if len(known) > 20 else ''})")


def evaluate(store: Store, run_id: str, thresholds: Sequence[Threshold], *,
             strict: bool = True) -> pl.DataFrame:
    """Evaluate thresholds on a stored run; one row per threshold (:data:`RESULT_SCHEMA`).

    Args:
        store: the store holding the run.
        run_id: the run.
        thresholds: from :func:`parse_thresholds` or :func:`declared_thresholds`.
        strict: raise for a threshold that cannot be evaluated; False gives it a row with
            ``ok`` None and the reason in ``note`` (for thresholds a tool declared).

    Raises:
        ConfigError: with ``strict``, a threshold's metric, tag or statistic is not in the run,
            or a bad expression.

    Example:
        >>> checks = parse_thresholds({"checks": ["rate>0.99"]})
        >>> evaluate(store, run.run_id, checks)  # doctest: +SKIP
    """
    return evaluate_facts(RunFacts(store, run_id), thresholds, strict=strict)


def evaluate_facts(run: RunFacts, thresholds: Sequence[Threshold], *, strict: bool = True
                   ) -> pl.DataFrame:
    """:func:`evaluate` on a run already read (a run's facts are read once for many calls).

    Every clause read from raw samples is computed in one pass over the run's samples."""
    run.prefetch(thresholds)
    rows = []
    for threshold in thresholds:
        try:
            results = [(o, *run.value(o, threshold.metric)) for o in _objectives(run, threshold)]
        except ConfigError as exc:
            if strict:
                raise
            rows.append({"source": threshold.source, "metric": threshold.metric,
                         "expression": threshold.expression, "value": None, "ok": None,
                         "tool_ok": threshold.tool_ok, "method": "none", "count": 0,
                         "note": f"not evaluated: {exc}"})
            continue
        failing = [r for r in results if not r[0].holds(r[1])]
        shown = failing[0] if failing else results[0]
        note = "" if len(results) == 1 else "; ".join(
            f"{o.aggregation} {o.op} {o.threshold:g}: {v if v is None else round(v, 6)}"
            for o, v, _, _ in results)
        rows.append({"source": threshold.source, "metric": threshold.metric,
                     "expression": threshold.expression, "value": shown[1], "ok": not failing,
                     "tool_ok": threshold.tool_ok, "method": shown[2], "count": shown[3],
                     "note": note})
    return pl.DataFrame(rows, schema=RESULT_SCHEMA) if rows else pl.DataFrame(
        schema=RESULT_SCHEMA)


def _objectives(run: RunFacts, threshold: Threshold) -> tuple[Objective, ...]:
    base = threshold.metric.split("{", 1)[0]
    try:
        parse_selector(threshold.metric)
        return parse_slo(threshold.expression, metric=threshold.metric,
                         kind=run.kinds.get(base, "trend" if base == "http_req_duration"
                                            else None))
    except ConfigError as exc:
        raise ConfigError(f"threshold {threshold.metric}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# One aggregation of a metric over many runs (history of a custom metric)


def parse_metric_spec(spec: str) -> Objective:
    """``NAME[{tags}]:AGGREGATION`` (``quote_duration:p95``, ``checks:rate``,
    ``http_req_duration{scenario:booking_flow}:p(99)``) as an objective whose metric, tags and
    aggregation say what to read (its threshold is meaningless).

    Raises:
        ConfigError: not of that form, or an unknown aggregation.
    """
    selector, sep, aggregation = spec.rpartition(":")
    if not sep or not selector or not aggregation or aggregation.endswith("}"):
        raise ConfigError(f"bad metric {spec!r}: expected NAME:AGGREGATION, e.g. "
                          "'quote_duration:p95' or 'booking_success_rate:rate'")
    try:
        return parse_slo(f"{aggregation}<1", metric=selector, kind="counter")[0]
    except ConfigError as exc:
        raise ConfigError(f"bad metric {spec!r}: {exc}") from None


def per_run_values(store: Store, objective: Objective, run_ids: Sequence[str]) -> pl.DataFrame:
    """The objective's aggregation of its metric on each run: run_id, value, method.

    Raw samples where a run has them (one query for all runs), else the tool's summary
    figure; a run without the metric has no row.
    """
    out = []
    sampled = _sampled_values(store, objective, run_ids)
    out.extend({"run_id": r, "value": v, "method": "exact"} for r, v in sampled.items())
    for run_id in run_ids:
        if run_id in sampled:
            continue
        try:
            value, method, _ = RunFacts(store, run_id).value(objective, objective.selector)
        except ConfigError:
            continue
        out.append({"run_id": run_id, "value": value, "method": method})
    return pl.DataFrame(out, schema={"run_id": pl.String, "value": pl.Float64,
                                     "method": pl.String})


def _sampled_values(store: Store, o: Objective, run_ids: Sequence[str]) -> dict[str, float]:
    if not run_ids:
        return {}
    agg, q = o.aggregation, _quantile(o.aggregation)
    where = "".join(f" AND {_tag_sql(k)} = ?" for k, _ in o.tags)
    if agg == "error_rate":
        expr = "avg(CASE WHEN coalesce(s.expected_response, true) THEN 0 ELSE 1 END)"
    elif q is not None:
        expr = f"quantile_cont(s.value, {q!r})"
    else:
        counter = "k.type = 'counter'"
        expr = {"mean": "avg(s.value)", "min": "min(s.value)", "max": "max(s.value)",
                "count": f"CASE WHEN any_value({counter}) THEN sum(s.value) ELSE count(*) END",
                "rate": f"CASE WHEN any_value({counter}) THEN sum(s.value) / "
                        "any_value(r.duration_s) ELSE avg(CASE WHEN s.value <> 0 THEN 1.0 "
                        "ELSE 0.0 END) END",
                "value": "arg_max(s.value, s.ts)"}[agg]
    marks = ", ".join("?" for _ in run_ids)
    frame = store.query(f"""
        SELECT s.run_id, {expr} AS v
        FROM samples s JOIN runs r USING (run_id)
        LEFT JOIN (SELECT DISTINCT run_id, type FROM metrics WHERE metric = ?
                   AND type IS NOT NULL) k USING (run_id)
        WHERE s.run_id IN ({marks}) AND s.metric = ? AND s.value IS NOT NULL{where}
        GROUP BY s.run_id
        """, [o.metric, *run_ids, o.metric, *(v for _, v in o.tags)])
    return {r: float(v) for r, v in frame.iter_rows() if v is not None}


def evaluate_thresholds(run: Any, thresholds: Mapping[str, Any] | Sequence[Threshold] | None
                        = None) -> pl.DataFrame:
    """Thresholds evaluated on a :class:`~perfstats.Run`, beside the tool's own verdict.

    Args:
        run: the run.
        thresholds: ``{selector: [expressions]}`` in k6's syntax (as ``[thresholds]`` of
            perfstats.toml), or :class:`Threshold` objects; None (the default) re-evaluates the
            thresholds the run declared (k6), each beside k6's verdict (``tool_ok``).

    Returns:
        One row per threshold (:data:`RESULT_SCHEMA`).

    Raises:
        ConfigError: a given threshold whose metric, tag or statistic the run lacks. A declared
            one that cannot be evaluated gets ``ok`` None and the reason in ``note``.

    Example:
        >>> evaluate_thresholds(run)  # doctest: +SKIP
        >>> evaluate_thresholds(run, {"checks": ["rate>0.99"]})  # doctest: +SKIP
    """
    if thresholds is None:
        return evaluate(run.store, run.run_id, declared_thresholds(run.store, run.run_id),
                        strict=False)
    given = parse_thresholds(thresholds) if isinstance(thresholds, Mapping) else tuple(thresholds)
    return evaluate(run.store, run.run_id, given)
