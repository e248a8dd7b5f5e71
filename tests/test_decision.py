"""The decision, the failures it rests on, the number registry, and what judge verdicts mean."""

from __future__ import annotations

import json
from statistics import NormalDist

import pandas as pd
import pytest

from genval import registry
from genval.analysis.decision import decide, failures
from genval.analysis.numbers import minimum_detectable_effect
from genval.analysis.stage import aggregate, build_summary
from genval.analysis.table import JudgeCounts
from genval.config import load_config
from genval.pipeline import prepare, run_stages
from genval.progress import Progress
from genval.report.stage import report
from genval.summary import Diagnosis, Failures, Gate, Status, Summary
from tests.conftest import ROOT, write_jsonl, write_yaml
from tests.test_aggregate_support import make_config, make_run

CLEAN = {"roles": {}, "judges": {}, "over_limit": [], "max_failure_rate": 0.01, "requests_failed": 0,
         "counted_as": "wrong"}


def _summary(**extra):
    """A summary with what the decision reads (status, gate, diagnoses, failures), typed; the rest left out."""
    found = {"status": {"level": "EXCELLENT", "basis": "x", "retention": 0.97}, "gate": None, "diagnoses": [],
             "failures": CLEAN, **extra}
    gate = found["gate"] and Gate.model_construct(**found["gate"])   # only its outcome and counts are read
    return Summary.model_construct(status=Status(**{"kl": None, "held_back": [], **found["status"]}), gate=gate,
                                   diagnoses=[Diagnosis(**{"numbers": {}, **d}) for d in found["diagnoses"]],
                                   failures=Failures(**found["failures"]))


def test_decision_verdicts_and_incomplete_first():
    assert decide(_summary())["verdict"] == "READY"
    caveat = decide(_summary(diagnoses=[{"kind": "weak_critical_slice", "message": "m"}]))
    assert caveat["verdict"] == "READY" and any(r.startswith("caveat: weak critical slice") for r in caveat["reasons"])
    assert decide(_summary(status={"level": "WEAK", "basis": "x", "retention": 0.5}))["verdict"] == "NOT_READY"
    gate = {"passed": False, "failing": ["r: 0.7 < min 0.9"], "rules": [1]}
    assert decide(_summary(gate=gate))["verdict"] == "NOT_READY"
    assert decide(_summary(status={"level": None, "basis": "no labels", "retention": None}))["verdict"] == "NO_DECISION"
    over = {**CLEAN, "roles": {"student": {"failed": 25, "n": 100, "rate": 0.25}}, "over_limit": ["role student"],
            "requests_failed": 25}
    found = decide(_summary(failures=over))
    assert found["verdict"] == "INCOMPLETE" and found["grade"] == "EXCELLENT"
    assert found["reasons"][0].startswith("25 of 100 student requests failed (25.0 %")
    assert any("re-run retries" in r for r in found["reasons"])
    assert found["reasons"][-1].startswith("on the numbers so far (failures counted as wrong): READY")


def test_failures_count_unparsed_verdicts_as_the_judges_and_unanswered_rows_as_the_roles():
    judgments = pd.DataFrame({"id": ["a", "b", "c"], "pair": "student~teacher", "judge": "j",
                              "verdict": [None, None, "equivalent"], "equivalent": [None, 0.0, 1.0],
                              "parsed": [False, False, True], "requests": [1, 0, 1], "failed_requests": [0, 0, 0]})
    counts = JudgeCounts()
    counts.add(judgments)
    assert counts.rates[("j", "student~teacher")] == [1, 1.0, 1]  # judged, equivalent, unanswered
    found = failures({"teacher": [0, 2], "student": [1, 2]}, counts.asked, 0.01)
    assert found["roles"]["student"] == {"failed": 1, "n": 2, "rate": 0.5}
    # b made no request (its student output failed): it is the student's failure, not the judge's.
    assert found["judges"]["j"] == {"failed": 1, "n": 2, "rate": 0.5, "requests_failed": 0}
    assert found["over_limit"] == ["role student", "judge j"]
    reasons = decide(_summary(failures=found))["reasons"]
    assert any("unreadable judge answer comes back the same" in r for r in reasons)


def test_registry_declares_direction_range_and_precision():
    assert registry.better("kl_teacher_student") == "lower" and registry.better("kl") == "lower"
    assert registry.better("json_fenced") == "lower" and registry.worst("json_fenced") == 1.0
    assert registry.worst("bleu") == 0.0 and registry.digits("bleu") == 2
    assert registry.worst("rougeLsum") == 0.0 and registry.worst("field:order_id") == 0.0
    assert registry.worst("embedding") == -1.0
    assert registry.worst("kl") is None and registry.worst("abs_error") is None   # unbounded: left out
    assert registry.better("latency_p95_s") == "lower" and registry.better("throughput_gain_pct") == "higher"
    assert registry.spec("hf:meteor") is None
    assert registry.spec("accuracy").printed_zero(-6.5e-18) and not registry.spec("accuracy").printed_zero(0.001)


def test_minimum_detectable_effect_by_hand():
    z = NormalDist().inv_cdf(0.975)
    se = (0.9 - 0.7) / (2 * z)
    assert minimum_detectable_effect({"ci": [0.7, 0.9]}, 0.95) == pytest.approx((z + NormalDist().inv_cdf(0.8)) * se)
    assert minimum_detectable_effect({"ci": [None, None]}, 0.95) is None


def test_small_weak_slice_is_named_with_a_caution_about_n(tmp_path):
    teacher = [1] * 89
    student = [1] * 60 + [1] * 15 + [0] * 14          # region b: n = 29, retention 15/29 = 0.52
    run = make_run(tmp_path / "run", teacher, student, region=["a"] * 60 + ["b"] * 29)
    config = make_config(tmp_path)
    aggregate(run, config, Progress(quiet=True))
    summary = json.loads(run.path("summary.json").read_text())
    b = summary["slices"]["region"]["b"]
    assert b["too_small_to_rank"] and b["headline"]["value"] == pytest.approx(15 / 29)
    found = [d for d in summary["diagnoses"] if d["kind"] == "small_slice"]
    assert [d["numbers"]["slice"] for d in found] == ["region=b"] and found[0]["numbers"]["n"] == 29
    assert "n=29" in found[0]["message"] and "not ranked" in found[0]["message"]
    assert b["headline"]["mde"] == pytest.approx(minimum_detectable_effect(b["headline"], 0.95))
    report(run, config, Progress(quiet=True))
    text = run.path("report.md").read_text()
    look = text[text.index("### What to look at"):text.index("### Headline numbers")]
    assert "region=b (n=29" in look


def _quality_run(tmp_path, scores: list[int]):
    n = len(scores)
    examples = [{"id": f"e{i:02d}", "input": f"doc {i}", "reference": f"ref {i}"} for i in range(n)]
    write_jsonl(tmp_path / "eval.jsonl", examples)
    for role in ("teacher", "student"):
        write_jsonl(tmp_path / f"{role}.jsonl", [{"id": e["id"], "text": f"summary {i}"} for i, e in enumerate(examples)])
    write_jsonl(tmp_path / "judge.jsonl", [{"id": f"e{i:02d}|student~teacher|ab|0", "text": str(s)}
                                           for i, s in enumerate(scores)])
    config = {"name": "q", "task": "summarization", "eval_set": "eval.jsonl", "prompt": "Summarise: {input}",
              "metrics": [], "models": {"teacher": {"backend": "replay", "path": "teacher.jsonl"},
                                        "student": {"backend": "replay", "path": "student.jsonl"}},
              "judge": [{"config": str(ROOT / "judges" / "summary_quality.yaml"),
                         "model": {"backend": "replay", "path": "judge.jsonl"}}],
              "analysis": {"bootstrap": 200}}
    path = write_yaml(tmp_path / "run.yaml", config)
    loaded = load_config(path)
    run = prepare(loaded, tmp_path / "runs")
    run_stages(run, loaded, Progress(quiet=True), only=["generate", "judge", "calibrate", "aggregate"])
    return run, loaded


def test_ordinal_judge_reports_mean_score_and_share_at_or_above_its_threshold(tmp_path):
    scores = [5, 4, 3, 2, 4, 5, 1, 4, 3, 5] * 3
    run, config = _quality_run(tmp_path, scores)
    judge = build_summary(run, config)["judge"]
    assert judge["equivalence_rate"]["value"] == pytest.approx(sum(s >= 4 for s in scores) / len(scores))
    assert judge["mean_score"]["value"] == pytest.approx(sum(scores) / len(scores))
    assert judge["meaning"]["says"] == "share of scores >= 4 on 1..5"
