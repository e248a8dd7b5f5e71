"""What a run's numbers come to: the status grade, the diagnoses, the failures, the release gate and the decision.

Built by genval.analysis (status and diagnoses in diagnosis.py, failures and the decision in
decision.py, the gate in gate.py) from the typed numbers; read by the reports, the CLI and the
viewer as these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from genval.summary.number import AnyNumber, Interval, Model, Share

Level = Literal["EXCELLENT", "GOOD", "ACCEPTABLE", "WEAK"]
Verdict = Literal["READY", "NOT_READY", "INCOMPLETE", "NO_DECISION"]
DiagnosisKind = Literal["teacher_ceiling", "weak_critical_slice", "small_slice", "poor_calibration",
                        "latency_not_cost", "student_only_errors", "format_failures", "judge_not_validated"]


class Status(Model):
    """The status grade, the retention and KL it rests on, in words what it is based on, and what held it back."""

    level: Level | None
    retention: float | None
    kl: float | None
    basis: str
    held_back: list[str] = Field(description="each number that kept the status out of the band above")


class Diagnosis(Model):
    """A named pattern a reader should see, in words, with the numbers that triggered it."""

    kind: DiagnosisKind
    message: str
    numbers: dict[str, float | int | str | list[float | None] | None]

    @property
    def slice(self) -> str | None:
        """Gives the slice the diagnosis is about (`field=value`), None when it is about the whole run."""
        found = self.numbers.get("slice")
        return found if isinstance(found, str) else None


class Failure(Model):
    """Failed requests of a role, or verdicts a judge failed to give, out of n."""

    failed: int = Field(ge=0)
    n: int = Field(ge=0)
    rate: Share
    requests_failed: int | None = Field(default=None, ge=0, description="of a judge's failures, the failed requests "
                                        "(the rest could not be read)")
    missing: int | None = Field(default=None, ge=0, description="of a role's failures, the ids a replay file lacks "
                                "(a re-run will not fill them)")
    recorded: int | None = Field(default=None, ge=0, description="of a role's failures, the errors a replay file "
                                 "records (its `error` key: a re-run reads them again)")


class Failures(Model):
    """Failed requests per role and failed or unparsed verdicts per judge, each with its rate; which are over the
    limit (`role NAME`, `judge NAME`)."""

    max_failure_rate: Share
    roles: dict[str, Failure]
    judges: dict[str, Failure]
    over_limit: list[str]
    requests_failed: int = Field(ge=0)
    counted_as: str

    def over(self) -> list[tuple[str, str, Failure]]:
        """Gives (kind, name, counts) of every role or judge over the limit, in order."""
        out = []
        for what in self.over_limit:
            kind, name = what.split(" ", 1)
            out.append((kind, name, (self.roles if kind == "role" else self.judges)[name]))
        return out


class Decision(Model):
    """What the run decides: INCOMPLETE (failures over the limit), else NOT_READY (the gate fails or the grade is
    WEAK), READY (caveats among the reasons) or NO_DECISION; `grade` is the status level."""

    verdict: Verdict
    reasons: list[str] = Field(min_length=1)
    grade: Level | None

    @property
    def shown(self) -> str:
        """Gives the verdict as people read it: READY, NOT READY, INCOMPLETE, NO DECISION."""
        return self.verdict.replace("_", " ")


class GateTest(Model):
    """One interval test of a gate rule: its kind, bound, the number tested, its one-sided p (Holm-adjusted on a
    slice), or why it is missing."""

    kind: Literal["lower", "upper", "non_inferiority"]
    bound: float
    number: AnyNumber | None
    missing: str | None = None
    p: float | None
    p_holm: float | None = None


class RuleResult(Model):
    """One gate rule's outcome: the number's value and interval, its tests, the baseline's value, passed, why not."""

    rule: str
    metric: str
    pair: str | None
    slice: str | None
    value: float | None
    ci: Interval | None
    baseline: float | None
    tests: list[GateTest]
    passed: bool
    reason: str | None


class LeftOut(Model):
    """An interval test outside Holm's family, and why."""

    rule: str
    kind: str
    reason: str


class Gate(Model):
    """The release gate's outcome: passed, every rule's result, the failing rules in one line each, and the family
    Holm's correction ran over."""

    passed: bool
    baseline: str | None
    alpha: float
    holm_family: int = Field(ge=0, description="the interval tests Holm's correction ran over: slice tests with a "
                                               "p-value")
    holm_left_out: list[LeftOut]
    rules: list[RuleResult]
    failing: list[str]
