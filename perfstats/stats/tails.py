"""The normal and Student t tails and quantiles of ``scipy.stats``, without importing it.

Importing ``scipy.stats`` costs a process about 0.6 s of CPU, which ``perfstats compare``,
``bottlenecks`` and ``capacity`` would pay for these few functions alone. Each is the
``scipy.special`` function that ``scipy.stats.norm`` or ``scipy.stats.t`` calls itself (``ndtr``,
``ndtri``, ``stdtr``, ``stdtrit``), so the values are the same to the last bit;
tests/test_stats_fdr_proportions.py compares them with ``scipy.stats``.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from scipy.special import ndtr, ndtri, stdtr, stdtrit

Value = TypeVar("Value", float, np.ndarray)


def norm_sf(z: Value) -> Value:
    """``scipy.stats.norm.sf(z)``: the upper tail of the standard normal."""
    return ndtr(-z)


def norm_cdf(z: Value) -> Value:
    """``scipy.stats.norm.cdf(z)``."""
    return ndtr(z)


def norm_ppf(q: Value) -> Value:
    """``scipy.stats.norm.ppf(q)``: the standard normal quantile."""
    return ndtri(q)


def t_sf(x: Value, df: float | np.ndarray) -> Value:
    """``scipy.stats.t.sf(x, df)``: the upper tail of Student's t."""
    return stdtr(df, -x)


def t_ppf(q: Value, df: float | np.ndarray) -> Value:
    """``scipy.stats.t.ppf(q, df)``: Student's t quantile."""
    return stdtrit(df, q)
