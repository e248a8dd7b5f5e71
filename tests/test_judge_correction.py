"""The judge's equivalence rate corrected for its sensitivity and specificity (Rogan–Gladen), against hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from genval.analysis.judge_correction import MIN_YOUDEN, counted, rogan_gladen, two_by_two
from genval.analysis.stage import build_summary
from tests.test_aggregate_support import make_config, make_run

TABLE = {"tp": 45, "fn": 5, "fp": 10, "tn": 40}   # se = 45/50 = 0.9, sp = 40/50 = 0.8


def test_rogan_gladen_by_hand():
    out = rogan_gladen(60, 100, TABLE, n_boot=2000, seed=3)
    assert out["sensitivity"] == 0.9 and out["specificity"] == 0.8 and out["youden_j"] == pytest.approx(0.7)
    assert out["value"] == pytest.approx((0.6 + 0.8 - 1) / (0.9 + 0.8 - 1))   # 0.5714…
    assert out["raw"] == 0.6 and out["n"] == 100 and out["human_n"] == 100
    lo, hi = out["ci"]
    assert lo < out["value"] < hi


def test_interval_carries_both_samples_like_an_item_bootstrap():
    # An independent bootstrap over items: 100 judged verdicts and 100 human-rated pairs, resampled separately.
    rng = np.random.default_rng(11)
    judged = np.array([1] * 60 + [0] * 40)
    human = np.array([1] * 50 + [0] * 50)
    judge = np.array([1] * 45 + [0] * 5 + [1] * 10 + [0] * 40)
    stats = []
    for _ in range(4000):
        p = judged[rng.integers(0, 100, 100)].mean()
        k = rng.integers(0, 100, 100)
        h, j = human[k], judge[k]
        se, sp = j[h == 1].mean(), 1 - j[h == 0].mean()
        stats.append(np.clip((p + sp - 1) / (se + sp - 1), 0, 1))
    expected = np.quantile(stats, [0.025, 0.975])
    lo, hi = rogan_gladen(60, 100, TABLE, n_boot=4000, seed=5)["ci"]
    assert lo == pytest.approx(expected[0], abs=0.03) and hi == pytest.approx(expected[1], abs=0.03)
    # Taking se and sp as known (judged sample only) gives a narrower interval: the human sample's share is real.
    judged_only = [np.clip((judged[rng.integers(0, 100, 100)].mean() - 0.2) / 0.7, 0, 1) for _ in range(4000)]
    assert hi - lo > np.diff(np.quantile(judged_only, [0.025, 0.975]))[0] * 1.2


def test_clipped_to_zero_and_not_corrected_when_youden_is_small():
    assert rogan_gladen(10, 100, TABLE, n_boot=200)["value"] == 0.0            # (0.1 + 0.8 − 1) / 0.7 < 0
    weak = rogan_gladen(60, 100, {"tp": 30, "fn": 20, "fp": 25, "tn": 25}, n_boot=200)   # J = 0.6 + 0.5 − 1 = 0.1
    assert weak["value"] is None and weak["youden_j"] == pytest.approx(0.1) and weak["youden_j"] < MIN_YOUDEN
    assert "Youden's J" in weak["note"]
    assert rogan_gladen(60, 100, {"tp": 30, "fn": 20, "fp": 0, "tn": 0})["note"].startswith("not corrected")


def test_two_by_two_collapses_a_confusion_by_the_judges_meaning():
    confusion = {"labels": ["A", "B", "tie"], "matrix": [[5, 1, 2], [0, 6, 1], [1, 2, 9]]}   # rows human
    assert two_by_two(confusion, lambda label: label == "tie") == {"tp": 9, "fn": 3, "fp": 3, "tn": 12}
    ordinal = {"labels": ["1", "2", "3", "4", "5"], "matrix": np.eye(5, dtype=int).tolist()}
    assert two_by_two(ordinal, lambda label: float(label) >= 4) == {"tp": 2, "fn": 0, "fp": 0, "tn": 3}


def test_counted_rate_treats_unanswered_examples_as_not_equivalent():
    out = counted(rogan_gladen(60, 100, TABLE, n_boot=200), 25)
    assert out["n"] == 125 and out["value"] == pytest.approx(0.5714285714 * 100 / 125)
    assert out["on_judged"]["value"] == pytest.approx(0.5714285714)


def test_summary_gives_the_corrected_rate_next_to_the_raw_one(tmp_path):
    verdicts = ["equivalent"] * 45 + ["not_equivalent"] * 15
    run = make_run(tmp_path / "run", [1] * 60, [1] * 60, verdicts=verdicts)
    run.write_json("calibration.json", {
        "judges": {"j1": {"validated": True, "min_kappa": 0.6, "kappa": {"value": 0.7, "ci": [0.6, 0.8], "n": 40},
                          "confusion": {"labels": ["equivalent", "not_equivalent"], "matrix": [[27, 3], [2, 8]]}}},
        "ranking": ["j1"], "meaning": {"j1": {"kind": "binary", "equivalent": ["equivalent"], "pass_threshold": None,
                                              "says": "share of verdicts in [equivalent]"}}})
    judge = build_summary(run, make_config(tmp_path))["judge"]
    se, sp = 27 / 30, 8 / 10
    assert judge["equivalence_rate"]["value"] == 0.75
    assert judge["corrected_equivalence_rate"]["value"] == pytest.approx((0.75 + sp - 1) / (se + sp - 1))
