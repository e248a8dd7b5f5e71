"""What a number means: its direction (which way is better), its range and its printing precision.

The kinds of number genval reports (a share, a 0–100 score, seconds, …) and the numbers it
derives itself (classification, judge, ops, failures). A metric declares its own columns with
these kinds where it is registered (`genval.metrics.registry.register(..., numbers=...)`);
`genval.registry` looks any number up across both. This module imports nothing of genval's,
so every layer may use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

# The detail a score row carries when it stands for an output that failed (counted at its worst value).
FAILED_DETAIL = "no output (the request failed or the example is missing): counted at the worst value"


@dataclass(frozen=True)
class NumberSpec:
    """What one number means: `better` ('higher', 'lower' or None), range [low, high], decimals printed."""

    better: Literal["higher", "lower"] | None
    low: float | None = None
    high: float | None = None
    digits: int = 4

    @property
    def worst(self) -> float | None:
        """Gives the value a failed output counts as: the bad end of the range, None where it is unbounded."""
        return {"higher": self.low, "lower": self.high}.get(self.better) if self.better else None

    @property
    def sign(self) -> int:
        """Gives +1 when higher is better, −1 when lower is, 0 when neither is."""
        return {"higher": 1, "lower": -1}.get(self.better, 0)

    def printed_zero(self, change: float) -> bool:
        """Says whether a change is too small to show at this number's printing precision."""
        return round(abs(change), self.digits) == 0

    def format(self, value: float | None, signed: bool = False) -> str:
        if value is None or not math.isfinite(value):
            return "–"
        return f"{value:+.{self.digits}f}" if signed else f"{value:.{self.digits}f}"


SCORE_100 = NumberSpec("higher", 0.0, 100.0, 2)  # BLEU, chrF: 0–100
SHARE = NumberSpec("higher", 0.0, 1.0)          # a share of examples where something good holds
BAD_SHARE = NumberSpec("lower", 0.0, 1.0)       # a share of examples where something bad holds
RATIO = NumberSpec("higher", 0.0, None)         # student / teacher: can pass 1
DIVERGENCE = NumberSpec("lower", 0.0, None)
CORRELATION = NumberSpec("higher", -1.0, 1.0)
COSINE = NumberSpec("higher", -1.0, 1.0)        # embedding cosine, BERTScore
SECONDS = NumberSpec("lower", 0.0, None, 4)
RATE = NumberSpec("higher", 0.0, None, 2)       # per second
PERCENT = NumberSpec("higher", None, None, 1)   # a saving or gain in percent: positive is better

BUILTIN: dict[str, NumberSpec] = {
    # classification (per example and summary figures)
    "label_correct": SHARE, "label_agree": SHARE, "kl": DIVERGENCE,
    "accuracy": SHARE, "precision": SHARE, "recall": SHARE, "f1": SHARE,
    "accuracy_retention": RATIO, "task_retention": RATIO, "*_retention": RATIO, "agreement_rate": SHARE,
    "kl_teacher_student": DIVERGENCE, "ece": BAD_SHARE, "brier": NumberSpec("lower", 0.0, 2.0), "nll": DIVERGENCE,
    "spearman": CORRELATION, "kendall": CORRELATION,
    "both_correct": SHARE, "both_wrong": BAD_SHARE, "only_student_wrong": BAD_SHARE, "only_teacher_wrong": SHARE,
    # McNemar's exact p on the examples only one of teacher and student labels right: a small p, one-sided flips
    "mcnemar_p": NumberSpec("higher", 0.0, 1.0),
    # judges: per-example rows are judge:<name>:equivalent (0/1) and judge:<name>:score (its scale)
    "equivalence_rate": SHARE, "corrected_equivalence_rate": SHARE, "equivalence_rate_ppi": SHARE,
    "judge:*:equivalent": SHARE,
    "mean_score": NumberSpec("higher"), "judge:*:score": NumberSpec("higher"),
    # failures
    "generation_error": BAD_SHARE, "failure_rate": BAD_SHARE,
    # ops (ops.json per role, and the student's savings in percent)
    "latency_*_s": SECONDS, "wall_s": SECONDS, "requests_per_s": RATE, "output_tokens_per_s": RATE,
    "cost_per_1k_calls": NumberSpec("lower", 0.0, None, 4), "peak_memory_bytes": NumberSpec("lower", 0.0, None, 0),
    "parameters": NumberSpec("lower", 0.0, None, 0), "weight_bytes": NumberSpec("lower", 0.0, None, 0),
    "*_pct": PERCENT,
}


def lookup(table: dict[str, NumberSpec], name: str) -> NumberSpec | None:
    """Gives the entry of `name` in `table`: the exact name, else the first pattern that matches; None if none."""
    if name in table:
        return table[name]
    return next((found for pattern, found in table.items() if fnmatchcase(name, pattern)), None)
