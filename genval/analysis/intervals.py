"""Closed-form intervals for shares and for paired comparisons of shares: they see what a bootstrap cannot.

A percentile bootstrap of a share that is 8 of 8 gives [1, 1]: it cannot show uncertainty it
never samples. A score interval can. genval gives

- a **share** (accuracy, agreement, a format check, a judge's rate…) the Wilson score interval
  (Wilson 1927, JASA 22:209–212), whose coverage is close to nominal from small n on (Brown,
  Cai & DasGupta 2001, Statist Sci 16:101–133);
- the **difference** of two shares on the same examples Newcombe's hybrid score interval
  (Newcombe 1998, Stat Med 17:2635–2650, method 10: MOVER from the two Wilson intervals with
  his corrected correlation of the pairs);
- the **ratio** of two shares on the same examples (accuracy retention) the same construction
  for a ratio (MOVER-R, Tang, Li & Tang 2010, Stat Methods Med Res 21:361–378; Fagerland,
  Lydersen & Laake 2014, Stat Med 33:2850–2875 compare it), as ratesci's `moverpairci` computes it;
- a bounded mean whose every value is the same (a bootstrap of width 0) the Wilson interval of
  the mean moved onto [0, 1]: among variables in [0, 1] with mean μ the Bernoulli has the largest
  variance, μ(1 − μ), so the interval is conservative for the others.

Paired counts are (a, b, c, d): a examples where both are 1, b where only the first is, c where
only the second is, d where neither is.
"""

from __future__ import annotations

import math
from statistics import NormalDist

WILSON = "Wilson score (Wilson 1927)"
NEWCOMBE = "Newcombe hybrid score for paired shares (Newcombe 1998, method 10)"
MOVER_RATIO = "MOVER-R Wilson for a ratio of paired shares (Tang, Li & Tang 2010)"
BOUNDED = "Wilson score of the mean rescaled to [0, 1] (every value equal: the bootstrap saw no spread)"


def z_of(confidence: float) -> float:
    """Gives the two-sided normal quantile z_{(1+c)/2}."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: float, n: float, confidence: float = 0.95) -> list:
    """Gives the Wilson score interval [lo, hi] of a share `successes` / `n` ([None, None] for n = 0)."""
    if n <= 0:
        return [None, None]
    z = z_of(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0))
    # In exact arithmetic the interval holds p and its end is 0 at p = 0 (1 at p = 1); in floating point
    # centre − half can come out 3e-17, an interval that misses its own estimate.
    return [min(max(0.0, centre - half), p), max(min(1.0, centre + half), p)]


def _phi(a: float, b: float, c: float, d: float) -> float:
    """Gives Newcombe's corrected correlation of paired 0/1 outcomes (0 where undefined)."""
    n = a + b + c + d
    denominator = (a + b) * (c + d) * (a + c) * (b + d)
    if denominator <= 0:
        return 0.0
    cross = a * d - b * c
    if cross > 0:  # Newcombe's continuity-style shrinkage toward 0 of a positive correlation
        cross = max(cross - n / 2, 0.0)
    return cross / math.sqrt(denominator)


def paired_difference(a: float, b: float, c: float, d: float, confidence: float = 0.95) -> list:
    """Gives Newcombe's interval of p1 − p2 with p1 = (a + b)/n, p2 = (a + c)/n on the same n examples."""
    n = a + b + c + d
    if n <= 0:
        return [None, None]
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson(a + b, n, confidence)
    l2, u2 = wilson(a + c, n, confidence)
    phi = _phi(a, b, c, d)
    lower = p1 - p2 - math.sqrt(max((p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2), 0.0))
    upper = p1 - p2 + math.sqrt(max((u1 - p1) ** 2 + (p2 - l2) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2), 0.0))
    return [max(-1.0, lower), min(1.0, upper)]


def paired_ratio(a: float, b: float, c: float, d: float, confidence: float = 0.95) -> list:
    """Gives the MOVER-R interval of p1 / p2 with p1 = (a + b)/n, p2 = (a + c)/n (hi None: unbounded above)."""
    n = a + b + c + d
    if n <= 0 or a + c == 0:
        return [None, None]
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson(a + b, n, confidence)
    l2, u2 = wilson(a + c, n, confidence)
    phi = _phi(a, b, c, d)
    big_a = (p1 - l1) * (u2 - p2) * phi
    big_b = (u1 - p1) * (p2 - l2) * phi
    lower = (big_a - p1 * p2 + math.sqrt(max((big_a - p1 * p2) ** 2 - l1 * (2 * p1 - l1) * u2 * (2 * p2 - u2), 0.0))) \
        / (u2 * (u2 - 2 * p2))
    if l2 <= 0:
        return [max(0.0, lower), None]
    upper = (big_b - p1 * p2 - math.sqrt(max((big_b - p1 * p2) ** 2 - u1 * (2 * p1 - u1) * l2 * (2 * p2 - l2), 0.0))) \
        / (l2 * (l2 - 2 * p2))
    return [max(0.0, lower), upper if upper >= 0 else None]


def bounded_mean(value: float, n: int, low: float, high: float, confidence: float = 0.95) -> list:
    """Gives a conservative interval of a mean of values in [low, high]: Wilson's on the mean moved onto [0, 1]."""
    width = high - low
    lo, hi = wilson((value - low) / width * n, n, confidence)
    return [low + lo * width, low + hi * width]
