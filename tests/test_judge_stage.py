"""The judge stage end to end: replayed, a scripted OpenAI-compatible server, and a tiny noise model."""

from __future__ import annotations

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from genval.cli import main
from genval.config import load_config
from genval.pipeline import prepare, run_stages
from genval.progress import Progress
from tests.conftest import ROOT, write_jsonl, write_yaml
from tests.openai_server import ChatServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
N = 40


def _setup(tmp_path, judge: list[dict], labels: list[dict], good=lambda i: i % 2 == 0):
    """Writes an eval set of N examples whose student equals the teacher where `good(i)`; gives the config path."""
    examples = [{"id": f"e{i:02d}", "input": f"ticket {i}", "reference": f"ref {i}",
                 "slices": {"kind": "a" if i < N // 2 else "b"}} for i in range(N)]
    write_jsonl(tmp_path / "eval.jsonl", examples)
    write_jsonl(tmp_path / "teacher.jsonl", [{"id": e["id"], "text": f"answer {i}"} for i, e in enumerate(examples)])
    write_jsonl(tmp_path / "student.jsonl", [{"id": e["id"], "text": f"answer {i}" if good(i) else f"wrong answer {i}, longer"}
                                             for i, e in enumerate(examples)])
    write_jsonl(tmp_path / "labels.jsonl", labels)
    config = {
        "name": "j", "task": "generation", "eval_set": "eval.jsonl", "prompt": "Answer: {input}",
        "models": {"teacher": {"backend": "replay", "path": "teacher.jsonl"},
                   "student": {"backend": "replay", "path": "student.jsonl"}},
        "metrics": [], "slices": ["kind"], "judge": judge, "human_labels": "labels.jsonl",
        "analysis": {"bootstrap": 200},
    }
    return write_yaml(tmp_path / "run.yaml", config)


def _run(config_path, tmp_path):
    config = load_config(config_path)
    run = prepare(config, tmp_path / "runs")
    run_stages(run, config, Progress(quiet=True), only=["generate", "judge", "calibrate"])
    return run


def _human(truth) -> list[dict]:
    return [{"id": f"e{i:02d}", "pair": "student~teacher", "annotator": "h1",
             "verdict": "equivalent" if t else "not_equivalent"} for i, t in enumerate(truth)]


@pytest.fixture(scope="module")
def samples_run(tmp_path_factory):
    """A replayed judge with 3 samples per item, wrong on every 7th item; gives (run, its verdicts, the truth)."""
    tmp_path = tmp_path_factory.mktemp("samples")
    rng = np.random.default_rng(0)
    truth = [i % 2 == 0 for i in range(N)]
    judge_says = [t if i % 7 else not t for i, t in enumerate(truth)]  # wrong on every 7th item
    records = []
    for i, says in enumerate(judge_says):
        word = "equivalent" if says else "not_equivalent"
        other = "not_equivalent" if says else "equivalent"
        answers = [f"Same fields.\nVERDICT: {word}", f"VERDICT: {word}", f"Hmm.\nVERDICT: {other}"]
        if i == 3:
            answers[2] = "I cannot decide."  # unparseable third sample: still a 2–0 majority
        for s, text in enumerate(rng.permutation(answers)):
            records.append({"id": f"e{i:02d}|student~teacher|ab|{s}", "text": str(text)})
    write_jsonl(tmp_path / "judge.jsonl", records)
    judge = [{"config": str(ROOT / "judges" / "equivalence.yaml"), "samples": 3,
              "model": {"backend": "replay", "path": "judge.jsonl"}}]
    run = _run(_setup(tmp_path, judge, _human(truth)), tmp_path)
    return run, ["equivalent" if s else "not_equivalent" for s in judge_says], truth


def test_replayed_judge_with_samples_gives_majority_and_spread(samples_run):
    run, expected, _truth = samples_run
    j = run.read_table("judgments").set_index("id")
    assert len(j) == N and set(j["judge"]) == {"equivalence"}
    assert j["verdict"].tolist() == expected
    assert j.loc["e03", "parsed"] == False and j.loc["e03", "samples"] == 2  # noqa: E712 (numpy bool)
    assert j.loc["e02", "spread"] == pytest.approx(np.std([1, 1, 0]))
    assert j.loc["e02", "score"] == pytest.approx(2 / 3)  # 2 of 3 samples say equivalent
    record = run.manifest["stages"]["judge"]["judges"]["equivalence"]
    assert (record["requests"], record["judgments"], record["unparsed"]) == (3 * N, N, 1)


def test_replayed_judge_with_samples_calibration_json(samples_run):
    run, expected, truth = samples_run
    cal = run.read_json("calibration.json")["judges"]["equivalence"]
    human = ["equivalent" if t else "not_equivalent" for t in truth]
    assert cal["n"] == N
    assert cal["agreement"]["value"] == pytest.approx(np.mean(np.array(expected) == np.array(human)))
    assert cal["kappa"]["value"] == pytest.approx(cohen_kappa_score(human, expected))
    assert cal["unparsed"] == 1 and cal["validated"] == (cal["kappa"]["ci"][0] >= 0.6)
    assert cal["threshold"] is not None  # mean-of-samples scores take three values: a cut applies
    assert run.read_json("calibration.json")["ranking"] == ["equivalence"]


@pytest.fixture(scope="module")
def pairwise_run(tmp_path_factory):
    """A pairwise judge asked in both orders that flips on every 4th item; gives (run, the flipped items)."""
    tmp_path = tmp_path_factory.mktemp("pairwise")
    records = []
    for i in range(N):
        first = "A" if i % 2 == 0 else "B"  # the judge, in order ab
        # in order ba the positions are swapped; a consistent judge names the other letter
        swapped = {"A": "B", "B": "A"}[first] if i % 4 else first  # every 4th item flips
        records.append({"id": f"e{i:02d}|student~teacher|ab|0", "text": f"VERDICT: {first}"})
        records.append({"id": f"e{i:02d}|student~teacher|ba|0", "text": f"VERDICT: {swapped}"})
    write_jsonl(tmp_path / "judge.jsonl", records)
    labels = [{"id": f"e{i:02d}", "pair": "student~teacher", "annotator": "h1", "verdict": "A" if i % 2 == 0 else "B"}
              for i in range(N)]
    judge = [{"config": str(ROOT / "judges" / "pairwise.yaml"), "model": {"backend": "replay", "path": "judge.jsonl"}}]
    return _run(_setup(tmp_path, judge, labels), tmp_path), [i for i in range(N) if i % 4 == 0]


def test_pairwise_swap_turns_flips_into_ties_and_reports_the_flip_rate(pairwise_run):
    run, flips = pairwise_run
    j = run.read_table("judgments").set_index("id")
    assert [j.loc[f"e{i:02d}", "verdict"] for i in flips] == ["tie"] * len(flips)
    assert j.loc["e01", "verdict"] == "B" and bool(j.loc["e01", "swap_consistent"])
    assert run.manifest["stages"]["judge"]["judges"]["pairwise"]["flip_rate"] == pytest.approx(len(flips) / N)


def test_pairwise_swap_calibration_json(pairwise_run):
    run, flips = pairwise_run
    cal = run.read_json("calibration.json")["judges"]["pairwise"]
    assert cal["bias"]["flip_rate"] == pytest.approx(len(flips) / N)
    assert cal["agreement"]["value"] == pytest.approx(1 - len(flips) / N)


# --- a scripted OpenAI-compatible server on 127.0.0.1 ---------------------------------------------
class JudgeServer:
    """Answers each chat completion from the candidate's fenced text: GOOD → equivalent, else not."""

    def __init__(self):
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                user = body["messages"][-1]["content"]
                candidate = re.search(r"<candidate-[0-9a-f]+>\n(.*?)\n</candidate-", user, re.S).group(1)
                if "MUMBLE" in candidate:
                    text = "Both look fine to me, I suppose."
                else:
                    text = "Checked.\nVERDICT: " + ("equivalent" if "GOOD" in candidate else "not_equivalent")
                data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                                   "usage": {"prompt_tokens": 50, "completion_tokens": 5}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


MUMBLE = {5, 11}


def good(i: int) -> bool:
    """Whether the scripted run's student answers item i well (the server then says equivalent)."""
    return i % 3 != 0


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory):
    """A judge on a scripted server (GOOD → equivalent, MUMBLE unparsed); gives (run, the server's requests, truth)."""
    pytest.importorskip("genval.models.openai")
    tmp_path = tmp_path_factory.mktemp("scripted")
    truth = [good(i) if i not in (2, 4, 6) else not good(i) for i in range(N)]  # people disagree on 3 items
    path = _setup(tmp_path, [], _human(truth), good=good)
    write_jsonl(tmp_path / "student.jsonl", [{"id": f"e{i:02d}", "text": ("MUMBLE " if i in MUMBLE else "")
                                              + ("GOOD answer" if good(i) else "bad answer")} for i in range(N)])
    server = JudgeServer()
    with server as url:
        config = load_config(path)
        data = json.loads(json.dumps(config.resolved()))
        data["judge"] = [{"config": str(ROOT / "judges" / "equivalence.yaml"),
                          "model": {"backend": "openai", "model": "scripted", "base_url": url, "max_retries": 0,
                                    "price": {"per_million_input_tokens": 2.0, "per_million_output_tokens": 10.0}}}]
        write_yaml(tmp_path / "run2.yaml", data)
        run = _run(tmp_path / "run2.yaml", tmp_path)
    return run, server.requests, truth


def test_scripted_server_verdicts_and_requests(scripted_run):
    run, requests, _truth = scripted_run
    j = run.read_table("judgments").set_index("id")
    kept = [i for i in range(N) if i not in MUMBLE]
    assert [j.loc[f"e{i:02d}", "verdict"] for i in kept] == ["equivalent" if good(i) else "not_equivalent" for i in kept]
    assert int((~j["parsed"]).sum()) == len(MUMBLE) and j["prompt_tokens"].sum() == 50 * N
    # The system prompt reached the server and the candidate was fenced in the user message.
    # One request per item, none twice: a remote judge is not warmed (a warm-up would be a paid repeat).
    assert len(requests) == N and requests[0]["messages"][0]["role"] == "system"
    assert len({json.dumps(r, sort_keys=True) for r in requests}) == N
    assert all(re.search(r"<candidate-[0-9a-f]{10}>\n(GOOD|bad|MUMBLE)", b["messages"][-1]["content"])
               for b in requests)


def test_scripted_server_verdicts_reproduce_hand_agreement(scripted_run):
    run, _requests, truth = scripted_run
    cal = run.read_json("calibration.json")["judges"]["equivalence"]
    # By hand: the judge says GOOD → equivalent; MUMBLE items are unparsed and left out.
    kept = [i for i in range(N) if i not in MUMBLE]
    judge_v = ["equivalent" if good(i) else "not_equivalent" for i in kept]
    human_v = ["equivalent" if truth[i] else "not_equivalent" for i in kept]
    assert cal["n"] == N - len(MUMBLE) and cal["unparsed"] == len(MUMBLE)
    assert cal["agreement"]["value"] == pytest.approx((len(kept) - 3) / len(kept))
    assert cal["kappa"]["value"] == pytest.approx(cohen_kappa_score(human_v, judge_v))
    assert cal["cost"] == pytest.approx(N * (50 * 2.0 + 5 * 10.0) / 1e6)
    # A second calibrate from the run folder gives the same numbers (no model calls: the judgments are read).
    assert main(["calibrate", str(run.root), "--quiet"]) == 0
    assert run.read_json("calibration.json")["judges"]["equivalence"]["kappa"] == cal["kappa"]


# --- a tiny model whose verdicts are noise --------------------------------------------------------
NOISE_JUDGE = """
name: tiny_choice
mode: pointwise
scale: {kind: binary, labels: [equivalent, not_equivalent]}
prompt:
  user: "Are these equivalent? {candidate} {other} Answer:"
parser: {kind: choice}
parameters: {weighted: true, max_tokens: 4}
"""


@pytest.fixture(scope="module")
def noise_run(tmp_path_factory):
    """A tiny random model as a weighted choice judge; gives the run."""
    pytest.importorskip("genval.models.hf")
    from tests.tiny_models import build_tiny_model

    tmp_path = tmp_path_factory.mktemp("noise")
    folder = build_tiny_model(tmp_path / "tiny")
    (tmp_path / "tiny_choice.yaml").write_text(NOISE_JUDGE, encoding="utf-8")
    rng = np.random.default_rng(1)
    truth = rng.random(N) < 0.5
    judge = [{"config": "tiny_choice.yaml", "model": {"backend": "hf", "model": str(folder), "device": "cpu",
                                                      "dtype": "float32", "batch_size": 8}}]
    return _run(_setup(tmp_path, judge, _human(truth)), tmp_path)


def test_tiny_model_judge_scores_its_choices(noise_run):
    j = noise_run.read_table("judgments")
    assert j["parsed"].all() and set(j["verdict"]) <= {"equivalent", "not_equivalent"}
    assert all(json.loads(raw) for raw in j["raw"])  # the raw answer is the scored choice


def test_tiny_model_judge_is_noise_and_not_validated(noise_run):
    cal = noise_run.read_json("calibration.json")["judges"]["tiny_choice"]
    assert cal["n"] == N and cal["validated"] is False
    assert cal["kappa"]["ci"][0] < 0.6


@pytest.fixture(scope="module")
def two_judges_run(tmp_path_factory):
    """Two replayed judges, one wrong on every 13th item, one on every 3rd; gives the run."""
    tmp_path = tmp_path_factory.mktemp("two")
    truth = [i % 2 == 0 for i in range(N)]
    for name, wrong_every in (("sharp", 13), ("blunt", 3)):
        says = [t if i % wrong_every else not t for i, t in enumerate(truth)]
        write_jsonl(tmp_path / f"{name}.jsonl", [{"id": f"e{i:02d}|student~teacher|ab|0",
                                                  "text": "VERDICT: " + ("equivalent" if v else "not_equivalent")}
                                                 for i, v in enumerate(says)])
    judge = [{"config": str(ROOT / "judges" / "equivalence.yaml"), "name": name,
              "model": {"backend": "replay", "path": f"{name}.jsonl"}} for name in ("blunt", "sharp")]
    return _run(_setup(tmp_path, judge, _human(truth)), tmp_path)


def test_several_judges_write_one_table(two_judges_run):
    j = two_judges_run.read_table("judgments")
    assert set(j["judge"]) == {"sharp", "blunt"} and len(j) == 2 * N
    wrong = {name: int((j[j.judge == name].set_index("id")["verdict"] != [
        "equivalent" if i % 2 == 0 else "not_equivalent" for i in range(N)]).sum()) for name in ("sharp", "blunt")}
    assert wrong == {"sharp": len(range(0, N, 13)), "blunt": len(range(0, N, 3))}


def test_several_judges_are_ranked_by_agreement(two_judges_run):
    cal = two_judges_run.read_json("calibration.json")
    assert cal["ranking"] == ["sharp", "blunt"]
    assert cal["judges"]["sharp"]["kappa"]["value"] > cal["judges"]["blunt"]["kappa"]["value"]


def test_two_judges_with_one_name_are_a_config_mistake(tmp_path):
    from genval.errors import GenvalError
    from genval.judging.stage import judge_names

    write_jsonl(tmp_path / "j.jsonl", [])
    ref = {"config": str(ROOT / "judges" / "equivalence.yaml"), "model": {"backend": "replay", "path": "j.jsonl"}}
    config = load_config(_setup(tmp_path, [ref, ref], []))
    with pytest.raises(GenvalError, match=r"judge\[1\]: a second judge named 'equivalence'; give each a distinct 'name'"):
        judge_names(config)


# --- scores that follow their definition, checked against what a scripted server sent ------------
WEIGHTED_JUDGE = """
name: scripted_quality
mode: pointwise
scale: {kind: ordinal, min: 1, max: 5}
prompt: {user: "script {candidate}"}
parser: {kind: choice}
parameters: {weighted: true, max_tokens: 1}
"""

PAIRWISE_JUDGE = """
name: scripted_pairwise
mode: pairwise
scale: {kind: choice, labels: [A, B, tie]}
prompt: {user: "script\\nA: {output_a}\\nB: {output_b}"}
parser: {kind: tagged}
parameters: {temperature: 0.7}
"""


def _scripted_run(tmp_path, judge_text: str, url: str, n: int, **ref):
    """Runs generate and judge over n examples (teacher 'TEACHER i', student 'STUDENT i') with a judge on `url`."""
    write_jsonl(tmp_path / "eval.jsonl", [{"id": f"e{i}", "input": f"ticket {i}"} for i in range(n)])
    write_jsonl(tmp_path / "teacher.jsonl", [{"id": f"e{i}", "text": f"TEACHER {i}"} for i in range(n)])
    write_jsonl(tmp_path / "student.jsonl", [{"id": f"e{i}", "text": f"STUDENT {i}"} for i in range(n)])
    (tmp_path / "judge.yaml").write_text(judge_text, encoding="utf-8")
    config = {"name": "scripted", "task": "generation", "eval_set": "eval.jsonl", "prompt": "{input}", "metrics": [],
              "models": {"teacher": {"backend": "replay", "path": "teacher.jsonl"},
                         "student": {"backend": "replay", "path": "student.jsonl"}},
              "judge": [{"config": "judge.yaml", "model": {"backend": "openai", "model": "scripted", "base_url": url,
                                                           "max_retries": 0}, **ref}],
              "cache": str(tmp_path / "cache.sqlite")}
    return _run(write_yaml(tmp_path / "run.yaml", config), tmp_path).read_table("judgments").set_index("id")


def _example(message: str) -> int:
    return int(re.search(r"(?:STUDENT|TEACHER) (\d+)", message).group(1))


def test_g_eval_weighted_score_renormalises_over_the_scale_tokens_the_judge_named(tmp_path):
    import math

    # First-token top log-probabilities per example; junk tokens ("The", "x") are not scale points.
    tops = {0: [("5", 0.9), ("The", 0.05)],  # a judge sure of "5": scores 5, whatever 1–4 lack
            1: [("4", 0.5), (" 5", 0.3), ("3", 0.1), ("x", 0.05)],
            2: [("The", 0.6), ("2", 0.3)],  # the likeliest token is junk: the scale's share still decides
            3: [("The", 0.9), ("x", 0.05)]}  # no scale token at all: unparsed, no score

    def script(body):
        top = tops[_example(body["messages"][-1]["content"])]
        return top[0][0], [[(t, math.log(p)) for t, p in top]]

    with ChatServer(script=script) as server:
        j = _scripted_run(tmp_path, WEIGHTED_JUDGE, server.url, len(tops))
    assert all(b["body"]["logprobs"] and b["body"]["max_tokens"] == 1 for b in server.sent)
    # By hand, from what the server sent: Σ p(s)·s over the tokens that name a scale point, over Σ p(s).
    for i in range(len(tops)):
        sent = next(b["positions"][0] for b in server.sent if _example(b["body"]["messages"][-1]["content"]) == i)
        points = {int(t.strip()): math.exp(lp) for t, lp in sent if t.strip() in "12345" and t.strip()}
        row = j.loc[f"e{i}"]
        if not points:
            assert not row["parsed"] and pd.isna(row["score"])
            continue
        assert row["score"] == pytest.approx(sum(s * p for s, p in points.items()) / sum(points.values()), abs=1e-9)
        assert row["verdict"] == str(max(points, key=points.get)) and row["parsed"]
    assert j.loc["e0", "score"] == pytest.approx(5.0)  # not 4.545 (each missing point floored at the junk's 0.05)
    assert j.loc["e2", "score"] == pytest.approx(2.0)


def test_a_consistent_swapped_judge_has_no_spread_and_samples_count_per_order(tmp_path):
    # The judge prefers the teacher in either position, except on e2, where it always says "A"
    # (position bias), and on e3, where its draw with seed 1 says the student in order ab.
    def script(body):
        message = body["messages"][-1]["content"]
        first = re.search(r"A: <output_a-[0-9a-f]+>\n(\w+)", message).group(1)
        teacher_letter = "A" if first == "TEACHER" else "B"
        letter = teacher_letter
        if _example(message) == 2:
            letter = "A"
        if _example(message) == 3 and first == "STUDENT" and body["seed"] == 1:
            letter = "A"
        return f"Thinking.\nVERDICT: {letter}", [[("VERDICT", -0.1)]]

    with ChatServer(script=script) as server:
        j = _scripted_run(tmp_path, PAIRWISE_JUDGE, server.url, 4, samples=3)
    # By hand, from what the server sent: each answer's score in the pair's own order
    # (student~teacher: A = student). In order ab A is the student; in order ba A is the teacher.
    answers = {}
    for b in server.sent:
        message = b["body"]["messages"][-1]["content"]
        student_first = re.search(r"A: <output_a-[0-9a-f]+>\n(\w+)", message).group(1) == "STUDENT"
        letter = b["content"][-1]
        student_wins = (letter == "A") == student_first
        answers[(_example(message), student_first, b["body"]["seed"])] = 1.0 if student_wins else 0.0
    for i in range(4):
        ab = [v for (e, first, _), v in answers.items() if e == i and first]
        ba = [v for (e, first, _), v in answers.items() if e == i and not first]
        assert (len(ab), len(ba)) == (3, 3)
        row = j.loc[f"e{i}"]
        assert row["spread"] == pytest.approx(np.std(ab + ba), abs=1e-12)
        assert (row["samples"], row["samples_swapped"], row["requests"]) == (3, 3, 6)
        assert row["score"] == pytest.approx((np.mean(ab) + np.mean(ba)) / 2)
    for i in (0, 1):  # perfectly consistent: the teacher wins in both orders
        assert j.loc[f"e{i}", "spread"] == 0.0 and j.loc[f"e{i}", "verdict"] == "B"
        assert bool(j.loc[f"e{i}", "swap_consistent"])
    assert j.loc["e2", "verdict"] == "tie" and j.loc["e2", "spread"] == pytest.approx(0.5)
    assert j.loc["e3", "spread"] == pytest.approx(np.std([0, 0, 0, 0, 1, 0]))
