"""The score stage: every configured metric for every pair the data allows, and the labels, as a map over batches.

Reads `examples` and `outputs` through the one join (genval.pairs.joined), batch by batch; writes
`scores` (one row per example × pair × metric column: `value`, `detail`, the number's `signature`
and, where a corpus number needs them, its sufficient statistics `stats`) and `metrics.json`
(each column's settings, the engines, warnings). Nothing aggregated: corpus numbers are a reduce
over `stats` (genval.metrics.corpus), intervals and classification summaries are the aggregate's.
Pairs: `<role>~teacher` for each candidate (fidelity), `<role>~reference` for each role where the
example has a reference (task quality); a single-output metric (format checks) is scored per
role, with the role as pair. All pairs of a batch go to a metric in one call, so a text that
appears in two pairs is tokenized or embedded once. A metric that needs something of the whole
corpus first (BERTScore idf, the field names, an unconfigured label set) gets it from a prepass:
a map over the same batches and a merge.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from genval.config import RunConfig
from genval.executors import Source
from genval.metrics import MetricContext, MetricResult, get_metric
from genval.metrics import classification as cls
from genval.numbers import FAILED_DETAIL
from genval.pairs import REFERENCE, score_pairs
from genval.progress import Progress
from genval.runfolder import Run, table_schema

SCORE_COLUMNS = ["id", "pair", "metric", "value", "detail", "signature", "stats"]
LABELS_KEY = "labels"  # the prepass entry of the label set


def score_schema():
    """Gives the scores table's Arrow schema (fixed, so a batch of only failures or no statistics writes alike)."""
    import pyarrow as pa

    text = (pa.string(), "str")
    return table_schema({"id": text, "pair": text, "metric": text, "value": (pa.float64(), "Float64"), "detail": text,
                         "signature": text, "stats": (pa.list_(pa.float64()), "object")})


def _texts(batch: pd.DataFrame, column: str):
    """Gives a text column as a numpy object array ("" where missing), once per batch (cheap to index)."""
    return batch[column].fillna("").to_numpy(dtype=object)


def pair_jobs(batch: pd.DataFrame, roles: list[str]) -> tuple[dict[str, pd.DataFrame], dict[str, list[str]]]:
    """Gives, per pair, `id`, `candidate`, `other` where both sides exist; and per pair the ids it lacks.

    A `<role>~teacher` pair covers every example, a `<role>~reference` pair those with a
    reference; an example of that scope without a row here had a failed or missing output.
    Where an example gives several references, its `other` against the reference is the tuple
    of them all (genval.metrics.registry: a metric registered with `references=True` takes it).
    """
    ids = batch["id"].astype(str).to_numpy(dtype=object)
    ok = {role: batch[f"{role}.error"].isna().to_numpy() for role in roles}
    text = {role: _texts(batch, f"{role}.text") for role in roles}
    has_ref = batch["reference"].notna().to_numpy() if "reference" in batch else None
    reference = batch["reference"].to_numpy(dtype=object) if has_ref is not None else None
    if "references" in batch and batch["references"].notna().any():  # a list `reference`: every text, as a tuple
        reference = reference.copy()
        for row, many in enumerate(batch["references"]):
            if isinstance(many, str):
                reference[row] = tuple(json.loads(many))
    jobs, missing = {}, {}
    for pair in score_pairs(roles, has_ref is not None and bool(has_ref.any())):
        if pair.other == REFERENCE:
            scope, other, rows = has_ref, reference, has_ref & ok[pair.candidate]
        else:
            scope, other, rows = np.ones(len(ids), dtype=bool), text[pair.other], ok[pair.candidate] & ok[pair.other]
        jobs[pair.name] = pd.DataFrame({"id": ids[rows], "candidate": text[pair.candidate][rows], "other": other[rows]})
        missing[pair.name] = sorted(ids[scope & ~rows])
    return jobs, missing


def fidelity_jobs(jobs: dict[str, pd.DataFrame], missing: dict[str, list[str]]):
    """Gives `pair_jobs`' jobs and missing ids of the `<role>~teacher` pairs only (a metric of kind 'fidelity')."""
    keep = [name for name in jobs if name.endswith("~teacher")]
    return {name: jobs[name] for name in keep}, {name: missing[name] for name in keep}


def _inputs(batch: pd.DataFrame, stacked: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, list]:
    """Gives the example columns a metric reads (`Metric.inputs`), one value per stacked row (by example id)."""
    if not columns or not len(stacked):
        return {}
    position = pd.Index(batch["id"].astype(str)).get_indexer(stacked["id"].astype(str))
    return {column: [None if pd.isna(v) else v for v in batch[column].to_numpy(dtype=object)[position]]
            for column in columns}


def single_jobs(batch: pd.DataFrame, roles: list[str]) -> tuple[dict[str, pd.DataFrame], dict[str, list[str]]]:
    """Gives, per role, `id` and `text` of its answered outputs, and the ids whose output failed."""
    ids = batch["id"].astype(str).to_numpy(dtype=object)
    jobs, missing = {}, {}
    for role in roles:
        rows = batch[f"{role}.error"].isna().to_numpy()
        jobs[role] = pd.DataFrame({"id": ids[rows], "text": _texts(batch, f"{role}.text")[rows]})
        missing[role] = sorted(ids[~rows])
    return jobs, missing


def _stack(jobs: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[tuple[str, int, int]]]:
    """Gives all jobs' rows in one frame (with a `pair` column) and each pair's (name, start, end)."""
    frames, segments, start = [], [], 0
    for pair, frame in jobs.items():
        if len(frame):
            frames.append(frame.assign(pair=pair))
            segments.append((pair, start, start + len(frame)))
            start += len(frame)
    empty = pd.DataFrame(columns=["id", "pair", *next(iter(jobs.values())).columns[1:]]) if jobs else pd.DataFrame()
    return (pd.concat(frames, ignore_index=True) if frames else empty), segments


def _call(metric, batch: pd.DataFrame, ctx: MetricContext):
    if metric.kind != "single":
        return metric.func(batch["candidate"].tolist(), batch["other"].tolist(), ctx)
    return metric.func(batch["text"].tolist(), ctx)


def _rows(result: MetricResult, batch: pd.DataFrame) -> list[pd.DataFrame]:
    frames = []
    for column, values in result.values.items():
        details = result.details.get(column)
        stats = result.stats.get(column)
        frames.append(pd.DataFrame({
            "id": batch["id"].values, "pair": batch["pair"].values, "metric": column,
            "value": pd.array([None if v is None else float(v) for v in values], dtype="Float64"),
            "detail": details if details is not None else [None] * len(values),
            "signature": result.row_settings.get(column, result.settings.get(column)),
            "stats": list(stats) if stats is not None else [None] * len(values),
        }))
    return frames


def failure_rows(metric, result: MetricResult, missing_ids: dict[str, list[str]]) -> list:
    """Gives a row at the worst value (genval.numbers) for each id of a pair's scope that has no output.

    A column whose worst end is unbounded (an absolute error) gets no such row: its number
    is over the answered examples, and the summary says how many failed.
    """
    frames = []
    for pair, missing in missing_ids.items():
        if not missing:
            continue
        for column in result.values:
            value = metric.worst(column)
            if value is not None:
                frames.append(pd.DataFrame({"id": missing, "pair": pair, "metric": column,
                                            "value": pd.array([value] * len(missing), dtype="Float64"),
                                            "detail": FAILED_DETAIL, "signature": result.settings.get(column),
                                            "stats": [None] * len(missing)}))
    return frames


@dataclass
class ScoreTask:
    """The score stage's map: one joined batch → its score rows, and each metric's settings, engines and notes.

    Built once per worker; a model-backed metric (BERTScore, embeddings) loads its model at the
    first batch and keeps it.
    """

    config: RunConfig
    options: list  # each metric's options, typed
    schema: dict | None
    prepared: dict = field(default_factory=dict)  # metric position (or LABELS_KEY) → what its prepass gathered
    cache_dir: str | None = None

    def context(self, i: int, segments, ids, inputs: dict | None = None) -> MetricContext:
        c = self.config
        models = dict(c.models) if get_metric(c.metric_specs[i].name).role_models else {}
        return MetricContext(task=c.task, options=self.options[i], schema=self.schema, labels=c.labels,
                             label_field=c.label_field, cache_dir=self.cache_dir, segments=segments, ids=ids,
                             prepared=self.prepared.get(i), inputs=inputs or {}, models=models,
                             peers=tuple((s.name, o) for s, o in zip(c.metric_specs, self.options)))

    def jobs(self, batch: pd.DataFrame):
        roles = self.config.roles
        pairs = pair_jobs(batch, roles)
        return {"pair": pairs, "single": single_jobs(batch, roles), "fidelity": fidelity_jobs(*pairs)}

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        frames, settings, engines, notes, counts = [], {}, {}, [], {}
        jobs = self.jobs(batch)
        for i, spec in enumerate(self.config.metric_specs):
            metric = get_metric(spec.name)
            pairs, missing = jobs[metric.kind]
            stacked, segments = _stack(pairs)
            ctx = self.context(i, segments, stacked["id"].tolist(), _inputs(batch, stacked, metric.inputs))
            result = _call(metric, stacked, ctx)
            frames.extend(_rows(result, stacked))
            frames.extend(failure_rows(metric, result, missing))
            settings.update(result.settings)
            for column, signatures in result.row_settings.items():  # the multi-reference forms, each named once
                several = set(signatures) - {result.settings.get(column)}
                if several:
                    settings[f"{column}@references"] = sorted(several | set(settings.get(f"{column}@references", [])))
            engines.update(result.summary.get("engine", {}))
            notes.extend(result.notes)
            for template, found in result.counts.items():
                counts[template] = [a + b for a, b in zip(counts.get(template, [0] * len(found)), found)]
        if cls.applies(self.config):
            labels = self.prepared.get(LABELS_KEY) or list(self.config.labels or [])
            rows = cls.score_rows(cls.label_table(batch, self.config, labels), cls.signatures(self.config)["kl"])
            frames.append(rows.assign(signature=[cls.signatures(self.config).get(m) for m in rows["metric"]],
                                      stats=[None] * len(rows)))
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
        out = out.reindex(columns=SCORE_COLUMNS)
        # What metrics.json gathers rides on the batch's first row, as JSON (an internal column, not written).
        about = json.dumps({"settings": settings, "engine": engines, "notes": notes, "counts": counts})
        return out.assign(_about=[about] + [None] * (len(out) - 1)) if len(out) else out.assign(_about=None)


@dataclass
class PrepassTask(ScoreTask):
    """The prepass map: one joined batch → one row holding each prepass's partial (metric position → partial)."""

    wanted: tuple = ()  # metric positions (and LABELS_KEY) whose prepass runs

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        partials = {}
        jobs = self.jobs(batch)
        for i, spec in enumerate(self.config.metric_specs):
            if i not in self.wanted:
                continue
            metric = get_metric(spec.name)
            stacked, segments = _stack(jobs[metric.kind][0])
            ctx = self.context(i, segments, stacked["id"].tolist(), _inputs(batch, stacked, metric.inputs))
            texts = ([stacked["candidate"].tolist(), stacked["other"].tolist()] if metric.kind != "single"
                     else [stacked["text"].tolist(), []])
            partials[i] = metric.prepass.map(*texts, ctx)
        if LABELS_KEY in self.wanted:
            partials[LABELS_KEY] = cls.labels_seen(batch, self.config)
        return pd.DataFrame({"partials": [pickle.dumps(partials)]})  # bytes: any executor carries them as they are


def _source(run: Run, config: RunConfig) -> Source:
    # `references` (several per example) is in every examples table written since multi-reference eval sets
    many = ["references"] if "references" in run.table_columns("examples") else []
    columns = ["reference", *many] + (["label"] if cls.applies(config) else [])
    columns += [c for spec in config.metric_specs for c in get_metric(spec.name).inputs if c not in columns]
    outputs = ("text", "error", "label_probs") if cls.applies(config) else ("text", "error")
    return Source(run, columns=tuple(columns), roles=tuple(config.roles), output_columns=outputs)


def prepare_metrics(run: Run, config: RunConfig, executor, progress: Progress, task: ScoreTask) -> dict:
    """Runs the prepasses the metrics need (one map over the batches for all of them); gives what each gathered."""
    wanted = []
    for i, spec in enumerate(config.metric_specs):
        metric = get_metric(spec.name)
        if metric.prepass is not None and metric.prepass.needed(task.context(i, [], [])):
            wanted.append(i)
    if cls.applies(config) and not config.labels:
        wanted.append(LABELS_KEY)
    if not wanted:
        return {}
    prepass = PrepassTask(**{**task.__dict__, "wanted": tuple(wanted)})
    partials: dict = {key: [] for key in wanted}
    model = any(get_metric(config.metric_specs[i].name).model for i in wanted if i != LABELS_KEY)
    with progress.bar("score (corpus pass)", total=run.table_rows("examples")) as bar:
        for frame in executor.map(_source(run, config), prepass, model=model, bar=bar):
            for found in frame["partials"]:
                for key, partial in pickle.loads(found).items():
                    partials[key].append(partial)
    out = {i: get_metric(config.metric_specs[i].name).prepass.merge(partials[i]) for i in wanted if i != LABELS_KEY}
    if LABELS_KEY in wanted:
        out[LABELS_KEY] = cls.label_set(config, set().union(*partials[LABELS_KEY]), [])
    return out


def score(run: Run, config: RunConfig, progress: Progress, executor) -> dict:
    """Scores every pair with every configured metric, then labels, batch by batch; gives the stage's record."""
    metrics = [get_metric(s.name) for s in config.metric_specs]
    options = [m.parse_options(s.options) for m, s in zip(metrics, config.metric_specs)]
    task = ScoreTask(config=config, options=options, schema=config.load_schema(), cache_dir=str(run.root))
    task = replace(task, prepared=prepare_metrics(run, config, executor, progress, task))
    summary: dict = {"settings": {}, "engine": {}}
    notes: list[str] = []
    counts: dict[str, list[int]] = {}
    rows = 0
    model = any(m.model for m in metrics)
    with run.table_writer("scores", schema=score_schema()) as out, \
            progress.bar("score", total=run.table_rows("examples")) as bar:
        for frame in executor.map(_source(run, config), task, model=model, bar=bar):
            for about in map(json.loads, frame["_about"].dropna()):
                for key, value in about["settings"].items():  # a list (several signatures) gathers over batches
                    known = summary["settings"].get(key)
                    summary["settings"][key] = sorted(set(known) | set(value)) if isinstance(value, list) and \
                        isinstance(known, list) else value
                summary["engine"].update(about["engine"])
                notes.extend(about["notes"])
                for template, found in about["counts"].items():
                    counts[template] = [a + b for a, b in zip(counts.get(template, [0] * len(found)), found)]
            out.write(frame[SCORE_COLUMNS])
            rows += len(frame)
    if not summary["engine"]:
        del summary["engine"]
    warnings = list(dict.fromkeys(notes)) + [t.format(*c) for t, c in counts.items() if c and c[0] > 0]
    if warnings:
        summary["warnings"] = warnings
    run.write_json("metrics.json", summary)
    for note in warnings:
        progress.say(f"score: {note}")
    return {"rows": rows}
