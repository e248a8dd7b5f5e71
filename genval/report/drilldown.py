"""The per-example rows of report.html: input, teacher, student, reference, scores, verdict, slices, failure kinds.

A small eval set (up to ALL_ROWS examples) is shown whole. A larger one is sampled, so
report.html does not grow with the eval set: up to PER_STRATUM examples of every slice value,
of every failure kind and of the whole set, each stratum's being those with the smallest
seeded random keys (drawn per window of example positions from (analysis.seed, window)), so a
re-run shows the same rows. Two passes in bounded memory: each example's slices and failure
kinds window by window (genval.columns), then the chosen rows' texts, scores and verdict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genval.analysis.slices import DIFFICULTY_COLUMNS, LEVELS, difficulty_levels
from genval.analysis.table import add_scores, example_labels
from genval.columns import ColumnStore, Positions, windows
from genval.pairs import joined, role_blocks
from genval.runfolder import Run
from genval.summary import Summary, parse

ALL_ROWS = 2000       # up to this many examples, report.html shows every one
PER_STRATUM = 50      # past it, at most this many of each slice value, failure kind and of the whole set
MAX_CHARS = 4000      # per text cell
FIDELITY = ("fields_f1", "rougeL", "chrf", "embedding", "bleu")
FAILURE_KINDS = {
    "generation_error": "a model call failed",
    "format_failure": "student output fails a format check",
    "student_only_wrong": "teacher right, student wrong",
    "both_wrong": "teacher and student both wrong",
    "not_equivalent": "judge: student not equivalent to teacher",
    "low_fidelity": "lowest tenth of student~teacher similarity",
}
ASKED = "asked"  # the judge's `equivalent` on student~teacher where it was asked (NaN where nothing was)


def _clip(text) -> str | None:
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return None
    text = str(text)
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + " …"


def _asked(frame: pd.DataFrame) -> np.ndarray:
    """Gives which judgments asked the judge (`requests` > 0; a table without the column asked on every row)."""
    if "requests" not in frame:
        return np.ones(len(frame), bool)
    return pd.to_numeric(frame["requests"], errors="coerce").fillna(1).to_numpy() > 0


class _Flags:
    """Reads what flags an example: format checks, label correctness, the judge, student~teacher similarity."""

    def __init__(self, run: Run, summary: Summary, positions: Positions):
        self.judge = summary.judge.name if summary.judge else None
        self.fidelity = next((m for m in FIDELITY if m in summary.fidelity.metrics), None)
        derived = summary.slice_sources.get("difficulty", "").startswith("derived")
        wanted = {("student", "json_valid"), ("student", "schema_valid"), ("teacher~reference", "label_correct"),
                  ("student~reference", "label_correct"), ("student~teacher", self.fidelity)}
        if derived:
            wanted |= DIFFICULTY_COLUMNS
        self.store = ColumnStore(run, positions.n)
        add_scores(self.store, run, positions, keep=wanted)
        present = set(run.table_columns("judgments")) if run.has("judgments") else set()
        if self.judge and {"equivalent", "judge"} <= present:
            for frame in run.iter_table("judgments", columns=[c for c in ("id", "pair", "judge", "equivalent",
                                                                          "requests") if c in present]):
                mine = frame[(frame["judge"] == self.judge) & (frame["pair"] == "student~teacher")]
                equivalent = pd.to_numeric(mine["equivalent"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                self.store.add(("student~teacher", ASKED), positions.of(mine["id"]),
                               np.where(_asked(mine), equivalent, np.nan))
        self.levels = difficulty_levels(self.store)[0] if derived else None
        self.low = None
        if self.fidelity:
            values = self.store.column(("student~teacher", self.fidelity))
            values = np.round(values[~np.isnan(values)], 4)
            if values.size >= 10:
                self.low = float(np.quantile(values, 0.1))

    def kinds(self, window, errors: np.ndarray) -> dict[str, np.ndarray]:
        """Gives failure kind → which examples of the window have it."""
        t = np.round(window.value(("teacher~reference", "label_correct")), 4)
        s = np.round(window.value(("student~reference", "label_correct")), 4)
        out = {"generation_error": errors,
               "format_failure": (np.round(window.value(("student", "json_valid")), 4) == 0.0) |
                                 (np.round(window.value(("student", "schema_valid")), 4) == 0.0),
               "student_only_wrong": (t == 1.0) & (s == 0.0), "both_wrong": (t == 0.0) & (s == 0.0),
               "not_equivalent": window.value(("student~teacher", ASKED)) == 0.0}
        if self.low is not None:
            out["low_fidelity"] = np.round(window.value(("student~teacher", self.fidelity)), 4) <= self.low
        return out


def _slice_values(frame: pd.DataFrame, levels, lo: int, rare: list[str], source: str) -> dict[str, np.ndarray]:
    """Gives field → each example's slice value (None where none): slice_* columns, derived difficulty, rare class."""
    out = {c.removeprefix("slice_"): np.array([None if v is None else str(v) for v in frame[c]], dtype=object)
           for c in frame.columns if c.startswith("slice_")}
    if levels is not None:
        out["difficulty"] = np.array([LEVELS[v] if v >= 0 else None for v in levels[lo:lo + len(frame)]], dtype=object)
    if rare:
        out["rare_class"] = np.array([str(v) if v is not None and str(v) in rare else None
                                      for v in example_labels(frame, source)], dtype=object)
    return out


class _Sample:
    """Keeps, per stratum, the `size` examples with the smallest seeded keys seen so far."""

    def __init__(self, size: int):
        self.size, self.kept = size, {}

    def add(self, stratum, positions: np.ndarray, keys: np.ndarray) -> None:
        old_pos, old_keys = self.kept.get(stratum, (np.empty(0, np.int64), np.empty(0)))
        pos, key = np.concatenate([old_pos, positions]), np.concatenate([old_keys, keys])
        if key.size > self.size:
            best = np.argpartition(key, self.size - 1)[:self.size]
            pos, key = pos[best], key[best]
        self.kept[stratum] = (pos, key)

    def positions(self) -> np.ndarray:
        found = [pos for pos, _ in self.kept.values()]
        return np.unique(np.concatenate(found)) if found else np.empty(0, np.int64)


def _source(columns, summary: Summary) -> str:
    label_source = summary.classification.label_source if summary.classification else None
    label_source = label_source or "label"
    return label_source if label_source.startswith("field:") and "reference" in columns else "label"


def rows(run: Run, summary: Summary | dict, seed: int = 0, all_rows: int = ALL_ROWS,
         per_stratum: int = PER_STRATUM) -> list[dict]:
    """Gives the drill-down rows: every example of an eval set up to `all_rows`, else a stratified seeded sample."""
    n = run.table_rows("examples")
    positions = Positions(run)
    roles = list(role_blocks(run)) if run.has("outputs") else []
    summary = parse(summary)
    rare = list(summary.slices.get("rare_class", {}))
    columns = run.table_columns("examples")
    source = _source(columns, summary)
    flags = _Flags(run, summary, positions)
    wanted = [c for c in columns if c.startswith("slice_")] + \
        ([c for c in ("label", "reference") if c in columns] if rare else [])
    kinds, slices, sample = {}, {}, _Sample(per_stratum)
    with flags.store:
        for w, frame in enumerate(windows(run, roles, wanted, ("error",), flags.store.window)):
            window = flags.store.window_at(w)
            errors = np.zeros(len(frame), bool)
            for role in roles:
                errors |= frame[f"{role}.error"].notna().to_numpy()
            found = flags.kinds(window, errors)
            values = _slice_values(frame, flags.levels, window.lo, rare, source)
            at = np.arange(window.lo, window.hi)
            if n > all_rows:
                keys = np.random.default_rng([seed, w]).random(len(frame))
                sample.add("all", at, keys)
                for kind, mask in found.items():
                    sample.add(kind, at[mask], keys[mask])
                for field, column in values.items():
                    for value in {v for v in column if v is not None}:
                        mask = column == value
                        sample.add((field, value), at[mask], keys[mask])
            keep = np.arange(len(frame)) if n <= all_rows else np.flatnonzero(np.isin(at, sample.positions()))
            for k in keep:
                kinds[int(at[k])] = [kind for kind in FAILURE_KINDS if kind in found and found[kind][k]]
                slices[int(at[k])] = {field: column[k] for field, column in values.items() if column[k] is not None}
    chosen = range(n) if n <= all_rows else sample.positions().tolist()
    return _texts(run, [r for r in roles if r in ("teacher", "student")], set(chosen), kinds, slices, flags.judge)


def _texts(run: Run, roles: list, chosen: set[int], kinds: dict, slices: dict, judge: str | None) -> list[dict]:
    """Gives the chosen examples' rows: texts from the examples and outputs, their scores and the judge's verdict."""
    records, lo = [], 0
    for frame in joined(run, roles, None, ("text", "error")):
        records += [(lo + k, frame.iloc[k]) for k in range(len(frame)) if lo + k in chosen]
        lo += len(frame)
    ids = {str(record["id"]) for _, record in records}
    scores: dict[str, dict] = {}
    if run.has("scores"):
        for frame in run.iter_table("scores", columns=["id", "pair", "metric", "value"]):
            frame = frame[frame["id"].astype(str).isin(ids)]
            for ident, pair, metric, value in zip(frame["id"].astype(str), frame["pair"], frame["metric"],
                                                  frame["value"]):
                if value is not None and not pd.isna(value):
                    scores.setdefault(ident, {})[f"{pair} {metric}"] = round(float(value), 4)
    verdicts = _verdicts(run, judge, ids)
    out = []
    for position, record in records:
        ident = str(record["id"])
        out.append({"id": ident, "input": _clip(record.get("input") or record.get("prompt")),
                    "teacher": _output(record, "teacher"), "student": _output(record, "student"),
                    "reference": _clip(record.get("reference")), "scores": scores.get(ident, {}),
                    "verdict": verdicts.get(ident), "slices": slices.get(position, {}),
                    "failures": kinds.get(position, [])})
    return out


def _output(record, role: str) -> str | None:
    text, error = record.get(f"{role}.text"), record.get(f"{role}.error")
    return _clip(text) if error is None or (isinstance(error, float) and pd.isna(error)) else f"[error] {error}"


def _verdicts(run: Run, judge: str | None, ids: set[str]) -> dict[str, str]:
    """Gives id → the judge's verdict on student~teacher as shown ('unparsed', 'nothing to judge' where none).

    What counts as equivalent is the judge file's (the judgments table's `equivalent`), never
    a word read here.
    """
    present = set(run.table_columns("judgments")) if run.has("judgments") else set()
    if not judge or "verdict" not in present:
        return {}
    out = {}
    for frame in run.iter_table("judgments", columns=[c for c in ("id", "pair", "judge", "verdict", "requests")
                                                      if c in present]):
        mine = frame[(frame["judge"] == judge) & (frame["pair"] == "student~teacher")
                     & frame["id"].astype(str).isin(ids)]
        for ident, verdict, asked in zip(mine["id"].astype(str), mine["verdict"], _asked(mine)):
            out[ident] = str(verdict) if verdict is not None and not pd.isna(verdict) else \
                ("unparsed" if asked else "nothing to judge")
    return out
