"""p-values read off bootstrap intervals, and Holm's correction for testing many numbers at once.

A percentile interval at confidence c has its ends at value ∓ z·SE with z = z_{(1+c)/2}, so
the standard error on each side is (value − lo) / z and (hi − value) / z. A one-sided test of
"the true value is at most b" then has p = 1 − Φ((value − b) / SE_lo) (a normal approximation
of the bootstrap distribution on the side that faces b): p ≤ (1 − c)/2 exactly when lo ≥ b, so
a single test keeps the meaning of "the interval's lower end reaches b", and several tests can
be corrected together. Holm's step-down procedure (Holm 1979, "A simple sequentially rejective
multiple test procedure", Scand J Statist 6:65–70) controls the family-wise error rate without
assuming the tests independent.
"""

from __future__ import annotations

from statistics import NormalDist

_NORMAL = NormalDist()


def _z(confidence: float) -> float:
    return _NORMAL.inv_cdf(0.5 + confidence / 2)


def one_sided_p(value: float, ci: list, bound: float, confidence: float, side: str = "lower") -> float | None:
    """Gives the p-value of "the true value is on the wrong side of `bound`": ≤ bound (side lower) or ≥ bound (upper)."""
    lo, hi = ci
    end = lo if side == "lower" else hi
    if value is None or end is None:
        return None
    margin = (value - bound) if side == "lower" else (bound - value)
    se = abs(value - end) / _z(confidence)
    if se == 0:
        return 0.0 if margin >= 0 else 1.0
    return 1.0 - _NORMAL.cdf(margin / se)


def two_sided_p(change: float, ci: list, confidence: float) -> float | None:
    """Gives the two-sided p-value of "no change", with the standard error of the interval's side facing 0."""
    lo, hi = ci
    if change is None or lo is None or hi is None:
        return None
    se = (change - lo if change >= 0 else hi - change) / _z(confidence)
    if se <= 0:
        return 0.0 if change != 0 else 1.0
    return min(1.0, 2 * (1.0 - _NORMAL.cdf(abs(change) / se)))


def holm(p_values: list[float | None]) -> list[float | None]:
    """Gives Holm-adjusted p-values (None stays None): p_adj(k) = max_{j≤k} min(1, (m − j + 1)·p_(j))."""
    ranked = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(ranked)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for k, (p, i) in enumerate(ranked):
        running = max(running, min(1.0, (m - k) * p))
        out[i] = running
    return out
