"""The block of numbers over a group of examples — the whole run or one slice: one type, so a number the run has
every slice has (or says, in its `note`, why it has none).

A block holds `n`, `metrics` (pair → metric → number), `classification` (label figures),
`judge` (the judges' rates), `generation` (failed calls per role) and `fidelity` (how closely
the student follows the teacher, task retention and every reference metric's retention). A
`Slice` is a block with its headline, rank and the reason it is unranked. The run's own block
is `Summary.block`; what only the whole run has (temperature scaling, the label set, the judge's
calibration and meaning) is optional here and absent on a slice.
"""

from __future__ import annotations

from pydantic import Field

from genval.summary.calibration import JudgeCalibration, Meaning
from genval.summary.number import (PPI, Headline, Model, NamedNumber, Number, RoganGladen, Share, name_all,
                                   name_pairs)


class RoleFigures(Model):
    """One role's label figures: accuracy (per example, with its interval), and where labels are held,
    precision, recall, F1 (weighted by support), Brier and NLL."""

    accuracy: Number
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    brier: float | None = None
    nll: float | None = None

    def model_post_init(self, context) -> None:
        self._name_fields("accuracy")


class ErrorShares(Model):
    """The shares of examples both right, both wrong, only the student wrong, only the teacher wrong."""

    both_correct: Share
    both_wrong: Share
    only_student_wrong: Share
    only_teacher_wrong: Share


class Temperature(Model):
    """Temperature scaling of the student: the fitted T and ECE and NLL before and after."""

    value: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float


class SweepPoint(Model):
    temperature: float
    accuracy: float
    kl: float | None
    nll: float
    ece: float


class ReliabilityBin(Model):
    lo: float
    hi: float
    n: int
    confidence: float | None
    accuracy: float | None


class Classification(Model):
    """Label figures of a block: accuracy per role, accuracy retention, agreement, KL, ECE, the error shares, the
    confidence correlations; the whole run adds temperature scaling, its sweep, reliability and the label set."""

    teacher: RoleFigures
    student: RoleFigures
    accuracy_retention: Number
    agreement_rate: Number
    kl_teacher_student: Number
    ece: dict[str, Number | None] = Field(description="teacher, student: expected calibration error")
    errors: ErrorShares | None
    spearman: float | None
    kendall: float | None
    kl_band: str | None = None
    confusion: dict[str, list[list[int]]] | None = None
    warnings: list[str] | None = None
    temperature: Temperature | None = None
    sweep: list[SweepPoint] | None = None
    reliability: dict[str, list[ReliabilityBin]] | None = None
    labels: list[str] | None = None
    label_source: str | None = None
    signatures: dict[str, str] | None = None

    def model_post_init(self, context) -> None:
        self._name_fields("accuracy_retention", "agreement_rate", "kl_teacher_student")
        name_all(getattr(self, "ece", None), "ece")


class Fidelity(Model):
    """How closely the student follows the teacher — agreement, KL, the judge's equivalence, the student~teacher
    metrics — and how much of the teacher's task quality it keeps (task retention, every metric's retention)."""

    agreement_rate: Number | None
    kl_teacher_student: Number | None
    equivalence_rate: Number | None
    metrics: dict[str, Number]
    task_retention: NamedNumber | None
    retention: dict[str, Number] | None = Field(default=None, description="student / teacher of every reference "
                                                "metric, paired by example, with its interval")

    def model_post_init(self, context) -> None:
        self._name_fields("agreement_rate", "kl_teacher_student", "equivalence_rate", "task_retention")
        name_all(getattr(self, "metrics", None))
        for metric, number in getattr(self, "retention", None).items() if getattr(self, "retention", None) else ():
            number.named(f"{metric}_retention")


class JudgeRates(Model):
    """One judge's numbers on one pair: its equivalence rate, mean score and corrected rates."""

    equivalence_rate: Number | None = None
    mean_score: Number | None = None
    corrected_equivalence_rate: RoganGladen | None = None
    equivalence_rate_ppi: PPI | None = None

    def model_post_init(self, context) -> None:
        self._name_fields("equivalence_rate", "mean_score")


class Judge(Model):
    """The judges of a block: the primary judge's rates on its pair up front, every judge's per pair in `judges`;
    the whole run adds whether the primary judge is validated, its calibration, meaning and verdict shares."""

    name: str
    pair: str
    equivalence_rate: Number | None
    corrected_equivalence_rate: RoganGladen | None
    equivalence_rate_ppi: PPI | None
    judges: dict[str, dict[str, JudgeRates]]
    validated: bool | None = None
    calibration: JudgeCalibration | None = None
    meaning: Meaning | None = None
    mean_score: Number | None = None
    verdicts: dict[str, float] | None = None

    def model_post_init(self, context) -> None:
        self._name_fields("equivalence_rate", "mean_score")

    def rates(self, pair: str | None = None, judge: str | None = None) -> JudgeRates | None:
        """Gives a judge's rates on a pair (default: the primary judge on its own pair), None where it has none."""
        return self.judges.get(judge or self.name, {}).get(pair or self.pair)


class Block(Model):
    """Every number of a group of examples: the whole run or one slice."""

    n: int = Field(ge=0)
    metrics: dict[str, dict[str, Number]] = Field(description="pair -> metric -> number")
    classification: Classification | None
    judge: Judge | None
    generation: dict[str, Number] = Field(description="per role, the share of model calls that failed")
    fidelity: Fidelity

    def model_post_init(self, context) -> None:
        name_pairs(getattr(self, "metrics", None))
        name_all(getattr(self, "generation", None), "generation_error")

    def metric(self, pair: str, metric: str) -> Number | None:
        """Gives a pair's metric, None where the block has no such number."""
        return self.metrics.get(pair, {}).get(metric)


class Slice(Block):
    """A slice's block, with its headline (the run's headline number, on the slice), its rank among its field's
    slices (1 = weakest) and why it is unranked (too small, or the number undefined on it)."""

    too_small_to_rank: bool
    rank: int | None = Field(ge=1)
    rank_note: str | None = Field(default=None, description="why the slice is not ranked")
    headline: Headline | None


class ContentOnValid(NamedNumber):
    """Content quality on the outputs that pass a format check, and on all outputs (`all`)."""

    all: float | None

    def model_post_init(self, context) -> None:
        self.named(self.metric)


class FormatCheck(Model):
    """A format metric of one role: the failure share, and content quality on the outputs that pass."""

    failure_rate: Number
    content_on_valid: ContentOnValid | None = None

    def model_post_init(self, context) -> None:
        self._name_fields("failure_rate")


class Answered(Model):
    """The run's numbers with every failed or missing output left out (n counts the answered examples)."""

    note: str
    failed: dict[str, int]
    headline: Headline | None
    metrics: dict[str, dict[str, Number]]
    fidelity: Fidelity
    classification: Classification | None
    judge: Judge | None

    def model_post_init(self, context) -> None:
        name_pairs(getattr(self, "metrics", None))
