"""The metric registry: a metric is a small function registered by name.

A pair metric takes candidate texts and the texts they are compared with; a single metric
takes the candidate texts alone (format checks). Each returns one or more columns of numbers,
one value per row, plus the settings string that says exactly how the number was made
(after sacrebleu's signatures), so two results are comparable or visibly not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class MetricContext:
    """What a metric may need beyond the texts: the task, its schema and labels, the metric's options."""

    task: str
    options: dict[str, Any] = field(default_factory=dict)
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
    options: tuple[str, ...] = ()
    numbers: dict[str, Any] = field(default_factory=dict)  # column (or pattern) → genval.registry.NumberSpec


METRICS: dict[str, Metric] = {}


def register(name: str, kind: str = "pair", tasks: tuple[str, ...] | None = None, options: tuple[str, ...] = (),
             numbers: dict[str, Any] | None = None):
    """Registers the decorated function as metric `name`; `options` are the option keys it accepts.

    `numbers` declares what each column the metric returns means (`genval.registry.NumberSpec`:
    direction, range, printed decimals), keyed by column name or pattern (`rouge*`).
    """

    def wrap(func):
        METRICS[name] = Metric(name=name, func=func, kind=kind, tasks=tasks, options=options,
                               numbers=dict(numbers or {}))
        return func

    return wrap


def get_metric(name: str) -> Metric:
    from genval.errors import GenvalError

    import genval.metrics  # noqa: F401  (fills the registry)

    if name not in METRICS:
        raise GenvalError(f"metrics: unknown metric '{name}' (known: {', '.join(sorted(METRICS))})")
    return METRICS[name]
