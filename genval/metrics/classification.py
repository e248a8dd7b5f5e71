"""Classification: how well the student's labels and label probabilities match the teacher's and the gold.

Sources. A `classification` task takes the gold from each example's `label` and reads an
output's text as its predicted label (case and surrounding whitespace, quotes and a final
period ignored); where the text is no label of the set, the argmax of the output's
`label_probs` stands in, and where there are none the prediction is unparsed (counted wrong).
An `extraction` task with `label_field` reads the field from the output's JSON object and the
gold from the reference object's field, else from `label`.

Gives, per joined batch of examples and outputs, the label table (gold, predictions, probability
vectors) and the per-example rows for the scores table: `label_correct` (teacher~reference,
student~reference), `label_agree` and `kl` (student~teacher). A failed or missing output predicts
no label: it counts as wrong and as a disagreement (it has no KL: its probabilities are unknown).
Without configured `labels` the label set is every label the run names, gathered over all
batches first (the score stage's prepass).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from genval.config import RunConfig
from genval.metrics import probabilities as pr
from genval.metrics.structure import read_object
from genval.numbers import FAILED_DETAIL

ONLY_STUDENT_WRONG_WARN = 0.05  # the share above which the error analysis warns (issue 4)
SWEEP = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


def applies(config: RunConfig) -> bool:
    """Gives True when the run has labels to score: a classification task, or an extraction `label_field`."""
    return config.task == "classification" or bool(config.label_field)


def _norm(text) -> str:
    return " ".join(str(text).split()).strip("\"'`").rstrip(".").strip().casefold()


def match_label(value, labels: list[str]) -> str | None:
    """Gives the label of the set that `value` names, ignoring case and spacing; None if none."""
    if value is None or isinstance(value, (dict, list)):
        return None
    key = _norm(value)
    return next((label for label in labels if _norm(label) == key), None)


def _probs(text, labels: list[str]) -> np.ndarray | None:
    """Gives an output's label_probs as a vector over `labels` (absent labels 0), renormalised; None if absent."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    data = json.loads(text) if isinstance(text, str) else text
    vec = np.array([float(data.get(label, 0.0)) for label in labels])
    total = vec.sum()
    return vec / total if total > 0 else None


def _gold(reference, label, config: RunConfig) -> str | None:
    if config.task == "extraction":
        ref = read_object(reference) if isinstance(reference, str) else None
        if ref is not None and ref.get(config.label_field) is not None:
            return str(ref[config.label_field])
    return label if isinstance(label, str) else None


def _raw_prediction(text, config: RunConfig):
    """Gives what an answered output says its label is (the text, or the extraction's field), before matching."""
    if not isinstance(text, str):
        return None
    return (read_object(text) or {}).get(config.label_field) if config.task == "extraction" else text


ROLES = ("teacher", "student")


def roles_in(batch: pd.DataFrame) -> list[str]:
    """Gives the roles a joined batch has outputs of: teacher and student, then any further candidate (`student_t4`)."""
    found = list(dict.fromkeys(c.rsplit(".", 1)[0] for c in batch.columns if c.endswith(".error")))
    return [*ROLES, *(r for r in found if r not in ROLES)]
EXAMPLE_COLUMNS = ["reference", "label"]  # what the label table reads of the examples, besides slices
OUTPUT_COLUMNS = ("text", "error", "label_probs")  # and of each role's outputs


def label_set(config: RunConfig, golds, preds) -> list[str]:
    """Gives the label set: the config's `labels`, else every label seen in gold or outputs, sorted."""
    if config.labels:
        return list(config.labels)
    seen = {str(v) for v in [*golds, *preds] if v is not None}
    return sorted(seen)


def labels_seen(batch: pd.DataFrame, config: RunConfig) -> set[str]:
    """Gives the gold and predicted labels one joined batch names (the map of the label set's prepass)."""
    golds = [_gold(r, lab, config) for r, lab in zip(_column(batch, "reference"), _column(batch, "label"))]
    preds = [_raw_prediction(t, config) if e is None else None
             for role in roles_in(batch) for t, e in zip(batch[f"{role}.text"], _errors(batch, role))]
    return {str(v) for v in [*golds, *preds] if v is not None and not isinstance(v, (dict, list))}


def _column(batch: pd.DataFrame, name: str) -> list:
    return batch[name].tolist() if name in batch else [None] * len(batch)


def _errors(batch: pd.DataFrame, role: str) -> list:
    return [None if e is None or (isinstance(e, float) and np.isnan(e)) else e for e in batch[f"{role}.error"]]


def gold_labels(batch: pd.DataFrame, config: RunConfig, labels: list[str]) -> tuple[list, list]:
    """Gives the examples' gold labels as given and as matched to `labels` (None where none matches)."""
    raw = [_gold(r, lab, config) for r, lab in zip(_column(batch, "reference"), _column(batch, "label"))]
    return raw, [match_label(g, labels) if g is not None else None for g in raw]


def label_table(batch: pd.DataFrame, config: RunConfig, labels: list[str]) -> pd.DataFrame:
    """Gives one row per example of a joined batch (genval.pairs.joined): the gold label, each role's
    predicted label and probability vector over `labels`, and whether its output was answered (teacher,
    student and every further candidate the batch holds)."""
    table = batch[["id"] + [c for c in batch.columns if c.startswith("slice_")]].copy()
    table["gold_raw"], table["gold"] = gold_labels(batch, config, labels)
    for role in roles_in(batch):
        present = [e is None for e in _errors(batch, role)]
        raw = [_raw_prediction(t, config) if ok else None for t, ok in zip(batch[f"{role}.text"], present)]
        probs_raw = _column(batch, f"{role}.label_probs")
        probs = [_probs(pr_, labels) if ok else None for pr_, ok in zip(probs_raw, present)]
        preds = []
        for value, vec in zip(raw, probs):
            label = match_label(value, labels)
            if label is None and vec is not None and config.task == "classification":
                label = labels[int(np.argmax(vec))]  # the text names no label: the probabilities decide
            preds.append(label)
        table[f"{role}_present"] = present
        table[f"{role}_probs_raw"] = [v if ok else None for v, ok in zip(probs_raw, present)]
        table[f"{role}_probs"] = probs
        table[role] = preds
    return table


def label_probs_source(config: RunConfig, role: str) -> str:
    """Gives how a role's label probabilities are made, as a signature names it.

    hf and vllm score each label after `generation.label_delimiter` (models/labels.py), so
    the delimiter is named; openai reads the first answer token's top log-probabilities; replay
    takes the file's numbers as they are.
    """
    model = config.models[role]
    if model.backend in ("hf", "vllm"):
        return f"{model.backend}(loglik,delimiter:{json.dumps(config.generation.label_delimiter)})"
    if model.backend == "openai":
        return f"openai(first-token-top-{model.top_logprobs})"
    return "replay"


def signatures(config: RunConfig) -> dict[str, str]:
    """Gives the signatures of the numbers made from label probabilities: KL and ECE."""
    sources = ",".join(f"{role}={label_probs_source(config, role)}" for role in ("teacher", "student"))
    return {"kl": pr.kl_signature(sources), "ece": pr.ece_signature(config.analysis.ece_bins, sources)}


def score_rows(table: pd.DataFrame, kl_signature: str) -> pd.DataFrame:
    """Gives the per-example rows for the scores table: label_correct (each role against the gold), label_agree
    and kl (the student and each further candidate against the teacher)."""
    roles = [c.removesuffix("_present") for c in table.columns if c.endswith("_present")]
    frames = []
    has_gold = table["gold"].notna()
    for role in roles:
        # A failed output has no label: it is wrong, and its row says why (genval.numbers.FAILED_DETAIL).
        rows = table[has_gold]
        frames.append(pd.DataFrame({"id": rows["id"], "pair": f"{role}~reference", "metric": "label_correct",
                                    "value": (rows[role] == rows["gold"]).astype(float), "detail": [
                                        FAILED_DETAIL if not present else None if p is not None else
                                        "no label could be read" for p, present in zip(rows[role], rows[f"{role}_present"])]}))
    for role in roles[1:]:
        frames += _fidelity_rows(table, role, kl_signature)
    out = pd.concat(frames, ignore_index=True)
    out["value"] = pd.array(out["value"], dtype="Float64")
    return out


def _fidelity_rows(table: pd.DataFrame, role: str, kl_signature: str) -> list[pd.DataFrame]:
    """Gives `<role>~teacher` label_agree (every example; a failed side disagrees) and kl (both sides have probabilities)."""
    pair = f"{role}~teacher"
    both = table[table["teacher_present"] & table[f"{role}_present"]]
    frames = [pd.DataFrame({"id": table["id"], "pair": pair, "metric": "label_agree",
                            "value": [float(s is not None and s == t) for s, t in zip(table[role], table["teacher"])],
                            "detail": [None if t and s else FAILED_DETAIL
                                       for t, s in zip(table["teacher_present"], table[f"{role}_present"])]})]
    probs = both[[t is not None and s is not None for t, s in zip(both["teacher_probs"], both[f"{role}_probs"])]]
    if len(probs):
        kl = pr.kl_per_example(np.stack(probs["teacher_probs"]), np.stack(probs[f"{role}_probs"]))
        frames.append(pd.DataFrame({"id": probs["id"], "pair": pair, "metric": "kl", "value": kl,
                                    "detail": kl_signature}))
    return frames
