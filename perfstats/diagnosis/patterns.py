"""Over-time patterns in a run's windows: leak-like rising latency, spikes, rising errors and a
capacity limit (throughput levels off while latency climbs).

:func:`find_patterns` merges the ``windows`` rows of one run into equal time blocks per endpoint
(and ``ALL``) and runs one deterministic test per pattern; each hit comes with its time span,
p-value, size and the evidence in words. The tests and their thresholds are described in
docs/bottlenecks.md ("Patterns over time").
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from perfstats.stats.tails import norm_sf, t_sf
from perfstats.store import ALL_ENDPOINTS

PATTERNS = {
    "rising latency": "latency rises steadily through the run at a steady load (leak-like)",
    "spikes": "short windows far above the latency around them",
    "rising errors": "the error rate climbs through the run",
    "capacity limit": "throughput stops growing while latency climbs",
}
"""The over-time patterns :func:`find_patterns` looks for."""

_PATTERN_SCHEMA = {"endpoint": pl.String, "pattern": pl.String, "start": pl.Datetime("us", "UTC"),
                   "end": pl.Datetime("us", "UTC"), "p_value": pl.Float64,
                   "change": pl.Float64, "evidence": pl.String}


def _blocks(windows: pl.DataFrame, blocks: int) -> pl.DataFrame:
    """Windows merged into ``blocks`` equal time blocks per endpoint (exact counts and means).

    A block's length is the time its ``ALL`` windows cover, so partly covered blocks at the edges
    keep the right request rate; ``users`` is the most concurrent users seen in the block.
    """
    t0 = windows["start"].min()
    frame = windows.with_columns(
        t=(pl.col("start") - t0).dt.total_microseconds() / 1e6,
        total=pl.coalesce("total_ms", pl.col("mean") * pl.col("count")),
    )
    span = float((frame["t"] + frame["length_s"]).max())
    width = max(float(frame["length_s"].max()), span / blocks)
    frame = frame.with_columns(block=(pl.col("t") / width).floor().cast(pl.Int64))
    whole = frame.filter(pl.col("endpoint") == ALL_ENDPOINTS).group_by("block").agg(
        covered=pl.col("length_s").sum(), users=pl.col("users").max())
    return frame.filter(pl.col("count") > 0).group_by("endpoint", "block").agg(
        count=pl.col("count").sum(), failures=pl.col("failures").fill_null(0).sum(),
        total=pl.col("total").sum(), start=pl.col("start").min(),
        end=(pl.col("start") + pl.duration(seconds=pl.col("length_s"))).max(),
    ).join(whole, on="block", how="left").with_columns(
        t=(pl.col("block") + 0.5) * width,
        mean=pl.col("total") / pl.col("count"),
        rps=pl.col("count") / pl.coalesce("covered", pl.lit(width)),
        error_rate=pl.col("failures") / pl.col("count"),
    ).sort("endpoint", "block")


def _trend(y: str, t: str = "t") -> list[pl.Expr]:
    """OLS slope of ``y`` on ``t`` per group, its standard error and the number of points."""
    n = pl.len()
    sxx = ((pl.col(t) - pl.col(t).mean()) ** 2).sum()
    sxy = ((pl.col(t) - pl.col(t).mean()) * (pl.col(y) - pl.col(y).mean())).sum()
    slope = sxy / sxx
    resid = pl.col(y) - pl.col(y).mean() - slope * (pl.col(t) - pl.col(t).mean())
    se = ((resid ** 2).sum() / (n - 2) / sxx).sqrt()
    return [slope.alias("slope"), se.alias("se"), n.alias("n")]


def _one_sided_p(frame: pl.DataFrame) -> pl.Series:
    """One-sided p-value of a positive slope (t test with n - 2 degrees of freedom)."""
    tstat = (frame["slope"] / frame["se"]).to_numpy()
    dof = np.maximum(frame["n"].to_numpy() - 2, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = t_sf(tstat, dof)
    return pl.Series(np.where(np.isfinite(p), p, np.where(tstat > 0, 0.0, 1.0)))


def _found(hits: pl.DataFrame, blocks: pl.DataFrame, pattern: str, *, evidence: pl.Expr,
           change: str | pl.Expr = "change", start: str = "start") -> pl.DataFrame:
    """Rows of :func:`find_patterns` for the endpoints in ``hits`` (one each, with ``p_value``).

    A row ends where the endpoint's last block ends and starts at ``start`` (default: where its
    first block starts).
    """
    span = blocks.group_by("endpoint").agg(start=pl.col("start").min(), end=pl.col("end").max())
    return hits.join(span, on="endpoint").select(
        "endpoint", pattern=pl.lit(pattern), start=start, end="end", p_value="p_value",
        change=change, evidence=evidence)


def _rising_latency(blocks: pl.DataFrame, alpha: float, min_rise: float) -> pl.DataFrame:
    """Slope test on log block means, where the load (users, else total rps) stays steady."""
    inner = blocks.filter((pl.col("block") > pl.col("block").min())
                          & (pl.col("block") < pl.col("block").max()))
    load = pl.coalesce("users", pl.col("rps"))
    whole = inner.filter(pl.col("endpoint") == ALL_ENDPOINTS)
    if whole.is_empty():
        return pl.DataFrame(schema=_PATTERN_SCHEMA)
    spread = whole.select(load.max() / load.min()).item()
    if spread is None or spread > 1.3:  # the load moved: a climb is the capacity detector's job
        return pl.DataFrame(schema=_PATTERN_SCHEMA)
    usable = blocks.filter(pl.col("count") >= 5).with_columns(y=pl.col("mean").log())
    fit = usable.group_by("endpoint").agg(
        *_trend("y"), first=pl.col("mean").first(), last=pl.col("mean").last(),
        t_span=pl.col("t").max() - pl.col("t").min()).filter(pl.col("n") >= 6)
    if fit.is_empty():
        return pl.DataFrame(schema=_PATTERN_SCHEMA)
    fit = fit.with_columns(p_value=_one_sided_p(fit),
                           change=(pl.col("slope") * pl.col("t_span")).exp() - 1.0)
    hits = fit.filter((pl.col("p_value") < alpha) & (pl.col("change") >= min_rise))
    return _found(
        hits, blocks, "rising latency",
        evidence=pl.format(
            "mean latency rose {}% over {} s at a steady load (trend {}%/min on {} time blocks, "
            "one-sided p = {}); first block {} ms, last {} ms",
            (pl.col("change") * 100).round(0), pl.col("t_span").round(0),
            ((pl.col("slope") * 60).exp() * 100 - 100).round(1), pl.col("n"),
            pl.col("p_value").round_sig_figs(2), pl.col("first").round(1),
            pl.col("last").round(1)))


def _spikes(windows: pl.DataFrame, z_limit: float, min_ratio: float) -> pl.DataFrame:
    """Windows far above the latency on *both* sides of them (a climb is not a spike).

    The reference of a window is the larger of the median log mean of the 5 windows before it and
    of the 5 after it; a spike lies ``z_limit`` robust deviations (1.4826 MAD of the residuals)
    and a factor ``min_ratio`` above it.
    """
    k = 5
    usable = windows.filter(pl.col("count") >= 5).sort("endpoint", "start").with_columns(
        y=pl.col("mean").log())
    before = pl.col("y").shift(1).rolling_median(k, min_samples=2)
    after = pl.col("y").reverse().shift(1).rolling_median(k, min_samples=2).reverse()
    usable = usable.with_columns(
        # null (no spike possible) at either end, where one side has fewer than 2 windows
        local=pl.when(before.over("endpoint").is_not_null()
                      & after.over("endpoint").is_not_null()).then(
            pl.max_horizontal(before.over("endpoint"), after.over("endpoint"))),
        n=pl.len().over("endpoint"),
    ).filter(pl.col("n") >= 10).with_columns(resid=pl.col("y") - pl.col("local"))
    usable = usable.with_columns(
        scale=(pl.col("resid") - pl.col("resid").median()).abs().median().over("endpoint")
        * 1.4826,
    ).with_columns(z=pl.col("resid") / pl.col("scale"))
    spikes = usable.filter((pl.col("z") >= z_limit)
                           & (pl.col("resid") >= math.log(min_ratio)))
    if spikes.is_empty():
        return pl.DataFrame(schema=_PATTERN_SCHEMA)
    worst = spikes.sort("z", descending=True).group_by("endpoint", maintain_order=True).agg(
        windows=pl.len(), start=pl.col("start").min(),
        end=(pl.col("start") + pl.duration(seconds=pl.col("length_s"))).max(),
        at=pl.col("start").first(), peak=pl.col("mean").first(),
        around=pl.col("local").first().exp(), z=pl.col("z").first(), total=pl.col("n").first())
    return worst.select(
        "endpoint", pattern=pl.lit("spikes"), start="start", end="end",
        p_value=pl.lit(None, pl.Float64), change=pl.col("peak") / pl.col("around") - 1.0,
        evidence=pl.format(
            "{} of {} windows spike; worst at {} UTC: mean {} ms vs {} ms on either side "
            "({} robust deviations)", pl.col("windows"), pl.col("total"),
            pl.col("at").dt.strftime("%H:%M:%S"), pl.col("peak").round(1),
            pl.col("around").round(1), pl.col("z").round(1)))


def _rising_errors(blocks: pl.DataFrame, alpha: float) -> pl.DataFrame:
    """Cochran-Armitage trend test of the error rate over time blocks."""
    third = pl.col("t").max() / 3.0
    test = blocks.group_by("endpoint").agg(
        n=pl.col("count").sum(), x=pl.col("failures").sum(),
        tx=(pl.col("t") * pl.col("failures")).sum(), tn=(pl.col("t") * pl.col("count")).sum(),
        t2n=(pl.col("t") ** 2 * pl.col("count")).sum(),
        early=pl.col("failures").filter(pl.col("t") < third).sum()
        / pl.col("count").filter(pl.col("t") < third).sum(),
        late_x=pl.col("failures").filter(pl.col("t") >= 2 * third).sum(),
        late=pl.col("failures").filter(pl.col("t") >= 2 * third).sum()
        / pl.col("count").filter(pl.col("t") >= 2 * third).sum(),
    ).filter(pl.col("x") > 0).with_columns(p=pl.col("x") / pl.col("n"))
    if test.is_empty():
        return pl.DataFrame(schema=_PATTERN_SCHEMA)
    test = test.with_columns(
        z=(pl.col("tx") - pl.col("p") * pl.col("tn")) / (
            pl.col("p") * (1 - pl.col("p"))
            * (pl.col("t2n") - pl.col("tn") ** 2 / pl.col("n"))).sqrt())
    test = test.with_columns(p_value=pl.Series(norm_sf(test["z"].fill_nan(0).to_numpy())))
    hits = test.filter((pl.col("p_value") < alpha) & (pl.col("late_x") >= 5)
                       & (pl.col("late") >= 2 * pl.col("early")))
    return _found(
        hits, blocks, "rising errors", change=pl.col("late") - pl.col("early"),
        evidence=pl.format(
            "error rate rose from {}% (first third of the run) to {}% (last third); "
            "Cochran-Armitage trend z = {}, one-sided p = {}",
            (pl.col("early") * 100).round(2), (pl.col("late") * 100).round(2),
            pl.col("z").round(1), pl.col("p_value").round_sig_figs(2)))


def _capacity_limit(blocks: pl.DataFrame, alpha: float, min_rise: float) -> pl.DataFrame:
    """Throughput within 10 % of its peak from some block on, while latency climbs after it.

    The load must have grown after that block (users up 25 %, or without user counts, throughput
    had grown 50 % before it), and the log latency after it must trend up (one-sided p < alpha).
    """
    frame = blocks.with_columns(
        xs=pl.col("rps").rolling_median(3, min_samples=1, center=True).over("endpoint"),
        idx=pl.int_range(pl.len()).over("endpoint"),
    ).with_columns(
        peak=pl.col("xs").max().over("endpoint"),
    ).with_columns(
        knee=pl.col("idx").filter(pl.col("xs") >= 0.9 * pl.col("peak")).min().over("endpoint"),
    )
    after = frame.filter(pl.col("idx") >= pl.col("knee")).with_columns(y=pl.col("mean").log())
    at_knee = frame.filter(pl.col("idx") == pl.col("knee")).select(
        "endpoint", knee_start="start", knee_rps="xs", knee_mean="mean", knee_users="users")
    first = frame.filter(pl.col("idx") == 0).select("endpoint", first_rps="xs")
    fit = after.group_by("endpoint").agg(
        *_trend("y"), end_mean=pl.col("mean").tail(3).median(),
        end_users=pl.col("users").tail(3).median(), peak=pl.col("peak").first(),
    ).filter(pl.col("n") >= 3).join(at_knee, on="endpoint").join(first, on="endpoint")
    if fit.is_empty():
        return pl.DataFrame(schema=_PATTERN_SCHEMA)
    fit = fit.with_columns(p_value=_one_sided_p(fit),
                           change=pl.col("end_mean") / pl.col("knee_mean") - 1.0)
    load_grew = pl.when(pl.col("knee_users").is_not_null() & pl.col("end_users").is_not_null()
                        ).then(pl.col("end_users") >= 1.25 * pl.col("knee_users")).otherwise(
        pl.col("knee_rps") >= 1.5 * pl.col("first_rps"))
    hits = fit.filter((pl.col("p_value") < alpha) & (pl.col("change") >= min_rise) & load_grew)
    users = pl.when(pl.col("knee_users").is_not_null()).then(pl.format(
        " and users {} -> {}", pl.col("knee_users").round(0), pl.col("end_users").round(0))
    ).otherwise(pl.lit(""))
    return _found(
        hits, blocks, "capacity limit", start="knee_start",
        evidence=pl.format(
            "throughput levelled off at about {} req/s (peak {}) from {} UTC while mean latency "
            "rose {} -> {} ms{} (latency trend after the plateau: one-sided p = {})",
            pl.col("knee_rps").round(1), pl.col("peak").round(1),
            pl.col("knee_start").dt.strftime("%H:%M:%S"), pl.col("knee_mean").round(1),
            pl.col("end_mean").round(1), users, pl.col("p_value").round_sig_figs(2)))


def find_patterns(
    windows: pl.DataFrame,
    *,
    blocks: int = 20,
    alpha: float = 0.01,
    min_rise: float = 0.25,
    spike_z: float = 5.0,
    spike_ratio: float = 2.0,
) -> pl.DataFrame:
    """Over-time patterns per endpoint (and ``ALL``) in a run's windows, with their evidence.

    - ``rising latency`` (leak-like): OLS slope of the log mean latency over ``blocks`` time
      blocks, one-sided t test p < ``alpha``, a rise of at least ``min_rise`` over the run, and a
      steady load (users, else total throughput, within 30 % outside the first and last block).
    - ``spikes``: windows with at least 5 requests whose log mean lies ``spike_z`` robust
      deviations (1.4826 MAD) and a factor ``spike_ratio`` above the larger of the medians of
      the 5 windows before and the 5 after them (so the climb into an overload is no spike).
    - ``rising errors``: Cochran-Armitage trend test over the blocks, p < ``alpha``, the last
      third's error rate at least twice the first third's, with at least 5 failures in it.
    - ``capacity limit``: throughput (3-block rolling median) reaches 90 % of its peak and stays
      there while the log mean latency after that block trends up (p < ``alpha``) by at least
      ``min_rise`` and the load grows (see :func:`_capacity_limit`).

    Deterministic (no random component). Windows are the ``windows`` table rows of one run.
    """
    if windows.is_empty():
        return pl.DataFrame(schema=_PATTERN_SCHEMA)
    if blocks < 6:
        raise ValueError(f"blocks must be at least 6, got {blocks}")
    merged = _blocks(windows, blocks)
    found = [
        _rising_latency(merged, alpha, min_rise),
        _spikes(windows, spike_z, spike_ratio),
        _rising_errors(merged, alpha),
        _capacity_limit(merged, alpha, min_rise),
    ]
    return pl.concat([f.cast(_PATTERN_SCHEMA) for f in found]).sort(
        pl.col("endpoint") != ALL_ENDPOINTS, "endpoint", "pattern")
