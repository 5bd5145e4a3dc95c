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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

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


def merge_summary_rows(shards: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One ``summaries`` row per endpoint from the rows of each shard's summary.

    Counts, failures and rates add up; min and max are the extremes; the mean is count-weighted.
    Percentiles cannot be averaged: each shard's distribution is taken as the piecewise-linear
    CDF through its min, p50, p90, p95, p99 and max, the shards' CDFs are mixed by request
    count, and the mixture is inverted at each percentile (exact at the known points of a
    shard when the others agree, an approximation between them; labelled :data:`MIXTURE`).
    """
    import numpy as np

    by_endpoint: dict[Any, list[dict[str, Any]]] = {}
    for rows in shards:
        for row in rows:
            by_endpoint.setdefault(row["endpoint"], []).append(row)
    merged = []
    for rows in by_endpoint.values():
        counts = [r["count"] or 0 for r in rows]
        total = sum(counts)
        row = {**rows[0], "count": total, "percentiles": MIXTURE.format(n=len(rows))}
        row["failures"] = (None if any(r["failures"] is None for r in rows)
                           else sum(r["failures"] for r in rows))
        row["rps"] = None if any(r["rps"] is None for r in rows) else sum(r["rps"] for r in rows)
        row["min"] = min((r["min"] for r in rows if r["min"] is not None), default=None)
        row["max"] = max((r["max"] for r in rows if r["max"] is not None), default=None)
        means = [(r["mean"], c) for r, c in zip(rows, counts, strict=True) if r["mean"] is not None]
        row["mean"] = (sum(m * c for m, c in means) / sum(c for _, c in means)
                       if means and sum(c for _, c in means) else None)
        cdfs = []
        for r, c in zip(rows, counts, strict=True):
            knots = [(r[k], q) for k, q in _KNOTS if r.get(k) is not None]
            if len(knots) >= 2 and c:
                values, probs = zip(*sorted(knots), strict=True)
                cdfs.append((np.maximum.accumulate(np.array(values, float)),
                             np.array(probs), c))
        if cdfs and len(cdfs) == len(rows):
            grid = np.unique(np.concatenate([v for v, _, _ in cdfs]))
            mixture = sum(c * np.interp(grid, v, p, left=0.0, right=1.0)
                          for v, p, c in cdfs) / sum(c for _, _, c in cdfs)
            for key, q in _KNOTS[1:-1]:
                row[key] = float(np.interp(q, mixture, grid))
        else:
            for key, _ in _KNOTS[1:-1]:
                row[key] = None
        merged.append(row)
    return merged
