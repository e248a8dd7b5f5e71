"""A hostile server on 127.0.0.1: it quotes the API key back, trickles its body, sends JSON no parser should trust.

Each request is counted and recorded as a failure or a clean answer; the key is never stored
or printed; no attempt outlives `timeout_s`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from genval.cli import main
from genval.config import OpenAIModel
from genval.models import Request
from genval.models.openai import ERROR_BODY, OpenAIBackend
from tests.conftest import write_jsonl, write_yaml
from tests.openai_server import ChatServer

KEY = "sk-genval-test-5f1c9a7e2b4d4c0e8a1b3c5d7e9f0a2b"


@pytest.fixture
def server():
    with ChatServer(trickle_s=0.25) as s:
        yield s


def run(model: OpenAIModel, *messages: str) -> dict:
    backend = OpenAIBackend(model)
    return {c.id: c for c in backend.generate([Request(id=m, prompt=m) for m in messages])}


def test_a_401_that_quotes_the_key_leaves_it_in_no_file_and_no_line(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENVAL_TEST_KEY", KEY)
    examples = [{"id": f"e{i}", "input": f"text number {i}", "reference": f"text {i}"} for i in range(3)]
    write_jsonl(tmp_path / "eval.jsonl", examples)
    write_jsonl(tmp_path / "teacher.jsonl", [{"id": e["id"], "text": e["reference"]} for e in examples])
    config = write_yaml(tmp_path / "run.yaml", {
        "name": "leak", "task": "generation", "eval_set": "eval.jsonl", "prompt": "unauthorized {input}",
        "models": {"teacher": {"backend": "replay", "path": "teacher.jsonl"},
                   "student": {"backend": "openai", "model": "m", "base_url": server.url,
                               "api_key_env": "GENVAL_TEST_KEY", "max_retries": 0}},
        "metrics": ["bleu"], "cache": "cache/requests.sqlite",
    })
    code = main(["run", str(config), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code in (0, 3)  # 3 once a run that finished with failed requests says so (issue 9)
    # The server did see the key, and quoted it back in its 401 body.
    assert server.seen and all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in server.seen)
    outputs = pd.read_parquet(tmp_path / "runs" / "leak" / "outputs.parquet")
    errors = outputs[outputs["role"] == "student"]["error"].tolist()
    assert len(errors) == 3 and all(e.startswith("HTTP 401: ") and "Bearer [REDACTED]" in e for e in errors)
    assert all(len(e) <= len("HTTP 401: ") + ERROR_BODY + 1 for e in errors)  # kept short
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix not in (".yaml", ".jsonl")]
    assert any(p.name == "report.html" for p in files) and any(p.name == "requests.sqlite" for p in files)
    for path in files:  # the run folder, the cache (and its WAL), the report: not one byte of the key
        assert KEY.encode() not in path.read_bytes(), path
        if path.suffix == ".parquet":  # and not inside a compressed page either
            cells = pd.read_parquet(path).astype(str)
            assert not cells.apply(lambda column: column.str.contains(KEY, regex=False)).any().any(), path
    assert "HTTP 401" in err and "[REDACTED]" in err and KEY not in err


def test_a_trickling_body_is_cut_at_timeout_s_per_attempt_and_retried(server):
    # 300 bytes at one every 0.25 s would hold an attempt ~75 s; httpx's read timeout never fires.
    model = OpenAIModel(backend="openai", model="m", base_url=server.url, timeout_s=1, max_retries=1, backoff_s=0)
    started = time.monotonic()
    (c,) = run(model, "trickle slowly please").values()
    elapsed = time.monotonic() - started
    assert c.error == "timed out after 1 s; gave up after 2 attempts"
    arrivals = server.arrivals("trickle slowly please")
    assert len(arrivals) == 2 and 0.9 < arrivals[1] - arrivals[0] < 2.5  # the second attempt starts ~1 s after the first
    assert 1.8 < elapsed < 5.0


def test_hostile_bodies_are_failures_or_clean_answers_never_a_crash(server):
    model = OpenAIModel(backend="openai", model="m", base_url=server.url, max_retries=0)
    out = run(model, "deep json", "surrogate text", "oddusage counts", "huge error", "listlogprobs x")
    assert out["deep json"].error == "the server's answer is not JSON; gave up after 1 attempts"
    # A lone surrogate cannot be written as UTF-8: it becomes U+FFFD, the rest of the text is kept.
    assert out["surrogate text"].text == "half a character: \ufffd here" and out["surrogate text"].error is None
    assert (out["oddusage counts"].prompt_tokens, out["oddusage counts"].completion_tokens) == (None, None)
    huge = out["huge error"].error
    assert huge.startswith('HTTP 400: {"error": "xxx') and huge.endswith("…") and len(huge) == len("HTTP 400: ") + ERROR_BODY + 1
    assert out["listlogprobs x"].error.startswith("choices[0].logprobs.content has entries without token/logprob")


def test_the_key_is_redacted_from_an_error_line_too(tmp_path, monkeypatch, capsys):
    # Any line genval prints goes through the redaction, not only the backend's own errors.
    from genval.redact import watch

    monkeypatch.setenv("GENVAL_TEST_KEY", KEY)
    watch(["GENVAL_TEST_KEY"])
    assert main(["labels", str(tmp_path / f"{KEY}.jsonl"), str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and KEY not in err and "[REDACTED]" in err


def test_json_judges_ask_for_structured_output_with_their_schema(server):
    from genval.judging.asking import build_requests
    from genval.judging.definition import load_definition
    from tests.conftest import ROOT

    definition = load_definition(ROOT / "judges" / "equivalence.yaml").model_copy(
        update={"parser": load_definition(ROOT / "judges" / "extraction_equivalence.yaml").parser.model_copy(
            update={"schema_": None})})
    items = pd.DataFrame({"id": ["x"], "input": ["i"], "reference": ["r"], "candidate": ["ok c"], "other": ["o"]})
    (request,) = build_requests(definition, items, "student~teacher", "t", 1, True, None, b"k")
    model = OpenAIModel(backend="openai", model="m", base_url=server.url)
    list(OpenAIBackend(model).generate([request]))
    fmt = server.seen[0]["body"]["response_format"]
    schema = {"type": "object", "properties": {"verdict": {"enum": ["equivalent", "not_equivalent"]}},
              "required": ["verdict"], "additionalProperties": False}
    assert fmt == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}
    assert json.loads(json.dumps(fmt)) == fmt and Path  # the body is plain JSON


def test_a_key_that_reaches_any_stored_string_is_redacted_there(server, tmp_path, monkeypatch):
    # The student (a replay) leaked the key into its output; the judge's server echoes its prompt back.
    from tests.conftest import ROOT

    monkeypatch.setenv("GENVAL_TEST_KEY", KEY)
    write_jsonl(tmp_path / "eval.jsonl", [{"id": "a", "input": "hello"}, {"id": "b", "input": "bye"}])
    write_jsonl(tmp_path / "teacher.jsonl", [{"id": "a", "text": "hi"}, {"id": "b", "text": "bye"}])
    write_jsonl(tmp_path / "student.jsonl", [{"id": "a", "text": f"ok my key is {KEY}"}, {"id": "b", "text": "bye"}])
    # The server picks its answer by the message's first word: "ok" echoes the whole prompt back.
    judge = (ROOT / "judges" / "equivalence.yaml").read_text().replace("Task type: {task}", "ok {task}")
    (tmp_path / "judge.yaml").write_text(judge)
    config = write_yaml(tmp_path / "run.yaml", {
        "name": "leak2", "task": "generation", "eval_set": "eval.jsonl", "prompt": "{input}",
        "models": {"teacher": {"backend": "replay", "path": "teacher.jsonl"},
                   "student": {"backend": "replay", "path": "student.jsonl"}},
        "metrics": ["bleu"],
        "judge": [{"config": "judge.yaml", "model": {"backend": "openai", "model": "m", "base_url": server.url,
                                                      "api_key_env": "GENVAL_TEST_KEY"}}],
    })
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    # The outputs table was written redacted, so even the judge was shown the mask, not the key.
    assert any("my key is [REDACTED]" in r["body"]["messages"][-1]["content"] for r in server.seen)
    outputs = pd.read_parquet(tmp_path / "runs" / "leak2" / "outputs.parquet").set_index(["id", "role"])
    assert outputs.loc[("a", "student"), "text"] == "ok my key is [REDACTED]"
    raw = pd.read_parquet(tmp_path / "runs" / "leak2" / "judgments.parquet")["raw"].tolist()
    assert len(raw) == 2 and any("[REDACTED]" in r for r in raw)
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
