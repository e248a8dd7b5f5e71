"""The demo's summary against the one before issue 20: every change is one the issue made on purpose, and checked.

Issue 20 changed intervals, never values: a share's interval is Wilson's, a ratio of paired
shares MOVER-R's, every bootstrap interval of a mean or ratio the expanded percentile interval
(the same resamples, farther out), and the judge's Rogan–Gladen interval resamples whole
examples. It added each number's `method`, the judge's PPI++ rate and per-slice corrected rates,
every slice's task and metric retention, the slice ranking and the Holm family's left-out tests.
tests/test_demo_summary.py leaves exactly these differences to this module (`on_purpose`).
"""

from __future__ import annotations

import json
import re

import pytest
from scipy.stats import binomtest

from genval.analysis.intervals import paired_ratio
from genval.analysis.numbers import minimum_detectable_effect
from tests.test_demo_summary import BEFORE, MODEL_MADE
from tests.report_runs import demo_run

pytestmark = pytest.mark.slow  # reads the whole demo run

ADDED_LEAVES = {"method", "note", "held_back", "holm_left_out", "slice_ranking", "rank_note", "equivalence_rate_ppi",
                "corrected_equivalence_rate", "task_retention", "retention"}
INTERVAL_END = re.compile(r"\.ci\[[01]\]$")
# After issue 20: the judge's corrected rate is post-stratified by the demo's critical slice (judge_correction).
STRATIFIED = re.compile(r"corrected_equivalence_rate\.(value|sensitivity|specificity|youden_j|method|on_judged\.value)$")
MESSAGE = re.compile(r"^diagnoses\[\d+\]\.(message|numbers\.ci\[[01]\])$")


def on_purpose(kind: str, path: str) -> bool:
    """Says whether a difference from the summary before the streaming core is one of issue 20's (checked here)."""
    leaf = path.rsplit(".", 1)[-1]
    if kind == "added":
        return leaf in ADDED_LEAVES and (leaf not in ("task_retention", "retention") or path.startswith("slices."))
    return kind == "changed" and (bool(INTERVAL_END.search(path)) or path.endswith("headline.mde")
                                  or bool(MESSAGE.match(path)) or bool(STRATIFIED.search(path)))


def _numbers(tree, path=""):
    """Yields (path, number) for every {value, ci, n} in a summary."""
    if isinstance(tree, dict):
        if {"value", "ci", "n"} <= set(tree):
            yield path, tree
        for key, value in tree.items():
            yield from _numbers(value, f"{path}.{key}" if path else key)
    elif isinstance(tree, list):
        for k, value in enumerate(tree):
            yield from _numbers(value, f"{path}[{k}]")


def _at(tree, path):
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            tree = tree[int(part[1:-1])] if isinstance(tree, list) and int(part[1:-1]) < len(tree) else None
        else:
            tree = tree.get(part) if isinstance(tree, dict) else None
        if tree is None:
            return None
    return tree


@pytest.fixture(scope="module")
def summaries():
    return json.loads(BEFORE.read_text()), json.loads((demo_run() / "summary.json").read_text())


def test_every_changed_interval_follows_its_method(summaries):
    before, after = summaries
    checked = {"Wilson": 0, "MOVER": 0, "bootstrap": 0}
    for path, number in _numbers(after):
        old = _at(before, path)
        method = number.get("method") or ""
        stratified = "post-stratified" in (method or (_at(after, path.rsplit(".", 1)[0]) or {}).get("method", ""))
        if not isinstance(old, dict) or number["value"] is None or "calibration" in path or stratified:
            continue   # post-stratified: test_the_judges_corrected_rate_is_post_stratified_by_the_critical_slice
        assert number["value"] == pytest.approx(old["value"], rel=1e-6) and number["n"] == old.get("n", number["n"])
        lo, hi = number["ci"]
        if method.startswith("Wilson score (Wilson 1927)"):
            wilson = binomtest(round(number["value"] * number["n"]), number["n"]).proportion_ci(0.95, method="wilson")
            assert (lo, hi) == pytest.approx((wilson.low, wilson.high), abs=1e-9), path
            checked["Wilson"] += 1
        elif method.startswith("MOVER-R") and path.endswith("classification.accuracy_retention"):
            errors = _at(after, path.rsplit(".", 1)[0] + ".errors")
            cells = [round(errors[k] * number["n"]) for k in ("both_correct", "only_teacher_wrong",
                                                              "only_student_wrong", "both_wrong")]
            assert (lo, hi) == pytest.approx(paired_ratio(*cells)), path
            checked["MOVER"] += 1
        elif method.startswith("percentile bootstrap (expanded") and old["ci"][0] is not None:
            # The same resamples, read farther out: never narrower, and by little at the demo's n.
            slack = 1e-6 * abs(old["ci"][0]) if any(m in path for m in MODEL_MADE) else 1e-12
            assert lo <= old["ci"][0] + slack and hi >= old["ci"][1] - slack, path
            assert (hi - lo) <= 1.35 * (old["ci"][1] - old["ci"][0]) + 1e-9, path
            checked["bootstrap"] += 1
    assert checked["Wilson"] > 500 and checked["MOVER"] >= 12 and checked["bootstrap"] > 500


def test_the_judges_corrected_rate_is_narrower_for_resampling_whole_examples(summaries):
    before, after = summaries
    old, new = before["judge"]["corrected_equivalence_rate"], after["judge"]["corrected_equivalence_rate"]
    assert new["method"].startswith("Rogan–Gladen (1978); percentile")
    assert new["ci"][1] - new["ci"][0] < old["ci"][1] - old["ci"][0]
    ppi = after["judge"]["equivalence_rate_ppi"]
    assert ppi["ci"][0] < ppi["value"] < ppi["ci"][1] and 0 <= ppi["lambda"] <= 1


def test_the_judges_corrected_rate_is_post_stratified_by_the_critical_slice(summaries):
    """The demo's rated items were drawn at random, so post-stratifying by critical=true moves the rate by little;
    its sensitivity and specificity are the strata's, weighted (test_judge_correction checks the formulas)."""
    before, after = summaries
    old, new = before["judge"]["corrected_equivalence_rate"], after["judge"]["corrected_equivalence_rate"]
    assert "post-stratified by membership of the critical slices (2 strata" in new["method"]
    assert new["value"] == pytest.approx(old["value"], abs=0.002) and new["value"] != old["value"]
    assert new["sensitivity"] == pytest.approx(old["sensitivity"], abs=0.01) and new["n"] == old["n"]
    critical = after["slices"]["critical"]["true"]["judge"]["corrected_equivalence_rate"]
    assert "strata" not in critical["method"]   # one stratum inside the critical slice: the unstratified estimator


def test_each_slices_mde_and_small_slice_message_follow_its_new_interval(summaries):
    _, after = summaries
    for values in after["slices"].values():
        for block in values.values():
            assert block["headline"]["mde"] == pytest.approx(minimum_detectable_effect(block["headline"], 0.95))
    for found in after["diagnoses"]:
        if found["kind"] == "small_slice":
            lo, hi = found["numbers"]["ci"]
            assert f"interval {lo:.2f}–{hi:.2f}" in found["message"]
