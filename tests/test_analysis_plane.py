"""The analysis plane end to end: what re-runs when analysis settings or human labels change, and labels in the run.

A judged run (a replayed judge, people's ratings) goes through `genval run` and `genval
calibrate`; the manifest says which stages ran, summary.json and the reports what they found.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import cohen_kappa_score

from genval.cli import main
from genval.runfolder import Run, file_sha256
from tests.conftest import ROOT, write_jsonl, write_yaml

N = 60
TRUTH = [i % 3 != 0 for i in range(N)]                                      # what people say: equivalent or not
SAYS = [t if i % 11 else not t for i, t in enumerate(TRUTH)]               # the judge: wrong on every 11th


def _rating(i: int, annotator: str, verdict: bool | None = None) -> dict:
    verdict = TRUTH[i] if verdict is None else verdict
    return {"id": f"e{i:02d}", "pair": "student~teacher", "annotator": annotator,
            "verdict": "equivalent" if verdict else "not_equivalent"}


@pytest.fixture
def project(tmp_path):
    """A generation task judged by a replayed judge; the config's labels rate the first 8 items (h1)."""
    examples = [{"id": f"e{i:02d}", "input": f"ticket {i}", "reference": f"the answer to ticket {i}",
                 "slices": {"kind": "a" if i < N // 2 else "b"}} for i in range(N)]
    write_jsonl(tmp_path / "eval.jsonl", examples)
    write_jsonl(tmp_path / "teacher.jsonl", [{"id": e["id"], "text": f"the answer to ticket {i}"}
                                             for i, e in enumerate(examples)])
    write_jsonl(tmp_path / "student.jsonl", [{"id": e["id"], "text": f"an answer to ticket {i}"}
                                             for i, e in enumerate(examples)])
    write_jsonl(tmp_path / "judge.jsonl", [{"id": f"e{i:02d}|student~teacher|ab|0",
                                            "text": "VERDICT: " + ("equivalent" if s else "not_equivalent")}
                                           for i, s in enumerate(SAYS)])
    write_jsonl(tmp_path / "labels.jsonl", [_rating(i, "h1") for i in range(8)])
    config = {"name": "p", "task": "generation", "eval_set": "eval.jsonl", "prompt": "Answer: {input}",
              "models": {"teacher": {"backend": "replay", "path": "teacher.jsonl"},
                         "student": {"backend": "replay", "path": "student.jsonl"}},
              "metrics": ["bleu"], "slices": ["kind"], "human_labels": "labels.jsonl",
              "judge": [{"config": str(ROOT / "judges" / "equivalence.yaml"),
                         "model": {"backend": "replay", "path": "judge.jsonl"}}],
              "analysis": {"bootstrap": 300}}
    return write_yaml(tmp_path / "run.yaml", config)


def _finished(run_dir) -> dict:
    return {name: record["finished_at"] + record["input_hash"]
            for name, record in json.loads((run_dir / "manifest.json").read_text())["stages"].items()}


def _hashes(run_dir) -> dict:
    return {p.name: file_sha256(p) for p in sorted(run_dir.iterdir()) if p.is_file()}


def _skipped(err: str) -> set:
    return {line.split(":")[0].strip() for line in err.splitlines() if "skipped (inputs unchanged)" in line}


def test_changing_analysis_settings_reruns_no_scoring_judging_or_generation(project, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["run", str(project), "--out", str(out), "--quiet"]) == 0
    run_dir = out / "p"
    before, tables = _finished(run_dir), _hashes(run_dir)
    config = yaml.safe_load(project.read_text())
    config["analysis"] = {"bootstrap": 400, "seed": 3, "confidence": 0.9, "min_slice_n": 5,
                          "bootstrap_exact_max": 0}   # and the Poisson bootstrap from now on
    project.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    assert main(["run", str(project), "--out", str(out)]) == 0
    assert _skipped(capsys.readouterr().err) == {"generate", "score", "judge"}
    after, now = _finished(run_dir), _hashes(run_dir)
    assert {s: after[s] == before[s] for s in after} == {"generate": True, "score": True, "judge": True,
                                                       "calibrate": False, "aggregate": False, "report": False}
    assert {t: now[t] == tables[t] for t in ("outputs.parquet", "scores.parquet", "judgments.parquet")} == \
        {"outputs.parquet": True, "scores.parquet": True, "judgments.parquet": True}
    settings = json.loads((run_dir / "summary.json").read_text())["settings"]
    assert (settings["bootstrap"], settings["seed"], settings["confidence"]) == (400, 3, 0.9)
    assert settings["interval_method"].startswith("Poisson bootstrap")


def _judge(run_dir) -> dict:
    return json.loads((run_dir / "summary.json").read_text())["judge"]


def test_calibrating_with_new_labels_changes_summary_and_report_and_the_next_run_keeps_them(project, tmp_path,
                                                                                           capsys):
    out = tmp_path / "runs"
    assert main(["run", str(project), "--out", str(out), "--quiet"]) == 0
    run_dir = out / "p"
    first = _judge(run_dir)
    assert first["calibration"]["n"] == 8 and not first["validated"]   # 8 items: kappa's interval is too wide
    assert "NOT validated" in (run_dir / "report.md").read_text()
    before = _finished(run_dir)

    more = tmp_path / "more.jsonl"
    write_jsonl(more, [_rating(i, "h2") for i in range(8, N)])
    capsys.readouterr()
    assert main(["calibrate", str(run_dir), "--labels", str(more), "--quiet"]) == 0
    assert (run_dir / "labels" / "h2.jsonl").exists()           # named by its one annotator
    assert capsys.readouterr().out.strip().endswith("report.html")
    after = _finished(run_dir)
    assert [s for s in after if after[s] != before[s]] == ["calibrate", "aggregate", "report"]
    judge = _judge(run_dir)
    kappa = cohen_kappa_score(["equivalent" if t else "not_equivalent" for t in TRUTH],
                              ["equivalent" if s else "not_equivalent" for s in SAYS])
    assert judge["calibration"]["n"] == N and judge["calibration"]["kappa"]["value"] == pytest.approx(kappa)
    assert judge["validated"]
    report = (run_dir / "report.md").read_text()
    assert "NOT validated" not in report and "equivalence, validated" in report
    assert f"{N}" in (run_dir / "report.html").read_text()

    # The next plain run keeps the added labels and redoes nothing.
    capsys.readouterr()
    assert main(["run", str(project), "--out", str(out)]) == 0
    assert _skipped(capsys.readouterr().err) == {"generate", "score", "judge", "calibrate", "aggregate", "report"}
    assert _judge(run_dir) == judge

    # The other way round: the config's own file changes (h1 now disagrees on e00), and both sources count.
    write_jsonl(tmp_path / "labels.jsonl", [_rating(0, "h1", not TRUTH[0])] + [_rating(i, "h1") for i in range(1, 8)])
    capsys.readouterr()
    assert main(["run", str(project), "--out", str(out)]) == 0
    assert _skipped(capsys.readouterr().err) == {"generate", "score", "judge"}
    labels = Run(run_dir).read_table("labels")
    assert sorted(set(labels["source"])) == ["h2.jsonl", "labels.jsonl"] and len(labels) == N
    assert _judge(run_dir)["calibration"]["n"] == N
    assert _judge(run_dir)["calibration"]["agreement"]["value"] != judge["calibration"]["agreement"]["value"]


def test_a_labels_file_is_checked_before_anything_is_copied_or_written(project, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["run", str(project), "--out", str(out), "--quiet"]) == 0
    run_dir = out / "p"
    before = _hashes(run_dir)
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, [_rating(9, "h3"), {**_rating(10, "h3"), "verdict": "maybe"}])
    capsys.readouterr()
    assert main(["calibrate", str(run_dir), "--labels", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.jsonl:2: verdict 'maybe' is not on judge 'equivalence''s scale" in err
    # h1 rated e00 in the config's file; a second file where h1 says the opposite is a conflict, not a silent pick.
    clash = tmp_path / "clash.jsonl"
    write_jsonl(clash, [_rating(0, "h1", not TRUTH[0])])
    assert main(["calibrate", str(run_dir), "--labels", str(clash)]) == 2
    err = capsys.readouterr().err
    assert "annotator 'h1' rated 'e00' (student~teacher) differently in" in err and "labels.jsonl" in err
    assert not (run_dir / "labels").exists() and _hashes(run_dir) == before
    # A file someone put into RUN/labels by hand is checked by every run before it writes.
    (run_dir / "labels").mkdir()
    write_jsonl(run_dir / "labels" / "h4.jsonl", [{**_rating(3, "h4"), "score": 4, "verdict": None}])
    assert main(["run", str(project), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "h4.jsonl:1: a score (4) for pair 'student~teacher', but judge 'equivalence' answers with labels" in err
    assert _hashes(run_dir) == before


def test_identical_ratings_in_two_files_count_once_and_a_sheet_of_several_people_keeps_its_name(project, tmp_path):
    out = tmp_path / "runs"
    assert main(["run", str(project), "--out", str(out), "--quiet"]) == 0
    run_dir = out / "p"
    sheet = tmp_path / "sheet.csv"
    pd.DataFrame([_rating(i, "h1") for i in range(8)] + [_rating(i, "h5") for i in range(8, 20)]).to_csv(sheet,
                                                                                                      index=False)
    assert main(["calibrate", str(run_dir), "--labels", str(sheet), "--quiet"]) == 0
    assert (run_dir / "labels" / "sheet.jsonl").exists()          # two annotators: the file's stem
    labels = Run(run_dir).read_table("labels")
    assert len(labels) == 20 and labels.groupby(["id", "annotator"]).size().max() == 1
    assert _judge(run_dir)["calibration"]["n"] == 20


def test_the_judge_stage_reads_no_labels_and_calibrate_needs_no_model_call(project, tmp_path):
    out = tmp_path / "runs"
    assert main(["run", str(project), "--out", str(out), "--quiet"]) == 0
    run_dir = out / "p"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert list(manifest["stages"]) == ["generate", "score", "judge", "calibrate", "aggregate", "report"]
    (tmp_path / "judge.jsonl").unlink()   # the judge's answers are gone: calibrate must not ask it again
    write_jsonl(tmp_path / "more.jsonl", [_rating(i, "h2") for i in range(8, 30)])
    assert main(["calibrate", str(run_dir), "--labels", str(tmp_path / "more.jsonl"), "--quiet"]) == 0
    assert _judge(run_dir)["calibration"]["n"] == 30
    assert np.isfinite(_judge(run_dir)["calibration"]["kappa"]["value"])


def test_calibrate_given_a_config_runs_its_stages_then_adds_the_labels(project, tmp_path):
    out = tmp_path / "runs"
    write_jsonl(tmp_path / "more.jsonl", [_rating(i, "h2") for i in range(8, 20)])
    assert main(["calibrate", str(project), "--out", str(out), "--labels", str(tmp_path / "more.jsonl"),
                 "--quiet"]) == 0
    run_dir = out / "p"
    assert (run_dir / "labels" / "h2.jsonl").exists() and (run_dir / "report.html").exists()
    assert _judge(run_dir)["calibration"]["n"] == 20
    assert main(["run", str(project), "--out", str(out), "--quiet"]) == 0
    assert _judge(run_dir)["calibration"]["n"] == 20


def test_calibrate_with_a_sheet_keeps_the_annotators_page_ratings_and_an_edited_sheet_replaces_its_own(
        project, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["run", str(project), "--out", str(out), "--quiet"]) == 0
    run_dir = out / "p"
    # h2 rated two items on the rating page (genval view --rate writes these lines), then fills a sheet of others.
    page = [{**_rating(i, "h2"), "order": "ba", "guideline": "sha256:0", "rated_at": "2026-01-01T00:00:00+0000"}
            for i in (8, 9)]
    write_jsonl(run_dir / "labels" / "h2.jsonl", page)
    write_jsonl(tmp_path / "sheet.jsonl", [_rating(i, "h2") for i in range(10, 20)])
    capsys.readouterr()
    assert main(["calibrate", str(run_dir), "--labels", str(tmp_path / "sheet.jsonl"), "--quiet"]) == 0
    assert "10 ratings from sheet.jsonl (0 replace a different earlier rating); 2 earlier ratings of other items kept" \
        in capsys.readouterr().out
    kept = [json.loads(line) for line in (run_dir / "labels" / "h2.jsonl").read_text().splitlines()]
    assert [r["id"] for r in kept] == [f"e{i:02d}" for i in range(8, 20)] and kept[0]["order"] == "ba"
    assert _judge(run_dir)["calibration"]["n"] == 20   # h1's 8 (the config's file) and h2's 12
    # The sheet edited (e10 flipped) and given again: its rating replaces the earlier one, said so, counted once.
    write_jsonl(tmp_path / "sheet.jsonl", [_rating(i, "h2", verdict=(not TRUTH[i]) if i == 10 else None)
                                           for i in range(10, 20)])
    assert main(["calibrate", str(run_dir), "--labels", str(tmp_path / "sheet.jsonl"), "--quiet"]) == 0
    assert "(1 replace a different earlier rating); 2 earlier ratings of other items kept" in capsys.readouterr().out
    labels = pd.read_parquet(run_dir / "labels.parquet")
    h2 = labels[labels["annotator"] == "h2"].set_index("id")
    assert len(h2) == 12 and h2.loc["e10", "verdict"] == ("not_equivalent" if TRUTH[10] else "equivalent")
