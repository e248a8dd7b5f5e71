"""Status bands and diagnoses: each fires on a run built to trigger it and stays silent on a clean one."""

from __future__ import annotations

import numpy as np
import pytest

from genval.runfolder import Run

from genval.analysis.diagnosis import status
from genval.analysis.stage import build_summary
from genval.summary import Block, Classification, Fidelity, NamedNumber, Number
from tests.test_aggregate_support import make_config, make_run

N = 60


def _number(value, cls=Number, **named):
    return cls(value=value, ci=[None, None], n=N, **named)


def _block(retention=None, kl=None, task=None) -> Block:
    """A block with what the status reads: accuracy retention and KL, or task retention (the rest left out)."""
    cls = None if retention is None else Classification.model_construct(
        accuracy_retention=_number(retention), kl_teacher_student=_number(kl))
    task = None if task is None else _number(task, NamedNumber, metric="rougeL")
    return Block.model_construct(classification=cls, fidelity=Fidelity.model_construct(task_retention=task),
                                 metrics={})


def kinds(summary) -> list[str]:
    return [d["kind"] for d in summary["diagnoses"]]


def clean(tmp_path, **kw):
    """A run where the student matches a strong teacher: nothing should fire."""
    teacher = [1] * 57 + [0] * 3
    return make_run(tmp_path / "run", teacher, list(teacher), kl=[0.01] * N, **kw)


@pytest.mark.parametrize("retention,kl,level", [
    (0.96, 0.05, "EXCELLENT"), (0.96, 0.2, "GOOD"), (0.93, 0.29, "GOOD"), (0.93, 0.5, "ACCEPTABLE"),
    (0.91, 0.9, "ACCEPTABLE"), (0.90, 0.01, "WEAK"), (0.5, 0.0, "WEAK")])
def test_status_bands(retention, kl, level):
    assert status(_block(retention, kl))["level"] == level


def test_status_without_labels_says_its_basis():
    out = status(_block(task=0.94))
    assert out["level"] == "GOOD" and "rougeL" in out["basis"] and "no KL" in out["basis"]
    assert status(_block())["level"] is None


def test_clean_run_has_no_diagnosis(tmp_path):
    run = clean(tmp_path, json_valid=[1] * N)
    run.write_json("ops.json", {"roles": {}, "savings": {"latency_p50_s_pct": 60.0, "cost_per_1k_calls_pct": 70.0}})
    summary = build_summary(run, make_config(tmp_path, critical=["region=a"]))
    assert summary["diagnoses"] == []
    assert summary["status"]["level"] == "EXCELLENT"


def test_teacher_ceiling(tmp_path):
    teacher = [1] * 42 + [0] * 18   # teacher right on 70 %, student copies it: agreement 100 %
    run = make_run(tmp_path / "run", teacher, list(teacher))
    found = build_summary(run, make_config(tmp_path))["diagnoses"]
    assert [d["kind"] for d in found] == ["teacher_ceiling"]
    assert found[0]["numbers"]["student_accuracy"] == pytest.approx(0.7)
    assert "70.0 %" in found[0]["message"]


def test_weak_critical_slice(tmp_path):
    teacher = [1] * 90
    student = [1] * 60 + [1] * 18 + [0] * 12          # region a perfect, region b at 60 %
    region = ["a"] * 60 + ["b"] * 30
    run = make_run(tmp_path / "run", teacher, student, region=region)
    found = build_summary(run, make_config(tmp_path, critical=["region=b"]))["diagnoses"]
    weak = [d for d in found if d["kind"] == "weak_critical_slice"]
    assert len(weak) == 1
    assert weak[0]["numbers"]["slice_value"] == pytest.approx(0.6)
    assert weak[0]["numbers"]["overall"] == pytest.approx(78 / 90)
    silent = build_summary(run, make_config(tmp_path, critical=["region=a"]))
    assert "weak_critical_slice" not in kinds(silent)


def _confident(tmp_path, confidence):
    """A clean run whose student gives the gold label (wrong on one in five examples) with this confidence."""
    gold = [0 if i % 2 else 1 for i in range(N)]  # make_run's labels: pos (0) for odd i, else neg (1)
    said = [g if i % 5 else 1 - g for i, g in enumerate(gold)]
    probs = {"teacher": [[0.9, 0.1] if g == 0 else [0.1, 0.9] for g in gold],
             "student": [[confidence, 1 - confidence] if s == 0 else [1 - confidence, confidence] for s in said]}
    teacher = [1] * 57 + [0] * 3
    return make_run(tmp_path / f"run{confidence}", teacher, list(teacher), kl=[0.01] * N, probs=probs)


def test_poor_calibration_names_the_temperature(tmp_path):
    summary = build_summary(_confident(tmp_path, 0.99), make_config(tmp_path))  # right 80 %, 99 % sure
    found = [d for d in summary["diagnoses"] if d["kind"] == "poor_calibration"]
    assert summary["classification"]["ece"]["student"]["value"] == pytest.approx(0.99 - 0.8)
    t = summary["classification"]["temperature"]["value"]
    # The fitted temperature softens 0.99 to the 0.8 the student earns: 0.8 = 0.99^(1/T) / (0.99^(1/T) + 0.01^(1/T)).
    assert t == pytest.approx(np.log(0.99 / 0.01) / np.log(0.8 / 0.2), rel=1e-3)
    assert len(found) == 1 and f"T = {t:.2f}" in found[0]["message"]
    assert "poor_calibration" not in kinds(build_summary(_confident(tmp_path, 0.8), make_config(tmp_path)))


def test_latency_better_cost_not(tmp_path):
    run = clean(tmp_path)
    run.write_json("ops.json", {"roles": {}, "savings": {"latency_p50_s_pct": 50.0, "cost_per_1k_calls_pct": -20.0}})
    found = build_summary(run, make_config(tmp_path))["diagnoses"]
    assert kinds({"diagnoses": found}) == ["latency_not_cost"]
    assert found[0]["numbers"]["cost_saving_pct"] == -20.0
    run.write_json("ops.json", {"roles": {}, "savings": {"latency_p50_s_pct": 50.0, "cost_per_1k_calls_pct": 30.0}})
    assert kinds(build_summary(run, make_config(tmp_path))) == []


def test_many_student_only_errors(tmp_path):
    teacher = [1] * N
    run = make_run(tmp_path / "run", teacher, [0] * 6 + [1] * 54)   # 10 % student-only errors
    found = [d for d in build_summary(run, make_config(tmp_path))["diagnoses"] if d["kind"] == "student_only_errors"]
    assert len(found) == 1 and found[0]["numbers"]["only_student_wrong"] == pytest.approx(0.1)
    run = make_run(tmp_path / "run2", teacher, [0] * 2 + [1] * 58)   # 3.3 %: under the 5 % line
    assert "student_only_errors" not in kinds(build_summary(run, make_config(tmp_path)))


def test_format_failures_separate_from_content(tmp_path):
    valid = [0] * 6 + [1] * 54
    rouge_s = [0.0] * 6 + [0.8] * 54   # the invalid outputs score 0; the valid ones are fine
    run = clean(tmp_path, json_valid=valid, rouge_student=rouge_s, rouge_teacher=[0.85] * N)
    found = [d for d in build_summary(run, make_config(tmp_path))["diagnoses"] if d["kind"] == "format_failures"]
    assert len(found) == 1
    assert found[0]["numbers"]["student_failure_rate"] == pytest.approx(0.1)
    assert found[0]["numbers"]["content_on_valid"] == pytest.approx(0.8)
    run = clean(tmp_path / "ok", json_valid=[1] * N, rouge_student=[0.8] * N, rouge_teacher=[0.85] * N)
    assert "format_failures" not in kinds(build_summary(run, make_config(tmp_path)))


def test_judge_not_validated(tmp_path):
    run = clean(tmp_path, verdicts=["equivalent"] * N)
    assert "judge_not_validated" in kinds(build_summary(run, make_config(tmp_path)))
    run.write_json("calibration.json", {"judges": {"j1": {"validated": True, "min_kappa": 0.6, "n": 50,
                                                          "kappa": {"value": 0.8, "ci": [0.7, 0.9], "n": 50}}},
                                        "ranking": ["j1"]})
    summary = build_summary(run, make_config(tmp_path))
    assert "judge_not_validated" not in kinds(summary) and summary["judge"]["validated"] is True
    run.write_json("calibration.json", {"judges": {"j1": {"validated": False, "min_kappa": 0.6, "n": 50,
                                                          "kappa": {"value": 0.3, "ci": [0.1, 0.5], "n": 50}}},
                                        "ranking": ["j1"]})
    found = [d for d in build_summary(run, make_config(tmp_path))["diagnoses"] if d["kind"] == "judge_not_validated"]
    assert found and "0.30" in found[0]["message"]


def test_no_status_and_no_headline_stays_silent(tmp_path):
    run = make_run(tmp_path / "run", [1] * N, [1] * N, region=["a"] * 20 + ["b"] * 40)
    scores = Run(run.root).read_table("scores")
    run.write_table("scores", scores[scores["metric"] == "json_valid"])   # no number to head the run or a slice
    summary = build_summary(run, make_config(tmp_path, critical=["region=b"]))
    assert summary["headline"] is None and summary["slices"]["region"]["b"]["headline"] is None
    assert summary["status"]["level"] is None and summary["diagnoses"] == []


def test_the_status_caveat_names_the_number_that_caused_it(tmp_path):
    """Retention 1.000 and KL 1.15: ACCEPTABLE because of KL, not 'retention only just over 90 %'."""
    from genval.analysis.decision import decide

    teacher = [1] * 57 + [0] * 3
    summary = build_summary(make_run(tmp_path / "run", teacher, list(teacher), kl=[1.15] * N), make_config(tmp_path))
    assert summary["status"]["level"] == "ACCEPTABLE" and summary["status"]["retention"] == 1.0
    reasons = decide(summary)["reasons"]
    assert "caveat: KL(teacher‖student) 1.15 is not under the 0.3 of GOOD" in reasons
    assert not [r for r in reasons if r.startswith("caveat: retention")]
    just = status(_block(0.91, 0.05))
    assert just["held_back"] == ["retention 91.0 % is not over the 92.0 % of GOOD"]


def test_no_decision_says_what_to_add_to_get_one(tmp_path):
    """A summarization run whose teacher has no reference scores, no judge and no gate: the line says what to add."""
    from genval.analysis.decision import decide

    run = make_run(tmp_path / "run", [1] * N, [1] * N, rouge_student=[0.6] * N, rouge_teacher=[0.7] * N)
    scores = Run(run.root).read_table("scores")
    run.write_table("scores", scores[(scores["metric"] == "rougeL") & (scores["pair"] == "student~reference")])
    summary = build_summary(run, make_config(tmp_path, task="summarization", labels=None))
    found = decide(summary)
    assert found["verdict"] == "NO_DECISION"
    assert "the teacher none to compare them with" in found["reasons"][0]
    assert "`reference`" in found["reasons"][0] and "`gate:`" in found["reasons"][0]


def test_an_unvalidated_judge_is_said_to_be_under_by_its_intervals_lower_end(tmp_path):
    run = clean(tmp_path, verdicts=["equivalent"] * N)
    run.write_json("calibration.json", {"judges": {"j1": {"validated": False, "min_kappa": 0.6, "n": 50,
                                                          "kappa": {"value": 0.73, "ci": [0.537, 0.9], "n": 50}}},
                                        "ranking": ["j1"]})
    found = [d for d in build_summary(run, make_config(tmp_path))["diagnoses"] if d["kind"] == "judge_not_validated"]
    assert "kappa with human labels is 0.73, but the interval's lower end 0.537 is under the required 0.6" in \
        found[0]["message"]
    assert "None" not in found[0]["message"]


def test_high_aggregate_only_when_the_aggregate_is_high(tmp_path):
    teacher = [1] * 90
    student = [1] * 30 + [0] * 30 + [1] * 12 + [0] * 18      # overall 42/90 = 47 %: WEAK; region b at 40 %
    run = make_run(tmp_path / "run", teacher, student, region=["a"] * 60 + ["b"] * 30)
    summary = build_summary(run, make_config(tmp_path, critical=["region=b"]))
    weak = [d for d in summary["diagnoses"] if d["kind"] == "weak_critical_slice"]
    assert summary["status"]["level"] == "WEAK"
    assert weak[0]["message"].startswith("Weak critical slice: accuracy_retention is 46.7 % overall")
