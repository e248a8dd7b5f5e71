"""The score stage end to end: a classification run and an extraction run, numbers checked independently."""

import json
import math

import numpy as np
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import entropy, kendalltau, spearmanr
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from genval.config import load_config
from genval.metrics.corpus import corpus_numbers
from genval.metrics import probabilities as pr
from genval.pipeline import prepare, run_stages
from genval.progress import Progress
from tests.conftest import write_jsonl, write_yaml

LABELS = ["pos", "neg", "neu"]
GOLD = ["pos", "pos", "neg", "neg", "pos", "neg", "pos", "neg", "pos", "pos", "neg", "pos"]
TEACHER = ["pos", "pos", "neg", "neg", "pos", "neg", "pos", "pos", "pos", "pos", "neg", "neg"]
STUDENT_TEXT = ["Pos.", " pos", "neg", "pos", "pos", "NEG", "neu", "pos", "hmm, not sure", "pos", "neg", "neg"]
T_PROBS = [[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.85, 0.05], [0.2, 0.7, 0.1], [1.0, 0.0, 0.0], [0.1, 0.9, 0.0],
           [0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.95, 0.05, 0.0], [0.8, 0.15, 0.05], [0.05, 0.9, 0.05], [0.3, 0.6, 0.1]]
S_PROBS = [[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.6, 0.2], [0.5, 0.4, 0.1], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0],
           [0.2, 0.3, 0.5], [0.55, 0.4, 0.05], [0.3, 0.65, 0.05], [0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.45, 0.5, 0.05]]
STUDENT = ["pos", "pos", "neg", "pos", "pos", "neg", "neu", "pos", "neg", "pos", "neg", "neg"]  # "hmm…" → argmax


def _run(tmp_path, config):
    path = write_yaml(tmp_path / "run.yaml", config)
    cfg = load_config(path)
    run = prepare(cfg, tmp_path / "runs")
    run_stages(run, cfg, Progress(quiet=True), only=["generate", "score"])
    return run


@pytest.fixture
def classification_run(tmp_path):
    kinds = ["x" if i % 2 else "y" for i in range(len(GOLD))]
    write_jsonl(tmp_path / "eval.jsonl", [{"id": f"e{i}", "input": f"text {i}", "label": g, "slices": {"kind": k}}
                                          for i, (g, k) in enumerate(zip(GOLD, kinds))])
    write_jsonl(tmp_path / "t.jsonl", [{"id": f"e{i}", "text": t, "label_probs": dict(zip(LABELS, p))}
                                       for i, (t, p) in enumerate(zip(TEACHER, T_PROBS))])
    write_jsonl(tmp_path / "s.jsonl", [{"id": f"e{i}", "text": t, "label_probs": dict(zip(LABELS, p))}
                                       for i, (t, p) in enumerate(zip(STUDENT_TEXT, S_PROBS))])
    config = {"name": "cls", "task": "classification", "eval_set": "eval.jsonl", "prompt": "Label: {input}",
              "labels": LABELS, "slices": ["kind"], "analysis": {"bootstrap": 200, "rare_class_share": 0.1},
              "models": {"teacher": {"backend": "replay", "path": "t.jsonl"},
                         "student": {"backend": "replay", "path": "s.jsonl"}}}
    return _run(tmp_path, config)


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


def test_classification_json_matches_independent_numbers(classification_run):
    data = classification_run.read_json("classification.json")
    overall = data["overall"]
    assert data["labels"] == LABELS and data["label_source"] == "label" and overall["n"] == 12
    for role, pred in (("teacher", TEACHER), ("student", STUDENT)):
        assert overall[role]["accuracy"]["value"] == pytest.approx(accuracy_score(GOLD, pred))
        p, r, f, _ = precision_recall_fscore_support(GOLD, pred, labels=LABELS, average="weighted", zero_division=0)
        assert (overall[role]["precision"], overall[role]["recall"], overall[role]["f1"]) == pytest.approx((p, r, f))
        assert overall["confusion"][role] == confusion_matrix(GOLD, pred, labels=LABELS).tolist()
    # "neu" is never gold, only predicted: a column of the confusion matrix, never a row
    assert sum(overall["confusion"]["student"][2]) == 0 and overall["confusion"]["student"][0][2] == 1
    assert overall["teacher"]["ece"]["value"] == pytest.approx(_ece(T_PROBS, GOLD))
    assert overall["student"]["ece"]["value"] == pytest.approx(_ece(S_PROBS, GOLD))
    lo, hi = overall["student"]["ece"]["ci"]
    assert lo <= overall["student"]["ece"]["value"] <= hi
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
    assert data["rare_classes"] == ["neu"]  # share 0 < 0.1
    assert sum(row["n"] for row in data["reliability"]["student"]) == 12
    temp = data["temperature"]
    assert temp["nll_after"] <= temp["nll_before"] + 1e-9
    assert {p["temperature"] for p in data["sweep"]} >= {0.5, 1.0, 2.0}
    assert data["slices"]["kind"]["x"]["n"] == 6 and data["slices"]["kind"]["y"]["n"] == 6
    x_rows = [i for i in range(12) if i % 2]
    assert data["slices"]["kind"]["x"]["student"]["accuracy"]["value"] == pytest.approx(
        accuracy_score([GOLD[i] for i in x_rows], [STUDENT[i] for i in x_rows]))


def test_per_example_rows_in_scores(classification_run):
    scores = classification_run.read_table("scores")
    correct = scores[(scores.metric == "label_correct") & (scores.pair == "student~reference")].set_index("id")
    assert [correct.loc[f"e{i}", "value"] for i in range(12)] == [float(s == g) for s, g in zip(STUDENT, GOLD)]
    agree = scores[scores.metric == "label_agree"].set_index("id")
    assert agree.loc["e6", "value"] == 0 and agree.loc["e0", "value"] == 1
    kl = scores[scores.metric == "kl"].set_index("id")
    assert kl.loc["e3", "value"] == pytest.approx(entropy(T_PROBS[3], S_PROBS[3]))
    assert set(scores.pair[scores.metric == "kl"]) == {"student~teacher"}
    assert set(kl.detail) == {"KL(teacher||student)|nats|eps:1e-06|label_probs:teacher=replay,student=replay"}
    assert set(kl.signature) == set(kl.detail) and kl.stats.isna().all()  # KL has no corpus number to add up


def test_classification_json_names_its_signatures(classification_run):
    kl = classification_run.read_table("scores").query("metric == 'kl'")
    signed = classification_run.read_json("classification.json")["signatures"]
    assert signed == {"kl": kl.detail.iloc[0], "ece": "ECE|bins:10|equal-width|label_probs:teacher=replay,student=replay"}


SCHEMA = {"type": "object", "required": ["category", "meta"],
          "properties": {"category": {"enum": ["a", "b"]},
                         "meta": {"type": "object", "properties": {"n": {"type": "integer"}}}}}


def _extraction_run(tmp_path):
    refs = [{"category": "a", "meta": {"n": 1}}, {"category": "b", "meta": {"n": 2}}, {"category": "a", "meta": {"n": 3}}]
    write_jsonl(tmp_path / "eval.jsonl", [{"id": f"e{i}", "input": "x", "reference": r} for i, r in enumerate(refs)])
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    write_jsonl(tmp_path / "t.jsonl", [{"id": f"e{i}", "text": json.dumps(r)} for i, r in enumerate(refs)])
    student = [json.dumps({"category": "a", "meta": {"n": 1}}),
               "```json\n" + json.dumps({"category": "b", "meta": {"n": "two"}}) + "\n```",  # breaks schema at $.meta.n
               "no idea"]
    write_jsonl(tmp_path / "s.jsonl", [{"id": f"e{i}", "text": t} for i, t in enumerate(student)])
    config = {"name": "ext", "task": "extraction", "eval_set": "eval.jsonl", "prompt": "{input}", "schema": "schema.json",
              "label_field": "category", "labels": ["a", "b"],
              "metrics": ["json_valid", "schema_valid", "fields", "bleu"],
              "models": {"teacher": {"backend": "replay", "path": "t.jsonl"},
                         "student": {"backend": "replay", "path": "s.jsonl"}}}
    return _run(tmp_path, config)


def test_extraction_run_scores_format_fields_and_label_field(tmp_path):
    run = _extraction_run(tmp_path)
    scores = run.read_table("scores")

    def value(metric, pair, id_):
        row = scores[(scores.metric == metric) & (scores.pair == pair) & (scores.id == id_)]
        return row.iloc[0]

    assert value("json_valid", "student", "e1")["value"] == 1 and value("json_fenced", "student", "e1")["value"] == 1
    assert value("json_valid", "student", "e2")["value"] == 0
    bad = value("schema_valid", "student", "e1")
    assert bad["value"] == 0 and bad["detail"].startswith("$.meta.n:")
    # the schema-breaking output's readable field still scores
    assert value("field:category", "student~teacher", "e1")["value"] == 1
    assert value("field:meta", "student~teacher", "e1")["value"] == 0
    # "no idea" holds no object: scored as an empty one — category and meta both missed
    assert value("fields_accuracy", "student~reference", "e2")["value"] == 0
    assert value("fields_f1", "student~reference", "e2")["value"] == 0
    corpus = corpus_numbers(run.iter_table("scores", batch_size=5))
    assert corpus["student~teacher"]["fields"]["unreadable"] == 1
    assert set(corpus) == {"student~teacher", "student~reference", "teacher~reference"}
    assert corpus["teacher~reference"]["bleu"] == pytest.approx(100.0)
    assert set(run.read_json("metrics.json")) == {"settings"}  # settings only: corpus numbers are a reduce over scores
    # label_field: each role's label read from its JSON, per example
    correct = scores.query("metric == 'label_correct'").set_index(["pair", "id"])["value"]
    assert [correct[("student~reference", f"e{i}")] for i in range(3)] == [1, 1, 0]
    assert [correct[("teacher~reference", f"e{i}")] for i in range(3)] == [1, 1, 1]


def test_extraction_label_field_classification_json(tmp_path):
    run = _extraction_run(tmp_path)
    data = run.read_json("classification.json")
    assert data["label_source"] == "field:category"
    # student labels: a (right), b from the schema-breaking output (right), none (unreadable, wrong)
    assert data["overall"]["student"]["accuracy"]["value"] == pytest.approx(2 / 3)
    assert data["overall"]["teacher"]["accuracy"]["value"] == pytest.approx(1.0)


def test_no_classification_json_for_summaries(small_run, tmp_path):
    cfg = load_config(small_run)
    run = prepare(cfg, tmp_path / "runs")
    run_stages(run, cfg, Progress(quiet=True), only=["generate", "score"])
    assert not run.has("classification.json")
    assert math.isclose(run.read_table("scores").query("metric == 'bleu'").shape[0], 12)


def test_score_and_metrics_commands(small_run, tmp_path, capsys):
    from genval.cli import main

    assert main(["score", str(small_run), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    run_dir = Path(capsys.readouterr().out.strip())
    scores = pd.read_parquet(run_dir / "scores.parquet")
    assert set(scores.pair) == {"student~teacher", "student~reference", "teacher~reference"}
    assert not (run_dir / "summary.json").exists()  # `score` stops after scoring
    assert main(["metrics"]) == 0
    listing = capsys.readouterr().out
    assert "bertscore" in listing and "num_layers" in listing and "schema_valid" in listing
