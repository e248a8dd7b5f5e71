"""The metrics as a pivot: one row per metric — fidelity (student~teacher), the student's and the teacher's task
quality (…~reference) and retention (student / teacher), each with its interval — grouped by kind of metric.

Retention and its paired interval come from the summary (`fidelity.retention`: the aggregate stage's
streamed bootstrap, the one accuracy retention uses), so the report reads no per-example rows for
them. For a corpus number (not the mean of its sentence scores) the ratio of the two is shown
without an interval, and the row says why.
"""

from __future__ import annotations


from genval.metrics import METRICS
from genval.numbers import lookup

GROUPS = {"lexical": "lexical", "bleu": "lexical", "semantic": "semantic", "structure": "format", "classification": "classification",
          "numeric": "numeric", "tokens": "token fidelity"}
ORDER = ["lexical", "semantic", "format", "classification", "token fidelity", "numeric", "other"]
CLASSIFICATION = ("label_correct", "label_agree", "kl")


def group(metric: str) -> str:
    """Gives the kind of a metric column: the module its registered metric lives in (lexical, semantic, format…)."""
    if metric in CLASSIFICATION:
        return "classification"
    for registered in METRICS.values():
        if lookup(registered.numbers, metric) is not None:
            return GROUPS.get(registered.func.__module__.rsplit(".", 1)[-1], "other")
    return "other"


def retention(summary: dict) -> dict[str, dict]:
    """Gives metric → {value, ci, n, note} of student / teacher task quality, for every metric both have.

    The aggregate stage computed each with its paired interval (summary.fidelity.retention); a
    corpus number (not the mean of its sentence scores) gets the ratio of the two, without one.
    """
    metrics = summary.get("metrics") or {}
    student, teacher = metrics.get("student~reference") or {}, metrics.get("teacher~reference") or {}
    paired = (summary.get("fidelity") or {}).get("retention") or {}
    out = {}
    for metric in sorted(m for m in student if m in teacher and m != "kl"):
        top, bottom = student[metric].get("value"), teacher[metric].get("value")
        if top is None or not bottom:
            continue
        if (paired.get(metric) or {}).get("value") is not None:
            out[metric] = {**paired[metric], "note": None}
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
