"""Every slice holds every number the run has, honestly: undefined numbers say why, small slices are never certain,
slices rank by one number, and the gate reports the Holm family it used."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from genval.analysis.gate import evaluate
from genval.analysis.stage import build_summary
from genval.config import GateConfig
from tests.test_aggregate_support import make_config, make_run


def _gate(summary, rules):
    return evaluate(GateConfig.model_validate({"rules": rules}), summary, None)


@pytest.fixture
def hard(tmp_path):
    """90 examples: region a and b the teacher mostly right, region c (30) the teacher never right; a judge on all."""
    teacher = [1] * 27 + [0] * 3 + [1] * 28 + [0] * 2 + [0] * 30
    student = [1] * 25 + [0] * 5 + [1] * 20 + [0] * 10 + [1] * 3 + [0] * 27
    verdicts = ["equivalent" if i % 4 else "not_equivalent" for i in range(90)]
    run = make_run(tmp_path / "run", teacher, student, region=["a"] * 30 + ["b"] * 30 + ["c"] * 30,
                   verdicts=verdicts, rouge_student=list(np.linspace(0.2, 0.8, 90)),
                   rouge_teacher=list(np.linspace(0.3, 0.9, 90)))
    return build_summary(run, make_config(tmp_path))


def test_a_slice_where_the_teacher_is_never_right_has_no_retention_and_says_why(hard):
    c = hard["slices"]["region"]["c"]
    retention = c["classification"]["accuracy_retention"]
    assert retention["value"] is None and retention["n"] == 30
    assert "right on none of these 30 examples" in retention["note"]
    # It is not ranked by the judge's rate instead: every slice is ranked by the run's headline, accuracy retention.
    assert c["headline"]["metric"] == "accuracy_retention" and c["headline"]["value"] is None
    assert c["rank"] is None and "right on none" in c["rank_note"]
    ranking = hard["slice_ranking"]["region"]
    assert ranking["by"] == "accuracy_retention" and ranking["ranked"] == ["b", "a"]   # b: 20/28 < a: 25/27
    assert ranking["unranked"] == [{"slice": "c", "reason": c["rank_note"]}]
    assert [hard["slices"]["region"][v]["rank"] for v in ("a", "b")] == [2, 1]


def test_every_slice_holds_task_retention_and_each_reference_metrics_retention(hard):
    rouge_s, rouge_t = np.linspace(0.2, 0.8, 90), np.linspace(0.3, 0.9, 90)
    for k, value in enumerate("abc"):
        block = hard["slices"]["region"][value]
        part = slice(30 * k, 30 * (k + 1))
        task = block["fidelity"]["task_retention"]
        assert task["metric"] == "rougeL" and task["n"] == 30
        assert task["value"] == pytest.approx(rouge_s[part].mean() / rouge_t[part].mean())
        assert task["ci"][0] < task["value"] < task["ci"][1]
        assert block["fidelity"]["retention"]["rougeL"]["value"] == pytest.approx(task["value"])
    # A gate rule names them on any slice.
    result = _gate(hard, ["task_retention >= 0.5 on region=a", "rougeL_retention lower >= 0.5 on region=c",
                          "accuracy_retention >= 0.5 on region=c"])
    task_a, rouge_c, undefined = result["rules"]
    assert task_a["passed"] and task_a["value"] == pytest.approx(rouge_s[:30].mean() / rouge_t[:30].mean())
    assert rouge_c["value"] == pytest.approx(rouge_s[60:].mean() / rouge_t[60:].mean())
    assert not undefined["passed"] and "right on none" in undefined["reason"]


def test_an_eight_example_slice_right_every_time_is_not_certain(tmp_path):
    """Student and teacher right on all 8 examples of region b: the intervals are not [1, 1], the MDE not 0."""
    teacher = [1] * 40 + [1] * 8
    student = [1] * 30 + [0] * 10 + [1] * 8
    run = make_run(tmp_path / "run", teacher, student, region=["a"] * 40 + ["b"] * 8, json_valid=[1] * 48)
    summary = build_summary(run, make_config(tmp_path))
    b = summary["slices"]["region"]["b"]
    accuracy = b["classification"]["student"]["accuracy"]
    wilson = binomtest(8, 8).proportion_ci(0.95, method="wilson")
    assert accuracy["ci"] == pytest.approx([wilson.low, 1.0]) and accuracy["method"].startswith("Wilson")
    retention = b["classification"]["accuracy_retention"]
    assert retention["value"] == 1.0 and retention["ci"] == pytest.approx([wilson.low, 1 / wilson.low])
    assert b["metrics"]["student"]["json_valid"]["ci"][0] == pytest.approx(wilson.low)
    assert b["too_small_to_rank"] and b["headline"]["mde"] > 0.2
    # The gate reads the same interval: its p-value is no longer 0, and the interval's lower end is Wilson's.
    result = _gate(summary, ["accuracy_retention lower >= 0.9 on region=b"])
    test = result["rules"][0]["tests"][0]
    assert test["p"] > 0.025 and not result["passed"]


def test_holm_family_is_the_tests_the_correction_used_and_says_what_it_left_out(hard):
    result = _gate(hard, ["accuracy_retention lower >= 0.3 on region=*", "accuracy_retention >= 0.5"])
    # region=c has no retention, so no interval and no p-value: three slice tests, two in the family.
    assert [r["slice"] for r in result["rules"]] == ["region=a", "region=b", "region=c", None]
    assert result["holm_family"] == 2
    assert sum(t.get("p_holm") is not None for r in result["rules"] for t in r["tests"]) == 2
    left = result["holm_left_out"]
    assert left == [{"rule": "accuracy_retention lower >= 0.3 on region=c", "kind": "lower",
                     "reason": "no interval for the lower test: it fails on its own"}]
    assert not result["rules"][2]["passed"] and result["rules"][0]["passed"]


def _strings(found):
    if isinstance(found, dict):
        for value in found.values():
            yield from _strings(value)
    elif isinstance(found, list):
        for value in found:
            yield from _strings(value)
    elif isinstance(found, str):
        yield found


def test_no_message_prints_pythons_none(hard):
    """Every note, reason, caveat and message of a summary with undefined numbers and an unchecked judge."""
    from genval.analysis.decision import decide

    result = _gate(hard, ["accuracy_retention lower >= 0.3 on region=*", "equivalence_rate >= 0.5",
                          "accuracy_retention lower >= 0.5 on region=c"])
    said = [*_strings(hard), *_strings(result), *_strings(decide({**hard, "gate": result}))]
    assert any("right on none" in s for s in said) and any("judge not validated" in s for s in said)
    assert not [s for s in said if "None" in s]


def test_a_small_slice_where_the_teacher_is_never_right_is_unranked_for_that_reason(tmp_path):
    # More examples would make it rankable if it were only small; they would not define its retention.
    teacher = [1] * 28 + [0] * 2 + [1] * 27 + [0] * 3 + [0] * 10
    student = [1] * 26 + [0] * 4 + [1] * 25 + [0] * 5 + [1] * 2 + [0] * 8
    run = make_run(tmp_path / "run", teacher, student, region=["a"] * 30 + ["b"] * 30 + ["c"] * 10)
    c = build_summary(run, make_config(tmp_path))["slices"]["region"]["c"]
    assert c["n"] == 10 and c["too_small_to_rank"] and c["rank"] is None
    assert c["rank_note"].startswith("no accuracy_retention on this slice") and "right on none" in c["rank_note"]


def test_difficulty_chosen_by_the_teachers_correctness_is_not_ranked_by_a_retention(tmp_path):
    """Derived difficulty from label_correct: 'easy' is where the teacher is right, so accuracy retention there is at
    most 1 and 'hard' is 0 / 0, whatever the student does — the weakest slice by construction. Its slices keep their
    numbers, unranked with the reason, and stay out of the weakest slices; configured slices rank as before."""
    from genval.report.decision import slice_rows, weakest
    from genval.summary import parse

    teacher = [1] * 40 + [0] * 20
    student = [1] * 36 + [0] * 4 + [1] * 5 + [0] * 15
    region = ["a", "b"] * 30
    run = make_run(tmp_path / "run", teacher, student, region=region)
    summary = build_summary(run, make_config(tmp_path, analysis={"bootstrap": 200, "min_slice_n": 10}))
    assert summary["slice_sources"]["difficulty"].startswith("derived: teacher~reference label_correct")
    easy = summary["slices"]["difficulty"]["easy"]
    assert easy["headline"]["value"] == pytest.approx(36 / 40) and easy["rank"] is None
    assert "chosen by the teacher's correctness" in easy["rank_note"]
    assert summary["slice_ranking"]["difficulty"]["ranked"] == []
    assert summary["slice_ranking"]["region"]["ranked"] == sorted(
        "ab", key=lambda v: summary["slices"]["region"][v]["headline"]["value"])
    typed = parse(summary)
    rows = {r["slice"]: r for r in slice_rows(typed)}
    assert rows["difficulty=easy"]["rank"] is None and rows["region=a"]["rank"] is not None
    assert all(not r["slice"].startswith("difficulty=") for r in weakest(typed, 5))
