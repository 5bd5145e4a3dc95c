"""perfstats: turn k6, Artillery and Locust load-test results into decisions.

Example:
    >>> import perfstats
    >>> run = perfstats.ingest("data/k6/baseline", db=":memory:")  # doctest: +SKIP
    >>> run.summary()  # doctest: +SKIP
"""

from perfstats.bottlenecks import Bottlenecks, bottlenecks
from perfstats.capacity import CapacityPlan, capacity, instances_needed
from perfstats.changepoint import ChangePoint, detect_change_points
from perfstats.compare import Comparison, compare
from perfstats.errors import (
    ConfigError,
    IngestError,
    InsufficientDataError,
    PerfstatsError,
    ReportError,
    RunNotFoundError,
    StoreError,
)
from perfstats.history import History, baseline_runs, export_parquet, history
from perfstats.report import render_report
from perfstats.run import Run, ingest, load, runs
from perfstats.store import ALL_ENDPOINTS, Store, connect
from perfstats.usl import USLFit, fit_usl

__version__ = "0.1.0"

__all__ = [
    "ALL_ENDPOINTS",
    "Bottlenecks",
    "CapacityPlan",
    "ChangePoint",
    "Comparison",
    "ConfigError",
    "History",
    "IngestError",
    "InsufficientDataError",
    "PerfstatsError",
    "ReportError",
    "Run",
    "RunNotFoundError",
    "Store",
    "StoreError",
    "USLFit",
    "__version__",
    "baseline_runs",
    "bottlenecks",
    "capacity",
    "compare",
    "connect",
    "detect_change_points",
    "export_parquet",
    "fit_usl",
    "history",
    "ingest",
    "instances_needed",
    "load",
    "render_report",
    "runs",
]
