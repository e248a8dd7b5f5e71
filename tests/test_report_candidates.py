"""The report's parts computed from the summary: candidates and their decisions, the Pareto frontier, retention
with its interval, ops in units, slices ranked once — on a summarization run with two students and two judges."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from genval.analysis.numbers import Boot, mean, ratio
from genval.analysis.significance import one_sided_p
from genval.analysis.stage import build_summary
from genval.config import GateConfig, load_config
from genval.report import candidates, opsview, pivot
from genval.report.decision import slice_rows
from genval.runfolder import Run, read_summary
from tests.report_runs import demo_run, summarization_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return Run(summarization_run(tmp_path_factory.mktemp("summaries")))


def test_every_candidate_gets_a_decision_from_the_gate_rules_on_its_own_numbers(run):
    summary = read_summary(run.root)
    assert candidates.names(summary) == ["student", "student_v2"]
    scores = run.read_table("scores")
    rouge = scores[(scores["metric"] == "rougeL")].groupby("pair")["value"].mean()
    assert rouge["student~teacher"] < 0.9 <= rouge["student_v2~teacher"]      # what the gate's first rule tests
    judged = run.read_table("judgments")
    v2 = judged[(judged["judge"] == "equivalence") & (judged["pair"] == "student_v2~teacher")]
    assert v2["equivalent"].astype(float).mean() >= 0.5                       # and its second
    assert candidates.decision(summary, "student") == summary["decision"]
    assert summary["decision"]["verdict"] == "NOT_READY"
    # the aggregate stage decided student_v2 as it decides the student: the gate's rules on its own numbers
    mine = summary["candidates"]["student_v2"]
    assert candidates.decision(summary, "student_v2") == mine["decision"] and mine["decision"]["verdict"] == "READY"
    first = mine["gate"]["rules"][0]
    assert first["passed"] and first["value"] == pytest.approx(rouge["student_v2~teacher"])
    row = {r["candidate"]: r for r in candidates.rows(summary)}["student_v2"]
    assert row["fidelity"]["value"] == pytest.approx(rouge["student_v2~teacher"])
    assert row["judges"]["equivalence"]["value"] == pytest.approx(v2["equivalent"].astype(float).mean())


def _holm(p: list[float]) -> list[float]:
    """Holm's step-down adjustment, written out: the k-th smallest p times (m − k), never below an earlier one."""
    order = np.argsort(p, kind="stable")
    adjusted, running = [0.0] * len(p), 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - k) * p[i]))
        adjusted[i] = running
    return adjusted


def _mean(values, boot):
    """The bootstrap mean; where every value is the same (legal: v2's rougeL is 0.75 on all 12) its interval would
    have width 0, and genval gives the Wilson interval of the mean on rougeL's range [0, 1] (Wilson 1927) instead."""
    from tests.test_resampling import expanded

    found = mean(values, boot)
    idx = np.random.default_rng(boot.seed).integers(0, len(values), size=(boot.n_boot, len(values)))
    found["ci"] = list(np.quantile(np.asarray(values)[idx].mean(axis=1), expanded(len(values))))  # Hesterberg 2015
    if found["ci"][1] - found["ci"][0] > 1e-9:
        return found
    n, p, z = len(values), float(values.mean()), 1.959963984540054
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return {**found, "ci": [centre - half, centre + half]}


def test_a_further_candidate_gets_slices_intervals_and_an_interval_gate_of_its_own(run):
    """student_v2's slices, interval tests with Holm's correction and decision, against numbers computed here from
    the scores table: v1 drops two thirds of the words on legal (rougeL 0.5 against the teacher), v2 two fifths."""
    config = load_config(run.root.parents[1] / "run.yaml")
    config.gate = GateConfig(rules=["rougeL [student~teacher] lower >= 0.45 on domain=*",
                                    "rougeL [student~teacher] >= 0.7 on domain=legal"])
    summary = build_summary(run, config)
    s = summary["settings"]
    boot = Boot(s["bootstrap"], s["confidence"], s["seed"])
    scores = run.read_table("scores")
    domain = run.read_table("examples").set_index("id")["slice_domain"]
    rouge = scores[scores["metric"] == "rougeL"].pivot(index="id", columns="pair", values="value")
    mine = summary["candidates"]["student_v2"]
    alpha = (1 - s["confidence"]) / 2
    expected, p = {}, []
    for name in ("legal", "news", "science"):
        values = rouge.loc[domain[domain == name].index]
        block = mine["slices"]["domain"][name]
        assert block["n"] == len(values)
        for pair in ("student_v2~teacher", "student_v2~reference"):
            want = _mean(values[pair].to_numpy(), boot)
            assert block["metrics"][pair]["rougeL"]["value"] == pytest.approx(values[pair].mean())
            assert block["metrics"][pair]["rougeL"]["ci"] == pytest.approx(want["ci"])
        assert "student~teacher" not in block["metrics"]          # the student's own pairs are not the candidate's
        expected[name] = _mean(values["student_v2~teacher"].to_numpy(), boot)
        p.append(one_sided_p(expected[name]["value"], expected[name]["ci"], 0.45, s["confidence"]))
    assert expected["legal"]["value"] == pytest.approx(0.75)   # 9 of the teacher's 15 words: F = 2·0.6/1.6
    by_slice = {r["slice"]: r for r in mine["gate"]["rules"]}
    for (name, number), adjusted in zip(expected.items(), _holm(p)):
        rule = by_slice[f"domain={name}"] if name != "legal" else mine["gate"]["rules"][0]
        test = rule["tests"][0]
        assert rule["slice"] == f"domain={name}" and test["kind"] == "lower"
        assert test["number"]["ci"] == pytest.approx(number["ci"])
        assert test["p_holm"] == pytest.approx(adjusted)
        assert rule["passed"] == (number["ci"][0] >= 0.45 and adjusted <= alpha)
    assert mine["gate"]["holm_family"] == 3 and mine["gate"]["passed"]
    assert mine["decision"]["verdict"] == "READY"
    # the student, on the same rules: legal's rougeL is 0.5 (5 of 15 words), under both bounds — NOT READY
    legal = rouge.loc[domain[domain == "legal"].index, "student~teacher"]
    assert legal.mean() == pytest.approx(0.5)
    assert not summary["gate"]["passed"] and summary["decision"]["verdict"] == "NOT_READY"
    failing = [r for r in summary["gate"]["rules"] if not r["passed"]]
    assert {r["slice"] for r in failing} == {"domain=legal"} and len(failing) == 2
    # and the report shows each candidate's own decision, read from the summary
    assert [(r["candidate"], r["decision"]["verdict"]) for r in candidates.rows(summary)] == [
        ("student", "NOT_READY"), ("student_v2", "READY")]


def test_the_pareto_frontier_is_the_points_nothing_beats():
    rng = np.random.default_rng(3)
    points = [(float(a), float(b)) for a, b in rng.random((12, 2)).round(1)]
    found = candidates.pareto(points, "higher")          # lower first coordinate and higher second are better
    for k, (x, y) in enumerate(points):
        beaten = any((ox <= x and oy >= y) and (ox, oy) != (x, y) for ox, oy in points)
        assert found[k] == (not beaten), (x, y)
    assert candidates.pareto([(1.0, 0.8), (0.5, 0.9), (2.0, 0.95)], "higher") == [False, True, True]


def test_retention_has_the_paired_interval_of_the_per_example_scores(run):
    summary = read_summary(run.root)
    kept = pivot.retention(summary)
    scores = run.read_table("scores")
    wide = scores[scores["metric"] == "rouge1"].pivot(index="id", columns="pair", values="value")
    s = summary["settings"]
    expected = ratio(wide["student~reference"].to_numpy(), wide["teacher~reference"].to_numpy(),
                     Boot(s["bootstrap"], s["confidence"], s["seed"]))
    assert kept["rouge1"]["value"] == pytest.approx(wide["student~reference"].mean() / wide["teacher~reference"].mean())
    assert kept["rouge1"]["ci"] == pytest.approx(expected["ci"])
    # the headline metric's retention is the number the aggregate stage computed, interval and all
    task = summary["fidelity"]["task_retention"]
    assert kept[task["metric"]]["value"] == pytest.approx(task["value"])
    rows = {r["metric"]: r for r in pivot.rows(summary, kept)}
    assert set(rows) == {"bleu", "chrf", "rouge1", "rouge2", "rougeL"}
    assert {r["group"] for r in rows.values()} == {"lexical"}
    assert rows["bleu"]["signature"].startswith("nrefs:1")


def test_ops_are_shown_in_units_with_the_change_in_words():
    assert opsview.show("latency_p50_s", 0.36595) == "366 ms"
    assert opsview.show("latency_p50_s", 1.2679) == "1.27 s"
    assert opsview.show("peak_memory_bytes", 5.29e8) == f"{5.29e8 / 1024 ** 3:.2f} GiB"
    # the distill demo's student: 159,360 bytes and 39,840 parameters (it was "0.00 GiB" and "0.0 M")
    assert opsview.show("weight_bytes", 159360) == f"{159360 / 2 ** 20:.2f} MiB" == "0.15 MiB"
    assert opsview.show("parameters", 39840) == "39.8 K" and opsview.show("parameters", 1.2e6) == "1.2 M"
    assert opsview.show("cost_per_1k_calls", 1.48887, "USD") == "1.4889 USD"
    assert opsview.show("output_tokens_per_s", 11805.2) == "11,805.2 tokens/s"
    assert opsview.change("latency_p50_s", 1.2679, 0.36595) == f"{(1.2679 - 0.36595) / 1.2679 * 100:.1f} % faster"
    assert opsview.change("latency_p50_s", 1.0, 1.5) == "50.0 % slower"
    assert opsview.change("requests_per_s", 0.7649, 2.7137) == f"{(2.7137 - 0.7649) / 0.7649 * 100:.1f} % more"
    assert opsview.change("cost_per_1k_calls", 2.0, 0.5) == "75.0 % cheaper"
    assert opsview.change("peak_memory_bytes", 4.0, 5.0) == "25.0 % larger"
    measured = {"roles": {"teacher": {"memory_kind": "cuda_max_allocated"},
                          "student": {"memory_kind": "process_peak_rss"}}}
    assert "whole genval process" in opsview.memory_note(measured)


@pytest.mark.slow  # reads the whole demo run (tests/report_runs.demo_run)
def test_slices_are_ranked_once_across_fields_and_a_repeated_slice_is_folded():
    summary = read_summary(demo_run())
    rows = slice_rows(summary)
    names = [r["slice"] for r in rows]
    assert "rare_class=legal" not in names and next(r for r in rows if r["slice"] == "category=legal")["also"] == [
        "rare_class=legal"]
    ranked = [r for r in rows if r["rank"] is not None]
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert [r["value"] for r in ranked] == sorted(r["value"] for r in ranked)   # weakest (lowest retention) first
    assert all(r["too_small"] == (r["n"] < summary["settings"]["min_slice_n"]) for r in rows)


def test_report_md_fits_a_pr_comment_with_no_absolute_path(run):
    text = run.path("report.md").read_text()
    assert len(text) < 65536 and not re.search(r"(?<![\w.])/(tmp|home|work|root)/", text)
    assert text.splitlines()[0] == "## genval · summaries: **NOT READY**"
    assert "<details><summary>Metrics" in text and "<details><summary>Operations" in text
    assert 'genval view runs/summaries --filter "pair=student~teacher&metric=rougeL&sort=rougeL&order=asc"' in text
    assert "| student_v2 | **READY** |" in text
    calibration = json.loads(run.path("calibration.json").read_text())
    judges = [line.split(" | ")[1] for line in text.splitlines() if re.match(r"\| [12] \| ", line)]
    assert judges == calibration["ranking"]
    assert "ms |" in text and "% faster" in text and "USD" in text
