"""The generate stage with real engines: outputs, ops.json, errors kept, keys never written, resume."""

from __future__ import annotations

from collections import Counter

import json
import os

import pytest

from genval.config import parse_config
from genval.models.openai import OpenAIBackend
from genval.pipeline import prepare, run_stages
from genval.progress import Progress
from tests.conftest import write_jsonl
from tests.openai_server import ChatServer
from tests.tiny_models import build_tiny_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SECRET = "sk-do-not-write-me-4242"


def openai_model(url, **kw):
    return {"backend": "openai", "base_url": url, "api_key_env": "GENVAL_TEST_KEY", "backoff_s": 0.01,
            "max_retries": 1, **kw}


def live_roles(url, teacher_concurrency=1, student_concurrency=1, student="s") -> dict:
    """Teacher "t" and a student on one test server, without an API key."""
    return {"teacher": openai_model(url, model="t", concurrency=teacher_concurrency, api_key_env=None),
            "student": openai_model(url, model=student, concurrency=student_concurrency, api_key_env=None)}


def make_run(tmp_path, models, inputs, **extra):
    write_jsonl(tmp_path / "eval.jsonl", [{"id": f"e{i}", "input": text} for i, text in enumerate(inputs)])
    data = {"name": "gen", "task": "generation", "eval_set": "eval.jsonl", "prompt": "{input}", "models": models,
            "metrics": [], "cache": str(tmp_path / "cache.sqlite"), **extra}
    config = parse_config(data, tmp_path)
    return prepare(config, tmp_path / "runs"), config


def test_stage_writes_outputs_and_ops_keeps_errors_and_never_writes_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("GENVAL_TEST_KEY", SECRET)
    inputs = ["ok one two", "ok three", "bad request", "ok four five six"]
    with ChatServer() as server:
        models = {"teacher": openai_model(server.url, model="big", price={"per_million_input_tokens": 3.0,
                                                                            "per_million_output_tokens": 15.0}),
                  "student": openai_model(server.url, model="small", price={"per_million_input_tokens": 1.0,
                                                                              "per_million_output_tokens": 5.0})}
        run, config = make_run(tmp_path, models, inputs)
        assert run_stages(run, config, Progress(quiet=True), only=["generate"]) == {"generate": "ran"}
        assert all(r["headers"]["Authorization"] == f"Bearer {SECRET}" for r in server.seen)
    record = run.manifest["stages"]["generate"]
    assert record["errors"] == {"teacher": 1, "student": 1}
    assert any(n.startswith("teacher: 1 of 4 requests failed (first: HTTP 400") for n in record["notes"])
    outputs = run.read_table("outputs")
    assert list(outputs.columns) == ["id", "role", "text", "prompt_tokens", "completion_tokens", "latency_s",
                                     "label_probs", "error", "cached"]
    assert len(outputs) == 8
    bad = outputs[outputs.id == "e2"]
    assert bad.error.str.startswith("HTTP 400").all() and bad.text.isna().all()
    good = outputs[(outputs.id == "e0") & (outputs.role == "student")].iloc[0]
    assert good.text == "echo: ok one two" and good.prompt_tokens == 3 and good.completion_tokens == 4
    ops = run.read_json("ops.json")
    # The server's usage: prompt tokens = words of the message, output = words of "echo: <message>".
    prompt_tokens, output_tokens = 3 + 2 + 4, 4 + 3 + 5
    for role, (pin, pout) in {"teacher": (3.0, 15.0), "student": (1.0, 5.0)}.items():
        r = ops["roles"][role]
        assert (r["n"], r["errors"], r["model_calls"]) == (4, 1, 4)
        assert (r["prompt_tokens"], r["output_tokens"]) == (prompt_tokens, output_tokens)
        expected = (prompt_tokens * pin + output_tokens * pout) / 1e6 / 3 * 1000
        assert r["cost_per_1k_calls"] == pytest.approx(expected)
        assert r["throughput_basis"] == "measured" and r["requests_per_s"] > 0
    assert ops["savings"]["cost_per_1k_calls_pct"] == pytest.approx(100 * (1 - 1 / 3))
    # The key is in no file genval wrote: run folder, manifest, cache.
    for path in [*run.root.rglob("*"), tmp_path / "cache.sqlite"]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_killed_run_resumes_with_what_finished(tmp_path, monkeypatch):
    inputs = [f"ok item {i}" for i in range(6)]
    real = OpenAIBackend.generate

    def dies_after_two(self, requests):
        for n, completion in enumerate(real(self, requests)):
            if n == 2:
                raise KeyboardInterrupt  # the user pressed Ctrl-C after two answers
            yield completion

    with ChatServer() as server:
        models = {"teacher": openai_model(server.url, model="t", concurrency=1, api_key_env=None),
                  "student": openai_model(server.url, model="s", concurrency=1, api_key_env=None)}
        run, config = make_run(tmp_path, models, inputs)
        monkeypatch.setattr(OpenAIBackend, "generate", dies_after_two)
        with pytest.raises(KeyboardInterrupt):
            run_stages(run, config, Progress(quiet=True), only=["generate"])
        assert run.manifest["stages"]["generate"]["status"] == "failed"
        monkeypatch.setattr(OpenAIBackend, "generate", real)
        before = len(server.seen)
        run_stages(run, config, Progress(quiet=True), only=["generate"])
        teacher_calls = [r for r in server.seen[before:] if r["body"]["model"] == "t"]
        student_calls = [r for r in server.seen[before:] if r["body"]["model"] == "s"]
        # A remote server is not warmed: only the 4 not finished are asked, each once (2 came from the cache)
        assert len(teacher_calls) == 4 and len(student_calls) == 6  # the student never started
        # Across the kill and the resume, an answer that reached the cache is never asked for again; only
        # requests in flight when Ctrl-C came (answered by the server, never yielded) go out a second time.
        everything = Counter(r["body"]["messages"][-1]["content"] for r in server.seen if r["body"]["model"] == "t")
        assert set(everything) == set(inputs) and everything["ok item 0"] == everything["ok item 1"] == 1
        outputs = run.read_table("outputs")
        assert outputs[outputs.role == "teacher"].cached.sum() == 2
        assert outputs.error.isna().all()
        ops = run.read_json("ops.json")["roles"]["teacher"]
        assert (ops["cached"], ops["model_calls"]) == (2, 4)
        # The teacher's answers come from two timed passes — the killed one and this one — each
        # charged its own pass's time per answer; the basis names both.
        killed, now = sorted(ops["measured_in"], key=lambda p: p["this_run"])
        assert (killed["answers_used"], now["answers_used"]) == (2, 4) and killed["finished"] is False
        assert ops["basis"].startswith("measured in 2 passes: this run (4 answers); run gen, ")
        charged = 2 * killed["wall_s"] / killed["answers"] + 4 * now["wall_s"] / now["answers"]
        assert ops["wall_s"] == pytest.approx(charged) and ops["requests_per_s"] == pytest.approx(6 / charged)
        # A third run: everything is cached, no request reaches the server, and the figures are the same.
        after = len(server.seen)
        run_stages(run, config, Progress(quiet=True), only=["generate"], force=("generate",))
        assert len(server.seen) == after
        again = run.read_json("ops.json")["roles"]["teacher"]
        for key in ("latency_p50_s", "latency_p95_s", "latency_p50_ci_s", "wall_s", "requests_per_s"):
            assert again[key] == pytest.approx(ops[key]), key
        assert again["basis"].startswith("measured in 2 passes: run gen, ")  # both passes are earlier ones now


@pytest.mark.slow  # two tiny transformers models on CPU
def test_hf_roles_give_label_probabilities_and_model_sizes(tmp_path):
    teacher = build_tiny_model(tmp_path / "teacher", hidden_size=64)
    student = build_tiny_model(tmp_path / "student", hidden_size=32)
    labels = ["billing", "shipping", "fraud"]
    models = {"teacher": {"backend": "hf", "model": str(teacher), "device": "cpu", "batch_size": 2},
              "student": {"backend": "hf", "model": str(student), "device": "cpu", "batch_size": 2}}
    run, config = make_run(tmp_path, models, ["my order never arrived", "I was charged twice", "someone used my card"],
                           task="classification", labels=labels, generation={"max_tokens": 3})
    run_stages(run, config, Progress(quiet=True), only=["generate"])
    outputs = run.read_table("outputs")
    assert len(outputs) == 6 and outputs.error.isna().all()
    for cell in outputs.label_probs:
        probs = json.loads(cell)
        assert set(probs) == set(labels) and sum(probs.values()) == pytest.approx(1.0)
    from transformers import AutoModelForCausalLM

    sizes = {role: sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())
             for role, path in (("teacher", teacher), ("student", student))}
    ops = run.read_json("ops.json")
    assert ops["roles"]["teacher"]["parameters"] == sizes["teacher"]
    assert ops["roles"]["student"]["parameters"] == sizes["student"]
    assert ops["savings"]["parameters_pct"] == pytest.approx(100 * (1 - sizes["student"] / sizes["teacher"]))
    assert ops["roles"]["student"]["memory_kind"] == "process_peak_rss"


def test_a_run_from_the_cache_reports_the_cold_runs_figures(tmp_path):
    inputs = [f"load item {i}" for i in range(12)]
    with ChatServer(load_s=0.01) as server:
        cold, config = make_run(tmp_path, live_roles(server.url, 4, 2), inputs)
        run_stages(cold, config, Progress(quiet=True), only=["generate"])
        seen = len(server.seen)
        # The same config in another run folder, sharing the cache: no model call at all.
        warm = prepare(config, tmp_path / "other_runs")
        run_stages(warm, config, Progress(quiet=True), only=["generate"])
        assert len(server.seen) == seen
    first, second = cold.read_json("ops.json"), warm.read_json("ops.json")
    for role, concurrency in (("teacher", 4), ("student", 2)):
        a, b = first["roles"][role], second["roles"][role]
        assert a["basis"] == "measured in this run" and a["model_calls"] == 12
        assert b["model_calls"] == 0 and b["cached"] == 12
        (measured,) = a["measured_in"]
        assert measured["batch"] == {"concurrency": concurrency} and measured["answers"] == 12
        assert measured["warm_up"] is False  # a remote server is not warmed
        assert b["basis"] == f"measured when cached (run gen, {measured['started']})"
        for key in ("latency_p50_s", "latency_p95_s", "latency_p99_s", "latency_mean_s", "latency_p50_ci_s",
                    "latency_p95_ci_s", "wall_s", "requests_per_s", "output_tokens_per_s"):
            assert b[key] == pytest.approx(a[key]), (role, key)
        assert a["requests_per_s"] == pytest.approx(12 / a["wall_s"])
    assert second["savings"] == pytest.approx(first["savings"])
    assert first["savings_basis"] == "teacher and student: measured in this run"


def test_a_remote_server_is_not_warmed_and_its_first_answer_counts_as_met(tmp_path):
    inputs = [f"cold item {i}" for i in range(4)]
    with ChatServer(slow_s=0.6) as server:
        run, config = make_run(tmp_path, live_roles(server.url), inputs)
        run_stages(run, config, Progress(quiet=True), only=["generate"])
        teacher_calls = [r for r in server.seen if r["body"]["model"] == "t"]
    # Each request is sent once: a warm-up would be a paid request answered twice.
    assert sorted(r["body"]["messages"][-1]["content"] for r in teacher_calls) == sorted(inputs)
    # The server's first answer takes 0.6 s: that is what this client met, and the figures say so.
    outputs = run.read_table("outputs")
    teacher = outputs[outputs.role == "teacher"]
    assert teacher.latency_s.max() >= 0.6 and (teacher.latency_s < 0.5).sum() == len(inputs) - 1
    ops = run.read_json("ops.json")["roles"]["teacher"]
    assert ops["measured_in"][0]["warm_up"] is False
    assert ops["latency_mean_s"] == pytest.approx(teacher.latency_s.mean())  # the cold answer included


def test_a_rate_limited_server_answers_each_request_once(tmp_path):
    # A "rate" request gets a 429 (Retry-After 1 s) first, then its answer: 2 attempts, 1 answer.
    inputs = ["rate item 0"]
    with ChatServer() as server:
        models = {"teacher": openai_model(server.url, model="t", concurrency=1, api_key_env=None, max_retry_wait_s=1),
                  "student": {"backend": "replay", "path": str(tmp_path / "student.jsonl")}}
        write_jsonl(tmp_path / "student.jsonl", [{"id": "e0", "text": "x"}])
        run, config = make_run(tmp_path, models, inputs)
        run_stages(run, config, Progress(quiet=True), only=["generate"])
        sent = [r["body"]["messages"][-1]["content"] for r in server.seen if r["body"]["model"] == "t"]
    assert sorted(sent) == sorted(inputs * 2)
    assert run.read_table("outputs").error.isna().all()


def test_no_timing_savings_between_a_replayed_teacher_and_a_measured_student(tmp_path):
    inputs = [f"ok item {i}" for i in range(5)]
    write_jsonl(tmp_path / "teacher.jsonl", [{"id": f"e{i}", "text": "x", "latency_s": 2.0} for i in range(5)])
    with ChatServer() as server:
        models = {"teacher": {"backend": "replay", "path": str(tmp_path / "teacher.jsonl")},
                  "student": openai_model(server.url, model="s", concurrency=4, api_key_env=None)}
        run, config = make_run(tmp_path, models, inputs)
        run_stages(run, config, Progress(quiet=True), only=["generate"])
    ops = run.read_json("ops.json")
    assert ops["roles"]["teacher"]["basis"] == "replay file"
    assert ops["roles"]["student"]["basis"] == "measured in this run"
    # A serial sum of replayed latencies against a measured concurrent throughput is no saving.
    assert ops["savings"]["throughput_gain_pct"] is None and ops["savings"]["latency_p50_s_pct"] is None
    assert ops["savings_basis"].startswith("timing savings not computed: the teacher's figures are replay file")
    assert any(n.startswith("ops: timing savings not computed") for n in run.manifest["stages"]["generate"]["notes"])


def test_a_cached_teacher_against_a_new_student_keeps_its_measured_throughput(tmp_path):
    # The "+3867 %" case: the teacher's answers come from the cache, the student is new. The
    # teacher's throughput was measured at concurrency 8; the serial sum of its latencies that a
    # cached run used to report makes it look slower and the student's gain larger.
    inputs = [f"load item {i}" for i in range(16)]
    with ChatServer(load_s=0.01) as server:
        first, config = make_run(tmp_path, live_roles(server.url, 8, 8), inputs)
        run_stages(first, config, Progress(quiet=True), only=["generate"])
        second, config2 = make_run(tmp_path / "b", live_roles(server.url, 8, 8, student="s2"), inputs,
                                   cache=str(tmp_path / "cache.sqlite"))
        run_stages(second, config2, Progress(quiet=True), only=["generate"])
    cold, ops = first.read_json("ops.json")["roles"]["teacher"], second.read_json("ops.json")
    t, s = ops["roles"]["teacher"], ops["roles"]["student"]
    assert t["model_calls"] == 0 and s["model_calls"] == 16
    assert t["requests_per_s"] == pytest.approx(cold["requests_per_s"])
    assert t["throughput_basis"] == "measured" and t["wall_s"] == pytest.approx(cold["wall_s"])
    assert ops["savings"]["throughput_gain_pct"] == pytest.approx(
        (s["requests_per_s"] - t["requests_per_s"]) / t["requests_per_s"] * 100)
    assert ops["savings_basis"] == f"teacher: {t['basis']}; student: measured in this run"
    assert t["basis"].startswith("measured when cached (run gen, ")


def test_a_flaky_request_gets_its_retries_once(tmp_path):
    # A request the server fails twice (HTTP 500) before answering: no warm-up attempt comes first,
    # so the request's own retries reach the answer — the back-off is not paid twice.
    with ChatServer() as server:
        run, config = make_run(tmp_path, live_roles(server.url), ["flaky item"])
        config.models["teacher"].max_retries = 2
        run_stages(run, config, Progress(quiet=True), only=["generate"])
        teacher = [r for r in server.seen if r["body"]["model"] == "t"]
    assert len(teacher) == 3  # 500, a retried 500, then the answer
    outputs = run.read_table("outputs")
    assert outputs.error.isna().all()
