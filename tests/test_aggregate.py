"""Aggregation: numbers against independent computations on small hand-made runs."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest

from genval.analysis.stage import aggregate, build_summary, summary_schema
from genval.progress import Progress
from tests.test_aggregate_support import bernoulli, make_config, make_run


@pytest.fixture
def run_and_config(tmp_path):
    teacher = bernoulli(40, 0.9, 1)
    student = [t if i % 5 else 0 for i, t in enumerate(teacher)]
    region = ["a"] * 32 + ["b"] * 8
    kl = np.linspace(0.0, 0.4, 40).tolist()
    run = make_run(tmp_path / "run", teacher, student, region=region, kl=kl)
    return run, make_config(tmp_path), np.array(teacher, float), np.array(student, float), np.array(kl)


def test_overall_numbers_match_numpy(run_and_config):
    run, config, teacher, student, kl = run_and_config
    s = build_summary(run, config)
    cls = s["classification"]
    assert cls["teacher"]["accuracy"]["value"] == pytest.approx(teacher.mean())
    assert cls["student"]["accuracy"]["value"] == pytest.approx(student.mean())
    assert cls["accuracy_retention"]["value"] == pytest.approx(student.mean() / teacher.mean())
    assert cls["agreement_rate"]["value"] == pytest.approx((teacher == student).mean())
    assert cls["kl_teacher_student"]["value"] == pytest.approx(kl.mean())
    errors = cls["errors"]
    assert errors["only_student_wrong"] == pytest.approx(((teacher == 1) & (student == 0)).mean())
    assert errors["both_correct"] == pytest.approx(((teacher == 1) & (student == 1)).mean())
    assert sum(errors[k] for k in ("both_correct", "both_wrong", "only_student_wrong", "only_teacher_wrong")) \
        == pytest.approx(1.0)
    assert s["eval_set"] == {"path": str(config.eval_set), "sha256": "abc123", "n": 40}


def test_intervals_contain_estimate_and_match_normal_width(run_and_config):
    run, config, teacher, student, kl = run_and_config
    s = build_summary(run, config)
    for num in (s["classification"]["teacher"]["accuracy"], s["classification"]["accuracy_retention"],
                s["classification"]["kl_teacher_student"], s["metrics"]["student~reference"]["label_correct"]):
        lo, hi = num["ci"]
        assert lo <= num["value"] <= hi
    # The percentile bootstrap of a mean is close to the normal interval mean ± 1.96·sd/√n.
    lo, hi = s["classification"]["kl_teacher_student"]["ci"]
    half = 1.96 * kl.std(ddof=0) / np.sqrt(len(kl))
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.2)


def test_seeded_interval_is_reproducible(run_and_config):
    run, config, *_ = run_and_config
    assert build_summary(run, config)["classification"] == build_summary(run, config)["classification"]


def test_slices_small_one_marked_not_ranked(run_and_config):
    run, config, teacher, student, _ = run_and_config
    s = build_summary(run, config)
    a, b = s["slices"]["region"]["a"], s["slices"]["region"]["b"]
    assert a["n"] == 32 and not a["too_small_to_rank"] and a["rank"] == 1
    assert b["n"] == 8 and b["too_small_to_rank"] and b["rank"] is None
    assert a["classification"]["student"]["accuracy"]["value"] == pytest.approx(student[:32].mean())
    assert b["classification"]["teacher"]["accuracy"]["value"] == pytest.approx(teacher[32:].mean())


def test_ranking_puts_weakest_first(tmp_path):
    teacher = [1] * 90
    student = [1] * 30 + [0] * 6 + [1] * 24 + [0] * 12 + [1] * 18   # a: 100 %, b: 80 %, c: 60 %
    region = ["a"] * 30 + ["b"] * 30 + ["c"] * 30
    run = make_run(tmp_path / "run", teacher, student, region=region)
    slices = build_summary(run, make_config(tmp_path))["slices"]["region"]
    assert [slices[v]["rank"] for v in "abc"] == [3, 2, 1]
    assert slices["c"]["headline"]["metric"] == "accuracy_retention"
    assert slices["c"]["headline"]["value"] == pytest.approx(18 / 30)


def test_derived_difficulty_is_tertiles_of_teacher_quality(tmp_path):
    rouge_t = np.linspace(0.1, 0.9, 30)
    run = make_run(tmp_path / "run", [1] * 30, [1] * 30, rouge_student=rouge_t * 0.9, rouge_teacher=rouge_t)
    s = build_summary(run, make_config(tmp_path))
    diff = s["slices"]["difficulty"]
    assert {k: v["n"] for k, v in diff.items()} == {"hard": 10, "medium": 10, "easy": 10}
    assert diff["hard"]["metrics"]["teacher~reference"]["rougeL"]["value"] == pytest.approx(rouge_t[:10].mean())
    assert "tertiles of the mean of teacher~reference and student~reference rougeL" in s["slice_sources"]["difficulty"]


def test_derived_difficulty_never_splits_equal_scores(tmp_path):
    """Teacher and student equal the reference on 24 of 30 examples: the 24 tie at 1.0. Tertiles by position split
    them into 'medium' and 'easy' (a 'medium' slice of perfect examples ranked among the weakest); now they are
    one level, easy, and the six below are hard."""
    low = np.linspace(0.1, 0.6, 6)
    rouge = np.concatenate([np.ones(12), low, np.ones(12)])   # the ties spread through the file
    run = make_run(tmp_path / "run", [1] * 30, [1] * 30, rouge_student=rouge, rouge_teacher=rouge)
    diff = build_summary(run, make_config(tmp_path))["slices"]["difficulty"]
    assert {k: v["n"] for k, v in diff.items()} == {"hard": 6, "easy": 24}
    assert diff["easy"]["metrics"]["teacher~reference"]["rougeL"]["value"] == 1.0
    assert diff["hard"]["metrics"]["teacher~reference"]["rougeL"]["value"] == pytest.approx(low.mean())
    # Scores without ties keep the tertiles they had: ranks 1–10, 11–20, 21–30.
    distinct = np.linspace(0.05, 0.95, 30)[np.random.default_rng(1).permutation(30)]
    run = make_run(tmp_path / "run2", [1] * 30, [1] * 30, rouge_student=distinct, rouge_teacher=distinct)
    diff = build_summary(run, make_config(tmp_path))["slices"]["difficulty"]
    for level, part in (("hard", np.sort(distinct)[:10]), ("medium", np.sort(distinct)[10:20]),
                        ("easy", np.sort(distinct)[20:])):
        assert diff[level]["metrics"]["teacher~reference"]["rougeL"]["value"] == pytest.approx(part.mean())


def test_derived_difficulty_does_not_make_a_constant_student_look_weak_on_easy_examples(tmp_path):
    """A student that keeps 95 % of the teacher's quality on every example, both scored with noise. Tertiles of the
    teacher's score alone select the teacher's luck: student / teacher regresses to the mean, > 1.1 on "hard" and
    < 0.9 on "easy". Tertiles of both models' mean score leave every slice's retention near the run's."""
    rng = np.random.default_rng(0)
    n = 1500
    true = rng.beta(4, 6, n)
    teacher = np.clip(true + rng.normal(0, 0.08, n), 0, 1)
    student = np.clip(0.95 * true + rng.normal(0, 0.08, n), 0, 1)
    by_teacher = np.searchsorted(np.quantile(teacher, [1 / 3, 2 / 3]), teacher)
    naive = [student[by_teacher == k].mean() / teacher[by_teacher == k].mean() for k in range(3)]
    assert naive[0] > 1.1 and naive[2] < 0.9                      # what slicing by the teacher's score alone gives
    run = make_run(tmp_path / "run", [1] * n, [1] * n, rouge_student=student, rouge_teacher=teacher)
    s = build_summary(run, make_config(tmp_path))
    overall = s["fidelity"]["retention"]["rougeL"]["value"]
    order = np.lexsort((np.arange(n), (teacher + student) / 2))
    for k, level in enumerate(("hard", "medium", "easy")):
        block = s["slices"]["difficulty"][level]
        members = order[k * n // 3:(k + 1) * n // 3]
        assert block["n"] == n // 3
        assert block["metrics"]["teacher~reference"]["rougeL"]["value"] == pytest.approx(teacher[members].mean())
        assert abs(block["fidelity"]["retention"]["rougeL"]["value"] - overall) < 0.03


def test_judge_rate_and_generation_errors(tmp_path):
    verdicts = ["equivalent"] * 27 + ["not_equivalent"] * 10 + [None] * 3
    run = make_run(tmp_path / "run", [1] * 40, [1] * 40, verdicts=verdicts, errors={"student": 4})
    s = build_summary(run, make_config(tmp_path))
    assert s["judge"]["name"] == "j1"
    assert s["judge"]["equivalence_rate"]["value"] == pytest.approx(27 / 37)
    assert s["judge"]["equivalence_rate"]["n"] == 37
    assert s["judge"]["validated"] is False
    assert s["errors"]["student"] == {"failed": 4, "n": 40}
    assert s["generation"]["student"]["value"] == pytest.approx(0.1)


def _ece(conf, hit, bins=10):
    """An independent ECE: explicit bin bounds, the last one closed at 1.0."""
    total = 0.0
    for b in range(bins):
        rows = [i for i, c in enumerate(conf) if b / bins <= c < (b + 1) / bins or (b == bins - 1 and c == 1.0)]
        if rows:
            total += len(rows) / len(conf) * abs(np.mean([hit[i] for i in rows]) - np.mean([conf[i] for i in rows]))
    return total


def test_probability_figures_come_from_the_outputs_label_probs(tmp_path):
    from scipy.stats import kendalltau, spearmanr

    rng = np.random.default_rng(3)
    gold = [0 if i % 2 else 1 for i in range(40)]  # make_run's gold: "pos" (index 0) for odd i, else "neg"
    probs = {role: [[p, 1 - p] for p in rng.uniform(0.05, 0.95, 40)] for role in ("teacher", "student")}
    run = make_run(tmp_path / "run", [1] * 40, [1] * 36 + [0] * 4, probs=probs)
    cls = build_summary(run, make_config(tmp_path))["classification"]
    for role in ("teacher", "student"):
        conf = [max(p) for p in probs[role]]
        hit = [float(int(np.argmax(p)) == g) for p, g in zip(probs[role], gold)]
        assert cls["ece"][role]["value"] == pytest.approx(_ece(conf, hit))
        lo, hi = cls["ece"][role]["ci"]
        assert lo <= cls["ece"][role]["value"] <= hi and cls["ece"][role]["n"] == 40
        brier = np.mean([(p[0] - (g == 0)) ** 2 + (p[1] - (g == 1)) ** 2 for p, g in zip(probs[role], gold)])
        assert cls[role]["brier"] == pytest.approx(brier)
    t_conf, s_conf = [max(p) for p in probs["teacher"]], [max(p) for p in probs["student"]]
    assert cls["spearman"] == pytest.approx(spearmanr(t_conf, s_conf).statistic)
    assert cls["kendall"] == pytest.approx(kendalltau(t_conf, s_conf).statistic)
    assert cls["temperature"]["nll_after"] <= cls["temperature"]["nll_before"] + 1e-9
    assert sum(row["n"] for row in cls["reliability"]["student"]) == 40
    assert cls["student"]["accuracy"]["value"] == pytest.approx(0.9)  # from the label_correct rows


def test_written_summary_follows_the_schema(run_and_config):
    run, config, *_ = run_and_config
    record = aggregate(run, config, Progress(quiet=True))
    summary = json.loads(run.path("summary.json").read_text())
    jsonschema.validate(summary, summary_schema())
    assert record["level"] == summary["status"]["level"] and "status" not in record
    summary["classification"]["errors"]["both_wrong"] = 2.0  # a share over 1 breaks the schema
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(summary, summary_schema())


def test_resampled_means_pair_the_rows_like_one_draw_of_all_indices():
    from genval.analysis import numbers

    values = np.random.default_rng(5).random(5000)
    other = values ** 2
    boot = numbers.Boot(1000, 0.95, 7)
    idx = np.random.default_rng(7).integers(0, 5000, size=(1000, 5000))  # every resample at once
    means, squares = numbers.resampled_means([values, other], boot)
    assert np.allclose(means, values[idx].mean(axis=1)) and np.allclose(squares, other[idx].mean(axis=1))
