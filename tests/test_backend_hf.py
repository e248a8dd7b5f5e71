"""The hf backend on a tiny model built here: batching, chat templates, stops, label probabilities, cache."""

from __future__ import annotations

import math
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from genval.backends import CallStats, Params, Request, generate_cached  # noqa: E402
from genval.backends.hf import HFBackend, cut_at_stop  # noqa: E402
from genval.cache import RequestCache  # noqa: E402
from genval.config import HFModel  # noqa: E402
from genval.errors import GenvalError  # noqa: E402

PROMPTS = ["the cat sat", "rain falls in spring and the sun", "dogs", "answer with one json object with the keys",
           "summarise the ticket", "billing shipping account technical fraud legal positive"]


def backend(path, **kw) -> HFBackend:
    return HFBackend(HFModel(backend="hf", model=str(path), device="cpu", **kw))


def reference_greedy(path, prompt: str, max_new: int) -> str:
    """One prompt, no padding, straight through transformers: the text batching must reproduce."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    ids = tok(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def test_batched_greedy_equals_one_at_a_time(tiny):
    params = Params(max_tokens=12)
    requests = [Request(id=str(i), prompt=p, params=params) for i, p in enumerate(PROMPTS)]
    batched = {c.id: c for c in backend(tiny, batch_size=4).generate(requests)}
    single = {c.id: c for c in backend(tiny, batch_size=1).generate(requests)}
    assert set(batched) == {str(i) for i in range(len(PROMPTS))}
    for i, prompt in enumerate(PROMPTS):
        expected = reference_greedy(tiny, prompt, 12)
        assert batched[str(i)].text == single[str(i)].text == expected
        assert batched[str(i)].prompt_tokens == len(AutoTokenizer.from_pretrained(tiny)(prompt)["input_ids"])
        assert batched[str(i)].completion_tokens > 0
        assert batched[str(i)].latency_s > 0


def test_chat_template_is_applied(tiny_chat):
    b = backend(tiny_chat, batch_size=2)
    b.load()
    text = b.render(Request(id="x", prompt="hello", system="be brief"))
    assert text == "<|system|> be brief\n<|user|> hello\n<|assistant|> "
    raw = backend(tiny_chat, chat_template=False)
    raw.load()
    assert raw.render(Request(id="x", prompt="hello", system="be brief")) == "be brief\n\nhello"


def test_chat_template_true_without_one_is_a_user_error(tiny):
    with pytest.raises(GenvalError, match="chat_template"):
        backend(tiny, chat_template=True).load()


def test_missing_model_is_a_user_error(tmp_path):
    with pytest.raises(GenvalError, match="cannot load"):
        backend(tmp_path / "nowhere").load()


def test_stop_strings_cut_the_text(tiny):
    full = next(backend(tiny).generate([Request(id="a", prompt="the cat sat", params=Params(max_tokens=12))]))
    assert len(full.text) > 3
    stop = full.text[2:4]
    cut = next(backend(tiny).generate([Request(id="a", prompt="the cat sat", params=Params(max_tokens=12, stop=(stop,)))]))
    assert cut.text == full.text[:full.text.find(stop)]
    assert cut_at_stop("abcXdefY", ("Y", "X")) == ("abc", True)
    assert cut_at_stop("abc", ("Z",)) == ("abc", False)


def test_sampling_is_seeded(tiny):
    params = Params(max_tokens=10, temperature=1.0, seed=7)
    reqs = [Request(id="a", prompt="the cat sat", params=params)]
    first = next(backend(tiny).generate(reqs)).text
    again = next(backend(tiny).generate(reqs)).text
    other = next(backend(tiny).generate([Request(id="a", prompt="the cat sat", params=Params(max_tokens=10, temperature=1.0, seed=8))])).text
    assert first == again
    assert first != other


def direct_label_probs(path, context: str, labels) -> dict:
    """Each label scored alone: log p(label tokens | context) from one unpadded forward, then softmax."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    ctx = tok(context)["input_ids"]
    scores = {}
    for label in labels:
        cont = tok(context + label)["input_ids"][len(ctx):]
        ids = torch.tensor([ctx + cont])
        with torch.inference_mode():
            logp = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
        scores[label] = sum(float(logp[len(ctx) - 1 + k, t]) for k, t in enumerate(cont))
    z = math.log(sum(math.exp(v) for v in scores.values()))
    return {label: math.exp(v - z) for label, v in scores.items()}


def test_label_probabilities_sum_to_one_and_match_the_logits(tiny):
    labels = ("billing", "shipping", "fraud", "legal")
    reqs = [Request(id="a", prompt="the ticket is about", labels=labels, generate=False),
            Request(id="b", prompt="my order never arrived, category", labels=labels, generate=False)]
    got = {c.id: c for c in backend(tiny).generate(reqs)}
    for req in reqs:
        probs = got[req.id].label_probs
        assert set(probs) == set(labels)
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-9)
        expected = direct_label_probs(tiny, req.prompt, labels)
        for label in labels:
            assert probs[label] == pytest.approx(expected[label], rel=1e-4)
        assert got[req.id].text == ""
    assert got["a"].label_probs != got["b"].label_probs


def test_cache_rerun_makes_no_model_call(tiny, tmp_path):
    cache = RequestCache(tmp_path / "cache.sqlite")
    reqs = [Request(id=str(i), prompt=p, params=Params(max_tokens=5)) for i, p in enumerate(PROMPTS[:3])]
    first = generate_cached(backend(tiny), reqs, cache, stats=(s1 := CallStats()))
    b = backend(tiny)
    second = generate_cached(b, reqs, cache, stats=(s2 := CallStats()))
    assert (s1.called, s2.called, s2.cached) == (3, 0, 3)
    assert [c.text for c in first] == [c.text for c in second]
    assert b.model is None  # a fully cached run never loads the model


def test_auto_batch_size_halves_on_out_of_memory(tiny):
    b = backend(tiny, batch_size="auto")
    b.load()
    real = b.model.generate
    seen = []

    def generate_fitting_two(*args, **kwargs):
        # Stands in for a GPU that fits 2 sequences: the backend must find that size by halving.
        rows = kwargs["input_ids"].shape[0]
        seen.append(rows)
        if rows > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(*args, **kwargs)

    b.model.generate = generate_fitting_two
    reqs = [Request(id=str(i), prompt=p, params=Params(max_tokens=4)) for i, p in enumerate(PROMPTS)]
    out = {c.id: c for c in b.generate(reqs)}
    assert seen[:4] == [6, 4, 2, 2]  # 16 holds all 6 and fails; 8 would too, so 4; then 2 fits
    assert b.batch_size == 2
    assert all(not c.error and c.text for c in out.values())


def test_info_reports_parameters_and_memory(tiny):
    b = backend(tiny)
    list(b.generate([Request(id="a", prompt="the cat", params=Params(max_tokens=2))]))
    info = b.info()
    model = AutoModelForCausalLM.from_pretrained(tiny)
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["weight_bytes"] == 4 * info["parameters"]  # float32 weights
    assert info["memory_kind"] == "process_peak_rss" and info["peak_memory_bytes"] > 0


def test_top_logprobs_per_generated_token(tiny):
    c = next(backend(tiny).generate([Request(id="a", prompt="the cat sat", params=Params(max_tokens=4, logprobs=3))]))
    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny).eval()
    ids = tok("the cat sat")["input_ids"]
    assert len(c.top_logprobs) == c.completion_tokens == 4
    for step, top in enumerate(c.top_logprobs):
        with torch.inference_mode():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].double(), dim=-1)
        values, best = torch.topk(logp, 3)
        expected = {}
        for v, i in zip(values.tolist(), best.tolist()):
            expected.setdefault(tok.decode([i]), v)  # ids that decode alike: the likelier one stands
        assert list(top) == list(expected)
        assert list(top.values()) == pytest.approx(list(expected.values()), abs=1e-4)
        ids = ids + [int(best[0])]  # greedy: the top token is the one generated


def test_fixed_batch_size_out_of_memory_fails_those_requests_only(tiny):
    b = backend(tiny, batch_size=4)
    b.load()
    real = b.model.generate

    def generate_fitting_two(*args, **kwargs):
        if kwargs["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(*args, **kwargs)

    b.model.generate = generate_fitting_two
    reqs = [Request(id=str(i), prompt=p, params=Params(max_tokens=3)) for i, p in enumerate(PROMPTS)]
    out = list(b.generate(reqs))
    failed = [c for c in out if c.error]
    assert len(out) == 6 and len(failed) == 4  # the first batch of 4 (longest prompts); the last 2 fit
    assert all(c.error == "out of memory at batch size 4" for c in failed)
    assert all(c.text for c in out if not c.error)
