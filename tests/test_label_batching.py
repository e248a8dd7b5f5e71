"""Label probabilities batched across examples: the same numbers as one example at a time, in fewer forwards."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from genval.config import HFModel  # noqa: E402
from genval.models import Request  # noqa: E402
from genval.models import labels as lab  # noqa: E402
from genval.models.hf import HFBackend  # noqa: E402
from tests.devices import DEVICE, LABEL_TOL  # noqa: E402
from tests.tiny_models import direct_label_probs  # noqa: E402

PROMPTS = ["the ticket is about", "my order never arrived, category:", "dogs bark at night and", "x:",
           "rain falls in spring and the sun is hot in summer, so", "answer:"]
MULTI = ("billing", "shipping", "fraud", "legal")  # several tokens each in the tiny tokenizer


def one_token_labels(tokenizer) -> tuple[str, ...]:
    """Gives labels that are one token after a space in this tokenizer (checked, not assumed)."""
    found = tuple(w for w in ("cat", "the", "no", "mat", "sun") if len(tokenizer(" " + w)["input_ids"]) == 1)
    assert len(found) >= 2
    return found


class ForwardCounter:
    """Counts a model's forward calls and the rows of each, through a pre-forward hook."""

    def __init__(self, model):
        self.rows: list[int] = []
        self.handle = model.register_forward_pre_hook(self.seen, with_kwargs=True)

    def seen(self, module, args, kwargs):
        self.rows.append(int(kwargs["input_ids"].shape[0]))


@pytest.fixture(scope="module")
def loaded(tiny):
    return AutoModelForCausalLM.from_pretrained(tiny).to(DEVICE).eval(), AutoTokenizer.from_pretrained(tiny)


def test_batched_numbers_equal_each_example_alone(tiny, loaded):
    model, tok = loaded
    items = [(p, MULTI, " ") for p in PROMPTS]
    batched = lab.label_loglik_batch(model, tok, items, chat=False, tokens=1 << 20)
    for prompt, got in zip(PROMPTS, batched):
        expected = direct_label_probs(tiny, prompt, {x: " " + x for x in MULTI})  # one unpadded forward per label
        assert list(got) == list(MULTI)  # the labels' own order
        assert lab.normalise(got) == pytest.approx(expected, abs=LABEL_TOL)
        assert got == pytest.approx(lab.label_loglik(model, tok, prompt, MULTI, False), abs=1e-4)


def test_one_forward_per_batch_and_the_prompt_once_where_labels_share_it(loaded):
    model, tok = loaded
    labels = one_token_labels(tok)
    items = [(p, labels, " ") for p in PROMPTS]
    counter = ForwardCounter(model)
    try:
        lab.label_loglik_batch(model, tok, items, chat=False, tokens=1 << 20)
        # one-token labels are all read off the prompt's own row: one row per example, one forward
        assert counter.rows == [len(PROMPTS)]
        counter.rows.clear()
        lab.label_loglik_batch(model, tok, [(p, MULTI, " ") for p in PROMPTS], chat=False, tokens=1 << 20)
        assert len(counter.rows) == 1 and counter.rows[0] <= len(PROMPTS) * len(MULTI)
        counter.rows.clear()
        # a budget below two rows' tokens: one forward per row, each row the prompt alone
        shortest = min(len(tok(p)["input_ids"]) for p in PROMPTS)
        lab.label_loglik_batch(model, tok, items, chat=False, tokens=2 * shortest - 1)
        assert counter.rows == [1] * len(PROMPTS)
    finally:
        counter.handle.remove()


def test_rows_fit_the_token_budget_longest_first(loaded):
    model, tok = loaded
    items = [(p, MULTI, " ") for p in PROMPTS]
    counter = ForwardCounter(model)
    widths = []
    hook = model.register_forward_pre_hook(lambda m, a, kw: widths.append(kw["input_ids"].shape), with_kwargs=True)
    try:
        budget = 40
        lab.label_loglik_batch(model, tok, items, chat=False, tokens=budget)
    finally:
        counter.handle.remove()
        hook.remove()
    # every (prompt, label) input, as the harness forms it: context + label[:-1]
    inputs = set()
    for p in PROMPTS:
        for x in MULTI:
            whole = tok(p + " " + x)["input_ids"]
            inputs.add(tuple(whole[:-1]))
    lengths = sorted((len(i) for i in inputs), reverse=True)
    expected, start = [], 0  # greedy packing, longest first, rows × longest ≤ budget
    while start < len(lengths):
        n = max(1, budget // lengths[start])
        expected.append((min(n, len(lengths) - start), lengths[start]))
        start += n
    assert [tuple(s) for s in widths] == expected
    assert all(r * w <= budget or r == 1 for r, w in widths)


def test_a_model_without_logits_to_keep_gives_the_same_numbers(loaded):
    model, tok = loaded

    class Plain(torch.nn.Module):
        """A causal LM whose forward takes only ids and mask (as older remote-code models)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        @property
        def device(self):
            return self.inner.device

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    items = [(p, MULTI, " ") for p in PROMPTS]
    plain = lab.label_loglik_batch(Plain(model), tok, items, chat=False)
    assert lab._KEEPS_POSITIONS[Plain] is False
    sliced = lab.label_loglik_batch(model, tok, items, chat=False)
    for a, b in zip(plain, sliced):
        assert a == pytest.approx(b, abs=1e-5)


def test_backend_scores_a_batch_of_examples_in_one_forward(tiny):
    backend = HFBackend(HFModel(backend="hf", model=str(tiny), device=DEVICE, batch_size=16))
    backend.load()
    counter = ForwardCounter(backend.model)
    reqs = [Request(id=str(i), prompt=p, labels=MULTI, generate=False) for i, p in enumerate(PROMPTS)]
    try:
        got = {c.id: c.label_probs for c in backend.generate(reqs)}
    finally:
        counter.handle.remove()
    assert len(counter.rows) == 1  # 6 examples × 4 labels within one budget: one forward, not one per example
    for i, prompt in enumerate(PROMPTS):
        expected = direct_label_probs(tiny, prompt, {x: " " + x for x in MULTI})
        assert got[str(i)] == pytest.approx(expected, abs=LABEL_TOL)
        assert math.isclose(sum(got[str(i)].values()), 1.0, abs_tol=1e-9)
