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


def test_the_rating_page_reads_ratings_through_the_scale_and_agrees_with_calibration_json(tmp_path):
    # (No capsys here: uvicorn's logging setup closes every handler ever made, absl's among them — made when
    # rouge_score was imported — and absl closes its stream unless it is the current sys.stderr.)
    # Two annotators' CSV sheets, one writing `Equivalent`, the other `equivalent` (README allows case and
    # spacing variants): the page once said "agreement 0.0 %, κ −0.000" where calibration.json said 0.83, κ 0.66.
    import httpx
    from sklearn.metrics import cohen_kappa_score

    from tests.test_view import app_for, serving

    a_says = ["equivalent"] * 7 + ["not_equivalent"] * 5
    b_says = ["equivalent"] * 6 + ["not_equivalent"] * 5 + ["equivalent"]
    written = {"equivalent": "Equivalent", "not_equivalent": "Not Equivalent"}
    config = _judged_run(tmp_path, lambda ids: [], VERDICTS)
    (tmp_path / "labels.jsonl").unlink()
    ids = [f"e{i:02d}" for i in range(12)]
    (tmp_path / "a.csv").write_text("id,pair,annotator,verdict\n" + "".join(
        f"{i},student~teacher,ann_a,{written[v]}\n" for i, v in zip(ids, a_says)))
    (tmp_path / "b.csv").write_text("id,pair,annotator,verdict\n" + "".join(
        f"{i},student~teacher,ann_b,{v}\n" for i, v in zip(ids, b_says)))
    data = __import__("yaml").safe_load(config.read_text())
    data["human_labels"] = "a.csv"
    write_yaml(config, data)
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    run = tmp_path / "runs" / "fh"
    assert main(["calibrate", str(run), "--labels", str(tmp_path / "b.csv")]) == 0
    people = json.loads((run / "calibration.json").read_text())["judges"]["equivalence"]["annotators"]
    with serving(app_for(run, rate=True, annotator="ann_c", n=4)) as base, httpx.Client(base_url=base, timeout=30) as api:
        state = api.get("/api/rate/next?annotator=ann_c").json()
    (both,) = state["agreement"]
    assert both["annotators"] == ["ann_a", "ann_b"] and both["n"] == 12
    assert both["agreement"] == pytest.approx(10 / 12) == people["pairwise_agreement_mean"]  # e06 and e11 differ
    assert both["kappa"] == pytest.approx(cohen_kappa_score(a_says, b_says)) == people["pairwise_kappa_mean"]
    # The guideline is the judge file's words for people: no prompt template, no placeholder, no role name.
    from genval.judging.definition import load_definition

    shown = state["guideline"]
    assert shown.startswith(load_definition(ROOT / "judges" / "equivalence.yaml").guideline.strip())
    assert "Scale — verdict: equivalent | not_equivalent" in shown
    assert "{" not in shown and "teacher" not in shown and "Output 2" not in shown and "VERDICT" not in shown


def test_a_judge_without_a_guideline_shows_its_description_and_scale(tmp_path):
    from genval.judging.definition import load_definition
    from genval.view.rating import guideline

    text = (ROOT / "judges" / "equivalence.yaml").read_text()
    bare = text[:text.index("guideline:")] + text[text.index("mode:"):]
    (tmp_path / "j.yaml").write_text(bare)
    definition = load_definition(tmp_path / "j.yaml")
    assert guideline(definition) == f"{definition.description}\n\nScale — verdict: equivalent | not_equivalent"
    # A placeholder in a guideline would reach people as written: refused, naming the key.
    (tmp_path / "k.yaml").write_text(bare.replace("mode:", "guideline: Compare {candidate} with {other}.\nmode:"))
    with pytest.raises(Exception, match=r"k\.yaml:\d+: 'guideline': the guideline is for people"):
        load_definition(tmp_path / "k.yaml")


def test_the_same_rating_written_in_two_cases_in_two_files_is_one_rating(tmp_path):
    from genval.judging.labels import read_sources

    first = write_jsonl(tmp_path / "a.jsonl", [{"id": "e1", "pair": "student~teacher", "annotator": "p",
                                                "verdict": "Equivalent"}])
    second = write_jsonl(tmp_path / "b.jsonl", [{"id": "e1", "pair": "student~teacher", "annotator": "p",
                                                 "verdict": "equivalent"}])
    table = read_sources([first, second])  # once: "rated differently in a.jsonl; keep one of the two ratings"
    assert len(table) == 1 and table["source"].tolist() == ["a.jsonl"]
