"""Label probabilities for classification: each label's probability as the model's answer.

Two ways, by what the engine exposes:

- `label_scores` (transformers; vLLM uses `continuation_ids` and `normalise` with its
  prompt_logprobs): the log-likelihood of each label's tokens after the prompt, normalised
  over the label set with a softmax — how lm-evaluation-harness scores multiple choice (its
  `acc`: summed, not length-normalised, log-likelihoods; `_encode_pair` for the
  context/continuation split). The label is scored as the model would write it: after the
  `label_delimiter` (a space by default), as the harness puts its `target_delimiter` between
  context and choice — none after a prompt that already ends in whitespace, and none inside a
  chat turn, where the harness sets the delimiter to "" because the assistant's answer starts
  fresh (lm_eval/api/task.py, `ConfigurableTask.construct_requests`).
- `from_top_logprobs` (OpenAI-compatible servers, which cannot score a given continuation):
  the first generated token's top log-probabilities, each token credited to the label it begins.
"""

from __future__ import annotations

import math


def normalise(loglik: dict[str, float]) -> dict[str, float]:
    """Gives the softmax of per-label log-likelihoods: probabilities over the label set that sum to 1."""
    top = max(loglik.values())
    weights = {label: math.exp(v - top) for label, v in loglik.items()}
    total = sum(weights.values())
    return {label: w / total for label, w in weights.items()}


def answer_text(context: str, label: str, delimiter: str, chat: bool) -> str:
    """Gives the continuation a label is scored as: `delimiter + label`, or the bare label in a chat
    turn or after a context that already ends in whitespace."""
    if chat or context[-1:].isspace():
        return label
    return delimiter + label


def _split(context: str, continuation: str) -> tuple[str, str]:
    # lm-evaluation-harness moves the context's trailing whitespace onto the continuation
    # (lm_eval/api/model.py, `_encode_pair`), so "Answer: " + "yes" is scored as
    # "Answer:" + " yes", the way a tokenizer merges them.
    n = len(context) - len(context.rstrip())
    return (context[:-n], context[-n:] + continuation) if n else (context, continuation)


def continuation_ids(tokenizer, context: str, label: str, chat: bool,
                     delimiter: str = " ") -> tuple[list[int], list[int]]:
    """Gives (context ids, label ids): the label's tokens as they follow this context, delimiter included.

    A chat template writes its own special tokens; a raw prompt gets the tokenizer's (e.g. BOS).
    """
    special = not chat
    context, label = _split(context, answer_text(context, label, delimiter, chat))
    ctx = tokenizer(context, add_special_tokens=special)["input_ids"]
    whole = tokenizer(context + label, add_special_tokens=special)["input_ids"]
    if whole[:len(ctx)] == ctx and len(whole) > len(ctx):
        return ctx, whole[len(ctx):]
    return ctx, tokenizer(label, add_special_tokens=False)["input_ids"]


def label_loglik(model, tokenizer, context: str, labels: tuple[str, ...], chat: bool,
                 delimiter: str = " ") -> dict[str, float]:
    """Gives the summed log-probability of each label's tokens after `context`, from one batched forward."""
    import torch

    pairs = [continuation_ids(tokenizer, context, label, chat, delimiter) for label in labels]
    seqs = [ctx + cont for ctx, cont in pairs]
    width = max(len(s) for s in seqs)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # Right padding: positions of the real tokens stay 0..n-1 and causal attention keeps the
    # pads at the end from touching them, so each row scores as it would alone.
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=model.device)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=model.device)
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
    out = {}
    for row, (label, (ctx, cont)) in enumerate(zip(labels, pairs)):
        positions = torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1, device=model.device)
        targets = torch.tensor(cont, device=model.device)
        out[label] = float(logprobs[row, positions, targets].sum())
    return out


def label_scores(model, tokenizer, context: str, labels: tuple[str, ...], chat: bool,
                 delimiter: str = " ") -> dict[str, float]:
    """Gives each label's probability after `context` (log-likelihoods normalised over the label set)."""
    return normalise(label_loglik(model, tokenizer, context, labels, chat, delimiter))


def from_top_logprobs(top: dict[str, float] | None, labels: tuple[str, ...]) -> dict[str, float] | None:
    """Gives label probabilities from the first answer token's top log-probabilities (token → logprob).

    A token counts for a label when, stripped and lower-cased, it begins that label; a token
    that begins several labels is shared equally. A label whose first token is not among the
    top k gets the smallest listed probability — an upper bound on what it could have had,
    which keeps KL finite — before normalising. Gives None when no token matches any label.
    """
    if not top:
        return None
    mass = {label: 0.0 for label in labels}
    matched = False
    for token, logprob in top.items():
        piece = token.strip().lower()
        if not piece:
            continue
        hits = [label for label in labels if label.lower().startswith(piece)]
        for label in hits:
            mass[label] += math.exp(logprob) / len(hits)
            matched = True
    if not matched:
        return None
    floor = min(math.exp(v) for v in top.values())
    mass = {label: (m if m > 0 else floor) for label, m in mass.items()}
    total = sum(mass.values())
    return {label: m / total for label, m in mass.items()}
