"""The calibrate stage: each judge against the people who rated the same outputs, and the judges ranked.

Reads `examples`, `outputs`, `judgments` and `labels` (the human ratings copied into the run
folder: genval.judging.labels); writes `calibration.json` — per judge its agreement with the
human-rated sample (genval.judging.calibration), the ranking, and each judge's `meaning` (from
its file) — `{"judges": {}, "ranking": [], "meaning": …}` without labels or judges. A stage of
its own, after judge, so new ratings (`genval calibrate RUN --labels FILE`) re-run it and what
follows (aggregate, report) and never the judge. The judgments are read in batches: memory
holds the rated items' rows and each judge's sums, not every judgment.
"""

from __future__ import annotations

import pandas as pd

from genval.config import RunConfig
from genval.judging.calibration import Settings, Totals, calibrate_judge, ranking
from genval.judging.labels import LABEL_COLUMNS
from genval.judging.stage import judge_meaning, judge_names
from genval.pairs import joined, role_blocks
from genval.progress import Progress
from genval.runfolder import BATCH_ROWS, Run

READ = ["id", "pair", "judge", "verdict", "score", "parsed", "swap_consistent", "requests", "latency_s",
        "prompt_tokens", "completion_tokens"]


def _judgments(run: Run, rated: set) -> tuple[pd.DataFrame, dict[str, Totals]]:
    """Gives the asked judgments of the rated (id, pair) items, and every judge's totals over all its asked rows."""
    present = set(run.table_columns("judgments"))
    kept, totals = [], {}
    for frame in run.iter_table("judgments", columns=[c for c in READ if c in present], batch_size=BATCH_ROWS):
        asked = frame[pd.to_numeric(frame["requests"], errors="coerce").fillna(1) > 0] \
            if "requests" in frame else frame  # rows that asked nothing are not the judge's answers
        for name, rows in asked.groupby("judge", sort=False):
            totals.setdefault(name, Totals()).add(rows)
        keys = list(zip(asked["id"].astype(str), asked["pair"].astype(str)))
        kept.append(asked[[key in rated for key in keys]])
    rows = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=READ)
    return rows, totals


def _rated_context(run: Run, ids: set) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gives the examples and outputs of the rated items only (for length bias and per-slice agreement)."""
    roles = list(role_blocks(run)) if run.has("outputs") else []
    examples, outputs = [], []
    for frame in joined(run, roles, None, ("text", "error")):
        frame = frame[frame["id"].astype(str).isin(ids)]
        if not len(frame):
            continue
        examples.append(frame[[c for c in frame.columns if "." not in c]])
        outputs += [pd.DataFrame({"id": frame["id"], "role": role, "text": frame[f"{role}.text"],
                                  "error": frame[f"{role}.error"]}) for role in roles]
    return (pd.concat(examples, ignore_index=True) if examples else pd.DataFrame(columns=["id", "reference"]),
            pd.concat(outputs, ignore_index=True) if outputs else pd.DataFrame(columns=["id", "role", "text", "error"]))


def calibration(run: Run, config: RunConfig) -> dict:
    """Gives calibration.json's content: each judge against the run's human labels, and the judges ranked."""
    meaning = judge_meaning(config)
    if not config.judge or not run.has("labels") or not run.has("judgments"):
        return {"judges": {}, "ranking": [], "meaning": meaning}
    labels = run.read_table("labels")  # as many rows as people rated: bounded by people, not the eval set
    sources = sorted(set(labels.pop("source"))) if "source" in labels else []
    labels = labels.reindex(columns=LABEL_COLUMNS)
    labels["id"], labels["pair"] = labels["id"].astype(str), labels["pair"].astype(str)
    rows, totals = _judgments(run, set(zip(labels["id"], labels["pair"])))
    examples, outputs = _rated_context(run, set(labels["id"]))
    a = config.analysis
    judges = {}
    for name, ref, definition in judge_names(config):
        settings = Settings(min_kappa=ref.min_kappa, n_boot=a.bootstrap, confidence=a.confidence, seed=a.seed,
                            min_slice_n=a.min_slice_n, price=ref.model.price, labels_path=str(run.path("labels")))
        judges[name] = calibrate_judge(rows[rows["judge"] == name], labels, definition, examples, outputs, settings,
                                       ref.aspect, totals.get(name, Totals()))
    return {"judges": judges, "ranking": ranking(judges), "human_labels": sources, "meaning": meaning}


def calibrate(run: Run, config: RunConfig, progress: Progress) -> dict:
    """Writes calibration.json; gives each judge's validation for the manifest."""
    found = calibration(run, config)
    run.write_json("calibration.json", found)
    for name, block in found["judges"].items():
        k = block["kappa"]
        progress.say(f"judge {name}: kappa {_fmt(k['value'])} [{_fmt(k['ci'][0])}, {_fmt(k['ci'][1])}] n={k['n']}, "
                     f"{'validated' if block['validated'] else 'NOT validated'} (min_kappa {block['min_kappa']})")
    return {"validated": {n: b["validated"] for n, b in found["judges"].items()}}


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"
