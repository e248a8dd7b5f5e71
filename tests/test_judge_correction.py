"""The judge's rate corrected by people's ratings: Rogan–Gladen and PPI++, against hand computation and simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from genval.analysis.judge_correction import (
    MIN_YOUDEN,
    PSEUDO,
    cells_from,
    corrected,
    merged_strata,
    normal_ci,
    ppi,
    ppi_of,
    rogan_gladen,
    two_by_two,
)
from genval.analysis.numbers import Boot
from genval.analysis.stage import build_summary
from tests.test_aggregate_support import make_config, make_run

# 300 judged examples: 100 rated by people (se = 45/50 = 0.9, sp = 40/50 = 0.8), 200 judged only; none unanswered.
CELLS = [45, 5, 10, 40, 125, 75, 0]


def test_rogan_gladen_by_hand():
    out = rogan_gladen(CELLS, Boot(2000, 0.95, 3))
    assert out["sensitivity"] == 0.9 and out["specificity"] == 0.8 and out["youden_j"] == pytest.approx(0.7)
    assert out["raw"] == pytest.approx(180 / 300)                              # (45 + 10 + 125) / 300 = 0.6
    assert out["value"] == pytest.approx((0.6 + 0.8 - 1) / (0.9 + 0.8 - 1))    # 0.5714…
    assert out["n"] == 300 and out["human_n"] == 100
    lo, hi = out["ci"]
    assert lo < out["value"] < hi


def _examples(cells):
    """The examples behind cell counts: each one's verdict and people's rating (NaN where unrated)."""
    verdict = np.repeat([1, 0, 1, 0, 1, 0], cells[:6]).astype(float)
    human = np.repeat([1, 1, 0, 0, np.nan, np.nan], cells[:6])
    return verdict, human


def test_the_interval_resamples_whole_examples_verdict_and_rating_together():
    """An explicit bootstrap over example indices, each carrying its verdict and its rating, gives the same interval
    (the ½ pseudo-count in each rated cell moves it by far less than the tolerance at 100 rated items)."""
    verdict, human = _examples(CELLS)
    rng = np.random.default_rng(11)
    stats = []
    for _ in range(4000):
        k = rng.integers(0, verdict.size, verdict.size)
        v, h = verdict[k], human[k]
        rated = ~np.isnan(h)
        se, sp = v[rated & (h == 1)].mean(), 1 - v[rated & (h == 0)].mean()
        stats.append(np.clip((v.mean() + sp - 1) / (se + sp - 1), 0, 1))
    expected = np.quantile(stats, [0.025, 0.975])
    lo, hi = rogan_gladen(CELLS, Boot(4000, 0.95, 5))["ci"]
    assert lo == pytest.approx(expected[0], abs=0.015) and hi == pytest.approx(expected[1], abs=0.015)
    # What genval did before: the judged and the rated samples resampled independently — a wider interval
    # (it covered 99.3 % of the time for a 95 % level), since it ignores that the rated items are judged ones.
    p_star = rng.binomial(300, 0.6, 4000) / 300
    cells = rng.multinomial(100, np.array([45, 5, 10, 40]) / 100, 4000)
    se_star, sp_star = cells[:, 0] / (cells[:, 0] + cells[:, 1]), cells[:, 3] / (cells[:, 3] + cells[:, 2])
    independent = np.quantile(np.clip((p_star + sp_star - 1) / (se_star + sp_star - 1), 0, 1), [0.025, 0.975])
    assert hi - lo < 0.9 * (independent[1] - independent[0])


def test_clipped_to_zero_and_not_corrected_when_youden_is_small():
    assert rogan_gladen([45, 5, 10, 40, 0, 200, 0], Boot(200))["value"] == 0.0   # p = 55/300: (0.183 + 0.8 − 1) < 0
    weak = rogan_gladen([30, 20, 25, 25, 60, 40, 0], Boot(200))                  # J = 0.6 + 0.5 − 1 = 0.1
    assert weak["value"] is None and weak["youden_j"] == pytest.approx(0.1) and weak["youden_j"] < MIN_YOUDEN
    assert "Youden's J" in weak["note"]
    assert rogan_gladen([30, 20, 0, 0, 50, 50, 0])["note"].startswith("not corrected")
    assert "no example here has a human rating" in rogan_gladen([0, 0, 0, 0, 50, 50, 0])["note"]


def test_unanswered_examples_count_as_not_equivalent():
    out = rogan_gladen([45, 5, 10, 40, 125, 75, 100], Boot(200))
    assert out["n"] == 400 and out["value"] == pytest.approx(0.5714285714 * 300 / 400)
    assert out["on_judged"]["value"] == pytest.approx(0.5714285714) and out["on_judged"]["n"] == 300


def test_two_by_two_collapses_a_confusion_by_the_judges_meaning():
    confusion = {"labels": ["A", "B", "tie"], "matrix": [[5, 1, 2], [0, 6, 1], [1, 2, 9]]}   # rows human
    assert two_by_two(confusion, lambda label: label == "tie") == {"tp": 9, "fn": 3, "fp": 3, "tn": 12}
    ordinal = {"labels": ["1", "2", "3", "4", "5"], "matrix": np.eye(5, dtype=int).tolist()}
    assert two_by_two(ordinal, lambda label: float(label) >= 4) == {"tp": 2, "fn": 0, "fp": 0, "tn": 3}
    assert list(cells_from({"tp": 45, "fn": 5, "fp": 10, "tn": 40}, 180, 300, 7)) == [45, 5, 10, 40, 125, 75, 7]
    assert cells_from({"tp": 45, "fn": 5, "fp": 10, "tn": 40}, 30, 300, 0) is None   # more rated yes than judged yes


# PPI, worked by hand from the papers' formulas. 10 rated items: people Y, judge f — (1,1) ×5, (1,0) ×1, (0,1) ×1,
# (0,0) ×3 — and 20 judged only, 14 of them equivalent.
SMALL = [5, 1, 1, 3, 14, 6, 0]


def test_ppi_by_hand():
    # Ȳ = 6/10, f̄ = 6/10, mean(Y·f) = 5/10: Cov_n(Y, f) = 0.5 − 0.36 = 0.14 (1/n, as ppi_py's _calc_lam_glm).
    # f over all 30: q = 20/30, Var (ddof 1) = (2/3)(1/3)(30/29) = 0.229885…
    # λ = 0.14 / ((1 + 10/20) · 0.229885) = 0.406;  θ̂ = λ·14/20 + (0.6 − λ·0.6) = 0.6 + 0.1·0.406 = 0.6406.
    lam = 0.14 / (1.5 * (2 / 3) * (1 / 3) * 30 / 29)
    assert lam == pytest.approx(0.406)
    out = ppi(SMALL, Boot(1000))
    assert out["lambda"] == pytest.approx(lam) and out["value"] == pytest.approx(0.6 + 0.1 * lam)
    assert out["classic"]["value"] == pytest.approx(0.7 + (0.6 - 0.6))     # λ = 1: mean_N(f) + mean_n(Y − f)
    # The normal interval: Var_N(λf)/N = λ²·0.7·0.3/20; Var_n(Y − λf) over the 10 rated (ddof 0).
    y = np.array([1] * 5 + [1] + [0] + [0] * 3, float)
    f = np.array([1] * 5 + [0] + [1] + [0] * 3, float)
    se = np.sqrt(lam ** 2 * 0.7 * 0.3 / 20 + (y - lam * f).std() ** 2 / 10)
    assert out["normal_ci"] == pytest.approx([out["value"] - norm.ppf(0.975) * se, out["value"] + norm.ppf(0.975) * se])


def test_ppi_matches_ppi_pys_computation_on_the_arrays():
    """ppi_py's mean estimate (`ppi_mean_pointestimate`, `_calc_lam_glm`, `ppi_mean_ci`) written on example arrays."""
    rng = np.random.default_rng(4)
    y = (rng.random(80) < 0.6).astype(float)
    f = np.where(y == 1, rng.random(80) < 0.9, rng.random(80) < 0.2).astype(float)
    f_u = (rng.random(500) < 0.58).astype(float)
    n, big_n = 80, 500
    grads, grads_hat = y - y.mean(), f - f.mean()
    lam = float(np.clip((grads @ grads_hat / n) / ((1 + n / big_n) * np.cov(np.concatenate([f, f_u]))), 0, 1))
    theta = lam * f_u.mean() + (y - lam * f).mean()
    half = norm.ppf(0.975) * np.sqrt((lam * f_u).std() ** 2 / big_n + (y - lam * f).std() ** 2 / n)
    cells = [((y == 1) & (f == 1)).sum(), ((y == 1) & (f == 0)).sum(), ((y == 0) & (f == 1)).sum(),
             ((y == 0) & (f == 0)).sum(), f_u.sum(), (1 - f_u).sum(), 0]
    value, _, found = (float(v) for v in ppi_of(np.array(cells, float)))
    assert found == pytest.approx(lam) and value == pytest.approx(theta)
    assert normal_ci(np.array(cells, float), lam, 0.95) == pytest.approx([theta - half, theta + half])


def test_both_cover_the_true_rate_by_simulation():
    """A judge with se 0.9, sp 0.85 on 400 examples, 100 of them rated by people: the true rate 0.6 is covered."""
    rng = np.random.default_rng(21)
    hits = {"rg": 0, "ppi": 0}
    reps = 400
    for r in range(reps):
        human = rng.random(400) < 0.6
        judge = np.where(human, rng.random(400) < 0.9, rng.random(400) >= 0.85)
        rated = np.zeros(400, bool)
        rated[rng.choice(400, 100, replace=False)] = True
        cells = [(rated & human & judge).sum(), (rated & human & ~judge).sum(), (rated & ~human & judge).sum(),
                 (rated & ~human & ~judge).sum(), (~rated & judge).sum(), (~rated & ~judge).sum(), 0]
        rg, pp = corrected(cells, Boot(500, 0.95, r))
        hits["rg"] += rg["ci"][0] <= 0.6 <= rg["ci"][1]
        hits["ppi"] += pp["ci"][0] <= 0.6 <= pp["ci"][1]
    # 400 runs: the standard error at 0.95 is 0.011. The independent resampling genval had covered 0.993.
    assert 0.92 <= hits["rg"] / reps <= 0.98 and 0.92 <= hits["ppi"] / reps <= 0.98


def test_a_judge_that_made_no_error_on_its_rated_items_is_not_taken_as_perfect():
    """Ten rated items, all agreed: se and sp are not 1 for certain. A plain bootstrap would take them as 1 in every
    resample, leaving only the judged rate's own spread; the half-example cells let them vary."""
    out = rogan_gladen([6, 0, 0, 4, 50, 40, 0], Boot(1000))
    rate_only = np.quantile(np.random.default_rng(1).binomial(100, 0.56, 20000) / 100, [0.025, 0.975])
    lo, hi = out["ci"]
    assert PSEUDO == 0.5 and out["value"] == pytest.approx(0.56) and lo < 0.56 < hi
    assert hi - lo > 1.2 * (rate_only[1] - rate_only[0])


def _calibration(rated: dict | None) -> dict:
    block = {"validated": True, "min_kappa": 0.6, "kappa": {"value": 0.7, "ci": [0.6, 0.8], "n": 40},
             "confusion": {"labels": ["equivalent", "not_equivalent"], "matrix": [[27, 3], [2, 8]]}}
    if rated is not None:
        block["rated"] = rated
    return {"judges": {"j1": block}, "ranking": ["j1"],
            "meaning": {"j1": {"kind": "binary", "equivalent": ["equivalent"], "pass_threshold": None,
                               "says": "share of verdicts in [equivalent]"}}}


def test_summary_gives_both_corrected_rates_overall_and_per_slice(tmp_path):
    """60 examples, the judge says equivalent on the first 45; 40 rated by people. Region b (the last 4) has no rated
    item: its corrected rates say why they are none."""
    verdicts = ["equivalent"] * 45 + ["not_equivalent"] * 15
    run = make_run(tmp_path / "run", [1] * 60, [1] * 60, verdicts=verdicts, region=["a"] * 56 + ["b"] * 4)
    eq, no = "equivalent", "not_equivalent"
    rated = {0: eq} | {i: eq for i in range(27)} | {27: no, 28: no} | {45: eq, 46: eq, 47: eq} | \
        {i: no for i in range(48, 56)}
    run.write_json("calibration.json", _calibration({"id": [f"e{i:03d}" for i in rated],
                                                     "pair": ["student~teacher"] * len(rated),
                                                     "human": list(rated.values())}))
    summary = build_summary(run, make_config(tmp_path))
    judge = summary["judge"]
    # tp 27 (0–26), fp 2 (27–28), fn 3 (45–47), tn 8 (48–55); judged only: 16 yes (29–44), 4 no (56–59).
    rg, pp = corrected([27, 3, 2, 8, 16, 4, 0], Boot(500, 0.95, 0))
    assert judge["corrected_equivalence_rate"] == rg and judge["equivalence_rate_ppi"] == pp
    assert judge["equivalence_rate"]["value"] == 0.75 and "rated" not in judge["calibration"]
    a, b = summary["slices"]["region"]["a"]["judge"], summary["slices"]["region"]["b"]["judge"]
    assert a["corrected_equivalence_rate"] == corrected([27, 3, 2, 8, 16, 0, 0], Boot(500, 0.95, 0))[0]
    assert a["equivalence_rate_ppi"] == corrected([27, 3, 2, 8, 16, 0, 0], Boot(500, 0.95, 0))[1]
    assert b["corrected_equivalence_rate"]["value"] is None and "no example here" in b["corrected_equivalence_rate"]["note"]
    assert b["equivalence_rate_ppi"]["value"] is None and "no example here" in b["equivalence_rate_ppi"]["note"]


def test_an_older_calibration_without_rated_items_corrects_the_whole_run_from_its_confusion(tmp_path):
    verdicts = ["equivalent"] * 45 + ["not_equivalent"] * 15
    run = make_run(tmp_path / "run", [1] * 60, [1] * 60, verdicts=verdicts)
    run.write_json("calibration.json", _calibration(None))
    judge = build_summary(run, make_config(tmp_path))["judge"]
    se, sp = 27 / 30, 8 / 10
    assert judge["equivalence_rate"]["value"] == 0.75
    assert judge["corrected_equivalence_rate"]["value"] == pytest.approx((0.75 + sp - 1) / (se + sp - 1))
    assert judge["equivalence_rate_ppi"]["value"] is not None


# Two strata, as `genval sample` draws them: a critical slice of 100 judged examples with 30 rated, and the other 900
# with 60 rated. Rows: tp, fn, fp, tn, u1, u0, unanswered.
STRATA = np.array([[8, 6, 2, 14, 20, 50, 0],
                   [40, 2, 8, 10, 540, 300, 0]], dtype=float)


def test_the_corrections_are_post_stratified_by_hand():
    """Each stratum's rated items speak for its judged examples, weighted by its share of them (W = 0.1, 0.9)."""
    w = np.array([100, 900]) / 1000
    joint = lambda cell: (w * STRATA[:, cell] / STRATA[:, :4].sum(axis=1)).sum()
    se = joint(0) / (joint(0) + joint(1))                      # (0.1·8/30 + 0.9·40/60) / (0.1·14/30 + 0.9·42/60)
    sp = joint(3) / (joint(3) + joint(2))
    p = (8 + 2 + 20 + 40 + 8 + 540) / 1000
    rg, pp = corrected(STRATA, Boot(500, 0.95, 0))
    assert rg["sensitivity"] == pytest.approx(se) and rg["specificity"] == pytest.approx(sp)
    assert rg["value"] == pytest.approx((p + sp - 1) / (se + sp - 1))
    assert "2 strata" in rg["method"] and "2 strata" in pp["method"] and rg["human_n"] == 90 and rg["n"] == 1000
    lam = pp["lambda"]
    pooled = STRATA.sum(axis=0)
    assert lam == pytest.approx(float(ppi_of(pooled)[2]))      # one λ, tuned on the pooled cells
    theta = [lam * 20 / 70 + (8 + 6) / 30 - lam * (8 + 2) / 30, lam * 540 / 840 + 42 / 60 - lam * 48 / 60]
    assert pp["value"] == pytest.approx(0.1 * theta[0] + 0.9 * theta[1])
    # The unstratified numbers differ: the critical stratum's rated items are a third of the sample, a tenth of the run.
    assert abs(corrected(pooled, Boot(500, 0.95, 0))[0]["value"] - rg["value"]) > 0.01


def test_strata_with_few_rated_items_are_pooled_and_one_stratum_is_the_unstratified_estimator():
    few = np.array([[2, 1, 1, 3, 10, 10, 0], *STRATA])              # 7 rated: pooled with the 60-rated stratum
    merged = merged_strata(few)
    assert merged.shape == (2, 7) and list(merged[1]) == list(STRATA[1] + few[0])
    one = np.array([STRATA[1], [1, 0, 0, 1, 30, 30, 0], [0] * 7])   # the empty stratum dropped, the 2-rated pooled
    assert list(merged_strata(one)) == list(STRATA[1] + one[1])
    assert corrected(one, Boot(500, 0.95, 0)) == corrected(STRATA[1] + one[1], Boot(500, 0.95, 0))
    assert "strata" not in corrected(one, Boot(500, 0.95, 0))[0]["method"]


def test_post_stratification_removes_the_bias_of_a_critical_slice_drawn_first():
    """A judge that errs more on the critical slice (se 0.6, sp 0.9 on 5 % of the run; 0.95, 0.8 elsewhere), rated as
    `genval sample` draws: 30 critical items first, 120 others. The pooled correction is 4 points high and covers
    about 77 % of the time; post-stratified, both cover the true rate."""
    rng = np.random.default_rng(5)
    design = [(100, 30, 0.4, 0.6, 0.9), (1900, 120, 0.7, 0.95, 0.8)]   # judged, rated, true rate, se, sp
    truth = sum(size * rate for size, _, rate, _, _ in design) / 2000
    values, hits, reps = [], np.zeros(2), 300
    for r in range(reps):
        rows = []
        for size, rated, rate, se, sp in design:
            human = rng.random(size) < rate
            judge = np.where(human, rng.random(size) < se, rng.random(size) >= sp)
            mark = np.zeros(size, bool)
            mark[rng.choice(size, rated, replace=False)] = True
            rows.append([(mark & human & judge).sum(), (mark & human & ~judge).sum(), (mark & ~human & judge).sum(),
                         (mark & ~human & ~judge).sum(), (~mark & judge).sum(), (~mark & ~judge).sum(), 0])
        rg, pp = corrected(np.array(rows, float), Boot(300, 0.95, r))
        values.append((rg["value"], pp["value"]))
        hits += [rg["ci"][0] <= truth <= rg["ci"][1], pp["ci"][0] <= truth <= pp["ci"][1]]
    bias = np.mean(values, axis=0) - truth
    assert np.all(np.abs(bias) < 0.01), bias                       # pooled, Rogan–Gladen's bias is +0.04
    assert np.all((hits / reps >= 0.92) & (hits / reps <= 0.99)), hits / reps


def test_a_run_with_a_critical_slice_post_stratifies_its_judge_rate(tmp_path):
    """120 examples, the critical slice region=b the first 40 (20 rated), region a the other 80 (30 rated): the run's
    corrected rates are the post-stratified ones of the two strata's cells; each slice, one stratum, its own cells."""
    verdicts = ["equivalent"] * 20 + ["not_equivalent"] * 20 + ["equivalent"] * 60 + ["not_equivalent"] * 20
    run = make_run(tmp_path / "run", [1] * 120, [1] * 120, verdicts=verdicts, region=["b"] * 40 + ["a"] * 80)
    eq, no = "equivalent", "not_equivalent"
    rated = ({i: eq for i in range(6)} | {i: no for i in range(6, 12)} | {20: eq, 21: eq}
             | {i: no for i in range(22, 28)} | {i: eq for i in range(40, 58)} | {58: no, 59: no} | {100: eq}
             | {i: no for i in range(101, 110)})
    run.write_json("calibration.json", _calibration({"id": [f"e{i:03d}" for i in rated],
                                                     "pair": ["student~teacher"] * len(rated),
                                                     "human": list(rated.values())}))
    summary = build_summary(run, make_config(tmp_path, critical=["region=b"]))
    cells_b, cells_a = [6, 2, 6, 6, 8, 12, 0], [18, 1, 2, 9, 40, 10, 0]
    boot = Boot(500, 0.95, 0)
    assert (summary["judge"]["corrected_equivalence_rate"], summary["judge"]["equivalence_rate_ppi"]) == corrected(
        np.array([cells_a, cells_b], float), boot)
    assert "2 strata" in summary["judge"]["equivalence_rate_ppi"]["method"]
    for value, cells in (("a", cells_a), ("b", cells_b)):
        block = summary["slices"]["region"][value]["judge"]
        assert (block["corrected_equivalence_rate"], block["equivalence_rate_ppi"]) == corrected(cells, boot)
