"""Shared statistics: seeded bootstrap confidence intervals for every headline number."""

from __future__ import annotations

from typing import Callable

import numpy as np


def bootstrap_ci(values, statistic: Callable = np.mean, n_boot: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float | None, float | None]:
    """Gives the percentile bootstrap interval of `statistic` over `values` (Efron & Tibshirani 1993, ch. 13).

    Seeded, so the same data give the same interval in every report. None, None for n < 2.
    """
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size < 2:
        return None, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(n_boot, arr.size))
    if statistic is np.mean:
        stats = arr[idx].mean(axis=1)
    else:
        stats = np.array([statistic(arr[row]) for row in idx])
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(lo), float(hi)


def number(values, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Gives a headline mean as {value, ci, n}: the shape every number in summary.json has."""
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return {"value": None, "ci": [None, None], "n": 0}
    lo, hi = bootstrap_ci(arr, n_boot=n_boot, confidence=confidence, seed=seed)
    return {"value": float(arr.mean()), "ci": [lo, hi], "n": int(arr.size)}
