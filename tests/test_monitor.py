"""genval monitor on synthetic traffic: windows, alerts, re-runs, new files, drift and bad input."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as sps

from genval.cli import main
from genval.errors import GenvalError
from genval.monitor.config import load_monitor_config
from genval.monitor.stage import monitor
from genval.progress import Progress
from tests.conftest import write_jsonl, write_yaml

LABELS = ["billing", "shipping", "account"]
MONDAY = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday: 7-day windows start here


def traffic(week: int, n: int, seed: int, drop_from: int | None = None, prefix: str = "") -> tuple[list, list]:
    """Gives (log records, the teacher's replay records) of one week: the student agrees 97 % of the time,
    50 % in segment=enterprise from week `drop_from` on."""
    rng = np.random.default_rng(seed)
    log, teacher = [], []
    for i in range(n):
        ident = f"{prefix}w{week}-{i}"
        segment = "enterprise" if rng.random() < 0.5 else "smb"
        truth = LABELS[rng.integers(3)]
        rate = 0.5 if drop_from is not None and week >= drop_from and segment == "enterprise" else 0.97
        output = truth if rng.random() < rate else LABELS[(LABELS.index(truth) + 1) % 3]
        stamp = MONDAY + timedelta(weeks=week, seconds=int(rng.integers(7 * 86400)))
        log.append({"id": ident, "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "input": "x" * int(rng.integers(20, 200)),
                    "output": output, "segment": segment, "channel": "web" if rng.random() < 0.7 else "email"})
        teacher.append({"id": ident, "text": truth})
    return log, teacher


def setup(tmp_path, weeks=4, n=300, drop_from=None, alerts=None, **extra):
    """Writes one traffic file per week, the teacher's replay file and the config; gives the config path."""
    teacher = []
    for week in range(weeks):
        log, answers = traffic(week, n, seed=week, drop_from=drop_from)
        write_jsonl(tmp_path / "logs" / f"week{week}.jsonl", log)
        teacher += answers
    write_jsonl(tmp_path / "teacher.jsonl", teacher)
    config = {"name": "prod", "task": "classification", "traffic": "logs/*.jsonl", "timestamp_field": "timestamp",
              "output_field": "output", "prompt": "Classify: {input}", "labels": LABELS,
              "reference": {"backend": "replay", "path": "teacher.jsonl"}, "sample": {"per_window": 1000, "seed": 0},
              "window": "7d", "slices": ["segment", "channel"],
              "alerts": alerts if alerts is not None else ["agreement_rate lower >= 0.85 on segment=*"],
              "analysis": {"bootstrap": 200}, **extra}
    return write_yaml(tmp_path / "monitor.yaml", config)


def run_monitor(path, out):
    return monitor(load_monitor_config(path), out, Progress(quiet=True))


def test_stable_log_raises_nothing_and_numbers_match_the_log(tmp_path):
    config = setup(tmp_path)
    result = run_monitor(config, tmp_path / "runs")
    assert result["alerts"] == [] and result["exit_code"] == 0
    windows = pd.read_parquet(tmp_path / "runs" / "prod" / "windows.parquet")
    assert sorted(windows["window_start"].unique()) == [(MONDAY + timedelta(weeks=w)).strftime("%Y-%m-%dT%H:%M:%SZ")
                                                        for w in range(4)]
    # the agreement of week 1 on segment=smb, computed independently from the files
    log = [json.loads(line) for line in (tmp_path / "logs" / "week1.jsonl").read_text().splitlines()]
    truth = {r["id"]: r["text"] for r in map(json.loads, (tmp_path / "teacher.jsonl").read_text().splitlines())}
    log.sort(key=lambda r: (r["timestamp"], r["id"]))  # the sample's order: time, then id
    smb = [float(r["output"] == truth[r["id"]]) for r in log if r["segment"] == "smb"]
    row = windows[(windows["window_start"] == "2026-03-09T00:00:00Z") & (windows["slice"] == "segment=smb")
                  & (windows["number"] == "agreement_rate")].iloc[0]
    assert row["value"] == pytest.approx(np.mean(smb)) and row["n"] == len(smb)
    assert row["ci_lo"] < row["value"] < row["ci_hi"]
    # a share: its interval is the Wilson score interval of the count (Wilson 1927), written out by hand
    k, n, z = sum(smb), len(smb), 1.959963984540054
    centre, half = (k / n + z * z / (2 * n)) / (1 + z * z / n), z / (1 + z * z / n) * np.sqrt(
        k / n * (1 - k / n) / n + z * z / (4 * n * n))
    assert [row["ci_lo"], row["ci_hi"]] == pytest.approx([centre - half, centre + half])
    # drift against the first window: Welch's t-test on the per-request values, as scipy gives it
    log0 = [json.loads(line) for line in (tmp_path / "logs" / "week0.jsonl").read_text().splitlines()]
    base = [float(r["output"] == truth[r["id"]]) for r in log0 if r["segment"] == "smb"]
    assert row["baseline"] == pytest.approx(np.mean(base))
    assert row["p"] == pytest.approx(sps.ttest_ind(smb, base, equal_var=False).pvalue)


def test_a_drop_in_one_slice_alerts_that_slice_from_that_window_only(tmp_path):
    config = setup(tmp_path, drop_from=2)
    result = run_monitor(config, tmp_path / "runs")
    got = {(a["window_start"], a["slice"]) for a in result["alerts"]}
    assert got == {("2026-03-16T00:00:00Z", "segment=enterprise"), ("2026-03-23T00:00:00Z", "segment=enterprise")}
    assert result["exit_code"] == 1
    saved = json.loads((tmp_path / "runs" / "prod" / "monitor.json").read_text())
    assert {(a["window_start"], a["slice"]) for a in saved["alerts"]} == got
    assert set(saved["alerts"][0]) >= {"rule", "window_start", "slice", "value", "ci"}
    windows = pd.read_parquet(tmp_path / "runs" / "prod" / "windows.parquet")
    late = windows[(windows["slice"] == "segment=enterprise") & (windows["number"] == "agreement_rate")
                   & (windows["window_start"] >= "2026-03-16")]
    assert late["drift"].all() and (late["change"] < -0.3).all()


def test_rerun_on_the_same_files_makes_no_call_and_appends_nothing_and_a_new_file_adds_its_windows(tmp_path):
    config = setup(tmp_path, weeks=2)
    out = tmp_path / "runs"
    assert main(["monitor", str(config), "--out", str(out), "--quiet"]) == 0
    folder = out / "prod"
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    again = run_monitor(config, out)
    assert again["this_invocation"]["model_calls"] == 0 and again["this_invocation"]["files_read"] == 0
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    log, answers = traffic(2, 300, seed=2)
    write_jsonl(tmp_path / "logs" / "week2.jsonl", log)
    write_jsonl(tmp_path / "teacher.jsonl", [json.loads(x) for x in (tmp_path / "teacher.jsonl").read_text().splitlines()]
                + answers)
    old = pd.read_parquet(folder / "windows.parquet")
    third = run_monitor(config, out)
    new = pd.read_parquet(folder / "windows.parquet")
    assert third["this_invocation"]["windows_added"] == 1 and third["this_invocation"]["rows_new"] == 300
    assert set(new["window_start"]) - set(old["window_start"]) == {"2026-03-16T00:00:00Z"}
    pd.testing.assert_frame_equal(new[new["window_start"] < "2026-03-16"].reset_index(drop=True), old)


def test_a_file_with_old_and_new_rows_adds_only_the_new_rows(tmp_path):
    config = setup(tmp_path, weeks=1)
    run_monitor(config, tmp_path / "runs")
    first = (tmp_path / "logs" / "week0.jsonl").read_text()
    log, answers = traffic(1, 50, seed=9)
    (tmp_path / "logs" / "week0.jsonl").write_text(first + "".join(json.dumps(r) + "\n" for r in log))
    write_jsonl(tmp_path / "teacher.jsonl", [json.loads(x) for x in (tmp_path / "teacher.jsonl").read_text().splitlines()]
                + answers)
    result = run_monitor(config, tmp_path / "runs")
    step = result["this_invocation"]
    assert step["rows_new"] == 50 and step["rows_read_before"] == 300 and step["windows_added"] == 1


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("timestamp"), "week0.jsonl:5: no timestamp in field 'timestamp'"),
    (lambda r: r.update(timestamp="last tuesday"), "week0.jsonl:5: 'timestamp' is 'last tuesday', not an ISO 8601"),
    (lambda r: r.pop("output"), "week0.jsonl:5: no output field 'output'"),
])
def test_bad_records_are_one_line_errors_with_file_and_line_and_nothing_is_written(tmp_path, change, message,
                                                                                    capsys):
    config = setup(tmp_path, weeks=1)
    path = tmp_path / "logs" / "week0.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    change(rows[4])
    write_jsonl(path, rows)
    with pytest.raises(GenvalError, match=message.replace("(", r"\(")):
        run_monitor(config, tmp_path / "runs")
    assert not (tmp_path / "runs" / "prod").exists()
    assert main(["monitor", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err


def test_the_shipped_example_config_is_valid():
    from tests.conftest import ROOT

    config = load_monitor_config(ROOT / "configs" / "monitor" / "prod-support.yaml")
    assert config.reference.backend == "hf" and config.window_length == timedelta(days=7)
    assert [r.slice for r in config.alerts] == [None, "segment=enterprise", None, "segment=*", None]


def test_failure_rate_drift_is_the_pooled_two_proportion_z_test(tmp_path):
    config = setup(tmp_path, weeks=2, alerts=[])
    failed = {}
    for week, every in ((0, 40), (1, 12)):  # about 2.5 % of week 0's requests fail, 8 % of week 1's
        path = tmp_path / "logs" / f"week{week}.jsonl"
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        for k, r in enumerate(rows):
            if k % every == 3:
                r["output"] = None
            elif k % every == 5:
                r["error"] = "timeout"
        write_jsonl(path, rows)
        failed[week] = rows
    run_monitor(config, tmp_path / "runs")
    windows = pd.read_parquet(tmp_path / "runs" / "prod" / "windows.parquet")
    later = windows[(windows["window_start"] == "2026-03-09T00:00:00Z") & (windows["number"] == "failure_rate")]
    checked = 0
    for row in later.itertuples(index=False):
        counts = []
        for week in (0, 1):  # failures and requests of the slice, read off the files
            rows = [r for r in failed[week]
                    if row.slice == "all" or r[row.slice.split("=")[0]] == row.slice.split("=")[1]]
            counts.append((sum(r["output"] is None or bool(r.get("error")) for r in rows), len(rows)))
        (k1, n1), (k0, n0) = counts[1], counts[0]
        pooled = (k0 + k1) / (n0 + n1)
        z = (k1 / n1 - k0 / n0) / np.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
        assert row.value == pytest.approx(k1 / n1) and row.baseline == pytest.approx(k0 / n0)
        assert row.p == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)
        # the same test as a 2×2 chi-square without continuity correction (its statistic is z²)
        table = [[k1, n1 - k1], [k0, n0 - k0]]
        assert row.p == pytest.approx(sps.chi2_contingency(table, correction=False)[1], rel=1e-9)
        checked += 1
    assert checked == 5  # all, two segments, two channels
    overall = later[later["slice"] == "all"].iloc[0]
    assert overall["p"] < 0.001 and overall["drift"]


def test_baseline_and_eval_set_together_are_a_one_line_error(tmp_path, capsys):
    config = setup(tmp_path, weeks=1, baseline="runs/release", eval_set="eval.jsonl")
    assert main(["monitor", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'baseline'" in err and "'eval_set'" in err and "not both" in err
    assert not (tmp_path / "runs").exists()


def test_validate_checks_a_monitor_config_as_one(tmp_path, capsys):
    # Before, validate read every file as a run config: a good monitor config was "unknown key 'traffic'".
    config = setup(tmp_path, weeks=1)
    assert main(["validate", str(config)]) == 0
    out = capsys.readouterr().out
    assert "valid monitor config — task classification, 1 traffic pattern(s), windows of 7d" in out
    data = yaml.safe_load(config.read_text())
    data["windw"] = data.pop("window")
    write_yaml(config, data)
    assert main(["validate", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "monitor.yaml" in err and "'windw'" in err
    assert not (tmp_path / "runs").exists()


def test_a_share_every_request_agrees_on_has_an_interval_of_width_more_than_0(tmp_path):
    """A slice where all n sampled requests agree, or none failed: the percentile bootstrap gave [1, 1] (102 of 102
    in the demo) and [0, 0], so `agreement_rate lower >= x` and `failure_rate upper <= x` passed as if certain.
    The Wilson interval's far end is n / (n + z²) (1 − that for 0 of n)."""
    config = setup(tmp_path, weeks=1, n=24)  # every request agrees in every slice (10 and 14 a segment)
    result = run_monitor(config, tmp_path / "runs")
    windows = pd.read_parquet(tmp_path / "runs" / "prod" / "windows.parquet")
    # 10 of 10 cannot show 0.85 with confidence: the segments alert (the bootstrap's [1, 1] passed them)
    assert {a["slice"] for a in result["alerts"]} == {"segment=enterprise", "segment=smb"}
    z2 = 1.959963984540054 ** 2
    full = windows[(windows["number"] == "agreement_rate") & (windows["value"] == 1.0)]
    none = windows[(windows["number"] == "failure_rate") & (windows["value"] == 0.0)]
    assert len(full) and len(none)
    assert full["ci_lo"].to_numpy() == pytest.approx((full["n"] / (full["n"] + z2)).to_numpy())
    assert none["ci_hi"].to_numpy() == pytest.approx((z2 / (none["n"] + z2)).to_numpy())


@pytest.mark.parametrize("alert, message", [
    ("agrement_rate lower >= 0.85", "monitor.yaml:22: alert 'agrement_rate lower >= 0.85': this monitor has no number "
                                    "named 'agrement_rate'"),
    ("accuracy >= 0.9", "no number named 'accuracy'"),  # no human_labels: no accuracy
    ("failure_rate [student] <= 0.05", "a monitor's numbers have no pair (the student against the reference); "
                                       "remove '[student]'"),
    ("agreement_rate lower >= 0.85 on segmnt=*", "'segmnt' is not among the config's 'slices' (segment, channel); "
                                                 "did you mean 'segment'?"),
    ("agreement_rate lower >= 0.85 on segment=enterprize", "no request has segment=enterprize (its values: "
                                                           "enterprise, smb); did you mean 'enterprise'?"),
])
def test_a_mistaken_alert_is_one_line_before_anything_is_written(tmp_path, capsys, alert, message):
    """A misspelt alert number was found only after the pass had recorded its windows and the rows it read (a run
    folder, exit 2); a slice field or value no request has never alerted, without a word; the pair's message
    printed '[{rule.pair}]'."""
    config = setup(tmp_path, weeks=1, alerts=[alert])
    assert main(["monitor", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err, err
    assert not (tmp_path / "runs").exists()
    if "enterprize" not in alert:  # the config alone says so; the slice value needs the traffic
        assert main(["validate", str(config)]) == 2 and message in capsys.readouterr().err


def test_reference_answers_outside_the_label_set_are_marked_and_said(tmp_path, capsys):
    """`labels:` without one of the teacher's labels left those requests out of agreement (n 300 → ~200) as
    reference failures, without a word; each now carries why, and the console and monitor.json say how many."""
    config = setup(tmp_path, weeks=1)
    data = yaml.safe_load(config.read_text())
    data["labels"] = ["billing", "shipping"]  # the teacher also answers 'account'
    write_yaml(config, data)
    assert main(["monitor", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    out = capsys.readouterr().out
    truth = [json.loads(x)["text"] for x in (tmp_path / "teacher.jsonl").read_text().splitlines()]
    outside = sum(t == "account" for t in truth)
    assert f"note: {outside} of {len(truth)} reference answers name no label of 'labels' (billing, shipping), " \
           "e.g. 'account'" in out
    sample = pd.read_parquet(tmp_path / "runs" / "prod" / "sample.parquet")
    marked = sample["reference_error"].fillna("").str.startswith("the reference's answer names no label")
    assert int(marked.sum()) == outside and sample.loc[marked, "reference"].isna().all()
    saved = json.loads((tmp_path / "runs" / "prod" / "monitor.json").read_text())
    assert saved["invocations"][-1]["notes"] and str(outside) in saved["invocations"][-1]["notes"][0]


@pytest.mark.parametrize("metrics, alert, message", [
    (["chrf", "meteorr"], [], "monitor.yaml:26: metrics: unknown metric 'meteorr'"),
    ([{"name": "chrf", "charorder": 3}], [], "metric 'chrf' has no option 'charorder'"),
    (["rouge"], ["rogueL >= 0.1"], "no number named 'rogueL' (it has: agreement_rate, failure_rate, psi:channel, "
                                   "psi:input_length, psi:segment, reference_failure_rate, rouge1, rouge2, rougeL); "
                                   "did you mean 'rougeL'?"),
])
def test_a_monitor_metric_is_checked_with_the_config(tmp_path, capsys, metrics, alert, message):
    """An unknown metric, or an option its metric does not take, read as a valid monitor config (and failed mid-pass);
    an alert's close match named the pattern 'rouge*', not a column."""
    config = setup(tmp_path, weeks=1, alerts=alert, metrics=metrics)
    assert main(["validate", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err, err
