"""Corpus numbers from the scores table: the reduce over the sufficient statistics the metrics' map emitted.

A metric that has a corpus number (corpus BLEU, field micro/macro F1, MAE/RMSE/R²) writes per-row
statistics into the scores table's `stats` column and declares a `Corpus` reducer; this module adds
them up per pair. Any subset of rows gives the numbers of that subset (one slice, one batch), and
any split of the rows into frames gives the same numbers as one frame (sacrebleu's design:
per-segment statistics, then `_compute_score_from_stats`).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Iterable

import pandas as pd

from genval.metrics import METRICS
from genval.metrics.registry import Corpus


def _reducers() -> list[Corpus]:
    return [m.corpus for m in METRICS.values() if m.corpus is not None]


def reducer_for(column: str, reducers: list[Corpus] | None = None) -> Corpus | None:
    """Gives the reducer whose statistics a score column carries, or None."""
    for reducer in reducers if reducers is not None else _reducers():
        if any(fnmatchcase(column, pattern) for pattern in reducer.columns):
            return reducer
    return None


def corpus_numbers(frames: Iterable[pd.DataFrame]) -> dict:
    """Gives {pair: {name: number or dict, "signature": …}} from batches of the scores table.

    Each frame holds scores rows with at least `pair`, `metric`, `stats` and `signature`; rows
    without statistics (failed outputs, columns without a corpus number) are skipped. The
    entries are those a metric's reducer gives: `bleu` with its corpus `signature`, `fields`,
    `regression`.
    """
    reducers = _reducers()
    found: dict[str, Corpus | None] = {}
    states: dict[tuple[str, int], object] = {}
    for frame in frames:
        if frame is None or not len(frame) or "stats" not in frame:
            continue
        rows = frame[frame["stats"].notna()]
        for (pair, column), group in rows.groupby(["pair", "metric"], sort=False):
            if column not in found:
                found[column] = reducer_for(column, reducers)
            reducer = found[column]
            if reducer is None:
                continue
            key = (pair, id(reducer))
            part = reducer.partial(column, group)
            states[key] = part if key not in states else reducer.merge(states[key], part)
    by_id = {id(r): r for r in reducers}
    out: dict[str, dict] = {}
    for (pair, rid), state in states.items():
        out.setdefault(pair, {}).update(by_id[rid].finish(state))
    return out
