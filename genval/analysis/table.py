"""The per-example numbers of a run: scores, judge verdicts, failed generations — as rows, read in batches.

aggregate deals the rows into per-example columns (`add_scores`, `add_judgments` into a
genval.columns.ColumnStore) with the judgments' and outputs' counts; `compare` reads them as one
long table (`example_numbers`). Either way a number means the same mean over the same examples.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from genval import summary
from genval.errors import GenvalError
from genval.models.replay import MISSING, RECORDED
from genval.runfolder import Run
from genval.summary import Calibration, Meaning

COLUMNS = ["id", "pair", "metric", "value"]
JUDGE_PREFIX = "judge:"
FORMAT_METRICS = ("json_valid", "schema_valid")
ASKED = "asked"           # judge:<name>:asked — 1 where the row asked the judge, 0 where its output failed
HUMAN_PREFIX = "human:"   # human:<judge> — people's verdict on the pair (1 equivalent, 0 not), from calibration.json


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


READ_ROWS = 65536  # rows of scores or judgments read at once


def add_scores(store, run: Run, positions, keep: set | None = None) -> None:
    """Deals the scores table's rows into a ColumnStore (genval.columns), one column per (pair, metric).

    `keep`: only these (pair, metric) columns.
    """
    if not run.has("scores"):
        return
    for frame in run.iter_table("scores", columns=["id", "pair", "metric", "value"], batch_size=READ_ROWS):
        found = {key: rows for key, rows in frame.groupby(["pair", "metric"], sort=False).indices.items()
                 if keep is None or key in keep}
        if not found:
            continue
        wanted = np.concatenate(list(found.values()))
        at = np.full(len(frame), -1, dtype=np.int64)
        at[wanted] = positions.of(frame["id"].to_numpy()[wanted])  # ids hashed only for the columns kept
        values = pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        for (pair, metric), rows in found.items():
            store.add((str(pair), str(metric)), at[rows], values[rows])


class JudgeCounts:
    """What aggregation needs of the judgments besides per-example numbers: verdicts, rates' counts, failures.

    A row asked its judge unless `requests` is 0 (the pair's own output failed: nothing to judge).
    """

    def __init__(self):
        self.verdicts: dict = {}   # (judge, pair) → verdict → count (rows with a verdict)
        self.rates: dict = {}      # (judge, pair) → [judged, equivalent, unanswered]
        self.asked: dict = {}      # judge → [asked, unreadable, failed requests]
        self.has_score = False

    def add(self, frame: pd.DataFrame) -> None:
        asked = pd.to_numeric(frame["requests"], errors="coerce").fillna(1).to_numpy() > 0 \
            if "requests" in frame else np.ones(len(frame), bool)
        equivalent = pd.to_numeric(frame["equivalent"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        parsed = frame["parsed"].fillna(False).astype(bool).to_numpy() if "parsed" in frame \
            else np.ones(len(frame), bool)
        failed = pd.to_numeric(frame["failed_requests"], errors="coerce").fillna(0).to_numpy() \
            if "failed_requests" in frame else np.zeros(len(frame))
        if "score" in frame and frame["score"].notna().any():
            self.has_score = True
        for (judge, pair), rows in frame.groupby(["judge", "pair"], sort=False).indices.items():
            verdicts = self.verdicts.setdefault((judge, pair), {})
            for verdict, count in frame["verdict"].iloc[rows].dropna().astype(str).value_counts().items():
                verdicts[verdict] = verdicts.get(verdict, 0) + int(count)
            judged = asked[rows] & ~np.isnan(equivalent[rows])
            rate = self.rates.setdefault((judge, pair), [0, 0.0, 0])
            rate[0] += int(judged.sum())
            rate[1] += float(equivalent[rows][judged].sum())
            rate[2] += int((~asked[rows]).sum())
        for judge, rows in frame.groupby("judge", sort=False).indices.items():
            mine = asked[rows]
            count = self.asked.setdefault(judge, [0, 0, 0])
            count[0] += int(mine.sum())
            count[1] += int((mine & ~parsed[rows]).sum())
            count[2] += int(failed[rows][mine].sum())


def add_judgments(store, run: Run, positions) -> JudgeCounts:
    """Deals the judgments into a ColumnStore: per pair, each judge's `equivalent` and score; gives the counts."""
    counts = JudgeCounts()
    if not run.has("judgments"):
        return counts
    present = set(run.table_columns("judgments"))
    if "equivalent" not in present:  # a run folder from before the judge stage wrote the meaning
        raise GenvalError("judgments.parquet has no 'equivalent' column (written by an older genval); "
                          "re-run the judge stage: `genval run CONFIG --force judge`")
    wanted = [c for c in ("id", "pair", "judge", "verdict", "score", "equivalent", "parsed", "requests",
                          "failed_requests") if c in present]
    for frame in run.iter_table("judgments", columns=wanted, batch_size=READ_ROWS):
        counts.add(frame)
        at = positions.of(frame["id"])
        equivalent = pd.to_numeric(frame["equivalent"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        score = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=float, na_value=np.nan) \
            if "score" in frame else np.full(len(frame), np.nan)
        asked = pd.to_numeric(frame["requests"], errors="coerce").fillna(1).to_numpy() > 0 \
            if "requests" in frame else np.ones(len(frame), bool)
        for (judge, pair), rows in frame.groupby(["judge", "pair"], sort=False).indices.items():
            store.add((str(pair), judge_metric(judge)), at[rows], equivalent[rows])
            store.add((str(pair), judge_metric(judge, "score")), at[rows], score[rows])
            store.add((str(pair), judge_metric(judge, ASKED)), at[rows], asked[rows].astype(float))
    return counts


def says_equivalent(meaning: Meaning | None):
    """Gives a test of whether a judge's category counts as equivalent (its `equivalent` labels or ordinal
    `pass_threshold`, from calibration.json's `meaning`), None when the judge has no equivalence to count."""
    if meaning is None:
        return None
    threshold, labels = meaning.pass_threshold, set(meaning.equivalent or [])
    if threshold is not None:
        return lambda label: float(label) >= threshold
    return (lambda label: label in labels) if labels else None


def read_calibration(run: Run) -> Calibration | None:
    """Gives the run's calibration.json typed, None when the run has none (no judge or no human labels)."""
    return summary.read_calibration(run.path("calibration.json")) if run.has("calibration.json") else None


def add_ratings(store, calibration: Calibration | None, positions) -> None:
    """Deals people's verdicts (calibration.json's `rated` items, per judge) into (pair, human:<judge>) columns:
    1.0 where people call the pair equivalent by the judge's own meaning, 0.0 where not."""
    for name, block in calibration.judges.items() if calibration else ():
        rated = block.rated
        equivalent = says_equivalent(calibration.meaning.get(name))
        if rated is None or not rated.id or equivalent is None:
            continue
        pairs = np.asarray(rated.pair, dtype=object)
        at = positions.of(np.asarray(rated.id, dtype=object))
        values = np.array([1.0 if equivalent(v) else 0.0 for v in rated.human])
        for pair in sorted(set(pairs)):
            mine = pairs == pair
            store.add((str(pair), HUMAN_PREFIX + name), at[mine], values[mine])


def role_counts(run: Run) -> dict[str, list[int]]:
    """Gives per role of the outputs table [failed calls, outputs, of the failed: ids a replay file lacks, errors a
    replay file records]: a re-run fills neither."""
    out: dict[str, list[int]] = {}
    if not run.has("outputs"):
        return out
    for frame in run.iter_table("outputs", columns=["role", "error"], batch_size=READ_ROWS):
        for role, group in frame.groupby("role", sort=False)["error"]:
            count = out.setdefault(str(role), [0, 0, 0, 0])
            count[0] += int(group.notna().sum())
            count[1] += int(len(group))
            count[2] += int(group.str.startswith(MISSING, na=False).sum())
            count[3] += int(group.str.startswith(RECORDED, na=False).sum())
    return dict(sorted(out.items()))
