"""One block of headline numbers over a group of examples: the shape of the whole run and of each slice.

A block holds `n`, `metrics` {pair → metric → number}, `fidelity`, `classification`,
`judge` and `generation` (failed calls per role); every number is {value, ci, n}, read from
the run's resampling method (genval.analysis.resampling) through a `View`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genval import registry
from genval.analysis import classification, intervals, judge_correction
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
    cells: dict = field(default_factory=dict)   # (judge, stored pair) → the judge's rate cells (judge_correction)

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
        found = honest(self.engine.mean(self.group, ("gold" if gold else self.family, self.stored(pair), metric)),
                       metric, self.engine.boot.confidence)
        if not found.get("n"):  # rows, none with a value (token fidelity on empty teacher outputs): say so
            return {**found, "note": NO_VALUE}
        return found

    def ratio(self, top: str, bottom: str, metric: str) -> dict:
        """Gives mean(top) / mean(bottom) of one metric over the examples that have both (paired resamples).

        Undefined (value None, `note` says why) when the bottom's mean is 0: a slice where the
        teacher is never right has no accuracy retention.
        """
        if not (self.has(top, metric) and self.has(bottom, metric)):
            return empty()
        found = self.engine.ratio(self.group, (self.family, self.stored(top), metric),
                                  (self.family, self.stored(bottom), metric))
        if found["value"] is None and found["n"]:
            what = "right on none" if metric == "label_correct" else f"at {metric} 0 on all"
            return {**found, "note": f"undefined: the {bottom.partition('~')[0]} is {what} of these {found['n']} "
                                     "examples, so the ratio divides by 0"}
        return no_zero_width(found)

    def ece(self, role: str) -> dict:
        return no_zero_width(self.engine.ece(self.group, self.role if role == "student" else role))

    def errors(self) -> dict | None:
        """Gives the shares of examples both right, both wrong, only one wrong (teacher vs student label_correct)."""
        errors = self.stored(ERRORS)
        if not self.engine.count(self.group, (self.family, errors, ERROR_KINDS[0])):
            return None
        return {kind: self.engine.mean(self.group, (self.family, errors, kind))["value"] for kind in ERROR_KINDS}

    def feature(self, pair: str, metric: str) -> dict:
        """Gives the mean of a derived per-example feature (no row count to check: format and gate features)."""
        return honest(self.engine.mean(self.group, (self.family, self.stored(pair), metric)), metric,
                      self.engine.boot.confidence)


NO_VALUE = "undefined on every example here: the scores table's `detail` says why, per example"
NO_SPREAD = "no interval: every resample gives the same value, and a bootstrap cannot show what it never samples"
CLOSED_FORM = (intervals.WILSON, intervals.NEWCOMBE, intervals.MOVER_RATIO, intervals.BOUNDED)


def zero_width(num: dict) -> bool:
    """Says whether a bootstrap interval has no width (to float precision: the streamed sums are float32 products).

    A closed-form interval (Wilson, Newcombe, MOVER-R) is never of width 0: at millions of
    examples it may be narrower than the float tolerance, and is left as it is.
    """
    lo, hi = num.get("ci") or [None, None]
    if num.get("method") in CLOSED_FORM:
        return False
    return lo is not None and hi is not None and hi - lo <= 1e-6 * max(1.0, abs(num.get("value") or 0.0))


def no_zero_width(num: dict) -> dict:
    """Gives a number whose bootstrap interval has width 0 without it (ci null, `note` says why): never certainty."""
    return {**num, "ci": [None, None], "note": NO_SPREAD} if zero_width(num) else num


def honest(num: dict, metric: str, confidence: float) -> dict:
    """Gives a mean whose bootstrap saw no spread a conservative interval from its range, else none (never [v, v]).

    Every value of the group is the same: for a number with a known range [low, high] the Wilson
    interval of the mean moved onto [0, 1] covers (genval.analysis.intervals.bounded_mean); an
    unbounded one (KL, a judge's raw score) gets no interval.
    """
    lo = (num.get("ci") or [None, None])[0]
    if num.get("value") is None or not num.get("n") or (lo is not None and not zero_width(num)) or \
            (lo is None and num["n"] >= 2):
        return num
    found = registry.spec(metric)
    if found is None or found.low is None or found.high is None:
        return no_zero_width(num)
    ci = intervals.bounded_mean(num["value"], num["n"], found.low, found.high, confidence)
    return {**num, "ci": ci, "method": intervals.BOUNDED}


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
    for name, pairs in judges.items():
        for jpair, entry in pairs.items():
            cells = view.cells.get((name, view.stored(jpair)))
            if cells is not None:
                rg, ppi = judge_correction.corrected(cells, view.engine.boot)
                entry.update(corrected_equivalence_rate=rg, equivalence_rate_ppi=ppi)
    primary = primary if primary in judges else sorted(judges)[0]
    pairs = judges[primary]
    # The student's own pair before any other candidate's (sorted, "student_v2~…" would come first).
    pair = pair if pair in pairs else next((p for p in ("student~reference", "student") if p in pairs),
                                           sorted(pairs)[0])
    return {"name": primary, "pair": pair, "equivalence_rate": pairs[pair].get("equivalence_rate"),
            "corrected_equivalence_rate": pairs[pair].get("corrected_equivalence_rate"),
            "equivalence_rate_ppi": pairs[pair].get("equivalence_rate_ppi"), "judges": judges,
            # every block, a slice's too, has the primary judge's mean score beside its rate (as the run's had alone)
            "mean_score": pairs[pair].get("mean_score")}


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
    """Gives the one number the whole run is headed by: retention, judge equivalence, or task quality."""
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


def named(block: dict, name: str) -> dict:
    """Gives the number a headline name (`headline`) stands for in another block (a slice), with a note when absent."""
    metric, _, rest = name.partition(" (")
    if metric == "accuracy_retention":
        found = block["classification"]["accuracy_retention"] if block["classification"] else None
    elif metric == "equivalence_rate":
        found = block["judge"]["equivalence_rate"] if block["judge"] else None
    else:
        found = block["metrics"].get(rest.rstrip(")"), {}).get(metric)
    return found or {**empty(), "note": "no example of this slice has it"}


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
