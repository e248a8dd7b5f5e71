"""The per-example numbers of a run in one long table: scores, judge verdicts, failed generations.

Every aggregate (overall, per slice, per run in `compare`) is a group-by over this table, so
a number in summary.json always means the same mean over the same examples.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from genval.run import Run

COLUMNS = ["id", "pair", "metric", "value"]
# Verdicts that count as "the student is as good as the teacher": a pointwise judge's
# `equivalent`, and a pairwise judge's `tie` (neither output preferred).
EQUIVALENT = {"equivalent", "tie"}
JUDGE_PREFIX = "judge:"
FORMAT_METRICS = ("json_valid", "schema_valid")


def judge_metric(judge: str, what: str = "equivalent") -> str:
    """Gives the metric name a judge's per-example number has in the long table."""
    return f"{JUDGE_PREFIX}{judge}:{what}"


def _read(run: Run, name: str) -> pd.DataFrame | None:
    return run.read_table(name) if run.has(name) else None


def score_rows(run: Run) -> pd.DataFrame:
    """Gives the score stage's rows as id, pair, metric, value (float, NaN = not scorable)."""
    scores = _read(run, "scores")
    if scores is None or scores.empty:
        return pd.DataFrame(columns=COLUMNS)
    out = scores[["id", "pair", "metric"]].copy()
    out["id"] = out["id"].astype(str)
    out["value"] = pd.to_numeric(scores["value"], errors="coerce").astype(float).to_numpy()
    return out


def judge_rows(run: Run) -> pd.DataFrame:
    """Gives one row per judged example: 1.0 when the verdict is equivalent, 0.0 when not, NaN unparsed."""
    judgments = _read(run, "judgments")
    if judgments is None or judgments.empty:
        return pd.DataFrame(columns=COLUMNS)
    verdict = judgments["verdict"].astype("string").str.lower()
    parsed = judgments["parsed"].fillna(False).astype(bool) & verdict.notna()
    equivalent = np.where(parsed, verdict.isin(EQUIVALENT).astype(float), np.nan)
    frames = [pd.DataFrame({"id": judgments["id"].astype(str), "pair": judgments["pair"],
                            "metric": [judge_metric(j) for j in judgments["judge"]], "value": equivalent})]
    if "score" in judgments and judgments["score"].notna().any():
        frames.append(pd.DataFrame({"id": judgments["id"].astype(str), "pair": judgments["pair"],
                                    "metric": [judge_metric(j, "score") for j in judgments["judge"]],
                                    "value": pd.to_numeric(judgments["score"], errors="coerce").astype(float)}))
    return pd.concat(frames, ignore_index=True)


def generation_rows(run: Run) -> pd.DataFrame:
    """Gives one row per output: metric `generation_error`, 1.0 when the model call failed."""
    outputs = _read(run, "outputs")
    if outputs is None or outputs.empty:
        return pd.DataFrame(columns=COLUMNS)
    return pd.DataFrame({"id": outputs["id"].astype(str), "pair": outputs["role"], "metric": "generation_error",
                         "value": outputs["error"].notna().astype(float)})


def example_numbers(run: Run) -> pd.DataFrame:
    """Gives every per-example number of the run: scores, judge verdicts and failed generations."""
    frames = [f for f in (score_rows(run), judge_rows(run), generation_rows(run)) if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    out["value"] = out["value"].astype(float)
    return out


def wide(numbers: pd.DataFrame, pair: str, metric: str) -> pd.Series:
    """Gives one per-example number as a Series indexed by id (mean over duplicate rows, e.g. judge samples)."""
    rows = numbers[(numbers["pair"] == pair) & (numbers["metric"] == metric)]
    return rows.groupby("id")["value"].mean()


def example_labels(examples: pd.DataFrame, label_source: str | None) -> pd.Series:
    """Gives each example's gold label (by id): the `label` column, or a field of the reference JSON."""
    ids = examples["id"].astype(str)
    if label_source and label_source.startswith("field:"):
        field = label_source.split(":", 1)[1]

        def pick(text):
            try:
                value = json.loads(text) if isinstance(text, str) else None
            except json.JSONDecodeError:
                return None
            return None if not isinstance(value, dict) or value.get(field) is None else str(value.get(field))

        return pd.Series([pick(t) for t in examples["reference"]], index=ids)
    if "label" in examples:
        return pd.Series(examples["label"].where(examples["label"].notna(), None).tolist(), index=ids)
    return pd.Series([None] * len(ids), index=ids)
