"""`genval export RUN --mlflow`: the demo run logged to a local MLflow file store, read back with MLflow's client."""

from __future__ import annotations

import json

import pytest

from genval.cli import main
from tests.report_runs import demo_run

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra (pip install 'genval[mlflow]')")


@pytest.mark.slow  # reads the whole demo run (tests/report_runs.demo_run)
def test_the_demo_run_reads_back_from_mlflow(tmp_path, capsys, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = (tmp_path / "mlruns").as_uri()
    run = demo_run()
    assert main(["export", str(run), "--mlflow", "--tracking-uri", uri]) == 0
    run_id = capsys.readouterr().out.split(" as run ")[1].split()[0]
    summary = json.loads((run / "summary.json").read_text())

    logged = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert logged.info.run_name == "demo" and logged.info.status == "FINISHED"
    assert logged.data.tags["genval.decision"] == "NOT_READY" and logged.data.tags["genval.gate"] == "FAIL"
    assert logged.data.tags["genval.reasons"] == summary["decision"]["reasons"][0]
    metrics = logged.data.metrics
    retention = summary["classification"]["accuracy_retention"]
    assert metrics["headline/accuracy_retention"] == pytest.approx(retention["value"])
    assert metrics["headline/accuracy_retention.ci_low"] == pytest.approx(retention["ci"][0])
    assert metrics["headline/accuracy_retention.n"] == 400
    critical = summary["slices"]["critical"]["true"]["headline"]
    assert metrics["slice/critical/true/accuracy_retention"] == pytest.approx(critical["value"])
    assert metrics["slice/category/fraud/accuracy_retention.n"] == 29
    bleu = summary["metrics"]["student~teacher"]["bleu"]
    assert metrics["metrics/student_vs_teacher/bleu.ci_high"] == pytest.approx(bleu["ci"][1])
    assert metrics["ops/student/latency_p50_s"] == pytest.approx(summary["ops"]["roles"]["student"]["latency_p50_s"])
    assert logged.data.params["eval_set_sha256"] == summary["eval_set"]["sha256"]
    assert logged.data.params["signature/bleu"] == summary["settings"]["metrics"]["bleu"]
    files = {a.path for a in MlflowClient(tracking_uri=uri).list_artifacts(run_id)}
    assert files == {"report.md", "report.html", "summary.json", "calibration.json"}
    local = MlflowClient(tracking_uri=uri).download_artifacts(run_id, "report.md", str(tmp_path))
    assert open(local, encoding="utf-8").read() == (run / "report.md").read_text(encoding="utf-8")


def test_export_without_a_target_is_a_one_line_error(capsys):
    assert main(["export", str(demo_run())]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--mlflow" in err


def test_every_candidate_is_exported_with_its_own_numbers_and_decision(tmp_path, capsys, monkeypatch):
    """A run comparing students logged the student's accuracy, KL and ECE only: a further candidate's own numbers
    and decision never reached MLflow."""
    import numpy as np
    from mlflow.tracking import MlflowClient

    from genval.pipeline import run_pipeline
    from tests.conftest import write_jsonl, write_yaml

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    labels, rng, n = ["yes", "no"], np.random.default_rng(3), 60
    gold = rng.integers(0, 2, n)
    write_jsonl(tmp_path / "eval.jsonl", [{"id": f"x{i}", "input": f"q{i}", "label": labels[g]}
                                          for i, g in enumerate(gold)])
    probs = {"teacher": rng.dirichlet([1, 1], n), "student": rng.dirichlet([1, 1], n),
             "student_b": rng.dirichlet([4, 1], n)}
    for role, p in probs.items():
        write_jsonl(tmp_path / f"{role}.jsonl", [{"id": f"x{i}", "text": "", "label_probs": dict(zip(labels, row))}
                                                 for i, row in enumerate(p.tolist())])
    write_yaml(tmp_path / "run.yaml", {"name": "c", "task": "classification", "eval_set": "eval.jsonl",
                                       "labels": labels, "prompt": "{input}", "analysis": {"bootstrap": 200},
                                       "models": {r: {"backend": "replay", "path": f"{r}.jsonl"} for r in probs},
                                       "gate": {"rules": ["kl_teacher_student <= 0.2"]}})
    run = run_pipeline(tmp_path / "run.yaml", out_dir=tmp_path / "runs", quiet=True)
    uri = (tmp_path / "mlruns").as_uri()
    capsys.readouterr()
    assert main(["export", str(run), "--mlflow", "--tracking-uri", uri]) == 0
    run_id = capsys.readouterr().out.split(" as run ")[1].split()[0]
    logged = MlflowClient(tracking_uri=uri).get_run(run_id)
    summary = json.loads((run / "summary.json").read_text())
    mine = summary["candidates"]["student_b"]
    assert logged.data.tags["genval.candidate.student_b.decision"] == mine["decision"]["verdict"]
    # KL(teacher‖student_b) by hand from the replay files, the student's clipped at 1e-6 as genval does
    p, q = probs["teacher"], np.clip(probs["student_b"], 1e-6, None)
    kl = float(np.mean(np.sum(p * np.log(p / (q / q.sum(1, keepdims=True))), axis=1)))
    metrics = logged.data.metrics
    assert metrics["candidate/student_b/headline/KL_teacher_student_"] == pytest.approx(kl)
    assert metrics["candidate/student_b/headline/student_accuracy"] == pytest.approx(
        float((probs["student_b"].argmax(1) == gold).mean()))
    assert metrics["headline/KL_teacher_student_"] != pytest.approx(kl)  # the student's own, beside it
