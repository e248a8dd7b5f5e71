"""The two bootstraps and the per-example columns beneath them, each against an independent computation."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson

from genval.analysis.resampling import BLOCK, block_weights, poisson_counts
from genval.analysis.stage import build_summary
from genval.columns import ColumnStore
from genval.runfolder import Run
from tests.test_aggregate_support import make_config, make_run


def test_poisson_counts_follow_poisson_one():
    counts = poisson_counts(np.random.default_rng(11), (400, 10_000)).ravel()
    n = counts.size
    for k in range(7):
        expected = poisson.pmf(k, 1.0)
        assert abs((counts == k).mean() - expected) < 5 * math.sqrt(expected * (1 - expected) / n), k
    assert counts.mean() == pytest.approx(1.0, abs=0.003) and counts.var() == pytest.approx(1.0, abs=0.006)


def test_block_weights_are_the_inverse_poisson_cdf_of_one_seeded_stream():
    """The documented recipe, written out: default_rng([seed, block])'s uniforms at 24 bits against the CDF."""
    u = np.random.default_rng([5, 3]).random((300, BLOCK), dtype=np.float32)
    x = np.floor(u.astype(np.float64) * 2**24)
    thresholds = np.round(poisson.cdf(np.arange(30), 1.0) * 2**24)
    expected = np.searchsorted(thresholds[thresholds < 2**24], x, side="right")
    weights = block_weights(5, 3, 300, BLOCK)
    assert np.array_equal(weights, expected) and weights.dtype == np.float32
    assert np.array_equal(block_weights(5, 3, 100, BLOCK), weights[:100])   # fewer resamples: a prefix of them


def expanded(n: int, confidence: float = 0.95) -> list[float]:
    """The expanded percentile interval's tails (Hesterberg 2015): α'/2 = Φ(−√(n/(n−1)) · t_{n−1, 1−α/2})."""
    from scipy.stats import norm, t

    tail = norm.cdf(-math.sqrt(n / (n - 1)) * t.ppf((1 + confidence) / 2, n - 1))
    return [tail, 1 - tail]


def _poisson_interval(values: np.ndarray, n_boot: int, seed: int, confidence: float = 0.95) -> list[float]:
    """An independent weighted bootstrap of a mean: each example's weight is its Poisson count in every resample."""
    weights = np.concatenate([block_weights(seed, b, n_boot, BLOCK)[:, :min(BLOCK, values.size - b * BLOCK)]
                              for b in range(math.ceil(values.size / BLOCK))], axis=1).astype(float)
    means = weights @ values / weights.sum(axis=1)
    return list(np.quantile(means, expanded(values.size, confidence)))


@pytest.fixture
def two_methods(tmp_path):
    """A run of 300 examples summarised by the exact bootstrap and by the Poisson bootstrap."""
    rng = np.random.default_rng(4)
    teacher = (rng.random(300) < 0.9).astype(int).tolist()
    student = [t if rng.random() < 0.9 else 1 - t for t in teacher]
    rouge = rng.beta(2, 3, 300)
    rouge_student = np.clip(rouge * 0.9 + rng.normal(0, 0.05, 300), 0, 1)
    run = make_run(tmp_path / "run", teacher, student, region=["a" if i % 3 else "b" for i in range(300)],
                   rouge_teacher=rouge.tolist(), rouge_student=rouge_student.tolist())
    exact = build_summary(run, make_config(tmp_path, analysis={"bootstrap": 1000, "min_slice_n": 30}))
    streamed = build_summary(run, make_config(tmp_path, analysis={"bootstrap": 1000, "min_slice_n": 30,
                                                                  "bootstrap_exact_max": 0}))
    return run, exact, streamed, np.array(teacher, float), np.array(student, float), rouge, rouge_student


def test_poisson_intervals_are_the_independent_weighted_bootstrap(two_methods):
    run, _, streamed, teacher, student, rouge, rouge_student = two_methods
    assert streamed["settings"]["interval_method"].startswith("Poisson bootstrap")
    quality = streamed["metrics"]["teacher~reference"]["rougeL"]
    assert quality["ci"] == pytest.approx(_poisson_interval(rouge, 1000, 0), rel=1e-6)
    assert quality["method"].startswith("Poisson bootstrap (expanded percentile")
    # A slice is resampled with the same weights as the whole run: its examples' own.
    in_b = np.arange(300) % 3 == 0
    weights = block_weights(0, 0, 1000, BLOCK)[:, :300][:, in_b].astype(float)
    means = weights @ rouge_student[in_b] / weights.sum(axis=1)
    b = streamed["slices"]["region"]["b"]["metrics"]["student~reference"]["rougeL"]
    assert b["ci"] == pytest.approx(list(np.quantile(means, expanded(100))), rel=1e-6)
    # A ratio keeps its pairing: numerator and denominator on the same weighted examples.
    weights = block_weights(0, 0, 1000, BLOCK)[:, :300].astype(float)
    ratios = (weights @ rouge_student) / (weights @ rouge)
    retention = streamed["fidelity"]["task_retention"]
    assert retention["ci"] == pytest.approx(list(np.quantile(ratios, expanded(300))), rel=1e-5)


def test_a_share_gets_its_wilson_interval_under_either_method(two_methods):
    """A 0/1 number is a share: its interval is Wilson's (scipy's binomtest), not a bootstrap, exact or streamed."""
    from scipy.stats import binomtest

    _, exact, streamed, teacher, student, *_ = two_methods
    wilson = binomtest(int(student.sum()), 300).proportion_ci(0.95, method="wilson")
    for summary in (exact, streamed):
        accuracy = summary["classification"]["student"]["accuracy"]
        assert accuracy["value"] == pytest.approx(student.mean()) and accuracy["n"] == 300
        assert accuracy["ci"] == pytest.approx([wilson.low, wilson.high], rel=1e-12)
        assert accuracy["method"].startswith("Wilson score")
        retention = summary["classification"]["accuracy_retention"]
        assert retention["method"].startswith("MOVER-R")
    a, b = exact["classification"]["accuracy_retention"], streamed["classification"]["accuracy_retention"]
    assert a["ci"] == b["ci"] and a["value"] == pytest.approx(b["value"], rel=1e-15)   # means' ratio vs sums' ratio


def test_the_poisson_interval_is_close_to_the_exact_one(two_methods):
    _, exact, streamed, *_ = two_methods
    for pick in (lambda s: s["fidelity"]["task_retention"],
                 lambda s: s["metrics"]["student~reference"]["rougeL"],
                 lambda s: s["slices"]["region"]["a"]["metrics"]["teacher~reference"]["rougeL"]):
        a, b = pick(exact), pick(streamed)
        assert a["value"] == pytest.approx(b["value"]) and a["n"] == b["n"]
        width = a["ci"][1] - a["ci"][0]
        # Two bootstraps of 1000 resamples: each end varies by ~2 % of the width (its Monte Carlo error).
        assert abs(a["ci"][0] - b["ci"][0]) < 0.12 * width and abs(a["ci"][1] - b["ci"][1]) < 0.12 * width


@pytest.mark.parametrize("exact_max", [10_000, 0])
def test_the_summary_does_not_depend_on_the_order_of_table_rows(tmp_path, exact_max):
    rng = np.random.default_rng(9)
    teacher = (rng.random(120) < 0.8).astype(int).tolist()
    run = make_run(tmp_path / "run", teacher, [t if i % 7 else 0 for i, t in enumerate(teacher)],
                   region=["a" if i % 2 else "b" for i in range(120)], rouge_teacher=rng.random(120).tolist(),
                   rouge_student=rng.random(120).tolist(), json_valid=(rng.random(120) < 0.9).astype(int).tolist())
    config = make_config(tmp_path, analysis={"bootstrap": 200, "bootstrap_exact_max": exact_max})
    before = build_summary(run, config)
    scores = run.read_table("scores")
    run.write_table("scores", scores.sample(frac=1.0, random_state=1).reset_index(drop=True))
    assert build_summary(run, config) == before


def test_a_column_store_gives_the_same_columns_from_files_as_from_memory(tmp_path):
    run = Run(tmp_path)
    rng = np.random.default_rng(2)
    n = 50
    rows = pd.DataFrame({"pos": np.concatenate([rng.permutation(n), rng.permutation(n)]),
                         "key": np.repeat(["x", "y"], n), "value": rng.random(2 * n)})
    rows.loc[3, "value"] = np.nan
    rows = rows.drop(index=[10, 60])    # an example with no x, another with no y
    stores = [ColumnStore(run, n, window) for window in (n, 7)]   # one window in memory; eight, spilled to files
    for store in stores:
        for key, part in rows.groupby("key"):
            for chunk in np.array_split(part.index, 3):
                store.add(("p", key), part.loc[chunk, "pos"].to_numpy(), part.loc[chunk, "value"].to_numpy())
    spilled = ColumnStore(run, n, 7, flush_bytes=0)   # every row goes to its window's files at once
    for key, part in rows.groupby("key"):
        spilled.add(("p", key), part["pos"].to_numpy(), part["value"].to_numpy())
    assert any(tmp_path.glob(".columns-*/0.pos"))
    stores.append(spilled)
    for key in ("x", "y"):
        expected = np.full(n, np.nan)
        part = rows[rows["key"] == key]
        expected[part["pos"]] = part["value"]
        for store in stores:
            np.testing.assert_array_equal(store.column(("p", key)), expected)
    window = stores[1].window_at(1, [("p", "x")])
    assert (window.lo, window.hi) == (7, 14)
    has_x = np.isin(np.arange(7, 14), rows.loc[rows.key == "x", "pos"])
    np.testing.assert_array_equal(window.present[("p", "x")], has_x)
    for store in stores:
        store.close()
    assert not list(tmp_path.glob(".columns-*"))


def test_two_rows_of_one_number_for_one_example_are_an_error(tmp_path):
    from genval.errors import GenvalError

    run = make_run(tmp_path / "run", [1] * 10, [1] * 10)
    scores = run.read_table("scores")
    run.write_table("scores", pd.concat([scores, scores.iloc[[0]]], ignore_index=True))
    with pytest.raises(GenvalError, match="two rows of teacher~reference label_correct"):
        build_summary(run, make_config(tmp_path))


def test_summary_json_stays_small_without_member_lists(two_methods):
    _, exact, *_ = two_methods
    assert "derived_slices" not in exact and len(json.dumps(exact)) < 60_000


@pytest.mark.parametrize("exact_max", [None, 0])
def test_a_kl_that_is_0_everywhere_is_no_share_under_either_method(tmp_path, exact_max):
    """A KL in nats whose every value is 0 (a parity run) is not a share of 0 successes: Wilson's upper end
    3.84 / (n + 3.84) would be a made-up bound on an unbounded number, so it gets no interval, and says why."""
    run = make_run(tmp_path / "run", [1, 0] * 30, [1, 0] * 30, kl=[0.0] * 60)
    analysis = {"bootstrap": 200, "min_slice_n": 30, **({"bootstrap_exact_max": 0} if exact_max == 0 else {})}
    summary = build_summary(run, make_config(tmp_path, analysis=analysis))
    kl = summary["metrics"]["student~teacher"]["kl"]
    assert kl["value"] == 0.0 and kl["n"] == 60
    assert kl["ci"] == [None, None] and "Wilson" not in kl["method"] and "no interval" in kl["note"]


def test_a_number_undefined_on_every_example_says_so(tmp_path):
    """Rows without a value on every example (token fidelity where each teacher output was empty) give no number,
    and the number says why instead of leaving a gate to call it 'missing in this run'."""
    run = make_run(tmp_path / "run", [1, 0] * 20, [1, 0] * 20, kl=[float("nan")] * 40)
    summary = build_summary(run, make_config(tmp_path, gate={"rules": ["kl <= 0.5"]}))
    kl = summary["metrics"]["student~teacher"]["kl"]
    assert kl["value"] is None and kl["n"] == 0 and "undefined on every example" in kl["note"]
    rule = summary["gate"]["rules"][0]
    assert not rule["passed"] and "undefined on every example" in rule["reason"]
