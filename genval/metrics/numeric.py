"""Regression (MAE, RMSE, R²) and ranking (NDCG@k, MAP) for tasks whose outputs are numbers or ranked lists.

Not in any task's default list: a config names them (`metrics: [regression]`, `[ranking]`).
Per-example columns go to the scores table; the corpus-level numbers per pair to metrics.json.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
from pydantic import Field

from genval.metrics.registry import MetricContext, MetricResult, Options, register
from genval.numbers import DIVERGENCE, SHARE

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def read_number(text: str) -> float | None:
    """Gives the first number in `text` (a model often wraps it in words); None if there is none."""
    match = NUMBER.search(text or "")
    return float(match.group()) if match else None


def regression_summary(pred: np.ndarray, gold: np.ndarray) -> dict:
    """Gives MAE, RMSE and R² = 1 − SS_res / SS_tot (scikit-learn's r2_score definition) of pred against gold."""
    if len(gold) == 0:
        return {"n": 0, "mae": None, "rmse": None, "r2": None}
    err = pred - gold
    ss_tot = float(((gold - gold.mean()) ** 2).sum())
    r2 = None if ss_tot == 0 else 1 - float((err ** 2).sum()) / ss_tot
    return {"n": int(len(gold)), "mae": float(np.abs(err).mean()), "rmse": float(math.sqrt((err ** 2).mean())), "r2": r2}


@register("regression", numbers={"abs_error": DIVERGENCE, "squared_error": DIVERGENCE})
def regression(candidates: list[str], others: list[str], ctx: MetricContext) -> MetricResult:
    """Gives the absolute and squared error per pair (numbers read from the texts); MAE, RMSE, R² per pair."""
    pred = [read_number(c) for c in candidates]
    gold = [read_number(o) for o in others]
    abs_err, sq_err, details = [], [], []
    for p, g in zip(pred, gold):
        ok = p is not None and g is not None
        abs_err.append(abs(p - g) if ok else float("nan"))
        sq_err.append((p - g) ** 2 if ok else float("nan"))
        details.append(None if ok else "no number could be read")
    summary = {}
    for pair, a, b in ctx.segments or [("all", 0, len(candidates))]:
        rows = [i for i in range(a, b) if pred[i] is not None and gold[i] is not None]
        summary[pair] = regression_summary(np.array([pred[i] for i in rows]), np.array([gold[i] for i in rows]))
    sig = "regression|first-number-in-text"
    return MetricResult({"abs_error": abs_err, "squared_error": sq_err}, {"abs_error": sig, "squared_error": sig},
                        details={"abs_error": details, "squared_error": details}, summary={"regression": summary})


def read_ranking(text: str) -> list[str]:
    """Gives a ranked list of item ids: a JSON list, else one item per line or comma."""
    try:
        value = json.loads(text)
        if isinstance(value, list):
            return [str(v).strip() for v in value]
    except (json.JSONDecodeError, TypeError):
        pass
    return [p.strip() for p in re.split(r"[\n,]", text or "") if p.strip()]


def read_relevance(text: str) -> dict[str, float]:
    """Gives item → graded relevance: a JSON object of grades, or a list (each item relevance 1)."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        value = read_ranking(text)
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items()}
    return {str(v).strip(): 1.0 for v in (value if isinstance(value, list) else [value])}


def ndcg_at_k(ranking: list[str], relevance: dict[str, float], k: int) -> float | None:
    """Gives NDCG@k with linear gain rel / log2(rank + 1) (Järvelin & Kekäläinen 2002; scikit-learn's ndcg_score)."""
    ideal = sorted(relevance.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    if idcg == 0:
        return None
    seen, dcg = set(), 0.0
    for i, item in enumerate(ranking[:k]):
        if item not in seen:  # a repeated item earns nothing the second time
            dcg += relevance.get(item, 0.0) / math.log2(i + 2)
            seen.add(item)
    return dcg / idcg


def average_precision(ranking: list[str], relevant: set[str]) -> float | None:
    """Gives AP = (1/|relevant|) Σ_i P@i · rel_i over the ranked list (Manning et al. 2008, §8.4)."""
    if not relevant:
        return None
    hits, total, seen = 0, 0.0, set()
    for i, item in enumerate(ranking, start=1):
        if item in relevant and item not in seen:
            hits += 1
            total += hits / i
        seen.add(item)
    return total / len(relevant)


class RankingOptions(Options):
    """The cut-off of NDCG@k."""

    k: int = Field(10, ge=1)


@register("ranking", options=RankingOptions, numbers={"ndcg@*": SHARE, "average_precision": SHARE})
def ranking(candidates: list[str], others: list[str], ctx: MetricContext) -> MetricResult:
    """Gives NDCG@k and average precision per pair; their mean (MAP) is the per-pair headline."""
    k = ctx.options.k
    ndcg, ap = [], []
    for cand, other in zip(candidates, others):
        ranked, rel = read_ranking(cand), read_relevance(other)
        n, a = ndcg_at_k(ranked, rel, k), average_precision(ranked, {i for i, g in rel.items() if g > 0})
        ndcg.append(float("nan") if n is None else n)
        ap.append(float("nan") if a is None else a)
    sig = f"ranking|ndcg@{k}:linear-gain|ap:binary(relevance>0)"
    return MetricResult({f"ndcg@{k}": ndcg, "average_precision": ap}, {f"ndcg@{k}": sig, "average_precision": sig})
