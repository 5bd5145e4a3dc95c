"""perfstats: turn k6, Artillery and Locust load-test results into decisions.

The parts: ``readers`` (the tools' formats), ``store`` (DuckDB), ``run`` (a stored run),
``comparison`` (the drift gate), ``planning`` (capacity), ``diagnosis`` (bottlenecks),
``trends`` (history), ``stats`` (the statistics), ``render`` (tables and charts) and ``report``
(notebook reports). Every public name is importable from here; each is loaded on first use, so
``import perfstats`` stays cheap.

Example:
    >>> import perfstats
    >>> run = perfstats.ingest("data/k6/baseline", db=":memory:")  # doctest: +SKIP
    >>> run.summary()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from perfstats.errors import (
    ArgumentError,
    ConfigError,
    IngestError,
    InsufficientDataError,
    PerfstatsError,
    ReportError,
    RunNotFoundError,
    StoreError,
)

__version__ = "0.1.0"

# public name -> module that defines it (loaded on first attribute access)
_LAZY: dict[str, str] = {
    "ALL_ENDPOINTS": "perfstats.store",
    "Bottlenecks": "perfstats.diagnosis.rank",
    "CapacityPlan": "perfstats.planning.plan",
    "ChangePoint": "perfstats.trends.changepoint",
    "Comparison": "perfstats.comparison.gate",
    "History": "perfstats.trends.series",
    "Run": "perfstats.run",
    "Store": "perfstats.store",
    "USLFit": "perfstats.planning.usl",
    "baseline_runs": "perfstats.trends.series",
    "bottlenecks": "perfstats.diagnosis.rank",
    "capacity": "perfstats.planning.plan",
    "charts": "perfstats.render.charts",
    "compare": "perfstats.comparison.gate",
    "delete": "perfstats.run",
    "detect_change_points": "perfstats.trends.changepoint",
    "evaluate_thresholds": "perfstats.thresholds",
    "export_parquet": "perfstats.trends.series",
    "fit_usl": "perfstats.planning.usl",
    "headline": "perfstats.render.headline",
    "history": "perfstats.trends.series",
    "ingest": "perfstats.run",
    "instances_needed": "perfstats.planning.plan",
    "load": "perfstats.run",
    "open_store": "perfstats.store",
    "render_report": "perfstats.report",
    "runs": "perfstats.run",
    "show": "perfstats.render.tables",
}

__all__ = [
    "ALL_ENDPOINTS",
    "ArgumentError",
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
    "charts",
    "compare",
    "delete",
    "detect_change_points",
    "evaluate_thresholds",
    "export_parquet",
    "fit_usl",
    "headline",
    "history",
    "ingest",
    "instances_needed",
    "load",
    "open_store",
    "render_report",
    "runs",
    "show",
]


def __getattr__(name: str) -> _Any:
    """Load a public name's module on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'perfstats' has no attribute {name!r}")
    loaded = _importlib.import_module(module)
    value = loaded if name == "charts" else getattr(loaded, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if _TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from perfstats.comparison.gate import Comparison, compare
    from perfstats.diagnosis.rank import Bottlenecks, bottlenecks
    from perfstats.planning.plan import CapacityPlan, capacity, instances_needed
    from perfstats.planning.usl import USLFit, fit_usl
    from perfstats.render import charts
    from perfstats.render.headline import headline
    from perfstats.render.tables import show
    from perfstats.report import render_report
    from perfstats.run import Run, delete, ingest, load, runs
    from perfstats.store import ALL_ENDPOINTS, Store, open_store
    from perfstats.thresholds import evaluate_thresholds
    from perfstats.trends.changepoint import ChangePoint, detect_change_points
    from perfstats.trends.series import History, baseline_runs, export_parquet, history
