"""One block of headline numbers over a group of examples: the shape of the whole run and of each slice.

A block holds `n`, `metrics` {pair → metric → number}, `fidelity`, `classification`,
`judge` and `generation` (failed calls per role); every number is {value, ci, n}, read from
the run's resampling method (genval.analysis.resampling) through a `View`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genval.analysis import classification
from genval.analysis.numbers import empty
from genval.analysis.table import JUDGE_PREFIX

# Task-quality metrics a headline prefers, best first; otherwise the first metric by name.
PREFERRED = ("fields_f1", "fields", "rougeL", "chrf", "bertscore_f1", "embedding", "bleu")
LABEL_METRICS = ("label_correct", "label_agree", "kl")
ERROR_KINDS = classification.ERROR_KINDS
ERRORS = "errors"  # the pseudo-pair of the per-example error kinds (teacher and student right or wrong)


@dataclass
class View:
    """The numbers of one group of examples under one family of features: every row ('col') or answered ones.

    `present` counts the group's rows of each (pair, metric): a metric with no row in the
    group is not in its block. `role` is the candidate in the student's place: a view of
    `student_v2` shows its pairs as the student's (`student~teacher` reads `student_v2~teacher`),
    so every block, gate rule and decision is computed by the same code for every candidate.
    `gold`: the run has gold labels, and agreement and KL are over the examples with one.
    """

    engine: object
    group: tuple
    family: str
    present: dict
    n: int
    role: str = "student"
    gold: bool = False

    def stored(self, pair: str) -> str:
        """Gives the name a shown pair (or derived feature: `fail:student`, `diff:student~…|…`) has in the run."""
        if self.role == "student":
            return pair
        if pair == ERRORS:
            return f"{ERRORS}:{self.role}"
        kind, colon, rest = pair.rpartition(":")
        return kind + colon + as_role(rest, "student", self.role)

    def has(self, pair: str, metric: str) -> bool:
        return self.present.get((pair, metric), 0) > 0

    def keys(self) -> list[tuple[str, str]]:
        return sorted(key for key, count in self.present.items() if count)

    def mean(self, pair: str, metric: str, gold: bool = False) -> dict:
        """Gives the mean of a per-example number over the group (`gold`: over the examples with a gold label)."""
        if not self.has(pair, metric):
            return empty()
        return self.engine.mean(self.group, ("gold" if gold else self.family, self.stored(pair), metric))

    def ratio(self, top: str, bottom: str, metric: str) -> dict:
        """Gives mean(top) / mean(bottom) of one metric over the examples that have both (paired resamples)."""
        if not (self.has(top, metric) and self.has(bottom, metric)):
            return empty()
        return self.engine.ratio(self.group, (self.family, self.stored(top), metric),
                                 (self.family, self.stored(bottom), metric))

    def ece(self, role: str) -> dict:
        return self.engine.ece(self.group, self.role if role == "student" else role)

    def errors(self) -> dict | None:
        """Gives the shares of examples both right, both wrong, only one wrong (teacher vs student label_correct)."""
        errors = self.stored(ERRORS)
        if not self.engine.count(self.group, (self.family, errors, ERROR_KINDS[0])):
            return None
        return {kind: self.engine.mean(self.group, (self.family, errors, kind))["value"] for kind in ERROR_KINDS}

    def feature(self, pair: str, metric: str) -> dict:
        """Gives the mean of a derived per-example feature (no row count to check: format and gate features)."""
        return self.engine.mean(self.group, (self.family, self.stored(pair), metric))


def as_role(pair: str, role: str, other: str) -> str:
    """Gives a pair (`role~teacher`, `role~reference`, or the bare role) with `role` at its head replaced by `other`."""
    head, tilde, tail = pair.partition("~")
    return other + tilde + tail if head == role else pair


def metrics(view: View) -> dict:
    """Gives pair → metric → {value, ci, n} for every score metric the group has rows of."""
    out: dict = {}
    for pair, metric in view.keys():
        if not metric.startswith(JUDGE_PREFIX) and metric != "generation_error":
            out.setdefault(pair, {})[metric] = view.mean(pair, metric)
    return out


def judge(view: View, primary: str | None, pair: str | None) -> dict | None:
    """Gives each judge's equivalence rate (and mean score) per pair, and the primary judge's headline."""
    judges: dict = {}
    for jpair, metric in view.keys():
        if metric.startswith(JUDGE_PREFIX):
            _, name, what = metric.split(":", 2)
            key = "equivalence_rate" if what == "equivalent" else "mean_score"
            judges.setdefault(name, {}).setdefault(jpair, {})[key] = view.mean(jpair, metric)
    if not judges:
        return None
    primary = primary if primary in judges else sorted(judges)[0]
    pairs = judges[primary]
    # The student's own pair before any other candidate's (sorted, "student_v2~…" would come first).
    pair = pair if pair in pairs else next((p for p in ("student~reference", "student") if p in pairs),
                                           sorted(pairs)[0])
    return {"name": primary, "pair": pair, "equivalence_rate": pairs[pair].get("equivalence_rate"),
            "judges": judges}


def generation(view: View) -> dict:
    """Gives per role the share of model calls that failed, as {value, ci, n}."""
    return {pair: view.mean(pair, metric) for pair, metric in view.keys() if metric == "generation_error"}


def fidelity(block: dict) -> dict:
    """Gives how closely the student follows the teacher: agreement, KL, judge equivalence, text metrics."""
    cls = block.get("classification") or {}
    jud = block.get("judge") or {}
    equivalence = (jud.get("judges", {}).get(jud.get("name"), {}).get("student~teacher", {})
                   .get("equivalence_rate")) if jud else None
    return {"agreement_rate": cls.get("agreement_rate"), "kl_teacher_student": cls.get("kl_teacher_student"),
            "equivalence_rate": equivalence, "metrics": block["metrics"].get("student~teacher", {})}


def build(view: View, held, primary_judge: str | None, min_slice_n: int) -> dict:
    """Gives the block of headline numbers over a view's examples (`held`: the run's labels, or None)."""
    block = {"n": view.n, "metrics": metrics(view),
             "classification": classification.block(view, held, min_slice_n),
             "judge": judge(view, primary_judge, "student~teacher"),
             "generation": generation(view)}
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
