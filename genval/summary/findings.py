"""summary.json, typed: the run's block, its slices, candidates, calibration, status, diagnoses, gate and decision.

`Findings` is every number aggregate found (the run's block laid out at the top level, as
summary.json has always had it, its slices, the failures, ops and corpus numbers); `Summary` adds
what the numbers come to (status, diagnoses, gate, decision) and every further candidate's own.
aggregate builds it and writes summary.json from it (`Summary.dump`); the reports, the gate, the
viewer, compare, export and monitor read summary.json into it once (genval.summary.read) and use
its attributes. Its JSON Schema, generated from these models, is docs/summary.schema.json.
"""

from __future__ import annotations

from typing import Any, Iterator, Literal

from pydantic import Field

from genval.summary.block import Answered, Block, Classification, Fidelity, FormatCheck, Judge, Slice
from genval.summary.number import Headline, Model, Number, name_all, name_pairs
from genval.summary.verdict import Decision, Diagnosis, Failures, Gate, Status

SCHEMA_VERSION = 3  # 3: typed (genval.summary), one model for the run's block and every slice; 2: decision, failures

Figures = dict[str, Any]   # one role's ops figures by name (ops.json), as the generate stage measured them
Format = dict[str, dict[str, FormatCheck]]   # role → format metric → its failures and content quality


class EvalSet(Model):
    path: str
    sha256: str | None
    n: int = Field(ge=0)


class Settings(Model):
    """The settings every number of the summary shares: the bootstrap, the confidence, the seed, the smallest
    slice ranked, how intervals were drawn, and each metric's signature."""

    bootstrap: int
    confidence: float
    seed: int
    min_slice_n: int
    interval_method: str = Field(description="How every interval was drawn: the exact bootstrap of resampled example "
                                             "indices, or the streamed Poisson bootstrap (docs/reports.md)")
    metrics: dict[str, str | list[str]] = Field(description="metric -> its signature (every setting that changes the "
                                                            "number; several where batches recorded several)")


class RoleErrors(Model):
    failed: int = Field(ge=0)
    n: int = Field(ge=0)


class Unranked(Model):
    slice: str
    reason: str


class SliceRanking(Model):
    """A slice field's ranking: the one number its slices are ranked by (the run's headline), the ranked slices
    weakest first, and the unranked ones with the reason."""

    by: str | None
    ranked: list[str]
    unranked: list[Unranked]


class Ops(Model):
    """Operations figures per role (ops.json: latency, throughput, cost, memory…) and the student's savings in
    percent; `teacher` and `student` repeat their roles' figures."""

    teacher: Figures | None
    student: Figures | None
    roles: dict[str, Figures | None]
    savings: dict[str, float | None]
    savings_basis: str | None

    def figure(self, role: str, name: str):
        """Gives one role's figure, None where the role or the figure is not measured."""
        figures = self.roles.get(role)
        return figures.get(name) if figures else None


class Corpus(Model):
    """Corpus numbers per pair (corpus BLEU with its signature, field micro/macro F1, MAE/RMSE/R²), reduced from the
    scores' sufficient statistics over the answered outputs; the note says how many failed."""

    note: str
    pairs: dict[str, dict[str, Any]]


Slices = dict[str, dict[str, Slice]]   # slice field → slice value → its block


class Findings(Model):
    """Every number aggregate found: the run's block (at the top level), its slices, failures, ops and corpus."""

    schema_version: Literal[3]
    name: str
    task: Literal["summarization", "extraction", "classification", "generation"]
    eval_set: EvalSet
    settings: Settings
    headline: Headline | None
    metrics: dict[str, dict[str, Number]] = Field(description="pair -> metric -> number")
    fidelity: Fidelity
    classification: Classification | None
    judge: Judge | None
    generation: dict[str, Number]
    errors: dict[str, RoleErrors]
    failures: Failures
    answered: Answered | None
    format: Format
    slices: Slices
    slice_ranking: dict[str, SliceRanking]
    slice_sources: dict[str, str]
    critical: list[str]
    ops: Ops
    corpus: Corpus

    def model_post_init(self, context) -> None:
        name_pairs(getattr(self, "metrics", None))
        name_all(getattr(self, "generation", None), "generation_error")

    @property
    def block(self) -> Block:
        """Gives the run's own block: the numbers over every example, the same type as a slice's."""
        return Block.model_construct(n=self.eval_set.n, metrics=self.metrics, classification=self.classification,
                                     judge=self.judge, generation=self.generation, fidelity=self.fidelity)

    def slice(self, ref: str) -> Slice | None:
        """Gives the slice `field=value`, None when the run has no such slice."""
        field, _, value = ref.partition("=")
        return self.slices.get(field, {}).get(value)

    def each_slice(self) -> Iterator[tuple[str, str, Slice]]:
        """Gives (field, value, block) of every slice, field by field in the summary's order."""
        for field, values in self.slices.items():
            for value, block in values.items():
                yield field, value, block


class Candidate(Model):
    """A further candidate (a model role besides teacher and student with pairs of its own, e.g. student_v2): the
    numbers, slices, status, gate and decision the student has, computed with it in the student's place. Its pairs
    keep their own names (student_v2~teacher); classification holds its label-row numbers only."""

    headline: Headline | None
    metrics: dict[str, dict[str, Number]]
    fidelity: Fidelity
    classification: Classification | None
    judge: Judge | None
    generation: dict[str, Number]
    failures: Failures
    format: Format
    slices: Slices
    slice_ranking: dict[str, SliceRanking]
    status: Status
    diagnoses: list[Diagnosis]
    gate: Gate | None
    decision: Decision

    def model_post_init(self, context) -> None:
        name_pairs(getattr(self, "metrics", None))


class Summary(Findings):
    """summary.json: every number of the run, what they come to, and every further candidate's own."""

    status: Status
    diagnoses: list[Diagnosis]
    gate: Gate | None
    decision: Decision
    candidates: dict[str, Candidate] | None = Field(default=None, description="absent when the run has no further "
                                                                              "candidate")

    def candidate(self, role: str) -> Candidate | None:
        """Gives a further candidate's numbers and decision, None when the summary has none of it."""
        return self.candidates.get(role) if self.candidates else None


__all__ = ["Candidate", "Corpus", "EvalSet", "Findings", "Headline", "Ops", "SCHEMA_VERSION", "Settings", "Slice",
           "SliceRanking", "Slices", "Summary"]
