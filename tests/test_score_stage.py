"""The score stage end to end: a classification run and an extraction run, numbers checked independently."""

import json
import math

from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import entropy

from genval.config import load_config
from genval.metrics.corpus import corpus_numbers
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
    return make_classification_run(tmp_path)


def make_classification_run(tmp_path):
    """Writes and runs (generate, score) a 12-example classification run with label probabilities."""
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
    # student labels: a (right), b from the schema-breaking output (right), none (unreadable, wrong)
    assert [value("label_correct", "student~reference", f"e{i}")["value"] for i in range(3)] == [1, 1, 0]


def test_no_label_rows_for_summaries(small_run, tmp_path):
    cfg = load_config(small_run)
    run = prepare(cfg, tmp_path / "runs")
    run_stages(run, cfg, Progress(quiet=True), only=["generate", "score"])
    assert not set(run.read_table("scores")["metric"]) & {"label_correct", "label_agree", "kl"}
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
