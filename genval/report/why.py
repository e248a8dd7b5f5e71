"""Why the decision is what it is: the failing gate rules and the diagnoses, each with the filter of its examples,
the weakest slices with their n, and the judge's trust in one sentence.

A filter is `genval.viewfilter`'s syntax: report.html links to `view_url(filter)` and shows
`view_command(run, filter)`; report.md gives the command. The viewer runs only when started.
"""

from __future__ import annotations

from genval import registry
from genval.report.decision import ci, num, slice_rows, weakest
from genval.viewfilter import filter_string

# Numbers whose examples are the ones where the student alone is wrong (the classification family).
LABEL_NUMBERS = ("accuracy", "accuracy_retention", "agreement_rate", "label_correct", "label_agree", "f1",
                 "precision", "recall", "only_student_wrong")
FORMAT_NUMBERS = ("json_valid", "schema_valid", "json_fenced", "failure_rate")


def _judge_filter(summary: dict, judge: str | None) -> dict:
    """Gives the filter terms of one judge's verdicts that do not count as equivalent (its file's meaning)."""
    block = summary.get("judge") or {}
    name = judge or block.get("name")
    meaning = (block.get("meaning") or {}) if name == block.get("name") else {}
    negative = [v for v in meaning.get("labels") or [] if v not in (meaning.get("equivalent") or [])]
    return {"judge": name, "verdict": negative[0] if meaning.get("kind") == "binary" and negative else None}


def rule_filter(rule: dict, summary: dict) -> str | None:
    """Gives the filter of the examples behind a gate rule's number; None for a number with no examples (ops)."""
    metric, pair, slice_ = rule["metric"], rule.get("pair"), rule.get("slice")
    if metric in LABEL_NUMBERS:
        return filter_string(slice=slice_, flag="student_only_error")
    if metric in FORMAT_NUMBERS:
        return filter_string(slice=slice_, flag="format_failure")
    if metric in ("equivalence_rate", "corrected_equivalence_rate", "mean_score"):
        return filter_string(slice=slice_, pair=pair or (summary.get("judge") or {}).get("pair"),
                             **_judge_filter(summary, None))
    per_example = [p for p, metrics in (summary.get("metrics") or {}).items() if metric in metrics]
    if not per_example:
        return None
    pair = pair or next((p for p in ("student~reference", "student~teacher", "student") if p in per_example),
                        per_example[0])
    order = "desc" if registry.better(metric) == "lower" else "asc"   # worst first
    return filter_string(slice=slice_, pair=pair, metric=metric, sort=metric, order=order)


def diagnosis_filter(diagnosis: dict) -> str:
    """Gives the filter of the examples a diagnosis is about (its kind, and its slice where it names one)."""
    return filter_string(diagnosis=diagnosis["kind"], slice=(diagnosis.get("numbers") or {}).get("slice"))


def diagnoses(summary: dict) -> list[dict]:
    """Gives the summary's diagnoses less those about a slice folded into its twin (rare_class=legal, when it holds
    exactly category=legal's examples, is said once)."""
    folded = {name for r in slice_rows(summary) for name in r["also"]}
    return [d for d in summary.get("diagnoses") or [] if (d.get("numbers") or {}).get("slice") not in folded]


def failing_rules(summary: dict) -> list[dict]:
    """Gives each failing gate rule as {text, reason, filter}, in the gate's order."""
    gate = summary.get("gate") or {}
    return [{"text": r["rule"], "reason": r.get("reason") or "", "value": r.get("value"), "ci": r.get("ci"),
             "filter": rule_filter(r, summary)} for r in gate.get("rules") or [] if not r.get("passed")]


def slice_lines(summary: dict, count: int = 3) -> list[dict]:
    """Gives the weakest slices, each as {slice, text, filter}; a small slice carries the caution its n deserves."""
    min_n = (summary.get("settings") or {}).get("min_slice_n")
    out = []
    for r in weakest(summary, count):
        text = (f"{r['slice']}: {r['metric']} {num(r['value'], 3)} (95 % CI {ci({'ci': r['ci']})}, n={r['n']})")
        if r["too_small"]:
            text += (f" — only {r['n']} examples (under {min_n}): not ranked, its interval is wide; "
                     "confirm with more examples before acting on it")
        elif r["critical"]:
            text += " — a critical slice"
        if r["also"]:
            text += f" (the same examples as {', '.join(r['also'])})"
        out.append({"slice": r["slice"], "text": text, "filter": filter_string(slice=r["slice"])})
    return out


def judge_line(summary: dict) -> str | None:
    """Gives the judge's trust in one sentence: kappa against humans with interval and n, against min_kappa."""
    judge = summary.get("judge") or {}
    cal = judge.get("calibration") or {}
    if not judge:
        return None
    name = judge["name"]
    kappa = cal.get("kappa")
    if not kappa or kappa.get("value") is None:
        return (f"The judge {name} has no human labels to check it against: its numbers are shown, "
                "not trusted (add human_labels).")
    ceiling = (cal.get("annotators") or {}).get("pairwise_kappa_mean")
    said = (f"The judge {name} agrees with humans at κ {num(kappa, 3)} (95 % CI {ci(kappa)}, n={cal.get('n')}); "
            f"{'validated' if judge.get('validated') else 'NOT validated'}: the interval's lower end "
            f"{'reaches' if judge.get('validated') else 'is under'} min κ {cal.get('min_kappa')}")
    if ceiling is not None:
        said += f"; the annotators agree among themselves at κ {num(ceiling, 3)}"
    return said + "."
