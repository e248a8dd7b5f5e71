"""The metric registry: a metric is a small function registered by name, with a typed options model.

A pair metric takes candidate texts and the texts they are compared with; a single metric
takes the candidate texts alone (format checks). Each returns one or more columns of numbers,
one value per row, plus the settings string that says exactly how the number was made
(after sacrebleu's signatures), so two results are comparable or visibly not.

A metric sees one batch of rows at a time (map); a number over the whole corpus is never
computed inside it. Where a metric has one (corpus BLEU, field F1, R²), it returns per-row
sufficient statistics (`MetricResult.stats`) and declares a `Corpus` reducer that adds them up
(sacrebleu's own design: per-segment statistics, then `_compute_score_from_stats`). Where the
map itself needs something of the whole corpus first (BERTScore's idf, the field names), the
metric declares a `Prepass`: a map over the same batches and a merge, run before its map.

Against the reference, an example may give several references (a list `reference`): a metric
registered with `references=True` then gets, in that row's place in `others`, a tuple of every
reference text, and reduces over them the way its library does (sacrebleu's multi-reference
statistics, rouge-score's `score_multi`, bert-score's max) or as its `reduce` option says; the
signature of each row names the number of references and the reduction (`row_settings`). A
fidelity pair's other side is one text, as before.

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
    # The stage scores all pairs of a batch in one call (so a text shared by two pairs is
    # tokenized or embedded once); `segments` says which rows belong to which pair, and `ids`
    # gives each row's example id, for metrics that work per pair or per example.
    segments: list[tuple[str, int, int]] = field(default_factory=list)  # (pair, start, end)
    ids: list[str] | None = None
    prepared: Any = None  # what the metric's Prepass gathered over the whole corpus, if it has one
    # every metric of the run as (name, options): metrics that can share work (one encoder pass
    # for BERTScore and embeddings) see whether their partner runs, with which settings
    peers: tuple = ()
    # For a metric that declares them (`register(inputs=..., role_models=True)`): the example columns it reads,
    # aligned with the rows (e.g. `prompt`), and the config's model of each role, to run the models themselves.
    inputs: dict[str, list] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricResult:
    """Columns of per-row numbers (name → values; None where a row cannot be scored) and the settings."""

    values: dict[str, list[float | None]]
    settings: dict[str, str]  # column name → signature
    details: dict[str, list[str | None]] = field(default_factory=dict)  # column name → per-row note
    # column name → per-row sufficient statistics (a sequence of numbers, or None) for its Corpus reducer
    stats: dict[str, list] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)  # settings that hold for the whole run (the engine)
    notes: list[str] = field(default_factory=list)  # warnings for the user, kept in metrics.json
    # note template with `{}` slots → counts, summed over batches; kept when its first count is > 0
    counts: dict[str, list[int]] = field(default_factory=dict)
    # column name → per-row signature, where rows differ (the number of references); else `settings` holds
    row_settings: dict[str, list[str]] = field(default_factory=dict)


Other = str | tuple  # one text, or (a row with several references) a tuple of reference texts


def reference_lists(others: list[Other]) -> list[tuple[str, ...]]:
    """Gives each row's other side as a tuple of texts (one text: a tuple of one)."""
    return [o if isinstance(o, tuple) else (o,) for o in others]


def spread(candidates: list[str], others: list[Other]) -> tuple[list[str], list[str], list[int]]:
    """Gives one (candidate, reference) row per reference of each row, and each such row's original row."""
    cands, refs, owner = [], [], []
    for i, (cand, group) in enumerate(zip(candidates, reference_lists(others))):
        cands += [cand] * len(group)
        refs += list(group)
        owner += [i] * len(group)
    return cands, refs, owner


def reduce_rows(values, owner: list[int], n: int, how: str) -> list[float]:
    """Gives per original row the max or mean of its references' values (`spread`'s owner index).

    A reference whose value is NaN (not scorable) is left out of its row's max or mean; a row
    with no scorable reference is NaN.
    """
    import pandas as pd

    groups = pd.Series(values, dtype="float64").groupby(pd.Series(owner, dtype="int64"))
    out = groups.max() if how == "max" else groups.mean()
    return [float(v) for v in out.reindex(range(n)).to_numpy(dtype="float64", na_value=float("nan"))]


def with_references(signature: str, others: list[Other], reduce: str) -> list[str]:
    """Gives each row's signature: `signature` plus `|refs:k|reduce:…` where a row has several references.

    A row with one reference (every fidelity pair) keeps `signature` as it was, so single-reference
    numbers stay comparable with earlier runs.
    """
    return [f"{signature}|refs:{len(o)}|reduce:{reduce}" if isinstance(o, tuple) and len(o) > 1 else signature
            for o in others]


@dataclass(frozen=True)
class Corpus:
    """A corpus number made from per-row statistics: which score columns carry them, and how they add up.

    `partial(column, rows)` reads the `stats` (and `signature`) of some rows of one pair and one
    column; `merge` adds two partials; `finish` gives the entries of the pair's corpus numbers.
    Any split of the rows into batches gives the same numbers.
    """

    columns: tuple[str, ...]  # score columns (or patterns, `field:*`) whose rows carry the statistics
    partial: Callable[[str, Any], Any]
    merge: Callable[[Any, Any], Any]
    finish: Callable[[Any], dict]


@dataclass(frozen=True)
class Prepass:
    """What a metric gathers over the whole corpus before its map: a map over batches and a merge.

    `map(candidates, others, ctx)` gives a partial for one batch (ctx.segments as for the metric);
    `merge(partials)` gives `ctx.prepared` for the metric's map. Partials are merged in batch order.
    """

    map: Callable[..., Any]
    merge: Callable[[list], Any]
    needed: Callable[[MetricContext], bool] = lambda ctx: True  # False: the map needs nothing of the corpus


@dataclass
class Metric:
    name: str
    func: Callable[..., MetricResult]
    # "pair": (candidates, others, ctx); "fidelity": the same, over the `<role>~teacher` pairs only;
    # "single": (candidates, ctx)
    kind: str
    tasks: tuple[str, ...] | None = None
    options: type[Options] = Options
    numbers: dict[str, NumberSpec] = field(default_factory=dict)  # column (or pattern) → what it means
    corpus: Corpus | None = None
    prepass: Prepass | None = None
    model: bool = False  # holds a model (BERTScore, embeddings): a worker builds it once and keeps it
    references: bool = False  # takes several references per row (a tuple in `others`)
    inputs: tuple[str, ...] = ()  # example columns the metric reads besides the texts (`ctx.inputs`)
    role_models: bool = False  # runs the roles' own models (`ctx.models`): the score stage's hash holds them
    # check(config, options, place): what the metric needs of the run config, checked before anything is written
    check: Callable[..., None] | None = None

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
             numbers: dict[str, NumberSpec] | None = None, corpus: Corpus | None = None,
             prepass: Prepass | None = None, model: bool = False, references: bool = False,
             inputs: tuple[str, ...] = (), role_models: bool = False, check: Callable[..., None] | None = None):
    """Registers the decorated function as metric `name`, taking the options model `options`.

    The function is called with `ctx.options` already checked into that model; a caller that
    gives a dict (a test, a script) gets it checked on the way in. `numbers` declares what each
    column the metric returns means (`genval.numbers.NumberSpec`: direction, range, printed
    decimals), keyed by column name or pattern (`rouge*`); `corpus` its corpus numbers,
    `prepass` what its map needs of the whole corpus, `model` whether it holds a model,
    `references` whether it takes several references per row, `inputs` the example columns it
    reads (`ctx.inputs`), `role_models` whether it runs the roles' models (`ctx.models`), `check`
    what it needs of the run config (called by `genval validate` and before a run writes).
    """

    def wrap(func):
        metric = Metric(name=name, func=func, kind=kind, tasks=tasks, options=options,
                        numbers=dict(numbers) if numbers else {}, corpus=corpus, prepass=prepass, model=model,
                        references=references, inputs=tuple(inputs), role_models=role_models, check=check)

        @functools.wraps(func)
        def call(*args):
            *texts, ctx = args
            ctx = replace(ctx, options=metric.parse_options(ctx.options))
            return func(*texts, ctx)

        metric.func = call
        METRICS[name] = metric
        return call

    return wrap
