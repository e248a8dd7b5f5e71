"""genval compare: refuses a different eval set; paired changes and McNemar against scipy."""

from __future__ import annotations

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


def test_paired_change_and_regression(tmp_path, capsys):
    region = ["a"] * 30 + ["b"] * 30
    make_run(tmp_path / "a", [1] * N, [1] * N, region=region, rouge_student=[0.6] * N, rouge_teacher=[0.7] * N)
    student_b = [1] * 30 + [0] * 15 + [1] * 15          # region b loses half its correct answers
    rouge_b = (np.full(N, 0.6) + np.linspace(-0.01, 0.03, N)).tolist()
    make_run(tmp_path / "b", [1] * N, student_b, region=region, rouge_student=rouge_b, rouge_teacher=[0.7] * N)
    result = compare_runs(tmp_path / "a", tmp_path / "b")
    rows = {(r["pair"], r["metric"]): r for r in result["overall"]}
    acc = rows[("student~reference", "label_correct")]
    assert acc["change"]["value"] == pytest.approx(-15 / 60)
    assert acc["mcnemar"]["b"] == 15 and acc["mcnemar"]["c"] == 0
    assert acc["mcnemar"]["p_value"] == pytest.approx(binomtest(15, 15, 0.5).pvalue)
    assert acc["regressed"]
    rouge = rows[("student~reference", "rougeL")]
    assert rouge["change"]["value"] == pytest.approx(np.mean(rouge_b) - 0.6)
    assert rouge["improved"] and not rouge["regressed"] and rouge["mcnemar"] is None
    slice_a = {(r["pair"], r["metric"]): r for r in result["slices"]["region"]["a"]}
    assert not slice_a[("student~reference", "label_correct")]["regressed"]
    assert any("on region=b" in line and "label_correct" in line for line in result["regressions"])
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--fail-on-regression"]) == 1
    assert "**Regressed**" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--fail-on-regression"]) == 0


def test_retention_change_is_paired(tmp_path):
    teacher_a = [1] * 50 + [0] * 10
    student_a = [1] * 45 + [0] * 15              # retention 45/50 = 0.9
    student_b = [1] * 40 + [0] * 20              # retention 40/50 = 0.8
    make_run(tmp_path / "a", teacher_a, student_a)
    make_run(tmp_path / "b", teacher_a, student_b)
    row = compare_runs(tmp_path / "a", tmp_path / "b")["overall"][0]
    assert row["metric"] == "accuracy_retention"
    assert row["before"] == pytest.approx(0.9) and row["after"] == pytest.approx(0.8)
    assert row["change"]["value"] == pytest.approx(-0.1)
    lo, hi = row["change"]["ci"]
    assert lo <= -0.1 <= hi and hi < 0 and row["regressed"]
