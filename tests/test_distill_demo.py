"""The distill demo, run as a user runs it (one command, a fresh process), twice: its students rank as their
training predicts, and a re-run gives the same checkpoints and the same numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("torch")


def _strip(summary: dict) -> dict:
    """Gives a summary without what a re-run may change: wall-clock figures (ops) and the eval set's folder."""
    out = {k: v for k, v in summary.items() if k != "ops"}
    out["eval_set"] = {k: v for k, v in summary["eval_set"].items() if k != "path"}
    for candidate in out.get("candidates", {}).values():
        candidate.pop("ops", None)
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Two quick runs of scripts/distill_demo.py, side by side (one thread each), into their own folders."""
    root = tmp_path_factory.mktemp("distill")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    runs = [subprocess.Popen([sys.executable, str(ROOT / "scripts" / "distill_demo.py"), "--quick", "--out",
                              str(root / name), "--runs", str(root / name / "runs")], env=env, cwd=root,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for name in ("a", "b")]
    logs = [run.communicate(timeout=1200)[0] for run in runs]
    for run, log in zip(runs, logs):
        assert run.returncode == 0, log[-3000:]
    return root, logs


def summary_of(root, name: str) -> dict:
    return json.loads((root / name / "runs" / "distill-quick" / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_the_demo_prints_its_decision_and_report(demo):
    _, logs = demo
    lines = logs[0].strip().splitlines()
    assert lines[-1].startswith("report: ") and lines[-1].endswith("report.html")
    assert any(line.startswith("genval: ") and ("READY" in line) for line in lines)


@pytest.mark.slow
def test_the_hard_label_student_has_the_highest_kl_and_the_worst_ece(demo):
    root, _ = demo
    summary = summary_of(root, "a")
    found = {"student": summary["classification"],
             **{role: block["classification"] for role, block in summary["candidates"].items()}}
    assert set(found) == {"student", "student_t2", "student_hard"}
    kl = {role: c["kl_teacher_student"]["value"] for role, c in found.items()}
    ece = {role: c["ece"]["student"]["value"] for role, c in found.items()}
    assert max(kl, key=kl.get) == "student_hard", kl
    assert max(ece, key=ece.get) == "student_hard", ece
    # where the teacher is unsure (tickets that mix two topics) the gap is the widest: the doubt hard labels lose
    mixed = {role: (summary["slices"] if role == "student" else summary["candidates"][role]["slices"])["kind"]["mixed"]
             ["classification"]["kl_teacher_student"]["value"] for role in found}
    assert all(mixed["student_hard"] > 1.5 * mixed[role] for role in ("student", "student_t2")), mixed


@pytest.mark.slow
def test_a_rerun_gives_the_same_checkpoints_and_numbers(demo):
    root, _ = demo
    for role in ("teacher", "student", "student_t2", "student_hard"):
        assert (root / "a" / role / "model.safetensors").read_bytes() == \
            (root / "b" / role / "model.safetensors").read_bytes(), role
    assert (root / "a" / "data" / "eval.jsonl").read_bytes() == (root / "b" / "data" / "eval.jsonl").read_bytes()
    assert _strip(summary_of(root, "a")) == _strip(summary_of(root, "b"))


@pytest.mark.slow
def test_no_eval_ticket_is_a_training_ticket(demo):
    root, _ = demo
    read = [json.loads(line) for line in (root / "a" / "data" / "train.jsonl").read_text().splitlines()]
    evals = [json.loads(line) for line in (root / "a" / "data" / "eval.jsonl").read_text().splitlines()]
    assert not {t["text"] for t in read} & {t["text"] for t in evals}
    assert {t["kind"] for t in evals} == {"clear", "mixed"} and len(evals) == 240
