"""Classification figures of a block of examples (overall, a slice), read from the run's tables.

One source per number:
- accuracy, accuracy retention, agreement, KL and the error shares: the score stage's
  per-example `label_correct` (teacher~reference, student~reference), `label_agree` and `kl`
  (student~teacher) rows, with bootstrap intervals (genval.analysis.resampling);
- ECE (with its interval), Brier, NLL, Spearman/Kendall, the reliability table, temperature
  scaling and its sweep: each role's `outputs.label_probs` over the label set;
- precision, recall, F1 and the confusion matrices: each role's predicted label;
- gold labels: the examples' `label` (or the reference object's `label_field`).
Predicted labels and probabilities are read from the outputs, through the one join
(genval.pairs.joined), as the score stage reads them (genval.metrics.classification.label_table).

A block compares teacher and student on the same examples: those with a gold label. An output
that failed (or is missing) predicts no label and counts as wrong; probability figures (ECE,
Brier, NLL) are over the outputs that have probabilities. The predicted labels and
probabilities are held as compact arrays by example position (2 small integers, and 8 bytes
per label per role, an example): the one part of aggregation that grows with the eval set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genval.config import RunConfig
from genval.metrics import probabilities as pr
from genval.metrics.classification import ONLY_STUDENT_WRONG_WARN, SWEEP, applies, label_table, labels_seen, signatures
from genval.pairs import joined
from genval.runfolder import Run

ROLES = ("teacher", "student")
ERROR_KINDS = ("both_correct", "both_wrong", "only_student_wrong", "only_teacher_wrong")
__all__ = ["ROLES", "Held", "applies", "block", "label_set", "label_source", "overall_extras"]


def label_source(config: RunConfig) -> str:
    """Gives where gold labels come from: 'field:<label_field>' of the reference object, or the `label` column."""
    return f"field:{config.label_field}" if config.task == "extraction" and config.label_field else "label"


def _output_columns(run: Run) -> tuple[str, ...]:
    present = set(run.table_columns("outputs"))
    return tuple(c for c in ("text", "label_probs", "error") if c in present)


def _example_columns(run: Run) -> list[str]:
    present = set(run.table_columns("examples"))
    return [c for c in ("label", "reference") if c in present]


def label_set(run: Run, config: RunConfig) -> list[str]:
    """Gives the label set: the config's `labels`, else every label seen in gold or outputs, sorted (one pass)."""
    if config.labels:
        return list(config.labels)
    seen: set[str] = set()
    for frame in joined(run, list(ROLES), _example_columns(run), _output_columns(run)):
        seen.update(labels_seen(frame, config))
    return sorted(seen)


class Held:
    """Each example's gold and predicted label codes and label probabilities, by position, and its groups."""

    def __init__(self, run: Run, config: RunConfig, labels: list[str]):
        self.run, self.labels = run, labels
        self.config = config.model_copy(update={"labels": labels})
        self._parts: dict[str, list] = {}
        self.unknown_gold = 0
        self.roles: list[str] = list(ROLES)  # and every further candidate the joined frames hold

    def feed(self, frame: pd.DataFrame, partitions: dict) -> dict:
        """Adds a window of joined rows; gives the features the intervals need: each role's confidence and hit."""
        table = label_table(frame, self.config, self.labels)
        index = {label: k for k, label in enumerate(self.labels)}
        gold = np.array([index.get(g, -1) if isinstance(g, str) else -1 for g in table["gold"]], dtype=np.int32)
        self.unknown_gold += int((table["gold_raw"].notna() & table["gold"].isna()).sum())
        self._add("gold", gold)
        features = {}
        self.roles = [c.removesuffix("_present") for c in table.columns if c.endswith("_present")]
        for role in self.roles:
            self._add(f"{role}.pred", np.array([index.get(p, -1) if isinstance(p, str) else -1
                                                 for p in table[role]], dtype=np.int32))
            self._add(f"{role}.present", table[f"{role}_present"].to_numpy(dtype=bool))
            probs = np.full((len(table), len(self.labels)), np.nan)
            for k, p in enumerate(table[f"{role}_probs"]):
                if p is not None:
                    probs[k] = p
            self._add(f"{role}.probs", probs if not np.isnan(probs).all() else len(probs))  # a count: none here
            # ECE's sample: examples with a gold label and this role's probabilities.
            has = (gold >= 0) & ~np.isnan(probs).any(axis=1) if len(self.labels) else np.zeros(len(gold), bool)
            conf, hit = np.full(len(gold), np.nan), np.full(len(gold), np.nan)
            conf[has] = probs[has].max(axis=1)
            hit[has] = (probs[has].argmax(axis=1) == gold[has]).astype(float)
            features[("conf", role)], features[("hit", role)] = conf, hit
        for name, codes in partitions.items():
            self._add(f"part.{name}", np.asarray(codes))
        return features

    def _add(self, name: str, values: np.ndarray) -> None:
        self._parts.setdefault(name, []).append(values)

    def finish(self) -> None:
        self.arrays = {name: np.concatenate(parts) for name, parts in self._parts.items()
                       if not name.endswith(".probs")}
        for role in self.roles:  # with no label probabilities anywhere, a role's matrix has no column: nothing held
            parts = self._parts.get(f"{role}.probs", [])
            width = len(self.labels) if any(not isinstance(p, int) for p in parts) else 0
            self.arrays[f"{role}.probs"] = np.concatenate(
                [p if not isinstance(p, int) else np.full((p, width), np.nan) for p in parts]) if parts \
                else np.empty((0, width))
        self._parts = {}

    def as_role(self, role: str) -> "Held":
        """Gives this Held with `role` (a further candidate) in the student's place, as the candidate's view reads it."""
        if role == "student":
            return self
        seen = Held.__new__(Held)
        seen.__dict__.update(self.__dict__)
        seen.arrays = {**self.arrays, **{f"student.{k}": self.arrays[f"{role}.{k}"] for k in ("pred", "present", "probs")}}
        return seen

    def rows(self, group) -> np.ndarray:
        """Gives the positions of the group's examples that have a gold label."""
        partition, code = group
        mask = self.arrays["gold"] >= 0
        if partition != "all":
            mask &= self.arrays[f"part.{partition}"] == code
        return np.flatnonzero(mask)

    def probs(self, role: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gives the probability matrix and gold indices of the rows whose role has label probabilities."""
        mat = self.arrays[f"{role}.probs"][rows]
        has = ~np.isnan(mat[:, 0]) if mat.shape[1] else np.zeros(len(rows), bool)
        return mat[has], self.arrays["gold"][rows][has]


def _role(held: Held, rows: np.ndarray, role: str) -> dict:
    """Gives a role's precision, recall and F1 (weighted by support) and its Brier and NLL, where defined."""
    from sklearn.metrics import precision_recall_fscore_support

    out = {}
    if len(rows):
        k = len(held.labels)
        pred = held.arrays[f"{role}.pred"][rows]
        p, r, f, _ = precision_recall_fscore_support(held.arrays["gold"][rows], np.where(pred < 0, k, pred),
                                                     labels=list(range(k)), average="weighted", zero_division=0)
        out.update(precision=float(p), recall=float(r), f1=float(f))
    mat, gold = held.probs(role, rows)
    if len(mat):
        out.update(brier=pr.brier(mat, gold), nll=pr.nll(mat, gold))
    return out


def _correlations(held: Held, rows: np.ndarray) -> tuple[float | None, float | None]:
    """Gives Spearman's rho and Kendall's tau of teacher and student confidences (max probability)."""
    from scipy.stats import kendalltau, spearmanr

    t, s = held.arrays["teacher.probs"][rows], held.arrays["student.probs"][rows]
    both = ~np.isnan(t[:, 0]) & ~np.isnan(s[:, 0]) if t.shape[1] else np.zeros(len(rows), bool)
    if both.sum() < 3:
        return None, None
    t, s = t[both].max(axis=1), s[both].max(axis=1)
    if np.ptp(t) == 0 or np.ptp(s) == 0:  # a constant side has no rank correlation
        return None, None
    return float(spearmanr(t, s).statistic), float(kendalltau(t, s).statistic)


def _confusion(held: Held, rows: np.ndarray) -> dict:
    from sklearn.metrics import confusion_matrix

    k = len(held.labels)
    gold = held.arrays["gold"][rows]
    return {role: confusion_matrix(gold, np.where(held.arrays[f"{role}.pred"][rows] < 0, k,
                                                  held.arrays[f"{role}.pred"][rows]),
                                   labels=list(range(k))).tolist() if len(rows) else [] for role in ROLES}


def block(view, held: Held | None, min_slice_n: int) -> dict | None:
    """Gives the classification block of a view's examples (None when it has no label rows).

    `view` gives the per-example label rows' numbers (genval.analysis.blocks.View); `held`, when
    the run is a classification (or has a `label_field`), the predicted labels and
    probabilities behind ECE, precision/recall/F1, Brier, NLL, correlations and confusion.
    """
    if not any(view.has(pair, metric) for pair, metric in (("teacher~reference", "label_correct"),
                                                          ("student~reference", "label_correct"),
                                                          ("student~teacher", "label_agree"),
                                                          ("student~teacher", "kl"))):
        return None
    # With gold labels read, agreement and KL are over the examples with one, as accuracy is.
    on_gold = view.gold and view.family == "col"
    out = {
        "teacher": {"accuracy": view.mean("teacher~reference", "label_correct")},
        "student": {"accuracy": view.mean("student~reference", "label_correct")},
        "accuracy_retention": view.ratio("student~reference", "teacher~reference", "label_correct"),
        "agreement_rate": view.mean("student~teacher", "label_agree", gold=on_gold),
        "kl_teacher_student": view.mean("student~teacher", "kl", gold=on_gold),
        "ece": {"teacher": None, "student": None},
        "errors": view.errors(),
        "spearman": None, "kendall": None,
    }
    if not on_gold or held is None:
        return out
    rows = held.rows(view.group)
    for role in ROLES:
        out[role].update(_role(held, rows, role))
        out["ece"][role] = view.ece(role)
    band = pr.kl_band(out["kl_teacher_student"]["value"])
    if band is not None:
        out["kl_band"] = band
    out["spearman"], out["kendall"] = _correlations(held, rows)
    out["confusion"] = _confusion(held, rows)
    out["warnings"] = _warnings(out, len(rows), min_slice_n)
    return out


def _warnings(out: dict, n: int, min_slice_n: int) -> list[str]:
    warnings = []
    share = out["errors"]["only_student_wrong"] if out["errors"] else None
    if share is not None and share > ONLY_STUDENT_WRONG_WARN:
        warnings.append(f"the student alone is wrong on {share:.1%} of examples (> {ONLY_STUDENT_WRONG_WARN:.0%}): "
                        "look at these cases before replacing the teacher")
    if n < min_slice_n:
        warnings.append(f"only {n} examples (< min_slice_n {min_slice_n}): numbers are unstable")
    return warnings


def _calibration(held: Held, rows: np.ndarray, bins: int) -> dict:
    """Gives temperature scaling of the student, the temperature sweep and the reliability tables."""
    out = {"temperature": None, "sweep": [], "reliability": {}}
    for role in ROLES:
        mat, gold = held.probs(role, rows)
        out["reliability"][role] = pr.reliability(mat.max(axis=1), (mat.argmax(axis=1) == gold).astype(float),
                                                  bins) if len(mat) else []
    student = held.arrays["student.probs"][rows]
    has = ~np.isnan(student[:, 0]) if student.shape[1] else np.zeros(len(rows), bool)
    if not has.any():
        return out
    mat, gidx = student[has], held.arrays["gold"][rows][has]
    t_best = pr.fit_temperature(mat, gidx)
    scaled = pr.with_temperature(mat, t_best)

    def ece_of(m):
        return pr.ece(m.max(axis=1), (m.argmax(axis=1) == gidx).astype(float), bins)

    out["temperature"] = {"value": t_best, "ece_before": ece_of(mat), "ece_after": ece_of(scaled),
                          "nll_before": pr.nll(mat, gidx), "nll_after": pr.nll(scaled, gidx)}
    teacher_all = held.arrays["teacher.probs"][rows][has]
    has_teacher = ~np.isnan(teacher_all[:, 0])
    teacher = teacher_all[has_teacher] if has_teacher.any() else None
    for t in sorted({*SWEEP, round(t_best, 4)}):
        m = pr.with_temperature(mat, t)
        kl = float(pr.kl_per_example(teacher, m[has_teacher]).mean()) if teacher is not None else None
        out["sweep"].append({"temperature": t, "accuracy": float((m.argmax(axis=1) == gidx).mean()), "kl": kl,
                             "nll": pr.nll(m, gidx), "ece": ece_of(m)})   # what temperature scaling changes
    return out


def overall_extras(block_: dict, held: Held, config: RunConfig) -> None:
    """Adds to the overall block what only it has: the label set, temperature scaling, sweep, reliability, warnings."""
    rows = held.rows(("all", 0))
    block_.update(_calibration(held, rows, config.analysis.ece_bins))
    block_.update({"labels": held.labels, "label_source": label_source(config), "signatures": signatures(config)})
    warnings = block_.setdefault("warnings", [])
    if not len(rows):
        warnings.append("no example has a gold label")
    for role in ROLES:
        count = int((~held.arrays[f"{role}.present"][rows]).sum())
        if count:
            warnings.append(f"{count} {role} outputs failed or are missing: counted as wrong")
    if held.unknown_gold:
        warnings.append(f"{held.unknown_gold} gold labels are not in the label set and were left out")
