"""A further candidate of a classification run gets the student's label numbers: accuracy, agreement, KL, ECE.

Before, label rows were scored for teacher and student only, so a run comparing several distilled
students had no accuracy or KL for all but one of them (and no accuracy-vs-KL Pareto plot).
"""

from __future__ import annotations

import numpy as np
import pytest

from genval.pipeline import run_pipeline
from genval.runfolder import Run
from tests.conftest import write_jsonl, write_yaml

LABELS = ["yes", "no", "maybe"]


def probs_of(rng, n, sharp):
    """Gives n label-probability rows: Dirichlet draws, sharper for larger `sharp`."""
    return rng.dirichlet(np.full(len(LABELS), 1.0 / sharp), size=n)


def ece_by_hand(p: np.ndarray, gold: np.ndarray, bins: int = 10) -> float:
    conf, hit = p.max(axis=1), (p.argmax(axis=1) == gold).astype(float)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (conf >= lo) & ((conf < hi) if b < bins - 1 else (conf <= hi))
        if inside.any():
            total += inside.sum() / len(conf) * abs(hit[inside].mean() - conf[inside].mean())
    return total


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cands")
    rng = np.random.default_rng(5)
    n = 120
    gold = rng.integers(0, 3, n)
    roles = {"teacher": probs_of(rng, n, 1.0), "student": probs_of(rng, n, 1.5), "student_hard": probs_of(rng, n, 8.0)}
    write_jsonl(root / "eval.jsonl", [{"id": f"x{i}", "input": f"q{i}", "label": LABELS[g], "kind": "ab"[i % 2]}
                                      for i, g in enumerate(gold)])
    models = {}
    for role, p in roles.items():
        write_jsonl(root / f"{role}.jsonl", [{"id": f"x{i}", "text": "", "label_probs": dict(zip(LABELS, row.tolist()))}
                                             for i, row in enumerate(p)])
        models[role] = {"backend": "replay", "path": f"{role}.jsonl"}
    write_yaml(root / "run.yaml", {"name": "c", "task": "classification", "eval_set": "eval.jsonl", "labels": LABELS,
                                   "prompt": "{input}", "models": models, "slices": ["kind"],
                                   "analysis": {"bootstrap": 200}})
    return Run(run_pipeline(root / "run.yaml", out_dir=root / "runs", quiet=True)), roles, gold


def test_a_candidate_has_accuracy_agreement_and_kl(run):
    found, roles, gold = run
    summary = found.read_json("summary.json")
    p_t, p_h = roles["teacher"], roles["student_hard"]
    mine = summary["candidates"]["student_hard"]["classification"]
    accuracy = (p_h.argmax(1) == gold).mean()
    assert mine["student"]["accuracy"]["value"] == pytest.approx(accuracy)
    assert mine["accuracy_retention"]["value"] == pytest.approx(accuracy / (p_t.argmax(1) == gold).mean())
    assert mine["agreement_rate"]["value"] == pytest.approx((p_h.argmax(1) == p_t.argmax(1)).mean())
    kl = np.sum(p_t * np.log(p_t / np.clip(p_h, 1e-6, None)), axis=1)  # the rows are far above the 1e-6 clip
    assert mine["kl_teacher_student"]["value"] == pytest.approx(kl.mean(), rel=1e-4)
    assert summary["metrics"]["student_hard~teacher"]["kl"]["value"] == pytest.approx(kl.mean(), rel=1e-4)


def test_a_candidate_has_its_own_ece_and_the_student_keeps_its(run):
    found, roles, gold = run
    summary = found.read_json("summary.json")
    hard = summary["candidates"]["student_hard"]["classification"]["ece"]["student"]
    assert hard["value"] == pytest.approx(ece_by_hand(roles["student_hard"], gold))
    assert hard["ci"][0] <= hard["value"] <= hard["ci"][1]
    student = summary["classification"]["ece"]["student"]["value"]
    assert student == pytest.approx(ece_by_hand(roles["student"], gold))
    assert summary["candidates"]["student_hard"]["classification"]["ece"]["teacher"]["value"] == pytest.approx(
        ece_by_hand(roles["teacher"], gold))
    # per slice too, by the candidate's own probabilities
    rows = np.arange(len(gold)) % 2 == 0
    block = summary["candidates"]["student_hard"]["slices"]["kind"]["a"]["classification"]["ece"]["student"]
    assert block["value"] == pytest.approx(ece_by_hand(roles["student_hard"][rows], gold[rows]))


def test_the_candidates_table_of_the_report_shows_each_ece(run):
    found, _, _ = run
    from genval.report.decision import num

    html = found.path("report.html").read_text(encoding="utf-8")
    table = html[html.index("sortable candidates"):]
    table = table[:table.index("</table>")]
    summary = found.read_json("summary.json")
    assert "<th" in table and ">ECE<" in table
    for ece in (summary["classification"]["ece"]["student"],
                summary["candidates"]["student_hard"]["classification"]["ece"]["student"]):
        assert num(ece) in table


@pytest.mark.parametrize("rule, expected", [
    ("kl_teacher_student [student_hard] <= 0.9",
     "'kl_teacher_student' compares the student with the teacher and takes no [pair]"),
    ("accuracy_retention [student_hard~teacher] >= 0.5", "'accuracy_retention' compares the student with the teacher"),
    ("ece [student_hard] <= 0.5", "'ece' takes [teacher] or [student] ('student_hard' given)"),
    ("accuracy [student_hard] >= 0.3", "'accuracy' takes [teacher] or [student]"),
])
def test_a_rule_naming_a_candidate_on_a_student_number_is_refused(run, tmp_path, capsys, rule, expected):
    """`kl_teacher_student [student_hard]` passed or failed on the student's KL (the pair was ignored) and
    `ece [student_hard]` failed as 'missing': both are refused, pointing at the candidate's own gate."""
    from genval.cli import main

    found, _, _ = run
    gate = write_yaml(tmp_path / "gate.yaml", {"rules": [rule]})
    capsys.readouterr()
    assert main(["gate", str(found.root), "--config", str(gate)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "summary.candidates.<role>.gate" in err and err.count("\n") == 1, err


def test_rules_naming_a_candidate_read_its_own_numbers(run, tmp_path, capsys):
    """Numbers whose pair names the candidate are its own: its agreement row and its failed calls."""
    from genval.cli import main

    found, roles, _ = run
    agree = (roles["student_hard"].argmax(1) == roles["teacher"].argmax(1)).mean()
    gate = write_yaml(tmp_path / "gate.yaml", {"rules": [f"label_agree [student_hard~teacher] >= {agree - 1e-9}",
                                                         "generation_error [student_hard] <= 0",
                                                         f"label_agree [student_hard~teacher] <= {agree + 1e-9}"]})
    capsys.readouterr()
    assert main(["gate", str(found.root), "--config", str(gate)]) == 0, capsys.readouterr().out
