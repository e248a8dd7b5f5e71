"""Classification figures in summary.json, from the score stage's label rows and the outputs' labels and probabilities.

Each number is checked against scikit-learn, scipy or a hand computation (these checks read
classification.json while the score stage wrote it).
"""

import numpy as np
import pytest
from scipy.stats import entropy, kendalltau, spearmanr
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from genval.analysis.stage import build_summary
from genval.config import load_config, parse_config
from genval.metrics import probabilities as pr
from genval.pipeline import prepare, run_stages
from genval.progress import Progress
from tests.conftest import write_jsonl, write_yaml
from tests.test_score_stage import GOLD, LABELS, S_PROBS, STUDENT, T_PROBS, TEACHER, make_classification_run


def _summary(run):
    return build_summary(run, parse_config(run.manifest["config"], run.root))


@pytest.fixture
def classification_run(tmp_path):
    return make_classification_run(tmp_path)


def _ece(probs, gold, bins=10):
    """An independent ECE: explicit bin bounds, the last one closed."""
    total, n = 0.0, len(gold)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        rows = [i for i in range(n) if lo <= max(probs[i]) < hi or (b == bins - 1 and max(probs[i]) == 1.0)]
        if rows:
            acc = np.mean([int(np.argmax(probs[i])) == LABELS.index(gold[i]) for i in rows])
            conf = np.mean([max(probs[i]) for i in rows])
            total += len(rows) / n * abs(acc - conf)
    return total


def test_classification_figures_match_independent_numbers(classification_run):
    data = _summary(classification_run)
    overall = data["classification"]
    assert overall["labels"] == LABELS and overall["label_source"] == "label" and data["eval_set"]["n"] == 12
    for role, pred in (("teacher", TEACHER), ("student", STUDENT)):
        assert overall[role]["accuracy"]["value"] == pytest.approx(accuracy_score(GOLD, pred))
        p, r, f, _ = precision_recall_fscore_support(GOLD, pred, labels=LABELS, average="weighted", zero_division=0)
        assert (overall[role]["precision"], overall[role]["recall"], overall[role]["f1"]) == pytest.approx((p, r, f))
        assert overall["confusion"][role] == confusion_matrix(GOLD, pred, labels=LABELS).tolist()
    # "neu" is never gold, only predicted: a column of the confusion matrix, never a row
    assert sum(overall["confusion"]["student"][2]) == 0 and overall["confusion"]["student"][0][2] == 1
    assert overall["ece"]["teacher"]["value"] == pytest.approx(_ece(T_PROBS, GOLD))
    assert overall["ece"]["student"]["value"] == pytest.approx(_ece(S_PROBS, GOLD))
    lo, hi = overall["ece"]["student"]["ci"]
    assert lo <= overall["ece"]["student"]["value"] <= hi
    retention = accuracy_score(GOLD, STUDENT) / accuracy_score(GOLD, TEACHER)
    assert overall["accuracy_retention"]["value"] == pytest.approx(retention)
    assert overall["agreement_rate"]["value"] == pytest.approx(np.mean([s == t for s, t in zip(STUDENT, TEACHER)]))
    kl = [entropy(t, np.clip(s, 1e-6, None)) for t, s in zip(T_PROBS, S_PROBS)]
    assert overall["kl_teacher_student"]["value"] == pytest.approx(np.mean(kl))
    assert overall["kl_band"] == pr.kl_band(float(np.mean(kl)))
    t_conf, s_conf = [max(p) for p in T_PROBS], [max(p) for p in S_PROBS]
    assert overall["spearman"] == pytest.approx(spearmanr(t_conf, s_conf).statistic)
    assert overall["kendall"] == pytest.approx(kendalltau(t_conf, s_conf).statistic)
    t_ok = np.array(TEACHER) == np.array(GOLD)
    s_ok = np.array(STUDENT) == np.array(GOLD)
    assert overall["errors"]["only_student_wrong"] == pytest.approx(np.mean(t_ok & ~s_ok))
    assert overall["errors"]["both_correct"] == pytest.approx(np.mean(t_ok & s_ok))
    assert sum(overall["errors"].values()) == pytest.approx(1.0)
    assert any("student alone is wrong" in w for w in overall["warnings"])  # 2/12 > 5 %
    assert "rare_class" not in data["slices"]  # "neu" is rare (share 0 < 0.1) but no example is one
    assert sum(row["n"] for row in overall["reliability"]["student"]) == 12
    temp = overall["temperature"]
    assert temp["nll_after"] <= temp["nll_before"] + 1e-9
    assert {p["temperature"] for p in overall["sweep"]} >= {0.5, 1.0, 2.0}
    assert data["slices"]["kind"]["x"]["n"] == 6 and data["slices"]["kind"]["y"]["n"] == 6
    x_rows = [i for i in range(12) if i % 2]
    x = data["slices"]["kind"]["x"]["classification"]
    assert x["student"]["accuracy"]["value"] == pytest.approx(
        accuracy_score([GOLD[i] for i in x_rows], [STUDENT[i] for i in x_rows]))
    assert x["confusion"]["teacher"] == confusion_matrix([GOLD[i] for i in x_rows], [TEACHER[i] for i in x_rows],
                                                         labels=LABELS).tolist()
    signed = overall["signatures"]
    assert signed == {"kl": "KL(teacher||student)|nats|eps:1e-06|label_probs:teacher=replay,student=replay",
                      "ece": "ECE|bins:10|equal-width|label_probs:teacher=replay,student=replay"}


def test_extraction_gold_is_the_reference_objects_label_field(tmp_path):
    refs = [{"category": "a"}, {"category": "b"}, {"category": "a"}]
    write_jsonl(tmp_path / "eval.jsonl", [{"id": f"e{i}", "input": "x", "reference": r} for i, r in enumerate(refs)])
    write_jsonl(tmp_path / "t.jsonl", [{"id": f"e{i}", "text": f'{{"category": "{r["category"]}"}}'}
                                       for i, r in enumerate(refs)])
    write_jsonl(tmp_path / "s.jsonl", [{"id": "e0", "text": '{"category": "a"}'},
                                       {"id": "e1", "text": '{"category": "b"}'}, {"id": "e2", "text": "no idea"}])
    config = {"name": "ext", "task": "extraction", "eval_set": "eval.jsonl", "prompt": "{input}",
              "label_field": "category", "labels": ["a", "b"], "metrics": ["fields"],
              "models": {"teacher": {"backend": "replay", "path": "t.jsonl"},
                         "student": {"backend": "replay", "path": "s.jsonl"}}}
    cfg = load_config(write_yaml(tmp_path / "run.yaml", config))
    run = prepare(cfg, tmp_path / "runs")
    run_stages(run, cfg, Progress(quiet=True), only=["generate", "score"])
    cls = build_summary(run, cfg)["classification"]
    assert cls["label_source"] == "field:category"
    # student labels: a (right), b (right), none (unreadable, wrong)
    assert cls["student"]["accuracy"]["value"] == pytest.approx(2 / 3)
    assert cls["teacher"]["accuracy"]["value"] == pytest.approx(1.0)
    assert cls["confusion"]["student"] == [[1, 0], [0, 1]]  # the unreadable output predicts no label of the set


def test_a_run_with_no_gold_label_says_so_instead_of_failing(tmp_path):
    write_jsonl(tmp_path / "eval.jsonl", [{"id": f"e{i}", "input": f"text {i}"} for i in range(4)])
    for role in ("t", "s"):
        write_jsonl(tmp_path / f"{role}.jsonl", [{"id": f"e{i}", "text": "a"} for i in range(4)])
    config = {"name": "x", "task": "classification", "eval_set": "eval.jsonl", "prompt": "{input}",
              "labels": ["a", "b"], "models": {"teacher": {"backend": "replay", "path": "t.jsonl"},
                                               "student": {"backend": "replay", "path": "s.jsonl"}}}
    cfg = load_config(write_yaml(tmp_path / "run.yaml", config))
    run = prepare(cfg, tmp_path / "runs")
    run_stages(run, cfg, Progress(quiet=True), only=["generate", "score"])
    cls = build_summary(run, cfg)["classification"]
    assert cls["student"]["accuracy"]["value"] is None and cls["agreement_rate"]["n"] == 0
    assert any("no example has a gold label" in w for w in cls["warnings"])
    assert cls["temperature"] is None and cls["confusion"] == {"teacher": [], "student": []}
