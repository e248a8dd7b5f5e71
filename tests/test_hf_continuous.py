"""The hf backend's opt-in continuous engine (transformers' generate_batch): the batched engine's greedy texts."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from genval.config import HFModel  # noqa: E402
from genval.models import Params, Request  # noqa: E402
from genval.models.hf import HFBackend  # noqa: E402
from tests.devices import DEVICE  # noqa: E402

PROMPTS = ["the cat sat", "rain falls in spring and the sun", "dogs", "answer with one json object with the keys",
           "summarise the ticket", "billing shipping account technical fraud legal positive", "the cat sat"]


def backend(path, **kw) -> HFBackend:
    return HFBackend(HFModel(backend="hf", model=str(path), device=DEVICE, **kw))


@pytest.mark.parametrize("params", [Params(max_tokens=12), Params(max_tokens=20, stop=("at",))])
def test_continuous_greedy_texts_equal_the_batched_engine(tiny, params):
    reqs = [Request(id=str(i), prompt=p, params=params) for i, p in enumerate(PROMPTS)]
    batched = {c.id: c for c in backend(tiny, batch_size=4).generate(reqs)}
    continuous = {c.id: c for c in backend(tiny, engine="continuous").generate(reqs)}
    assert set(continuous) == set(batched)
    for key, c in continuous.items():
        assert c.error is None
        assert (c.text, c.completion_tokens, c.prompt_tokens) == \
            (batched[key].text, batched[key].completion_tokens, batched[key].prompt_tokens)
        assert c.latency_s is not None and c.latency_s > 0  # each request's own time, queued → finished
    if params.stop:  # the stop string did cut some text (else this case tests nothing more)
        whole = [Request(id=str(i), prompt=p, params=Params(max_tokens=20)) for i, p in enumerate(PROMPTS)]
        uncut = {c.id: c.text for c in backend(tiny, batch_size=4).generate(whole)}
        assert any(uncut[k] != c.text for k, c in continuous.items())


def test_continuous_with_labels_gives_the_same_label_probabilities(tiny):
    labels = ("billing", "shipping", "fraud")
    reqs = [Request(id=str(i), prompt=p, params=Params(max_tokens=4), labels=labels) for i, p in enumerate(PROMPTS)]
    batched = {c.id: c for c in backend(tiny).generate(reqs)}
    continuous = {c.id: c for c in backend(tiny, engine="continuous").generate(reqs)}
    for key, c in continuous.items():
        assert c.text == batched[key].text
        assert c.label_probs == pytest.approx(batched[key].label_probs, abs=1e-9 if DEVICE == "cpu" else 1e-6)


def test_top_logprobs_take_the_batched_engine(tiny):
    req = Request(id="a", prompt="the cat sat", params=Params(max_tokens=3, logprobs=2))
    c = next(backend(tiny, engine="continuous").generate([req]))
    assert len(c.top_logprobs) == c.completion_tokens == 3  # generate_batch has none: the batched engine gave them


def test_engine_is_in_the_cache_key_only_when_continuous(tiny):
    batched, continuous = backend(tiny), backend(tiny, engine="continuous")
    assert "engine" not in batched.fingerprint()  # answers cached before the option keep their keys
    assert '"engine": "continuous"' in continuous.fingerprint()
    assert batched.fingerprint() != continuous.fingerprint()


def test_a_generation_config_continuous_batching_would_drop_is_refused(tiny, tmp_path):
    import shutil

    from transformers import GenerationConfig

    from genval.errors import GenvalError

    folder = shutil.copytree(tiny, tmp_path / "penalised")
    config = GenerationConfig.from_pretrained(folder)
    config.repetition_penalty = 1.3  # transformers' continuous batching drops this processor
    config.save_pretrained(folder)
    req = Request(id="a", prompt="the cat sat", params=Params(max_tokens=4))
    with pytest.raises(GenvalError, match="RepetitionPenalty.*engine: batched"):
        list(backend(folder, engine="continuous").generate([req]))
    assert next(backend(folder).generate([req])).text  # the batched engine applies it
