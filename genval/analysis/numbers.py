"""Headline numbers with intervals: means, ratios and paired differences, each as {value, ci, n}.

Every interval is a seeded percentile bootstrap (Efron & Tibshirani 1993, ch. 13), resampling
examples, so a report is reproducible and paired numbers keep their pairing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genval.config import Analysis
from genval.stats import number


@dataclass(frozen=True)
class Boot:
    """The bootstrap settings every number of one summary shares."""

    n_boot: int = 1000
    confidence: float = 0.95
    seed: int = 0

    @classmethod
    def of(cls, analysis: Analysis) -> "Boot":
        return cls(analysis.bootstrap, analysis.confidence, analysis.seed)


def empty() -> dict:
    """Gives the {value, ci, n} of a number that has no data."""
    return {"value": None, "ci": [None, None], "n": 0}


def mean(values, boot: Boot) -> dict:
    """Gives the mean of `values` (NaN dropped) as {value, ci, n}."""
    return number(np.asarray(values, dtype=float), boot.n_boot, boot.confidence, boot.seed)


def _quantiles(stats: np.ndarray, confidence: float) -> list:
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return [None, None]
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return [float(lo), float(hi)]


def ratio(numerator, denominator, boot: Boot) -> dict:
    """Gives mean(numerator) / mean(denominator) over paired rows as {value, ci, n}.

    Used for accuracy retention (student accuracy / teacher accuracy): both means are
    resampled on the same examples, so the interval reflects the pairing.
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    keep = ~(np.isnan(num) | np.isnan(den))
    num, den = num[keep], den[keep]
    if num.size == 0 or den.mean() == 0:
        return {"value": None, "ci": [None, None], "n": int(num.size)}
    value = float(num.mean() / den.mean())
    if num.size < 2:
        return {"value": value, "ci": [None, None], "n": int(num.size)}
    rng = np.random.default_rng(boot.seed)
    idx = rng.integers(0, num.size, size=(boot.n_boot, num.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = num[idx].mean(axis=1) / den[idx].mean(axis=1)
    return {"value": value, "ci": _quantiles(stats, boot.confidence), "n": int(num.size)}


def paired_difference(after, before, boot: Boot) -> dict:
    """Gives mean(after − before) over paired rows as {value, ci, n} (paired bootstrap)."""
    a = np.asarray(after, dtype=float)
    b = np.asarray(before, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    return mean(a[keep] - b[keep], boot)


def share(mask, boot: Boot) -> dict:
    """Gives the share of True in `mask` as {value, ci, n}."""
    return mean(np.asarray(mask, dtype=float), boot)
