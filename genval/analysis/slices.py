"""Slices: which examples fall in each slice, and which slices are big enough to rank.

Three kinds of slice field:
- every configured slice field (`slice_<field>` columns of `examples`);
- `difficulty`, when the data do not give one: derived from the models' quality on the example
  (tertiles of the mean of its `teacher~reference` and `student~reference` scores, or the
  teacher right/wrong for a label). Not the teacher's score alone: slices chosen by it select
  the teacher's luck, and student / teacher regresses to the mean across them — a student that
  keeps 95 % everywhere showed 1.14 on "hard" and 0.89 on "easy"; chosen by the mean of both,
  0.946, 0.948, 0.955 (tests/test_aggregate.py simulates it);
- `rare_class`: one slice per rare class: the labels of a classification run's set (else the
  examples' labels) whose share is under `analysis.rare_class_share` (`rare_listed`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Which teacher~reference metric defines derived difficulty, best first: a label's
# correctness, then the task-quality metrics a team usually trusts most.
DIFFICULTY_METRICS = ("label_correct", "fields_f1", "fields", "rougeL", "chrf", "bertscore_f1", "embedding", "bleu")
# The score columns difficulty_levels reads: a reader building its own ColumnStore (view, drill-down) keeps these.
DIFFICULTY_COLUMNS = frozenset((pair, metric) for pair in ("teacher~reference", "student~reference")
                               for metric in DIFFICULTY_METRICS)
LABEL_BASIS = "derived: teacher~reference label_correct (hard = teacher wrong)"   # slice_sources' word for it
LEVELS = ("hard", "medium", "easy")


def configured(examples: pd.DataFrame) -> dict[str, dict[str, list[str]]]:
    """Gives field → value → ids for every `slice_<field>` column (missing values left out)."""
    out: dict[str, dict[str, list[str]]] = {}
    ids = examples["id"].astype(str)
    for column in examples.columns:
        if not column.startswith("slice_"):
            continue
        values = examples[column]
        groups: dict[str, list[str]] = {}
        for ident, value in zip(ids, values):
            if value is None or (isinstance(value, float) and pd.isna(value)):
                continue
            groups.setdefault(str(value), []).append(ident)
        out[column.removeprefix("slice_")] = dict(sorted(groups.items()))
    return out


SELECTED_ON_TEACHER = ("not ranked: these slices are chosen by the teacher's correctness, which {name} divides "
                       "by (at most 1 where it is right, 0 / 0 where it is wrong, whatever the student does)")


def selected_on_teacher(source: str | None, name: str | None) -> bool:
    """Says whether a field's slices are chosen by the very number a retention headline divides by: difficulty
    derived from the teacher's label correctness, ranked by a ratio to the teacher's accuracy."""
    return source == LABEL_BASIS and name is not None and "retention" in name


def rank(blocks: dict[str, dict], min_n: int, name: str | None, number, sign: int = 1,
         selected: bool = False) -> dict:
    """Ranks a field's slices by one number, the overall headline's (`name`), 1 = weakest; gives the ranking.

    `number(block, name)` gives a slice's {value, ci, n, note}; `sign` is −1 when lower is better.
    A slice is unranked, with the reason in its `rank_note` and in the ranking's `unranked`, when
    it has fewer than `min_n` examples or the number is undefined on it (a slice where the teacher
    is never right has no accuracy retention) — never ranked by another number instead — and
    every slice of a field `selected` by the number's own denominator (`selected_on_teacher`):
    its "easy" slice would head every list of weak slices by construction.
    """
    scored, unranked = [], []
    for value, block in blocks.items():
        block["too_small_to_rank"] = block["n"] < min_n
        block["rank"] = block["rank_note"] = None
        num = number(block, name) if name else None
        block["headline"] = {"metric": name, **num} if num else None
        if name is not None and num.get("value") is None:  # first: more examples would not define it
            block["rank_note"] = f"no {name} on this slice" + (f": {num['note']}" if num.get("note") else "")
        elif selected:
            block["rank_note"] = SELECTED_ON_TEACHER.format(name=name)
        elif block["too_small_to_rank"]:
            block["rank_note"] = f"too small to rank: n = {block['n']} < min_slice_n {min_n}"
        elif name is None:
            block["rank_note"] = "the run has no headline number to rank slices by"
        else:
            scored.append((sign * num["value"], value))
            continue
        unranked.append({"slice": value, "reason": block["rank_note"]})
    ranked = [value for _, value in sorted(scored)]
    for position, value in enumerate(ranked, start=1):
        blocks[value]["rank"] = position
    return {"by": name, "ranked": ranked, "unranked": unranked}


def difficulty_levels(store) -> tuple[np.ndarray | None, str | None]:
    """Gives each example's difficulty as a code into LEVELS (-1: none) from a ColumnStore, and the basis used.

    The first of DIFFICULTY_METRICS on teacher~reference that varies: tertiles by rank (each
    level a third of the examples) of the mean of the teacher's and the student's score (the
    teacher's where the student has none; the module says why both), equal scores never split
    (`_tertiles`); a 0/1 metric gives only hard (teacher wrong) and easy (right). Holds two
    columns of the eval set (16 bytes an example) while it ranks.
    """
    for metric in DIFFICULTY_METRICS:
        rows, values, low, high = store.stats.get(("teacher~reference", metric), (0, 0, 0.0, 0.0))
        if values and low != high:  # a metric on which the teacher scores the same everywhere separates nothing
            break
    else:
        return None, None
    column = store.column(("teacher~reference", metric))
    valid = np.flatnonzero(~np.isnan(column))
    quality = column[valid]
    levels = np.full(column.size, -1, dtype=np.int8)
    if set(np.unique(quality)) <= {0.0, 1.0}:
        levels[valid] = np.where(quality == 1.0, LEVELS.index("easy"), LEVELS.index("hard"))
        return levels, LABEL_BASIS
    both = ("student~reference", metric) in store.stats and store.stats[("student~reference", metric)][1]
    if both:
        student = store.column(("student~reference", metric))[valid]
        quality = np.where(np.isnan(student), quality, (quality + student) / 2)
    levels[valid] = _tertiles(quality)
    return levels, (f"derived: tertiles of the mean of teacher~reference and student~reference {metric}" if both
                    else f"derived: tertiles of teacher~reference {metric}")


def _tertiles(quality: np.ndarray) -> np.ndarray:
    """Gives each value's level (0 hard, 1 medium, 2 easy): tertiles by rank, equal values never split.

    pd.qcut(ranks, 3)'s bins — the linear quantiles of 1..m at 1/3 and 2/3, an edge's rank in the
    lower bin — applied to each group of equal values at its middle rank, so the group shares one
    level; the best value's group is easy and the worst's hard (when most examples tie at the top,
    the teacher equal to the reference, the tied ones are easy, not split by their place in the file).
    """
    m = quality.size
    values, counts = np.unique(quality, return_counts=True)               # sorted
    before = np.cumsum(counts) - counts                                    # examples ranked below each group
    middle = before + (counts + 1) / 2                    # the group's middle rank, 1-based; a lone value's rank
    edges = np.quantile(np.arange(1, m + 1), [1 / 3, 2 / 3])
    level = np.searchsorted(edges, middle, side="left").astype(np.int8)
    if len(values) > 1:
        level[0], level[-1] = LEVELS.index("hard"), LEVELS.index("easy")
    return level[np.searchsorted(values, quality)]


def rare_listed(raw: dict[str, int], gold: dict[str, int] | None, labels: list[str] | None,
                min_share: float) -> list[str]:
    """Gives the rare classes that have examples: labels under `min_share` of the examples with a gold label.

    `raw` counts each example's gold label as the examples give it; for a classification run,
    `gold` counts the labels matched to the label set `labels` (every label of the set whose
    share is under `min_share` is rare), else the rare labels are those of `raw`.
    """
    total = sum(raw.values())
    if not total:
        return []
    gold = gold or {}
    if labels is not None:
        matched = sum(gold.values())
        listed = [label for label in labels if not matched or gold.get(label, 0) / matched < min_share]
    else:
        listed = sorted(label for label, count in raw.items() if count / total < min_share)
    return [label for label in listed if raw.get(label)]


class Codes:
    """Gives each value of a slice field a code, in the order first seen; `values()` sorted by value."""

    def __init__(self):
        self.code: dict[str, int] = {}

    def of(self, values) -> np.ndarray:
        """Gives the codes of a batch of values (-1 for a missing value)."""
        values = pd.Series(values, dtype=object).reset_index(drop=True)
        out = np.full(len(values), -1, dtype=np.int32)
        known = values.notna().to_numpy()
        local, uniques = pd.factorize(values[known].astype(str))
        mapping = np.array([self.code.setdefault(u, len(self.code)) for u in uniques], dtype=np.int32)
        out[known] = mapping[local] if len(local) else []
        return out

    def values(self) -> list[tuple[str, int]]:
        return sorted(self.code.items())
