"""Judge definitions: `judges/*.yaml` validated into typed objects (judges are data, habit 4).

A definition holds the prompt (system and user templates), the mode (pointwise or
pairwise), the scale (binary labels, an ordinal range with anchors, or a choice of A/B/tie),
how the answer is parsed, default generation parameters, and a place for the judge's
measured agreement with people (as alpaca_eval keeps next to each annotator config).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from genval.config import read_yaml, validation_error
from genval.errors import GenvalError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Scale(_Strict):
    """What a verdict can be, and what it means: binary labels (positive first), ordinal min..max, or a choice.

    `equivalent` names the labels that count as "the candidate is as good as the other side"
    (a binary scale's default: its positive label; a choice scale must say, e.g. [tie]);
    `pass_threshold` is the ordinal score at or above which an answer passes. Aggregation
    reads only these, never a judge's words.
    """

    kind: Literal["binary", "ordinal", "choice"]
    labels: list[str] = Field(default_factory=list)
    min: int | None = None
    max: int | None = None
    anchors: dict[int, str] = Field(default_factory=dict)
    equivalent: list[str] | None = None
    pass_threshold: float | None = None

    @field_validator("labels", mode="before")
    @classmethod
    def _quoted(cls, value):
        if isinstance(value, list) and any(isinstance(v, bool) for v in value):
            raise ValueError("YAML reads bare yes/no/true/false as booleans; quote the labels, e.g. [\"yes\", \"no\"]")
        return value

    @model_validator(mode="after")
    def _shape(self):
        if self.kind == "binary" and len(self.labels) != 2:
            raise ValueError("a binary scale needs 'labels' with exactly two entries, the positive one first")
        if self.kind == "choice" and len(self.labels) < 2:
            raise ValueError("a choice scale needs at least two 'labels' (e.g. [A, B, tie])")
        if self.kind == "ordinal":
            if self.min is None or self.max is None or self.min >= self.max:
                raise ValueError("an ordinal scale needs integers 'min' < 'max' (e.g. 1 and 5)")
            outside = [k for k in self.anchors if not self.min <= k <= self.max]
            if outside:
                raise ValueError(f"anchor {outside[0]} lies outside min..max")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("'labels' has duplicates")
        self._check_meaning()
        return self

    def _check_meaning(self) -> None:
        if self.kind == "ordinal":
            if self.equivalent is not None:
                raise ValueError("an ordinal scale says what passes with 'pass_threshold' (e.g. 4), not 'equivalent'")
            if self.pass_threshold is None or not self.min <= self.pass_threshold <= self.max:
                raise ValueError(f"an ordinal scale needs 'pass_threshold' between min and max ({self.min}..{self.max}):"
                                 " the score at or above which an answer passes, e.g. 4")
            return
        if self.pass_threshold is not None:
            raise ValueError("'pass_threshold' is for ordinal scales; a label scale lists its 'equivalent' labels")
        if self.equivalent is None:
            if self.kind == "choice":
                raise ValueError("a choice scale needs 'equivalent': the labels that count as the candidate being as "
                                 "good as the other side, e.g. [tie]")
            self.equivalent = [self.labels[0]]
        unknown = [v for v in self.equivalent if v not in self.labels]
        if unknown or not self.equivalent:
            raise ValueError(f"'equivalent' should list labels of the scale ({', '.join(self.labels)})"
                             + (f"; '{unknown[0]}' is not one" if unknown else ""))

    def equivalent_value(self, verdict: str | None, score: float | None) -> float | None:
        """Gives 1.0 when a verdict (or an ordinal score) counts as equivalent or passing, 0.0 when not, None if unknown."""
        if self.kind == "ordinal":  # the verdict (as calibration compares it with people), else the score
            value = float(verdict) if verdict else (score if score is not None and score == score else None)
            return None if value is None else float(value >= self.pass_threshold)
        return None if verdict is None else float(verdict in self.equivalent)

    @property
    def worst_score(self) -> float:
        """Gives the score of the worst answer: the ordinal minimum, else 0 (not equivalent, or the other side wins)."""
        return float(self.min) if self.kind == "ordinal" else 0.0

    def meaning(self) -> str:
        """Gives in words what the judge's equivalence rate counts."""
        if self.kind == "ordinal":
            return f"share of scores >= {self.pass_threshold:g} on {self.min}..{self.max}"
        return f"share of verdicts in [{', '.join(self.equivalent)}]"

    @property
    def tokens(self) -> tuple[str, ...]:
        """Gives the answers the scale allows, as the strings a model would write."""
        if self.kind == "ordinal":
            return tuple(str(v) for v in range(self.min, self.max + 1))
        return tuple(self.labels)

    @property
    def positive(self) -> str | None:
        return self.labels[0] if self.kind == "binary" else None

    def describe(self) -> str:
        """Gives the scale as prompt text: the labels, or each ordinal point with its anchor."""
        if self.kind == "ordinal":
            return "\n".join(f"{v}: {self.anchors.get(v, '')}".rstrip(": ") for v in range(self.min, self.max + 1))
        return " or ".join(self.labels)


class Parser(_Strict):
    """How the answer is read: a final tagged line, a JSON object, or the whole answer as one choice."""

    kind: Literal["tagged", "json", "choice"]
    tag: str = "VERDICT"
    key: str = "verdict"


class PromptTemplate(_Strict):
    system: str | None = None
    user: str


class Parameters(_Strict):
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int = 0
    logprobs: int | None = Field(None, ge=1, le=20)
    weighted: bool = False  # ask the backend for the probability of each scale token (G-Eval)


class Definition(_Strict):
    """One judge: prompt, mode, scale, parser, parameters, and its validation numbers."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    mode: Literal["pointwise", "pairwise"]
    scale: Scale
    prompt: PromptTemplate
    parser: Parser
    parameters: Parameters = Field(default_factory=Parameters)
    aspects: dict[str, str] = Field(default_factory=dict)  # aspect → its definition, for {aspect_definition}
    aspect: str | None = None  # the human-rated aspect this judge answers (e.g. consistency)
    validation: dict | None = None  # measured agreement with humans, copied from a calibration.json

    @model_validator(mode="after")
    def _consistent(self):
        if self.mode == "pairwise" and self.scale.kind != "choice":
            raise ValueError("a pairwise judge needs a 'choice' scale (e.g. labels [A, B, tie])")
        if self.mode == "pointwise" and self.scale.kind == "choice":
            raise ValueError("a pointwise judge needs a 'binary' or 'ordinal' scale")
        if self.aspect is not None and self.aspects and self.aspect not in self.aspects:
            raise ValueError(f"aspect '{self.aspect}' is not among 'aspects' ({', '.join(self.aspects)})")
        return self


def load_definition(path: str | Path) -> Definition:
    """Reads and validates the judge YAML at `path`; a mistake names the file, line and key."""
    path = Path(path)
    data, text = read_yaml(path, "judge")
    if not isinstance(data, dict):
        raise GenvalError(f"{path}: a judge file should be a mapping (name, mode, scale, prompt, parser)")
    try:
        return Definition.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, str(path), text) from None
