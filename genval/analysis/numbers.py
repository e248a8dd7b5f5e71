"""Headline numbers with intervals: means, ratios and paired differences, each as {value, ci, n}.

Every interval here is a seeded percentile bootstrap (Efron & Tibshirani 1993, ch. 13), resampling
examples, so a report is reproducible and paired numbers keep their pairing; a ratio's and a paired
difference's is the expanded percentile interval (genval.stats.tail). Shares and paired shares
get score intervals instead (genval.analysis.intervals).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from genval.config import Analysis
from genval.stats import number, percentile_interval, resample_indices


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


def resampled_means(arrays: list[np.ndarray], boot: Boot) -> list[np.ndarray]:
    """Gives, per array, its mean under each bootstrap resample of the rows (the same rows for every array)."""
    out: list[list[np.ndarray]] = [[] for _ in arrays]
    for idx in resample_indices(arrays[0].size, boot.n_boot, boot.seed):
        for arr, blocks in zip(arrays, out):
            blocks.append(arr[idx].mean(axis=1))
    return [np.concatenate(blocks) for blocks in out]


def mean(values, boot: Boot) -> dict:
    """Gives the mean of `values` (NaN dropped) as {value, ci, n}."""
    return number(values, boot.n_boot, boot.confidence, boot.seed)


__all__ = ["Boot", "empty", "mean", "minimum_detectable_effect", "paired_difference", "percentile_interval", "ratio",
           "resampled_means", "share"]


def ratio(numerator, denominator, boot: Boot, interval: bool = True) -> dict:
    """Gives mean(numerator) / mean(denominator) over paired rows as {value, ci, n} (`interval`: False for none).

    Used for task retention (student quality / teacher quality): both means are resampled on
    the same examples, so the interval reflects the pairing.
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    keep = ~(np.isnan(num) | np.isnan(den))
    num, den = num[keep], den[keep]
    if num.size == 0 or den.mean() == 0:
        return {"value": None, "ci": [None, None], "n": int(num.size)}
    value = float(num.mean() / den.mean())
    if num.size < 2 or not interval:
        return {"value": value, "ci": [None, None], "n": int(num.size)}
    top, bottom = resampled_means([num, den], boot)
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = top / bottom
    return {"value": value, "ci": percentile_interval(stats, boot.confidence, num.size), "n": int(num.size)}


def paired_difference(after, before, boot: Boot) -> dict:
    """Gives mean(after − before) over paired rows as {value, ci, n} (paired bootstrap, expanded percentile)."""
    a = np.asarray(after, dtype=float)
    b = np.asarray(before, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    return number(a[keep] - b[keep], boot.n_boot, boot.confidence, boot.seed, expand=True)


POWER = 0.8


def minimum_detectable_effect(num: dict, confidence: float, power: float = POWER) -> float | None:
    """Gives the smallest true change from a number's value that a two-sided test would detect at its n.

    MDE = (z_{1−α/2} + z_{power}) · SE (Bloom 1995, "Minimum detectable effects", Evaluation
    Review 19(5):547–556), with α = 1 − confidence, power 0.8, and SE read off the number's
    bootstrap interval as its width / (2 z_{1−α/2}). None when the number has no interval.
    """
    lo, hi = (num.get("ci") or [None, None])[:2]
    if lo is None or hi is None:
        return None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return float((z + NormalDist().inv_cdf(power)) * (hi - lo) / (2 * z))


def share(mask, boot: Boot) -> dict:
    """Gives the share of True in `mask` as {value, ci, n}."""
    return mean(np.asarray(mask, dtype=float), boot)
