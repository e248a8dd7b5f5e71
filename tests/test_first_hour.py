"""What a new user meets in the first hour (issue 19): runs without references, the rating page against calibration.json."""

from __future__ import annotations

import json

import pytest
from scipy import stats as sps

from genval.cli import main
from tests.conftest import ROOT, write_jsonl, write_yaml


def _judged_run(tmp_path, labels, verdicts, judge="equivalence.yaml", reference=False):
    """A generation run of 12 examples, replayed judge, human labels; gives the config path."""
    ids = [f"e{i:02d}" for i in range(len(verdicts))]
    write_jsonl(tmp_path / "eval.jsonl", [{"id": i, "input": f"text {i}", **({"reference": f"ref {i}"} if reference else {})}
                                          for i in ids])
    write_jsonl(tmp_path / "teacher.jsonl", [{"id": i, "text": "the teacher says this"} for i in ids])
    write_jsonl(tmp_path / "student.jsonl", [{"id": i, "text": "s" * (5 + 3 * k)} for k, i in enumerate(ids)])
    write_jsonl(tmp_path / "judge.jsonl", [{"id": f"{i}|student~teacher|ab|0", "text": f"VERDICT: {v}"}
                                           for i, v in zip(ids, verdicts)])
    write_jsonl(tmp_path / "labels.jsonl", labels(ids))
    return write_yaml(tmp_path / "run.yaml", {
        "name": "fh", "task": "generation", "eval_set": "eval.jsonl", "prompt": "{input}", "metrics": ["bleu"],
        "models": {"teacher": {"backend": "replay", "path": "teacher.jsonl"},
                   "student": {"backend": "replay", "path": "student.jsonl"}},
        "judge": [{"config": str(ROOT / "judges" / judge), "model": {"backend": "replay", "path": "judge.jsonl"}}],
        "human_labels": "labels.jsonl", "analysis": {"bootstrap": 200}})


VERDICTS = ["equivalent", "not_equivalent", "equivalent", "equivalent", "not_equivalent", "equivalent",
            "not_equivalent", "not_equivalent", "equivalent", "equivalent", "not_equivalent", "equivalent"]


def test_a_run_with_a_judge_and_labels_but_no_references_calibrates(tmp_path, capsys):
    # Once exit 70: bias.py took the reference column (NaN when no record has one) for text.
    humans = ["equivalent"] * 6 + ["not_equivalent"] * 6
    config = _judged_run(tmp_path, lambda ids: [{"id": i, "pair": "student~teacher", "annotator": "a", "verdict": h}
                                                for i, h in zip(ids, humans)], VERDICTS)
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    cal = json.loads((tmp_path / "runs" / "fh" / "calibration.json").read_text())["judges"]["equivalence"]
    assert cal["n"] == 12
    # Length bias, by hand: the judge's verdict (1 = equivalent) against the length gap student − teacher.
    gap = [(5 + 3 * k) - len("the teacher says this") for k in range(12)]
    judge = [1.0 if v == "equivalent" else 0.0 for v in VERDICTS]
    human = [1.0 if v == "equivalent" else 0.0 for v in humans]
    length = cal["bias"]["length"]
    assert length["judge_vs_length_gap_spearman"] == pytest.approx(sps.spearmanr(judge, gap)[0])
    assert length["human_vs_length_gap_spearman"] == pytest.approx(sps.spearmanr(human, gap)[0])
