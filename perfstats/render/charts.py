"""Altair chart builders: a frame (or a mapping of frames) in, an ``alt.Chart`` out.

Builders plot what they are given and compute no statistics: callers aggregate first
(:meth:`perfstats.Run.timeline`, :meth:`perfstats.Run.quantiles`, the frames of
``Comparison``, ``CapacityPlan``, ``Bottlenecks`` and ``History``). A frame larger than
:data:`MAX_ROWS` is refused, so no chart ever carries a million points.

One look for every chart, without touching altair's global theme: the same sizes, palette, run
colours (baseline grey, candidate orange), verdict colours and a titled axis with its unit on
every axis. Data is embedded inline (``alt.InlineData``), so a chart is self-contained.

Charts render with no network anywhere: importing this module makes ``perfstats`` altair's
renderer unless one was chosen (``alt.renderers.enable(...)`` before or after still wins). It
shows a chart as its Vega-Lite spec (JupyterLab and VS Code draw it interactively with their
bundled Vega) and as an SVG drawn by vl-convert (what a plain ``jupyter nbconvert --to html``
export, GitHub and other static viewers show), never through a script from a CDN.

Builders:
    latency_over_time       percentiles per endpoint against time since the start
    throughput_over_time    requests/s, error rate and active users against time
    latency_distribution    ECDF of latency, one line per run (baseline vs candidate)
    change_per_endpoint     relative change per endpoint with its confidence interval
    capacity_curve          observed points, fitted curve, SLO line and marked knees
    bottleneck_bars         ranked impact bars with optional interval whiskers
    history_series          a metric over runs with change points marked
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import polars as pl

from perfstats.store import ALL_ENDPOINTS

MAX_ROWS = 20_000
"""Most rows a builder accepts; aggregate larger data first (e.g. ``Run.timeline()``)."""

WIDTH, HEIGHT = 640, 220
PANEL_WIDTH, PANEL_HEIGHT = 300, 150
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b",
           "#9d755d", "#ff9da6", "#bab0ac"]
ALL_COLOR = "#222222"
RUN_COLORS = {"baseline": "#7f7f7f", "candidate": "#f58518"}
PERCENTILE_COLORS = {"p50": "#4c78a8", "p90": "#72b7b2", "p95": "#f58518", "p99": "#e45756",
                     "max": "#7f7f7f", "mean": "#54a24b", "min": "#bab0ac"}
VERDICT_COLORS = {"regression": "#d62728", "slo_breach": "#9467bd", "inconclusive": "#bcbd22",
                  "insufficient_data": "#c7c7c7", "improved": "#2ca02c", "ok": "#7f7f7f",
                  "no change": "#7f7f7f"}
"""Colours of compare's statuses (``perfstats.compare``), worst first."""


OFFLINE_RENDERER = "perfstats"
"""Altair renderer name: Vega-Lite spec + inline SVG (no CDN), enabled on import."""


def offline_bundle(spec: dict[str, Any], **_metadata: Any) -> dict[str, Any]:
    """The mime bundle of a chart for Jupyter: the Vega-Lite spec (interactive where the
    front end has Vega: JupyterLab, VS Code), an SVG (every static export) and a text line."""
    import re

    found = re.search(r"/v(\d+)\.(\d+)", str(spec.get("$schema", "")))
    version = f"{found[1]}.{found[2]}" if found else None
    bundle: dict[str, Any] = {
        f"application/vnd.vegalite.v{found[1] if found else 6}+json": spec,
        "text/plain": "<perfstats chart: the SVG or the interactive view shows it>",
    }
    try:
        import vl_convert
    except ImportError:  # without the report extra: spec only, drawn where a front end can
        return bundle
    bundle["image/svg+xml"] = vl_convert.vegalite_to_svg(spec, vl_version=version)
    return bundle


def use_offline_renderer(*, force: bool = False) -> None:
    """Make :data:`OFFLINE_RENDERER` altair's renderer; unless ``force``, only when altair's
    own ``default`` (whose HTML loads Vega from a CDN) is active."""
    if OFFLINE_RENDERER not in alt.renderers.names():
        alt.renderers.register(OFFLINE_RENDERER, offline_bundle)
    if force or alt.renderers.active == "default":
        alt.renderers.enable(OFFLINE_RENDERER)


use_offline_renderer()


def _values(frame: pl.DataFrame, columns: Sequence[str]) -> alt.InlineData:
    """Inline JSON rows of ``columns`` (dates as ISO strings, NaN/inf as null)."""
    if frame.height > MAX_ROWS:
        raise ValueError(f"{frame.height} rows is too many to plot (limit {MAX_ROWS}); "
                         "aggregate first, e.g. run.timeline(max_points=...)")
    out = frame.select([c for c in dict.fromkeys(columns) if c in frame.columns])
    fixes = []
    for name, dtype in out.schema.items():
        if isinstance(dtype, pl.Datetime):
            col = pl.col(name)
            if dtype.time_zone is not None:
                col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            fixes.append(col.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").alias(name))
        elif dtype.is_float():
            fixes.append(pl.when(pl.col(name).is_finite()).then(pl.col(name)).alias(name))
        elif not dtype.is_numeric() and dtype not in (pl.String, pl.Boolean, pl.Null):
            fixes.append(pl.col(name).cast(pl.String).alias(name))
    if fixes:
        out = out.with_columns(fixes)
    return alt.InlineData(values=out.to_dicts())


def _require(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs the column(s) {', '.join(missing)}; "
                         f"the frame has {', '.join(frame.columns)}")


def _title(text: str, subtitle: str | None = None) -> alt.TitleParams:
    return alt.TitleParams(text=text, subtitle=subtitle or alt.Undefined, anchor="start")


def _endpoint_order(frame: pl.DataFrame, column: str = "endpoint") -> list[str]:
    """``ALL`` first, then the endpoints alphabetically."""
    names = sorted(str(v) for v in frame.get_column(column).unique().drop_nulls().to_list())
    first = [ALL_ENDPOINTS] if ALL_ENDPOINTS in names else []
    return first + [n for n in names if n != ALL_ENDPOINTS]


def _endpoint_scale(order: Sequence[str]) -> alt.Scale:
    others = [n for n in order if n != ALL_ENDPOINTS]
    colors = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(others)}
    if ALL_ENDPOINTS in order:
        colors = {ALL_ENDPOINTS: ALL_COLOR, **colors}
    return alt.Scale(domain=list(colors), range=list(colors.values()))


def _named_scale(values: Sequence[str], known: Mapping[str, str]) -> alt.Scale:
    """Known names keep their colour; others take the palette in order."""
    spare = iter(c for c in PALETTE if c not in known.values())
    colors = {v: known.get(v) or next(spare, "#bab0ac") for v in values}
    return alt.Scale(domain=list(colors), range=list(colors.values()))


def _filter_endpoints(frame: pl.DataFrame, endpoints: Sequence[str] | None) -> pl.DataFrame:
    if endpoints is None:
        return frame
    return frame.filter(pl.col("endpoint").is_in(list(endpoints)))


def latency_over_time(
    timeline: pl.DataFrame,
    *,
    percentiles: Sequence[str] = ("p50", "p95", "p99"),
    endpoints: Sequence[str] | None = None,
    title: str = "Latency percentiles over time",
) -> alt.FacetChart:
    """Latency percentiles per endpoint against time since the run started, one panel each.

    Args:
        timeline: ``Run.timeline()``: endpoint, elapsed_s, the percentile columns (ms), and
            optionally start, count, percentiles (how they were obtained).
        percentiles: which percentile columns to draw.
        endpoints: endpoints to show (default: all, ``ALL`` first).
        title: chart title.

    Returns:
        A faceted line chart; each panel has its own latency scale.

    Example:
        >>> latency_over_time(run.timeline())  # doctest: +SKIP
    """
    _require(timeline, ["endpoint", "elapsed_s", *percentiles], "latency_over_time")
    frame = _filter_endpoints(timeline, endpoints)
    order = _endpoint_order(frame)
    cols = ["endpoint", "elapsed_s", "start", "count", "percentiles", *percentiles]
    source = ", ".join(sorted(set(frame["percentiles"].drop_nulls().to_list()))) \
        if "percentiles" in frame.columns else None
    base = (
        alt.Chart(_values(frame, cols))
        .transform_fold(list(percentiles), as_=["percentile", "latency_ms"])
        .mark_line(strokeWidth=1.5)
        .encode(
            x=alt.X("elapsed_s:Q", title="time since start (s)"),
            y=alt.Y("latency_ms:Q", title="latency (ms)"),
            color=alt.Color("percentile:N", title="percentile",
                            scale=_named_scale(list(percentiles), PERCENTILE_COLORS)),
            tooltip=_tooltip(frame, [
                alt.Tooltip("endpoint:N"), alt.Tooltip("percentile:N"),
                alt.Tooltip("latency_ms:Q", title="latency (ms)", format=",.1f"),
                alt.Tooltip("elapsed_s:Q", title="time since start (s)", format=",.0f"),
                alt.Tooltip("start:N", title="window start (UTC)"),
                alt.Tooltip("count:Q", title="requests in window", format=","),
            ], derived=("percentile", "latency_ms")),
        )
        .properties(width=PANEL_WIDTH, height=PANEL_HEIGHT)
    )
    return (
        base.facet(facet=alt.Facet("endpoint:N", title=None, sort=order), columns=2)
        .resolve_scale(y="independent")
        .properties(title=_title(title, f"percentiles: {source}" if source else None))
    )


def _tooltip(frame: pl.DataFrame, items: Sequence[alt.Tooltip],
             derived: Sequence[str] = ()) -> list[alt.Tooltip]:
    """Keep the tooltips whose field is in the frame or ``derived`` (made by a transform)."""
    return [t for t in items if str(t.shorthand).split(":")[0] in (*frame.columns, *derived)]


def throughput_over_time(
    timeline: pl.DataFrame,
    *,
    endpoints: Sequence[str] | None = None,
    title: str = "Throughput and errors over time",
) -> alt.VConcatChart:
    """Requests per second, error rate and (when known) active users against time.

    Args:
        timeline: ``Run.timeline()``: endpoint, elapsed_s, rps, error_rate (0-1) and
            optionally users (on ``ALL`` rows), count, failures, start.
        endpoints: endpoints to show (default: all; ``ALL`` is drawn in black).
        title: chart title.

    Returns:
        Two or three stacked panels sharing the time axis.
    """
    _require(timeline, ["endpoint", "elapsed_s", "rps", "error_rate"], "throughput_over_time")
    frame = _filter_endpoints(timeline, endpoints)
    order = _endpoint_order(frame)
    data = _values(frame, ["endpoint", "elapsed_s", "start", "rps", "error_rate", "count",
                           "failures", "users"])
    x = alt.X("elapsed_s:Q", title="time since start (s)")
    color = alt.Color("endpoint:N", title="endpoint", scale=_endpoint_scale(order))
    tips = [alt.Tooltip("endpoint:N"),
            alt.Tooltip("elapsed_s:Q", title="time since start (s)", format=",.0f"),
            alt.Tooltip("rps:Q", title="requests/s", format=",.2f"),
            alt.Tooltip("error_rate:Q", title="error rate", format=".2%"),
            alt.Tooltip("count:Q", title="requests", format=","),
            alt.Tooltip("failures:Q", title="failed requests", format=",")]
    tips = _tooltip(frame, tips)
    rps = alt.Chart(data).mark_line(strokeWidth=1.5).encode(
        x=x, y=alt.Y("rps:Q", title="throughput (requests/s)"), color=color, tooltip=tips,
    ).properties(width=WIDTH, height=PANEL_HEIGHT)
    errors = alt.Chart(data).mark_line(strokeWidth=1.5).encode(
        x=x, y=alt.Y("error_rate:Q", title="error rate (% of requests)", axis=alt.Axis(
            format="%")), color=color, tooltip=tips,
    ).properties(width=WIDTH, height=PANEL_HEIGHT)
    panels: list[alt.Chart] = [rps, errors]
    if "users" in frame.columns and frame["users"].drop_nulls().len() > 0:
        panels.append(
            alt.Chart(data).transform_filter("isValid(datum.users)").mark_line(
                strokeWidth=1.5, color=ALL_COLOR, interpolate="step-after").encode(
                x=x, y=alt.Y("users:Q", title="active users (virtual users)"),
                tooltip=[alt.Tooltip("elapsed_s:Q", title="time since start (s)", format=",.0f"),
                         alt.Tooltip("users:Q", title="active users", format=",.0f")],
            ).properties(width=WIDTH, height=PANEL_HEIGHT * 2 // 3))
    return alt.vconcat(*panels).resolve_scale(color="shared").properties(title=_title(title))


def latency_distribution(
    quantiles: pl.DataFrame | Mapping[str, pl.DataFrame],
    *,
    endpoints: Sequence[str] | None = None,
    log_scale: bool = True,
    title: str = "Latency distribution",
) -> alt.FacetChart:
    """Cumulative distribution (ECDF) of latency, one line per run, one panel per endpoint.

    Args:
        quantiles: ``Run.quantiles()`` (endpoint, q, latency_ms, source), or a mapping of run
            labels to such frames, e.g. ``{"baseline": base.quantiles(), "candidate": ...}``.
        endpoints: endpoints to show (default: all).
        log_scale: latency on a log axis (tails stay readable).
        title: chart title.

    Returns:
        A faceted ECDF chart; the y axis is the share of requests at or below each latency.
    """
    several = isinstance(quantiles, Mapping)
    if isinstance(quantiles, Mapping):
        frames = [f.with_columns(run=pl.lit(label)) for label, f in quantiles.items()]
        frame = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    else:
        several = "run" in quantiles.columns
        frame = quantiles if several else quantiles.with_columns(run=pl.lit("run"))
    _require(frame, ["endpoint", "q", "latency_ms", "run"], "latency_distribution")
    frame = _filter_endpoints(frame, endpoints)
    if log_scale:
        frame = frame.filter(pl.col("latency_ms") > 0)
    runs = list(dict.fromkeys(frame["run"].cast(pl.String).to_list()))
    sparse = frame.group_by("run", "endpoint").len()["len"].max() or 0
    source = ", ".join(sorted(set(frame["source"].drop_nulls().to_list()))) \
        if "source" in frame.columns else None
    # Bucketed distributions are steps: every request of a bucket has the bucket's value.
    steps = "source" in frame.columns and set(frame["source"].drop_nulls()) == {"histogram"}
    base = alt.Chart(_values(frame, ["run", "endpoint", "q", "latency_ms", "source"])).mark_line(
        strokeWidth=1.8, point=bool(sparse <= 12),
        interpolate="step-after" if steps else "linear",
    ).encode(
        x=alt.X("latency_ms:Q", title="latency (ms, log scale)" if log_scale else "latency (ms)",
                scale=alt.Scale(type="log", nice=False) if log_scale else alt.Undefined),
        y=alt.Y("q:Q", title="requests at or below (%)", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("run:N", title="run", scale=_named_scale(runs, RUN_COLORS),
                        legend=alt.Undefined if several else None),
        order=alt.Order("q:Q"),
        tooltip=[alt.Tooltip("run:N"), alt.Tooltip("endpoint:N"),
                 alt.Tooltip("q:Q", title="quantile", format=".3f"),
                 alt.Tooltip("latency_ms:Q", title="latency (ms)", format=",.1f")],
    ).properties(width=PANEL_WIDTH, height=PANEL_HEIGHT)
    return (
        base.facet(facet=alt.Facet("endpoint:N", title=None, sort=_endpoint_order(frame)),
                   columns=2)
        .resolve_scale(x="independent")
        .properties(title=_title(title, f"from: {source}" if source else None))
    )


def change_per_endpoint(
    changes: pl.DataFrame,
    *,
    estimate: str = "change",
    low: str | None = "ci_low",
    high: str | None = "ci_high",
    label: str = "endpoint",
    color: str | None = "verdict",
    reference: float = 0.0,
    thresholds: Sequence[float] = (),
    percent: bool = True,
    x_title: str = "change, candidate vs baseline (%)",
    title: str = "Change per endpoint",
) -> alt.LayerChart:
    """A point per endpoint at its estimated change, with its confidence interval as a bar.

    Args:
        changes: one row per endpoint (or endpoint and metric, joined into ``label``).
        estimate: column of the point estimate (a relative change, 0.3 = +30 %, when percent).
        low: column of the interval's lower bound (None: no interval).
        high: column of the interval's upper bound.
        label: column naming each row on the y axis.
        color: column coloured by verdict (known verdicts get fixed colours; None: one colour).
        reference: the no-change value, drawn as a solid rule (0 for changes, 1 for ratios).
        thresholds: practical thresholds drawn as dashed rules.
        percent: format the axis as percentages.
        x_title: the axis title with its unit.
        title: chart title.

    Returns:
        A layered chart: interval bars, points and reference rules.
    """
    cols = [label, estimate, *(c for c in (low, high, color) if c)]
    _require(changes, cols, "change_per_endpoint")
    order = changes.sort(estimate, descending=True, nulls_last=True)[label].cast(
        pl.String).to_list()
    data = _values(changes, cols)
    fmt = "+.1~%" if percent else "+,.3~f"
    y = alt.Y(f"{label}:N", title=label.replace("_", " "), sort=order)
    x = alt.X(f"{estimate}:Q", title=x_title, axis=alt.Axis(format=fmt))
    tips = [alt.Tooltip(f"{label}:N"), alt.Tooltip(f"{estimate}:Q", title="estimate", format=fmt)]
    if low and high:
        tips += [alt.Tooltip(f"{low}:Q", title="interval low", format=fmt),
                 alt.Tooltip(f"{high}:Q", title="interval high", format=fmt)]
    enc: dict[str, Any] = {"tooltip": tips}
    if color:
        verdicts = [str(v) for v in dict.fromkeys(changes[color].drop_nulls().to_list())]
        enc["color"] = alt.Color(f"{color}:N", title=color.replace("_", " "),
                                 scale=_named_scale(verdicts, VERDICT_COLORS))
        tips.append(alt.Tooltip(f"{color}:N"))
    base = alt.Chart(data)
    layers: list[alt.Chart] = []
    rules = pl.DataFrame({"at": [reference, *thresholds],
                          "kind": ["no change"] + ["threshold"] * len(thresholds)})
    layers.append(alt.Chart(_values(rules, ["at", "kind"])).mark_rule().encode(
        x=alt.X("at:Q", title=x_title),
        strokeDash=alt.StrokeDash("kind:N", legend=None, scale=alt.Scale(
            domain=["no change", "threshold"], range=[[1, 0], [4, 3]])),
        color=alt.value("#555555")))
    if low and high:
        layers.append(base.mark_rule(strokeWidth=2.5).encode(
            y=y, x=alt.X(f"{low}:Q", title=x_title, axis=alt.Axis(format=fmt)),
            x2=alt.X2(f"{high}:Q"), **enc))
    layers.append(base.mark_point(filled=True, size=70).encode(y=y, x=x, **enc))
    height = max(60, 26 * len(order))
    return alt.layer(*layers).properties(width=WIDTH - 140, height=height, title=_title(title))


def capacity_curve(
    observed: pl.DataFrame,
    *,
    x: str = "users",
    y: str = "rps",
    fit: pl.DataFrame | None = None,
    band: pl.DataFrame | None = None,
    slo: float | None = None,
    marks: Mapping[str, float] | None = None,
    x_title: str = "concurrency (users)",
    y_title: str = "throughput (requests/s)",
    title: str = "Capacity curve",
    x_domain: tuple[float, float] | None = None,
) -> alt.LayerChart:
    """Observed load steps as points, a fitted curve as a line, the SLO and knees as rules.

    Args:
        observed: one row per load step with columns ``x`` and ``y``.
        x: column of the load (users or arrival rate).
        y: column of the response (throughput or a latency percentile).
        fit: the fitted curve, columns ``x`` and ``y`` (drawn dashed), or None.
        band: an interval around the fit, columns ``x``, ``lower`` and ``upper`` (shaded).
        slo: a horizontal SLO line at this ``y`` value, or None.
        marks: vertical rules at named ``x`` values, e.g. ``{"knee": 40, "N*": 52}``, one
            colour each, named in a legend under the chart (never text over the plot, where
            close knees would overlap each other and the points).
        x_title: x axis title with its unit.
        y_title: y axis title with its unit.
        title: chart title.
        x_domain: the x axis range; give two charts the same one to stack them aligned.

    Returns:
        A layered chart.
    """
    _require(observed, [x, y], "capacity_curve")
    scale = alt.Scale(domain=list(x_domain), nice=False) if x_domain else alt.Undefined
    xe = alt.X(f"{x}:Q", title=x_title, scale=scale)
    ye = alt.Y(f"{y}:Q", title=y_title)
    layers: list[alt.Chart] = []
    if band is not None and band.height:
        _require(band, [x, "lower", "upper"], "capacity_curve band")
        layers.append(alt.Chart(_values(band, [x, "lower", "upper"])).mark_area(
            opacity=0.2, color=PALETTE[1]).encode(
            x=xe, y=alt.Y("lower:Q", title=y_title), y2="upper:Q"))
    layers += [
        alt.Chart(_values(observed, [x, y])).mark_point(filled=True, size=60, color=PALETTE[0])
        .encode(x=xe, y=ye, tooltip=[alt.Tooltip(f"{x}:Q", title=x_title, format=",.1f"),
                                     alt.Tooltip(f"{y}:Q", title=y_title, format=",.2f")])
    ]
    if fit is not None and fit.height:
        _require(fit, [x, y], "capacity_curve fit")
        layers.append(alt.Chart(_values(fit, [x, y])).mark_line(
            color=PALETTE[1], strokeDash=[6, 3], strokeWidth=2).encode(x=xe, y=ye))
    if slo is not None and math.isfinite(slo):
        rule = pl.DataFrame({"slo": [slo], "label": [f"SLO {slo:g}"]})
        base = alt.Chart(_values(rule, ["slo", "label"]))
        layers.append(base.mark_rule(color=VERDICT_COLORS["regression"], strokeWidth=1.5)
                      .encode(y=alt.Y("slo:Q", title=y_title)))
        layers.append(base.mark_text(align="left", dx=4, dy=-6, color=VERDICT_COLORS["regression"])
                      .encode(y=alt.Y("slo:Q", title=y_title), x=alt.value(0),
                              text="label:N"))
    finite = {k: v for k, v in (marks or {}).items() if v is not None and math.isfinite(v)}
    if finite:
        rules = pl.DataFrame({"at": list(finite.values()),
                              "mark": [f"{k} = {v:,.1f}" for k, v in finite.items()]})
        colors = ["#555555", VERDICT_COLORS["slo_breach"], PALETTE[2], PALETTE[5]]
        layers.append(alt.Chart(_values(rules, ["at", "mark"])).mark_rule(
            strokeDash=[4, 3], strokeWidth=1.5).encode(
            x=alt.X("at:Q", title=x_title, scale=scale),
            color=alt.Color("mark:N", title="knee", sort=None,
                            scale=alt.Scale(domain=rules["mark"].to_list(),
                                            range=colors[:rules.height]),
                            legend=alt.Legend(orient="bottom", direction="horizontal")),
            tooltip=[alt.Tooltip("mark:N", title="knee")]))
    return alt.layer(*layers).properties(width=WIDTH, height=HEIGHT, title=_title(title))


def bottleneck_bars(
    ranking: pl.DataFrame,
    *,
    value: str = "impact",
    label: str = "endpoint",
    low: str | None = None,
    high: str | None = None,
    top: int = 15,
    percent: bool = False,
    x_title: str = "impact (share of total request time)",
    title: str = "Bottlenecks by estimated impact",
    subtitle: str | None = None,
) -> alt.LayerChart:
    """Horizontal bars of impact, largest first, with optional interval whiskers.

    Args:
        ranking: one row per endpoint (or resource) with ``label`` and ``value`` columns.
        value: the impact column.
        label: the name column (y axis).
        low: interval lower bound column, or None.
        high: interval upper bound column, or None.
        top: show at most this many rows (the largest ``value`` first).
        percent: format values as percentages.
        x_title: axis title with its unit.
        title: chart title.
        subtitle: a line under the title (e.g. why every bar is empty).

    Returns:
        A layered bar chart.
    """
    _require(ranking, [label, value, *(c for c in (low, high) if c)], "bottleneck_bars")
    rows = ranking.sort(value, descending=True, nulls_last=True).head(top)
    order = rows[label].cast(pl.String).to_list()
    fmt = ".1%" if percent else ",.3~f"
    data = _values(rows, [label, value, *(c for c in (low, high) if c)])
    y = alt.Y(f"{label}:N", title=label.replace("_", " "), sort=order)
    xe = alt.X(f"{value}:Q", title=x_title, axis=alt.Axis(format=fmt))
    layers: list[alt.Chart] = [
        alt.Chart(data).mark_bar(color=PALETTE[0], height={"band": 0.7}).encode(
            y=y, x=xe, tooltip=[alt.Tooltip(f"{label}:N"),
                                alt.Tooltip(f"{value}:Q", title=x_title, format=fmt)])
    ]
    if low and high:
        layers.append(alt.Chart(data).mark_rule(color=ALL_COLOR, strokeWidth=1.5).encode(
            y=y, x=alt.X(f"{low}:Q", title=x_title), x2=alt.X2(f"{high}:Q")))
    return alt.layer(*layers).properties(width=WIDTH - 140, height=max(60, 24 * len(order)),
                                         title=_title(title, subtitle))


def _time_format(times: pl.Series) -> str:
    """A tick label format fine enough for the span of ``times``, so that no two ticks read the
    same (runs a minute apart get ticks every 30 s: seconds are shown)."""
    first, last = times.min(), times.max()
    span = (last - first).total_seconds() if times.len() > 1 else 0.0  # type: ignore[operator]
    if span <= 15 * 60:
        return "%Y-%m-%d %H:%M:%S"
    return "%Y-%m-%d %H:%M" if span <= 10 * 86400 else "%Y-%m-%d"


def history_series(
    series: pl.DataFrame,
    *,
    x: str = "started_at",
    y: str = "value",
    color: str | None = "endpoint",
    change_points: pl.DataFrame | None = None,
    x_title: str = "run start (UTC)",
    y_title: str = "latency (ms)",
    title: str = "History",
) -> alt.LayerChart:
    """A metric over runs, one line per ``color`` group, change points as dashed rules.

    Args:
        series: one row per run (and group): columns ``x``, ``y`` and optionally ``color``
            and ``run_id``.
        x: the run axis column (a timestamp, or a run index).
        y: the metric column.
        color: group column (e.g. endpoint), or None for one line.
        change_points: rows with column ``x`` (and optionally ``color``) where a change starts.
        x_title: axis title (with its unit or time zone).
        y_title: axis title with its unit.
        title: chart title.

    Returns:
        A layered line chart.
    """
    _require(series, [x, y, *([color] if color else [])], "history_series")
    temporal = isinstance(series.schema[x], pl.Datetime)
    xe = alt.X(f"{x}:{'T' if temporal else 'Q'}", title=x_title,
               scale=alt.Scale(type="utc") if temporal else alt.Undefined,
               axis=alt.Axis(format=_time_format(series[x])) if temporal else alt.Undefined)
    tips = [alt.Tooltip(f"{y}:Q", title=y_title, format=",.2f")]
    if "run_id" in series.columns:
        tips.insert(0, alt.Tooltip("run_id:N", title="run"))
    enc: dict[str, Any] = {}
    if color:
        groups = [str(v) for v in dict.fromkeys(series[color].drop_nulls().to_list())]
        enc["color"] = alt.Color(f"{color}:N", title=color.replace("_", " "),
                                 scale=_named_scale(groups, {ALL_ENDPOINTS: ALL_COLOR}))
        tips.insert(0, alt.Tooltip(f"{color}:N"))
    data = _values(series, [x, y, "run_id", *([color] if color else [])])
    layers: list[alt.Chart] = [alt.Chart(data).mark_line(point=True, strokeWidth=1.5).encode(
        x=xe, y=alt.Y(f"{y}:Q", title=y_title), tooltip=tips, **enc)]
    if change_points is not None and change_points.height:
        _require(change_points, [x], "history_series change_points")
        cp_cols = [x, *([color] if color and color in change_points.columns else [])]
        layers.append(alt.Chart(_values(change_points, cp_cols)).mark_rule(
            strokeDash=[5, 3], strokeWidth=1.5, color=VERDICT_COLORS["regression"]).encode(
            x=xe, tooltip=[alt.Tooltip(f"{c}:{'T' if c == x and temporal else 'N'}",
                                       title="change point" if c == x else c)
                           for c in cp_cols]))
    return alt.layer(*layers).properties(width=WIDTH, height=HEIGHT, title=_title(title))
