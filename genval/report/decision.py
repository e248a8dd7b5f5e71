"""The headline decision a report opens with, and the number formats both reports share."""

from __future__ import annotations

BLOCKING = {"weak_critical_slice", "student_only_errors", "format_failures"}


def decision(summary: dict) -> tuple[str, str]:
    """Gives (verdict, one sentence why): READY, READY WITH CAVEATS, NOT READY or NO DECISION."""
    status = summary.get("status") or {}
    level = status.get("level")
    gate = summary.get("gate")
    kinds = {d["kind"] for d in summary.get("diagnoses") or []}
    if gate is not None and not gate["passed"]:
        return "NOT READY", f"the release gate fails ({len(gate['failing'])} of {len(gate['rules'])} rules)."
    if level is None:
        return "NO DECISION", status.get("basis", "no number to base a status on") + "."
    said = f"status {level} on {status['basis']}"
    if level == "WEAK":
        return "NOT READY", f"{said}: retention {pct(status.get('retention'))}."
    caveats = sorted(kinds & BLOCKING)
    if level == "ACCEPTABLE" or caveats:
        why = f"; see {', '.join(c.replace('_', ' ') for c in caveats)}" if caveats else ""
        return "READY WITH CAVEATS", f"{said}{why}."
    return "READY", f"{said}: the student can replace the teacher on this eval set."


def pct(x) -> str:
    return "–" if x is None else f"{x * 100:.1f} %"


def num(x, digits: int = 4) -> str:
    """Gives a number in a few significant digits, '–' when missing."""
    if isinstance(x, dict):
        x = x.get("value")
    return "–" if x is None else f"{x:.{digits}g}"


def ci(n: dict | None, digits: int = 3) -> str:
    """Gives an interval as 'lo – hi', '–' when missing."""
    if not isinstance(n, dict) or not n.get("ci") or n["ci"][0] is None:
        return "–"
    lo, hi = n["ci"]
    return f"{lo:.{digits}g} – {hi:.{digits}g}"


def headline_rows(summary: dict) -> list[tuple[str, dict | None]]:
    """Gives the headline numbers, in reading order, as (name, {value, ci, n})."""
    rows = []
    cls = summary.get("classification")
    if cls:
        rows += [("teacher accuracy", cls["teacher"].get("accuracy")), ("student accuracy", cls["student"].get("accuracy")),
                 ("accuracy retention", cls.get("accuracy_retention")), ("agreement rate", cls.get("agreement_rate")),
                 ("KL(teacher‖student)", cls.get("kl_teacher_student")),
                 ("teacher ECE", (cls.get("ece") or {}).get("teacher")),
                 ("student ECE", (cls.get("ece") or {}).get("student"))]
    fid = summary.get("fidelity") or {}
    if fid.get("task_retention"):
        rows.append((f"task retention ({fid['task_retention']['metric']})", fid["task_retention"]))
    judge = summary.get("judge")
    if judge:
        mark = "validated" if judge.get("validated") else "NOT validated"
        rows.append((f"judge equivalence ({judge['name']}, {mark})", judge.get("equivalence_rate")))
    for role, metrics in (summary.get("format") or {}).items():
        for metric, block in metrics.items():
            rows.append((f"{role} {metric} failures", block.get("failure_rate")))
    return [(name, n if isinstance(n, dict) else ({"value": n, "ci": [None, None], "n": None} if n is not None else None))
            for name, n in rows if n is not None]


def slice_rows(summary: dict) -> list[dict]:
    """Gives one row per slice with its headline number, weakest ranked first, unranked last."""
    rows = []
    critical = set(summary.get("critical") or [])
    for field, values in (summary.get("slices") or {}).items():
        for value, block in values.items():
            head = block.get("headline") or {}
            rows.append({"slice": f"{field}={value}", "n": block["n"], "metric": head.get("metric"),
                         "value": head.get("value"), "ci": head.get("ci") or [None, None], "rank": block.get("rank"),
                         "too_small": block.get("too_small_to_rank"), "critical": f"{field}={value}" in critical})
    return sorted(rows, key=lambda r: (r["value"] is None, r["too_small"], r["value"] if r["value"] is not None else 0))
