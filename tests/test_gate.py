"""The release gate: rules on summary numbers, exit codes 0 pass / 1 fail / 2 user mistake."""

from __future__ import annotations

import json

import pytest

from genval.analysis.stage import aggregate
from genval.cli import main
from genval.progress import Progress
from tests.conftest import write_yaml
from tests.test_aggregate_support import make_config, make_run

N = 60


@pytest.fixture
def run_dir(tmp_path):
    """A run at 90 % retention overall, 70 % on region b (n=30), with rougeL and json_valid."""
    teacher = [1] * N
    student = [1] * 30 + [0] * 9 + [1] * 21          # a: 100 %, b: 70 % → overall 85 %
    run = make_run(tmp_path / "run", teacher, student, region=["a"] * 30 + ["b"] * 30, kl=[0.2] * N,
                   rouge_student=[0.6] * N, rouge_teacher=[0.7] * N, json_valid=[1] * 57 + [0] * 3)
    aggregate(run, make_config(tmp_path), Progress(quiet=True))
    return run.root


def gate(tmp_path, run_dir, rules, capsys, baseline=None):
    data = {"rules": rules}
    if baseline:
        data["baseline"] = str(baseline)
    path = write_yaml(tmp_path / "gate.yaml", data)
    code = main(["gate", str(run_dir), "--config", str(path)])
    return code, capsys.readouterr()


def test_pass_exits_0(tmp_path, run_dir, capsys):
    code, out = gate(tmp_path, run_dir, [{"metric": "accuracy_retention", "min": 0.8},
                                         {"metric": "kl_teacher_student", "max": 0.3},
                                         {"metric": "rougeL", "pair": "student~reference", "min": 0.5},
                                         {"metric": "json_valid", "pair": "student", "min": 0.9}], capsys)
    assert code == 0 and out.out.startswith("gate: PASS")


def test_fail_exits_1_and_lists_failing_rules(tmp_path, run_dir, capsys):
    code, out = gate(tmp_path, run_dir, [{"metric": "accuracy_retention", "min": 0.8},
                                         {"metric": "accuracy_retention", "min": 0.95, "slice": "region=b"},
                                         {"metric": "json_valid", "pair": "student", "min": 0.99}], capsys)
    assert code == 1
    failing = [line for line in out.out.splitlines() if line.strip().startswith("FAIL")]
    assert len(failing) == 2
    assert "on region=b" in failing[0] and "0.7 < min 0.95" in failing[0]
    assert "json_valid [student]" in failing[1] and "0.95 < min 0.99" in failing[1]


def test_max_regression_against_baseline(tmp_path, run_dir, capsys):
    base = make_run(tmp_path / "base", [1] * N, [1] * N, region=["a"] * 30 + ["b"] * 30, kl=[0.1] * N)
    aggregate(base, make_config(tmp_path), Progress(quiet=True))
    code, out = gate(tmp_path, run_dir, [{"metric": "accuracy_retention", "max_regression": 0.05}], capsys,
                     baseline=base.root)
    assert code == 1 and "regressed 0.15 vs baseline 1" in out.out
    code, out = gate(tmp_path, run_dir, [{"metric": "kl_teacher_student", "max_regression": 0.05}], capsys,
                     baseline=base.root)   # KL is lower-is-better: 0.1 → 0.2 is a regression of 0.1
    assert code == 1 and "regressed 0.1 vs baseline 0.1" in out.out
    code, _ = gate(tmp_path, run_dir, [{"metric": "kl_teacher_student", "max_regression": 0.15}], capsys,
                   baseline=base.root)
    assert code == 0


def test_unknown_metric_is_a_user_mistake(tmp_path, run_dir, capsys):
    code, out = gate(tmp_path, run_dir, [{"metric": "acuracy_retention", "min": 0.8}], capsys)
    assert code == 2 and "no number named 'acuracy_retention'" in out.err
    code, out = gate(tmp_path, run_dir, [{"metric": "accuracy_retention"}], capsys)
    assert code == 2 and "needs at least one of min, max, max_regression" in out.err


def test_missing_slice_fails_the_rule(tmp_path, run_dir, capsys):
    code, out = gate(tmp_path, run_dir, [{"metric": "accuracy_retention", "min": 0.5, "slice": "region=zz"}], capsys)
    assert code == 1 and "no slice region=zz" in out.out


def test_config_gate_is_recorded_in_summary(tmp_path):
    run = make_run(tmp_path / "run", [1] * N, [1] * 54 + [0] * 6)
    config = make_config(tmp_path, gate={"rules": [{"metric": "accuracy_retention", "min": 0.95}]})
    record = aggregate(run, config, Progress(quiet=True))
    summary = json.loads(run.path("summary.json").read_text())
    assert record["gate"] == "fail" and summary["gate"]["passed"] is False
    assert summary["gate"]["rules"][0]["value"] == pytest.approx(0.9)


def test_gate_reads_the_run_configs_gate_key(tmp_path, capsys):
    run = make_run(tmp_path / "run", [1] * N, [1] * 54 + [0] * 6)
    config = make_config(tmp_path, gate={"rules": ["accuracy_retention >= 0.85", "agreement_rate >= 0.95"]})
    aggregate(run, config, Progress(quiet=True))
    run.manifest["config"] = config.resolved()
    run.save_manifest()
    out_json = tmp_path / "gate.json"
    assert main(["gate", str(run.root), "--json", str(out_json)]) == 1
    result = json.loads(out_json.read_text())
    assert [r["passed"] for r in result["rules"]] == [True, False]
    assert result["failing"] == ["agreement_rate >= 0.95: 0.9 < min 0.95"]
    assert "gate: FAIL (2 rules, 1 failing)" in capsys.readouterr().out


def test_short_form_rule_mistake_names_the_key(tmp_path, run_dir, capsys):
    code, out = gate(tmp_path, run_dir, ["accuracy_retention > 0.9"], capsys)
    assert code == 2 and "'rules'" in out.err and "metric [pair] >= number" in out.err
