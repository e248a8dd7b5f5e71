"""genval view filters on every slice the report names: derived difficulty too, and a slice value the run lacks is an error."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest
from rouge_score import rouge_scorer

from genval.cli import main
from genval.pipeline import run_pipeline
from tests.conftest import write_jsonl, write_yaml
from tests.test_view import app_for, serving

N = 30
WORDS = "the council approved a new budget for schools roads and parks this year".split()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A summarization run without a `difficulty` field: genval derives it from teacher~reference ROUGE-L."""
    folder = tmp_path_factory.mktemp("view_slices")
    examples, teacher = [], []
    for i in range(N):
        reference = " ".join(WORDS[: 6 + i % 7])
        examples.append({"id": f"x{i:02d}", "input": f"article {i}: {reference}", "reference": reference,
                         "domain": ("health", "news")[i % 2]})
        teacher.append({"id": f"x{i:02d}", "text": " ".join(WORDS[(i % 5): 6 + i % 7])})  # drops 0-4 first words
    write_jsonl(folder / "eval.jsonl", examples)
    write_jsonl(folder / "teacher.jsonl", teacher)
    write_jsonl(folder / "student.jsonl", teacher)
    config = write_yaml(folder / "run.yaml", {
        "name": "s", "task": "summarization", "eval_set": "eval.jsonl", "prompt": "Summarise: {input}",
        "metrics": [{"name": "rouge", "types": ["rougeL"]}], "slices": ["domain"],
        "models": {"teacher": {"backend": "replay", "path": "teacher.jsonl"},
                   "student": {"backend": "replay", "path": "student.jsonl"}},
        "analysis": {"bootstrap": 100}})
    return run_pipeline(config, out_dir=folder / "runs", quiet=True), examples, teacher


def _tertiles(examples, teacher) -> dict[str, set]:
    """Difficulty as docs/reports.md defines it, computed here: tertiles of the models' mean ROUGE-L (teacher and
    student give the same text) by pandas' average rank — equal scores share one — at pd.qcut's edges of 1..N; the
    best score's group easy, the worst's hard."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    quality = np.array([scorer.score(e["reference"], t["text"])["rougeL"].fmeasure for e, t in zip(examples, teacher)])
    ranks = pd.Series(quality).rank(method="average").to_numpy()
    codes = np.searchsorted(np.quantile(np.arange(1, N + 1), [1 / 3, 2 / 3]), ranks, side="left")
    codes[quality == quality.max()], codes[quality == quality.min()] = 2, 0
    levels = np.array(["hard", "medium", "easy"])[codes]
    return {level: {examples[k]["id"] for k in np.flatnonzero(levels == level)} for level in ("hard", "medium", "easy")}


def test_derived_difficulty_slices_of_the_report_can_be_browsed(run):
    folder, examples, teacher = run
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["slice_sources"]["difficulty"].startswith("derived")
    expected = _tertiles(examples, teacher)
    with serving(app_for(folder)) as base, httpx.Client(base_url=base, timeout=30) as api:
        assert sorted(api.get("/api/run").json()["slices"]["difficulty"]) == ["easy", "hard", "medium"]
        for level, ids in expected.items():
            response = api.get(f"/api/examples?slice=difficulty%3D{level}&limit=200")
            assert response.status_code == 200, response.text
            assert {item["id"] for item in response.json()["items"]} == ids
            assert summary["slices"]["difficulty"][level]["n"] == len(ids)


def test_a_slice_value_the_run_lacks_is_a_one_line_error_not_an_empty_page(run, capsys):
    folder = run[0]
    assert main(["view", str(folder), "--no-browser", "--filter", "slice=domain%3Dhelth"]) == 2
    err = capsys.readouterr().err
    assert "no example has domain='helth'" in err and "did you mean 'health'" in err and err.count("\n") == 1
    with serving(app_for(folder)) as base, httpx.Client(base_url=base, timeout=30) as api:
        response = api.get("/api/examples?slice=difficulty%3Dharder")
        assert response.status_code == 400 and "did you mean 'hard'" in response.json()["error"]
