"""Token fidelity: does the student's next-token distribution follow the teacher's, token by token, on the
teacher's own output.

Both models are teacher-forced on the teacher's output (genval.models.forced): at each of its
tokens, the teacher's distribution p and the student's q over the next token. Per example:

- `token_kl`: the mean over the output's tokens of KL(p ‖ q) = Σ_v p_v log(p_v / q_v), in nats
  (the quantity distillation minimises, Hinton et al. 2015, at temperature 1);
- `token_agreement`: the share of the output's tokens where the student's top-1 token is the teacher's.

Both are fidelity numbers (`<role>~teacher` pairs only). With transformers on both sides they are
exact over the whole vocabulary. Where an engine gives only its top-k log-probabilities (vLLM's
`prompt_logprobs`), both sides are cut to top k and KL is taken over the teacher's k tokens plus
one bucket for the rest of the vocabulary — a coarse-graining of the exact KL — with a teacher's
token outside the student's top k at the student's k-th probability (at most what it has); the
signature says so. An OpenAI chat server or a replay file cannot be teacher-forced: refused before
the run writes anything, as are two tokenizers that differ.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import Field

from genval.errors import GenvalError
from genval.metrics.probabilities import EPSILON
from genval.metrics.registry import MetricContext, MetricResult, Options, register
from genval.models.base import Request
from genval.numbers import DIVERGENCE, SHARE

EXACT = "full vocabulary"
EMPTY = "the teacher's output has no tokens: nothing to compare"


class TokenFidelityOptions(Options):
    """How many sequences go through a model at once, the memory a chunk of distributions may take, and k."""

    batch_size: int = Field(8, ge=1)
    chunk_mib: int = Field(256, ge=1)  # at most this many MiB of log-probabilities held at once
    top_k: int = Field(20, ge=1, le=20)  # engines that give only top-k log-probabilities (vLLM caps it at 20)


def approximation(k: int) -> str:
    return (f"top-{k} approximation: the teacher's top-{k} tokens and one bucket for the rest; a token outside "
            f"the student's top-{k} at its k-th probability")


def signatures(how: str) -> dict[str, str]:
    """Gives each column's signature, `how` saying whether the distributions were whole or top-k."""
    forced = "teacher-forced on the teacher's output"
    return {"token_kl": f"token_kl|KL(teacher||student) per output token, mean per example|nats|{forced}|{how}",
            "token_agreement": f"token_agreement|share of output tokens with the teacher's top-1 token|{forced}|{how}"}


def topk_kl(teacher: dict[int, float], student: dict[int, float]) -> float:
    """Gives KL over the teacher's top-k tokens plus one bucket for the rest, from two top-k maps (id → logprob)."""
    p = {t: math.exp(v) for t, v in teacher.items()}
    floor = min(math.exp(v) for v in student.values())
    q = {t: math.exp(student[t]) if t in student else floor for t in p}
    p_rest = max(0.0, 1.0 - sum(p.values()))
    q_rest = max(0.0, 1.0 - sum(q.values()))
    total = sum(q.values()) + q_rest  # above 1 only where imputed floors overfill the mass: renormalised
    kl = sum(pt * math.log(pt / (q[t] / total)) for t, pt in p.items() if pt > 0)
    if p_rest > 0:
        kl += p_rest * math.log(p_rest / max(q_rest / total, EPSILON))
    return kl


def top1(found: dict[int, float]) -> int:
    return max(found.items(), key=lambda item: (item[1], -item[0]))[0]


def _topk_rows(teacher: list[list[dict]], student: list[list[dict]]) -> list[tuple[float, int, int]]:
    rows = []
    for t_seq, s_seq in zip(teacher, student):
        pairs = [(t, s) for t, s in zip(t_seq, s_seq) if t and s]
        rows.append((sum(topk_kl(t, s) for t, s in pairs), sum(top1(t) == top1(s) for t, s in pairs), len(pairs)))
    return rows


def _requests(ctx: MetricContext, start: int, end: int) -> list[Request]:
    prompts, systems = ctx.inputs["prompt"], ctx.inputs.get("system") or [None] * len(ctx.ids)
    return [Request(id=ctx.ids[r], prompt=prompts[r], system=systems[r] if isinstance(systems[r], str) else None)
            for r in range(start, end)]


def _sequences(teacher, student, requests: list[Request], texts: list[str], role: str):
    from genval.models import forced

    forced.same_tokens(teacher, student, role)
    t_seqs = [teacher.sequence(q, t) for q, t in zip(requests, texts)]
    s_seqs = [student.sequence(q, t) for q, t in zip(requests, texts)]
    for q, a, b in zip(requests, t_seqs, s_seqs):
        if a.continuation != b.continuation:
            raise GenvalError(f"token_fidelity: example '{q.id}': the teacher's output tokenises differently for "
                              f"'{role}' and the teacher; token fidelity needs one tokenizer")
    return t_seqs, s_seqs


def check_models(config, options, place: str) -> None:
    """Refuses, before a run writes, a role whose engine cannot be teacher-forced, and two local tokenizers that differ."""
    from genval.models.forced import refusal

    for role in config.roles:
        model = config.models[role]
        if model.backend in ("replay", "openai"):
            raise GenvalError(f"{place}: {refusal(model.backend, role)}")
    teacher = _local_vocabulary(config.models["teacher"])
    for role in config.roles[1:]:
        other = _local_vocabulary(config.models[role])
        if teacher is not None and other is not None and teacher != other:
            raise GenvalError(f"{place}: token_fidelity: role '{role}' and the teacher have different tokenizers "
                              f"({_named(config.models[role])} and {_named(config.models['teacher'])}); token "
                              "fidelity needs one tokenizer (drop the metric, or distil with the teacher's tokenizer)")


def _named(model) -> str:
    """Gives a model's name as its user knows it: a held model's `memory:<id>` is no name they gave."""
    from genval.models import memory

    return "the model in training" if memory.held(model) is not None else str(model.model)


def _local_vocabulary(model) -> dict | None:
    """Gives the vocabulary of a held model's tokenizer or a local model folder's; None when neither is at hand."""
    from genval.models import memory

    found = memory.held(model)
    if found is not None:
        return found[1].get_vocab()
    if not Path(model.model).is_dir():
        return None  # a hub id: compared when the models load
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model.model, revision=model.revision).get_vocab()
    except (OSError, ValueError):
        return None  # the model's own check says what is wrong with the folder


@register("token_fidelity", kind="fidelity", options=TokenFidelityOptions,
          numbers={"token_kl": DIVERGENCE, "token_agreement": SHARE}, model=True, inputs=("prompt", "system"),
          role_models=True, check=check_models)
def token_fidelity(candidates: list[str], others: list[str], ctx: MetricContext) -> MetricResult:
    """Gives `token_kl` and `token_agreement` per example, each candidate teacher-forced on the teacher's output."""
    from genval.models import forced

    opts = ctx.options
    n = len(others)
    values: dict[str, list] = {"token_kl": [None] * n, "token_agreement": [None] * n}
    detail: list[str | None] = [None] * n
    rows_signature: dict[str, list[str]] = {"token_kl": [""] * n, "token_agreement": [""] * n}
    teacher = forced.engine(ctx.models["teacher"], "teacher") if ctx.segments else None
    engines = {}
    for pair, start, end in ctx.segments:
        role = pair.partition("~")[0]
        student = forced.engine(ctx.models[role], role)
        t_seqs, s_seqs = _sequences(teacher, student, _requests(ctx, start, end), others[start:end], role)
        if teacher.exact and student.exact:
            found = forced.exact_fidelity(teacher, student, list(zip(t_seqs, s_seqs)), opts.batch_size, opts.chunk_mib)
            how = EXACT
        else:
            found = _topk_rows(teacher.top_k(t_seqs, opts.top_k, opts.batch_size, opts.chunk_mib),
                               student.top_k(s_seqs, opts.top_k, opts.batch_size, opts.chunk_mib))
            how = approximation(opts.top_k)
        for r, (kl, agree, count) in zip(range(start, end), found):
            values["token_kl"][r] = kl / count if count else None
            values["token_agreement"][r] = agree / count if count else None
            detail[r] = f"{count} tokens" if count else EMPTY
            for column, signature in signatures(how).items():
                rows_signature[column][r] = signature
        engines[f"token_fidelity:{role}"] = student.fingerprint()
    if teacher is not None:
        engines["token_fidelity:teacher"] = teacher.fingerprint()
    settings = {c: rows[0] if rows and rows[0] else signatures(EXACT)[c] for c, rows in rows_signature.items()}
    several = any(len(set(rows)) > 1 for rows in rows_signature.values())
    return MetricResult(values=values, settings=settings, details={c: list(detail) for c in values},
                        row_settings=rows_signature if several else {}, summary={"engine": engines})
