"""Label metrics, calibration and KL, each against scikit-learn, scipy or a hand computation."""

import math

import numpy as np
import pytest
from scipy.stats import entropy

from genval.metrics import probabilities as pr


def test_ece_counts_confidence_of_exactly_one_in_the_top_bin():
    conf = np.array([1.0, 1.0, 0.95, 0.55, 0.05])
    hit = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    # bins of width 0.1: [0.9, 1.0] holds 1.0, 1.0, 0.95 → acc 2/3, conf 0.98333; [0.5, 0.6) holds 0.55 → acc 1;
    # [0, 0.1) holds 0.05 → acc 0.  ECE = 3/5·|2/3 − 0.98333| + 1/5·|1 − 0.55| + 1/5·|0 − 0.05|
    expected = 3 / 5 * abs(2 / 3 - (1 + 1 + 0.95) / 3) + 1 / 5 * 0.45 + 1 / 5 * 0.05
    assert pr.ece(conf, hit, 10) == pytest.approx(expected)
    table = pr.reliability(conf, hit, 10)
    assert [row["n"] for row in table] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 3]
    assert sum(row["n"] for row in table) == 5  # nothing dropped
    assert table[9]["accuracy"] == pytest.approx(2 / 3) and table[9]["hi"] == 1.0
    assert table[1]["confidence"] is None and table[1]["accuracy"] is None


def test_bin_edges_are_half_open_below_the_top():
    assert pr.bin_index(np.array([0.0, 0.1, 0.0999, 0.9, 1.0]), 10).tolist() == [0, 1, 0, 9, 9]


def test_kl_with_a_zero_student_probability_is_clipped_and_finite():
    teacher = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    student = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    kl = pr.kl_per_example(teacher, student)
    clipped = np.clip(student[0], pr.EPSILON, None)
    assert kl[0] == pytest.approx(entropy(teacher[0], clipped))  # scipy renormalises the clipped q, as genval does
    assert math.isfinite(kl[0]) and kl[0] > 6  # 0.5·ln(0.5/1e-6) dominates
    assert kl[1] == pytest.approx(0.0, abs=1e-12)


def test_kl_of_a_row_against_itself_is_never_negative():
    """Gibbs' inequality: KL >= 0. This row against itself summed to -1.1e-16 in float (clip renormalises q by a
    sum of 1 - 1 ulp), and a parity run's summary printed a KL of -5.7e-18."""
    p = np.array([[0.49536268097546354, 0.09287525439877223, 0.06051618296995935, 0.35124588165580484]])
    assert pr.kl_per_example(p, p)[0] == 0.0
    rows = np.random.default_rng(0).dirichlet([1, 1, 1, 1], size=500)
    assert (pr.kl_per_example(rows, rows) >= 0).all()


def test_kl_bands():
    assert [pr.kl_band(v) for v in (0.01, 0.05, 0.09, 0.3, 0.5, 2.0)] == [
        "near-identical", "very good", "very good", "acceptable", "weak", "weak"]
    assert pr.kl_band(None) is None


def test_brier_and_nll_by_hand():
    probs = np.array([[0.7, 0.3], [0.4, 0.6], [1.0, 0.0]])
    gold = np.array([0, 0, 1])
    # Brier: (0.09+0.09) + (0.36+0.36) + (1+1), over 3
    assert pr.brier(probs, gold) == pytest.approx((0.18 + 0.72 + 2.0) / 3)
    assert pr.nll(probs, gold) == pytest.approx(-(math.log(0.7) + math.log(0.4) + math.log(pr.EPSILON)) / 3)


def test_temperature_minimises_student_nll():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 4)) * 4  # over-confident student
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    gold = np.where(rng.random(200) < 0.6, probs.argmax(axis=1), rng.integers(0, 4, 200))
    t = pr.fit_temperature(probs, gold)
    best = pr.nll(pr.with_temperature(probs, t), gold)
    grid = [pr.nll(pr.with_temperature(probs, g), gold) for g in np.linspace(0.2, 10, 200)]
    assert t > 1  # over-confident: softening helps
    assert best <= min(grid) + 1e-6
    assert pr.with_temperature(probs, 1.0) == pytest.approx(pr.clip(probs))  # T = 1 changes nothing


def test_kl_and_ece_signatures_name_the_label_delimiter_and_each_role_source(tmp_path):
    from genval.config import parse_config
    from genval.metrics.classification import signatures

    config = parse_config({"name": "x", "task": "classification", "eval_set": "e.jsonl", "prompt": "{input}",
                           "labels": ["a", "b"], "generation": {"label_delimiter": "\n"},
                           "analysis": {"ece_bins": 15},
                           "models": {"teacher": {"backend": "hf", "model": "t"},
                                      "student": {"backend": "replay", "path": "s"}}}, tmp_path)
    signed = signatures(config)
    sources = 'teacher=hf(loglik,delimiter:"\\n"),student=replay'
    assert signed["kl"] == f"KL(teacher||student)|nats|eps:1e-06|label_probs:{sources}"
    assert signed["ece"] == f"ECE|bins:15|equal-width|label_probs:{sources}"
    default = parse_config({"name": "x", "task": "classification", "eval_set": "e.jsonl", "prompt": "{input}",
                            "labels": ["a", "b"], "models": {"teacher": {"backend": "vllm", "model": "t"},
                                                             "student": {"backend": "openai", "model": "s"}}},
                           tmp_path)
    assert signatures(default)["kl"].endswith('label_probs:teacher=vllm(loglik,delimiter:" "),'
                                              'student=openai(first-token-top-20)')
