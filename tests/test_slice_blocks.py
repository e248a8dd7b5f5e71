"""Every slice's block holds every number the run's block holds (docs/reports.md, "Slices"), checked on a judged run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genval.pipeline import run_pipeline
from tests.conftest import ROOT, write_jsonl, write_yaml

N = 24
RUN_ONLY = {"judge.calibration", "judge.validated", "judge.meaning", "judge.verdicts"}  # about the judge, not a group


def _numbers(block, prefix="") -> set[str]:
    """Gives the dotted path of every number ({value, ci, …}) in a block."""
    out = set()
    if isinstance(block, dict):
        if "value" in block and "ci" in block:
            out.add(prefix)
        for key, value in block.items():
            path = f"{prefix}.{key}" if prefix else key
            if not any(path == r or path.startswith(r + ".") for r in RUN_ONLY):
                out |= _numbers(value, path)
    return out


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slice_blocks")
    examples, teacher, student, judge = [], [], [], []
    for i in range(N):
        text = f"the council approved budget {i} for the schools"
        examples.append({"id": f"d{i:02d}", "input": f"article {i}: {text}", "reference": text,
                         "domain": ("health", "news")[i % 2]})
        teacher.append({"id": f"d{i:02d}", "text": text})
        same = i % 2 == 1 or i % 3 == 0
        student.append({"id": f"d{i:02d}", "text": text if same else f"budget {i}"})
        judge.append({"id": f"d{i:02d}|student~teacher|ab|0",
                      "text": f"VERDICT: {'equivalent' if same else 'not_equivalent'}"})
    for name, rows in (("eval", examples), ("teacher", teacher), ("student", student), ("judge", judge)):
        write_jsonl(folder / f"{name}.jsonl", rows)
    config = write_yaml(folder / "run.yaml", {
        "name": "j", "task": "summarization", "eval_set": "eval.jsonl", "prompt": "Summarise: {input}",
        "metrics": ["bleu", {"name": "rouge", "types": ["rougeL"]}], "slices": ["domain"],
        "models": {"teacher": {"backend": "replay", "path": "teacher.jsonl"},
                   "student": {"backend": "replay", "path": "student.jsonl"}},
        "judge": [{"config": str(ROOT / "judges" / "equivalence.yaml"),
                   "model": {"backend": "replay", "path": "judge.jsonl"}}],
        "analysis": {"bootstrap": 100}})
    folder = run_pipeline(config, out_dir=folder / "runs", quiet=True)
    return json.loads((folder / "summary.json").read_text()), student, examples


def test_every_slice_has_every_number_the_run_has(judged):
    summary = judged[0]
    keys = ("metrics", "fidelity", "classification", "judge", "generation")
    run = set().union(*(_numbers(summary[k], k) for k in keys))
    assert "judge.mean_score" in run
    for field, values in summary["slices"].items():
        for value, block in values.items():
            assert run - set().union(*(_numbers(block[k], k) for k in keys)) == set(), f"{field}={value}"


def test_a_slice_judge_mean_score_is_the_mean_of_its_verdicts(judged):
    summary, student, examples = judged
    same = np.array([s["text"] == e["reference"] for s, e in zip(student, examples)], dtype=float)
    domain = np.array([e["domain"] for e in examples])
    for value in ("health", "news"):
        block = summary["slices"]["domain"][value]["judge"]
        assert block["mean_score"]["value"] == pytest.approx(same[domain == value].mean())
        assert block["mean_score"]["n"] == int((domain == value).sum())
