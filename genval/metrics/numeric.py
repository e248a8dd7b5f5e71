"""Regression (MAE, RMSE, R²) and ranking (NDCG@k, MAP) for tasks whose outputs are numbers or ranked lists.

Not in any task's default list: a config names them (`metrics: [regression]`, `[ranking]`).
Per-example columns go to the scores table, with the statistics the corpus numbers per pair are added up from.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
from pydantic import Field

from genval.metrics.registry import Corpus, MetricContext, MetricResult, Options, register
from genval.numbers import DIVERGENCE, SHARE

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def read_number(text: str) -> float | None:
    """Gives the first number in `text` (a model often wraps it in words); None if there is none."""
    match = NUMBER.search(text or "")
    return float(match.group()) if match else None


def _moments(rows) -> tuple[int, float, float, float, float]:
    """Gives (n, Σ|e|, Σe², mean of gold, Σ(gold − mean)²) over rows whose statistics are [read, |e|, e², gold]."""
    stats = np.stack(rows["stats"].to_numpy()) if len(rows) else np.zeros((0, 4))
    read = stats[stats[:, 0] > 0]
    if not len(read):
        return 0, 0.0, 0.0, 0.0, 0.0
    gold = read[:, 3]
    mean = float(gold.mean())
    return len(read), float(read[:, 1].sum()), float(read[:, 2].sum()), mean, float(((gold - mean) ** 2).sum())


def _merge_moments(a: tuple, b: tuple) -> tuple:
    """Adds two sets of moments; the squared deviations as Chan, Golub & LeVeque (1979) combine them."""
    n = a[0] + b[0]
    if not a[0] or not b[0]:
        return a if b[0] == 0 else b
    delta = b[3] - a[3]
    return n, a[1] + b[1], a[2] + b[2], a[3] + delta * b[0] / n, a[4] + b[4] + delta * delta * a[0] * b[0] / n


def _regression_numbers(state: tuple) -> dict:
    """Gives MAE, RMSE and R² = 1 − SS_res / SS_tot (scikit-learn's r2_score definition) of pred against gold."""
    n, abs_sum, sq_sum, _mean, ss_tot = state
    if n == 0:
        return {"regression": {"n": 0, "mae": None, "rmse": None, "r2": None}}
    r2 = None if ss_tot == 0 else 1 - sq_sum / ss_tot
    return {"regression": {"n": int(n), "mae": abs_sum / n, "rmse": math.sqrt(sq_sum / n), "r2": r2}}


@register("regression", numbers={"abs_error": DIVERGENCE, "squared_error": DIVERGENCE},
          corpus=Corpus(columns=("abs_error",), partial=lambda _column, rows: _moments(rows), merge=_merge_moments,
                        finish=_regression_numbers))
def regression(candidates: list[str], others: list[str], ctx: MetricContext) -> MetricResult:
    """Gives the absolute and squared error per pair (numbers read from the texts), with the statistics for MAE, RMSE, R².

    Each `abs_error` row carries [read, |e|, e², gold]; the Corpus reducer gives MAE, RMSE and
    R² per pair over the rows where both numbers could be read.
    """
    pred = [read_number(c) for c in candidates]
    gold = [read_number(o) for o in others]
    abs_err, sq_err, details, stats = [], [], [], []
    for p, g in zip(pred, gold):
        ok = p is not None and g is not None
        abs_err.append(abs(p - g) if ok else float("nan"))
        sq_err.append((p - g) ** 2 if ok else float("nan"))
        details.append(None if ok else "no number could be read")
        stats.append([1.0, abs(p - g), (p - g) ** 2, g] if ok else [0.0, 0.0, 0.0, 0.0])
    sig = "regression|first-number-in-text"
    return MetricResult({"abs_error": abs_err, "squared_error": sq_err}, {"abs_error": sig, "squared_error": sig},
                        details={"abs_error": details, "squared_error": details}, stats={"abs_error": stats})


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
