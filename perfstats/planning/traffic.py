"""Which requests are the server's throughput: HTTP ones, and other protocols only when asked.

A load tool can count requests that never reach the server under test as requests: a Locust
``grpc`` request type fired through ``events.request.fire`` (a call to another service), for
example. Its whole-run row (``ALL``, Locust's "Aggregated") counts them; capacity, which sizes the
server, leaves them out of throughput and the load steps unless ``include_protocols`` names
their protocol. :func:`server_windows` rebuilds the ``ALL`` windows from the counted endpoints
(counts, failures and latency sums add up; the tool's per-window percentiles of ``ALL`` cannot be
split, so :func:`mixed_step_percentiles` estimates the steps' percentiles as a mixture of the
counted endpoints' step percentiles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from perfstats.readers.shards import mix_summaries
from perfstats.run import Run
from perfstats.store import ALL_ENDPOINTS

MIXED = "approximate: mixture of the counted endpoints' step percentiles"
"""The ``percentiles`` label of a step whose ``ALL`` percentiles leave requests out."""


@dataclass(frozen=True)
class Counted:
    """What a capacity plan counts as server throughput.

    Attributes:
        left_out: endpoints of a protocol that is not counted, with their protocol.
        included: non-HTTP protocols counted because they were asked for.
        left_out_requests: requests of the left-out endpoints in the whole run.
        requests: all requests of the run (the tool's whole-run count).
    """

    left_out: dict[str, str]
    included: tuple[str, ...]
    left_out_requests: int
    requests: int

    def sentence(self) -> str | None:
        """The warning / assumption that says what was left out or counted, or None."""
        if self.left_out:
            protocols = sorted(set(self.left_out.values()))
            share = self.left_out_requests / self.requests if self.requests else 0.0
            names = ", ".join(sorted(self.left_out))
            flag = " ".join(f"--include-protocol {p}" for p in protocols)
            return (f"server throughput counts HTTP requests only: {self.left_out_requests:,} "
                    f"{'/'.join(protocols)} requests ({100 * share:.1f}% of the run's; {names}) "
                    "are left out of the throughput and the load steps, as they need not reach "
                    f"the server; include_protocols={tuple(protocols)!r} ({flag}) counts them")
        if self.included:
            return (f"server throughput counts the {'/'.join(self.included)} requests as "
                    "asked (include_protocols), besides the HTTP ones")
        return None


def counted(run: Run, include_protocols: Sequence[str] = ()) -> Counted:
    """Which endpoints of ``run`` are left out of server throughput.

    Raises:
        ValueError: ``include_protocols`` is a bare string (a tuple of names is meant).
    """
    if isinstance(include_protocols, str):
        raise ValueError("include_protocols takes protocol names, e.g. ('grpc',), not a string")
    wanted = {p.strip().lower() for p in include_protocols}
    summary = run.summary().select("endpoint", "protocol", "count")
    whole = summary.filter(pl.col("endpoint") == ALL_ENDPOINTS)["count"].sum()
    other = summary.filter((pl.col("endpoint") != ALL_ENDPOINTS) & (pl.col("protocol") != "http"))
    out = other.filter(~pl.col("protocol").is_in(sorted(wanted)))
    included = sorted(set(other["protocol"].to_list()) & wanted)
    return Counted(left_out=dict(out.select("endpoint", "protocol").iter_rows()),
                   included=tuple(included), left_out_requests=int(out["count"].sum() or 0),
                   requests=int(whole or 0))


def server_windows(windows: pl.DataFrame, left_out: Sequence[str]) -> pl.DataFrame:
    """``windows`` with the ``ALL`` rows rebuilt from the endpoints that count.

    Counts, failures, latency sums, min and max add up exactly; users, arrivals and lengths stay
    the tool's; the ``ALL`` percentiles become null (see :func:`mixed_step_percentiles`).
    """
    if not left_out:
        return windows
    whole = windows.filter(pl.col("endpoint") == ALL_ENDPOINTS)
    parts = windows.filter((pl.col("endpoint") != ALL_ENDPOINTS)
                           & ~pl.col("endpoint").is_in(list(left_out)))
    sums = parts.group_by("start").agg(
        pl.col("count").sum(), pl.col("failures").sum(), pl.col("total_ms").sum(),
        pl.col("min").min(), pl.col("max").max())
    rebuilt = whole.drop("count", "failures", "total_ms", "min", "max").join(
        sums, on="start", how="left").with_columns(
        pl.col("count").fill_null(0), pl.col("failures").fill_null(0),
        pl.col("total_ms").fill_null(0.0),
        mean=pl.when(pl.col("count") > 0).then(pl.col("total_ms") / pl.col("count")),
        **{p: pl.lit(None, pl.Float64) for p in ("p50", "p90", "p95", "p99")},
    ).select(windows.columns)
    return pl.concat([windows.filter(pl.col("endpoint") != ALL_ENDPOINTS),
                      rebuilt.cast(dict(windows.schema))]).sort("endpoint", "start")


def mixed_step_percentiles(per: pl.DataFrame, left_out: Sequence[str]) -> pl.DataFrame:
    """Per step, the ``ALL`` p50/p95/p99 as the request-weighted mixture of the counted
    endpoints' step percentiles (each a piecewise-linear CDF through min, p50, p90, p95, p99, max;
    :func:`perfstats.readers.shards.mix_summaries`)."""
    if not left_out:
        return per
    parts = per.filter((pl.col("endpoint") != ALL_ENDPOINTS)
                       & ~pl.col("endpoint").is_in(list(left_out)) & (pl.col("requests") > 0))
    mix = mix_summaries(parts.select(
        "step", count="requests", failures="failures", rps=pl.lit(None, pl.Float64),
        mean="mean_ms", min="min_ms", p50="p50_ms", p90="p90_ms", p95="p95_ms", p99="p99_ms",
        max="max_ms"), "step").select("step", p50_mix="p50", p95_mix="p95", p99_mix="p99")
    whole = pl.col("endpoint") == ALL_ENDPOINTS
    return per.join(mix, on="step", how="left", maintain_order="left").with_columns(
        *(pl.when(whole).then(pl.col(f"{p}_mix")).otherwise(pl.col(f"{p}_ms")).alias(f"{p}_ms")
          for p in ("p50", "p95", "p99")),
        percentiles=pl.when(whole).then(pl.lit(MIXED)).otherwise(pl.col("percentiles")),
    ).drop("p50_mix", "p95_mix", "p99_mix")
