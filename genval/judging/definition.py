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
from genval.evalset import template_fields

# What a judge prompt can name: the texts under judgment (fenced) and the judge's own settings.
PROMPT_FIELDS = ("task", "scale", "aspect", "aspect_definition",
                 "input", "reference", "candidate", "other", "output_a", "output_b")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Scale(_Strict):
    """What a verdict can be, and what it means: binary labels (positive first), ordinal min..max, or a choice.

    `equivalent` names the labels that count as "the candidate is as good as the other side"
    (a binary scale's default: its positive label; a choice scale's: its labels after A and B,
    the ones a swap turns a flip into, e.g. [tie]);
    `pass_threshold` is the ordinal score at or above which an answer passes (without one, an
    ordinal judge gives its mean score and no equivalence rate). Aggregation reads only these,
    never a judge's words.
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
            if self.pass_threshold is not None and not self.min <= self.pass_threshold <= self.max:
                raise ValueError(f"'pass_threshold' {self.pass_threshold:g} lies outside min..max "
                                 f"({self.min}..{self.max}): give the score at or above which an answer passes, e.g. 4")
            return
        if self.pass_threshold is not None:
            raise ValueError("'pass_threshold' is for ordinal scales; a label scale lists its 'equivalent' labels")
        if self.equivalent is None:
            # By position, as the judge stage reads them: binary positive first; choice A, B, then ties.
            self.equivalent = [self.labels[0]] if self.kind == "binary" else self.labels[2:]
            if not self.equivalent:
                raise ValueError("a choice scale of two labels needs 'equivalent': the labels that count as the "
                                 "candidate being as good as the other side, e.g. [A]")
        unknown = [v for v in self.equivalent if v not in self.labels]
        if unknown or not self.equivalent:
            raise ValueError(f"'equivalent' should list labels of the scale ({', '.join(self.labels)})"
                             + (f"; '{unknown[0]}' is not one" if unknown else ""))

    def equivalent_value(self, verdict: str | None, score: float | None) -> float | None:
        """Gives 1.0 when a verdict (or an ordinal score) counts as equivalent or passing, 0.0 when not, None if unknown."""
        if self.kind == "ordinal":  # the verdict (as calibration compares it with people), else the score
            if self.pass_threshold is None:
                return None
            value = float(verdict) if verdict else (score if score is not None and score == score else None)
            return None if value is None else float(value >= self.pass_threshold)
        return None if verdict is None else float(verdict in self.equivalent)

    @property
    def worst_score(self) -> float:
        """Gives the score of the worst answer: the ordinal minimum, else 0 (not equivalent, or the other side wins)."""
        return float(self.min) if self.kind == "ordinal" else 0.0

    @property
    def counts_equivalence(self) -> bool:
        """Says whether the scale says what counts as equivalent (an ordinal one only with a pass_threshold)."""
        return self.kind != "ordinal" or self.pass_threshold is not None

    def meaning(self) -> str:
        """Gives in words what the judge's equivalence rate counts."""
        if self.kind == "ordinal":
            if self.pass_threshold is None:
                return f"no pass_threshold: the mean score on {self.min}..{self.max}, no equivalence rate"
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
    """How the answer is read: a final tagged line, a JSON object, or the whole answer as one choice.

    A JSON parser's `schema` is the answer's shape, sent as structured output where the engine
    supports it (OpenAI `response_format`, vLLM `StructuredOutputsParams`), so the verdict's
    place is fixed; by default an object holding only `key`, one of the scale's tokens.
    """

    kind: Literal["tagged", "json", "choice"]
    tag: str = "VERDICT"
    key: str = "verdict"
    schema_: dict | None = Field(None, alias="schema")

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    @model_validator(mode="after")
    def _schema_holds_key(self):
        if self.schema_ is None:
            return self
        if self.kind != "json":
            raise ValueError("'schema' applies to a json parser only")
        from jsonschema import SchemaError, validators

        try:
            validators.validator_for(self.schema_).check_schema(self.schema_)
        except SchemaError as exc:
            raise ValueError(f"'schema' is not a valid JSON Schema ({exc.message})") from None
        if self.schema_.get("type") != "object" or self.key not in (self.schema_.get("properties") or {}) \
                or self.key not in (self.schema_.get("required") or []):
            raise ValueError(f"'schema' should be an object schema with '{self.key}' among its properties and required")
        return self


class PromptTemplate(_Strict):
    system: str | None = None
    user: str

    @field_validator("system", "user")
    @classmethod
    def _known_fields(cls, value):
        for name in template_fields(value or ""):
            if name not in PROMPT_FIELDS:
                raise ValueError(f"the prompt names '{{{name}}}', which a judge prompt cannot fill "
                                 f"(it can: {', '.join(PROMPT_FIELDS)}); write '{{{{{name}}}}}' for literal braces")
        return value


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
    # For the people who rate (the rating page shows it; without one, the description and the scale):
    # what to look for, in their words. The prompt is the model's, with its fences and placeholders.
    guideline: str = ""
    mode: Literal["pointwise", "pairwise"]
    scale: Scale
    prompt: PromptTemplate
    parser: Parser
    parameters: Parameters = Field(default_factory=Parameters)
    aspects: dict[str, str] = Field(default_factory=dict)  # aspect → its definition, for {aspect_definition}
    aspect: str | None = None  # the human-rated aspect this judge answers (e.g. consistency)
    validation: dict | None = None  # measured agreement with humans, copied from a calibration.json

    def answer_schema(self) -> dict | None:
        """Gives the JSON Schema a json-parser judge answers in (None for other parsers), the verdict's values fixed."""
        if self.parser.kind != "json":
            return None
        if self.parser.schema_ is not None:
            return self.parser.schema_
        values = [int(t) for t in self.scale.tokens] if self.scale.kind == "ordinal" else list(self.scale.tokens)
        return {"type": "object", "properties": {self.parser.key: {"enum": values}},
                "required": [self.parser.key], "additionalProperties": False}

    @field_validator("guideline")
    @classmethod
    def _for_people(cls, value):
        named = [f for f in template_fields(value) if f in PROMPT_FIELDS]
        if named:
            raise ValueError(f"the guideline is for people and is shown as written: '{{{named[0]}}}' would reach them "
                             "as a placeholder; describe what to look for in words")
        return value

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
        raise validation_error(exc, str(path), text, Definition) from None
