"""A cut on a score-type judge's scores, picked on the human sample, with its cross-validated agreement.

A binary human verdict against a judge that gives a score (an ordinal 1–5, or the
probability of "equivalent" from label probabilities) needs a cut: the one that maximises
Cohen's kappa on the sample. Picked and scored on the same items it flatters itself, so
it is also reported from k-fold cross-validation (cut picked on k−1 folds, scored on the
held-out fold; Hastie et al., ESL §7.10).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genval.judging.agreement import cohen_kappa, raw_agreement
from genval.judging.definition import Definition


def _cuts(scores: np.ndarray) -> np.ndarray:
    values = np.unique(scores)
    return (values[:-1] + values[1:]) / 2.0


def pick_cut(scores: np.ndarray, human: np.ndarray) -> tuple[float | None, float]:
    """Gives the cut (score ≥ cut means positive) that maximises kappa against `human` (1/0), and that kappa."""
    best, best_kappa = None, -np.inf
    for cut in _cuts(scores):
        kappa = cohen_kappa((scores >= cut).astype(int).tolist(), human.astype(int).tolist(), categories=[0, 1])
        if np.isfinite(kappa) and kappa > best_kappa:
            best, best_kappa = float(cut), kappa
    return best, float(best_kappa) if best is not None else float("nan")


def best_threshold(joined: pd.DataFrame, definition: Definition, seed: int, folds: int = 5) -> dict | None:
    """Gives {cut, kappa, agreement, cv_kappa, cv_agreement, folds, n} or None where no cut applies.

    A cut applies to a judge whose humans give binary verdicts and whose scores take more
    than two values (ordinal, or probability-weighted).
    """
    if definition.scale.kind != "binary" or not len(joined):
        return None
    frame = joined.dropna(subset=["score"])
    scores = frame["score"].to_numpy(dtype=float)
    human = (frame["human"] == definition.scale.positive).to_numpy().astype(int)
    if np.unique(scores).size <= 2 or np.unique(human).size < 2:
        return None
    cut, kappa = pick_cut(scores, human)
    if cut is None:
        return None
    rng = np.random.default_rng(seed)
    fold_of = rng.permutation(len(scores)) % folds
    held_pred, held_true = [], []
    for k in range(folds):
        train, test = fold_of != k, fold_of == k
        fold_cut, _ = pick_cut(scores[train], human[train])
        if fold_cut is None or not test.any():
            continue
        held_pred.extend((scores[test] >= fold_cut).astype(int).tolist())
        held_true.extend(human[test].tolist())
    cv_kappa = cohen_kappa(held_pred, held_true, categories=[0, 1]) if held_pred else float("nan")
    return {
        "cut": cut, "kappa": kappa, "agreement": raw_agreement((scores >= cut).astype(int), human),
        "cv_kappa": float(cv_kappa) if np.isfinite(cv_kappa) else None,
        "cv_agreement": raw_agreement(held_pred, held_true) if held_pred else None,
        "folds": folds, "n": int(len(scores)),
    }
