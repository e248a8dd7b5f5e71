"""Label probabilities for classification: each label's probability as the model's answer.

Two ways, by what the engine exposes:

- `label_loglik_batch` (transformers; vLLM uses `continuation_ids` and `normalise` with its
  prompt_logprobs): the log-likelihood of each label's tokens after the prompt, normalised
  over the label set with a softmax — how lm-evaluation-harness scores multiple choice (its
  `acc`: summed, not length-normalised, log-likelihoods; `_encode_pair` for the
  context/continuation split). The label is scored as the model would write it: after the
  `label_delimiter` (a space by default), as the harness puts its `target_delimiter` between
  context and choice — none after a prompt that already ends in whitespace, and none inside a
  chat turn, where the harness sets the delimiter to "" because the assistant's answer starts
  fresh (lm_eval/api/task.py, `ConfigurableTask.construct_requests`). Many examples are scored
  together as the harness batches loglikelihood requests (lm_eval/models/huggingface.py,
  `_loglikelihood_tokens`): (prompt, label) rows sorted longest first, right-padded into
  forwards of bounded size, one-token labels read off their prompt's one row; unlike the
  harness, logits are made and log-softmaxed only at the positions a label is read.
- `from_top_logprobs` (OpenAI-compatible servers, which cannot score a given continuation):
  the first generated token's top log-probabilities, each token credited to the label it begins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator


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


@dataclass
class _Row:
    """One forward row: the tokens fed in, and the labels it scores as (item, label, first position, label ids)."""

    ids: tuple[int, ...]
    reads: list[tuple[int, str, int, list[int]]]


def _rows(tokenizer, items: list[tuple[str, tuple[str, ...], str]], chat: bool) -> list[_Row]:
    """Gives the rows that score every (context, label) of `items`, each input fed once.

    A label needs the model's input `context + label[:-1]` and reads its tokens' log-probabilities
    at the positions from the context's last token on. Causal attention makes a position's
    logits depend only on the tokens before it, so a label whose input is a prefix of another
    row's input is read off that row: labels of one token share one row of the context alone,
    as lm-evaluation-harness groups one-token continuations (its `Collator(group_by="contexts")`,
    key `context + continuation[:-1]`); an input seen twice (a repeated prompt) runs once.
    """
    rows: dict[tuple[int, ...], _Row] = {}
    for item, (context, labels, delimiter) in enumerate(items):
        wanted = []
        for label in labels:
            ctx, cont = continuation_ids(tokenizer, context, label, chat, delimiter)
            wanted.append((tuple(ctx + cont[:-1]), (item, label, len(ctx) - 1, cont)))
        kept: list[tuple[int, ...]] = []
        for ids, read in sorted(wanted, key=lambda w: -len(w[0])):
            host = next((k for k in kept if k[:len(ids)] == ids), None)
            if host is None:
                host = ids
                kept.append(ids)
            rows.setdefault(host, _Row(host, [])).reads.append(read)
    return list(rows.values())


def _batches(rows: list[_Row], tokens: int) -> Iterator[list[_Row]]:
    """Yields rows longest first, in batches whose padded size (rows × longest) stays within `tokens`.

    Longest first, as lm-evaluation-harness sorts (`_loglikelihood_tokens`' `_collate`): each
    batch's first row sets its width, and an out-of-memory batch shows up at once.
    """
    rows = sorted(rows, key=lambda r: -len(r.ids))
    start = 0
    while start < len(rows):
        width = len(rows[start].ids)
        n = max(1, tokens // max(width, 1))
        yield rows[start:start + n]
        start += n


def label_loglik_batch(model, tokenizer, items: list[tuple[str, tuple[str, ...], str]], chat: bool,
                       tokens: int = 4096) -> list[dict[str, float]]:
    """Gives, per item (context, labels, delimiter), the summed log-probability of each label's tokens.

    All items' rows go through the model together: length-sorted, right-padded batches of at
    most `tokens` padded tokens, one forward each; logits are made (where the model takes
    `logits_to_keep`) and log-softmaxed only at the positions a label is read from.
    """
    found: dict[tuple[int, str], float] = {}
    for batch in _batches(_rows(tokenizer, items, chat), tokens):
        found.update(_score_batch(model, tokenizer, batch))
    return [{label: found[(item, label)] for label in labels} for item, (_, labels, _) in enumerate(items)]


def _score_batch(model, tokenizer, batch: list[_Row]) -> dict[tuple[int, str], float]:
    """Gives (item, label) → summed log-probability for the reads of one batch of rows, from one forward."""
    import torch

    width = len(batch[0].ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # Right padding: positions of the real tokens stay 0..n-1 and causal attention keeps the
    # pads at the end from touching them, so each row scores as it would alone.
    ids = torch.tensor([list(r.ids) + [pad] * (width - len(r.ids)) for r in batch], device=model.device)
    mask = torch.tensor([[1] * len(r.ids) + [0] * (width - len(r.ids)) for r in batch], device=model.device)
    rows, positions, targets, slots, keys = [], [], [], [], []
    for r, row in enumerate(batch):
        for item, label, first, cont in row.reads:
            rows += [r] * len(cont)
            positions += range(first, first + len(cont))
            targets += cont
            slots += [len(keys)] * len(cont)
            keys.append((item, label))
    keep = torch.zeros_like(mask, dtype=torch.bool)
    keep[rows, positions] = True
    logits = _logits_at(model, ids, mask, keep)  # (positions kept, vocabulary), row-major order of `keep`
    flat = torch.cumsum(keep.flatten(), 0).view_as(keep) - 1  # where each kept position landed
    picked = torch.log_softmax(logits[flat[rows, positions]].float(), dim=-1)
    values = picked[torch.arange(len(targets), device=picked.device), torch.tensor(targets, device=picked.device)]
    sums = torch.zeros(len(keys), dtype=values.dtype, device=values.device)
    sums.index_add_(0, torch.tensor(slots, device=values.device), values)
    return dict(zip(keys, sums.tolist()))


_KEEPS_POSITIONS: dict[type, bool] = {}  # model class → whether its forward takes a boolean `logits_to_keep`


def _logits_at(model, ids, mask, keep):
    """Gives the logits at the `keep` positions, flattened: (number kept, vocabulary).

    transformers' causal LMs take `logits_to_keep` as a boolean (batch, length) mask and project
    only those positions onto the vocabulary (modeling_utils.slice_logits_to_keep); a model
    class that does not gets its full logits, sliced here.
    """
    import torch

    kind = type(model)
    with torch.inference_mode():
        if _KEEPS_POSITIONS.get(kind, True):
            try:
                logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
                if logits.dim() == 2 and logits.shape[0] == int(keep.sum()):
                    _KEEPS_POSITIONS[kind] = True
                    return logits
            except (TypeError, IndexError, RuntimeError, ValueError) as exc:
                if "out of memory" in str(exc).lower():
                    raise  # the batch is too big, whatever the slicing; the backend halves it
            _KEEPS_POSITIONS[kind] = False  # asked once per class; full logits from now on
        return model(input_ids=ids, attention_mask=mask).logits[keep]


def label_loglik(model, tokenizer, context: str, labels: tuple[str, ...], chat: bool,
                 delimiter: str = " ") -> dict[str, float]:
    """Gives the summed log-probability of each label's tokens after `context` (one example's batch)."""
    return label_loglik_batch(model, tokenizer, [(context, labels, delimiter)], chat, tokens=1 << 30)[0]


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
