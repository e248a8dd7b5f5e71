"""The generate stage with real engines: outputs, ops.json, errors kept, keys never written, resume."""

from __future__ import annotations

import json
import os

import pytest

from genval.backends.openai import OpenAIBackend
from genval.config import parse_config
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
        assert len(teacher_calls) == 4  # the 2 answers that finished came from the cache
        assert len(student_calls) == 6  # the student never started
        outputs = run.read_table("outputs")
        assert outputs[outputs.role == "teacher"].cached.sum() == 2
        assert outputs.error.isna().all()
        ops = run.read_json("ops.json")["roles"]["teacher"]
        assert (ops["cached"], ops["model_calls"]) == (2, 4)
        # A third run: everything is cached, no request reaches the server.
        after = len(server.seen)
        run_stages(run, config, Progress(quiet=True), only=["generate"], force=("generate",))
        assert len(server.seen) == after


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
