"""Shared statistics: the seeded percentile bootstrap, drawn in bounded memory."""

import numpy as np
import pytest

from genval import stats


def test_bootstrap_in_blocks_equals_drawing_every_resample_at_once():
    values = np.random.default_rng(5).random(5000)
    assert values.size * 1000 > stats.CHUNK_CELLS  # the block-wise path
    idx = np.random.default_rng(7).integers(0, values.size, size=(1000, values.size))
    lo, hi = np.quantile(values[idx].mean(axis=1), [0.025, 0.975])
    assert stats.bootstrap_ci(values, n_boot=1000, confidence=0.95, seed=7) == pytest.approx((lo, hi), rel=1e-12)


def test_number_contains_its_estimate_shrinks_with_n_and_is_reproducible():
    rng = np.random.default_rng(0)
    small, large = rng.random(50), rng.random(5000)
    a, b = stats.number(small, seed=3), stats.number(large, seed=3)
    assert a["ci"][0] <= a["value"] <= a["ci"][1] and a["n"] == 50
    assert b["ci"][1] - b["ci"][0] < a["ci"][1] - a["ci"][0]
    assert stats.number(small, seed=3) == a


def test_custom_statistic_and_degenerate_inputs():
    values = np.arange(10, dtype=float)
    idx = np.random.default_rng(1).integers(0, 10, size=(200, 10))
    medians = np.median(values[idx], axis=1)
    expected = tuple(np.quantile(medians, [0.05, 0.95]))
    assert stats.bootstrap_ci(values, statistic=np.median, n_boot=200, confidence=0.9, seed=1) == pytest.approx(expected)
    assert stats.bootstrap_ci([1.0]) == (None, None)
    assert stats.number([np.nan, np.nan]) == {"value": None, "ci": [None, None], "n": 0}
    assert stats.percentile_interval(np.array([np.nan, np.inf]), 0.95) == [None, None]
