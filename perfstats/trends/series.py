"""History: one value per run and endpoint over many runs, where it changed, and how noisy it is.

:func:`history` reads every stored run's per-endpoint summary (one SQL query), runs
:func:`~perfstats.trends.changepoint.detect_change_points` on each endpoint's series (in run
start order) and measures the run-to-run noise of the current regime, i.e. of the runs since the
last change point. :func:`baseline_runs` turns that into the baseline of ``perfstats compare
--baseline auto``; :func:`export_parquet` writes the store as Parquet partitioned by run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from scipy import stats

from perfstats.errors import ArgumentError, InsufficientDataError, StoreError
from perfstats.render.document import Document, Result, Section
from perfstats.render.tables import show, to_records
from perfstats.store import DB, SCHEMA, PathLike, Store, open_store
from perfstats.trends.changepoint import Method, detect_change_points

if TYPE_CHECKING:
    import altair as alt


METRICS: dict[str, str] = {
    "p50": "s.p50",
    "p90": "s.p90",
    "p95": "s.p95",
    "p99": "s.p99",
    "mean": "s.mean",
    "min": "s.min",
    "max": "s.max",
    "rps": "s.rps",
    "error_rate": "CASE WHEN s.count > 0 THEN s.failures / s.count END",
}
"""Metrics a history can follow, with their SQL over the ``summaries`` table (alias ``s``)."""

_UNITS = {"rps": "requests/s", "error_rate": "share of requests"}

_CHANGE_SCHEMA = {
    "endpoint": pl.String, "metric": pl.String, "index": pl.Int64, "run_id": pl.String,
    "started_at": pl.Datetime("us", "UTC"), "before": pl.Float64, "after": pl.Float64,
    "change_pct": pl.Float64, "p_value": pl.Float64,
}
_LEFT_OUT_SCHEMA = {"run_id": pl.String, "started_at": pl.Datetime("us", "UTC"),
                    "kind": pl.String, "reason": pl.String}
_NOISE_SCHEMA = {
    "endpoint": pl.String, "metric": pl.String, "n_runs": pl.Int64, "since_run_id": pl.String,
    "mean": pl.Float64, "cv_pct": pl.Float64, "min_detectable_change_pct": pl.Float64,
}


@dataclass(frozen=True, eq=False)
class History(Result):
    """Per-endpoint series over runs, their change points and their run-to-run noise.

    Attributes:
        series: one row per run, endpoint and metric, in run start order: run_id, started_at
            (UTC), endpoint, metric, value (ms for latencies), labels.
        change_points: endpoint, metric, index (0-based position in that endpoint's series, the
            first run of the new regime), run_id and started_at of that run, before and after
            (segment means), change_pct (after / before - 1, in %), p_value.
        noise: per endpoint and metric, among the runs since the last change point: n_runs,
            since_run_id, mean, cv_pct (run-to-run coefficient of variation, %) and
            min_detectable_change_pct (see :func:`detectable_change`).
        settings: the query and detection options that produced this history.
        left_out: the runs left out as unlike the latest one: run_id, started_at, kind (tool,
            load model, load shape, peak users and endpoints, in words) and why.
        warnings: what a reader must know: runs left out, or unlike runs kept (``like="all"``).
    """

    series: pl.DataFrame
    change_points: pl.DataFrame
    noise: pl.DataFrame
    settings: dict[str, Any]
    left_out: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=_LEFT_OUT_SCHEMA))
    warnings: tuple[str, ...] = ()

    def display_frame(self) -> pl.DataFrame:
        """One row per endpoint and metric: runs, last value, trend, change points and noise.

        ``trend`` is a unicode sparkline of the last 30 values; ``last_change_run`` and
        ``last_change_pct`` describe the latest change point.
        """
        per_series = self.series.group_by("endpoint", "metric", maintain_order=True).agg(
            pl.len().alias("runs"),
            pl.col("value").last().alias("last"),
            pl.col("value").tail(30).alias("trend"),
        ).with_columns(pl.col("trend").map_elements(_sparkline, return_dtype=pl.String))
        changes = self.change_points.group_by("endpoint", "metric").agg(
            pl.len().alias("change_points"),
            pl.col("run_id").last().alias("last_change_run"),
            pl.col("change_pct").last().alias("last_change_pct"),
        )
        return (
            per_series.join(changes, on=["endpoint", "metric"], how="left")
            .join(self.noise.select("endpoint", "metric", "cv_pct", "min_detectable_change_pct"),
                  on=["endpoint", "metric"], how="left")
            .with_columns(pl.col("change_points").fill_null(0))
        )

    def to_dict(self) -> dict[str, Any]:
        """Settings, series, change points and noise as plain JSON-able values."""
        return {
            "settings": dict(self.settings),
            "series": to_records(self.series),
            "change_points": to_records(self.change_points),
            "noise": to_records(self.noise),
            "left_out": to_records(self.left_out),
            "warnings": list(self.warnings),
        }

    def headline(self) -> str:
        """One line: what was followed over how many runs, and the latest change point."""
        text = (f"History of {', '.join(self.settings['metrics'])} over "
                f"{self.series['run_id'].n_unique()} runs: "
                f"{self.change_points.height} change point(s)")
        if self.change_points.height:
            last = self.change_points.sort("started_at").row(-1, named=True)
            text += (f"; latest {last['endpoint']} {last['metric']} {last['change_pct']:+.1f}% "
                     f"at run {last['run_id']}")
        return text

    def document(self) -> Document:
        """The overview per endpoint and metric, every change point, and the runs left out."""
        left_out = ([Section("Left out: unlike the latest run", table=show(self.left_out))]
                    if self.left_out.height else [])
        changes = (Section("Change points", table=show(self.change_points.drop("index")))
                   if self.change_points.height
                   else Section("Change points", text=["No change point found."]))
        return Document(title=f"History of {', '.join(self.settings['metrics'])} "
                              f"({self.series['run_id'].n_unique()} runs)",
                        lead=[self.headline()], warnings=self.warnings,
                        sections=[Section(table=show(self.display_frame())), changes,
                                  *left_out])

    def chart(self, *, endpoint: str | None = None, metric: str | None = None) -> alt.LayerChart:
        """The series over run start time, one line per endpoint, change points as dashed rules.

        Args:
            endpoint: plot only this endpoint (default: all of them).
            metric: plot only this metric (default: the first one asked for).
        """
        from perfstats.render import charts

        metric = metric or self.settings["metrics"][0]
        series = self.series.filter(pl.col("metric") == metric)
        points = self.change_points.filter(pl.col("metric") == metric)
        if endpoint is not None:
            series = series.filter(pl.col("endpoint") == endpoint)
            points = points.filter(pl.col("endpoint") == endpoint)
        return charts.history_series(
            series, change_points=points,
            y_title=f"{metric} ({_UNITS.get(metric, 'ms')})",
            title=f"History of {metric}" + (f" on {endpoint}" if endpoint else ""),
        )


def history(
    *,
    db: DB = None,
    endpoint: str | None = None,
    metric: str | Sequence[str] = "p95",
    labels: Mapping[str, str] | None = None,
    exclude: Iterable[str] = (),
    p_value: float = 0.001,
    min_magnitude: float = 0.05,
    window: int = 50,
    method: Method = "otava",
    permutations: int = 199,
    seed: int | None = 0,
    alpha: float = 0.05,
    power: float = 0.8,
    like: Literal["latest", "all"] = "latest",
) -> History:
    """Follow a metric over the stored runs and find where it changed.

    Each endpoint's values, in run start order, go through :func:`detect_change_points`
    (Hunter/Otava by default) on the raw values, so the change magnitudes are relative changes
    of the metric itself.

    Args:
        db: a :class:`~perfstats.Store`, a database path, or None for the default store.
        endpoint: a glob on endpoint names (``"POST *"``, ``"*/quote"``); ``ALL`` is the whole run.
        metric: one of :data:`METRICS`, or ``NAME:AGGREGATION`` of any metric the runs
            recorded (``quote_duration:p95``, ``booking_success_rate:rate``,
            ``http_req_duration{scenario:booking_flow}:p99``; the series' endpoint is then the
            metric's name), or a list of them.
        labels: keep only runs having all these labels (e.g. ``{"branch": "main"}``).
        exclude: run ids to leave out (e.g. the candidate being compared).
        p_value: significance level of a change point.
        min_magnitude: smallest change point kept, as a relative change (0.05 = 5 %).
        window: window length of the Otava split step.
        method: ``"otava"`` or ``"permutation"`` (see :func:`detect_change_points`).
        permutations: permutations of the ``"permutation"`` method.
        seed: seed of the ``"permutation"`` method.
        alpha: one-sided level of the compare whose detectable change ``noise`` reports.
        power: power of that compare.
        like: ``"latest"`` (default) keeps only the runs of the same kind as the latest
            matching run: same tool, load model (closed/open), load shape (steady or ramped),
            peak users and set of endpoints; the others are in ``History.left_out`` and a
            warning says so. A steady run and a ramp, or a 20-user and a 100-user run, are not
            points of one series. ``"all"`` keeps every run and warns when their kinds differ
            (use it when ``labels`` already name a comparable line).

    Returns:
        A :class:`History`.

    Raises:
        InsufficientDataError: no stored run matches the labels, endpoint and metric.
        ValueError: an unknown metric or a bad detection option.

    Example:
        >>> h = history(db="perfstats.duckdb", labels={"branch": "main"})  # doctest: +SKIP
        >>> h.change_points  # doctest: +SKIP
    """
    metrics = [metric] if isinstance(metric, str) else list(metric)
    unknown = [m for m in metrics if m not in METRICS and ":" not in m]
    if unknown or not metrics:
        raise ArgumentError(f"unknown metric {unknown or metrics!r}; one of {', '.join(METRICS)}"
                            ", or NAME:AGGREGATION of any metric (quote_duration:p95)")
    custom = [m for m in metrics if m not in METRICS]
    objectives = {m: _metric_spec(m) for m in custom}
    if like not in ("latest", "all"):
        raise ArgumentError(f"like must be 'latest' or 'all', got {like!r}")
    store = open_store(db)
    with store.reading():  # one read connection for these queries
        parts = []
        if len(custom) < len(metrics):
            parts.append(_series(store, [m for m in metrics if m in METRICS], endpoint,
                                 dict(labels or {}), list(exclude)))
        if custom:
            parts.append(_custom_series(store, objectives, dict(labels or {}), list(exclude)))
        series = pl.concat(parts, how="vertical_relaxed")
        series, left_out, warnings = _like_with_like(store, series, like)
        if series.is_empty():
            raise InsufficientDataError(
                f"no stored run has {'/'.join(metrics)} values"
                + (f" for endpoints matching {endpoint!r}" if endpoint else "")
                + (f" with labels {_label_text(labels)}" if labels else "")
                + f" in store {store.path}")
    options = {"p_value": p_value, "min_magnitude": min_magnitude, "window": window,
               "method": method, "permutations": permutations, "seed": seed}
    changes, noise = [], []
    # One detection per endpoint and metric (a handful of series, never one per run).
    for group in series.partition_by("endpoint", "metric", maintain_order=True):
        found = detect_change_points(group["value"].to_numpy(), **options)
        key = {"endpoint": group["endpoint"][0], "metric": group["metric"][0]}
        changes += [{**key, "index": cp.index, "run_id": group["run_id"][cp.index],
                     "started_at": group["started_at"][cp.index], "before": cp.mean_before,
                     "after": cp.mean_after, "change_pct": 100 * cp.relative_change,
                     "p_value": cp.p_value} for cp in found]
        stable = group[found[-1].index:] if found else group
        noise.append({**key, **_noise(stable, alpha=alpha, power=power)})
    settings = {"metrics": metrics, "endpoint": endpoint, "labels": dict(labels or {}),
                "exclude": sorted(exclude), **options, "alpha": alpha, "power": power,
                "like": like}
    return History(series, pl.DataFrame(changes, schema=_CHANGE_SCHEMA),
                   pl.DataFrame(noise, schema=_NOISE_SCHEMA), settings, left_out, tuple(warnings))


def run_kinds(store: Store, run_ids: Sequence[str]) -> pl.DataFrame:
    """What makes two runs comparable, per run: run_id, started_at, tool, load_model, shape
    (``steady``: the users, or else the arrival rate, of the first quarter of the run's
    windows reach 80 % of the peak; ``ramped`` otherwise; null without windows), max_users,
    endpoints (sorted, ``ALL`` left out) and ``kind``, all of it in words."""
    if not run_ids:
        return pl.DataFrame()
    marks = ", ".join("?" * len(run_ids))
    frame = store.query(
        f"""
        WITH load AS (
            SELECT run_id,
                   quantile_cont(users, 0.25) AS users_q1, max(users) AS users_peak,
                   quantile_cont(arrivals / length_s, 0.25) AS arrivals_q1,
                   quantile_cont(arrivals / length_s, 0.9) AS arrivals_peak
            FROM windows WHERE endpoint = 'ALL' AND run_id IN ({marks}) GROUP BY run_id),
        names AS (
            SELECT run_id, string_agg(endpoint, ', ' ORDER BY endpoint) AS endpoints
            FROM summaries WHERE endpoint <> 'ALL' AND run_id IN ({marks}) GROUP BY run_id)
        SELECT r.run_id, coalesce(r.started_at, r.ingested_at) AS started_at, r.tool,
               r.load_model, r.max_users, n.endpoints,
               CASE WHEN l.users_peak > 0 THEN
                        CASE WHEN l.users_q1 >= 0.8 * l.users_peak THEN 'steady' ELSE 'ramped' END
                    WHEN l.arrivals_peak > 0 THEN
                        CASE WHEN l.arrivals_q1 >= 0.8 * l.arrivals_peak THEN 'steady'
                             ELSE 'ramped' END
               END AS shape
        FROM runs r LEFT JOIN load l USING (run_id) LEFT JOIN names n USING (run_id)
        WHERE r.run_id IN ({marks})
        """, [*run_ids, *run_ids, *run_ids])
    return frame.with_columns(
        pl.concat_str(
            pl.col("tool"),
            pl.lit(", "), pl.col("load_model").fill_null("unknown"), pl.lit(" model, "),
            pl.col("shape").fill_null("unknown shape"),
            pl.when(pl.col("max_users").is_not_null())
            .then(pl.format(" {} users", pl.col("max_users").round(0).cast(pl.Int64)))
            .otherwise(pl.lit("")),
            pl.lit(", "), pl.col("endpoints").str.count_matches(", ").add(1).cast(pl.String),
            pl.lit(" endpoints"),
        ).alias("kind"))


def _like_with_like(store: Store, series: pl.DataFrame, like: str
                    ) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """Keep the runs of the latest run's kind (``like="latest"``) and say what was left out;
    with ``like="all"`` keep every run and warn when their kinds differ."""
    empty = pl.DataFrame(schema=_LEFT_OUT_SCHEMA)
    if series.is_empty():
        return series, empty, []
    kinds = run_kinds(store, series["run_id"].unique().to_list()).sort("started_at", "run_id")
    key = ["tool", "load_model", "shape", "max_users", "endpoints"]
    latest = kinds.row(-1, named=True)
    same = pl.all_horizontal(pl.col(k).eq_missing(pl.lit(latest[k], dtype=kinds.schema[k]))
                             for k in key)
    unlike = kinds.filter(~same)
    if unlike.is_empty():
        return series, empty, []
    described = "; ".join(f"{n} run(s) {k}" for k, n in unlike.group_by("kind").len()
                          .sort("len", descending=True).iter_rows())
    if like == "all":
        return series, empty, [
            f"the runs differ in kind (the latest: {latest['kind']}; also {described}): their "
            "values are not one series, so change points and noise mix unlike runs"]
    reasons = pl.concat_str(
        [pl.when(~pl.col(k).eq_missing(pl.lit(latest[k], dtype=kinds.schema[k])))
         .then(pl.lit(k.replace("_", " "))) for k in key], separator=", ", ignore_nulls=True)
    left_out = unlike.select("run_id", "started_at", "kind",
                             reasons.map_elements(lambda r: f"other {r}",
                                                  return_dtype=pl.String).alias("reason"))
    kept = series.filter(~pl.col("run_id").is_in(unlike["run_id"].to_list()))
    return kept, left_out.cast(_LEFT_OUT_SCHEMA), [
        f"compared like with like: {kinds.height - unlike.height} run(s) of the latest run's "
        f"kind ({latest['kind']}); left out {unlike.height} unlike run(s): {described} "
        "(like='all' / --all-kinds keeps them)"]


def baseline_runs(
    *,
    db: DB = None,
    labels: Mapping[str, str] | None = None,
    endpoint: str | None = None,
    metric: str | Sequence[str] = "p95",
    exclude: Iterable[str] = (),
    **detection: Any,
) -> list[str]:
    """Run ids of the current regime: the runs since the last change point, oldest first.

    This is the pooled baseline of ``perfstats compare --baseline auto --label branch=main``:
    the history of the runs with ``labels`` is searched for change points on every endpoint
    matching ``endpoint`` (all by default), and the baseline starts at the latest of them, so
    that no endpoint's baseline mixes two regimes. Without any change point it is every run.

    Args:
        db: a :class:`~perfstats.Store`, a database path, or None for the default store.
        labels: the label(s) defining the line of runs (e.g. ``{"branch": "main"}``).
        endpoint: glob of the endpoints whose change points count.
        metric: the metric(s) whose change points count.
        exclude: run ids to leave out, typically the candidate itself.
        **detection: options of :func:`history` (p_value, min_magnitude, window, method...).

    Returns:
        Run ids in run start order.

    Raises:
        InsufficientDataError: no stored run matches.

    Example:
        >>> baseline_runs(db="perfstats.duckdb", labels={"branch": "main"})  # doctest: +SKIP
        ['4f1c...', '9a0b...']
    """
    found = history(db=db, labels=labels, endpoint=endpoint, metric=metric, exclude=exclude,
                    **detection)
    order = found.series.select("run_id", "started_at").unique("run_id").sort(
        "started_at", "run_id")["run_id"].to_list()
    if found.change_points.is_empty():
        return order
    position = {run_id: i for i, run_id in enumerate(order)}
    start = max(position[r] for r in found.change_points["run_id"])
    return order[start:]


def detectable_change(cv: float, n_runs: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest relative change of one new run that a compare against the pooled runs detects.

    One new run is compared with the mean of ``n_runs`` stable runs whose run-to-run coefficient
    of variation is ``cv``, by a one-sided t-test at level ``alpha``. The change it detects with
    probability ``power`` is ``(t[1-alpha] + t[power]) * cv * sqrt(1 + 1/n_runs)`` with
    ``n_runs - 1`` degrees of freedom (the usual normal-approximation power formula, with t
    quantiles for the estimated variance).

    Returns:
        A relative change (0.1 = 10 %); NaN for fewer than 2 runs.

    Example:
        >>> round(detectable_change(0.05, 10), 3)
        0.147
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha}, {power}")
    if n_runs < 2:
        return math.nan
    df = n_runs - 1
    quantiles = stats.t.ppf(1 - alpha, df) + stats.t.ppf(power, df)
    return float(quantiles * cv * math.sqrt(1 + 1 / n_runs))


def export_parquet(
    directory: PathLike, *, db: DB = None, overwrite: bool = False
) -> pl.DataFrame:
    """Write every table of the store as Parquet under ``directory``, partitioned by run.

    Each run table becomes a hive-partitioned dataset ``directory/<table>/run_id=<id>/*.parquet``
    (``runs`` too), which DuckDB, Spark or Trino read as one table, e.g. DuckDB's
    ``read_parquet('dir/summaries/*/*.parquet', hive_partitioning = true)``;
    ``perfstats_meta`` (the schema version) is one file, ``directory/perfstats_meta.parquet``.

    Args:
        directory: the target folder (created when missing).
        db: a :class:`~perfstats.Store`, a database path, or None for the default store.
        overwrite: replace the datasets of an earlier export in the same folder.

    Returns:
        One row per table: table, rows, path.

    Raises:
        StoreError: a table's folder already holds files and ``overwrite`` is False.

    Example:
        >>> export_parquet("export", db="perfstats.duckdb")  # doctest: +SKIP
    """
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise StoreError(f"{root}: exists and is not a folder")
    targets = {t: root / (f"{t}.parquet" if t == "perfstats_meta" else t) for t in SCHEMA}
    if not overwrite:
        taken = [p for p in targets.values() if p.is_file() or (p.is_dir() and any(p.iterdir()))]
        if taken:
            raise StoreError(f"{taken[0]}: an earlier export is in the way; pass overwrite=True "
                             "(--overwrite) or choose an empty folder")
    root.mkdir(parents=True, exist_ok=True)
    store = open_store(db)
    written = []
    with store.connect() as con:
        for table, path in targets.items():
            target = str(path).replace("'", "''")
            if table == "perfstats_meta":
                options = "FORMAT parquet"
            else:
                options = "FORMAT parquet, PARTITION_BY (run_id)" + (", OVERWRITE" if overwrite
                                                                      else "")
            # COPY answers with the number of rows it wrote.
            (rows,) = con.execute(
                f"COPY (SELECT * FROM {table}) TO '{target}' ({options})").fetchall()[0]
            written.append({"table": table, "rows": rows, "path": str(path)})
    return pl.DataFrame(written, schema={"table": pl.String, "rows": pl.Int64, "path": pl.String})


def _series(store: Store, metrics: list[str], endpoint: str | None, labels: dict[str, str],
            exclude: list[str]) -> pl.DataFrame:
    """Every matching (run, endpoint, metric) value in one query, in run start order."""
    where = ["value IS NOT NULL"]
    params: list[Any] = []
    if endpoint is not None:
        where.append("endpoint GLOB ?")
        params.append(endpoint)
    for key, value in labels.items():
        where.append("labels[?] = ?")
        params += [key, value]
    if exclude:
        where.append(f"run_id NOT IN ({', '.join('?' * len(exclude))})")
        params += exclude
    names = ", ".join(f"'{m}'" for m in metrics)
    values = ", ".join(METRICS[m] for m in metrics)
    return store.query(
        f"""
        SELECT run_id, started_at, endpoint, metric, value, labels FROM (
            SELECT r.run_id, coalesce(r.started_at, r.ingested_at) AS started_at,
                   r.ingested_at, s.endpoint, unnest([{names}]) AS metric,
                   unnest([{values}]::DOUBLE[]) AS value, r.labels
            FROM summaries s JOIN runs r USING (run_id))
        WHERE {' AND '.join(where)}
        ORDER BY endpoint, metric, started_at, ingested_at, run_id
        """,
        params,
    ).with_columns(pl.col("started_at").dt.convert_time_zone("UTC"))


def _metric_spec(spec: str) -> Any:
    from perfstats.errors import ConfigError
    from perfstats.thresholds import parse_metric_spec

    try:
        return parse_metric_spec(spec)
    except ConfigError as exc:
        raise ArgumentError(str(exc)) from None


def _custom_series(store: Store, objectives: Mapping[str, Any], labels: dict[str, str],
                   exclude: list[str]) -> pl.DataFrame:
    """Series of ``NAME:AGGREGATION`` metrics: exact from raw samples, else the tools'
    summaries (see :func:`perfstats.thresholds.per_run_values`)."""
    from perfstats.thresholds import per_run_values

    runs = store.runs(labels=labels or None) if labels else store.runs()
    runs = runs.filter(~pl.col("run_id").is_in(exclude)) if exclude else runs
    meta = runs.select(
        "run_id", pl.coalesce("started_at", "ingested_at").alias("started_at"), "ingested_at",
        "labels")
    parts = []
    for spec, objective in objectives.items():
        values = per_run_values(store, objective, meta["run_id"].to_list())
        parts.append(values.join(meta, on="run_id").with_columns(
            pl.lit(objective.selector).alias("endpoint"), pl.lit(spec).alias("metric")))
    frame = pl.concat(parts).sort("metric", "started_at", "ingested_at", "run_id")
    return frame.select("run_id", pl.col("started_at").dt.convert_time_zone("UTC"),
                        "endpoint", "metric", "value", "labels")


def _noise(stable: pl.DataFrame, *, alpha: float, power: float) -> dict[str, Any]:
    values = stable["value"]
    n = values.len()
    mean = values.mean()
    cv = values.std() / mean if n >= 2 and mean else math.nan
    return {
        "n_runs": n,
        "since_run_id": stable["run_id"][0],
        "mean": mean,
        "cv_pct": 100 * cv,
        "min_detectable_change_pct": 100 * detectable_change(cv, n, alpha=alpha, power=power),
    }


_BARS = "▁▂▃▄▅▆▇█"


def _sparkline(values: Sequence[float]) -> str:
    """A unicode bar per value (the last 30 runs), scaled between their minimum and maximum."""
    if not len(values):
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(_BARS[min(7, int((v - low) / span * 8))] for v in values)


def _label_text(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items())
