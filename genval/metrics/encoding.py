"""The encoder passes behind the semantic metrics: each distinct text through the model once, batched by tokens.

BERTScore needs each text's token vectors at one layer, tokenized as bert-score tokenizes
(`bert_score.utils.sent_encode`: stripped, special tokens, cut at the tokenizer's
`model_max_length`); embedding cosine needs each text's sentence embedding, made by
sentence-transformers' own modules (its tokenization at `max_seq_length`, its pooling, its
normalisation). Where both metrics of a run use the same model, one forward serves both: the
sentence-transformers model runs once with every layer's output kept, the sentence embedding
comes out of its own modules and BERTScore takes layer `num_layers` — equal to what bert-score's
model, cut to `num_layers` layers (`bert_score.utils.get_model`), gives as its last output, in
encoders without a norm after the last layer (BERT, RoBERTa, MPNet, ...). A text whose two
tokenizations differ (longer than `max_seq_length`, or a tokenizer bert-score calls differently)
gets its BERTScore vectors from a second forward of bert-score's tokens.

Why not `BERTScorer.score` (measured on an H200, issue 22): it sorts by words, not tokens, in
batches of a fixed count; it copies every sentence's vectors to the CPU and back, one tensor at
a time; and genval ran it under fp16 autocast, which adds a cast before each matmul of a model
too small to gain from half precision. Here batches are length-bucketed by a token budget, the
vectors stay on the device in one packed tensor, and fp16 is opt-in (the model's weights halved
once, no autocast).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

# Padded tokens per encoder forward (texts × the longest), and texts per forward at most unless
# `batch_size` says. On 2 CPU cores any budget from 2k to 32k tokens ran alike (CPU seconds within
# noise); a GPU wants large forwards, bounded here so that every layer's output of a large encoder fits.
TOKENS_PER_BATCH = {"cpu": 8192, "cuda": 32768}
TEXTS_PER_BATCH = {"cpu": 64, "cuda": 512}
# Encoders whose hidden state after layer k is what the model cut to k layers outputs (no final norm).
NO_FINAL_NORM = frozenset({"bert", "roberta", "xlm-roberta", "camembert", "mpnet", "distilbert", "electra"})


@dataclass
class TokenVectors:
    """Each text's token vectors at one layer, unit length, packed in one (tokens + 1, dim) float32 tensor.

    Text `row[t]` owns rows `starts[i]:starts[i] + len(ids[i])`; the last row is zeros (what padding points at).
    """

    row: dict[str, int]
    ids: list[list[int]]
    starts: list[int]
    packed: object  # torch.Tensor


@dataclass
class Left:
    """What a joint pass left for the other metric of the batch: token vectors or sentence vectors."""

    tokens: TokenVectors | None = None
    sentences: dict = field(default_factory=dict)  # text → unit sentence vector (numpy float64)


# (model, device, fp16, layer) → what the last joint pass of this process left for the other metric.
# One entry: each batch's pass replaces the last, so memory stays that of one batch.
_LEFT: dict[tuple, Left] = {}


def take_left(key: tuple, texts: list[str], kind: str):
    """Gives what a joint pass of `key` left of `kind` ('tokens' or 'sentences') if it covers `texts`, once; else None."""
    left = _LEFT.get(key)
    if left is None:
        return None
    if kind == "tokens" and left.tokens is not None and all(t in left.tokens.row for t in texts):
        found, left.tokens = left.tokens, None
        return found
    if kind == "sentences" and left.sentences and all(t in left.sentences for t in texts):
        found, left.sentences = left.sentences, {}
        return found
    return None


def leave(key: tuple, left: Left) -> None:
    _LEFT.clear()
    _LEFT[key] = left


@lru_cache(maxsize=4)
def bert_tokenizer(model: str):
    """Gives the tokenizer `BERTScorer` builds for `model` (bert_score.utils.get_tokenizer), without loading the model."""
    from bert_score.utils import get_tokenizer

    return get_tokenizer(model, False)


def bert_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    """Gives each text's ids as bert-score's `sent_encode` makes them, in one batched tokenizer call."""
    from bert_score.utils import GPT2Tokenizer, RobertaTokenizer

    extra = {"add_prefix_space": True} if isinstance(tokenizer, (GPT2Tokenizer, RobertaTokenizer)) else {}
    return tokenizer([t.strip() for t in texts], add_special_tokens=True, max_length=tokenizer.model_max_length,
                     truncation=True, **extra)["input_ids"]


@lru_cache(maxsize=4)
def layer_model(model: str, num_layers: int, device: str, fp16: bool):
    """Gives bert-score's model for BERTScore alone: loaded and cut to `num_layers` layers by its own `get_model`."""
    from bert_score.utils import get_model

    encoder = get_model(model, num_layers).to(device).eval()
    return encoder.half() if fp16 else encoder


def batches(lengths: list[int], tokens: int, most: int) -> list[list[int]]:
    """Gives index batches, longest first, each within `tokens` padded tokens (count × longest) and `most` texts."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    out, start = [], 0
    while start < len(order):
        n = max(1, min(most, tokens // max(lengths[order[start]], 1)))
        out.append(order[start:start + n])
        start += n
    return out


def _padded(ids: list[list[int]], pad: int, device: str):
    import torch

    width = max(len(x) for x in ids)
    tensor = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        tensor[i, :len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, :len(x)] = 1
    return tensor.to(device), mask.to(device)


def _unit(vectors):
    """Gives token vectors as unit-length float32 rows (bert-score's `greedy_cos_idf` divides by the norm)."""
    vectors = vectors.float()
    return vectors / vectors.norm(dim=-1, keepdim=True)


def _pack(texts: list[str], ids: list[list[int]], parts: dict[int, object], device: str) -> TokenVectors:
    import torch

    dim = next(iter(parts.values())).shape[-1]
    starts, at = [], 0
    for x in ids:
        starts.append(at)
        at += len(x)
    packed = torch.cat([parts[i] for i in range(len(texts))] + [torch.zeros((1, dim), device=device)])
    return TokenVectors(row={t: i for i, t in enumerate(texts)}, ids=ids, starts=starts, packed=packed)


def _forward_layer(model, ids: list[list[int]], pad: int, device: str, layer: int | None, tokens: int,
                   most: int) -> dict[int, object]:
    """Gives index → unit token vectors at `layer` (None: the model's last output), from batched forwards of `ids`."""
    import torch

    out = {}
    for batch in batches([len(x) for x in ids], tokens, most):
        input_ids, mask = _padded([ids[i] for i in batch], pad, device)
        with torch.inference_mode():
            found = model(input_ids, attention_mask=mask, output_hidden_states=layer is not None)
        states = found.hidden_states[layer] if layer is not None else found[0]
        for k, i in enumerate(batch):
            out[i] = _unit(states[k, :len(ids[i])])
    return out


def token_vectors(texts: list[str], model: str, num_layers: int, device: str, fp16: bool, most: int) -> TokenVectors:
    """Gives BERTScore's token vectors of `texts` from bert-score's own model, cut to `num_layers` layers."""
    tokenizer = bert_tokenizer(model)
    ids = bert_ids(tokenizer, texts)
    encoder = layer_model(model, num_layers, device, fp16)
    parts = _forward_layer(encoder, ids, tokenizer.pad_token_id, device, None, _budget(device), most)
    return _pack(texts, ids, parts, device)


def _budget(device: str) -> int:
    return TOKENS_PER_BATCH["cuda" if device.startswith("cuda") else "cpu"]


def texts_per_batch(device: str) -> int:
    """Gives the default texts per forward on `device`."""
    return TEXTS_PER_BATCH["cuda" if device.startswith("cuda") else "cpu"]


def _hf_model(encoder):
    """Gives the transformers model inside a SentenceTransformer's first module (`model`, or `auto_model` before v5)."""
    first = encoder[0]
    return getattr(first, "model", None) or getattr(first, "auto_model", None)


def can_share(encoder) -> bool:
    """Says whether a SentenceTransformer's first module is a transformers encoder whose layer k output BERTScore may take.

    Its `Transformer` module must pass the model's last hidden state on as token embeddings (and
    so, with `output_hidden_states`, every layer's as `all_layer_embeddings`), from an encoder
    without a norm after its last layer.
    """
    first = encoder[0]
    config = (getattr(first, "modality_config", None) or {}).get("text")
    plain = config is None or (config.get("method") == "forward"
                               and config.get("method_output_name") == "last_hidden_state")
    model = _hf_model(encoder)
    return (type(first).__name__ == "Transformer" and plain
            and getattr(getattr(model, "config", None), "model_type", None) in NO_FINAL_NORM)


def joint(texts: list[str], encoder, model: str, num_layers: int, device: str, most: int):
    """Gives (BERTScore's token vectors, sentence vectors) of `texts` from one forward of each through `encoder`.

    `encoder` is the SentenceTransformer of `model`; its transformers model runs with every
    layer's output kept; the sentence vectors are its own modules' output, normalised as
    `encode(normalize_embeddings=True)` does, in float64.
    """
    import torch

    tokenizer = bert_tokenizer(model)
    ids = bert_ids(tokenizer, texts)
    hf = _hf_model(encoder)
    preprocess = getattr(encoder, "preprocess", None) or encoder.tokenize  # `tokenize` before v5
    parts, sentences, again = {}, {}, []
    saved = hf.config.output_hidden_states
    hf.config.output_hidden_states = True  # sentence-transformers then passes every layer on ('all_layer_embeddings')
    try:
        encoder.eval()
        for batch in batches([len(x) for x in ids], _budget(device), most):
            features = preprocess([texts[i] for i in batch])
            features = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in features.items()}
            with torch.inference_mode():
                out = encoder(features)
            vectors = torch.nn.functional.normalize(out["sentence_embedding"].float(), p=2, dim=1)
            layer = out["all_layer_embeddings"][num_layers]
            mask = out["attention_mask"].bool()
            for k, i in enumerate(batch):
                sentences[texts[i]] = vectors[k].double().cpu().numpy()
                if out["input_ids"][k][mask[k]].tolist() == ids[i]:
                    parts[i] = _unit(layer[k][mask[k]])
                else:  # cut at max_seq_length, or tokenized otherwise: bert-score's tokens need their own forward
                    again.append(i)
    finally:
        hf.config.output_hidden_states = saved
    if again:
        more = _forward_layer(hf, [ids[i] for i in again], tokenizer.pad_token_id, device, num_layers,
                              _budget(device), most)
        parts.update({again[k]: v for k, v in more.items()})
    return _pack(texts, ids, parts, device), sentences


def greedy_match(vectors: TokenVectors, cands: list[str], refs: list[str], weights: list[float],
                 pairs_budget: int = 1 << 22):
    """Gives BERTScore (P, R, F) lists for the pairs (cands[i], refs[i]), from packed unit token vectors.

    bert-score's `greedy_cos_idf`: each candidate token's best cosine over the reference's tokens
    (precision) and each reference token's over the candidate's (recall), weighted by the
    text's idf weights normalised to sum 1; F = 2PR / (P + R), 0 where undefined. `weights` has
    one weight per packed row (each text's tokens in order; the padding row last). Pairs are
    matched in batches of at most `pairs_budget` similarity entries, on the vectors' device,
    gathered by index from the packed tensor (no per-text copies). One difference: bert-score
    lets a padding position of its batch count as similarity 0, so a token whose best cosine is
    below 0 scores 0 there; here the max is over real tokens only (no negative best cosine was
    seen in 113,640 MiniLM tokens checked).
    """
    import torch

    packed = vectors.packed
    device = packed.device
    pad = packed.shape[0] - 1
    flat = torch.tensor(weights, dtype=torch.float32, device=device)
    starts = torch.tensor(vectors.starts, dtype=torch.long, device=device)
    lengths = torch.tensor([len(x) for x in vectors.ids], dtype=torch.long, device=device)
    c_rows = [vectors.row[c] for c in cands]
    r_rows = [vectors.row[r] for r in refs]
    sizes = [len(vectors.ids[a]) * len(vectors.ids[b]) for a, b in zip(c_rows, r_rows)]
    order = sorted(range(len(cands)), key=lambda i: -sizes[i])
    p, r, f = [0.0] * len(cands), [0.0] * len(cands), [0.0] * len(cands)
    start = 0
    while start < len(order):
        n = max(1, pairs_budget // max(sizes[order[start]], 1))
        chunk = order[start:start + n]
        start += n
        hyp, hyp_w, hyp_mask = _gather([c_rows[i] for i in chunk], starts, lengths, flat, pad)
        ref, ref_w, ref_mask = _gather([r_rows[i] for i in chunk], starts, lengths, flat, pad)
        sim = torch.bmm(packed[hyp], packed[ref].transpose(1, 2))
        best_p = sim.masked_fill(~ref_mask[:, None, :], float("-inf")).max(dim=2).values.masked_fill(~hyp_mask, 0.0)
        best_r = sim.masked_fill(~hyp_mask[:, :, None], float("-inf")).max(dim=1).values.masked_fill(~ref_mask, 0.0)
        pp = (best_p * hyp_w).sum(dim=1)
        rr = (best_r * ref_w).sum(dim=1)
        ff = 2 * pp * rr / (pp + rr)
        ff = ff.masked_fill(torch.isnan(ff), 0.0)  # as bert-score: F.masked_fill(torch.isnan(F), 0.0)
        for i, a, b, c in zip(chunk, pp.tolist(), rr.tolist(), ff.tolist()):
            p[i], r[i], f[i] = a, b, c
    return p, r, f


def _gather(rows: list[int], starts, lengths, flat, pad: int):
    """Gives (index into the packed vectors, weights normalised per text, mask) for texts `rows`, padded to the longest."""
    import torch

    rows = torch.tensor(rows, dtype=torch.long, device=starts.device)
    n = lengths[rows]
    steps = torch.arange(int(n.max()), device=starts.device)
    mask = steps[None, :] < n[:, None]
    index = torch.where(mask, starts[rows][:, None] + steps[None, :], pad)
    w = flat[index]
    w = w / w.sum(dim=1, keepdim=True)  # bert-score: hyp_idf.div_(hyp_idf.sum(dim=1, keepdim=True))
    return index, w, mask
