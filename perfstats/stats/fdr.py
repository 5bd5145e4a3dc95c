"""Benjamini-Hochberg control of the false discovery rate across many checks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def benjamini_hochberg(p_values: Sequence[float | None] | np.ndarray) -> np.ndarray:
    """BH (1995) adjusted p-values; missing (None/nan) p-values stay nan and are not counted.

    The adjusted value of the i-th smallest of m p-values is ``min_{j >= i} m * p_(j) / j``
    (capped at 1); rejecting where it is <= q controls the FDR at q under independence or positive
    dependence (PRDS), which fits endpoints that share infrastructure.

    Example:
        >>> benjamini_hochberg([0.01, 0.04, 0.03]).round(3).tolist()
        [0.03, 0.04, 0.04]
    """
    p = np.array([np.nan if v is None else v for v in p_values], dtype=np.float64)
    out = np.full(p.shape, np.nan)
    present = np.flatnonzero(np.isfinite(p))
    m = len(present)
    if m == 0:
        return out
    order = present[np.argsort(p[present], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    out[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return out
