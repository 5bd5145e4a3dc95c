"""Write a synthetic k6 ``--out json`` (NDJSON) file of about a given size.

The lines look like k6 v0.45 output: a Metric line before the first Point of each metric (one
custom Trend first appears late in the file), Point lines with the v0.41+ key order, tags of the
standard set plus a custom tag, ``metadata`` with ``vu`` and ``iter``, times with a local UTC
offset and a variable number of fraction digits.  Each iteration of a virtual user makes the same
seven requests as the project's sample script (login, deals, two deal details, quote, bookings,
health) with lognormal latencies, 1 % HTTP 500 on bookings, checks, group and iteration metrics;
``vus``/``vus_max`` are written once a second, without tags or metadata.

Lines are built column-wise with polars string expressions, a chunk of iterations at a time, so
1 GB takes seconds, not minutes.

Usage::

    python benchmarks/make_k6_ndjson.py OUT.json --size 1GB [--seed 1] [--gzip]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

import numpy as np
import polars as pl

VUS = 50
OFFSET = "+07:00"
START_NS = 1_795_000_000 * 10**9  # 2026-11-18, as seen from a UTC+7 machine
ITERATIONS_PER_CHUNK = 1000
CUSTOM_TREND_FROM_CHUNK = 1

# (group, method, name, url, median ms, sigma, error rate)
REQUESTS = [
    ("::auth", "POST", "/api/auth/login", "/api/auth/login", 60, 0.35, 0.0),
    ("::browse", "GET", "/api/deals", "/api/deals", 15, 0.3, 0.0),
    ("::browse", "GET", "/api/deals/{id}", "/api/deals/", 8, 0.3, 0.0),
    ("::browse", "GET", "/api/deals/{id}", "/api/deals/", 8, 0.3, 0.0),
    ("::checkout", "POST", "/api/quote", "/api/quote", 40, 0.866, 0.0),
    ("::checkout", "POST", "/api/bookings", "/api/bookings", 30, 0.35, 0.01),
    ("", "GET", "/health", "/health", 1, 0.2, 0.0),
]
PHASES = ["http_req_blocked", "http_req_connecting", "http_req_tls_handshaking",
          "http_req_sending", "http_req_waiting", "http_req_receiving"]
METRICS = {  # name -> (type, contains, thresholds)
    "http_reqs": ("counter", "default", []),
    "http_req_duration": ("trend", "time", ["p(95)<500", "p(99)<1000"]),
    **{p: ("trend", "time", []) for p in PHASES},
    "http_req_failed": ("rate", "default", ["rate<0.02"]),
    "checks": ("rate", "default", [{"threshold": "rate>0.98", "abortOnFail": True,
                                    "delayAbortEval": "10s"}]),
    "group_duration": ("trend", "time", []),
    "iteration_duration": ("trend", "time", []),
    "iterations": ("counter", "default", []),
    "data_sent": ("counter", "data", []),
    "data_received": ("counter", "data", []),
    "vus": ("gauge", "default", []),
    "vus_max": ("gauge", "default", []),
    "quote_price_check": ("trend", "default", ["avg<100"]),
}


def metric_line(name: str) -> str:
    """The k6 Metric line of one metric."""
    kind, contains, thresholds = METRICS[name]
    data = {"name": name, "type": kind, "contains": contains, "thresholds": thresholds,
            "submetrics": None}
    return json.dumps({"type": "Metric", "data": data, "metric": name},
                      separators=(",", ":")) + "\n"


def _points(rng: np.random.Generator, first_iteration: int, n_iter: int,
            clock: np.ndarray) -> pl.DataFrame:
    """Point rows (metric, t_ns, value, tags, vu, iter) of ``n_iter`` iterations (a multiple
    of :data:`VUS`, from a multiple of it); ``clock`` (ns, per VU) is when each VU is free
    again, and is moved on."""
    its = np.arange(first_iteration, first_iteration + n_iter)
    vu = its % VUS + 1
    draws = [(median * np.exp(sigma * rng.standard_normal(n_iter)), rng.random(n_iter) < err,
              rng.integers(50, 300, n_iter) * 1_000_000)
             for _, _, _, _, median, sigma, err in REQUESTS]
    # Each VU runs its iterations back to back (a closed model, as k6's VU executors do), all
    # VUs in parallel: an iteration starts when the VU's previous one ends.
    total = sum((dur * 1e6).astype(np.int64) + pause for dur, _, pause in draws)
    per_vu = total.reshape(-1, VUS)
    t0 = (clock + np.cumsum(per_vu, axis=0) - per_vu).reshape(-1)
    clock += per_vu.sum(axis=0)
    frames = []
    elapsed = np.zeros(n_iter, dtype=np.int64)
    for (group, method, name, url, *_), (dur, failed, pause) in zip(REQUESTS, draws,
                                                                      strict=True):
        status = np.where(failed, "500", "200")
        t = t0 + elapsed + (dur * 1e6).astype(np.int64)
        elapsed += (dur * 1e6).astype(np.int64) + pause
        url_tag = pl.lit(url) + (pl.Series(rng.integers(1, 501, n_iter)).cast(pl.Utf8)
                                 if url.endswith("/") else pl.lit(""))
        tags = (
            pl.lit('{"expected_response":"') + pl.Series(np.where(failed, "false", "true"))
            + pl.lit(f'","group":"{group}","method":"{method}","name":"{name}",'
                     '"proto":"HTTP/1.1","scenario":"steady","status":"')
            + pl.Series(status)
            + pl.lit('","team":"checkout\\u0026pay","url":"') + url_tag + pl.lit('"}')
        )
        share = np.abs(rng.standard_normal((len(PHASES), n_iter))) * 0.05
        values = {"http_reqs": np.ones(n_iter), "http_req_duration": dur,
                  "http_req_failed": failed.astype(float)}
        values.update({p: share[i] for i, p in enumerate(PHASES)})
        values["http_req_waiting"] = dur * 0.97
        for metric, v in values.items():
            frames.append(pl.DataFrame({"metric": metric, "t": t, "value": v, "vu": vu,
                                        "iter": its}).with_columns(tags=tags))
        check = f'{{"check":"{name.split("/")[-1]} status is 200","group":"{group}",' \
            '"scenario":"steady"}'
        frames.append(pl.DataFrame({"metric": "checks", "t": t + 1000,
                                    "value": (~failed).astype(float), "vu": vu, "iter": its,
                                    "tags": check}))
    end = t0 + elapsed
    for metric, v in [("iteration_duration", elapsed / 1e6), ("iterations", np.ones(n_iter)),
                      ("data_sent", rng.integers(900, 1000, n_iter).astype(float)),
                      ("data_received", rng.integers(2500, 2900, n_iter).astype(float))]:
        frames.append(pl.DataFrame({"metric": metric, "t": end, "value": v, "vu": vu,
                                    "iter": its, "tags": '{"group":"","scenario":"steady"}'}))
    frames.append(pl.DataFrame({"metric": "group_duration", "t": end - 1000,
                                "value": elapsed / 3e6, "vu": vu, "iter": its,
                                "tags": '{"group":"::checkout","scenario":"steady"}'}))
    return pl.concat(frames, how="vertical_relaxed")


def _lines(points: pl.DataFrame, custom: bool, rng: np.random.Generator) -> pl.Series:
    if custom:
        extra = points.filter(pl.col("metric") == "http_req_duration").head(500)
        points = pl.concat([points, extra.with_columns(
            metric=pl.lit("quote_price_check"),
            value=pl.Series(rng.gamma(4.0, 10.0, extra.height)),
            tags=pl.lit('{"group":"::checkout","scenario":"steady"}'))])
    points = points.sort("t")
    local = pl.from_epoch(pl.col("t") + 7 * 3600 * 10**9, time_unit="ns")
    fraction = (pl.col("t") % 10**9).cast(pl.Utf8).str.zfill(9).str.replace(r"0+$", "")
    time = (local.dt.strftime("%Y-%m-%dT%H:%M:%S")
            + pl.when(fraction == "").then(pl.lit("")).otherwise(pl.lit(".") + fraction)
            + pl.lit(OFFSET))
    value = (pl.when(pl.col("value") == pl.col("value").round(0))
             .then(pl.col("value").cast(pl.Int64).cast(pl.Utf8))
             .otherwise(pl.col("value").round(6).cast(pl.Utf8)))
    metadata = (pl.when(pl.col("vu").is_null()).then(pl.lit(""))
                .otherwise(pl.lit(',"metadata":{"iter":"') + pl.col("iter").cast(pl.Utf8)
                           + pl.lit('","vu":"') + pl.col("vu").cast(pl.Utf8) + pl.lit('"}')))
    line = (pl.lit('{"metric":"') + pl.col("metric") + pl.lit('","type":"Point","data":{"time":"')
            + time + pl.lit('","value":') + value + pl.lit(',"tags":') + pl.col("tags")
            + metadata + pl.lit("}}"))
    return points.select(line.alias("line"))["line"]


def _gauges(first_second: int, last_second: int) -> pl.DataFrame:
    """``vus`` and ``vus_max`` points once a second (no tags, no metadata), as k6 writes them."""
    seconds = np.arange(first_second, last_second, dtype=np.int64) * 10**9
    return pl.concat([
        pl.DataFrame({"metric": metric, "t": seconds, "value": float(VUS), "tags": "null"})
        for metric in ("vus", "vus_max")
    ]).with_columns(vu=pl.lit(None, pl.Int64), iter=pl.lit(None, pl.Int64))


def parse_size(text: str) -> int:
    """``"1GB"``, ``"200MB"``, ``"500k"`` or a plain byte count -> bytes."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kmg]?)i?b?\s*", text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[match.group(2)]
    return int(float(match.group(1)) * scale)


def write(path: Path, size: int, *, seed: int = 1, compress: bool = False) -> tuple[int, int]:
    """Write about ``size`` bytes (uncompressed) of k6 NDJSON to ``path``.

    Returns:
        ``(bytes_written_uncompressed, point_lines)``.
    """
    rng = np.random.default_rng(seed)
    opener = gzip.open if compress else open
    written = points_written = 0
    iteration = chunk = 0
    last_gauge = START_NS // 10**9
    clock = START_NS + rng.integers(0, 10**9, VUS)  # the VUs start within the first second
    with opener(path, "wb") as out:
        head = "".join(metric_line(m) for m in METRICS if m != "quote_price_check").encode()
        out.write(head)
        written += len(head)
        while written < size:
            points = _points(rng, iteration, ITERATIONS_PER_CHUNK, clock)
            iteration += ITERATIONS_PER_CHUNK
            custom = chunk >= CUSTOM_TREND_FROM_CHUNK
            block = ""
            if chunk == CUSTOM_TREND_FROM_CHUNK:
                block += metric_line("quote_price_check")
            now = int(points["t"].max() // 10**9)
            points = pl.concat([points, _gauges(last_gauge, now)], how="diagonal_relaxed")
            last_gauge = now
            block += "\n".join(_lines(points, custom, rng).to_list()) + "\n"
            data = block.encode()
            last = written + len(data) >= size
            if last:
                # Trim the last chunk to whole lines near the requested size.
                cut = data.rfind(b"\n", 0, size - written) + 1
                data = data[:cut] if cut > 0 else data
            out.write(data)
            written += len(data)
            points_written += data.count(b'"type":"Point"')
            chunk += 1
            if last:
                break
    return written, points_written


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output file (NDJSON)")
    parser.add_argument("--size", type=parse_size, default=parse_size("100MB"),
                        help="approximate uncompressed size, e.g. 1GB (default 100MB)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gzip", action="store_true", help="gzip the output")
    args = parser.parse_args(argv)
    written, points = write(args.out, args.size, seed=args.seed, compress=args.gzip)
    print(f"{args.out}: {written / 1e6:.1f} MB uncompressed, {points:,} points", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
