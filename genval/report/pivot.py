"""The metrics as a pivot: one row per metric — fidelity (student~teacher), the student's and the teacher's task
quality (…~reference) and retention (student / teacher), each with its interval — grouped by kind of metric.

Retention's interval is a paired bootstrap of the per-example scores (`genval.analysis.numbers.ratio`,
the one accuracy retention uses), read from the scores table one metric column at a time. For a
corpus number (BLEU, chrF: not the mean of its sentence scores) the ratio of the two corpus
numbers is shown without an interval, and the row says why.
"""

from __future__ import annotations

import numpy as np

from genval.analysis.numbers import Boot, ratio
from genval.metrics import METRICS
from genval.numbers import lookup
from genval.runfolder import Run

GROUPS = {"lexical": "lexical", "bleu": "lexical", "semantic": "semantic", "structure": "format", "classification": "classification",
          "numeric": "numeric"}
ORDER = ["lexical", "semantic", "format", "classification", "numeric", "other"]
CLASSIFICATION = ("label_correct", "label_agree", "kl")


def group(metric: str) -> str:
    """Gives the kind of a metric column: the module its registered metric lives in (lexical, semantic, format…)."""
    if metric in CLASSIFICATION:
        return "classification"
    for registered in METRICS.values():
        if lookup(registered.numbers, metric) is not None:
            return GROUPS.get(registered.func.__module__.rsplit(".", 1)[-1], "other")
    return "other"


def _per_example(run: Run, metrics: set[str]) -> dict[tuple[str, str], dict[str, float]]:
    """Gives (pair, metric) → id → value for the teacher's and student's task-quality rows of `metrics`."""
    out: dict = {}
    if not run.has("scores"):
        return out
    for frame in run.iter_table("scores", columns=["id", "pair", "metric", "value"]):
        frame = frame[frame["pair"].isin(["student~reference", "teacher~reference"]) & frame["metric"].isin(metrics)]
        for (pair, metric), part in frame.groupby(["pair", "metric"], sort=False):
            out.setdefault((pair, metric), {}).update(zip(part["id"].astype(str), part["value"].astype(float)))
    return out


def retention(run: Run, summary: dict) -> dict[str, dict]:
    """Gives metric → {value, ci, n, note} of student / teacher task quality, for every metric both have."""
    metrics = summary.get("metrics") or {}
    student, teacher = metrics.get("student~reference") or {}, metrics.get("teacher~reference") or {}
    shared = {m for m in student if m in teacher and m != "kl"}
    values = _per_example(run, shared)
    s = summary.get("settings") or {}
    boot = Boot(s.get("bootstrap", 1000), s.get("confidence", 0.95), s.get("seed", 0))
    out = {}
    for metric in sorted(shared):
        top, bottom = student[metric].get("value"), teacher[metric].get("value")
        if top is None or not bottom:
            continue
        st, te = values.get(("student~reference", metric), {}), values.get(("teacher~reference", metric), {})
        ids = sorted(set(st) & set(te))
        num, den = np.array([st[i] for i in ids]), np.array([te[i] for i in ids])
        if ids and np.isclose(np.nanmean(num), top) and np.isclose(np.nanmean(den), bottom):
            out[metric] = {**ratio(num, den, boot), "note": None}
        else:
            out[metric] = {"value": top / bottom, "ci": [None, None], "n": student[metric].get("n"),
                           "note": "a corpus number: the ratio of the two, no interval"}
    return out


def rows(summary: dict, kept: dict[str, dict]) -> list[dict]:
    """Gives one row per metric in group order: {group, metric, fidelity, student, teacher, retention, signature}."""
    metrics = summary.get("metrics") or {}
    fidelity, student = metrics.get("student~teacher") or {}, metrics.get("student~reference") or {}
    teacher = metrics.get("teacher~reference") or {}
    single_s, single_t = metrics.get("student") or {}, metrics.get("teacher") or {}
    signatures = (summary.get("settings") or {}).get("metrics") or {}
    names = list(dict.fromkeys([*fidelity, *student, *teacher, *single_s, *single_t]))
    out = [{"group": group(m), "metric": m, "fidelity": fidelity.get(m), "student": student.get(m) or single_s.get(m),
            "teacher": teacher.get(m) or single_t.get(m), "retention": kept.get(m),
            "signature": signatures.get(m) or (summary.get("classification") or {}).get("signatures", {}).get(m)}
           for m in names]
    return sorted(out, key=lambda r: (ORDER.index(r["group"]), r["metric"]))
