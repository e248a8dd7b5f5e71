"""The vllm backend against a stand-in `vllm` package that follows vLLM 0.33's offline API strictly."""

from __future__ import annotations

import json
import sys

import pytest

from genval.config import VLLMModel
from genval.errors import GenvalError
from genval.models import Params, Request
from genval.models.vllm import VLLMBackend
from tests.tiny_models import direct_label_probs




def backend(path, **kw) -> VLLMBackend:
    return VLLMBackend(VLLMModel(backend="vllm", model=str(path), **kw))


def test_engine_is_built_with_stats_on_and_the_configured_options(fake_vllm, tiny):
    b = backend(tiny, tensor_parallel_size=2, gpu_memory_utilization=0.5, max_model_len=512, dtype="bfloat16")
    b.load()
    llm = fake_vllm.LLM.instances[0]
    assert (llm.model, llm.dtype, llm.tensor_parallel_size, llm.gpu_memory_utilization) == (str(tiny), "bfloat16", 2, 0.5)
    assert llm.log_stats is True and llm.kwargs["max_model_len"] == 512


def test_raw_prompts_go_through_generate_with_max_tokens_set(fake_vllm, tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    params = Params(max_tokens=40, temperature=0.7, top_p=0.9, seed=5)
    reqs = [Request(id="a", prompt="the cat sat", params=params), Request(id="b", prompt="dogs", system="sys", params=params)]
    out = {c.id: c for c in backend(tiny).generate(reqs)}
    call = fake_vllm.LLM.calls[0]
    assert call["method"] == "generate" and call["prompts"] == ["the cat sat", "sys\n\ndogs"]
    sp = call["params"][0]
    assert (sp.max_tokens, sp.temperature, sp.top_p, sp.seed, sp.logprobs) == (40, 0.7, 0.9, 5, None)
    # 40 tokens, not vLLM's default 16: the stream is long enough to tell them apart.
    stream = tok(fake_vllm.entrypoints.llm.STREAM, add_special_tokens=False)["input_ids"]
    assert out["a"].text == tok.decode(stream[:40]) and out["a"].completion_tokens == 40
    assert out["a"].prompt_tokens == len(tok("the cat sat")["input_ids"])
    # Latency is read from RequestOutput.metrics (last_token_ts − queued_ts = 0.01 s per token in the stand-in).
    assert out["a"].latency_s == pytest.approx(0.40)


def test_chat_template_sends_messages_through_chat(fake_vllm, tiny_chat):
    reqs = [Request(id="a", prompt="hello", system="be brief", params=Params(max_tokens=5))]
    next(backend(tiny_chat).generate(reqs))
    call = fake_vllm.LLM.calls[0]
    assert call["method"] == "chat"
    assert call["messages"] == [[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]]
    next(backend(tiny_chat, chat_template=False).generate(reqs))
    assert fake_vllm.LLM.calls[1]["method"] == "generate"


def test_stop_strings_are_passed_and_honoured(fake_vllm, tiny):
    c = next(backend(tiny).generate([Request(id="a", prompt="x", params=Params(max_tokens=30, stop=(" mat",)))]))
    assert fake_vllm.LLM.calls[0]["params"][0].stop == [" mat"]
    assert c.text == " the cat sat on the"


def test_schema_goes_through_structured_outputs(fake_vllm, tiny):
    schema = {"type": "object", "properties": {"category": {"enum": ["billing", "legal"]}, "refund": {"type": "boolean"}},
              "required": ["category", "refund"]}
    c = next(backend(tiny).generate([Request(id="a", prompt="x", schema=schema, params=Params(max_tokens=64))]))
    so = fake_vllm.LLM.calls[0]["params"][0].structured_outputs
    assert isinstance(so, fake_vllm.sampling_params.StructuredOutputsParams) and so.json == schema
    assert json.loads(c.text) == {"category": "billing", "refund": True}


def test_label_probabilities_are_those_of_the_answer_after_a_space(fake_vllm, tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    labels = ("billing", "shipping", "fraud", "legal")
    c = next(backend(tiny).generate([Request(id="a", prompt="my order never arrived, category:", labels=labels, generate=False)]))
    call = fake_vllm.LLM.calls[0]
    assert len(fake_vllm.LLM.calls) == 1  # no text wanted: only the scoring call
    assert (call["params"][0].max_tokens, call["params"][0].prompt_logprobs) == (1, 0)
    # Each prompt is the context's tokens followed by the label's tokens as the model writes it: " positive".
    context = tok("my order never arrived, category:")["input_ids"]
    for label, prompt in zip(labels, call["prompts"]):
        assert prompt == {"prompt_token_ids": tok("my order never arrived, category: " + label)["input_ids"]}
        assert prompt["prompt_token_ids"][:len(context)] == context
    # The stand-in's prompt_logprobs come from the tiny model's own forward pass, so the result
    # must equal the direct computation (log-softmax, continuation log-probs summed, normalised).
    expected = direct_label_probs(tiny, "my order never arrived, category:", {label: " " + label for label in labels})
    assert c.label_probs == pytest.approx(expected, abs=1e-6)
    glued = direct_label_probs(tiny, "my order never arrived, category:", {label: label for label in labels})
    assert max(abs(glued[x] - expected[x]) for x in labels) > 1e-5
    assert c.text == ""


def test_label_probabilities_in_a_chat_turn_have_no_delimiter(fake_vllm, tiny_chat):
    from transformers import AutoTokenizer

    labels = ("billing", "shipping", "fraud", "legal")
    b = backend(tiny_chat)
    req = Request(id="a", prompt="my order never arrived, category:", labels=labels, generate=False)
    c = next(b.generate([req]))
    rendered = AutoTokenizer.from_pretrained(tiny_chat).apply_chat_template(
        [{"role": "user", "content": "my order never arrived, category:"}], tokenize=False, add_generation_prompt=True)
    assert rendered == "<|user|> my order never arrived, category:\n<|assistant|> "
    # The cue ends in a space, which moves onto the answer (lm-evaluation-harness's _encode_pair);
    # no delimiter is added in a chat turn.
    expected = direct_label_probs(tiny_chat, rendered[:-1], {x: " " + x for x in labels}, special=False)
    assert c.label_probs == pytest.approx(expected, abs=1e-6)


def test_top_logprobs_when_asked(fake_vllm, tiny):
    c = next(backend(tiny).generate([Request(id="a", prompt="x", params=Params(max_tokens=3, logprobs=5))]))
    assert fake_vllm.LLM.calls[0]["params"][0].logprobs == 5
    assert c.top_logprobs[0] == {"positive": -0.3, " negative": -1.5, "Neutral": -2.5, "the": -3.0, ".": -4.0}
    assert len(c.top_logprobs) == 3


def test_the_stand_in_rejects_calls_vllm_033_would_reject(fake_vllm):
    with pytest.raises(TypeError, match="guided_json"):
        fake_vllm.SamplingParams(max_tokens=5, guided_json={"type": "object"})
    with pytest.raises(TypeError):
        fake_vllm.LLM("m", disable_log_stat=False)  # misspelt engine argument
    assert fake_vllm.SamplingParams().max_tokens == 16


def test_missing_vllm_names_the_extra(monkeypatch, tiny):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm → ImportError
    with pytest.raises(GenvalError, match=r"pip install genval\[vllm\]"):
        backend(tiny).load()


def test_chat_template_true_without_one_is_a_user_error(fake_vllm, tiny):
    with pytest.raises(GenvalError, match="chat_template"):
        backend(tiny, chat_template=True).load()


def test_a_json_judge_answers_in_structured_output_and_its_verdict_parses(fake_vllm, tiny):
    import pandas as pd

    from genval.judging.asking import build_requests, read_verdicts
    from genval.judging.definition import load_definition
    from tests.conftest import ROOT

    definition = load_definition(ROOT / "judges" / "extraction_equivalence.yaml")
    items = pd.DataFrame({"id": ["x"], "input": ["i"], "reference": ["r"], "candidate": ['{"a": 1}'], "other": ["o"]})
    requests = build_requests(definition, items, "student~teacher", "extraction", 1, True, None, b"k")
    completions = list(backend(tiny).generate(requests))
    so = fake_vllm.LLM.calls[0]["params"][0].structured_outputs
    assert isinstance(so, fake_vllm.sampling_params.StructuredOutputsParams) and so.json == definition.answer_schema()
    # The stand-in's constrained answer is the schema's first value: {"fields": {}, "verdict": "equivalent"}.
    assert json.loads(completions[0].text) == {"fields": {}, "verdict": "equivalent"}
    frame = read_verdicts(definition, "x", requests, completions)
    assert frame["verdict"].tolist() == ["equivalent"] and frame["parsed"].tolist() == [True]


def test_the_stand_in_is_as_strict_as_vllm_about_structured_outputs(fake_vllm, tiny):
    from pydantic import ValidationError

    params = fake_vllm.sampling_params.StructuredOutputsParams
    with pytest.raises(ValueError, match="none are specified"):
        params()
    with pytest.raises(ValueError, match="multiple are specified"):
        params(json={"type": "object"}, regex="a+")
    with pytest.raises(ValidationError):
        params(json=["not", "a", "schema"])
    with pytest.raises(Exception, match="is not valid under any of the given schemas|is not of type"):
        next(backend(tiny).generate([Request(id="a", prompt="x", schema={"type": "objekt"})]))
