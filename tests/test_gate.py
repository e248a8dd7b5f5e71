"""The release gate: rules on summary numbers, exit codes 0 pass / 1 fail / 2 user mistake."""

from __future__ import annotations

import json

import numpy as np
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
    assert code == 2 and "needs at least one of min, max, lower, upper, max_regression" in out.err


def test_a_slice_the_run_lacks_is_a_user_mistake_naming_the_close_match(tmp_path, run_dir, capsys):
    # A typo once failed the rule (exit 1) as if the slice were weak; it is the user's mistake, said as such.
    code, out = gate(tmp_path, run_dir, [{"metric": "accuracy_retention", "min": 0.5, "slice": "region=bb"}], capsys)
    assert code == 2 and "no example has region=bb (its values: a, b); did you mean 'b'?" in out.err
    code, out = gate(tmp_path, run_dir, [{"metric": "accuracy_retention", "min": 0.5, "slice": "regoin=*"}], capsys)
    assert code == 2 and "the run is not sliced by 'regoin'" in out.err and "did you mean 'region'?" in out.err


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
    assert code == 2 and "'rules'" in out.err and "metric [pair] [lower|upper] >= number" in out.err


# --- rules on intervals -------------------------------------------------------------------
def _summary_and_gate(tmp_path, teacher, student, rules, region=None, verdicts=None):
    from genval.analysis.gate import evaluate
    from genval.analysis.stage import build_summary, paired_numbers
    from genval.config import GateConfig

    run = make_run(tmp_path / "run", teacher, student, region=region, verdicts=verdicts)
    config = make_config(tmp_path)
    summary = build_summary(run, config)
    gate = GateConfig.model_validate({"rules": rules})
    return summary, evaluate(gate, summary, None, paired_numbers(run, config, gate.rules))


def test_a_point_rule_passes_where_the_lower_end_of_the_interval_does_not(tmp_path):
    summary, result = _summary_and_gate(tmp_path, [1] * N, [1] * 57 + [0] * 3,
                                        ["accuracy_retention >= 0.95", "accuracy_retention lower >= 0.92"])
    retention = summary["classification"]["accuracy_retention"]
    assert retention["value"] == pytest.approx(0.95) and retention["ci"][0] < 0.92
    point, interval = result["rules"]
    assert point["passed"] and not interval["passed"]
    assert interval["reason"] == f"lower end {retention['ci'][0]:.4g} < 0.92"
    assert interval["tests"][0]["p"] > result["alpha"] == pytest.approx(0.025)


def test_slice_interval_rules_are_holm_corrected_over_the_slices_tested(tmp_path):
    from scipy.stats import norm

    region = ["a"] * 40 + ["b"] * 40 + ["c"] * 40
    student = ([1] * 38 + [0] * 2) * 3          # the same data, so the same interval, in every slice
    summary, _ = _summary_and_gate(tmp_path, [1] * 120, student, ["accuracy_retention >= 0"], region=region)
    num = summary["slices"]["region"]["a"]["classification"]["accuracy_retention"]
    z = norm.ppf(0.975)
    se = (num["value"] - num["ci"][0]) / z
    bound = num["value"] - norm.ppf(0.99) * se      # one-sided p = 0.01 in each slice: passes alone
    _, alone = _summary_and_gate(tmp_path / "1", [1] * 120, student, [f"accuracy_retention lower >= {bound} on region=a"],
                                 region=region)
    assert alone["passed"] and alone["rules"][0]["tests"][0]["p"] == pytest.approx(0.01)
    _, three = _summary_and_gate(tmp_path / "3", [1] * 120, student,
                                 [f"accuracy_retention lower >= {bound} on region=*"], region=region)
    assert [r["slice"] for r in three["rules"]] == ["region=a", "region=b", "region=c"]
    # Holm by hand: three equal p = 0.01 → adjusted 3 × 0.01 = 0.03 > α = 0.025, so none passes.
    assert [t["p_holm"] for r in three["rules"] for t in r["tests"]] == pytest.approx([0.03] * 3)
    assert not three["passed"] and all("Holm" in r["reason"] for r in three["rules"])


def test_holm_adjustment_matches_the_step_down_by_hand():
    from genval.analysis.significance import holm

    p = [0.01, 0.04, 0.03, None, 0.005]
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 → max(0.06, 0.04) = 0.06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, None, 0.02])


def _bootstrap_mean_ci(values, n_boot=500, seed=0):
    """The expanded percentile bootstrap of a mean (Hesterberg 2015), written out."""
    from tests.test_resampling import expanded

    values = np.asarray(values, float)
    idx = np.random.default_rng(seed).integers(0, values.size, size=(n_boot, values.size))
    return np.quantile(values[idx].mean(axis=1), expanded(values.size))


def _newcombe(both, only_first, only_second, neither):
    """Newcombe's method 10 for p1 − p2 on paired 0/1 outcomes, from scipy's Wilson intervals (no shared code)."""
    from scipy.stats import binomtest

    n = both + only_first + only_second + neither
    p1, p2 = (both + only_first) / n, (both + only_second) / n
    w1 = binomtest(both + only_first, n).proportion_ci(0.95, method="wilson")
    w2 = binomtest(both + only_second, n).proportion_ci(0.95, method="wilson")
    den = (both + only_first) * (only_second + neither) * (both + only_second) * (only_first + neither)
    cross = both * neither - only_first * only_second
    phi = 0.0 if not den else (max(cross - n / 2, 0) if cross > 0 else cross) / den ** 0.5
    lo = p1 - p2 - ((p1 - w1.low) ** 2 + (w2.high - p2) ** 2 - 2 * phi * (p1 - w1.low) * (w2.high - p2)) ** 0.5
    hi = p1 - p2 + ((w1.high - p1) ** 2 + (p2 - w2.low) ** 2 - 2 * phi * (w1.high - p1) * (p2 - w2.low)) ** 0.5
    return [lo, hi]


def test_non_inferiority_tests_the_paired_interval_of_student_minus_teacher(tmp_path):
    teacher = [1] * N
    student = [1] * 28 + [0, 0] + [1] * 30           # 2 of 60 wrong: student − teacher = −1/30
    rules = [{"metric": "accuracy", "non_inferiority": {"margin": 0.15}},
             {"metric": "accuracy", "non_inferiority": {"margin": 0.02}},
             {"metric": "accuracy", "non_inferiority": {"margin": 0.02}, "slice": "region=b"}]
    _, result = _summary_and_gate(tmp_path, teacher, student, rules, region=["a"] * 30 + ["b"] * 30)
    # Accuracy is a 0/1 number: Newcombe's paired interval, which sees the teacher's uncertainty too (60 of 60 right
    # is not a certain 100 %); a percentile bootstrap of the differences gave [−0.083, 0].
    lo, hi = _newcombe(58, 0, 2, 0)
    wide_margin, narrow, on_b = result["rules"]
    assert wide_margin["tests"][0]["number"]["value"] == pytest.approx(-1 / 30)
    assert wide_margin["tests"][0]["number"]["ci"] == pytest.approx([lo, hi])
    assert wide_margin["tests"][0]["number"]["method"].startswith("Newcombe")
    assert wide_margin["passed"] == (lo >= -0.15) and narrow["passed"] == (lo >= -0.02)
    assert wide_margin["passed"] and not narrow["passed"]
    # Region b: both always right on 30 examples. Not proof of non-inferiority within 0.02 — it was, at [0, 0].
    number = on_b["tests"][0]["number"]
    assert number["value"] == 0.0 and number["ci"] == pytest.approx(_newcombe(30, 0, 0, 0))
    assert number["ci"][0] < -0.02 and not on_b["passed"]


def test_non_inferiority_of_a_continuous_number_is_the_paired_bootstrap(tmp_path):
    rng = np.random.default_rng(3)
    rouge_t = rng.random(N)
    rouge_s = np.clip(rouge_t - 0.02 + rng.normal(0, 0.05, N), 0, 1)
    run = make_run(tmp_path / "run", [1] * N, [1] * N, rouge_student=rouge_s.tolist(), rouge_teacher=rouge_t.tolist())
    from genval.analysis.gate import evaluate
    from genval.analysis.stage import build_summary, paired_numbers
    from genval.config import GateConfig

    config = make_config(tmp_path)
    gate_config = GateConfig.model_validate({"rules": [{"metric": "rougeL", "non_inferiority": {"margin": 0.05}}]})
    result = evaluate(gate_config, build_summary(run, config), None, paired_numbers(run, config, gate_config.rules))
    number = result["rules"][0]["tests"][0]["number"]
    lo, hi = _bootstrap_mean_ci(rouge_s - rouge_t)
    assert number["ci"] == pytest.approx([lo, hi]) and number["method"].startswith("percentile bootstrap")


def test_a_rule_on_an_unvalidated_judge_fails(tmp_path):
    verdicts = ["equivalent"] * 45 + ["not_equivalent"] * 15
    _, result = _summary_and_gate(tmp_path, [1] * N, [1] * N, ["equivalence_rate >= 0.5"], verdicts=verdicts)
    rule = result["rules"][0]
    assert rule["value"] == 0.75 and not rule["passed"]
    assert rule["reason"].startswith("judge not validated: j1")


def test_a_rerun_that_skips_every_stage_repeats_the_gate_and_the_decision(small_run, tmp_path, capsys):
    import yaml

    config = yaml.safe_load(small_run.read_text())
    config["gate"] = {"rules": ["rougeL [student~reference] >= 0.99", "bleu [student~reference] >= 0"]}
    path = write_yaml(tmp_path / "gated.yaml", config)
    outs = []
    for _ in range(2):
        assert main(["run", str(path), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
        outs.append(capsys.readouterr().out)
    summary = json.loads((tmp_path / "runs" / "small" / "summary.json").read_text())
    failing = summary["gate"]["failing"]
    assert len(failing) == 1 and failing[0].startswith("rougeL [student~reference] >= 0.99")
    for out in outs:  # the second run skipped every stage and still says both
        assert f"gate: FAIL\n  failing: {failing[0]}\n" in out
        assert f"decision: {summary['decision']['verdict'].replace('_', ' ')}" in out


def test_a_passing_interval_rule_shows_the_end_it_tested_not_only_the_point_value(tmp_path, run_dir, capsys):
    code, out = gate(tmp_path, run_dir, ["accuracy_retention lower >= 0.5 on region=b",
                                         "accuracy_retention >= 0.5"], capsys)
    summary = json.loads((run_dir / "summary.json").read_text())
    lo = summary["slices"]["region"]["b"]["classification"]["accuracy_retention"]["ci"][0]
    lines = out.out.splitlines()
    assert code == 0 and lo < 0.7
    # "(value 0.7)" alone read as if 0.7 had been held against 0.5; the lower end was.
    assert lines[1].strip() == f"ok   accuracy_retention lower >= 0.5 on region=b (value 0.7; lower end {lo:.4g} >= 0.5)"
    assert lines[2].strip() == "ok   accuracy_retention >= 0.5 (value 0.85)"
