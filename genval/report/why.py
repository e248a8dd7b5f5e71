"""Why the decision is what it is: the failing gate rules and the diagnoses, each with the filter of its examples,
the weakest slices with their n, and the judge's trust in one sentence.

A filter is `genval.viewfilter`'s syntax: report.html links to `view_url(filter)` and shows
`view_command(run, filter)`; report.md gives the command. The viewer runs only when started.
"""

from __future__ import annotations

from genval import registry
from genval.report.decision import ci, num, slice_rows, weakest
from genval.summary import Diagnosis, RuleResult, Summary
from genval.viewfilter import filter_string

# Numbers whose examples are the ones where the student alone is wrong (the classification family).
LABEL_NUMBERS = ("accuracy", "accuracy_retention", "agreement_rate", "label_correct", "label_agree", "f1",
                 "precision", "recall", "only_student_wrong")
FORMAT_NUMBERS = ("json_valid", "schema_valid", "json_fenced", "failure_rate")


def _judge_filter(summary: Summary) -> dict:
    """Gives the filter terms of the primary judge's verdicts that do not count as equivalent (its file's meaning)."""
    judge = summary.judge
    meaning = judge.meaning if judge else None
    negative = [v for v in meaning.labels or [] if v not in (meaning.equivalent or [])] if meaning else []
    return {"judge": judge.name if judge else None,
            "verdict": negative[0] if meaning and meaning.kind == "binary" and negative else None}


def rule_filter(rule: RuleResult, summary: Summary) -> str | None:
    """Gives the filter of the examples behind a gate rule's number; None for a number with no examples (ops)."""
    metric, pair, slice_ = rule.metric, rule.pair, rule.slice
    if metric in LABEL_NUMBERS:
        return filter_string(slice=slice_, flag="student_only_error")
    if metric in FORMAT_NUMBERS:
        return filter_string(slice=slice_, flag="format_failure")
    if metric in ("equivalence_rate", "corrected_equivalence_rate", "mean_score"):
        return filter_string(slice=slice_, pair=pair or (summary.judge.pair if summary.judge else None),
                             **_judge_filter(summary))
    per_example = [p for p, metrics in summary.metrics.items() if metric in metrics]
    if not per_example:
        return None
    pair = pair or next((p for p in ("student~reference", "student~teacher", "student") if p in per_example),
                        per_example[0])
    order = "desc" if registry.better(metric) == "lower" else "asc"   # worst first
    return filter_string(slice=slice_, pair=pair, metric=metric, sort=metric, order=order)


def diagnosis_filter(diagnosis: Diagnosis) -> str:
    """Gives the filter of the examples a diagnosis is about (its kind, and its slice where it names one)."""
    return filter_string(diagnosis=diagnosis.kind, slice=diagnosis.slice)


def diagnoses(summary: Summary) -> list[Diagnosis]:
    """Gives the summary's diagnoses less those about a slice folded into its twin (rare_class=legal, when it holds
    exactly category=legal's examples, is said once)."""
    folded = {name for r in slice_rows(summary) for name in r["also"]}
    return [d for d in summary.diagnoses if d.slice not in folded]


def failing_rules(summary: Summary) -> list[dict]:
    """Gives each failing gate rule as {text, reason, value, ci, filter}, in the gate's order."""
    rules = summary.gate.rules if summary.gate else []
    return [{"text": r.rule, "reason": r.reason or "", "value": r.value, "ci": r.ci, "filter": rule_filter(r, summary)}
            for r in rules if not r.passed]


def slice_lines(summary: Summary, count: int = 3) -> list[dict]:
    """Gives the weakest slices, each as {slice, text, filter}; a small slice carries the caution its n deserves."""
    min_n = summary.settings.min_slice_n
    out = []
    for r in weakest(summary, count):
        text = (f"{r['slice']}: {r['metric']} {num(r['value'], 3)} (95 % CI {ci(r['ci'])}, n={r['n']})")
        if r["too_small"]:
            text += (f" — only {r['n']} examples (under {min_n}): not ranked, its interval is wide; "
                     "confirm with more examples before acting on it")
        elif r["critical"]:
            text += " — a critical slice"
        if r["also"]:
            text += f" (the same examples as {', '.join(r['also'])})"
        out.append({"slice": r["slice"], "text": text, "filter": filter_string(slice=r["slice"])})
    return out


def judge_line(summary: Summary) -> str | None:
    """Gives the judge's trust in one sentence: kappa against humans with interval and n, against min_kappa."""
    judge = summary.judge
    if not judge:
        return None
    cal = judge.calibration
    kappa = cal.kappa if cal else None
    if kappa is None or kappa.value is None:
        return (f"The judge {judge.name} has no human labels to check it against: its numbers are shown, "
                "not trusted (add human_labels).")
    ceiling = cal.annotators.pairwise_kappa_mean if cal.annotators else None
    said = (f"The judge {judge.name} agrees with humans at κ {num(kappa, 3)} (95 % CI {ci(kappa)}, n={cal.n}); "
            f"{'validated' if judge.validated else 'NOT validated'}: the interval's lower end "
            f"{'reaches' if judge.validated else 'is under'} min κ {cal.min_kappa}")
    if ceiling is not None:
        said += f"; the annotators agree among themselves at κ {num(ceiling, 3)}"
    return said + "."
