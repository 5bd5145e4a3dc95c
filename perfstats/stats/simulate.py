"""Synthetic load-test runs with autocorrelated latency, for calibrating the drift gate.

Each endpoint receives Poisson arrivals. Its log latency is ``log(median * scale) + sigma * z``
where ``z`` is a stationary unit-variance mix of two AR(1) processes: one per endpoint in request
order with time constant ``tau_s`` (queueing, GC pauses), one shared by all endpoints over seconds
with time constant ``shared_tau_s`` (a noisy neighbour) carrying ``shared_share`` of the variance.
Each request fails independently with the endpoint's error rate. ``scale`` shifts a whole endpoint
(or the whole run) to model run-to-run level differences and injected regressions.

:func:`at_grain` turns a run into what a tool of another grain would have written: per-window
summaries (Artillery periods, Locust history rows) or one summary per endpoint (k6 handleSummary,
Locust's stats CSV), so that every grain is calibrated on the same synthetic data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.signal import lfilter

from perfstats.stats.drift import (
    DriftSettings,
    EndpointData,
    RunData,
    as_windows,
    auto_window_s,
    drift_checks,
    verdict,
)
from perfstats.stats.histogram import WindowHistogram

ALL = "ALL"
"""Name of the whole-run entry added to every synthetic run."""


@dataclass(frozen=True)
class SyntheticEndpoint:
    """A synthetic endpoint: request rate (req/s), median latency (ms), log-scale sigma."""

    name: str
    rate: float
    median_ms: float
    sigma: float
    error_rate: float = 0.0


DEFAULT_ENDPOINTS = (
    SyntheticEndpoint("GET /api/deals", 30.0, 15.0, 0.3),
    SyntheticEndpoint("GET /api/deals/{id}", 30.0, 8.0, 0.3),
    SyntheticEndpoint("POST /api/auth/login", 10.0, 60.0, 0.35),
    SyntheticEndpoint("POST /api/quote", 15.0, 40.0, 0.8),
    SyntheticEndpoint("POST /api/bookings", 15.0, 30.0, 0.35, error_rate=0.01),
)
"""Five endpoints modelled on the test server of ``shared/data`` at 100 req/s in total."""


def _ar1(n: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) with unit variance and lag-1 correlation ``rho``."""
    if n == 0:
        return np.zeros(0)
    eps = rng.standard_normal(n)
    start = rng.standard_normal()
    return lfilter([math.sqrt(1.0 - rho * rho)], [1.0, -rho], eps, zi=[rho * start])[0]


def synthetic_run(
    endpoints: Sequence[SyntheticEndpoint] = DEFAULT_ENDPOINTS,
    *,
    duration_s: float = 600.0,
    window_s: float | None = None,
    scale: float | Mapping[str, float] = 1.0,
    tau_s: float = 0.25,
    shared_tau_s: float = 2.0,
    shared_share: float = 0.1,
    rng: np.random.Generator,
) -> RunData:
    """Generate one run as per-window histograms, with a whole-run ``ALL`` entry.

    Args:
        endpoints: the endpoints and their latency models.
        duration_s: run length in seconds.
        window_s: window length of the histograms (default: as ``perfstats compare`` chooses).
        scale: latency multiplier for every endpoint, or per endpoint name (missing names: 1).
        tau_s: time constant (s) of each endpoint's own AR(1) log-latency noise.
        shared_tau_s: time constant (s) of the noise shared by all endpoints.
        shared_share: share of the log-latency variance that is shared, in [0, 1).
        rng: the random generator.
    """
    window_s = window_s or auto_window_s(duration_s)
    n_windows = math.ceil(duration_s / window_s)
    lengths = np.full(n_windows, float(window_s))
    lengths[-1] = duration_s - window_s * (n_windows - 1)
    seconds = math.ceil(duration_s) + 1
    shared = _ar1(seconds, math.exp(-1.0 / shared_tau_s), rng)
    result: dict[str, EndpointData] = {}
    merged: WindowHistogram | None = None
    for ep in endpoints:
        n = int(rng.poisson(ep.rate * duration_s))
        t = np.sort(rng.uniform(0.0, duration_s, n))
        own = _ar1(n, math.exp(-1.0 / (ep.rate * tau_s)), rng)
        z = math.sqrt(1.0 - shared_share) * own + math.sqrt(shared_share) * shared[t.astype(int)]
        factor = scale.get(ep.name, 1.0) if isinstance(scale, Mapping) else scale
        latency = ep.median_ms * factor * np.exp(ep.sigma * z)
        failed = rng.random(n) < ep.error_rate
        window = np.minimum((t / window_s).astype(np.int64), n_windows - 1)
        hist = WindowHistogram.from_samples(window, latency, failed, lengths)
        result[ep.name] = EndpointData(count=n, errors=int(failed.sum()), histogram=hist)
        merged = hist if merged is None else merged.merge(hist)
    if merged is not None:
        result = {ALL: EndpointData(merged.total, int(merged.errors.sum()), histogram=merged),
                  **result}
    return RunData(result, duration_s)


GRAINS = ("samples", "windows", "summary")
"""Input grains :func:`at_grain` can make: raw samples (per-window histograms), per-window
summaries, one summary per endpoint."""


def at_grain(run: RunData, grain: str, *, period_s: float | None = None) -> RunData:
    """The run as a tool of ``grain`` would report it.

    Args:
        run: a run of per-window histograms (from :func:`synthetic_run`).
        grain: ``samples`` (unchanged), ``windows`` (per-window p50/p95/p99/mean, counts and
            errors; whole-run figures as the tool's summary) or ``summary`` (whole-run p50, p90,
            p95, p99, mean, count and errors only).
        period_s: for ``windows``, the tool's period (Artillery: 10 s); the run must have been
            made with this window length. Ignored otherwise.
    """
    if grain == "samples":
        return run
    if grain not in GRAINS:
        raise ValueError(f"unknown grain {grain!r}; use one of {', '.join(GRAINS)}")
    out = {}
    for name, data in run.endpoints.items():
        hist = data.histogram
        if hist is None:
            out[name] = data
            continue
        q = hist.quantiles([0.5, 0.9, 0.95, 0.99])
        summary = {"p50": float(q[0]), "p90": float(q[1]), "p95": float(q[2]),
                   "p99": float(q[3])}
        if hist.total:
            summary["mean"] = float(np.sum(hist.sums) / hist.total)
        windows = as_windows(data) if grain == "windows" else None
        out[name] = EndpointData(data.count, data.errors, summary, windows=windows)
    return replace(run, endpoints=out)


@dataclass(frozen=True)
class SimulationResult:
    """Outcome of many simulated baseline/candidate pairs.

    Attributes:
        pairs: number of pairs.
        no_go_rate: share of pairs whose verdict is NO-GO.
        caught_rate: share of pairs with a regression flagged on the target endpoint.
        p95_caught_rate: share with a regression flagged on the target endpoint's p95.
        false_regression_rate: share of pairs with a regression flagged on any other endpoint
            (the whole-run ``ALL`` entry counts as the target's when there is one).
        false_discovery_rate: the mean over pairs of the share of flagged endpoints that did
            not change (0 for a pair that flags none): what Benjamini-Hochberg across the
            families holds at alpha; with one endpoint changed, a pair that flags it and one
            other counts one half.
    """

    pairs: int
    no_go_rate: float
    caught_rate: float
    p95_caught_rate: float
    false_regression_rate: float
    false_discovery_rate: float


def simulate_pairs(
    pairs: int,
    *,
    seed: int,
    shift: float = 1.03,
    target: str | None = None,
    effect: float = 1.15,
    settings: DriftSettings | None = None,
    endpoints: Sequence[SyntheticEndpoint] = DEFAULT_ENDPOINTS,
    error_rate: float | None = None,
    grain: str = "samples",
    **run_options: float,
) -> SimulationResult:
    """Run the drift gate on ``pairs`` simulated baseline/candidate pairs.

    Args:
        pairs: number of pairs.
        seed: seed of the data generator (the bootstrap has its own, in ``settings``).
        shift: run-to-run level difference applied to every endpoint of the candidate.
        target: endpoint whose latency the candidate multiplies by ``effect`` instead (power);
            None for A/A pairs (false alarms).
        effect: the injected latency change on ``target``.
        settings: the gate's settings (default: the defaults of ``perfstats compare``).
        endpoints: the endpoints of both runs.
        error_rate: the candidate's error rate on ``target`` (its latency then unchanged but for
            ``shift``); None to change latency.
        grain: the input grain both runs are reported at (see :func:`at_grain`).
        **run_options: options of :func:`synthetic_run` (duration_s, tau_s, shared_share...).
    """
    rng = np.random.default_rng(seed)
    scale: dict[str, float] = {ep.name: shift for ep in endpoints}
    changed = list(endpoints)
    if target is not None and error_rate is not None:
        changed = [replace(ep, error_rate=error_rate) if ep.name == target else ep
                   for ep in endpoints]
    elif target is not None:
        scale[target] = effect
    no_go = caught = caught_p95 = other = 0
    discoveries = 0.0
    for _ in range(pairs):
        baseline = at_grain(synthetic_run(endpoints, rng=rng, **run_options), grain)
        candidate = at_grain(synthetic_run(changed, rng=rng, scale=scale, **run_options), grain)
        checks = drift_checks(baseline, candidate, settings)
        flagged = {(c.endpoint, c.metric) for c in checks if c.status == "regression"}
        hits = {e for e, _ in flagged if e == target}
        no_go += verdict(checks) == "NO-GO"
        caught += bool(hits)
        caught_p95 += (target, "p95") in flagged
        endpoints_flagged = {e for e, _ in flagged}
        if target is not None:
            endpoints_flagged.discard(ALL)  # the whole run carries the target's change
        false = endpoints_flagged - {target}
        other += bool(false)
        discoveries += len(false) / len(endpoints_flagged) if endpoints_flagged else 0.0
    return SimulationResult(pairs, no_go / pairs, caught / pairs, caught_p95 / pairs,
                            other / pairs, discoveries / pairs)
