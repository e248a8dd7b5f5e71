"""report.md and report.html from a hand-made run: decision first, self-contained, drill-down data."""

from __future__ import annotations

import json
import re


from genval.analysis.stage import aggregate
from genval.cli import main
from genval.progress import Progress
from genval.report.stage import report
from tests.test_aggregate_support import make_config, make_run

N = 60


def full_run(tmp_path, gate=None):
    """A run with everything the report plots: label probabilities, calibration.json, judgments, latencies."""
    teacher = [1] * N
    student = [1] * 30 + [0] * 9 + [1] * 21
    probs = {"teacher": [[0.6 + 0.3 * (i % 4) / 3, 0.4 - 0.3 * (i % 4) / 3] for i in range(N)],
             "student": [[0.5 + 0.4 * (i % 5) / 4, 0.5 - 0.4 * (i % 5) / 4] for i in range(N)]}
    run = make_run(tmp_path / "run", teacher, student, region=["a"] * 30 + ["b"] * 30, kl=[0.05] * N,
                   json_valid=[1] * 57 + [0] * 3, rouge_student=[0.6] * N, rouge_teacher=[0.7] * N,
                   verdicts=["equivalent"] * 50 + ["not_equivalent"] * 10, probs=probs,
                   latency={"teacher": [1.0 + i / 100 for i in range(N)], "student": [0.3 + i / 200 for i in range(N)]})
    run.write_json("calibration.json", {"judges": {"j1": {
        "validated": True, "min_kappa": 0.6, "n": 40, "kappa": {"value": 0.7, "ci": [0.6, 0.8], "n": 40},
        "confusion": {"labels": ["equivalent", "not_equivalent"], "matrix": [[25, 3], [2, 10]]}}}, "ranking": ["j1"]})
    config = make_config(tmp_path, critical=["region=b"], gate=gate)
    aggregate(run, config, Progress(quiet=True))
    report(run, config, Progress(quiet=True))
    return run


def test_markdown_opens_with_the_decision(tmp_path):
    run = full_run(tmp_path, gate={"rules": ["accuracy_retention >= 0.95 on region=b"]})
    text = run.path("report.md").read_text()
    first = text.splitlines()[0]
    assert first == "## genval · hand: **NOT READY**"
    assert "**Gate: FAIL**" in text and "on region=b: 0.7 < min 0.95" in text
    assert "weak critical slice" in text
    assert len(text) < 65536  # GitHub's limit for a comment body
    summary = json.loads(run.path("summary.json").read_text())
    assert "| accuracy retention | 0.85 |" in text and summary["classification"]["accuracy_retention"]["value"] == 0.85


def test_html_is_self_contained_with_plots_and_data(tmp_path):
    run = full_run(tmp_path)
    page = run.path("report.html").read_text()
    assert not re.search(r'src=["\']https?://', page)   # nothing fetched when opened
    # the only links out are to the local viewer (genval view), which runs only when started
    assert {u for u in re.findall(r'href="(https?://[^"/]+)', page)} == {"http://127.0.0.1:8765"}
    assert "<link" not in page and "@import" not in page
    assert page.index('id="verdict"') < page.index("<h2>Plots")       # the decision comes first
    plots = set(re.findall(r'data-plot="(\w+)"', page))
    assert plots == {"slices", "reliability", "latency", "temperature", "confusion"}
    data = json.loads(re.search(r'<script type="application/json" id="example-data">(.*?)</script>', page, re.S)
                      .group(1).replace("<\\/", "</"))
    assert len(data) == N
    row = next(r for r in data if r["id"] == "e030")       # region b, teacher right, student wrong
    assert "student_only_wrong" in row["failures"] and row["slices"]["region"] == "b"
    assert row["scores"]["student~reference label_correct"] == 0.0
    assert sum("format_failure" in r["failures"] for r in data) == 3
    assert sum("not_equivalent" in r["failures"] for r in data) == 10


def test_report_command_rerenders(tmp_path, capsys):
    run = full_run(tmp_path)
    run.manifest["config"] = make_config(tmp_path).resolved()
    run.save_manifest()
    run.path("report.html").unlink()
    assert main(["report", str(run.root)]) == 0
    assert run.path("report.html").exists() and capsys.readouterr().out.strip().endswith("report.html")


def test_html_escapes_example_text(tmp_path):
    run = full_run(tmp_path)
    examples = run.read_table("examples")
    examples.loc[0, "input"] = "</script><script>alert(1)</script>"
    run.write_table("examples", examples)
    report(run, make_config(tmp_path), Progress(quiet=True))
    page = run.path("report.html").read_text()
    assert "</script><script>alert(1)" not in page


def test_old_summary_is_a_one_line_error(tmp_path, capsys):
    run = full_run(tmp_path)
    run.manifest["config"] = make_config(tmp_path).resolved()
    run.save_manifest()
    run.write_json("summary.json", {"eval_set": {}, "metrics": {}})
    assert main(["report", str(run.root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force aggregate" in err


def test_a_large_eval_set_shows_a_seeded_sample_of_every_slice_and_failure_kind(tmp_path):
    from genval.report import drilldown
    from genval.runfolder import read_summary

    run = full_run(tmp_path)
    summary = read_summary(run.path("summary.json"))
    every = {r["id"]: r for r in drilldown.rows(run, summary)}
    assert len(every) == N   # under ALL_ROWS: every example
    sample = drilldown.rows(run, summary, seed=0, all_rows=20, per_stratum=4)
    assert sample == drilldown.rows(run, summary, seed=0, all_rows=20, per_stratum=4)   # seeded
    assert [r["id"] for r in sample] != [r["id"] for r in drilldown.rows(run, summary, seed=1, all_rows=20,
                                                                          per_stratum=4)]
    assert all(row == every[row["id"]] for row in sample)   # a sampled row is the row, whole
    strata = {("failure", k) for r in every.values() for k in r["failures"]} | \
        {(f, v) for r in every.values() for f, v in r["slices"].items()}
    assert len(sample) <= 4 * (len(strata) + 1)
    for field, value in strata:
        members = [r for r in every.values() if (value in r["failures"] if field == "failure"
                                                 else r["slices"].get(field) == value)]
        shown = [r for r in sample if r in members]
        assert len(shown) >= min(4, len(members)), (field, value)
    from genval.report import html

    assert f"{len(sample)} of {N} examples: a seeded sample" in html.render(summary, sample, {"latency": {}})
    assert "a seeded sample" not in html.render(summary, list(every.values()), {"latency": {}})


def test_a_run_without_label_probabilities_shows_no_empty_kl_or_ece_rows(tmp_path):
    """Label figures from predicted labels only (an extraction's category, replay text without `label_probs`): KL
    and ECE are over no example. The headline table showed them as '– | – | 0' rows; now only numbers it has."""
    run = make_run(tmp_path / "run", [1] * 30, [1] * 29 + [0])
    config = make_config(tmp_path)
    aggregate(run, config, Progress(quiet=True))
    report(run, config, Progress(quiet=True))
    summary = json.loads((run.root / "summary.json").read_text())
    assert summary["classification"]["kl_teacher_student"]["n"] == 0
    text = (run.root / "report.md").read_text()
    html = (run.root / "report.html").read_text()
    for shown in (text, html):
        assert "KL(teacher‖student)" not in shown and "student ECE" not in shown
        assert "student accuracy" in shown and "accuracy retention" in shown
