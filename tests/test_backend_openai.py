"""The openai backend against a real HTTP server on 127.0.0.1: retries, Retry-After, timeouts, bad bodies."""

from __future__ import annotations

import math

import pytest

from genval.config import OpenAIModel
from genval.errors import GenvalError
from genval.models import Params, Request
from genval.models.openai import OpenAIBackend
from tests.openai_server import ChatServer


@pytest.fixture
def server():
    with ChatServer(slow_s=1.5) as s:
        yield s


def backend(url, **kw) -> OpenAIBackend:
    kw.setdefault("backoff_s", 0.01)
    return OpenAIBackend(OpenAIModel(backend="openai", model="tiny", base_url=url, **kw))


def run(b, *prompts, **req) -> dict:
    return {c.id: c for c in b.generate([Request(id=p, prompt=p, **req) for p in prompts])}


def test_plain_requests_carry_parameters_and_usage(server):
    params = Params(max_tokens=7, temperature=0.5, top_p=0.9, seed=3, stop=("\n",))
    out = run(backend(server.url), "ok one", "ok two", params=params, system="be brief")
    assert out["ok one"].text == "echo: ok one" and out["ok one"].error is None
    assert (out["ok two"].prompt_tokens, out["ok two"].completion_tokens) == (2, 3)
    assert out["ok one"].latency_s > 0
    body = server.seen[0]["body"]
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"], body["stop"]) == (7, 0.5, 0.9, 3, ["\n"])
    assert "logprobs" not in body and "response_format" not in body


def test_429_waits_for_retry_after(server):
    out = run(backend(server.url), "rate me")
    assert out["rate me"].text == "echo: rate me"
    first, second = server.arrivals("rate me")
    assert second - first >= 0.95  # Retry-After: 1, while the back-off alone would wait ≤ 0.01 s


def test_500_is_retried_and_gives_up_after_max_retries(server):
    assert run(backend(server.url, max_retries=2), "flaky a")["flaky a"].text == "echo: flaky a"
    assert len(server.arrivals("flaky a")) == 3
    failed = run(backend(server.url, max_retries=1), "flaky b")["flaky b"]
    assert failed.error == "HTTP 500 (server error); gave up after 2 attempts"
    assert len(server.arrivals("flaky b")) == 2


def test_slow_answers_time_out_and_the_rest_go_on(server):
    out = run(backend(server.url, timeout_s=0.3, max_retries=1), "slow x", "ok y")
    assert out["slow x"].error == "timed out after 0.3 s; gave up after 2 attempts"
    assert out["ok y"].text == "echo: ok y"
    assert len(server.arrivals("slow x")) == 2


def test_malformed_bodies_become_errors_after_retries(server):
    out = run(backend(server.url, max_retries=2), "garbage 1", "hollow 1")
    assert out["garbage 1"].error == "the server's answer is not JSON; gave up after 3 attempts"
    assert out["hollow 1"].error.startswith("the server's answer has no choices[0].message.content")
    assert len(server.arrivals("garbage 1")) == len(server.arrivals("hollow 1")) == 3


def test_client_errors_are_not_retried(server):
    out = run(backend(server.url, max_retries=3), "bad one")
    assert out["bad one"].error.startswith("HTTP 400")
    assert len(server.arrivals("bad one")) == 1


def test_concurrency_limit_holds(server):
    server.load_s = 0.05
    prompts = [f"load {i}" for i in range(8)]
    out = run(backend(server.url, concurrency=2), *prompts)
    assert all(c.text for c in out.values())
    assert server.max_in_flight == 2


def test_label_probabilities_from_top_logprobs(server):
    labels = ("positive", "negative", "neutral")
    c = run(backend(server.url), "label this", labels=labels, generate=False)["label this"]
    body = server.seen[0]["body"]
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["max_tokens"] == 1
    pos, neg, neu = math.exp(-0.2), math.exp(-2.0), math.exp(-4.0)  # "The" begins no label
    total = pos + neg + neu
    assert c.label_probs == pytest.approx({"positive": pos / total, "negative": neg / total, "neutral": neu / total})
    assert c.top_logprobs[0] == {" pos": -0.2, "neg": -2.0, "The": -3.0, " Neutral": -4.0}
    assert c.text == ""
    # A label whose first token is not in the top k gets the smallest listed probability.
    c = run(backend(server.url), "label this", labels=("positive", "other"), generate=False)["label this"]
    assert c.label_probs["other"] == pytest.approx(neu / (pos + neu))


def test_logprobs_and_schema_when_asked(server):
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    c = run(backend(server.url, logprobs=True, top_logprobs=1), "ok json", schema=schema)["ok json"]
    body = server.seen[0]["body"]
    assert body["top_logprobs"] == 1
    # An open object cannot go in OpenAI's strict mode (the API refuses it); a closed one does.
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": False}}
    assert c.top_logprobs == [{"echo": -0.1}, {":": -0.5}]
    closed = {**schema, "required": ["a"], "additionalProperties": False}
    run(backend(server.url), "ok closed", schema=closed)
    assert server.seen[1]["body"]["response_format"]["json_schema"]["strict"] is True


def test_api_key_is_sent_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("TINY_KEY", "sk-secret-123")
    run(backend(server.url, api_key_env="TINY_KEY"), "ok key")
    assert server.seen[0]["headers"]["Authorization"] == "Bearer sk-secret-123"
    assert "sk-secret-123" not in backend(server.url, api_key_env="TINY_KEY").fingerprint()
    monkeypatch.delenv("TINY_KEY")
    with pytest.raises(GenvalError, match="TINY_KEY"):
        run(backend(server.url, api_key_env="TINY_KEY"), "ok key")


def test_unreachable_server_is_an_error_per_request():
    # Port 9 (discard) on loopback: nothing listens, so the connection is refused at once.
    out = run(backend("http://127.0.0.1:9/v1", max_retries=1), "ok lost")
    assert out["ok lost"].error == "connection failed (ConnectError); gave up after 2 attempts"
