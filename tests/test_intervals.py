"""Score intervals for shares and paired shares, against scipy, their defining equations and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from genval.analysis.intervals import bounded_mean, paired_difference, paired_ratio, wilson


@pytest.mark.parametrize("k, n, confidence", [(0, 8, 0.95), (8, 8, 0.95), (3, 10, 0.9), (57, 200, 0.95), (1, 1, 0.99)])
def test_wilson_is_scipys_wilson(k, n, confidence):
    expected = binomtest(k, n).proportion_ci(confidence, method="wilson")
    assert wilson(k, n, confidence) == pytest.approx([expected.low, expected.high], abs=1e-12)


def _phi(a, b, c, d):
    """Newcombe's corrected correlation, written from his paper: (ad − bc − n/2)⁺ / √(…) for ad > bc."""
    n = a + b + c + d
    den = math.sqrt((a + b) * (c + d) * (a + c) * (b + d)) if (a + b) * (c + d) * (a + c) * (b + d) else 0
    if not den:
        return 0.0
    cross = a * d - b * c
    return (max(cross - n / 2, 0) if cross > 0 else cross) / den


def _wilson(k, n):
    ci = binomtest(int(k), int(n)).proportion_ci(0.95, method="wilson")
    return ci.low, ci.high


@pytest.mark.parametrize("cells", [(40, 5, 12, 43), (1, 1, 7, 12), (8, 0, 0, 0), (30, 0, 6, 4), (2, 9, 3, 6)])
def test_paired_difference_is_newcombes_method_10(cells):
    a, b, c, d = cells
    n = sum(cells)
    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = _wilson(a + b, n), _wilson(a + c, n)
    phi = _phi(*cells)
    lower = p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2))
    upper = p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2))
    assert paired_difference(*cells) == pytest.approx([lower, upper], abs=1e-9)
    lo, hi = paired_difference(*cells)
    assert lo <= p1 - p2 <= hi and hi > lo   # never of width 0, even at 8 of 8


@pytest.mark.parametrize("cells", [(40, 5, 12, 43), (1, 1, 7, 12), (8, 0, 0, 0), (70, 4, 10, 16), (30, 0, 6, 4)])
def test_paired_ratio_solves_the_mover_equation(cells):
    """MOVER-R's limits are the R where p1 − R·p2 = 0 lies at the end of the MOVER interval of p1 − R·p2 (Zou & Donner
    2008): p1 − L·p2 = √((p1 − l1)² + L²(u2 − p2)² − 2φL(p1 − l1)(u2 − p2)), and the same for U with the other ends."""
    a, b, c, d = cells
    n = sum(cells)
    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = _wilson(a + b, n), _wilson(a + c, n)
    phi = _phi(*cells)
    lo, hi = paired_ratio(*cells)
    assert lo < p1 / p2 < hi
    assert p1 - lo * p2 == pytest.approx(
        math.sqrt((p1 - l1) ** 2 + lo ** 2 * (u2 - p2) ** 2 - 2 * phi * lo * (p1 - l1) * (u2 - p2)), abs=1e-9)
    assert hi * p2 - p1 == pytest.approx(
        math.sqrt((u1 - p1) ** 2 + hi ** 2 * (p2 - l2) ** 2 - 2 * phi * hi * (u1 - p1) * (p2 - l2)), abs=1e-9)


def test_eight_of_eight_is_not_certainty():
    lo, hi = paired_ratio(8, 0, 0, 0)
    low_share = _wilson(8, 8)[0]
    assert (lo, hi) == pytest.approx((low_share, 1 / low_share))    # worked by hand: [l, 1/l] with l = 8 / (8 + z²)
    assert low_share == pytest.approx(8 / (8 + norm.ppf(0.975) ** 2))
    assert paired_ratio(0, 3, 0, 5) == [None, None]                  # the teacher is never right: no ratio


def test_a_bounded_mean_is_the_wilson_interval_of_its_range():
    lo, hi = bounded_mean(0.75, 10, -1.0, 1.0)
    w_lo, w_hi = wilson(8.75, 10)
    assert (lo, hi) == pytest.approx((-1 + 2 * w_lo, -1 + 2 * w_hi))


@pytest.mark.parametrize("n", [20, 200])
def test_paired_intervals_cover_by_simulation(n):
    """Student and teacher right or wrong on the same examples (both kinds of disagreement): ≥ 93 % coverage."""
    cells = np.array([0.70, 0.035, 0.10, 0.165])     # both right, only the student, only the teacher, neither
    ratio, difference = (cells[0] + cells[1]) / (cells[0] + cells[2]), cells[1] - cells[2]
    rng = np.random.default_rng(7)
    draws = rng.multinomial(n, cells, 2000)
    hits_r = hits_d = 0
    for a, b, c, d in draws:
        lo, hi = paired_ratio(a, b, c, d)
        hits_r += lo <= ratio <= (math.inf if hi is None else hi)
        lo, hi = paired_difference(a, b, c, d)
        hits_d += lo <= difference <= hi
    # 2000 draws: the binomial standard error at 0.95 is 0.005; the targets of benchmarks/coverage.py
    assert hits_r / 2000 >= 0.93 and hits_d / 2000 >= 0.93
    if n >= 100:
        assert hits_r / 2000 <= 0.975 and hits_d / 2000 <= 0.975


@pytest.mark.parametrize("n", [1, 3, 7, 10, 20, 33, 100, 1000])
def test_a_wilson_interval_holds_its_estimate_at_zero_and_at_n(n):
    # In floating point the formula's lower end at 0 of n came out 2.8e-17 for n = 20: an interval that misses
    # its own value (a report's error bar drew a negative length and the report failed).
    for confidence in (0.9, 0.95, 0.99):
        assert wilson(0, n, confidence)[0] == 0.0 and wilson(n, n, confidence)[1] == 1.0
        for k in range(0, n + 1, max(1, n // 7)):
            lo, hi = wilson(k, n, confidence)
            assert lo <= k / n <= hi
