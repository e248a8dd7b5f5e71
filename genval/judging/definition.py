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
    """What a verdict can be: binary labels (positive first), ordinal min..max, or a pairwise choice."""

    kind: Literal["binary", "ordinal", "choice"]
    labels: list[str] = Field(default_factory=list)
    min: int | None = None
    max: int | None = None
    anchors: dict[int, str] = Field(default_factory=dict)

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
        return self

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
