"""The score stage: every configured metric for every pair the data allows, and classification.

Reads `examples` and `outputs`; writes `scores` (one row per example × pair × metric),
`metrics.json` (each metric column's settings, corpus-level numbers per pair, warnings); for a
classification task or an extraction `label_field` the label rows too (aggregate summarises them). Pairs:
`<role>~teacher` for each candidate (fidelity), `<role>~reference` for each role where the
example has a reference (task quality); a single-output metric (format checks) is scored per
role, with the role as pair. All pairs of one metric go to it in one call, so a text that
appears in two pairs is tokenized or embedded once.
"""

from __future__ import annotations

import pandas as pd

from genval.config import RunConfig
from genval.metrics import Metric, MetricContext, MetricResult, get_metric
from genval.numbers import FAILED_DETAIL
from genval.progress import Progress
from genval.runfolder import Run

SCORE_COLUMNS = ["id", "pair", "metric", "value", "detail"]


def pair_texts(examples: pd.DataFrame, outputs: pd.DataFrame, roles: list[str]) -> dict[str, pd.DataFrame]:
    """Gives, per pair name, a frame of `id`, `candidate`, `other`: the rows where both sides exist."""
    ok = outputs[outputs["error"].isna()]
    text = {role: ok[ok["role"] == role].set_index("id")["text"].fillna("") for role in roles}
    pairs: dict[str, pd.DataFrame] = {}
    reference = examples.set_index("id")["reference"].dropna()
    for role in roles:
        if role != "teacher":
            joined = pd.concat([text[role].rename("candidate"), text["teacher"].rename("other")], axis=1, join="inner")
            pairs[f"{role}~teacher"] = joined.reset_index(names="id")
    for role in roles:
        joined = pd.concat([text[role].rename("candidate"), reference.rename("other")], axis=1, join="inner")
        if len(reference):  # kept when empty (every output failed): its failures still count
            pairs[f"{role}~reference"] = joined.reset_index(names="id")
    return pairs


def pair_scope(examples: pd.DataFrame, roles: list[str]) -> dict[str, set[str]]:
    """Gives, per pair (and per role, for single-output metrics), the ids it is scored on when nothing fails.

    A `<role>~teacher` pair and a role's own format checks cover every example; a
    `<role>~reference` pair the examples with a reference. An id of the scope without a
    scored row is a failed or missing output: it gets its metric's worst value.
    """
    ids = set(examples["id"].astype(str))
    with_reference = set(examples.loc[examples["reference"].notna(), "id"].astype(str))
    scope = {role: ids for role in roles}
    scope.update({f"{role}~teacher": ids for role in roles if role != "teacher"})
    if with_reference:
        scope.update({f"{role}~reference": with_reference for role in roles})
    return scope


def failure_rows(metric: Metric, result: MetricResult, jobs: dict[str, pd.DataFrame],
                 scope: dict[str, set[str]]) -> list[pd.DataFrame]:
    """Gives a row at the worst value (genval.numbers) for each id of a pair's scope that has no output.

    A column whose worst end is unbounded (an absolute error) gets no such row: its number
    is over the answered examples, and the summary says how many failed.
    """
    frames = []
    for pair, frame in jobs.items():
        missing = sorted(scope.get(pair, set()) - set(frame["id"].astype(str)))
        if not missing:
            continue
        for column in result.values:
            value = metric.worst(column)
            if value is not None:
                frames.append(pd.DataFrame({"id": missing, "pair": pair, "metric": column,
                                            "value": pd.array([value] * len(missing), dtype="Float64"),
                                            "detail": FAILED_DETAIL}))
    return frames


def _stack(jobs: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[tuple[str, int, int]]]:
    """Gives all jobs' rows in one frame (with a `pair` column) and each pair's (name, start, end)."""
    frames, segments, start = [], [], 0
    for pair, frame in jobs.items():
        if len(frame):
            frames.append(frame.assign(pair=pair))
            segments.append((pair, start, start + len(frame)))
            start += len(frame)
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), segments


def _rows(result: MetricResult, batch: pd.DataFrame) -> list[pd.DataFrame]:
    frames = []
    for column, values in result.values.items():
        details = result.details.get(column)
        frames.append(pd.DataFrame({
            "id": batch["id"].values, "pair": batch["pair"].values, "metric": column,
            "value": pd.array([None if v is None else float(v) for v in values], dtype="Float64"),
            "detail": details if details is not None else [None] * len(values),
        }))
    return frames


def score(run: Run, config: RunConfig, progress: Progress) -> dict:
    """Scores every pair with every configured metric, then labels; gives the stage's record."""
    examples = run.read_table("examples")
    outputs = run.read_table("outputs")
    roles = config.roles
    pairs = pair_texts(examples, outputs, roles)
    ok = outputs[outputs["error"].isna()]
    singles = {role: ok[ok["role"] == role][["id", "text"]].fillna({"text": ""}) for role in roles}
    schema = config.load_schema()
    specs = config.metric_specs
    metrics = [get_metric(s.name) for s in specs]
    frames, summary = [], {"settings": {}}
    units = sum(len(p) for p in pairs.values()) * sum(m.kind == "pair" for m in metrics) + \
        sum(len(s) for s in singles.values()) * sum(m.kind == "single" for m in metrics)
    scope = pair_scope(examples, roles)
    with progress.bar("score", total=units, unit="score") as bar:
        for spec, metric in zip(specs, metrics):
            jobs = pairs if metric.kind == "pair" else singles
            batch, segments = _stack(jobs)
            if not len(batch):
                continue
            ctx = MetricContext(task=config.task, options=spec.options, schema=schema, labels=config.labels,
                                label_field=config.label_field, cache_dir=str(run.root), segments=segments,
                                ids=batch["id"].tolist())
            if metric.kind == "pair":
                result = metric.func(batch["candidate"].tolist(), batch["other"].tolist(), ctx)
            else:
                result = metric.func(batch["text"].tolist(), ctx)
            _merge(summary, result)
            frames.extend(_rows(result, batch))
            frames.extend(failure_rows(metric, result, jobs, scope))
            bar.update(len(batch))
    record = {}
    from genval.metrics import classification

    if classification.applies(config):
        frames.append(_classify(run, config, examples, outputs, progress))
        record["classification"] = True
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
    run.write_table("scores", scores[SCORE_COLUMNS])
    run.write_json("metrics.json", summary)
    for note in summary.get("warnings", []):
        progress.say(f"score: {note}")
    return {"rows": len(scores), **record}


def _merge(summary: dict, result: MetricResult) -> None:
    """Adds a metric's settings, corpus numbers and notes to metrics.json's content."""
    summary["settings"].update(result.settings)
    for key, value in result.summary.items():
        if isinstance(value, dict):
            summary.setdefault(key, {}).update(value)
        else:
            summary[key] = value
    if result.notes:
        summary.setdefault("warnings", []).extend(result.notes)


def _classify(run: Run, config: RunConfig, examples, outputs, progress: Progress) -> pd.DataFrame:
    """Gives the per-example label rows for the scores table (the aggregate stage summarises them)."""
    from genval.metrics.classification import label_table, score_rows, signatures

    table, _ = label_table(examples, outputs, config)
    return score_rows(table, signatures(config)["kl"])
