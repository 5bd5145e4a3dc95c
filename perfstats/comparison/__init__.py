"""Baseline against candidate: the drift gate of ``perfstats compare`` (GO / NO-GO).

``gate`` loads both runs, builds their per-window data and runs the checks of
:mod:`perfstats.stats`; the project configuration (tolerances, SLOs) is :mod:`perfstats.config`.
"""

from perfstats.comparison.gate import Comparison, compare

__all__ = ["Comparison", "compare"]
