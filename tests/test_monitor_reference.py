"""genval monitor with a live reference (a real server on 127.0.0.1), a baseline run, people's labels, reports."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from genval.cli import main
from genval.monitor.config import load_monitor_config
from genval.monitor.drift import psi
from genval.monitor.stage import monitor
from genval.progress import Progress
from tests.conftest import write_jsonl, write_yaml
from tests.openai_server import ChatServer
from tests.test_monitor import LABELS, setup, traffic


def run_monitor(path, out):
    return monitor(load_monitor_config(path), out, Progress(quiet=True))


def test_the_sample_is_answered_through_the_request_cache(tmp_path):
    def teacher(body):  # the prompt is "script <truth> …": the teacher answers the truth
        return body["messages"][-1]["content"].split()[1], []

    rows = []
    for week in range(2):
        log, _ = traffic(week, 40, seed=week)
        rows += log
    truth = {r["id"]: r for r in rows}
    for r in rows:
        r["input"] = f"{'billing' if r['id'].endswith('0') else r['output']} please"
    write_jsonl(tmp_path / "logs" / "all.jsonl", rows)
    with ChatServer(script=teacher) as server:
        config = write_yaml(tmp_path / "monitor.yaml", {
            "name": "live", "task": "classification", "traffic": "logs/*.jsonl", "prompt": "script {input}",
            "labels": LABELS, "reference": {"backend": "openai", "model": "t", "base_url": server.url},
            "sample": {"per_window": 25, "seed": 3}, "window": "7d", "slices": ["segment"],
            "analysis": {"bootstrap": 200}})
        out = tmp_path / "runs"
        first = run_monitor(config, out)
        calls = len(server.seen)
        assert first["this_invocation"]["model_calls"] == 50 and calls == 50  # a remote teacher is not warmed
        assert run_monitor(config, out)["this_invocation"]["model_calls"] == 0 and len(server.seen) == calls
        windows = pd.read_parquet(out / "live" / "windows.parquet")
        shutil.rmtree(out / "live")  # the run folder lost: the cache still answers every request
        again = run_monitor(config, out)
        assert again["this_invocation"]["model_calls"] == 0 and again["this_invocation"]["cached_answers"] == 50
        assert len(server.seen) == calls
        pd.testing.assert_frame_equal(pd.read_parquet(out / "live" / "windows.parquet"), windows)
    sample = pd.read_parquet(out / "live" / "sample.parquet")
    expected = [float(truth[i]["output"] == ("billing" if i.endswith("0") else truth[i]["output"]))
                for i in sample["id"]]
    assert sample["agree"].tolist() == expected and 0 < sum(expected) < 50


def test_a_baseline_run_gives_drift_psi_and_the_uncovered_share(tmp_path):
    examples = [{"id": f"e{i}", "input": "y" * (30 + i), "label": LABELS[i % 3],
                 "segment": "enterprise" if i % 4 else "smb"} for i in range(40)]
    write_jsonl(tmp_path / "eval.jsonl", examples)
    write_jsonl(tmp_path / "t.jsonl", [{"id": e["id"], "text": e["label"]} for e in examples])
    write_jsonl(tmp_path / "s.jsonl", [{"id": e["id"], "text": e["label"] if i % 10 else LABELS[0]}
                                       for i, e in enumerate(examples)])
    write_yaml(tmp_path / "run.yaml", {
        "name": "release", "task": "classification", "eval_set": "eval.jsonl", "prompt": "{input}", "labels": LABELS,
        "models": {"teacher": {"backend": "replay", "path": "t.jsonl"},
                   "student": {"backend": "replay", "path": "s.jsonl"}},
        "slices": ["segment"], "analysis": {"bootstrap": 200, "min_slice_n": 5}})
    assert main(["run", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "runs" / "release" / "summary.json").read_text())
    config = setup(tmp_path, weeks=1, baseline="runs/release", alerts=["uncovered_share <= 0.2"])
    log = [json.loads(x) for x in (tmp_path / "logs" / "week0.jsonl").read_text().splitlines()]
    for r in log[:60]:
        r["segment"] = "partner"  # a slice the frozen eval set does not cover
    write_jsonl(tmp_path / "logs" / "week0.jsonl", log)
    result = run_monitor(config, tmp_path / "runs")
    windows = pd.read_parquet(tmp_path / "runs" / "prod" / "windows.parquet").set_index(["slice", "number"])
    assert windows.loc[("all", "uncovered_share"), "value"] == pytest.approx(60 / 300)
    assert result["alerts"] == []
    counts = pd.Series([r["segment"] for r in log]).value_counts()
    expected = psi([counts.get(k, 0) for k in ("enterprise", "partner", "smb")], [30, 0, 10])
    by_hand = sum((p - q) * np.log(p / q) for p, q in zip(
        [max(counts.get(k, 0) / 300, 1e-4) for k in ("enterprise", "partner", "smb")], [0.75, 1e-4, 0.25]))
    assert windows.loc[("all", "psi:segment"), "value"] == pytest.approx(expected) == pytest.approx(by_hand)
    base = summary["classification"]["agreement_rate"]["value"]
    assert windows.loc[("all", "agreement_rate"), "baseline"] == pytest.approx(base)
    agree = windows.loc[("all", "agreement_rate"), "value"]
    assert windows.loc[("all", "agreement_rate"), "change"] == pytest.approx(agree - base)


def test_people_labels_give_accuracy_and_the_reports_show_the_alerts(tmp_path):
    config = setup(tmp_path, weeks=3, drop_from=2)
    log = [json.loads(x) for x in (tmp_path / "logs" / "week2.jsonl").read_text().splitlines()]
    labels = [{"id": r["id"], "label": "billing"} for r in log[:80]]
    write_jsonl(tmp_path / "human.jsonl", labels)
    data = yaml.safe_load(config.read_text())
    data["human_labels"] = "human.jsonl"
    write_yaml(config, data)
    result = run_monitor(config, tmp_path / "runs")
    windows = pd.read_parquet(tmp_path / "runs" / "prod" / "windows.parquet").set_index(["window_start", "slice",
                                                                                          "number"])
    accuracy = windows.loc[("2026-03-16T00:00:00Z", "all", "accuracy")]
    assert accuracy["value"] == pytest.approx(np.mean([r["output"] == "billing" for r in log[:80]]))
    assert accuracy["n"] == 80
    folder = tmp_path / "runs" / "prod"
    html = (folder / "monitor.html").read_text()
    assert html.count("<svg") >= 10 and not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched
    assert "segment=enterprise" in html and result["latest_alerts"]
    md = (folder / "monitor.md").read_text()
    assert "**ALERT** (1)" in md and "agreement_rate lower >= 0.85 on segment=*" in md
