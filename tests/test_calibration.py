"""Calibration statistics against the reference libraries, and the calibration block on hand-made cases."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score, precision_score, recall_score

from genval.judging.agreement import cohen_kappa, confusion, krippendorff_alpha, precision_recall, raw_agreement
from genval.judging.calibration import Settings, calibrate_judge, majority, human_values, ranking
from genval.judging.definition import load_definition
from genval.judging.threshold import best_threshold, pick_cut
from tests.conftest import ROOT

EQUIV = load_definition(ROOT / "judges" / "equivalence.yaml")
QUALITY = load_definition(ROOT / "judges" / "summary_quality.yaml")
RNG = np.random.default_rng(3)


@pytest.mark.parametrize("seed", range(5))
def test_cohen_kappa_matches_sklearn_nominal(seed):
    rng = np.random.default_rng(seed)
    a = rng.choice(["x", "y", "z"], size=40).tolist()
    b = [v if rng.random() < 0.6 else str(rng.choice(["x", "y", "z"])) for v in a]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


@pytest.mark.parametrize("seed", range(5))
def test_cohen_kappa_matches_sklearn_quadratic(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 6, size=50)
    b = np.clip(a + rng.integers(-1, 2, size=50), 1, 5)
    cats = ["1", "2", "3", "4", "5"]
    ours = cohen_kappa([str(v) for v in a], [str(v) for v in b], "quadratic", cats)
    assert ours == pytest.approx(cohen_kappa_score(a, b, weights="quadratic", labels=[1, 2, 3, 4, 5]))
    assert cohen_kappa(a.tolist(), b.tolist(), "linear") == pytest.approx(cohen_kappa_score(a, b, weights="linear"))


def test_cohen_kappa_by_hand():
    # 10 items: agree on 7 (4 yes, 3 no); p_o = .7; marginals yes .5/.6 → p_e = .5*.6+.5*.4 = .5; κ = .2/.5 = .4
    a = ["y"] * 5 + ["n"] * 5
    b = ["y", "y", "y", "y", "n", "y", "y", "n", "n", "n"]
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert raw_agreement(a, b) == pytest.approx(0.7)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_krippendorff_alpha_matches_the_package(level):
    data = RNG.integers(1, 6, size=(4, 30)).astype(float)
    data[1] = np.where(RNG.random(30) < 0.7, data[0], data[1])
    data[RNG.random((4, 30)) < 0.15] = np.nan  # missing ratings
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert krippendorff_alpha(data, level) == pytest.approx(expected)


def test_precision_recall_and_confusion_match_sklearn():
    j = RNG.choice(["equivalent", "not_equivalent"], size=60)
    h = np.where(RNG.random(60) < 0.75, j, RNG.choice(["equivalent", "not_equivalent"], size=60))
    p, r = precision_recall(j, h, "equivalent")
    assert p == pytest.approx(precision_score(h, j, pos_label="equivalent"))
    assert r == pytest.approx(recall_score(h, j, pos_label="equivalent"))
    matrix = confusion(j, h, ["equivalent", "not_equivalent"])
    assert matrix[0][0] == int(((h == "equivalent") & (j == "equivalent")).sum())
    assert matrix[1][0] == int(((h == "not_equivalent") & (j == "equivalent")).sum())


def _labels(rows):
    frame = pd.DataFrame(rows)
    for column in ("verdict", "score", "note", "aspect"):
        if column not in frame:
            frame[column] = None
    return frame.astype({"score": "float64"})


def _judgments(verdicts, scores=None, pair="student~teacher"):
    n = len(verdicts)
    return pd.DataFrame({
        "id": [f"e{i}" for i in range(n)], "pair": pair, "judge": "j", "verdict": verdicts,
        "score": scores if scores is not None else [1.0 if v == "equivalent" else 0.0 for v in verdicts],
        "raw": "", "parsed": True, "swap_consistent": pd.array([None] * n, dtype="boolean"),
        "latency_s": 0.5, "prompt_tokens": 100, "completion_tokens": 10,
    })


def _outputs(n):
    rows = []
    for i in range(n):
        rows.append({"id": f"e{i}", "role": "teacher", "text": "t" * 20, "error": None})
        rows.append({"id": f"e{i}", "role": "student", "text": "s" * (10 + i % 20), "error": None})
    return pd.DataFrame(rows)


def _examples(n):
    return pd.DataFrame({"id": [f"e{i}" for i in range(n)], "reference": "r", "slice_kind": ["a", "b"] * (n // 2)})


def test_majority_breaks_no_ties_and_takes_median_scores():
    labels = _labels([
        {"id": "x", "pair": "p", "annotator": "a", "verdict": "equivalent"},
        {"id": "x", "pair": "p", "annotator": "b", "verdict": "not_equivalent"},
        {"id": "y", "pair": "p", "annotator": "a", "verdict": "equivalent"},
        {"id": "y", "pair": "p", "annotator": "b", "verdict": "equivalent"},
        {"id": "y", "pair": "p", "annotator": "c", "verdict": "not_equivalent"},
    ])
    maj = majority(human_values(labels, EQUIV, "labels"), EQUIV)
    assert maj["id"].tolist() == ["y"] and maj["human"].tolist() == ["equivalent"]  # the split item is left out
    scores = _labels([{"id": "x", "pair": "p", "annotator": a, "score": s} for a, s in zip("abc", [2, 4, 5])])
    maj = majority(human_values(scores, QUALITY, "labels"), QUALITY)
    assert maj["human"].tolist() == ["4"] and maj["human_number"].tolist() == [pytest.approx(11 / 3)]


def test_calibration_reproduces_hand_numbers_and_validates_a_good_judge():
    n = 200
    human = RNG.choice(["equivalent", "not_equivalent"], size=n)
    judge = np.where(RNG.random(n) < 0.95, human, np.where(human == "equivalent", "not_equivalent", "equivalent"))
    labels = _labels([{"id": f"e{i}", "pair": "student~teacher", "annotator": "a", "verdict": v}
                      for i, v in enumerate(human)])
    block = calibrate_judge(_judgments(judge.tolist()), labels, EQUIV, _examples(n), _outputs(n), Settings(n_boot=300))
    assert block["n"] == n
    assert block["agreement"]["value"] == pytest.approx(float(np.mean(judge == human)))
    assert block["kappa"]["value"] == pytest.approx(cohen_kappa_score(human, judge))
    lo, hi = block["kappa"]["ci"]
    assert lo <= block["kappa"]["value"] <= hi
    assert block["validated"] is (lo >= 0.6) and block["validated"]
    assert block["alpha"]["value"] == pytest.approx(krippendorff.alpha(
        reliability_data=[[float(v == "equivalent") for v in judge], [float(v == "equivalent") for v in human]],
        level_of_measurement="nominal"))
    assert block["confusion"]["matrix"] == confusion(judge, human, ["equivalent", "not_equivalent"])
    assert set(block["per_slice"]["kind"]) == {"a", "b"}
    assert block["seconds"] == pytest.approx(0.5 * n)


def test_a_noise_judge_is_not_validated():
    n = 120
    human = RNG.choice(["equivalent", "not_equivalent"], size=n)
    judge = RNG.choice(["equivalent", "not_equivalent"], size=n)
    labels = _labels([{"id": f"e{i}", "pair": "student~teacher", "annotator": "a", "verdict": v}
                      for i, v in enumerate(human)])
    block = calibrate_judge(_judgments(judge.tolist()), labels, EQUIV, _examples(n), _outputs(n), Settings(n_boot=300))
    assert not block["validated"] and block["kappa"]["ci"][0] < 0.6
    assert any("gate ignores" in w for w in block["warnings"])


def test_bootstrap_intervals_contain_the_estimate_and_shrink_with_n():
    widths = []
    for n in (40, 400):
        rng = np.random.default_rng(0)
        human = rng.choice(["equivalent", "not_equivalent"], size=n)
        judge = np.where(rng.random(n) < 0.85, human, rng.choice(["equivalent", "not_equivalent"], size=n))
        labels = _labels([{"id": f"e{i}", "pair": "student~teacher", "annotator": "a", "verdict": v}
                          for i, v in enumerate(human)])
        block = calibrate_judge(_judgments(judge.tolist()), labels, EQUIV, _examples(n), _outputs(n),
                                Settings(n_boot=300))
        for key in ("agreement", "kappa", "alpha", "precision", "recall"):
            lo, hi = block[key]["ci"]
            assert lo <= block[key]["value"] <= hi, key
        widths.append(block["kappa"]["ci"][1] - block["kappa"]["ci"][0])
    assert widths[1] < widths[0] / 2  # ~1/sqrt(10) of the width


def test_ordinal_judge_uses_quadratic_kappa_and_rank_correlations():
    n = 60
    human = RNG.integers(1, 6, size=n)
    judge = np.clip(human + RNG.integers(-1, 2, size=n), 1, 5)
    labels = _labels([{"id": f"e{i}", "pair": "student", "annotator": "a", "score": float(s)} for i, s in enumerate(human)])
    rows = _judgments([str(v) for v in judge], scores=judge.astype(float).tolist(), pair="student")
    block = calibrate_judge(rows, labels, QUALITY, _examples(n), _outputs(n), Settings(n_boot=200))
    assert block["kappa"]["value"] == pytest.approx(cohen_kappa_score(human, judge, weights="quadratic", labels=[1, 2, 3, 4, 5]))
    assert block["spearman"]["value"] == pytest.approx(sps.spearmanr(judge, human)[0])
    assert block["kendall"]["value"] == pytest.approx(sps.kendalltau(judge, human)[0])
    assert block["precision"] is None and block["threshold"] is None


def test_inter_annotator_agreement_and_judge_vs_majority():
    items = [f"e{i}" for i in range(30)]
    truth = RNG.choice(["equivalent", "not_equivalent"], size=30)
    rows = []
    for ann, flip in (("a", 0.1), ("b", 0.2), ("c", 0.0)):
        for i, t in zip(items, truth):
            v = t if RNG.random() >= flip else ("not_equivalent" if t == "equivalent" else "equivalent")
            rows.append({"id": i, "pair": "student~teacher", "annotator": ann, "verdict": v})
    labels = _labels(rows)
    block = calibrate_judge(_judgments(truth.tolist()), labels, EQUIV, _examples(30), _outputs(30), Settings(n_boot=100))
    ann = block["annotators"]
    wide = labels.pivot(index="id", columns="annotator", values="verdict").loc[items]
    expected = np.mean([cohen_kappa_score(wide[x], wide[y]) for x, y in (("a", "b"), ("a", "c"), ("b", "c"))])
    assert ann["items_multi_rated"] == 30 and ann["pairwise_kappa_mean"] == pytest.approx(expected)
    codes = wide.apply(lambda c: (c == "equivalent").astype(float)).to_numpy().T
    assert ann["alpha"] == pytest.approx(krippendorff.alpha(reliability_data=codes, level_of_measurement="nominal"))
    maj = wide.apply(lambda r: r.value_counts().index[0], axis=1)
    assert ann["judge_vs_majority_kappa"] == pytest.approx(cohen_kappa_score(maj, truth))


def test_threshold_maximises_kappa_and_is_cross_validated():
    scores = np.array([0.1, 0.2, 0.35, 0.4, 0.6, 0.7, 0.8, 0.9] * 10)
    human = (scores > 0.5).astype(int)
    cut, kappa = pick_cut(scores, human)
    assert 0.4 < cut < 0.6 and kappa == pytest.approx(1.0)
    joined = pd.DataFrame({"score": scores, "human": np.where(human == 1, "equivalent", "not_equivalent"),
                           "verdict": "equivalent"})
    result = best_threshold(joined, EQUIV, seed=0)
    assert result["cut"] == pytest.approx(0.5) and result["cv_kappa"] == pytest.approx(1.0)
    assert result["cv_agreement"] == pytest.approx(1.0) and result["n"] == 80


def test_ranking_puts_validated_judges_first_then_kappa_then_cost():
    block = lambda v, k, c: {"validated": v, "kappa": {"value": k}, "cost": c, "seconds": 1.0}  # noqa: E731
    judges = {"cheap": block(True, 0.7, 1.0), "dear": block(True, 0.7, 5.0), "best": block(True, 0.9, 9.0),
              "bad": block(False, 0.95, 0.1)}
    assert ranking(judges) == ["best", "cheap", "dear", "bad"]


def test_ten_agreed_items_do_not_validate_a_judge():
    """Judge and people agree on all 10 items: the bootstrap resamples κ = 1 every time, the interval [1, 1] was
    taken as certainty and the judge validated. κ at the Wilson ends of the agreement (10/10) at the observed chance
    agreement is the least the interval must reach."""
    from scipy.stats import binomtest

    human = ["equivalent"] * 6 + ["not_equivalent"] * 4
    labels = _labels([{"id": f"e{i}", "pair": "student~teacher", "annotator": "a", "verdict": v}
                      for i, v in enumerate(human)])
    block = calibrate_judge(_judgments(list(human)), labels, EQUIV, _examples(10), _outputs(10), Settings(n_boot=300))
    chance = 0.6 * 0.6 + 0.4 * 0.4
    low = binomtest(10, 10).proportion_ci(0.95, method="wilson").low
    assert block["kappa"]["value"] == 1.0
    assert block["kappa"]["ci"] == pytest.approx([(low - chance) / (1 - chance), 1.0])
    assert block["agreement"]["ci"] == pytest.approx([low, 1.0]) and block["agreement"]["method"].startswith("Wilson")
    assert not block["validated"]
    assert block["rated"] == {"id": [f"e{i}" for i in range(10)], "pair": ["student~teacher"] * 10, "human": human}


def test_a_kappa_without_an_interval_is_said_in_words_not_none():
    labels = _labels([{"id": "e0", "pair": "student~teacher", "annotator": "a", "verdict": "equivalent"}])
    block = calibrate_judge(_judgments(["equivalent", "equivalent"]), labels, EQUIV, _examples(2), _outputs(2),
                            Settings(n_boot=50))
    said = [w for w in block["warnings"] if "gate ignores" in w]
    assert said and "None" not in said[0] and "kappa has no interval (1 items rated by both" in said[0]
