"""History over many runs: series per endpoint, change points, run-to-run noise, Parquet export.

``series`` reads the stored runs (:func:`history`, :func:`baseline_runs`); ``changepoint`` holds
E-divisive change-point detection.
"""

from perfstats.trends.changepoint import ChangePoint, detect_change_points
from perfstats.trends.series import (
    History,
    baseline_runs,
    detectable_change,
    export_parquet,
    history,
)

__all__ = [
    "ChangePoint",
    "History",
    "baseline_runs",
    "detect_change_points",
    "detectable_change",
    "export_parquet",
    "history",
]
