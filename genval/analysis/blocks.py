"""One block of headline numbers over a set of examples: the shape of the whole run and of each slice.

A block holds `n`, `metrics` {pair → metric → number}, `fidelity`, `classification`,
`judge` and `generation` (failed calls per role); every number is {value, ci, n}.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genval.analysis.numbers import Boot, mean, ratio
from genval.analysis.table import JUDGE_PREFIX, wide

# Task-quality metrics a headline prefers, best first; otherwise the first metric by name.
PREFERRED = ("fields_f1", "fields", "rougeL", "chrf", "bertscore_f1", "embedding", "bleu")
LABEL_METRICS = ("label_correct", "label_agree", "kl")


def metrics(numbers: pd.DataFrame, boot: Boot) -> dict:
    """Gives pair → metric → {value, ci, n} for every score metric in `numbers`."""
    out: dict = {}
    rows = numbers[~numbers["metric"].str.startswith(JUDGE_PREFIX) & (numbers["metric"] != "generation_error")]
    for (pair, metric), group in rows.groupby(["pair", "metric"], sort=True):
        out.setdefault(pair, {})[metric] = mean(group["value"], boot)
    return out


def _paired(numbers: pd.DataFrame, left: tuple, right: tuple) -> pd.DataFrame:
    return pd.concat([wide(numbers, *left).rename("left"), wide(numbers, *right).rename("right")],
                     axis=1, join="inner").dropna()


def _errors(pairs: pd.DataFrame) -> dict | None:
    if pairs.empty:
        return None
    t, s = pairs["left"] == 1, pairs["right"] == 1
    n = len(pairs)
    return {"both_correct": float((t & s).sum() / n), "both_wrong": float((~t & ~s).sum() / n),
            "only_student_wrong": float((t & ~s).sum() / n), "only_teacher_wrong": float((~t & s).sum() / n),
            "n": int(n)}


def classification(numbers: pd.DataFrame, boot: Boot, detail: dict | None) -> dict | None:
    """Gives the classification figures from per-example label rows, overlaid with classification.json's.

    `detail` is classification.json's BLOCK for the same examples (overall or one slice) when
    the score stage wrote one: its ECE, Spearman/Kendall and numbers computed from
    probabilities win, since only it has the probabilities.
    """
    has = set(numbers.loc[numbers["metric"].isin(LABEL_METRICS), "metric"])
    if not has and not detail:
        return None
    teacher = wide(numbers, "teacher~reference", "label_correct")
    student = wide(numbers, "student~reference", "label_correct")
    pairs = _paired(numbers, ("teacher~reference", "label_correct"), ("student~reference", "label_correct"))
    out = {
        "teacher": {"accuracy": mean(teacher, boot)},
        "student": {"accuracy": mean(student, boot)},
        "accuracy_retention": ratio(pairs["right"], pairs["left"], boot),
        "agreement_rate": mean(wide(numbers, "student~teacher", "label_agree"), boot),
        "kl_teacher_student": mean(wide(numbers, "student~teacher", "kl"), boot),
        "ece": {"teacher": None, "student": None},
        "errors": _errors(pairs),
        "spearman": None, "kendall": None,
    }
    if detail:
        _overlay(out, detail)
    return out


def _overlay(out: dict, detail: dict) -> None:
    for role in ("teacher", "student"):
        figures = detail.get(role) or {}
        for key, value in figures.items():
            if value is not None and key != "ece":
                out[role][key] = value
        if figures.get("ece") is not None:
            out["ece"][role] = figures["ece"]
    for key in ("accuracy_retention", "agreement_rate", "kl_teacher_student", "errors", "spearman", "kendall",
                "kl_band", "confusion", "warnings"):
        if detail.get(key) is not None:
            out[key] = detail[key]


def judge(numbers: pd.DataFrame, boot: Boot, primary: str | None, pair: str | None) -> dict | None:
    """Gives each judge's equivalence rate (and mean score) per pair, and the primary judge's headline."""
    rows = numbers[numbers["metric"].str.startswith(JUDGE_PREFIX)]
    if rows.empty:
        return None
    judges: dict = {}
    for (jpair, metric), group in rows.groupby(["pair", "metric"], sort=True):
        _, name, what = metric.split(":", 2)
        key = "equivalence_rate" if what == "equivalent" else "mean_score"
        judges.setdefault(name, {}).setdefault(jpair, {})[key] = mean(group["value"], boot)
    primary = primary if primary in judges else sorted(judges)[0]
    pairs = judges[primary]
    pair = pair if pair in pairs else sorted(pairs)[0]
    return {"name": primary, "pair": pair, "equivalence_rate": pairs[pair].get("equivalence_rate"),
            "judges": judges}


def generation(numbers: pd.DataFrame, boot: Boot) -> dict:
    """Gives per role the share of model calls that failed, as {value, ci, n}."""
    rows = numbers[numbers["metric"] == "generation_error"]
    return {role: mean(group["value"], boot) for role, group in rows.groupby("pair", sort=True)}


def fidelity(block: dict) -> dict:
    """Gives how closely the student follows the teacher: agreement, KL, judge equivalence, text metrics."""
    cls = block.get("classification") or {}
    jud = block.get("judge") or {}
    equivalence = (jud.get("judges", {}).get(jud.get("name"), {}).get("student~teacher", {})
                   .get("equivalence_rate")) if jud else None
    return {"agreement_rate": cls.get("agreement_rate"), "kl_teacher_student": cls.get("kl_teacher_student"),
            "equivalence_rate": equivalence, "metrics": block["metrics"].get("student~teacher", {})}


def build(numbers: pd.DataFrame, ids, boot: Boot, detail: dict | None, primary_judge: str | None) -> dict:
    """Gives the block of headline numbers over the examples `ids`."""
    ids = set(map(str, ids))
    subset = numbers[numbers["id"].isin(ids)]
    block = {"n": len(ids), "metrics": metrics(subset, boot),
             "classification": classification(subset, boot, detail),
             "judge": judge(subset, boot, primary_judge, "student~teacher"),
             "generation": generation(subset, boot)}
    block["fidelity"] = fidelity(block)
    return block


def primary_metric(block: dict, pair: str) -> str | None:
    """Gives the metric that stands for a pair's quality: a preferred one, else the first by name."""
    names = [m for m in block["metrics"].get(pair, {}) if m not in LABEL_METRICS]
    return next((m for m in PREFERRED if m in names), names[0] if names else None)


def headline(block: dict) -> tuple[str | None, dict | None]:
    """Gives the one number a slice is ranked by: retention, judge equivalence, or task quality."""
    cls = block.get("classification")
    if cls and cls["accuracy_retention"].get("value") is not None:
        return "accuracy_retention", cls["accuracy_retention"]
    jud = block.get("judge")
    if jud and jud.get("equivalence_rate") and jud["equivalence_rate"].get("value") is not None:
        return f"equivalence_rate ({jud['name']})", jud["equivalence_rate"]
    for pair in ("student~reference", "student~teacher"):
        metric = primary_metric(block, pair)
        if metric:
            return f"{metric} ({pair})", block["metrics"][pair][metric]
    return None, None


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
