"""The score stage: every configured metric for every pair the data allows.

Reads `examples` and `outputs`; writes `scores` (one row per example × pair × metric) and
`metrics.json` (each metric column's settings). Pairs: `<role>~teacher` for each candidate
(fidelity), `<role>~reference` for each role where the example has a reference (task
quality); a single-output metric (format checks) is scored per role, with the role as pair.
"""

from __future__ import annotations

import pandas as pd

from genval.config import RunConfig
from genval.metrics.registry import MetricContext, get_metric
from genval.progress import Progress
from genval.run import Run

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
        if len(joined):
            pairs[f"{role}~reference"] = joined.reset_index(names="id")
    return pairs


def score(run: Run, config: RunConfig, progress: Progress) -> dict:
    """Scores every pair with every configured metric; gives the stage's record (settings per column)."""
    examples = run.read_table("examples")
    outputs = run.read_table("outputs")
    roles = config.roles
    pairs = pair_texts(examples, outputs, roles)
    ok = outputs[outputs["error"].isna()]
    singles = {role: ok[ok["role"] == role][["id", "text"]].fillna({"text": ""}) for role in roles}
    schema = config.load_schema()
    frames, settings = [], {}
    specs = config.metric_specs
    units = sum(len(p) for p in pairs.values()) * sum(get_metric(s.name).kind == "pair" for s in specs) + \
        sum(len(s) for s in singles.values()) * sum(get_metric(s.name).kind == "single" for s in specs)
    with progress.bar("score", total=units) as bar:
        for spec in specs:
            metric = get_metric(spec.name)
            ctx = MetricContext(task=config.task, options=spec.options, schema=schema, labels=config.labels,
                                label_field=config.label_field, cache_dir=str(run.root))
            jobs = pairs.items() if metric.kind == "pair" else singles.items()
            for pair, frame in jobs:
                if not len(frame):
                    continue
                if metric.kind == "pair":
                    result = metric.func(frame["candidate"].tolist(), frame["other"].tolist(), ctx)
                else:
                    result = metric.func(frame["text"].tolist(), ctx)
                settings.update(result.settings)
                for column, values in result.values.items():
                    details = result.details.get(column)
                    frames.append(pd.DataFrame({
                        "id": frame["id"].values, "pair": pair, "metric": column,
                        "value": pd.array(values, dtype="Float64"),
                        "detail": details if details is not None else [None] * len(values),
                    }))
                bar.update(len(frame))
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
    run.write_table("scores", scores[SCORE_COLUMNS])
    run.write_json("metrics.json", {"settings": settings})
    return {"rows": len(scores)}
