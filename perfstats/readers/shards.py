"""Distributed load tests: the output files of several load generators that ran one test.

k6 splits a test over processes with ``--execution-segment`` (k6-operator does it for you); each
process writes its own output.  Files are taken for *shards* of one run when they are given as one
run (a list to :func:`perfstats.ingest`, ``perfstats ingest --one-run``) or when the files say so
on their own: every file is a k6 NDJSON output, all carry one ``testid`` tag value, and their
time spans overlap.  A pool of repeated runs (another ``testid``, or none, or one after the other)
is never taken for shards.  Artillery reports (one per worker) and the outputs of standalone
Locust processes name no test: they are shards only when given as one run, and their readers
merge them (``artillery._merged``, ``locust._write_shards``).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from perfstats.errors import PerfstatsError
from perfstats.readers.detect import is_gzip

SHARD_TAG = "perfstats_shard"
"""The tag (in ``tag_sets.extra``) that numbers the shard a point came from, 1, 2, ... in the
order of the file names."""
SHARD_SQL = f"json_extract_string(extra, '$.{SHARD_TAG}')"
"""The shard of a ``samples`` row in SQL (NULL in a run of one load generator)."""

_HEAD_LINES = 200
_TAIL_BYTES = 1 << 16


@dataclass(frozen=True)
class ShardSpan:
    """What a k6 NDJSON output tells about the test it belongs to."""

    path: Path
    testid: str | None
    first: datetime | None
    last: datetime | None


def _points(lines: list[bytes]) -> list[dict]:
    found = []
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("type") == "Point":
            found.append(doc.get("data") or {})
    return found


_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _time(data: dict) -> datetime | None:
    """A k6 point time (RFC 3339, up to nanoseconds) to microseconds."""
    match = _TIME.match(str(data.get("time", "")))
    if match is None:
        return None
    fraction = (match.group(2) or ".")[:7].ljust(7, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(match.group(1) + fraction + zone)


def span(path: Path) -> ShardSpan:
    """The ``testid`` tag (of the first points) and the first and last point time of a k6
    NDJSON output.  The end of a gzip file is found by decompressing it (about 0.3 s per 100 MB
    compressed); an uncompressed file's by reading its last 64 KB."""
    gz = is_gzip(path)
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
        head = [fh.readline() for _ in range(_HEAD_LINES)]
        if gz:
            tail = b""
            while chunk := fh.read(1 << 22):
                tail = (tail + chunk)[-_TAIL_BYTES:]
        else:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - _TAIL_BYTES))
            tail = fh.read()
    first_points = _points(head)
    last_points = _points(tail.splitlines()[1:]) or first_points
    tags = [(p.get("tags") or {}).get("testid") for p in first_points]
    testid = next((t for t in tags if isinstance(t, str)), None)
    first = _time(first_points[0]) if first_points else None
    last = _time(last_points[-1]) if last_points else None
    return ShardSpan(path, testid, first, last)


def recognised_shards(paths: list[Path]) -> str | None:
    """The ``testid`` when the k6 NDJSON outputs ``paths`` are shards of one test (one shared
    ``testid`` tag and time spans that overlap), else None."""
    if len(paths) < 2:
        return None
    spans = [span(p) for p in paths]
    ids = {s.testid for s in spans}
    if len(ids) != 1 or None in ids:
        return None
    if any(s.first is None or s.last is None for s in spans):
        return None
    if max(s.first for s in spans) > min(s.last for s in spans):  # type: ignore[type-var]
        return None
    return spans[0].testid


def recognised_shard_paths(paths: Iterable[str | Path]) -> str | None:
    """The ``testid`` when each of ``paths`` (files or run directories) holds one k6 NDJSON
    output and these are the shards of one test (:func:`recognised_shards`), else None."""
    from perfstats.readers import resolve_sources
    from perfstats.readers.detect import K6_NDJSON

    outputs = []
    for path in paths:
        try:
            raw = [s for s in resolve_sources([path]) if s.format == K6_NDJSON]
        except PerfstatsError:
            return None
        if len(raw) != 1:
            return None
        outputs.append(raw[0].path)
    return recognised_shards(outputs)


def concurrent_shards(runs: list[Any]) -> str | None:
    """A warning when stored runs that are about to be pooled as repeats ran at the same time:
    k6 runs sharing one ``testid`` tag over overlapping times, or Artillery or Locust runs (whose
    files name no test) over overlapping times: the shards of one distributed run, ingested
    apart.  Repeats run one after the other."""
    spans = []
    for run in runs:
        ids = run.store.query(
            "SELECT DISTINCT json_extract_string(extra, '$.testid') AS testid FROM tag_sets "
            "WHERE run_id = ? AND json_extract_string(extra, '$.testid') IS NOT NULL",
            [run.run_id])["testid"].to_list()
        meta = run.meta
        key = f"testid {ids[0]}" if len(ids) == 1 else (
            None if meta.get("tool") == "k6" else f"{meta.get('tool')} outputs")
        if key and meta.get("started_at") and meta.get("ended_at"):
            spans.append((key, meta["started_at"], meta["ended_at"], run.run_id))
    for key in sorted({s[0] for s in spans}):
        same = [s for s in spans if s[0] == key]
        if len(same) > 1 and max(s[1] for s in same) < min(s[2] for s in same):
            names = ", ".join(s[3] for s in same)
            return (f"runs {names} ran at the same time ({key}): the shards of one "
                    "distributed run, not repeats; ingest their files as one run "
                    "(perfstats ingest --one-run)")
    return None


MIXTURE = "approximate: mixture of {n} shard summaries"
"""The ``percentiles`` label of a summary row merged from the summaries of several shards."""

_KNOTS = (("min", 0.0), ("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))


def mix_summaries(rows: pl.DataFrame, by: str | Sequence[str]) -> pl.DataFrame:
    """One summary row per group of ``by`` (first-seen order) from the rows of the shards.

    ``rows`` holds ``count, failures, rps, min, p50, p90, p95, p99, max, mean`` (any other column
    keeps its first value).  Counts, failures and rates add up (failures and rates are null when
    one shard's is); min and max are the extremes; the mean is count-weighted.  Percentiles
    cannot be averaged: each shard's distribution is taken as the piecewise-linear CDF through
    (min, 0), (p50, .5), (p90, .9), (p95, .95), (p99, .99), (max, 1) (the known ones, made
    non-decreasing by a running max; 0 left of them, 1 from the last; knots of one value are a
    jump), the shards' CDFs are mixed by request count on both sides of each of their knots,
    and each percentile is the least value at which the mixture reaches it (a jump's value when
    it falls inside one).  So it lies between the shards' own figures for it, and is exact where
    they agree; an approximation between them, labelled :data:`MIXTURE`.  A group with a shard
    of fewer than two knots or no requests gets null percentiles.  All groups are mixed at once.
    """
    keys = [by] if isinstance(by, str) else list(by)
    count = pl.col("count").fill_null(0)
    timed = pl.col("mean").is_not_null()
    weight = count.filter(timed).sum()
    known = pl.sum_horizontal(pl.col(k).is_not_null() for k, _ in _KNOTS)
    shards = rows.with_row_index("_shard").with_columns(
        _c=count, _known=known, _ok=(known >= 2) & (count != 0))
    groups = shards.group_by(keys, maintain_order=True).agg(
        pl.exclude(*_SUMMED, "_shard", "_c", "_known", "_ok").first(),
        pl.col("_shard"),
        count=count.sum(),
        failures=pl.when(pl.col("failures").null_count() == 0).then(pl.col("failures").sum()),
        rps=pl.when(pl.col("rps").null_count() == 0).then(pl.col("rps").sum()),
        min=pl.col("min").min(),
        max=pl.col("max").max(),
        mean=pl.when(weight != 0).then((pl.col("mean") * count).filter(timed).sum() / weight),
        percentiles=pl.format(MIXTURE.replace("{n}", "{}"), pl.len()),
        _ok=pl.col("_ok").all(),
        _points=pl.len() * pl.col("_known").sum(),  # shard CDFs x grid values to evaluate
    ).with_row_index("_g")
    # Batches of groups bound the memory (groups of many shards evaluate many points).
    shard_group = groups.filter("_ok").select(
        "_g", "_shard", _batch=pl.col("_points").cum_sum() // _BATCH_POINTS).explode("_shard")
    mixed = pl.concat([
        _inverted(_mixture(shards.join(part, on="_shard"), part.select("_g", "_shard")))
        for _, part in shard_group.group_by("_batch", maintain_order=True)],
        how="vertical_relaxed") if shard_group.height else pl.DataFrame(
        schema={"_g": pl.UInt32, **{k: pl.Float64 for k, _ in _KNOTS[1:-1]}})
    out = groups.join(mixed, on="_g", how="left", maintain_order="left")
    return out.select(list(dict.fromkeys([*rows.columns, "percentiles"])))


_BATCH_POINTS = 2_000_000

_SUMMED = ("count", "failures", "rps", "min", "max", "mean", "p50", "p90", "p95", "p99",
           "percentiles")


def _mixture(shards: pl.DataFrame, shard_group: pl.DataFrame) -> pl.DataFrame:
    """``_g, _x, _m``: the count-weighted mixture of a group's shard CDFs at each of its knots,
    twice: its left limit, then its value (sorted by group, value, side).

    A shard's CDF is right-continuous: 0 left of its first knot, 1 from its last one, linear
    between knots of distinct values; knots of one value are a jump, from the first one's
    probability (0 at the first value) to the last one's.  With both sides of each knot the
    mixture is the polyline through these points, a jump being a vertical step."""
    knots = pl.concat([
        shards.select("_shard", "_g", "_c", _k=pl.lit(k), _p=pl.lit(q),
                      _v=pl.col(name).cast(pl.Float64))
        for k, (name, q) in enumerate(_KNOTS)]).drop_nulls("_v").sort("_shard", "_k")
    shard = pl.col("_shard")
    knots = knots.with_columns(_v=pl.col("_v").cum_max().over("_shard"))
    first = (shard != shard.shift(1)).fill_null(True) | (pl.col("_v") != pl.col("_v").shift(1))
    last = (shard != shard.shift(-1)).fill_null(True) | (pl.col("_v") != pl.col("_v").shift(-1))
    steps = knots.with_columns(
        _into=pl.when(first).then(pl.col("_p")).forward_fill()).filter(last)
    follows = (shard == shard.shift(-1)).fill_null(False)
    opens = (shard != shard.shift(1)).fill_null(True)
    steps = steps.select(
        "_shard", "_v",
        _left=pl.when(opens).then(0.0).otherwise("_into"),
        _at=pl.when(follows).then(pl.col("_p")).otherwise(1.0),
        _v1=pl.when(follows).then(pl.col("_v").shift(-1)),
        _p1=pl.when(follows).then(pl.col("_into").shift(-1)))
    points = knots.select("_g", _x="_v").unique().join(shard_group, on="_g").sort("_x")
    at = points.join_asof(steps.sort("_v"), left_on="_x", right_on="_v", by="_shard",
                          strategy="backward", check_sortedness=False)
    x, v = pl.col("_x"), pl.col("_v")
    between = (pl.when(v.is_null()).then(0.0)
               .when(pl.col("_v1").is_null()).then(1.0)
               .otherwise((pl.col("_p1") - pl.col("_at")) / (pl.col("_v1") - v) * (x - v)
                          + pl.col("_at")))
    c = pl.col("_c")
    sides = (at.join(shards.select("_shard", "_c"), on="_shard")
             .select("_g", "_x", "_c",
                     _m0=c * pl.when(x == v).then(pl.col("_left")).otherwise(between),
                     _m1=c * pl.when(x == v).then(pl.col("_at")).otherwise(between))
             .group_by("_g", "_x")
             .agg(_m0=pl.col("_m0").sum() / c.sum(), _m1=pl.col("_m1").sum() / c.sum()))
    return (sides.unpivot(["_m0", "_m1"], index=["_g", "_x"], variable_name="_side",
                          value_name="_m")
            .sort("_g", "_x", "_side").drop("_side"))


def _inverted(mixture: pl.DataFrame) -> pl.DataFrame:
    """``_g, p50, p90, p95, p99``: each group's mixture inverted, the least x at which it
    reaches q: by interpolation between the points either side of q, and the x of a jump when
    q falls inside it.  A point within rounding of q reaches it (where all shards are at .99,
    the mixture may come to .98999...)."""
    mixture = mixture.with_columns(pl.col("_m").cum_max().over("_g"))
    xs, ms = mixture["_x"], mixture["_m"]
    bounds = mixture.with_row_index("_i").group_by("_g").agg(
        _s=pl.col("_i").first(), _n=pl.len(),
        **{f"_c{k}": (pl.col("_m") < q - _ROUNDING).sum() for k, q in _KNOTS[1:-1]})
    out = {"_g": bounds["_g"]}
    start, size = bounds["_s"].cast(pl.Int64), bounds["_n"].cast(pl.Int64)
    for key, q in _KNOTS[1:-1]:
        # The first point that reaches q (the mixture starts at 0 and ends at 1).
        j1 = start + bounds[f"_c{key}"].cast(pl.Int64).clip(1, None).clip(None, size - 1)
        x0, m0, x1, m1 = xs.gather(j1 - 1), ms.gather(j1 - 1), xs.gather(j1), ms.gather(j1)
        out[key] = pl.select(
            pl.when((m1 <= q + _ROUNDING) | (x1 == x0)).then(x1)
            .otherwise((x1 - x0) / (m1 - m0) * (q - m0) + x0)).to_series()
    return pl.DataFrame(out)


_ROUNDING = 1e-12
