"""The numbers of `classification.json`: one block overall and one per slice value, plus calibration.

A block compares teacher and student on the same examples: those with a gold label. An output
that failed (or is missing) predicts no label and counts as wrong; probability figures (ECE,
Brier, NLL, KL) are over the outputs that have probabilities. Headline numbers carry a seeded
bootstrap CI (genval.stats).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genval import stats
from genval.config import RunConfig
from genval.metrics import probabilities as pr
from genval.metrics.classification import ONLY_STUDENT_WRONG_WARN, SWEEP

NONE = "(none)"  # the predicted label of an output no label could be read from


class Boot:
    """Bootstrap settings from config.analysis: gives {value, ci, n} for any statistic over row indices."""

    def __init__(self, config: RunConfig):
        a = config.analysis
        self.n_boot, self.confidence, self.seed = a.bootstrap, a.confidence, a.seed

    def mean(self, values) -> dict:
        return stats.number(values, n_boot=self.n_boot, confidence=self.confidence, seed=self.seed)

    def of(self, statistic, n: int) -> dict:
        """Gives statistic(all rows) with the percentile interval of statistic over resampled row indices."""
        if n == 0:
            return {"value": None, "ci": [None, None], "n": 0}
        value = statistic(np.arange(n))

        def safe(idx):
            out = statistic(idx.astype(int))
            return np.nan if out is None else out

        lo, hi = stats.bootstrap_ci(np.arange(n, dtype=float), statistic=safe, n_boot=self.n_boot,
                                    confidence=self.confidence, seed=self.seed)
        lo = None if lo is None or np.isnan(lo) else lo
        hi = None if hi is None or np.isnan(hi) else hi
        return {"value": None if value is None else float(value), "ci": [lo, hi], "n": int(n)}


def _role_numbers(rows: pd.DataFrame, role: str, labels: list[str], boot: Boot, bins: int) -> dict:
    from sklearn.metrics import precision_recall_fscore_support

    gold = rows["gold"].tolist()
    pred = [p if p is not None else NONE for p in rows[role]]
    correct = np.array([p == g for p, g in zip(pred, gold)], dtype=float)
    p = r = f = None
    if len(rows):
        p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=labels, average="weighted", zero_division=0)
        p, r, f = float(p), float(r), float(f)
    out = {"accuracy": boot.mean(correct), "precision": p, "recall": r, "f1": f}
    probs = rows[rows[f"{role}_probs"].notna()]
    if len(probs):
        mat = np.stack(probs[f"{role}_probs"])
        gidx = np.array([labels.index(g) for g in probs["gold"]])
        conf = mat.max(axis=1)
        hit = (mat.argmax(axis=1) == gidx).astype(float)
        out["ece"] = boot.of(lambda i: pr.ece(conf[i], hit[i], bins), len(probs))
        out["brier"], out["nll"] = pr.brier(mat, gidx), pr.nll(mat, gidx)
    else:
        out["ece"], out["brier"], out["nll"] = {"value": None, "ci": [None, None], "n": 0}, None, None
    return out


def _correlations(rows: pd.DataFrame) -> tuple[float | None, float | None]:
    """Gives Spearman's rho and Kendall's tau of teacher and student confidences (max probability)."""
    from scipy.stats import kendalltau, spearmanr

    both = rows[rows["teacher_probs"].notna() & rows["student_probs"].notna()]
    if len(both) < 3:
        return None, None
    t = np.stack(both["teacher_probs"]).max(axis=1)
    s = np.stack(both["student_probs"]).max(axis=1)
    if np.ptp(t) == 0 or np.ptp(s) == 0:  # a constant side has no rank correlation
        return None, None
    return float(spearmanr(t, s).statistic), float(kendalltau(t, s).statistic)


def block(rows: pd.DataFrame, labels: list[str], config: RunConfig) -> dict:
    """Gives one BLOCK of classification.json for the examples in `rows`."""
    from sklearn.metrics import confusion_matrix

    boot, bins = Boot(config), config.analysis.ece_bins
    n = len(rows)
    out: dict = {"n": n}
    for role in ("teacher", "student"):
        out[role] = _role_numbers(rows, role, labels, boot, bins)
    gold = rows["gold"].to_numpy()
    t_ok = (rows["teacher"].to_numpy() == gold).astype(float)
    s_ok = (rows["student"].to_numpy() == gold).astype(float)

    def retention(i):
        t = t_ok[i].mean()
        return None if t == 0 else s_ok[i].mean() / t

    out["accuracy_retention"] = boot.of(retention, n)
    agree = [float(s is not None and s == t) for s, t in zip(rows["student"], rows["teacher"])]
    out["agreement_rate"] = boot.mean(agree)
    both = rows[rows["teacher_probs"].notna() & rows["student_probs"].notna()]
    kl = pr.kl_per_example(np.stack(both["teacher_probs"]), np.stack(both["student_probs"])) if len(both) else []
    out["kl_teacher_student"] = boot.mean(kl)
    out["kl_band"] = pr.kl_band(out["kl_teacher_student"]["value"])
    out["spearman"], out["kendall"] = _correlations(rows)
    cells = {"both_correct": (t_ok == 1) & (s_ok == 1), "both_wrong": (t_ok == 0) & (s_ok == 0),
             "only_student_wrong": (t_ok == 1) & (s_ok == 0), "only_teacher_wrong": (t_ok == 0) & (s_ok == 1)}
    out["errors"] = {k: float(v.mean()) if n else None for k, v in cells.items()}
    out["confusion"] = {role: confusion_matrix(rows["gold"], [p if p is not None else NONE for p in rows[role]],
                                               labels=labels).tolist() if n else [] for role in ("teacher", "student")}
    out["warnings"] = _warnings(out, n, config)
    return out


def _warnings(out: dict, n: int, config: RunConfig) -> list[str]:
    warnings = []
    share = out["errors"]["only_student_wrong"]
    if share is not None and share > ONLY_STUDENT_WRONG_WARN:
        warnings.append(f"the student alone is wrong on {share:.1%} of examples (> {ONLY_STUDENT_WRONG_WARN:.0%}): "
                        "look at these cases before replacing the teacher")
    if n < config.analysis.min_slice_n:
        warnings.append(f"only {n} examples (< min_slice_n {config.analysis.min_slice_n}): numbers are unstable")
    return warnings


def calibration(rows: pd.DataFrame, labels: list[str], config: RunConfig) -> dict:
    """Gives temperature scaling of the student, the temperature sweep and the reliability tables."""
    bins = config.analysis.ece_bins
    out = {"temperature": None, "sweep": [], "reliability": {}}
    for role in ("teacher", "student"):
        part = rows[rows[f"{role}_probs"].notna()]
        if len(part):
            mat = np.stack(part[f"{role}_probs"])
            gidx = np.array([labels.index(g) for g in part["gold"]])
            out["reliability"][role] = pr.reliability(mat.max(axis=1), (mat.argmax(axis=1) == gidx).astype(float), bins)
        else:
            out["reliability"][role] = []
    student = rows[rows["student_probs"].notna()]
    if not len(student):
        return out
    mat = np.stack(student["student_probs"])
    gidx = np.array([labels.index(g) for g in student["gold"]])
    t_best = pr.fit_temperature(mat, gidx)
    scaled = pr.with_temperature(mat, t_best)

    def ece_of(m):
        return pr.ece(m.max(axis=1), (m.argmax(axis=1) == gidx).astype(float), bins)

    out["temperature"] = {"value": t_best, "ece_before": ece_of(mat), "ece_after": ece_of(scaled),
                          "nll_before": pr.nll(mat, gidx), "nll_after": pr.nll(scaled, gidx)}
    has_teacher = student["teacher_probs"].notna().to_numpy()
    teacher = np.stack(student["teacher_probs"][has_teacher]) if has_teacher.any() else None
    for t in sorted({*SWEEP, round(t_best, 4)}):
        m = pr.with_temperature(mat, t)
        kl = float(pr.kl_per_example(teacher, m[has_teacher]).mean()) if teacher is not None else None
        out["sweep"].append({"temperature": t, "accuracy": float((m.argmax(axis=1) == gidx).mean()), "kl": kl})
    return out


def summarise(table: pd.DataFrame, labels: list[str], config: RunConfig) -> dict:
    """Gives the whole classification.json: overall, per slice, rare classes, calibration."""
    # A failed output stays in: it predicts no label, so it is wrong (and disagrees), as a user would find it.
    rows = table[table["gold"].notna()]
    label_source = f"field:{config.label_field}" if config.task == "extraction" else "label"
    out = {"labels": labels, "label_source": label_source, "overall": block(rows, labels, config), "slices": {}}
    if not len(rows):
        out["overall"]["warnings"].append("no example has a gold label")
    failed = {role: int((~rows[f"{role}_present"]).sum()) for role in ("teacher", "student")}
    for role, count in failed.items():
        if count:
            out["overall"]["warnings"].append(f"{count} {role} outputs failed or are missing: counted as wrong")
    unknown = int((table["gold_raw"].notna() & table["gold"].isna()).sum())
    if unknown:
        out["overall"]["warnings"].append(f"{unknown} gold labels are not in the label set and were left out")
    for field in config.slices:
        column = f"slice_{field}"
        if column in rows:
            out["slices"][field] = {str(v): block(part, labels, config)
                                    for v, part in rows.groupby(column, dropna=True, sort=True)}
    shares = rows["gold"].value_counts(normalize=True)
    out["rare_classes"] = [label for label in labels if shares.get(label, 0.0) < config.analysis.rare_class_share]
    out.update(calibration(rows, labels, config))
    return out
