"""Synthetic runs of a multi-scenario harness with custom metrics, for the drift gate's calibration.

Modelled on the k6 harness of the sample data: four scenarios (``browse``, ``booking``, ``quote``,
``probe``), POST /api/quote called from two of them, and the custom metrics such a script records
beside the HTTP requests: Trends that time the same requests (``quote_duration``,
``login_duration``, ``booking_duration``), a success Rate and the checks of the bookings, one check
per request, and Counters of bookings made and failed. Each (scenario, endpoint) stream comes from
:func:`perfstats.stats.simulate.synthetic_run` (Poisson arrivals, autocorrelated lognormal latency,
a noise shared by all streams), and the run is put together as ``perfstats compare`` builds it:
endpoints, whole run, scenario slices and custom series, all in one list of checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import reduce

import numpy as np

from perfstats.stats.drift import DriftSettings, EndpointData, RunData, drift_checks, verdict
from perfstats.stats.histogram import WindowHistogram
from perfstats.stats.simulate import ALL, SyntheticEndpoint, synthetic_run

QUOTE = "POST /api/quote"
STREAMS = (
    ("browse", SyntheticEndpoint("GET /api/deals", 7.5, 15.0, 0.3)),
    ("browse", SyntheticEndpoint("GET /api/deals/{id}", 15.0, 8.0, 0.3)),
    ("booking", SyntheticEndpoint("POST /api/auth/login", 15.0, 60.0, 0.35)),
    ("booking", SyntheticEndpoint(QUOTE, 15.0, 40.0, 0.8)),
    ("booking", SyntheticEndpoint("POST /api/bookings", 15.0, 30.0, 0.35, error_rate=0.01)),
    ("quote", SyntheticEndpoint(QUOTE, 10.0, 40.0, 0.8)),
    ("probe", SyntheticEndpoint("GET /health", 2.0, 1.0, 0.2)),
)
"""(scenario, endpoint) streams: about 80 requests per second, as the sample harness."""


def _merge(hists: Sequence[WindowHistogram]) -> WindowHistogram:
    return reduce(lambda a, b: a.merge(b), hists)


def _http(hist: WindowHistogram, name: str, slice_: str = "") -> EndpointData:
    return EndpointData(hist.total, int(hist.errors.sum()), histogram=hist, name=name,
                        slice=slice_)


def harness_run(*, rng: np.random.Generator, duration_s: float = 75.0, scale: float = 1.0,
                **options: float) -> RunData:
    """One synthetic harness run with its endpoints, slices and custom series.

    Args:
        rng: the random generator.
        duration_s: run length in seconds.
        scale: latency multiplier of every stream (a run-to-run shift).
        **options: further options of :func:`~perfstats.stats.simulate.synthetic_run`.
    """
    named = [replace(ep, name=f"{scenario}|{ep.name}") for scenario, ep in STREAMS]
    raw = synthetic_run(named, rng=rng, duration_s=duration_s, scale=scale, **options)
    streams = {key: data.histogram for key, data in raw.endpoints.items()
               if key != ALL and data.histogram is not None}
    by_endpoint: dict[str, list[WindowHistogram]] = {}
    by_scenario: dict[str, list[WindowHistogram]] = {}
    for key, hist in streams.items():
        scenario, endpoint = key.split("|", 1)
        by_endpoint.setdefault(endpoint, []).append(hist)
        by_scenario.setdefault(scenario, []).append(hist)
    series: dict[str, EndpointData] = {ALL: _http(_merge(list(streams.values())), ALL)}
    series.update({name: _http(_merge(h), name) for name, h in by_endpoint.items()})
    # Slices as compare makes them: an endpoint called from two scenarios, each scenario with
    # several endpoints as a whole.
    for scenario in ("booking", "quote"):
        series[f"{QUOTE}|{scenario}"] = _http(streams[f"{scenario}|{QUOTE}"], QUOTE,
                                              f"scenario:{scenario}")
    for scenario in ("booking", "browse"):
        series[f"ALL|{scenario}"] = _http(_merge(by_scenario[scenario]), ALL,
                                          f"scenario:{scenario}")
    # Custom Trends timing the same requests.
    for trend, endpoint in (("login_duration", "POST /api/auth/login"),
                            ("booking_duration", "POST /api/bookings")):
        series[trend] = EndpointData(series[endpoint].count, None,
                                     histogram=series[endpoint].histogram, kind="trend",
                                     name=trend)
    series["quote_duration"] = replace(series[QUOTE], errors=None, kind="trend",
                                       name="quote_duration")
    for scenario in ("booking", "quote"):
        series[f"quote_duration|{scenario}"] = replace(
            series[f"{QUOTE}|{scenario}"], errors=None, kind="trend", name="quote_duration")
    # Rates, checks and counters of the bookings; one passing-or-failing check per request.
    bookings = streams["booking|POST /api/bookings"]
    made = bookings.window_counts - bookings.errors
    n, failed = bookings.total, int(bookings.errors.sum())
    for name, kind in (("booking_success_rate", "rate"), ("booking status is 200", "check")):
        series[name] = EndpointData(n, n - failed, kind=kind, name=name, direction="lower")
    whole = series[ALL]
    series["checks"] = EndpointData(whole.count, whole.count - int(whole.errors or 0),
                                    kind="rate", name="checks", direction="lower")
    for name, amounts, direction in (("bookings_created", made, "lower"),
                                     ("booking_errors", bookings.errors, "higher")):
        series[name] = EndpointData(int(amounts.sum()), None, kind="counter", name=name,
                                    direction=direction, floor=False,
                                    amount=float(amounts.sum()),
                                    amounts=(amounts.astype(np.float64), bookings.lengths))
    return RunData(series, duration_s)


@dataclass(frozen=True)
class HarnessSimulation:
    """Outcome of simulated harness pairs.

    Attributes:
        pairs: number of pairs.
        checks: checks per pair.
        no_go_rate: share of pairs whose verdict is NO-GO.
        flagged: how often each (series, slice, metric) was a regression, over all pairs.
    """

    pairs: int
    checks: int
    no_go_rate: float
    flagged: dict[tuple[str, str, str], int]


def simulate_harness_pairs(pairs: int, *, seed: int, shift: float = 1.03,
                           duration_s: float = 75.0, settings: DriftSettings | None = None,
                           **options: float) -> HarnessSimulation:
    """The drift gate on ``pairs`` A/A harness pairs: the candidate ``shift`` slower everywhere.

    Args:
        pairs: number of pairs.
        seed: seed of the data generator (the bootstrap has its own, in ``settings``).
        shift: run-to-run level difference of the candidate's latency.
        duration_s: run length in seconds.
        settings: the gate's settings (default: those of ``perfstats compare``).
        **options: options of :func:`harness_run`.
    """
    rng = np.random.default_rng(seed)
    no_go = checks = 0
    flagged: dict[tuple[str, str, str], int] = {}
    for _ in range(pairs):
        baseline = harness_run(rng=rng, duration_s=duration_s, **options)
        candidate = harness_run(rng=rng, duration_s=duration_s, scale=shift, **options)
        result = drift_checks(baseline, candidate, settings)
        checks = len(result)
        no_go += verdict(result) == "NO-GO"
        for c in result:
            if c.status == "regression":
                key = (c.endpoint, c.slice, c.metric)
                flagged[key] = flagged.get(key, 0) + 1
    return HarnessSimulation(pairs, checks, no_go / pairs, flagged)
