"""`genval plan`: the report's MDE inverted, per slice of the eval set, before anything is generated."""

from __future__ import annotations

import json

import pytest
from scipy.stats import norm

from genval.analysis.numbers import minimum_detectable_effect
from genval.analysis.plan import needed, share_mde
from genval.analysis.stage import build_summary
from genval.cli import main
from tests.conftest import write_jsonl, write_yaml
from tests.test_aggregate_support import make_config, make_run


@pytest.mark.parametrize("drop, share", [(0.05, 0.5), (0.1, 0.9), (0.02, 0.8)])
def test_needed_is_the_smallest_n_whose_mde_reaches_the_drop(drop, share):
    n = needed(drop, share, 0.95)
    assert share_mde(n, share, 0.95) <= drop < share_mde(n - 1, share, 0.95)
    # Close to the textbook normal formula n = ((z_{0.975} + z_{0.8}) / drop)² · p(1 − p).
    textbook = ((norm.ppf(0.975) + norm.ppf(0.8)) / drop) ** 2 * share * (1 - share)
    assert n == pytest.approx(textbook, rel=0.06)


def test_the_plan_uses_the_mde_the_report_gives_a_slice(tmp_path):
    """A 40-example slice whose student is right on 30: the report's MDE of that share is the plan's at n = 40."""
    student = [1] * 30 + [0] * 10 + [1] * 20
    summary = build_summary(make_run(tmp_path / "run", [1] * 60, student, region=["a"] * 40 + ["b"] * 20),
                            make_config(tmp_path))
    accuracy = summary["slices"]["region"]["a"]["classification"]["student"]["accuracy"]
    assert accuracy["n"] == 40 and accuracy["value"] == 0.75
    assert minimum_detectable_effect(accuracy, 0.95) == pytest.approx(share_mde(40, 0.75, 0.95))


def test_genval_plan_prints_each_slice_and_writes_json(tmp_path, capsys):
    records = [{"id": f"r{i}", "input": "x", "reference": "y", "slices": {"domain": "health" if i < 12 else "law"}}
               for i in range(50)]
    write_jsonl(tmp_path / "eval.jsonl", records)
    config = write_yaml(tmp_path / "run.yaml", {
        "name": "p", "task": "summarization", "eval_set": "eval.jsonl", "prompt": "{input}",
        "models": {"teacher": {"backend": "replay", "path": "t.jsonl"},
                   "student": {"backend": "replay", "path": "s.jsonl"}},
        "metrics": ["rouge"], "slices": ["domain"]})
    assert main(["plan", str(config), "--drop", "0.1", "--share", "0.8", "--json", str(tmp_path / "plan.json")]) == 0
    out = capsys.readouterr().out
    want = needed(0.1, 0.8, 0.95)
    assert f"{want} per slice" in out
    assert f"| domain=health | 12 | {share_mde(12, 0.8, 0.95):.3f} | {want} | short by {want - 12} " \
           "(under min_slice_n 30: not ranked) |" in out
    data = json.loads((tmp_path / "plan.json").read_text())
    assert [(r["slice"], r["n"]) for r in data["rows"]] == [("all", 50), ("domain=health", 12), ("domain=law", 38)]
    assert not (tmp_path / "runs").exists()   # nothing generated, nothing written but the JSON asked for
    assert main(["plan", str(config), "--share", "1.5"]) == 2
