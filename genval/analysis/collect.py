"""Aggregation's passes over a run's tables, in bounded memory: per-example numbers in, resampled sums out.

1. `scores` and `judgments` are dealt into per-example columns (genval.columns), and the
   judgments' and outputs' failures are counted.
2. What needs the whole eval set is fixed first: difficulty from the teacher's reference
   quality (one column), the rare classes and a classification run's label set (a pass over
   the examples).
3. One pass over the examples, joined with each role's outputs (genval.pairs.joined), window
   by window: each example's features — every per-example number, and the few derived from
   them (the error kinds, format failures, paired differences, the numbers on answered
   examples) — and its slice groups go to the resampling method (genval.analysis.resampling),
   which keeps sums, not examples (up to analysis.bootstrap_exact_max examples it keeps them:
   the exact bootstrap needs them).

A further candidate (`student_v2`, …: a model role with its own `~teacher` or `~reference`
pairs) is more columns of the same pass: its pairs are features already, and what is derived
for the student (error kinds, gold-label agreement, format failures, retention ratios, paired
differences for non-inferiority rules) is derived for it too, so its slices, gate and decision
come from the same sums (`Collected.view(role=…)`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genval.analysis import classification
from genval.analysis.blocks import ERROR_KINDS, ERRORS, PREFERRED, View, as_role
from genval.analysis.gate import paired_request
from genval.analysis.numbers import Boot
from genval.analysis.resampling import ALL, Exact, Poisson, difference
from genval.analysis.slices import LEVELS, Codes, difficulty_levels, rare_listed
from genval.analysis.judge_correction import JudgeCells, stratum_codes
from genval.analysis.table import (
    ASKED,
    FORMAT_METRICS,
    HUMAN_PREFIX,
    JUDGE_PREFIX,
    JudgeCounts,
    add_judgments,
    add_ratings,
    add_scores,
    example_labels,
    read_calibration,
    role_counts,
)
from genval.columns import WINDOW, ColumnStore, Positions, windows
from genval.config import RunConfig
from genval.errors import GenvalError
from genval.metrics.classification import gold_labels
from genval.pairs import role_blocks
from genval.progress import Progress
from genval.runfolder import Run

RARE = "classes under analysis.rare_class_share of examples"


@dataclass
class Plan:
    """Which features each window gives: the run's columns and what is derived from them."""

    keys: list
    roles: list
    candidates: list = field(default_factory=list)   # further students, besides `student`
    content: str | None = None
    diffs: list = field(default_factory=list)
    answered: bool = False
    gold: bool = False
    judged: list = field(default_factory=list)   # (judge, pair) of every judge's verdict column


def _features(plan: Plan, window, failed: dict) -> dict:
    """Gives one window's features, name → values by example (NaN: the example has no such number)."""
    col = {key: window.value(key) for key in plan.keys}
    for role in plan.roles:
        col[(role, "generation_error")] = failed[role].astype(float)
    out = {("col", *key): values for key, values in col.items()}
    students = ["student", *plan.candidates]
    for student in students:
        out.update(_errors("col", col, student))
    if plan.gold:
        gold = window.present.get(("teacher~reference", "label_correct"), np.zeros(window.hi - window.lo, bool))
        for student in students:
            for metric in ("label_agree", "kl"):
                pair = f"{student}~teacher"
                out[("gold", pair, metric)] = np.where(gold, window.value((pair, metric)), np.nan)
    for role in ("teacher", *students):
        for metric in FORMAT_METRICS:
            if (role, metric) in col:
                passed = col[(role, metric)]
                out[("col", f"fail:{role}", metric)] = 1.0 - passed
                if plan.content:
                    quality = window.value((f"{role}~reference", plan.content))
                    out[("col", f"valid:{role}", metric)] = np.where(passed == 1.0, quality, np.nan)
    for pair, teacher, metric, sign in plan.diffs:
        s, t = window.value((pair, metric)), window.value((teacher, metric))
        out[("col", f"diff:{pair}|{teacher}", metric)] = sign * s - sign * t
    if plan.answered:
        kept = {}
        for (pair, metric), values in col.items():
            gone = np.zeros(len(values), bool)
            if metric != "generation_error":
                for role in pair.split("~"):
                    if role in failed:
                        gone |= failed[role]
            kept[(pair, metric)] = np.where(gone, np.nan, values)
        out.update({("answered", *key): values for key, values in kept.items()})
        out.update(_errors("answered", kept))
    return out


def _errors(family: str, col: dict, student: str = "student") -> dict:
    """Gives the four error kinds per example (1.0 or 0.0) where both teacher and `student` have label_correct."""
    t, s = col.get(("teacher~reference", "label_correct")), col.get((f"{student}~reference", "label_correct"))
    if t is None or s is None:
        return {}
    both = ~(np.isnan(t) | np.isnan(s))
    right_t, right_s = t == 1, s == 1
    kinds = (right_t & right_s, ~right_t & ~right_s, right_t & ~right_s, ~right_t & right_s)
    name = View(None, ALL, family, {}, 0, student).stored(ERRORS)
    return {(family, name, kind): np.where(both, cells.astype(float), np.nan)
            for kind, cells in zip(ERROR_KINDS, kinds)}


class Presence:
    """Counts, per group, its examples and its rows of each (pair, metric): which numbers a block lists."""

    def __init__(self):
        self.rows: dict = defaultdict(Counter)
        self.sizes: Counter = Counter()

    def add(self, present: dict, partitions: dict, rows: int) -> None:
        for partition, codes in {"all": np.zeros(rows, dtype=np.int64), **partitions}.items():
            codes = np.asarray(codes)
            valid = codes >= 0
            if not valid.any():
                continue
            width = int(codes[valid].max()) + 1
            for code in np.flatnonzero(np.bincount(codes[valid], minlength=width)):
                self.sizes[(partition, int(code))] += int((codes == code).sum())
            for key, mask in present.items():
                counts = np.bincount(codes[valid & mask], minlength=width)
                for code in np.flatnonzero(counts):
                    self.rows[(partition, int(code))][key] += int(counts[code])


@dataclass
class Collected:
    """What aggregation's passes gathered: the resampling method's sums, groups, counts and held labels."""

    engine: object
    presence: Presence
    fields: dict          # field → [(value, code)], in the order the summary lists them
    sources: dict         # field → where its slices come from
    held: object          # classification.Held or None
    judges: JudgeCounts
    roles: dict           # role → [failed calls, outputs]
    n: int
    answered: bool
    diffs: list
    candidates: list = field(default_factory=list)   # further students, besides `student`
    cells: JudgeCells | None = None                  # each judged pair's cells, per group

    def view(self, group=ALL, family: str = "col", role: str = "student") -> View:
        """Gives the numbers of a group; `role`: the candidate in the student's place (its pairs shown as his)."""
        present = dict(self.presence.rows.get(group, {}))
        if role != "student":
            present = {(as_role(pair, role, "student"), metric): count for (pair, metric), count in present.items()
                       if pair.partition("~")[0] in (role, "teacher")}
        cells = self.cells.of(group) if family == "col" and self.cells is not None else {}
        return View(self.engine, group, family, present, self.n if group == ALL else self.presence.sizes.get(group, 0),
                    role, self.held is not None, cells)

    def group(self, slice_ref: str):
        """Gives the group of 'field=value', None when the run has no such slice."""
        name, _, wanted = slice_ref.partition("=")
        return next(((name, code) for value, code in self.fields.get(name, []) if value == wanted), None)

    def paired(self, rule, role: str = "student") -> dict:
        """Gives a non-inferiority rule's student (or candidate `role`) − teacher difference on its slice, paired by
        example."""
        view = self.view(role=role)
        pair, teacher, metric, sign = paired_request(rule, metric_keys(view.keys()))
        group = ALL if not rule.slice else self.group(rule.slice)
        if group is None:
            raise GenvalError(f"gate rule on {rule.slice}: the run has no such slice")
        top, bottom = ("col", view.stored(pair), metric), ("col", view.stored(teacher), metric)
        return difference(self.engine, group, top, bottom, ("col", view.stored(f"diff:{pair}|{teacher}"), metric),
                          sign)


def metric_keys(keys) -> dict:
    """Gives pair → metric → True for every score metric among `keys` (the summary's `metrics` keys)."""
    out: dict = {}
    for pair, metric in keys:
        if not metric.startswith(JUDGE_PREFIX) and metric != "generation_error":
            out.setdefault(pair, {})[metric] = True
    return out


def _content_metric(keys: list) -> str | None:
    names = sorted(metric for pair, metric in keys if pair == "student~reference"
                   and metric not in ("label_correct", "label_agree", "kl"))
    return next((m for m in PREFERRED if m in names), names[0] if names else None)


def _labels(run: Run, config: RunConfig, held_labels: list | None) -> tuple[dict, dict | None]:
    """Gives the counts of the examples' gold labels as given and, for a classification run, as matched to its set."""
    present = set(run.table_columns("examples"))
    source = classification.label_source(config)
    if not (source.startswith("field:") and "reference" in present) and "label" not in present:
        return {}, None
    raw: Counter = Counter()
    gold: Counter | None = Counter() if held_labels is not None else None
    cfg = config.model_copy(update={"labels": held_labels}) if held_labels is not None else None
    for frame in run.iter_table("examples", columns=["id", *sorted(present & {"label", "reference"})]):
        raw.update(str(v) for v in example_labels(frame, source) if v is not None)
        if gold is not None:
            gold.update(g for g in gold_labels(frame, cfg, held_labels)[1] if isinstance(g, str))
    return dict(raw), (dict(gold) if gold is not None else None)


def _ratios(plan: Plan) -> list:
    """Gives the ratios every block may ask for: accuracy retention and task retention (and both on answered
    examples), and every reference metric's retention, student / teacher (the report's metric pivot); each
    further candidate's accuracy and task retention."""
    out = [(("col", "student~reference", "label_correct"), ("col", "teacher~reference", "label_correct"))]
    if plan.content:
        out.append((("col", "student~reference", plan.content), ("col", "teacher~reference", plan.content)))
    if plan.answered:
        out += [(("answered", *top[1:]), ("answered", *bottom[1:])) for top, bottom in out]
    out += [(("col", f"{role}~reference", metric), ("col", "teacher~reference", metric))
            for role in plan.candidates for metric in ("label_correct", plan.content) if metric]
    keys = set(plan.keys)
    out += [(("col", pair, metric), ("col", "teacher~reference", metric)) for pair, metric in plan.keys
            if pair == "student~reference" and metric not in ("label_correct", plan.content)
            and ("teacher~reference", metric) in keys]
    # A non-inferiority rule's two numbers: a 0/1 number's difference is read off their paired sums.
    out += [(("col", pair, metric), ("col", teacher, metric)) for pair, teacher, metric, _ in plan.diffs]
    return list(dict.fromkeys(out))


class _Groups:
    """Gives each window's slice groups: configured fields, derived difficulty and rare classes."""

    def __init__(self, run: Run, config: RunConfig, store: ColumnStore, labels: list | None):
        self.columns = [c for c in run.table_columns("examples") if c.startswith("slice_")]
        self.codes = {c: Codes() for c in self.columns}
        self.sources = {c.removeprefix("slice_"): "configured" for c in self.columns}
        self.levels, basis = (None, None) if "slice_difficulty" in self.columns else difficulty_levels(store)
        if self.levels is not None:
            self.sources["difficulty"] = basis
        self.source = classification.label_source(config)
        raw, gold = _labels(run, config, labels)
        self.rare = rare_listed(raw, gold, labels, config.analysis.rare_class_share)
        if self.rare:
            self.sources["rare_class"] = RARE
        # The judge's rate is post-stratified by these (judge_correction): `genval sample` over-draws critical slices.
        refs = (ref.partition("=") for ref in config.critical)
        self.critical = [(f"slice_{field}", value) for field, _, value in refs if f"slice_{field}" in self.columns]

    def of(self, frame: pd.DataFrame, lo: int) -> dict:
        out = {c.removeprefix("slice_"): self.codes[c].of(frame[c]) for c in self.columns}
        if self.levels is not None:
            out["difficulty"] = self.levels[lo:lo + len(frame)].astype(np.int32)
        if self.rare:
            index = {label: k for k, label in enumerate(self.rare)}
            out["rare_class"] = np.array([index.get(None if v is None else str(v), -1)
                                          for v in example_labels(frame, self.source)], dtype=np.int32)
        return out

    def fields(self, sizes: Counter) -> dict:
        """Gives field → [(value, code)] in the order the summary lists them."""
        out = {c.removeprefix("slice_"): self.codes[c].values() for c in self.columns}
        if self.levels is not None:
            out["difficulty"] = [(level, k) for k, level in enumerate(LEVELS) if ("difficulty", k) in sizes]
        if self.rare:
            out["rare_class"] = [(label, k) for k, label in enumerate(self.rare)]
        return out


def collect(run: Run, config: RunConfig, gate_rules=(), progress: Progress | None = None) -> Collected:
    """Reads a run's tables in bounded memory and gives every group's resampled sums (see the module's passes)."""
    n = run.table_rows("examples")
    exact = n <= config.analysis.bootstrap_exact_max
    positions = Positions(run)
    with ColumnStore(run, n, max(n, 1) if exact else WINDOW) as store:
        add_scores(store, run, positions)
        judges = add_judgments(store, run, positions)
        add_ratings(store, read_calibration(run), positions)
        keys = [k for k in store.keys if store.stats[k][0] and (judges.has_score or not (
            k[1].startswith(JUDGE_PREFIX) and k[1].endswith(":score"))) and not _cell_key(k)]
        judged = [(k[1].split(":")[1], k[0]) for k in keys if k[1].startswith(JUDGE_PREFIX)
                  and k[1].endswith(":equivalent")]
        failed_calls = role_counts(run)
        labels = classification.label_set(run, config) if classification.applies(config) else None
        groups = _Groups(run, config, store, labels)
        held = classification.Held(run, config, labels) if labels is not None else None
        plan = Plan(keys=keys, roles=list(role_blocks(run)) if run.has("outputs") else [],
                    candidates=candidates(config, keys), content=_content_metric(keys),
                    answered=any(f for f, *_ in failed_calls.values()), gold=held is not None, judged=judged)
        plan.diffs = list(dict.fromkeys(d for rule in gate_rules if rule.non_inferiority is not None
                                        for role in ["student", *plan.candidates] if (d := _diff(rule, keys, role))))
        boot = Boot.of(config.analysis)
        engine = Exact(boot, config.analysis.ece_bins) if exact else Poisson(boot, config.analysis.ece_bins)
        engine.declare(ratios=_ratios(plan), eces=[*classification.ROLES, *plan.candidates] if held is not None else [])
        presence, cells = Presence(), JudgeCells(2 ** len(groups.critical))
        extra = [k for k in store.keys if _cell_key(k)]
        gold = sorted(set(run.table_columns("examples")) & {"label", "reference"})  # what gold labels are read from
        example_columns = groups.columns + (gold if held is not None or groups.rare else [])
        output_columns = ("error",) + (tuple(c for c in ("text", "label_probs") if c in run.table_columns("outputs"))
                                       if held is not None and run.has("outputs") else ())
        with (progress or Progress(quiet=True)).bar("aggregate", total=n, unit="example") as bar:
            for w, frame in enumerate(windows(run, plan.roles, example_columns, output_columns, store.window)):
                window = store.window_at(w, keys + extra)
                partitions = groups.of(frame, window.lo)
                failed = {role: frame[f"{role}.error"].notna().to_numpy() for role in plan.roles}
                features = _features(plan, window, failed)
                if held is not None:
                    features.update(held.feed(frame, partitions))
                rows = dict(window.present)
                rows.update({(role, "generation_error"): np.ones(len(frame), bool) for role in plan.roles})
                presence.add({k: v for k, v in rows.items() if not _cell_key(k)}, partitions, len(frame))
                cells.add(window, plan.judged, partitions, len(frame), stratum_codes(frame, groups.critical))
                engine.feed(features, partitions, window.lo)
                bar.update(len(frame))
    engine.finish()
    if held is not None:
        held.finish()
    return Collected(engine, presence, groups.fields(presence.sizes), groups.sources, held, judges, failed_calls, n,
                     plan.answered, plan.diffs, plan.candidates, cells)


def _cell_key(key) -> bool:
    """Says whether a column only places examples in the judge's cells (asked, people's verdict): not a number."""
    return key[1].startswith(HUMAN_PREFIX) or (key[1].startswith(JUDGE_PREFIX) and key[1].endswith(":" + ASKED))


def candidates(config: RunConfig, keys: list) -> list[str]:
    """Gives the further students: every model role besides teacher and student with a pair of its own."""
    heads = {pair.partition("~")[0] for pair, _ in keys if "~" in pair}
    return [role for role in config.models if role not in ("teacher", "student") and role in heads]


def _diff(rule, keys: list, role: str) -> tuple[str, str, str, int] | None:
    """Gives the (pair, teacher pair, metric, sign) of a non-inferiority rule's paired difference for `role`.

    The student's rule must name numbers it has (else the error says so); a further candidate
    without them gets no difference, and its gate says the test has no interval.
    """
    shown = [(as_role(pair, role, "student"), metric) for pair, metric in keys if pair.partition("~")[0] in (
        role, "teacher")]
    try:
        pair, teacher, metric, sign = paired_request(rule, metric_keys(shown))
    except GenvalError:
        if role == "student":
            raise
        return None
    return as_role(pair, "student", role), teacher, metric, sign
