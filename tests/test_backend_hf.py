"""The hf backend on a tiny model built here: batching, chat templates, stops, label probabilities, cache."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from genval.config import HFModel  # noqa: E402
from genval.errors import GenvalError  # noqa: E402
from genval.models import CallStats, Params, Request, generate_cached  # noqa: E402
from genval.models.cache import RequestCache  # noqa: E402
from genval.models.hf import HFBackend, cut_at_stop  # noqa: E402
from tests.devices import DEVICE, LABEL_TOL  # noqa: E402
from tests.tiny_models import direct_label_probs  # noqa: E402

pytestmark = pytest.mark.slow  # tiny transformers models generating on CPU

PROMPTS = ["the cat sat", "rain falls in spring and the sun", "dogs", "answer with one json object with the keys",
           "summarise the ticket", "billing shipping account technical fraud legal positive"]


def backend(path, **kw) -> HFBackend:
    return HFBackend(HFModel(backend="hf", model=str(path), device=DEVICE, **kw))


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


LABELS = ("billing", "shipping", "fraud", "legal")


def chat_model_without_trailing_space(tiny, folder):
    """The tiny model with a chat template whose assistant cue ends in no whitespace (as many real ones)."""
    import shutil

    shutil.copytree(tiny, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
                         "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    tok.save_pretrained(folder)
    return folder


def test_label_probabilities_are_those_of_the_answer_after_a_space(tiny):
    prompts = {"a": "the ticket is about", "b": "my order never arrived, category:"}
    reqs = [Request(id=i, prompt=p, labels=LABELS, generate=False) for i, p in prompts.items()]
    got = {c.id: c for c in backend(tiny).generate(reqs)}
    for ident, prompt in prompts.items():
        probs = got[ident].label_probs
        assert set(probs) == set(LABELS) and got[ident].text == ""
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-9)
        # A model answers " billing" after "category:": the label is scored after the space
        # (lm-evaluation-harness's target_delimiter), not glued onto the prompt.
        delimited = direct_label_probs(tiny, prompt, {label: " " + label for label in LABELS})
        glued = direct_label_probs(tiny, prompt, {label: label for label in LABELS})
        assert probs == pytest.approx(delimited, abs=LABEL_TOL)
        assert max(abs(glued[label] - delimited[label]) for label in LABELS) > 1e-5  # the two differ here
    assert got["a"].label_probs != got["b"].label_probs


def test_no_delimiter_after_trailing_whitespace_and_a_configured_one_otherwise(tiny):
    reqs = [Request(id="space", prompt="Category: ", labels=LABELS, generate=False),
            Request(id="newline", prompt="Category:", labels=LABELS, generate=False, label_delimiter="\n")]
    got = {c.id: c.label_probs for c in backend(tiny).generate(reqs)}
    # "Category: " already ends in a space: nothing is added, and the space moves onto the label
    # (lm-evaluation-harness's _encode_pair), so it is the same answer as "Category:" + " billing".
    assert got["space"] == pytest.approx(direct_label_probs(tiny, "Category:", {x: " " + x for x in LABELS}), abs=LABEL_TOL)
    assert got["newline"] == pytest.approx(direct_label_probs(tiny, "Category:", {x: "\n" + x for x in LABELS}),
                                           abs=LABEL_TOL)


def test_no_delimiter_inside_a_chat_turn(tiny, tmp_path):
    path = chat_model_without_trailing_space(tiny, tmp_path / "chat")
    b = backend(path)
    req = Request(id="a", prompt="my order never arrived, category:", labels=LABELS, generate=False)
    probs = next(b.generate([req])).label_probs
    rendered = b.render(req)
    assert rendered == "<|user|>my order never arrived, category:<|assistant|>"
    # The assistant's answer starts fresh after its cue: "billing", not " billing".
    expected = direct_label_probs(path, rendered, {x: x for x in LABELS}, special=False)
    spaced = direct_label_probs(path, rendered, {x: " " + x for x in LABELS}, special=False)
    assert probs == pytest.approx(expected, abs=LABEL_TOL)
    assert max(abs(spaced[x] - expected[x]) for x in LABELS) > 1e-5


def test_the_delimiter_is_part_of_the_cache_key_of_label_requests_only():
    text = Request(id="a", prompt="p")
    assert "label_delimiter" not in text.cache_payload()  # text answers cached before keep their keys
    labelled = Request(id="a", prompt="p", labels=LABELS)
    assert labelled.cache_payload()["label_delimiter"] == " "
    assert Request(id="a", prompt="p", labels=LABELS, label_delimiter="").cache_payload() != labelled.cache_payload()


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
    kind = "process_peak_rss" if DEVICE == "cpu" else "cuda_max_allocated"
    assert info["memory_kind"] == kind and info["peak_memory_bytes"] > 0


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
        assert list(top.values()) == pytest.approx(list(expected.values()), abs=1e-4)  # any device's float32
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
