"""Failures are part of the result: counted as wrong, shown, decided on (INCOMPLETE, exit 3), retried on a re-run."""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from sacrebleu.metrics import BLEU

from genval.cli import main
from genval.numbers import FAILED_DETAIL
from tests.conftest import ROOT, write_jsonl, write_yaml

N = 40
MISSING = {f"e{i:02d}" for i in range(0, N, 4)}  # a quarter of the ids


def _classification(tmp_path, student_ids, judge=None) -> object:
    """A classification run of N examples: the teacher is always right, the student right where it answers."""
    examples = [{"id": f"e{i:02d}", "input": f"ticket {i}", "label": "pos" if i % 2 else "neg"} for i in range(N)]
    write_jsonl(tmp_path / "eval.jsonl", examples)
    write_jsonl(tmp_path / "teacher.jsonl", [{"id": e["id"], "text": e["label"]} for e in examples])
    write_jsonl(tmp_path / "student.jsonl", [{"id": e["id"], "text": e["label"]} for e in examples
                                             if e["id"] in student_ids])
    config = {"name": "c", "task": "classification", "eval_set": "eval.jsonl", "prompt": "Label: {input}",
              "labels": ["pos", "neg"], "metrics": [],
              "models": {"teacher": {"backend": "replay", "path": "teacher.jsonl"},
                         "student": {"backend": "replay", "path": "student.jsonl"}},
              "analysis": {"bootstrap": 200}}
    if judge:
        config["judge"] = judge
    return write_yaml(tmp_path / "run.yaml", config)


def test_student_replay_missing_a_quarter_of_ids_is_incomplete_exit_3_and_counts_them_wrong(tmp_path, capsys):
    answered = {f"e{i:02d}" for i in range(N)} - MISSING
    config = _classification(tmp_path, answered)
    assert main(["generate", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 3   # a stage command too
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 3
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0] == "decision: INCOMPLETE" and "10 of 40 student requests failed (25.0 %" in printed[1]
    assert printed[-1].endswith("report.html")
    summary = json.loads((tmp_path / "runs" / "c" / "summary.json").read_text())
    assert summary["decision"]["verdict"] == "INCOMPLETE"
    cls = summary["classification"]
    # Counted: a missing answer is a wrong answer (30 of 40), as a user of the deployed student would find it.
    assert cls["student"]["accuracy"]["value"] == pytest.approx(30 / 40) and cls["student"]["accuracy"]["n"] == 40
    assert cls["accuracy_retention"]["value"] == pytest.approx(0.75)
    assert cls["agreement_rate"]["value"] == pytest.approx(0.75)
    assert summary["status"]["level"] == "WEAK"   # the grade is on counted numbers, not the survivors'
    # On answered examples only, labelled as such: the student is right on all 30 it answered.
    ans = summary["answered"]
    assert ans["failed"] == {"student": 10} and "left out" in ans["note"]
    assert ans["classification"]["student"]["accuracy"]["value"] == 1.0
    assert ans["classification"]["student"]["accuracy"]["n"] == 30
    assert summary["failures"]["roles"]["student"] == {"failed": 10, "n": 40, "rate": 0.25, "missing": 10}
    # Every failure is an id the replay file lacks: the decision does not promise that a re-run retries them.
    reasons = " ".join(summary["decision"]["reasons"])
    assert "a plain re-run retries" not in reasons
    assert "10 of the failed outputs are ids a replay file lacks: a re-run will not fill them" in reasons
    scores = pd.read_parquet(tmp_path / "runs" / "c" / "scores.parquet")
    rows = scores[(scores.pair == "student~reference") & (scores.metric == "label_correct")]
    assert set(rows.loc[rows.detail == FAILED_DETAIL, "id"]) == MISSING and len(rows) == N
    # The report says why in its first lines.
    report = (tmp_path / "runs" / "c" / "report.md").read_text().splitlines()
    assert report[0] == "## genval · c: **INCOMPLETE**"
    assert "10 of 40 student requests failed" in report[2]


def test_a_failed_output_takes_the_worst_value_of_each_text_metric(small_run, tmp_path):
    student = [json.loads(line) for line in (small_run.parent / "student.jsonl").read_text().splitlines()]
    write_jsonl(small_run.parent / "student.jsonl", student[1:])  # 'a' is missing
    assert main(["run", str(small_run), "--out", str(tmp_path / "runs"), "--quiet"]) == 3
    summary = json.loads((tmp_path / "runs" / "small" / "summary.json").read_text())
    examples = {r["id"]: r for r in map(json.loads, (small_run.parent / "eval.jsonl").read_text().splitlines())}
    scorer = BLEU(effective_order=True)
    answered = [scorer.sentence_score(examples[i]["input"], [examples[i]["reference"]]).score for i in "bcd"]
    bleu = summary["metrics"]["student~reference"]["bleu"]
    assert bleu["n"] == 4 and bleu["value"] == pytest.approx(sum(answered) / 4)   # BLEU's worst is 0
    assert summary["answered"]["metrics"]["student~reference"]["bleu"]["value"] == pytest.approx(sum(answered) / 3)
    assert summary["metrics"]["student~teacher"]["rougeL"]["n"] == 4
    assert summary["metrics"]["teacher~reference"]["bleu"]["n"] == 4   # the teacher answered everything


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VerdictServer:
    """An OpenAI-compatible judge on a given 127.0.0.1 port: 'equivalent' always, or HTTP 500 for FLAKY candidates."""

    def __init__(self, port: int, fail_flaky: bool):
        self.prompts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                user = body["messages"][-1]["content"]
                server.prompts.append(user)
                candidate = re.search(r"<candidate-[0-9a-f]+>\n(.*?)\n</candidate-", user, re.S).group(1)
                if fail_flaky and "FLAKY" in candidate:
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant",
                                                                        "content": "VERDICT: equivalent"}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _judged_config(tmp_path, port: int, flaky: set[str]):
    judge = [{"config": str(ROOT / "judges" / "equivalence.yaml"),
              "model": {"backend": "openai", "model": "scripted", "base_url": f"http://127.0.0.1:{port}/v1",
                        "max_retries": 0, "timeout_s": 5}}]
    config = _classification(tmp_path, {f"e{i:02d}" for i in range(N)}, judge=judge)
    write_jsonl(tmp_path / "student.jsonl", [{"id": f"e{i:02d}", "text": ("FLAKY " if f"e{i:02d}" in flaky else "")
                                              + ("pos" if i % 2 else "neg")} for i in range(N)])
    return config


def test_unreachable_judge_is_incomplete_exit_3_and_a_plain_rerun_tries_again(tmp_path, capsys):
    pytest.importorskip("genval.models.openai")
    port = _free_port()  # nothing listens here
    config = _judged_config(tmp_path, port, set())
    out = str(tmp_path / "runs")
    assert main(["run", str(config), "--out", out]) == 3
    summary = json.loads((tmp_path / "runs" / "c" / "summary.json").read_text())
    assert summary["decision"]["verdict"] == "INCOMPLETE"
    assert summary["failures"]["judges"]["equivalence"] == {"failed": N, "n": N, "rate": 1.0, "requests_failed": N}
    assert any("40 of 40 equivalence verdicts failed" in r for r in summary["decision"]["reasons"])
    manifest = json.loads((tmp_path / "runs" / "c" / "manifest.json").read_text())
    assert manifest["stages"]["judge"]["failed_requests"] == N
    capsys.readouterr()
    assert main(["run", str(config), "--out", out]) == 3          # a plain re-run: no --force
    err = capsys.readouterr().err
    assert "generate: skipped" in err and "judge: skipped" not in err   # the judge stage is not current
    with VerdictServer(port, fail_flaky=False) as server:
        assert main(["run", str(config), "--out", out, "--quiet"]) == 0
    assert len(server.prompts) == N   # a remote judge is not warmed: each prompt once
    summary = json.loads((tmp_path / "runs" / "c" / "summary.json").read_text())
    assert summary["decision"]["verdict"] != "INCOMPLETE" and summary["judge"]["equivalence_rate"]["value"] == 1.0


def test_a_plain_rerun_retries_exactly_the_failed_requests(tmp_path, capsys):
    pytest.importorskip("genval.models.openai")
    port = _free_port()
    flaky = {"e03", "e17"}
    config = _judged_config(tmp_path, port, flaky)
    out = str(tmp_path / "runs")
    with VerdictServer(port, fail_flaky=True) as server:
        assert main(["run", str(config), "--out", out, "--quiet"]) == 3
    assert len(set(server.prompts)) == N
    summary = json.loads((tmp_path / "runs" / "c" / "summary.json").read_text())
    # 2 of 40 (5 %) is over the 1 % limit.
    assert summary["failures"]["judges"]["equivalence"]["failed"] == 2
    assert summary["decision"]["verdict"] == "INCOMPLETE"
    capsys.readouterr()
    with VerdictServer(port, fail_flaky=False) as server:
        assert main(["run", str(config), "--out", out, "--quiet"]) == 0
    # Only the two failed requests reached the model, once each; the 38 finished ones came from the cache.
    assert len(server.prompts) == 2 and all("FLAKY" in p for p in server.prompts)
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0].startswith("decision: ") and "INCOMPLETE" not in printed[0]


def test_the_gate_on_an_incomplete_run_says_so_and_exits_3_unless_allowed(tmp_path, capsys):
    # A quarter of the student's outputs missing: a rule the counted numbers pass must not pass the release.
    config = _classification(tmp_path, {f"e{i:02d}" for i in range(N)} - MISSING)
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 3
    assert "gate:" not in capsys.readouterr().out  # no gate in the config: nothing said of one
    run = tmp_path / "runs" / "c"
    rules = write_yaml(tmp_path / "gate.yaml", {"rules": ["accuracy_retention >= 0.5"]})
    out_json = tmp_path / "gate.json"
    assert main(["gate", str(run), "--config", str(rules), "--json", str(out_json)]) == 3
    printed = capsys.readouterr().out
    assert printed.startswith("gate: INCOMPLETE (1 rules, 0 failing)")
    assert "the run is INCOMPLETE: 10 of 40 student requests failed" in printed and "--allow-incomplete" in printed
    assert json.loads(out_json.read_text())["incomplete"].startswith("10 of 40 student requests failed")
    # Asked for, the rules alone decide; the line still says the run is INCOMPLETE.
    assert main(["gate", str(run), "--config", str(rules), "--allow-incomplete"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("gate: PASS") and "gated anyway (--allow-incomplete)" in printed
    # A summary without a decision cannot say it is complete: it is not read at all (never half-read), in one line.
    summary = json.loads((run / "summary.json").read_text())
    summary.pop("decision")
    (run / "summary.json").write_text(json.dumps(summary))
    assert main(["gate", str(run), "--config", str(rules)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "decision: Field required" in err and "--force aggregate" in err


def test_run_says_a_passing_gate_cannot_be_trusted_on_an_incomplete_run(tmp_path, capsys):
    config = _classification(tmp_path, {f"e{i:02d}" for i in range(N)} - MISSING)
    data = __import__("yaml").safe_load(config.read_text())
    data["gate"] = {"rules": ["accuracy_retention >= 0.5"]}
    write_yaml(config, data)
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 3
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("gate: PASS — but the run is INCOMPLETE")


def test_missing_and_stray_replay_ids_are_named_on_the_console_and_in_the_report(tmp_path, capsys):
    answered = {f"e{i:02d}" for i in range(N)} - MISSING
    config = _classification(tmp_path, answered)
    with open(tmp_path / "student.jsonl", "a", encoding="utf-8") as fh:  # two records for ids the eval set lacks
        fh.write(json.dumps({"id": "zz1", "text": "pos"}) + "\n" + json.dumps({"id": "zz2", "text": "neg"}) + "\n")
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 3
    printed = capsys.readouterr().out
    first = sorted(MISSING)[:5]
    # The count, the first few ids, and that a re-run cannot fill them (it would only retry failed calls).
    assert "generate: 10 requests failed: 10 have no record in a replay file, which a re-run will not fill (exit 3)" \
        in printed
    assert f"student.jsonl: 10 example(s) have no record ({', '.join(first)} …)" in printed
    assert "a re-run will not fill them" in printed
    assert "student.jsonl: 2 record(s) for ids the eval set lacks: zz1, zz2" in printed
    report = (tmp_path / "runs" / "c" / "report.md").read_text()
    html = (tmp_path / "runs" / "c" / "report.html").read_text()
    for text in (report, html):
        assert f"student.jsonl: 10 example(s) have no record ({', '.join(first)} …)" in text
        assert "student.jsonl: 2 record(s) for ids the eval set lacks: zz1, zz2" in text
        assert str(tmp_path) not in text  # the report names files, not this machine's paths


def test_judge_replay_records_of_examples_whose_output_failed_are_not_called_ids_the_eval_set_lacks(tmp_path, capsys):
    # A replay judge file made for every example holds records for the examples whose student
    # output then failed: those ids are in the eval set; they were not asked (nothing to judge).
    answered = {f"e{i:02d}" for i in range(N)} - MISSING
    config = _classification(tmp_path, answered, judge=[{
        "config": str(ROOT / "judges" / "equivalence.yaml"),
        "model": {"backend": "replay", "path": "judge.jsonl"}}])
    write_jsonl(tmp_path / "judge.jsonl", [{"id": f"e{i:02d}|student~teacher|ab|0", "text": "VERDICT: equivalent"}
                                           for i in range(N)] + [{"id": "zz9|student~teacher|ab|0",
                                                                  "text": "VERDICT: equivalent"}])
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 3
    printed = capsys.readouterr().out
    # Only the record of an id the eval set really lacks is named as such.
    assert "judge.jsonl: 1 record(s) for ids the eval set lacks: zz9|student~teacher|ab|0" in printed
    assert not any(f"{e}|student~teacher" in line for e in MISSING for line in printed.splitlines()
                   if "eval set lacks" in line)


def test_validate_notes_the_ids_a_replay_file_lacks_before_a_run_counts_them_failed(tmp_path, capsys):
    config = _classification(tmp_path, {f"e{i:02d}" for i in range(N)} - MISSING)
    assert main(["validate", str(config)]) == 0   # not a mistake: a run counts them as failed outputs
    lines = capsys.readouterr().out.splitlines()
    assert "valid" in lines[0] and len(lines) == 2
    first = ", ".join(sorted(MISSING)[:5])
    assert lines[1] == f"note: {tmp_path / 'student.jsonl'}: 10 example(s) have no record ({first} …); they count " \
                       "as errors, and a re-run will not fill them: add their records to the file"


def test_errors_a_replay_file_records_are_not_promised_to_a_re_run(tmp_path, capsys):
    """A replay record with its own `error` ("timeout") comes back the same on every run: the console and the
    decision said "a plain re-run retries" it. Now they say a re-run reads it again, apart from ids the file lacks."""
    answered = {f"e{i:02d}" for i in range(N)} - MISSING
    config = _classification(tmp_path, answered)
    records = [json.loads(line) for line in (tmp_path / "student.jsonl").read_text().splitlines()]
    for record in records[:3]:
        record.update(text="", error="timeout")
    write_jsonl(tmp_path / "student.jsonl", records)
    for _ in range(2):   # the second run reads the same errors again
        assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 3
        printed = capsys.readouterr().out
        assert ("generate: 13 requests failed: 10 have no record in a replay file, which a re-run will not fill; "
                "3 are errors a replay file records, which a re-run reads again (exit 3)") in printed
        assert "a plain re-run retries" not in printed
    summary = json.loads((tmp_path / "runs" / "c" / "summary.json").read_text())
    assert summary["failures"]["roles"]["student"] == {"failed": 13, "n": 40, "rate": 13 / 40, "missing": 10,
                                                       "recorded": 3}
    reasons = " ".join(summary["decision"]["reasons"])
    assert "3 of the failed outputs are errors a replay file records (its `error` key): a re-run reads them again" \
        in reasons and "a plain re-run retries" not in reasons
    outputs = pd.read_parquet(tmp_path / "runs" / "c" / "outputs.parquet")
    errors = outputs.loc[(outputs.role == "student") & outputs.error.notna(), "error"]
    assert (errors.str.startswith("recorded in replay file student.jsonl: timeout")).sum() == 3
