"""Capacity planning: how many instances the peak needs, from a measured stress run.

From a stepped or ramped run, :func:`capacity` finds the load steps, measures each step's steady
state (concurrency, throughput, latency percentiles, error rate), reads the users one instance
serves within the SLO, locates the knee, fits the Universal Scalability Law, checks Little's law,
and turns it all into an instance count with every assumption written out. The method and its
assumptions are described in ``docs/capacity.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from perfstats.errors import ConfigError, InsufficientDataError
from perfstats.planning.knee import find_knee
from perfstats.planning.steps import LoadStep, detect_steps
from perfstats.planning.traffic import counted, mixed_step_percentiles, server_windows
from perfstats.planning.usl import USLFit, fit_usl
from perfstats.render.document import Document, Result, Section
from perfstats.render.tables import jsonable, show
from perfstats.run import Run, load
from perfstats.slo import ERROR_RATE, Objective, capacity_objectives, format_slo
from perfstats.store import ALL_ENDPOINTS, DB, PathLike

if TYPE_CHECKING:
    import altair as alt

_ROUNDING = 1e-9


def _instances(peak: float, per_instance: float, what: str, safety_factor: float,
               min_instances: int, zones: int) -> int:
    for name, value in ((f"peak {what}", peak), (f"{what} per instance", per_instance),
                        ("safety_factor", safety_factor)):
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise TypeError(f"{name} must be a number, got {value!r}")
    if peak < 0 or math.isinf(peak):
        raise ValueError(f"peak {what} must be a finite number >= 0, got {peak}")
    if per_instance <= 0:
        raise ValueError(f"{what} per instance must be > 0, got {per_instance}: the instance "
                         "meets the SLO at no load at all, so no number of instances is enough")
    if safety_factor <= 0 or math.isinf(safety_factor):
        raise ValueError(f"safety_factor must be a finite number > 0, got {safety_factor}")
    if isinstance(min_instances, bool) or not isinstance(min_instances, int) or min_instances < 0:
        raise ValueError(f"min_instances must be an integer >= 0, got {min_instances!r}")
    if isinstance(zones, bool) or not isinstance(zones, int) or zones < 1:
        raise ValueError(f"zones must be an integer >= 1, got {zones!r}")
    if safety_factor < 1:
        warnings.warn(
            f"safety_factor {safety_factor:g} < 1 plans for less than the peak: every instance "
            "would run beyond its measured sustainable load",
            UserWarning,
            stacklevel=3,
        )
    raw = peak * safety_factor / per_instance
    if zones > 1:
        # Survive the loss of one zone: the other zones - 1 must carry the whole load.
        raw *= zones / (zones - 1)
    # Forgive float noise (100 x 1.1 / 110 is 1.0000000000000002, not 2 instances).
    needed = math.ceil(raw * (1 - _ROUNDING)) if raw > 0 else 0
    if zones > 1:
        needed = math.ceil(needed / zones) * zones
    return max(needed, min_instances)


def instances_needed(
    peak_users: float,
    users_per_instance: float,
    *,
    safety_factor: float = 1.5,
    min_instances: int = 1,
    zones: int = 1,
) -> int:
    """Instances for a peak of concurrent users: ``ceil(peak x safety / users per instance)``.

    ``users_per_instance`` should be a *measured sustainable* load (the highest load at which the
    SLO still held), not the peak throughput; pass its lower confidence bound to be safe.

    Args:
        peak_users: expected peak concurrent users (>= 0).
        users_per_instance: users one instance serves within the SLO (> 0).
        safety_factor: head-room multiplier, typically 1.2 - 1.5; below 1 warns.
        min_instances: floor on the answer (>= 0).
        zones: spread over this many zones and survive losing one: the load is multiplied by
            ``zones / (zones - 1)`` and the count rounded up to a multiple of ``zones``.

    Returns:
        The number of instances.

    Raises:
        ValueError: negative peak, ``users_per_instance <= 0``, ``safety_factor <= 0``, bad
            ``min_instances`` or ``zones``.
        TypeError: a non-numeric or NaN input.

    Example:
        >>> instances_needed(10000, 450, safety_factor=1.3)
        29
    """
    return _instances(peak_users, users_per_instance, "users", safety_factor, min_instances, zones)


def instances_for_rps(
    target_rps: float,
    rps_per_instance: float,
    *,
    safety_factor: float = 1.5,
    min_instances: int = 1,
    zones: int = 1,
) -> int:
    """Instances for a target request rate: ``ceil(target rps x safety / rps per instance)``.

    Same rules and errors as :func:`instances_needed`, with throughput at the SLO in place of
    users.

    Example:
        >>> instances_for_rps(1200, 95, safety_factor=1.2)
        16
    """
    return _instances(target_rps, rps_per_instance, "rps", safety_factor, min_instances, zones)


# --------------------------------------------------------------------------- the plan

RECENT_WINDOW_S = 10.0
"""Span of Locust's "current" percentiles (``CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW``)."""

LITTLE_TOLERANCE = 0.10
"""Little's law ratios further than this from 1 are flagged."""

_REQUEST_METRIC = "http_req_duration"
_PERCENTILES = ("p50", "p95", "p99")
_STEP_COLUMNS = ["step", "start", "end", "steady_s", "concurrency", "throughput_rps",
                 "mean_ms", "p50_ms", "p95_ms", "p99_ms", "error_rate", "requests",
                 "failures", "percentiles", "little_ratio", "implied_think_s", "slo_ok",
                 "slo_broken_by"]


@dataclass(frozen=True)
class CapacityPlan(Result):
    """Users per instance, the knee, the USL model and the instance count for one run.

    Attributes:
        run_id: the run analysed.
        tool: ``k6``, ``artillery`` or ``locust``.
        concurrency: what the concurrency column counts: ``virtual users`` (closed model, as
            the tool recorded them) or ``requests in flight`` (open model, Little's law).
        slo: the objectives, per endpoint (``ALL`` = every request).
        users_per_instance: the concurrency at which the SLO stops holding, interpolated
            between the last step that met it and the first that broke it; the largest tested
            load when it never broke (a lower bound); None when the first step already broke it.
        users_per_instance_range: ``(last step meeting the SLO, first step breaking it)``; an
            end is None when unknown.
        rps_per_instance: the most throughput delivered within the SLO: the larger of the best
            step meeting it and the throughput interpolated at ``users_per_instance``.
        rps_per_instance_range: from the best step meeting the SLO to the first breaking it.
        slo_status: ``met-then-broken``, ``never-broken`` or ``never-met``.
        instances: per route (``users``, ``rps``) the count, its range and the inputs used.
        knee: ``kneedle`` (where p95 turns up), ``slo_crossing``, ``usl_n_star``,
            ``usl_optimal_load`` (1/sigma) and ``agreement`` (kneedle / slo_crossing).
        steps: one row per load step (see ``docs/capacity.md`` for the columns).
        usl: the USL fit of throughput on concurrency (None with fewer than 4 steps).
        little: Little's law check: model, think time used, flagged steps.
        assumptions: every assumption behind the numbers, in words.
        warnings: reasons to distrust a number.
        inputs: the arguments the plan was made with.
    """

    run_id: str
    tool: str
    concurrency: str
    slo: dict[str, tuple[Objective, ...]]
    users_per_instance: float | None
    users_per_instance_range: tuple[float | None, float | None]
    rps_per_instance: float | None
    rps_per_instance_range: tuple[float | None, float | None]
    slo_status: str
    instances: dict[str, Any]
    knee: dict[str, Any]
    steps: pl.DataFrame = field(repr=False)
    usl: USLFit | None = field(repr=False)
    little: dict[str, Any] = field(repr=False)
    assumptions: tuple[str, ...] = field(repr=False)
    warnings: tuple[str, ...] = field(repr=False)
    inputs: dict[str, Any] = field(repr=False)

    @property
    def slo_text(self) -> str:
        """The SLO as one line (``"p95 < 500 ms, error_rate < 1%"``, endpoints named)."""
        return "; ".join(
            format_slo(objectives) if endpoint == ALL_ENDPOINTS
            else f"{endpoint}: {format_slo(objectives)}"
            for endpoint, objectives in self.slo.items())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (infinite and NaN numbers as null, times as ISO 8601)."""
        return jsonable({
            "run_id": self.run_id,
            "tool": self.tool,
            "concurrency": self.concurrency,
            "slo": self.slo_text,
            "slo_status": self.slo_status,
            "users_per_instance": self.users_per_instance,
            "users_per_instance_range": list(self.users_per_instance_range),
            "rps_per_instance": self.rps_per_instance,
            "rps_per_instance_range": list(self.rps_per_instance_range),
            "instances": self.instances,
            "knee": self.knee,
            "steps": self.steps.to_dicts(),
            "usl": None if self.usl is None else self.usl.to_dict(),
            "little": self.little,
            "assumptions": list(self.assumptions),
            "warnings": list(self.warnings),
            "inputs": self.inputs,
        })

    def headline(self) -> str:
        """The answer in one line: the first of :meth:`findings` after the title (the instances
        needed, or what is missing to count them)."""
        return self.findings()[1]

    def findings(self) -> list[str]:
        """The answer, first: what was planned, the instances needed (or what input is
        missing), the capacity of one instance at the SLO, and what limits it."""
        unit = _unit(self.concurrency)
        lines = [f"Capacity plan for run {self.run_id} ({self.tool}) at the SLO {self.slo_text}"]
        routes = [(r, label) for r, label in (("users", "peak users"), ("rps", "target req/s"))
                  if self.instances.get(r) is not None]
        for route, label in routes:
            entry = self.instances[route]
            rng = entry["range"]
            span = "" if rng[0] == rng[1] else f" (range {_n(rng[0])} to {_n(rng[1])})"
            value = "cannot be computed" if entry["instances"] is None else entry["instances"]
            peak = _n(float(entry["peak"]))
            lines.append(f"Instances needed: {value}{span} for {peak} {label} x "
                         f"safety {entry['safety_factor']:g}")
        if not routes:
            lines.append("Instances needed: not computed: the expected peak is missing; give "
                         "--peak-users N (concurrent users) or --target-rps R (peak_users= / "
                         "target_rps= in Python)")
        upi, (lo, hi) = self.users_per_instance, self.users_per_instance_range
        rps = self.rps_per_instance
        if self.slo_status == "never-met":
            lines.append(f"Per instance: nothing sustainable: the SLO failed even at the lowest "
                         f"tested load ({_n(hi)} {unit})")
        elif self.slo_status == "never-broken":
            lines.append(f"Per instance at the SLO: at least {_n(upi)} {unit}, {_n(rps)} req/s "
                         "(the SLO held at every step: a lower bound; test higher loads)")
        else:
            lines.append(f"Per instance at the SLO: {_n(upi)} {unit} (between the steps at "
                         f"{_n(lo)} and {_n(hi)}), {_n(rps)} req/s")
        lines.append(f"Limiting factor: {self.limiting_factor}")
        return lines

    @property
    def limiting_factor(self) -> str:
        """What stops one instance from taking more load, in words: the objective that broke
        first and at which step, and whether throughput had already stopped growing."""
        unit = _unit(self.concurrency)
        broken = self.steps.filter(~pl.col("slo_ok"))
        if broken.is_empty():
            return "none found: the SLO held at every tested step"
        first = broken.row(0, named=True)
        what = first["slo_broken_by"] or "the SLO"
        measured = []
        for column, label, fmt in (("p95_ms", "p95", "{:,.0f} ms"), ("p99_ms", "p99",
                                   "{:,.0f} ms"), ("error_rate", "errors", "{:.2%}")):
            if label in what or (label == "errors" and "error" in what):
                value = first[column]
                if value is not None:
                    measured.append(f"{label} {fmt.format(value)}")
        text = (f"{what} first broke at the step at {_n(first['concurrency'])} {unit}"
                + (f" ({', '.join(measured)})" if measured else ""))
        if self.usl is not None and math.isfinite(self.usl.n_star) and _near(
                self.usl.n_star, self.users_per_instance):
            text += (f"; throughput stops growing near there (the USL peak N* "
                     f"{_n(self.usl.n_star)} {unit}), so the latency rise is queueing at "
                     "saturation, not a slow endpoint")
        return text

    def evidence(self) -> list[str]:
        """What the answer rests on, in plain words: the steps, the USL model, the knee and
        Little's law."""
        unit = _unit(self.concurrency)
        n_steps = self.steps.height
        ok = int(self.steps["slo_ok"].sum())
        lines = [f"Load steps: {n_steps} steady steps from {_n(self.steps['concurrency'].min())} "
                 f"to {_n(self.steps['concurrency'].max())} {unit}; the SLO held at {ok} of "
                 "them (table below)"]
        usl = self.usl
        if usl is not None:
            serial = ("no serial part (sigma 0): nothing is queued through one lock or one "
                      "thread" if usl.sigma < 1e-9 else
                      f"a serial share sigma {usl.sigma:.3g}: {usl.sigma:.1%} of the work waits "
                      "for one shared resource")
            coherency = ("no crosstalk (kappa 0)" if usl.kappa < 1e-12 else
                         f"crosstalk kappa {usl.kappa:.3g}: each added {unit[:-1]} slows every "
                         "other a little (coherency, e.g. shared caches, locks, chatty calls)")
            ceiling = ("with no serial part there is no Amdahl ceiling (throughput limited by "
                       "crosstalk alone)" if not math.isfinite(usl.amdahl_limit) else
                       f"the serial part alone would cap throughput at "
                       f"{_n(usl.amdahl_limit)} req/s (Amdahl limit)")
            lines.append(
                f"USL model (Universal Scalability Law, R\u00b2 {usl.r_squared:.3f}, "
                f"{len(usl.concurrency)} steps): {_n(usl.lambda_)} req/s per {unit[:-1]} at "
                f"low load; {serial}; {coherency}; {ceiling}")
            if math.isfinite(usl.n_star):
                lo, hi = usl.ci["x_max"]
                lines.append(
                    f"Model peak: X_max {_n(usl.x_max)} req/s at N* {_n(usl.n_star)} {unit} "
                    f"(95% CI {_n(lo)} to {_n(hi)} req/s). The per-instance "
                    f"{_n(self.rps_per_instance)} req/s is measured (the best step within the "
                    "SLO); X_max is the smooth curve fitted through every step, so a single "
                    "step may sit above it within the model's uncertainty")
        knee = self.knee
        lines.append(
            f"Knee, found three ways: where p95 turns up (Kneedle) at {_n(knee['kneedle'])}, "
            f"the SLO crossing at {_n(knee['slo_crossing'])}, the USL peak N* at "
            f"{_n(knee['usl_n_star'])} {unit}")
        lines.append(f"Little's law ({unit} = throughput x (response time + think time)): "
                     f"{self.little['summary']} (1 = the recorded load and the measured "
                     "throughput agree)")
        return lines

    def document(self) -> Document:
        """The answer (instances, per instance, limiting factor), then the evidence (in words,
        the load steps, the USL model), then the assumptions."""
        usl = [] if self.usl is None else list(self.usl.document().sections)
        return Document(
            title=self.findings()[0], points=self.findings()[1:], warnings=self.warnings,
            sections=[Section("Evidence", bullets=self.evidence()),
                      Section("Load steps", table=show(self._steps_shown())), *usl,
                      Section("Assumptions", bullets=self.assumptions)])

    def _steps_shown(self) -> pl.DataFrame:
        return self.steps.select(
            "step", "concurrency", "throughput_rps", "p50_ms", "p95_ms", "p99_ms", "error_rate",
            "requests", "slo_ok", "slo_broken_by")

    def chart(self) -> alt.VConcatChart:
        """Throughput against concurrency (steps, USL curve with its 95 % band, knees) above
        p95 against concurrency (steps, SLO line, knees)."""
        import altair as alt

        from perfstats.render import charts

        unit = _unit(self.concurrency)
        observed = self.steps.select(
            pl.col("concurrency").alias("users"), pl.col("throughput_rps").alias("rps"),
            pl.col("p95_ms").alias("p95"))
        marks = {"Kneedle knee": self.knee["kneedle"], "SLO crossing": self.knee["slo_crossing"],
                 "USL N*": self.knee["usl_n_star"]}
        fit = band = None
        if self.usl is not None:
            curve = self.usl.curve(float(observed["users"].min()), float(observed["users"].max()))
            fit, band = curve.select("users", "rps"), curve.select("users", "lower", "upper")
        # one x range for both panels, so that each knee rule is at the same place in both
        right = max(float(observed["users"].max()), float(fit["users"].max()) if fit is not None
                    else 0.0) * 1.02
        domain = (0.0, right)
        throughput = charts.capacity_curve(
            observed, x="users", y="rps", fit=fit, band=band, marks=marks, x_domain=domain,
            x_title=f"concurrency ({unit})", title="Throughput and the USL fit (95% band)")
        latency_objectives = [o for o in self.slo.get(ALL_ENDPOINTS, ()) if o.aggregation == "p95"]
        latency = charts.capacity_curve(
            observed, x="users", y="p95",
            slo=latency_objectives[0].threshold if latency_objectives else None, marks=marks,
            x_domain=domain, x_title=f"concurrency ({unit})", y_title="p95 latency (ms)",
            title="p95 latency and the SLO")
        return alt.vconcat(throughput, latency)


# --------------------------------------------------------------------------- formatting helpers


def _near(n_star: float, users_per_instance: float | None) -> bool:
    """The USL peak lies within 25 % of where the SLO broke."""
    return users_per_instance is not None and abs(n_star / users_per_instance - 1) <= 0.25


def _unit(concurrency: str) -> str:
    return "users" if concurrency == "virtual users" else "requests in flight"


def _n(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"


def _markdown_cell(value: Any) -> str:
    if value is None:
        return ""
    return _n(value, 4) if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- measuring steps


def _bounds(windows: pl.DataFrame, steps: Sequence[LoadStep], settle_s: float,
            extra_s: float = 0.0) -> pl.DataFrame:
    """Per step the span [lo, hi) of its steady windows, ``settle_s + extra_s`` after its start.

    A step too short to drop that much (coarse windows) keeps all its windows.
    """
    starts = windows["start"]
    rows = []
    for step in steps:
        assert isinstance(step.start, datetime) and isinstance(step.end, datetime)
        lo = step.start + timedelta(seconds=settle_s + extra_s)
        inside = starts.filter((starts >= lo) & (starts < step.end))
        rows.append({"step": step.index, "lo": lo if inside.len() else step.start,
                     "hi": step.end})
    return pl.DataFrame(rows, schema={"step": pl.Int64, "lo": starts.dtype, "hi": starts.dtype})


def _assign(windows: pl.DataFrame, bounds: pl.DataFrame) -> pl.DataFrame:
    """Windows inside a step's steady span, tagged with the step."""
    return (windows.join(bounds, how="cross")
            .filter((pl.col("start") >= pl.col("lo")) & (pl.col("start") < pl.col("hi")))
            .drop("lo", "hi"))


def _window_steps(windows: pl.DataFrame, steps: Sequence[LoadStep], settle_s: float,
                  closed: bool) -> pl.DataFrame:
    """Per (endpoint, step): traffic sums and window-level percentile estimates."""
    steady = _assign(windows, _bounds(windows, steps, settle_s))
    recent = windows["percentiles"].eq("tool-recent").any()
    # Locust's "current" percentiles look back ~10 s: use windows whose look-back is in the step.
    pct_windows = _assign(windows, _bounds(windows, steps, settle_s,
                                           RECENT_WINDOW_S if recent else 0.0))
    traffic = steady.group_by("endpoint", "step").agg(
        pl.col("length_s").sum().alias("steady_s"),
        pl.col("count").sum().alias("requests"),
        pl.col("failures").sum().alias("failures"),
        pl.col("total_ms").sum().alias("total_ms"),
        pl.col("users").median().alias("users"),
    )
    pct = pct_windows.filter(pl.col("count") > 0).group_by("endpoint", "step").agg(
        *[pl.col(p).median().alias(f"{p}_ms") for p in _PERCENTILES],
        pl.col("min").min().alias("min_ms"), pl.col("p90").median().alias("p90_ms"),
        pl.col("max").max().alias("max_ms"),
        pl.col("percentiles").first().alias("source"),
    )
    out = traffic.join(pct, on=["endpoint", "step"], how="left",
                       maintain_order="left").with_columns(
        (pl.col("requests") / pl.col("steady_s")).alias("throughput_rps"),
        (pl.col("total_ms") / pl.col("requests")).alias("mean_ms"),
        (pl.col("failures") / pl.col("requests")).alias("error_rate"),
        pl.format("median of {} windows", pl.col("source")).alias("percentiles"),
    )
    if closed:
        concurrency = pl.col("users")
    else:
        # Little's law over the step: requests in flight = sum of latencies / elapsed time.
        concurrency = pl.col("total_ms") / 1000.0 / pl.col("steady_s")
    return out.with_columns(concurrency.alias("concurrency")).drop("source")


def _exact_percentiles(run: Run, bounds: pl.DataFrame) -> pl.DataFrame:
    """Per (endpoint, step) p50/p95/p99 from the raw samples (k6's linear interpolation)."""
    values = ", ".join(["(?, ?, ?)"] * bounds.height)
    params: list[Any] = [x for row in bounds.iter_rows() for x in row]
    return run.store.query(
        f"""
        SELECT coalesce(s.endpoint, '{ALL_ENDPOINTS}') AS endpoint, b.step,
               quantile_cont(s.value, 0.5) AS p50_ms, quantile_cont(s.value, 0.95) AS p95_ms,
               quantile_cont(s.value, 0.99) AS p99_ms
        FROM samples s JOIN (VALUES {values}) AS b(step, lo, hi)
          ON s.ts >= b.lo AND s.ts < b.hi
        WHERE s.run_id = ? AND s.metric = ?
        GROUP BY GROUPING SETS ((b.step, s.endpoint), (b.step))
        """,
        [*params, run.run_id, _REQUEST_METRIC],
    ).with_columns(pl.col("step").cast(pl.Int64))


# --------------------------------------------------------------------------- reading the SLO


@dataclass(frozen=True)
class _Crossing:
    """Where one objective stops holding along the load axis."""

    endpoint: str
    objective: Objective
    first_bad: int | None  # position (in load order) of the first step breaking it
    at: float | None  # interpolated concurrency where the metric reaches the threshold


def _crossing(n: np.ndarray, metric: np.ndarray, endpoint: str, objective: Objective
              ) -> _Crossing:
    ok = np.array([objective.holds(float(v)) for v in metric])
    bad = np.flatnonzero(~ok)
    if bad.size == 0:
        return _Crossing(endpoint, objective, None, None)
    i = int(bad[0])
    if i == 0:
        return _Crossing(endpoint, objective, 0, None)
    m0, m1 = float(metric[i - 1]), float(metric[i])
    if not math.isfinite(m1) or m1 <= m0:
        return _Crossing(endpoint, objective, i, float(n[i - 1]))
    frac = (objective.threshold - m0) / (m1 - m0)
    return _Crossing(endpoint, objective, i, float(n[i - 1] + frac * (n[i] - n[i - 1])))


def _metric_column(objective: Objective) -> str:
    return ERROR_RATE if objective.aggregation == ERROR_RATE else f"{objective.aggregation}_ms"


# --------------------------------------------------------------------------- the entry point


def capacity(
    run: Run | PathLike,
    *,
    peak_users: float | None = None,
    safety_factor: float = 1.5,
    slo: str | Mapping[str, str] = "p95<500",
    error_budget: float | None = None,
    users_per_instance: float | None = None,
    target_rps: float | None = None,
    min_instances: int = 1,
    think_time_s: float | None = None,
    settle_s: float = 3.0,
    include_protocols: Sequence[str] = (),
    db: DB = None,
) -> CapacityPlan:
    """Plan capacity from a stepped or ramped run.

    The load steps are found from the concurrency the tool recorded (k6 VUs, Locust users),
    else (open model: Artillery) from the arrival rate (or the completed request rate); per
    step the steady state (``settle_s`` after the step starts) gives concurrency, throughput,
    p50/p95/p99 and error rate. Percentiles are exact from raw samples for k6, else the median
    of the step's window percentiles. Users per instance is the concurrency where the SLO stops
    holding, interpolated between steps; Kneedle (on p95 against concurrency) and the USL fit
    give the knee independently. Instances are ``ceil(peak x safety / per instance)``, by users
    and by request rate.

    Args:
        run: a :class:`Run`, a run id (prefix) in ``db``, or a result path.
        peak_users: expected peak concurrent users, for the users route.
        safety_factor: head-room multiplier (below 1 warns).
        slo: an expression (``"p95<500"``, ``"p99<1s, errors<0.5%"``) for all requests, or a
            mapping endpoint -> expression (``"ALL"`` or ``"*"`` for all requests).
        error_budget: the error-rate objective, unless the SLO has an error clause (1 %
            when neither gives one).
        users_per_instance: override the measured value in the instance count.
        target_rps: target request rate, for the request-rate route.
        min_instances: floor on the instance counts.
        think_time_s: the script's think time per request, when known, for Little's law.
        settle_s: seconds dropped at the start of each step before measuring it.
        include_protocols: non-HTTP request types to count as server throughput (``("grpc",)``);
            by default a Locust ``grpc`` request type, which need not reach the server, is left
            out of the throughput and the steps (see :mod:`perfstats.planning.traffic`).
        db: the store holding ``run`` (or receiving a path's ingest).

    Returns:
        The plan.

    Raises:
        InsufficientDataError: the run has no time windows, or fewer than 2 load steps.
        ConfigError: a bad SLO expression, or an SLO for an endpoint the run does not have.
        ValueError: bad numeric arguments (see :func:`instances_needed`).

    Example:
        >>> plan = capacity("data/k6/ramp", peak_users=2000)  # doctest: +SKIP
        >>> plan.users_per_instance, plan.instances["users"]["instances"]  # doctest: +SKIP
    """
    if settle_s < 0:
        raise ValueError(f"settle_s must be >= 0, got {settle_s}")
    if think_time_s is not None and think_time_s < 0:
        raise ValueError(f"think_time_s must be >= 0, got {think_time_s}")
    objectives = capacity_objectives(slo, error_budget, all_requests=ALL_ENDPOINTS)
    loaded = load(run, db=db)
    with loaded.store.reading():  # one read connection for the plan's queries
        # DuckDB hands back 'Etc/UTC'; python's timezone.utc compares only with 'UTC'.
        windows = loaded.windows().with_columns(
            pl.col("start").dt.convert_time_zone("UTC")).sort("endpoint", "start")
        traffic = counted(loaded, include_protocols)
        windows = server_windows(windows, list(traffic.left_out))
        whole = windows.filter(pl.col("endpoint") == ALL_ENDPOINTS)
        if whole.is_empty() or whole["count"].sum() == 0:
            raise InsufficientDataError(
                f"run {loaded.run_id} has no time windows with requests; capacity needs a time "
                "series (k6 --out json/csv, Locust --csv-full-history, Artillery intermediate)")
        missing = sorted(set(objectives) - set(windows["endpoint"].unique()))
        if missing:
            known = ", ".join(sorted(set(windows["endpoint"].unique()) - {ALL_ENDPOINTS}))
            raise ConfigError(f"SLO for endpoint(s) {', '.join(missing)} that run "
                              f"{loaded.run_id} does not have; its endpoints: {known}")

        # A run whose scenarios are (partly) arrival-rate ones is sized by request rate, not users.
        closed = loaded.meta.get("load_model") not in ("open", "mixed") and \
            whole["users"].drop_nulls().len() > 0 and float(whole["users"].max() or 0) > 0
        if closed:
            level, what = whole["users"].fill_null(0.0), "virtual users"
        elif whole["arrivals"].drop_nulls().len() > 0:
            # Open model: the steps are the arrival rates the tool was told to keep.
            level, what = whole["arrivals"].fill_null(0.0) / whole["length_s"], "requests in flight"
        else:
            level, what = (whole["count"] / whole["length_s"]), "requests in flight"
        steps = detect_steps(whole["start"], level, lengths=whole["length_s"])
        if len(steps) < 2:
            raise InsufficientDataError(
                f"run {loaded.run_id}: found {len(steps)} load step(s); capacity needs a stepped "
                "or ramped run (at least 2 steps, 4 for the USL fit)")

        per = _window_steps(windows, steps, settle_s, closed)
        exact = loaded.grain == "samples"
        if exact:
            pct = _exact_percentiles(loaded, _bounds(whole, steps, settle_s))
            per = per.drop(*[f"{p}_ms" for p in _PERCENTILES], "percentiles").join(
                pct, on=["endpoint", "step"], how="left", maintain_order="left").with_columns(
                pl.lit("exact from raw samples").alias("percentiles"))
        else:
            per = mixed_step_percentiles(per, list(traffic.left_out))
    per = per.filter(pl.col("requests") > 0)
    table = per.filter(pl.col("endpoint") == ALL_ENDPOINTS).sort("concurrency")
    if table.height < 2:
        raise InsufficientDataError(f"run {loaded.run_id}: fewer than 2 load steps with requests")
    table = _with_step_times(table, steps)
    n = table["concurrency"].to_numpy().astype(float)

    # SLO per objective and endpoint, along the load axis.
    crossings = []
    for endpoint, objs in objectives.items():
        frame = table if endpoint == ALL_ENDPOINTS else table.select("step").join(
            per.filter(pl.col("endpoint") == endpoint), on="step", how="left",
            maintain_order="left")
        for objective in objs:
            metric = frame[_metric_column(objective)].fill_null(np.nan).to_numpy().astype(float)
            crossings.append(_crossing(n, metric, endpoint, objective))
    first_bad = [c.first_bad for c in crossings if c.first_bad is not None]
    table = _with_slo_columns(table, crossings)

    warns: list[str] = [traffic.sentence()] if traffic.left_out else []
    if not first_bad:
        status = "never-broken"
        upi: float | None = float(n[-1])
        upi_range: tuple[float | None, float | None] = (float(n[-1]), None)
        warns.append(f"the SLO held at every step up to {_n(n[-1])}: users per instance is a "
                     "lower bound; test to a higher load to find the limit")
    elif min(first_bad) == 0:
        status = "never-met"
        upi, upi_range = None, (None, float(n[0]))
        warns.append(f"the SLO is already broken at the lowest tested load ({_n(n[0])}): "
                     "no sustainable load per instance was measured")
    else:
        status = "met-then-broken"
        i = min(first_bad)
        upi = min(c.at for c in crossings if c.at is not None)
        upi_range = (float(n[i - 1]), float(n[i]))
    x = table["throughput_rps"].to_numpy().astype(float)
    rps, rps_range = _rps_per_instance(n, x, upi, status, min(first_bad, default=n.size))

    usl = _fit(n, x, warns)
    knee = _knee(table, upi if status == "met-then-broken" else None, usl)
    little = _little(table, closed, think_time_s, warns)
    table = table.join(little.pop("frame"), on="step", how="left", maintain_order="left")

    instances = {}
    if peak_users is not None:
        if closed or users_per_instance is not None:
            instances["users"] = _route(peak_users, users_per_instance, upi, upi_range, status,
                                        safety_factor, min_instances, instances_needed)
        else:
            # Requests in flight are not users: an open-model run cannot say users per instance.
            instances["users"] = {"instances": None, "range": [None, None], "peak": peak_users,
                                  "per_instance": None, "per_instance_source": None,
                                  "safety_factor": safety_factor, "min_instances": min_instances}
            warns.append("open-model run: it measures requests in flight, not users, so the "
                         "users route needs --users-per-instance; use --target-rps instead")
    if target_rps is not None:
        instances["rps"] = _route(target_rps, None, rps, rps_range, status, safety_factor,
                                  min_instances, instances_for_rps)

    steps_frame = table.select([c for c in _STEP_COLUMNS if c in table.columns])
    return CapacityPlan(
        run_id=loaded.run_id,
        tool=loaded.tool,
        concurrency=what,
        slo=objectives,
        users_per_instance=upi,
        users_per_instance_range=upi_range,
        rps_per_instance=rps,
        rps_per_instance_range=rps_range,
        slo_status=status,
        instances=instances,
        knee=knee,
        steps=steps_frame,
        usl=usl,
        little=little,
        assumptions=tuple(_assumptions(loaded, closed, exact, settle_s, objectives, steps,
                                       safety_factor, users_per_instance, think_time_s)
                          + [s for s in [traffic.sentence()] if s]),
        warnings=tuple(warns + (list(usl.warnings) if usl is not None else [])),
        inputs={"peak_users": peak_users, "safety_factor": safety_factor,
                "users_per_instance": users_per_instance, "target_rps": target_rps,
                "min_instances": min_instances, "think_time_s": think_time_s,
                "settle_s": settle_s, "error_budget": error_budget,
                "include_protocols": list(traffic.included)},
    )


def _with_step_times(table: pl.DataFrame, steps: Sequence[LoadStep]) -> pl.DataFrame:
    times = pl.DataFrame({"step": [s.index for s in steps], "start": [s.start for s in steps],
                          "end": [s.end for s in steps]})
    return table.join(times, on="step", how="left", maintain_order="left")


def _with_slo_columns(table: pl.DataFrame, crossings: Sequence[_Crossing]) -> pl.DataFrame:
    broken: list[list[str]] = [[] for _ in range(table.height)]
    for c in crossings:
        if c.first_bad is None:
            continue
        for i in range(c.first_bad, table.height):
            label = str(c.objective) if c.endpoint == ALL_ENDPOINTS else \
                f"{c.endpoint}: {c.objective}"
            broken[i].append(label)
    return table.with_columns(
        pl.Series("slo_ok", [not b for b in broken], dtype=pl.Boolean),
        pl.Series("slo_broken_by", ["; ".join(b) or None for b in broken], dtype=pl.String),
    )


def _rps_per_instance(n: np.ndarray, x: np.ndarray, upi: float | None, status: str,
                      first_bad: int) -> tuple[float | None, tuple[float | None, float | None]]:
    """The most throughput delivered within the SLO, and its range.

    Throughput can peak before the SLO breaks (a retrograde curve), so this is the larger of
    the best step meeting the SLO and the throughput interpolated at the crossing; the range
    runs from the best step meeting it to the first step breaking it.
    """
    if status == "never-met":
        return None, (None, float(x[0]))
    best_ok = float(np.max(x[:first_bad]))
    if status == "never-broken":
        return best_ok, (best_ok, None)
    assert upi is not None
    at_crossing = float(np.interp(upi, n, x))
    return max(best_ok, at_crossing), (best_ok, max(best_ok, float(x[first_bad])))


def _fit(n: np.ndarray, x: np.ndarray, warns: list[str]) -> USLFit | None:
    if np.unique(n).size < 4:
        warns.append(f"only {np.unique(n).size} distinct load steps: no USL fit (needs 4)")
        return None
    return fit_usl(n, x)


def _knee(table: pl.DataFrame, slo_crossing: float | None, usl: USLFit | None) -> dict[str, Any]:
    found = find_knee(table["concurrency"].to_numpy(), table["p95_ms"].to_numpy(),
                      curve="convex", direction="increasing") \
        if table["p95_ms"].null_count() == 0 else None
    kneedle = None if found is None else found.x
    agreement = kneedle / slo_crossing if kneedle is not None and slo_crossing else None
    return {
        "kneedle": kneedle,
        "kneedle_p95_ms": None if found is None else found.y,
        "slo_crossing": slo_crossing,
        "usl_n_star": None if usl is None else usl.n_star,
        "usl_optimal_load": None if usl is None else usl.optimal_load,
        "agreement": agreement,
    }


def _little(table: pl.DataFrame, closed: bool, think_time_s: float | None, warns: list[str]
            ) -> dict[str, Any]:
    """N = X (R + Z) per step: the implied think time Z, and the ratio N / (X (R + Z))."""
    n = table["concurrency"].to_numpy().astype(float)
    x = table["throughput_rps"].to_numpy().astype(float)
    r = table["mean_ms"].to_numpy().astype(float) / 1000.0
    if not closed:
        frame = table.select("step").with_columns(
            pl.lit(None, dtype=pl.Float64).alias("little_ratio"),
            pl.lit(None, dtype=pl.Float64).alias("implied_think_s"))
        return {"model": "open", "think_time_s": None, "flagged_steps": [], "frame": frame,
                "summary": "Open model: concurrency is itself derived with Little's law "
                           "(N = X R), so there is no independent check."}
    implied = n / x - r
    think = float(np.median(implied)) if think_time_s is None else think_time_s
    ratio = n / (x * (r + think))
    flagged = [int(s) for s, q in zip(table["step"], ratio, strict=True)
               if abs(q - 1.0) > LITTLE_TOLERANCE]
    source = "given" if think_time_s is not None else "median implied by the steps"
    summary = (f"N = X (R + Z) with Z = {think:.3g} s ({source}): N / (X (R + Z)) ranges "
               f"{np.min(ratio):.3f} to {np.max(ratio):.3f} over the steps.")
    if flagged:
        summary += (f" Steps {', '.join(map(str, flagged))} deviate by more than "
                    f"{LITTLE_TOLERANCE:.0%}.")
        warns.append(f"Little's law is off by more than {LITTLE_TOLERANCE:.0%} at step(s) "
                     f"{', '.join(map(str, flagged))}: suspect a saturated load generator, "
                     "client-side time not in the latency, or a step that is not steady")
    frame = table.select("step").with_columns(pl.Series("little_ratio", ratio),
                                              pl.Series("implied_think_s", implied))
    return {"model": "closed", "think_time_s": think, "think_time_source": source,
            "flagged_steps": flagged, "frame": frame, "summary": summary}


def _route(peak: float, given: float | None, measured: float | None,
           bracket: tuple[float | None, float | None], status: str, safety_factor: float,
           min_instances: int, formula: Any) -> dict[str, Any]:
    """One instance count (users or request-rate route) with its range."""
    def count(per: float | None) -> int | None:
        return None if per is None or per <= 0 else formula(
            peak, per, safety_factor=safety_factor, min_instances=min_instances)

    if given is not None:
        value = count(given)
        return {"instances": value, "range": [value, value], "peak": peak,
                "per_instance": given, "per_instance_source": "given",
                "safety_factor": safety_factor, "min_instances": min_instances}
    low_per, high_per = bracket
    if status == "never-met":
        rng = [count(high_per), None]
        value = None
    elif status == "never-broken":
        rng = [None, count(measured)]
        value = count(measured)
    else:
        ends = [count(high_per), count(low_per)]
        rng = sorted(ends) if None not in ends else ends
        value = count(measured)
    return {"instances": value, "range": rng, "peak": peak, "per_instance": measured,
            "per_instance_source": "measured", "safety_factor": safety_factor,
            "min_instances": min_instances}


def _assumptions(run: Run, closed: bool, exact: bool, settle_s: float,
                 objectives: Mapping[str, tuple[Objective, ...]], steps: Sequence[LoadStep],
                 safety_factor: float, given_upi: float | None,
                 think_time_s: float | None) -> list[str]:
    levels = ", ".join(_n(s.level) for s in steps)
    out = [
        "The tested system is one instance; instances add capacity linearly (no shared "
        "downstream bottleneck such as one database), and production traffic has the same "
        "request mix and think times as the test.",
        f"SLO: {'; '.join(f'{e}: {format_slo(o)}' for e, o in objectives.items())}; it must "
        "hold at a step for that step's load to count as sustainable.",
        f"Load steps found automatically from the "
        f"{'concurrency the tool recorded' if closed else 'completed request rate'} "
        f"(levels {levels}); transitions dropped, and the first {settle_s:g} s of each step "
        "(when the step is long enough) so that only the steady state is measured.",
    ]
    if closed:
        out.append(f"Concurrency: the {run.tool} virtual users/users active in each step "
                   "(closed model: a user waits for each response).")
    else:
        out.append("Concurrency: requests in flight from Little's law, N = X x R (open model: "
                   "the tool records arrivals, not concurrent users); users per instance is in "
                   "that unit, so prefer the request-rate route (--target-rps).")
        out.append("Open-model steps are found from the completed request rate, which follows "
                   "the arrival rate until saturation; steps past saturation are measured "
                   "but their arrival rate is not known.")
    if exact:
        out.append("Percentiles per step: exact, from every raw sample of the step (linear "
                   "interpolation, k6's definition).")
    else:
        out.append(f"Percentiles per step: the median of the tool's window percentiles "
                   f"({run.tool}); percentiles cannot be pooled, so this is an estimate, not "
                   "the step's exact percentile.")
    out.append("Users per instance: linear interpolation of each SLO metric between the last "
               "step that met it and the first that broke it; the range is those two steps.")
    if given_upi is not None:
        out.append(f"Instances use the given users per instance ({_n(given_upi)}), not the "
                   "measured one.")
    out.append(f"Instances = ceil(peak x safety factor {safety_factor:g} / per instance), by "
               "users and by request rate; no zone redundancy (see instances_needed(zones=)).")
    out.append("USL fit: unweighted bounded least squares of throughput on concurrency, one "
               "point per step; Wald 95% intervals (t, n-3 df).")
    if closed:
        out.append("Little's law check: " + (f"think time {think_time_s:g} s as given." if
                   think_time_s is not None else "think time per request implied by the "
                   "steps (their median)."))
    return out
