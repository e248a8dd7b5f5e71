"""The per-example numbers of a run in one long table: scores, judge verdicts, failed generations.

Every aggregate (overall, per slice, per run in `compare`) is a group-by over this table, so
a number in summary.json always means the same mean over the same examples.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from genval.errors import GenvalError
from genval.runfolder import Run

COLUMNS = ["id", "pair", "metric", "value"]
JUDGE_PREFIX = "judge:"
FORMAT_METRICS = ("json_valid", "schema_valid")


def judge_metric(judge: str, what: str = "equivalent") -> str:
    """Gives the metric name a judge's per-example number has in the long table."""
    return f"{JUDGE_PREFIX}{judge}:{what}"


def _read(run: Run, name: str) -> pd.DataFrame | None:
    return run.read_table(name) if run.has(name) else None


def score_rows(scores: pd.DataFrame | None) -> pd.DataFrame:
    """Gives the score stage's rows as id, pair, metric, value (float, NaN = not scorable)."""
    if scores is None or scores.empty:
        return pd.DataFrame(columns=COLUMNS)
    out = scores[["id", "pair", "metric"]].copy()
    out["id"] = out["id"].astype(str)
    out["value"] = pd.to_numeric(scores["value"], errors="coerce").astype(float).to_numpy()
    return out


def judge_rows(judgments: pd.DataFrame | None) -> pd.DataFrame:
    """Gives one row per judged example: its `equivalent` (1.0, 0.0, NaN unparsed) and its score.

    What counts as equivalent is the judge file's to say (`scale.equivalent`, or an ordinal
    `pass_threshold`); the judge stage writes it into the judgments table.
    """
    if judgments is None or judgments.empty:
        return pd.DataFrame(columns=COLUMNS)
    if "equivalent" not in judgments:  # a run folder from before the judge stage wrote the meaning
        raise GenvalError("judgments.parquet has no 'equivalent' column (written by an older genval); "
                          "re-run the judge stage: `genval run CONFIG --force judge`")
    frames = [pd.DataFrame({"id": judgments["id"].astype(str), "pair": judgments["pair"],
                            "metric": [judge_metric(j) for j in judgments["judge"]],
                            "value": pd.to_numeric(judgments["equivalent"], errors="coerce").astype(float)})]
    if "score" in judgments and judgments["score"].notna().any():
        frames.append(pd.DataFrame({"id": judgments["id"].astype(str), "pair": judgments["pair"],
                                    "metric": [judge_metric(j, "score") for j in judgments["judge"]],
                                    "value": pd.to_numeric(judgments["score"], errors="coerce").astype(float)}))
    return pd.concat(frames, ignore_index=True)


def generation_rows(outputs: pd.DataFrame | None) -> pd.DataFrame:
    """Gives one row per output: metric `generation_error`, 1.0 when the model call failed."""
    if outputs is None or outputs.empty:
        return pd.DataFrame(columns=COLUMNS)
    return pd.DataFrame({"id": outputs["id"].astype(str), "pair": outputs["role"], "metric": "generation_error",
                         "value": outputs["error"].notna().astype(float)})


def numbers_of(scores: pd.DataFrame | None, judgments: pd.DataFrame | None,
               outputs: pd.DataFrame | None) -> pd.DataFrame:
    """Gives every per-example number of a run's tables: scores, judge verdicts and failed generations.

    A failed output's rows are in it at their worst value (the score and judge stages write
    them); `answered` takes them out again.
    """
    frames = [f for f in (score_rows(scores), judge_rows(judgments), generation_rows(outputs)) if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    out["value"] = out["value"].astype(float)
    return out


def example_numbers(run: Run) -> pd.DataFrame:
    """Gives every per-example number of the run (see `numbers_of`)."""
    return numbers_of(_read(run, "scores"), _read(run, "judgments"), _read(run, "outputs"))


def failed_outputs(outputs: pd.DataFrame | None) -> dict[str, set[str]]:
    """Gives role → ids of the examples whose output failed (or is missing from a replay file)."""
    if outputs is None or outputs.empty:
        return {}
    bad = outputs[outputs["error"].notna()]
    return {role: set(group["id"].astype(str)) for role, group in bad.groupby("role", sort=True)}


def answered(numbers: pd.DataFrame, failed: dict[str, set[str]]) -> pd.DataFrame:
    """Gives `numbers` without the rows that stand for a failed output: the numbers on answered examples only.

    A row stands for a failed output when its pair names a role (`student`, `student~teacher`)
    whose output failed on that example; `generation_error` rows stay.
    """
    if not failed or numbers.empty:
        return numbers
    drop = np.zeros(len(numbers), dtype=bool)
    pairs = numbers["pair"].astype(str)
    counted = (numbers["metric"] != "generation_error").to_numpy()
    for pair in pairs.unique():
        roles = [r for r in pair.split("~") if r in failed]
        if not roles:
            continue
        here = (pairs == pair).to_numpy() & counted
        ids = set().union(*(failed[r] for r in roles))
        drop |= here & numbers["id"].isin(ids).to_numpy()
    return numbers[~drop]


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
