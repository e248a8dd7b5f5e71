"""The metric registry: a metric is a small function registered by name, with a typed options model.

A pair metric takes candidate texts and the texts they are compared with; a single metric
takes the candidate texts alone (format checks). Each returns one or more columns of numbers,
one value per row, plus the settings string that says exactly how the number was made
(after sacrebleu's signatures), so two results are comparable or visibly not.

Each metric declares its options as a pydantic model (strict: `lowercase: "false"` is not a
boolean, an unknown option is an error). The config's options are checked against it before
a run writes anything, and the metric function gets the typed object, never a raw dict.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, ValidationError

from genval.errors import GenvalError
from genval.numbers import BUILTIN, NumberSpec, lookup


class Options(BaseModel):
    """A metric's options: no unknown keys, no coercion. A metric without options takes this one."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass
class MetricContext:
    """What a metric may need beyond the texts: the task, its schema and labels, the metric's options."""

    task: str
    options: Any = field(default_factory=dict)  # the metric's Options object (a dict is checked into one)
    schema: dict | None = None
    labels: list[str] | None = None
    label_field: str | None = None
    cache_dir: str | None = None
    # The stage scores all pairs of a metric in one call (so a text shared by two pairs is
    # tokenized or embedded once); `segments` says which rows belong to which pair, and `ids`
    # gives each row's example id, for metrics that summarise per pair or split work by example.
    segments: list[tuple[str, int, int]] = field(default_factory=list)  # (pair, start, end)
    ids: list[str] | None = None


@dataclass
class MetricResult:
    """Columns of per-row numbers (name → values; None where a row cannot be scored) and the settings."""

    values: dict[str, list[float | None]]
    settings: dict[str, str]  # column name → signature
    details: dict[str, list[str | None]] = field(default_factory=dict)  # column name → per-row note
    summary: dict[str, Any] = field(default_factory=dict)  # corpus-level numbers, merged into metrics.json
    notes: list[str] = field(default_factory=list)  # warnings for the user, kept in metrics.json


@dataclass
class Metric:
    name: str
    func: Callable[..., MetricResult]
    kind: str  # "pair": (candidates, others, ctx); "single": (candidates, ctx)
    tasks: tuple[str, ...] | None = None
    options: type[Options] = Options
    numbers: dict[str, NumberSpec] = field(default_factory=dict)  # column (or pattern) → what it means

    def worst(self, column: str) -> float | None:
        """Gives the value a failed output counts as in `column` (genval.numbers); None when unbounded or undeclared."""
        found = lookup(self.numbers, column) or lookup(BUILTIN, column)
        return found.worst if found else None

    def parse_options(self, given, place: str = "") -> Options:
        """Gives `given` (a dict from the config) as this metric's typed options, or a one-line error.

        `place` (e.g. `run.yaml:12`) opens the message.
        """
        place = f"{place}: " if place else ""
        if isinstance(given, self.options):
            return given
        if not isinstance(given, dict):
            raise GenvalError(f"{place}the options of metric '{self.name}' should be a mapping")
        try:
            return self.options.model_validate(given)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "(options)"
            known = ", ".join(self.options.model_fields) or "none"
            if err["type"] == "extra_forbidden":
                raise GenvalError(f"{place}metric '{self.name}' has no option '{key}' (it takes: {known})") from None
            found = repr(err.get("input"))
            found = found if len(found) <= 40 else found[:37] + "..."
            raise GenvalError(f"{place}metric option '{self.name}.{key}': "
                              f"{err['msg'].removeprefix('Value error, ')}, found {found}") from None


METRICS: dict[str, Metric] = {}


def register(name: str, kind: str = "pair", tasks: tuple[str, ...] | None = None, options: type[Options] = Options,
             numbers: dict[str, NumberSpec] | None = None):
    """Registers the decorated function as metric `name`, taking the options model `options`.

    The function is called with `ctx.options` already checked into that model; a caller that
    gives a dict (a test, a script) gets it checked on the way in. `numbers` declares what each
    column the metric returns means (`genval.numbers.NumberSpec`: direction, range, printed
    decimals), keyed by column name or pattern (`rouge*`).
    """

    def wrap(func):
        metric = Metric(name=name, func=func, kind=kind, tasks=tasks, options=options, numbers=dict(numbers or {}))

        @functools.wraps(func)
        def call(*args):
            *texts, ctx = args
            ctx = replace(ctx, options=metric.parse_options(ctx.options))
            return func(*texts, ctx)

        metric.func = call
        METRICS[name] = metric
        return call

    return wrap
