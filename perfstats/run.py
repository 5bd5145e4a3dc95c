"""Runs: ingest, load and list them; the :class:`Run` handle analysts work with."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from perfstats.ingest import ingest_sources, resolve_sources
from perfstats.store import ALL_ENDPOINTS, Store, open_store

PathLike = str | os.PathLike[str]
DB = Store | PathLike | None

SUMMARY_COLUMNS = ["endpoint", "count", "failures", "error_rate", "rps", "min", "mean", "p50",
                   "p90", "p95", "p99", "max"]


@dataclass(frozen=True)
class Run:
    """One ingested run in a store.

    Attributes:
        run_id: the run's id (a prefix of its content hash).
        store: the store holding it.
        meta: the ``runs`` row: tool, format, tool_version, grain, source_files, started_at,
            ended_at, duration_s, load_model, max_users, labels.
        existed: True when an ingest found this content already stored.
    """

    run_id: str
    store: Store = field(repr=False)
    meta: dict[str, Any] = field(repr=False, compare=False)
    existed: bool = field(default=False, compare=False)

    @property
    def tool(self) -> str:
        """``k6``, ``artillery`` or ``locust``."""
        return str(self.meta["tool"])

    @property
    def grain(self) -> str:
        """Finest data kept: ``samples``, ``histograms``, ``windows`` or ``summary``."""
        return str(self.meta["grain"])

    @property
    def labels(self) -> dict[str, str]:
        """The run's free ``key=value`` labels."""
        return dict(self.meta["labels"])

    def summary(self) -> pl.DataFrame:
        """One row per endpoint plus the whole-run row (``endpoint == "ALL"``), latencies in ms.

        Columns: endpoint, count, failures, error_rate, rps, min, mean, p50, p90, p95, p99, max,
        then method, tool_name and ``percentiles``: ``exact`` (from raw samples, k6's linear
        interpolation), ``histogram`` (from the tool's buckets, the tool's own rule) or
        ``tool-summary`` (as the tool wrote them).
        """
        return self.store.query(
            f"""
            SELECT endpoint, count, failures,
                   CASE WHEN count > 0 THEN failures / count END AS error_rate,
                   rps, min, mean, p50, p90, p95, p99, max, method, tool_name, percentiles
            FROM summaries WHERE run_id = ?
            ORDER BY endpoint = '{ALL_ENDPOINTS}', endpoint
            """,
            [self.run_id],
        )

    def windows(self, endpoint: str | None = None) -> pl.DataFrame:
        """Time windows (per endpoint and ``ALL``), oldest first."""
        where = "" if endpoint is None else "AND endpoint = ?"
        params = [self.run_id] + ([] if endpoint is None else [endpoint])
        return self.store.query(
            f"SELECT * EXCLUDE (run_id) FROM windows WHERE run_id = ? {where} "
            "ORDER BY endpoint, start", params)

    def samples(self, metric: str = "http_req_duration") -> pl.DataFrame:
        """Raw samples of one metric (only runs of grain ``samples`` have them)."""
        return self.store.query(
            "SELECT * EXCLUDE (run_id) FROM samples WHERE run_id = ? AND metric = ? ORDER BY ts",
            [self.run_id, metric])

    def table(self, name: str) -> pl.DataFrame:
        """All rows of one run table (``errors``, ``checks``, ``thresholds``, ``histograms``...)."""
        from perfstats.store import RUN_TABLES

        if name not in RUN_TABLES:
            raise ValueError(f"unknown table {name!r}; one of {', '.join(RUN_TABLES)}")
        return self.store.query(f"SELECT * EXCLUDE (run_id) FROM {name} WHERE run_id = ?",
                                [self.run_id])

    def to_dict(self) -> dict[str, Any]:
        """Run metadata as plain JSON-able values."""
        out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in self.meta.items()}
        out["run_id"] = self.run_id
        return out

    def _repr_html_(self) -> str:
        meta = self.meta
        head = (
            f"<p><b>Run {html.escape(self.run_id)}</b> &middot; {html.escape(self.tool)} "
            f"{html.escape(str(meta.get('tool_version') or ''))} &middot; "
            f"{html.escape(str(meta.get('format')))} &middot; grain "
            f"<code>{html.escape(self.grain)}</code> &middot; started "
            f"{html.escape(str(meta.get('started_at')))} &middot; "
            f"{(meta.get('duration_s') or 0):.1f} s"
        )
        if self.labels:
            head += " &middot; " + ", ".join(
                f"{html.escape(k)}={html.escape(v)}" for k, v in self.labels.items())
        table = self.summary().drop("method", "tool_name").with_columns(
            pl.col(pl.Float64).round(3))
        return head + "</p>" + table._repr_html_()

    def __str__(self) -> str:
        return f"Run {self.run_id} ({self.tool}, {self.meta.get('format')}, {self.grain})"


def ingest(
    path_or_paths: PathLike | Sequence[PathLike],
    *,
    db: DB = None,
    labels: dict[str, str] | None = None,
    fmt: str | None = None,
) -> Run:
    """Ingest one run from a file, a directory, a Locust prefix, or several files of one run.

    Args:
        path_or_paths: the run's file(s); a list makes *one* run (e.g. k6 points + summary).
        db: a :class:`Store`, a database path, or None for the default store.
        labels: free ``key=value`` labels (commit, branch, environment...).
        fmt: force a format (see ``perfstats.ingest.detect.FORMATS``) instead of detecting it.

    Returns:
        The run; ``run.existed`` tells that the same content was already stored.

    Raises:
        IngestError: bad input; the store is left exactly as it was.

    Example:
        >>> run = ingest("data/k6/baseline", db=":memory:")  # doctest: +SKIP
    """
    paths = [path_or_paths] if isinstance(path_or_paths, str | os.PathLike) else path_or_paths
    store = open_store(db)
    sources = resolve_sources(paths, fmt=fmt)
    run_id, existed = ingest_sources(store, sources, labels=labels)
    return Run(run_id, store, store.run_meta(run_id), existed)


def load(run_or_path: Run | PathLike, *, db: DB = None) -> Run:
    """Return a stored run by id (or unique id prefix), or ingest a path.

    A path that exists on disk is ingested into ``db`` when given, else into a throw-away
    in-memory store.
    """
    if isinstance(run_or_path, Run):
        return run_or_path
    if os.path.exists(run_or_path) or _is_locust_prefix(run_or_path):
        return ingest(run_or_path, db=db if db is not None else Store(":memory:"))
    store = open_store(db)
    run_id = store.resolve_run_id(os.fspath(run_or_path))
    return Run(run_id, store, store.run_meta(run_id))


def _is_locust_prefix(path: PathLike) -> bool:
    from pathlib import Path

    p = Path(path)
    return any(p.parent.glob(f"{p.name}_stats*.csv")) if p.name else False


def runs(db: DB = None, *, labels: dict[str, str] | None = None) -> pl.DataFrame:
    """All runs in the store with their metadata, oldest first; ``labels`` keeps runs having all."""
    return open_store(db).runs(labels=labels)
