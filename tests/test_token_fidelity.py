"""token_fidelity against the models' own forward passes: exact KL and top-1 agreement, any batch and padding."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from genval.config import HFModel, ReplayModel, VLLMModel  # noqa: E402
from genval.errors import GenvalError  # noqa: E402
from genval.metrics import MetricContext, get_metric  # noqa: E402
from genval.models import forced  # noqa: E402
from genval.models.base import Request  # noqa: E402
from genval.models.hf import HFBackend  # noqa: E402
from tests.tiny_models import build_tiny_model  # noqa: E402

PROMPTS = ["the cat sat", "rain falls in spring and the sun", "dogs", "summarise the ticket in one sentence",
           "billing shipping", "the student model"]
TEXTS = [" on the mat", " is hot in summer and the cat sleeps", " bark at night", " the order never arrived",
         " account technical fraud legal", ""]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A teacher and a student: two tiny models with one tokenizer and different weights."""
    root = tmp_path_factory.mktemp("pair")
    return build_tiny_model(root / "teacher", seed=0), build_tiny_model(root / "student", seed=1)


@pytest.fixture(autouse=True)
def _fresh_engines():
    forced.release()
    yield
    forced.release()


def hf(path, **kw) -> HFModel:
    return HFModel(backend="hf", model=str(path), device="cpu", **kw)


def direct(teacher_path, student_path, prompt: str, text: str, chat: bool = False) -> tuple[float, float, int]:
    """Mean KL(teacher || student) and top-1 agreement over `text`'s tokens, from one unpadded forward of each
    model over prompt + text (float64 log-softmax), written out position by position."""
    tok = AutoTokenizer.from_pretrained(teacher_path)
    if chat:
        prompt = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    ids = tok(prompt, add_special_tokens=not chat)["input_ids"]
    cont = tok(text, add_special_tokens=False)["input_ids"]
    whole = torch.tensor([ids + cont])
    logps = []
    for path in (teacher_path, student_path):
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        with torch.inference_mode():
            logps.append(torch.log_softmax(model(whole).logits[0].double(), dim=-1).numpy())
    kls, agree = [], []
    for j in range(len(cont)):
        p = len(ids) + j - 1
        lt, ls = logps[0][p], logps[1][p]
        kls.append(float(np.sum(np.exp(lt) * (lt - ls))))
        agree.append(int(np.argmax(lt) == np.argmax(ls)))
    return (float(np.mean(kls)), float(np.mean(agree)), len(cont)) if cont else (None, None, 0)


def engines(teacher_path, student_path, **kw):
    return forced.HFForced(HFBackend(hf(teacher_path, **kw))), forced.HFForced(HFBackend(hf(student_path, **kw)))


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("padding", ["left", "right"])
def test_exact_equals_the_models_own_forward_passes(pair, batch_size, padding):
    teacher, student = engines(*pair)
    requests = [Request(id=str(i), prompt=p) for i, p in enumerate(PROMPTS)]
    pairs = [(teacher.sequence(q, t), student.sequence(q, t)) for q, t in zip(requests, TEXTS)]
    found = forced.exact_fidelity(teacher, student, pairs, batch_size=batch_size, padding=padding)
    for (kl_sum, agree, n), prompt, text in zip(found, PROMPTS, TEXTS):
        kl, share, count = direct(*pair, prompt, text)
        assert n == count
        if count:
            assert kl_sum / n == pytest.approx(kl, abs=1e-5)
            assert agree / n == share
            assert kl > 0.01  # two different models: a KL of 0 would pass any comparison


def test_chunks_of_one_position_give_the_same_numbers_and_never_hold_more(pair, monkeypatch):
    teacher, student = engines(*pair)
    requests = [Request(id=str(i), prompt=p) for i, p in enumerate(PROMPTS * 4)]
    pairs = [(teacher.sequence(q, t), student.sequence(q, t)) for q, t in zip(requests, [t * 2 for t in TEXTS] * 4)]
    whole = forced.exact_fidelity(teacher, student, pairs, batch_size=24)
    seen = []
    original = forced.HFForced.log_probs

    def spy(self, states):
        seen.append(tuple(states.shape))
        return original(self, states)

    monkeypatch.setattr(forced.HFForced, "log_probs", spy)
    # 1 MiB holds 1 MiB / (32 B × 300 tokens) = 109 positions; the batch of 24 sequences has more than that.
    assert forced.chunk_positions(300, 1) == 109
    tokens = sum(n for _, _, n in whole)
    chunked = forced.exact_fidelity(teacher, student, pairs, batch_size=24, chunk_mib=1)
    assert max(shape[0] for shape in seen) <= 109 < tokens
    assert [(pytest.approx(a, abs=1e-9), b, c) for a, b, c in whole] == chunked


def test_the_metric_gives_mean_kl_and_agreement_per_example(pair):
    teacher, student = pair
    metric = get_metric("token_fidelity")
    n = len(PROMPTS)
    ctx = MetricContext(task="generation", options={"batch_size": 3}, segments=[("student~teacher", 0, n)],
                        ids=[str(i) for i in range(n)], inputs={"prompt": PROMPTS, "system": [None] * n},
                        models={"teacher": hf(teacher), "student": hf(student)})
    result = metric.func(["ignored"] * n, TEXTS, ctx)
    for i in range(n):
        kl, share, count = direct(teacher, student, PROMPTS[i], TEXTS[i])
        if count:
            assert result.values["token_kl"][i] == pytest.approx(kl, abs=1e-5)
            assert result.values["token_agreement"][i] == share
            assert result.details["token_kl"][i] == f"{count} tokens"
        else:
            assert result.values["token_kl"][i] is None and "no tokens" in result.details["token_kl"][i]
    assert "full vocabulary" in result.settings["token_kl"] and "teacher-forced" in result.settings["token_kl"]
    assert set(result.summary["engine"]) == {"token_fidelity:teacher", "token_fidelity:student"}


def test_a_chat_template_is_applied_as_the_model_was_asked(tmp_path):
    teacher = build_tiny_model(tmp_path / "t", chat=True, seed=0)
    student = build_tiny_model(tmp_path / "s", chat=True, seed=2)
    t, s = engines(teacher, student)
    q = Request(id="a", prompt="the cat sat")
    pairs = [(t.sequence(q, " on the mat"), s.sequence(q, " on the mat"))]
    (kl_sum, agree, n), = forced.exact_fidelity(t, s, pairs)
    kl, share, count = direct(teacher, student, "the cat sat", " on the mat", chat=True)
    assert (kl_sum / n, agree / n, n) == (pytest.approx(kl, abs=1e-5), share, count)


def test_same_model_has_zero_kl_and_full_agreement(pair):
    teacher, _ = pair
    t, s = engines(teacher, teacher)
    q = Request(id="a", prompt="the cat sat")
    (kl_sum, agree, n), = forced.exact_fidelity(t, s, [(t.sequence(q, " on the mat"), s.sequence(q, " on the mat"))])
    assert abs(kl_sum) < 1e-9 and agree == n > 0



def direct_topk(teacher_path, student_path, prompt: str, text: str, k: int) -> tuple[float, float]:
    """The top-k approximation from the full distributions: KL over the teacher's k likeliest tokens plus one
    bucket for the rest, a teacher token outside the student's k likeliest at the student's k-th probability."""
    tok = AutoTokenizer.from_pretrained(teacher_path)
    ids = tok(prompt)["input_ids"]
    cont = tok(text, add_special_tokens=False)["input_ids"]
    probs = []
    for path in (teacher_path, student_path):
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        with torch.inference_mode():
            probs.append(torch.softmax(model(torch.tensor([ids + cont])).logits[0].double(), dim=-1).numpy())
    kls, agree = [], []
    for j in range(len(cont)):
        p, q = probs[0][len(ids) + j - 1], probs[1][len(ids) + j - 1]
        top_p, top_q = np.argsort(-p)[:k], np.argsort(-q)[:k]
        q_on = np.array([q[t] if t in top_q else q[top_q[-1]] for t in top_p])
        p_on = p[top_p]
        q_rest, p_rest = max(0.0, 1 - q_on.sum()), max(0.0, 1 - p_on.sum())
        z = q_on.sum() + q_rest
        kl = float(np.sum(p_on * np.log(p_on / (q_on / z)))) + (p_rest * math.log(p_rest / (q_rest / z)) if p_rest else 0)
        kls.append(kl)
        agree.append(int(top_p[0] == top_q[0]))
    return float(np.mean(kls)), float(np.mean(agree))


def test_vllm_gives_the_top_k_approximation_and_says_so(fake_vllm, pair):
    teacher, student = pair
    n = 3
    models = {"teacher": VLLMModel(backend="vllm", model=str(teacher)),
              "student": VLLMModel(backend="vllm", model=str(student))}
    ctx = MetricContext(task="generation", options={"top_k": 5}, segments=[("student~teacher", 0, n)],
                        ids=["a", "b", "c"], inputs={"prompt": PROMPTS[:n], "system": [None] * n}, models=models)
    result = get_metric("token_fidelity").func([""] * n, TEXTS[:n], ctx)
    calls = fake_vllm.LLM.calls
    assert calls and all(c["params"][0].prompt_logprobs == 5 for c in calls)
    for i in range(n):
        kl, share = direct_topk(teacher, student, PROMPTS[i], TEXTS[i], 5)
        assert result.values["token_kl"][i] == pytest.approx(kl, abs=1e-5)
        assert result.values["token_agreement"][i] == share
        exact, _, _ = direct(teacher, student, PROMPTS[i], TEXTS[i])
        assert result.values["token_kl"][i] <= exact + 1e-9  # a coarse-graining never exceeds the exact KL here
    assert "top-5 approximation" in result.settings["token_kl"]


def test_hf_teacher_and_vllm_student_meet_at_top_k(fake_vllm, pair):
    teacher, student = pair
    models = {"teacher": hf(teacher), "student": VLLMModel(backend="vllm", model=str(student))}
    ctx = MetricContext(task="generation", options={"top_k": 4}, segments=[("student~teacher", 0, 1)], ids=["a"],
                        inputs={"prompt": PROMPTS[:1], "system": [None]}, models=models)
    result = get_metric("token_fidelity").func([""], TEXTS[:1], ctx)
    kl, share = direct_topk(teacher, student, PROMPTS[0], TEXTS[0], 4)
    assert result.values["token_kl"][0] == pytest.approx(kl, abs=1e-5)
    assert "top-4 approximation" in result.settings["token_agreement"]


def test_engines_without_teacher_forcing_are_refused_in_one_line(tmp_path, pair):
    for model in (ReplayModel(backend="replay", path=tmp_path / "x.jsonl"),):
        with pytest.raises(GenvalError, match="replay file, which holds no model"):
            forced.engine(model, "student")
    from genval.config import OpenAIModel

    with pytest.raises(GenvalError, match="cannot score a continuation it is given") as err:
        forced.engine(OpenAIModel(backend="openai", model="m"), "student")
    assert "\n" not in str(err.value)


def test_two_tokenizers_are_refused(tmp_path, pair):
    teacher, _ = pair
    other = build_tiny_model(tmp_path / "other", vocab_size=280)
    t, s = engines(teacher, other)
    with pytest.raises(GenvalError, match="different tokenizers"):
        forced.same_tokens(t, s, "student")
