"""genval compare: refuses a different eval set; paired changes and McNemar against scipy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binomtest

from genval.analysis.compare import compare_runs, mcnemar_exact
from genval.cli import main
from tests.test_aggregate_support import make_run

N = 60


def test_refuses_mismatched_eval_set(tmp_path, capsys):
    make_run(tmp_path / "a", [1] * N, [1] * N, sha="aaa111")
    make_run(tmp_path / "b", [1] * N, [1] * N, sha="bbb222")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fingerprint" in err and "same frozen eval set" in err


@pytest.mark.parametrize("b,c", [(0, 0), (3, 0), (7, 2), (10, 10), (40, 25)])
def test_mcnemar_matches_exact_binomial(b, c):
    before = [1] * b + [0] * c + [1] * 5
    after = [0] * b + [1] * c + [1] * 5
    out = mcnemar_exact(before, after)
    assert (out["b"], out["c"]) == (b, c)
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert out["p_value"] == pytest.approx(expected)


def _find(result, kind, metric, pair, where=None):
    return next(r for r in result[kind] if (r["metric"], r["pair"], r["slice"]) == (metric, pair, where))


def test_paired_change_and_regression(tmp_path, capsys):
    region = ["a"] * 30 + ["b"] * 30
    make_run(tmp_path / "a", [1] * N, [1] * N, region=region, rouge_student=[0.6] * N, rouge_teacher=[0.7] * N)
    student_b = [1] * 30 + [0] * 15 + [1] * 15          # region b loses half its correct answers
    rouge_b = (np.full(N, 0.6) + np.linspace(-0.01, 0.03, N)).tolist()
    make_run(tmp_path / "b", [1] * N, student_b, region=region, rouge_student=rouge_b, rouge_teacher=[0.7] * N)
    result = compare_runs(tmp_path / "a", tmp_path / "b")
    acc = _find(result, "regressed", "label_correct", "student~reference")
    assert acc["change"] == pytest.approx(-15 / 60) and acc["test"] == "mcnemar"
    assert acc["p"] == pytest.approx(binomtest(15, 15, 0.5).pvalue)
    assert set(acc) >= {"metric", "pair", "slice", "a", "b", "change", "ci", "p"}
    rouge = _find(result, "improved", "rougeL", "student~reference")
    assert rouge["change"] == pytest.approx(np.mean(rouge_b) - 0.6) and rouge["test"] == "paired bootstrap"
    assert _find(result, "unchanged", "label_correct", "student~reference", "region=a")["change"] == 0
    assert _find(result, "regressed", "label_correct", "student~reference", "region=b")["change"] == -0.5
    # The teacher did not change: none of its rows is listed.
    assert not [r for kind in ("regressed", "improved", "unchanged", "changed") for r in result[kind]
                if r["pair"].startswith("teacher")]
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "**Regressed**" in out and "**Improved**" in out and "- rougeL [student~reference] overall" in out
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--fail-on-regression"]) == 0


def test_retention_change_is_paired(tmp_path):
    teacher_a = [1] * 50 + [0] * 10
    student_a = [1] * 45 + [0] * 15              # retention 45/50 = 0.9
    student_b = [1] * 25 + [0] * 35              # retention 25/50 = 0.5
    make_run(tmp_path / "a", teacher_a, student_a)
    make_run(tmp_path / "b", teacher_a, student_b)
    row = _find(compare_runs(tmp_path / "a", tmp_path / "b"), "regressed", "accuracy_retention", "student~teacher")
    assert row["a"] == pytest.approx(0.9) and row["b"] == pytest.approx(0.5)
    assert row["change"] == pytest.approx(-0.4)
    lo, hi = row["ci"]
    assert lo <= -0.4 <= hi and hi < 0


def _add_rows(run_dir, pair, metric, values):
    """Adds per-example rows of one metric to a hand-made run's scores table."""
    import pandas as pd

    from genval.runfolder import Run

    run = Run(run_dir)
    scores = run.read_table("scores")
    extra = pd.DataFrame({"id": [f"e{i:03d}" for i in range(len(values))], "pair": pair, "metric": metric,
                          "value": pd.array(values, dtype="Float64"), "detail": None})
    run.write_table("scores", pd.concat([scores, extra], ignore_index=True))


def test_direction_comes_from_the_registry_and_noise_is_unchanged(tmp_path, capsys):
    make_run(tmp_path / "a", [1] * N, [1] * N, kl=[0.5] * N, rouge_student=[0.6] * N, rouge_teacher=[0.7] * N)
    kl_b = (0.2 + np.linspace(-0.01, 0.01, N)).tolist()
    make_run(tmp_path / "b", [1] * N, [1] * N, kl=kl_b, rouge_student=[0.6 + 1e-12] * N, rouge_teacher=[0.7] * N)
    _add_rows(tmp_path / "a", "student", "json_fenced", [1.0] * 30 + [0.0] * 30)
    _add_rows(tmp_path / "b", "student", "json_fenced", [0.0] * N)
    result = compare_runs(tmp_path / "a", tmp_path / "b")
    assert _find(result, "improved", "kl", "student~teacher")["change"] == pytest.approx(-0.3)
    assert _find(result, "improved", "json_fenced", "student")["change"] == -0.5
    noise = _find(result, "unchanged", "rougeL", "student~reference")
    assert 0 < noise["change"] < 1e-11 and noise["p_holm"] is None   # shows as 0.0000: not tested
    assert not result["regressed"]
    json_path = tmp_path / "c.json"
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json", str(json_path)]) == 0
    data = json.loads(json_path.read_text())
    assert all(isinstance(r, dict) and {"metric", "pair", "slice", "a", "b", "change", "ci", "p"} <= set(r)
               for kind in ("regressed", "improved", "unchanged") for r in data[kind])
    out = capsys.readouterr().out
    assert "**Improved**" in out and "- kl [student~teacher] overall: 0.5000 → 0.2000 (change -0.3000" in out
    assert "e-1" not in out   # no 6.5e-18-style noise printed


def test_ops_deltas_are_included(tmp_path):
    for name, p50 in (("a", 0.8), ("b", 0.5)):
        run = make_run(tmp_path / name, [1] * N, [1] * N)
        run.write_json("ops.json", {"roles": {"student": {"latency_p50_s": p50, "requests_per_s": 1 / p50}},
                                    "savings": {}})
    result = compare_runs(tmp_path / "a", tmp_path / "b")
    latency = _find(result, "untested", "latency_p50_s", "student")
    assert latency["a"] == 0.8 and latency["b"] == 0.5 and latency["change"] == pytest.approx(-0.3)
    assert latency["p"] is None and latency["test"] == "not tested (no interval)"


def test_ops_figures_with_intervals_are_tested_as_independent_estimates(tmp_path):
    from scipy.stats import norm

    for name, (p50, ci) in (("a", (0.8, [0.7, 0.9])), ("b", (0.5, [0.45, 0.55]))):
        run = make_run(tmp_path / name, [1] * N, [1] * N)
        run.write_json("ops.json", {"roles": {"student": {"latency_p50_s": p50, "latency_p50_ci_s": ci}}})
    latency = _find(compare_runs(tmp_path / "a", tmp_path / "b"), "improved", "latency_p50_s", "student")
    z = norm.ppf(0.975)
    se = np.hypot(0.2 / (2 * z), 0.1 / (2 * z))
    assert latency["ci"] == pytest.approx([-0.3 - z * se, -0.3 + z * se])
    assert latency["p"] == pytest.approx(2 * norm.sf(0.3 / se))


def _with_binary_judge(root, verdicts):
    """A run whose judge is binary: its score column is its 0/1 verdict, the same number under a second name."""
    from genval.runfolder import Run

    make_run(root, [1] * N, [1] * N, verdicts=verdicts, region=["a"] * 30 + ["b"] * 30)
    run = Run(root)
    judgments = run.read_table("judgments")
    judgments["score"] = judgments["equivalent"]
    run.write_table("judgments", judgments)


def test_a_binary_judges_score_and_verdict_are_tested_once(tmp_path, capsys):
    _with_binary_judge(tmp_path / "a", ["equivalent"] * 50 + ["not_equivalent"] * 10)
    _with_binary_judge(tmp_path / "b", ["equivalent"] * 30 + ["not_equivalent"] * 30)
    result = compare_runs(tmp_path / "a", tmp_path / "b")
    tested = [r for kind in ("regressed", "improved", "unchanged", "changed") for r in result[kind]]
    assert not [r for r in tested if r["metric"] == "judge:j1:score"]
    verdict = _find(result, "regressed", "judge:j1:equivalent", "student~teacher")
    assert verdict["change"] == pytest.approx(-20 / 60)
    assert {(r["metric"], r["slice"], r["same_as"]) for r in result["same"]} >= {
        ("judge:j1:score", None, "judge:j1:equivalent"), ("judge:j1:score", "region=a", "judge:j1:equivalent")}
    # Holm's family counts each distinct number once: what is tested, and nothing twice.
    assert result["tests"] == sum(r["p_holm"] is not None for r in tested)
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "Tested once (the same values under another name): judge:j1:score [student~teacher] = " \
           "judge:j1:equivalent" in capsys.readouterr().out


def test_a_binary_change_has_newcombes_interval_even_where_nothing_changed(tmp_path):
    from tests.test_gate import _newcombe

    region = ["a"] * 30 + ["b"] * 30
    make_run(tmp_path / "a", [1] * N, [1] * N, region=region)
    make_run(tmp_path / "b", [1] * N, [1] * 30 + [0] * 15 + [1] * 15, region=region)
    result = compare_runs(tmp_path / "a", tmp_path / "b")
    overall = _find(result, "regressed", "label_correct", "student~reference")
    # after − before: 45 both right, 0 right only after, 15 right only before
    assert overall["ci"] == pytest.approx(_newcombe(45, 0, 15, 0))
    same = _find(result, "unchanged", "label_correct", "student~reference", "region=a")
    assert same["change"] == 0 and same["ci"] == pytest.approx(_newcombe(30, 0, 0, 0)) and same["ci"][0] < 0


def test_an_incomplete_run_is_named_as_such(tmp_path, capsys):
    """Comparing against a run whose decision is INCOMPLETE (5 of 60 student requests failed, counted as wrong)
    said nothing of it: a drop could be read as the model's."""
    from genval.analysis.stage import aggregate
    from genval.progress import Progress
    from tests.test_aggregate_support import make_config

    for name, errors in (("a", None), ("b", {"student": 5})):
        run = make_run(tmp_path / name, [1] * N, [1] * N, errors=errors)
        aggregate(run, make_config(tmp_path), Progress(quiet=True))
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["decision"]["verdict"] == "INCOMPLETE"
    result = compare_runs(tmp_path / "a", tmp_path / "b")
    assert result["incomplete"] == {"a": None, "b": summary["decision"]["reasons"][0]}
    assert "5 of 60 student requests failed" in result["incomplete"]["b"]
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert f"**Run B ({tmp_path / 'b'}) is INCOMPLETE**: 5 of 60 student requests failed" in out
    assert "INCOMPLETE" not in out.replace(f"**Run B ({tmp_path / 'b'}) is INCOMPLETE**", "")


def test_a_paired_p_value_of_a_few_examples_is_never_below_the_exact_tests_least(tmp_path):
    """Four examples whose KL all rose, by different amounts: an exact paired test (sign flips of the four
    differences) cannot go below 2 / 2⁴ = 0.125, so the change is not a regression at 0.05, whatever the normal
    approximation to the bootstrap interval says. On 60 examples the floor (2 · 0.5⁶⁰) changes nothing."""
    import itertools

    region = ["a"] * 56 + ["b"] * 4
    kl_a = [0.2] * N
    kl_b = [0.2] * 56 + [0.30, 0.31, 0.32, 0.33]
    make_run(tmp_path / "a", [1] * N, [1] * N, region=region, kl=kl_a)
    make_run(tmp_path / "b", [1] * N, [1] * N, region=region, kl=kl_b)
    result = compare_runs(tmp_path / "a", tmp_path / "b")
    rows = [r for kind in ("regressed", "unchanged", "improved") for r in result[kind]
            if (r["metric"], r["pair"], r["slice"]) == ("kl", "student~teacher", "region=b")]
    diffs = np.array(kl_b[56:]) - 0.2
    flips = [abs((diffs * np.array(s)).mean()) >= abs(diffs.mean()) - 1e-12
             for s in itertools.product([1, -1], repeat=4)]
    exact = sum(flips) / 16
    assert exact == 0.125 and rows and rows[0]["p"] >= exact
    assert not [r for r in result["regressed"] if r["slice"] == "region=b"]
