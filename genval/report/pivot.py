"""The metrics as a pivot: one row per metric — fidelity (student~teacher), the student's and the teacher's task
quality (…~reference) and retention (student / teacher), each with its interval — grouped by kind of metric.

Retention and its paired interval come from the summary (`fidelity.retention`: the aggregate stage's
streamed bootstrap, the one accuracy retention uses; `label_correct`'s is accuracy retention), so
the report reads no per-example rows for them and builds no number of its own.
"""

from __future__ import annotations


from genval.metrics import METRICS
from genval.numbers import lookup
from genval.summary import Number, Summary, parse

GROUPS = {"lexical": "lexical", "bleu": "lexical", "semantic": "semantic", "structure": "format", "classification": "classification",
          "numeric": "numeric", "tokens": "token fidelity"}
ORDER = ["lexical", "semantic", "format", "fields", "classification", "token fidelity", "numeric", "other"]
CONTENT = {"fields": "fields"}   # metrics of the structure module that score content, not format
CLASSIFICATION = ("label_correct", "label_agree", "kl")


def group(metric: str) -> str:
    """Gives the kind of a metric column: the module its registered metric lives in (lexical, semantic, format…)."""
    if metric in CLASSIFICATION:
        return "classification"
    for name, registered in METRICS.items():
        if lookup(registered.numbers, metric) is not None:
            return CONTENT.get(name) or GROUPS.get(registered.func.__module__.rsplit(".", 1)[-1], "other")
    return "other"


def retention(summary: Summary | dict) -> dict[str, Number]:
    """Gives metric → student / teacher task quality with its paired interval, for every metric both have.

    The aggregate stage computed each (summary.fidelity.retention; label_correct's is the
    classification's accuracy retention); a metric whose ratio is undefined (the teacher at 0) is left out.
    """
    summary = parse(summary)
    student, teacher = summary.metrics.get("student~reference", {}), summary.metrics.get("teacher~reference", {})
    kept = dict(summary.fidelity.retention) if summary.fidelity.retention else {}
    if summary.classification:
        kept["label_correct"] = summary.classification.accuracy_retention
    return {metric: kept[metric] for metric in sorted(student) if metric in teacher and metric in kept
            and student[metric].value is not None and teacher[metric].value and kept[metric].value is not None}


def rows(summary: Summary | dict, kept: dict[str, Number]) -> list[dict]:
    """Gives one row per metric in group order: {group, metric, fidelity, student, teacher, retention, signature}."""
    summary = parse(summary)
    metrics = summary.metrics
    fidelity, student = metrics.get("student~teacher", {}), metrics.get("student~reference", {})
    teacher = metrics.get("teacher~reference", {})
    single_s, single_t = metrics.get("student", {}), metrics.get("teacher", {})
    cls = summary.classification
    signatures = {**(cls.signatures if cls and cls.signatures else {}), **summary.settings.metrics}
    names = list(dict.fromkeys([*fidelity, *student, *teacher, *single_s, *single_t]))
    out = [{"group": group(m), "metric": m, "fidelity": fidelity.get(m), "student": student.get(m) or single_s.get(m),
            "teacher": teacher.get(m) or single_t.get(m), "retention": kept.get(m), "signature": signatures.get(m)}
           for m in names]
    return sorted(out, key=lambda r: (ORDER.index(r["group"]), r["metric"]))
