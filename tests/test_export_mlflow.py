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
