"""What people say about a judge, typed: calibration.json (the calibrate stage) and its copy in summary.json.

A judge's block (`JudgeCalibration`) is its agreement with people — κ with its interval against
`min_kappa`, the annotators' own agreement, bias checks, per-slice agreement — as
genval.judging.calibration writes it; summary.json's `judge.calibration` is the primary judge's
block without the per-item ratings. Every field but the judge's verdict meaning may be absent
(a calibration.json written by hand for a test, or by an older genval, holds fewer).
"""

from __future__ import annotations

from pydantic import Field

from genval.files import read_json
from genval.summary.number import Model, Number


class Meaning(Model):
    """What a judge's verdicts mean, from its file: the equivalent labels or the pass mark, in words (`says`)."""

    kind: str
    labels: list[str] | None = None
    equivalent: list[str] | None = None
    pass_threshold: float | None = None
    min: int | None = None
    max: int | None = None
    says: str | None = None


class Confusion(Model):
    """People's verdicts (rows) against the judge's (columns), over the judge's categories."""

    labels: list[str]
    rows: str | None = None
    columns: str | None = None
    matrix: list[list[int]]


class Annotators(Model):
    """People's agreement with each other where several rated an item, and the judge's on those items."""

    annotators: list[str]
    items_multi_rated: int
    pairwise_kappa_mean: float | None = None
    pairwise_agreement_mean: float | None = None
    alpha: float | None = None
    judge_vs_majority_kappa: float | None = None
    judge_vs_majority_n: int | None = None
    judge_vs_each_kappa_mean: float | None = None


class LengthBias(Model):
    judge_vs_length_gap_spearman: float | None
    human_vs_length_gap_spearman: float | None
    excess: float | None
    n: int


class JudgeAndHuman(Model):
    judge: float | None
    human: float | None


class Bias(Model):
    """The flip rate under order swap, length bias (judge against people) and the share each says yes."""

    flip_rate: float | None
    flip_n: int
    length: LengthBias | None = None
    positive_rate: JudgeAndHuman | None = None
    picks_longer: JudgeAndHuman | None = None


class SliceAgreement(Model):
    n: int
    agreement: float | None
    kappa: float | None
    small: bool


class Threshold(Model):
    """The score cut that best reproduces people's binary verdicts, cross-validated."""

    cut: float
    kappa: float | None
    agreement: float | None
    cv_kappa: float | None
    cv_agreement: float | None
    folds: int
    n: int


class Rated(Model):
    """The items people rated (calibration.json only): id, pair and their majority verdict, as columns."""

    id: list[str]
    pair: list[str]
    human: list[str]


class JudgeCalibration(Model):
    """One judge against people: validated when κ's interval's lower end reaches `min_kappa`."""

    validated: bool | None = None
    min_kappa: float | None = None
    n: int | None = None
    aspect: str | None = None
    agreement: Number | None = None
    kappa: Number | None = None
    alpha: Number | None = None
    spearman: Number | None = None
    kendall: Number | None = None
    precision: Number | None = None
    recall: Number | None = None
    confusion: Confusion | None = None
    annotators: Annotators | None = None
    bias: Bias | None = None
    per_slice: dict[str, dict[str, SliceAgreement]] | None = None
    threshold: Threshold | None = None
    unparsed: int | None = None
    judgments: int | None = None
    warnings: list[str] | None = None
    cost: float | None = None
    seconds: float | None = None
    rated: Rated | None = None


class Calibration(Model):
    """calibration.json: every judge against people, the judges ranked (best first), what each one's verdicts mean."""

    judges: dict[str, JudgeCalibration] = Field(default_factory=dict)
    ranking: list[str] = Field(default_factory=list)
    human_labels: list[str] | str | None = Field(default=None, description="the label files people's ratings came "
                                                 "from (a path from the judge stage's calibration)")
    meaning: dict[str, Meaning] = Field(default_factory=dict)

    @property
    def primary(self) -> str | None:
        """Gives the best-ranked judge, None without one."""
        return self.ranking[0] if self.ranking else None


def read_calibration(path) -> Calibration:
    """Gives calibration.json typed, or raises a one-line GenvalError naming the file and the first bad key."""
    from genval.summary.reading import validated

    return validated(Calibration, read_json(path, "calibration.json"), str(path),
                     "re-run its calibrate stage: `genval run CONFIG --force calibrate`", "calibration.json")
