"""A number as summary.json holds it: its value, interval and n, how the interval was made, and what it means.

Every part of summary.json is a `Model`: pydantic with `extra="forbid"`, so a key the model does
not know — a renamed one — fails validation loudly instead of reading as "no value". A model
field that aggregate writes only sometimes has a default, and `dump` leaves out what was never
set, so the JSON is the one aggregate built. Only aggregate (genval.analysis) builds numbers;
everything else reads these models.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from genval.numbers import NumberSpec

Interval = Annotated[list[float | None], Field(min_length=2, max_length=2,
                                               description="[lo, hi]; an end is null where there is none")]
Share = Annotated[float, Field(ge=0, le=1)]


class Model(BaseModel):
    """The base of every part of summary.json: typed, and a key it does not know is an error."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def dump(self) -> dict:
        """Gives the part as the JSON-ready dict aggregate wrote: every key it set, in the model's order."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def _name_fields(self, *fields: str) -> None:
        """Names each of these fields' numbers after the field (a part built with `model_construct` may lack some)."""
        for field in fields:
            number = getattr(self, field, None)
            if number is not None:
                number.named(field)


class Estimate(Model):
    """A point value with its interval over n examples."""

    value: float | None
    ci: Interval
    n: int = Field(ge=0)

    def __getitem__(self, key: str):
        """Gives a field by its JSON key (`n["value"]`): a number reads as the summary.json it came from."""
        if key not in type(self).model_fields and key != "lambda":
            raise KeyError(key)
        return getattr(self, "lam" if key == "lambda" else key)

    @property
    def lo(self) -> float | None:
        return self.ci[0]

    @property
    def hi(self) -> float | None:
        return self.ci[1]


class Number(Estimate):
    """One number: value, interval, n, the interval's `method`, a `note` on why a part is missing — and its meaning.

    `meaning` is the registry's entry (direction, range, decimals) for the name the number stands
    under: its metric, or the figure it is (`accuracy_retention`, `ece`, …), set by the block
    that holds it.
    """

    method: str | None = None
    note: str | None = None
    _name: str | None = PrivateAttr(default=None)

    def named(self, name: str) -> "Number":
        """Gives the number with the name it stands under (once: the first holder names it)."""
        if self._name is None:
            self._name = name
        return self

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def meaning(self) -> NumberSpec | None:
        """Gives the registry's entry of the number's name (genval.registry), None when unknown or unnamed."""
        from genval import registry   # the registry reads the metrics package: imported when asked

        return registry.spec(self._name) if self._name else None


class _Metric(Model):
    metric: str


class NamedNumber(Number, _Metric):
    """A number that says which metric it is of: a headline, a task retention, a content quality."""


class Headline(NamedNumber):
    """The one number a run (or a slice) is headed by, `metric` naming it (`rougeL (student~reference)`); a slice's
    adds its minimum detectable effect."""

    def model_post_init(self, context) -> None:
        self.named(self.metric.split(" (")[0])

    mde: float | None = Field(default=None, description="Minimum detectable effect at this n: (z_(1-a/2) + z_0.8) "
                                                        "* SE, SE from the interval (Bloom 1995)")


class OnJudged(Estimate):
    """A corrected judge rate over the judged examples only (the unanswered left out)."""


class RoganGladen(Estimate):
    """The judge's equivalence rate corrected by its sensitivity and specificity on the human-rated examples
    (Rogan & Gladen 1978); value null, with a note, when J is too small or no example here is rated."""

    human_n: int
    raw: float | None
    sensitivity: float | None
    specificity: float | None
    youden_j: float | None
    method: str
    note: str | None
    on_judged: OnJudged


class Classic(Model):
    """The original PPI (λ = 1), read off the same resampled examples."""

    value: float | None
    ci: Interval


class PPI(Estimate):
    """The judge's rate corrected by prediction-powered inference, PPI++ (Angelopoulos et al. 2023): `lambda` the
    power-tuning weight, `classic` the original PPI, `normal_ci` the paper's normal interval."""

    human_n: int
    raw: float | None
    lam: float | None = Field(alias="lambda")
    normal_ci: Interval
    classic: Classic | None
    method: str
    note: str | None
    on_judged: OnJudged


# A number as a gate rule's interval test reads it: any of these shapes.
AnyNumber = Number | NamedNumber | RoganGladen | PPI


def name_pairs(metrics: dict | None) -> None:
    """Names every number of a pair → metric → number dict by its metric."""
    for numbers in metrics.values() if metrics else ():
        name_all(numbers)


def name_all(numbers: dict | None, name: str | None = None) -> None:
    """Names every number of a dict by its key (or by `name`)."""
    for key, number in numbers.items() if numbers else ():
        if number is not None:
            number.named(name or key)
