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


CHUNK_CELLS = 4_000_000  # resample indices held at once: bounds memory at ~32 MB whatever the eval set's size


def resampled_means(arrays: list[np.ndarray], boot: Boot) -> list[np.ndarray]:
    """Gives, per array, its mean under each bootstrap resample of the rows (the same rows for every array).

    Draws the indices in row blocks from one seeded generator: the same stream, and so the same
    resamples, as `genval.stats.bootstrap_ci` draws at once, in bounded memory.
    """
    size = arrays[0].size
    rng = np.random.default_rng(boot.seed)
    rows = max(1, CHUNK_CELLS // max(size, 1))
    out = [np.empty(boot.n_boot) for _ in arrays]
    for start in range(0, boot.n_boot, rows):
        stop = min(boot.n_boot, start + rows)
        idx = rng.integers(0, size, size=(stop - start, size))
        for arr, means in zip(arrays, out):
            means[start:stop] = arr[idx].mean(axis=1)
    return out


def mean(values, boot: Boot) -> dict:
    """Gives the mean of `values` (NaN dropped) as {value, ci, n}: genval.stats.number's numbers, in bounded memory."""
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size * boot.n_boot <= CHUNK_CELLS:
        return number(arr, boot.n_boot, boot.confidence, boot.seed)
    (stats,) = resampled_means([arr], boot)
    return {"value": float(arr.mean()), "ci": percentile_interval(stats, boot.confidence), "n": int(arr.size)}


def percentile_interval(stats: np.ndarray, confidence: float) -> list:
    """Gives the [lo, hi] percentile interval of bootstrap statistics (non-finite ones dropped)."""
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
    top, bottom = resampled_means([num, den], boot)
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = top / bottom
    return {"value": value, "ci": percentile_interval(stats, boot.confidence), "n": int(num.size)}


def paired_difference(after, before, boot: Boot) -> dict:
    """Gives mean(after − before) over paired rows as {value, ci, n} (paired bootstrap)."""
    a = np.asarray(after, dtype=float)
    b = np.asarray(before, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    return mean(a[keep] - b[keep], boot)


def share(mask, boot: Boot) -> dict:
    """Gives the share of True in `mask` as {value, ci, n}."""
    return mean(np.asarray(mask, dtype=float), boot)
