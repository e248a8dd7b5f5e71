"""The headline decision a report opens with, and the number formats both reports share."""

from __future__ import annotations

from pathlib import Path

from genval import registry
from genval.summary import Answered, Estimate, Gate, Summary, parse


def decision(summary: Summary) -> tuple[str, list[str]]:
    """Gives (verdict as shown, its reasons): READY, NOT READY, INCOMPLETE or NO DECISION, from summary.decision."""
    found = summary.decision
    return found.shown, [r[0].upper() + r[1:].rstrip(".") for r in found.reasons]


def failure_line(summary: Summary) -> str | None:
    """Gives one line on the failed outputs and judge verdicts, or None when nothing failed."""
    found = summary.failures
    roles = [f"{name} {v.failed} of {v.n} ({pct(v.rate)})" for name, v in found.roles.items() if v.failed]
    judges = [f"judge {name} {v.failed} of {v.n} ({pct(v.rate)})" for name, v in found.judges.items() if v.failed]
    if not roles and not judges:
        return None
    said = [f"Failed: {', '.join(roles + judges)}; the limit is {pct(found.max_failure_rate)} per role or judge."]
    if roles:
        said.append("A failed output counts as a wrong answer in every number (summary.json's `answered` gives "
                    "the numbers without them).")
    if judges:
        said.append("A judge's failed or unreadable verdicts are left out of its rate.")
    return " ".join(said)


def file_named(note: str) -> str:
    """Gives a note that opens with a file's path with only the file's name: a report names no absolute path."""
    head, sep, rest = note.partition(": ")
    return f"{Path(head).name}{sep}{rest}" if sep and "/" in head else note


def pct(x) -> str:
    return "–" if x is None else f"{x * 100:.1f} %"


def num(x, digits: int = 4) -> str:
    """Gives a number (typed, or as summary.json holds it) or a plain value in a few significant digits, '–' when
    missing."""
    if isinstance(x, (Estimate, dict)):
        x = x.get("value") if isinstance(x, dict) else x.value
    return "–" if x is None else f"{x:.{digits}g}"


def ci(n: Estimate | dict | list | None, digits: int = 3) -> str:
    """Gives a number's interval (or an interval [lo, hi]) as 'lo – hi', '–' when missing; an unbounded end ∞."""
    if isinstance(n, dict):
        n = n.get("ci")
    lo, hi = (n.ci if isinstance(n, Estimate) else n or [None, None])[:2]
    if lo is None:
        return "–"
    return f"{lo:.{digits}g} – " + ("∞" if hi is None else f"{hi:.{digits}g}")


def headline_rows(summary: Summary | Answered) -> list[tuple[str, Estimate]]:
    """Gives the headline numbers, in reading order, as (name, number): label figures, task retention, the judge's
    rates, format failures (those the summary has)."""
    rows = []
    cls = summary.classification
    if cls:
        rows += [("teacher accuracy", cls.teacher.accuracy), ("student accuracy", cls.student.accuracy),
                 ("accuracy retention", cls.accuracy_retention), ("agreement rate", cls.agreement_rate),
                 ("KL(teacher‖student)", cls.kl_teacher_student),
                 ("teacher ECE", cls.ece.get("teacher")), ("student ECE", cls.ece.get("student"))]
    task = summary.fidelity.task_retention
    if task:
        rows.append((f"task retention ({task.metric})", task))
    judge = summary.judge
    if judge and isinstance(summary, Summary):
        mark = "validated" if judge.validated else "NOT validated"
        says = judge.meaning.says if judge.meaning else None
        rows.append((f"judge equivalence ({judge.name}, {mark}{': ' + says if says else ''})",
                     judge.equivalence_rate))
        for key, said in (("corrected_equivalence_rate", "Rogan–Gladen"), ("equivalence_rate_ppi", "PPI++")):
            corrected = getattr(judge, key)
            if corrected:
                rows.append((f"judge equivalence corrected for its error ({said})" +
                             (f" — {corrected.note}" if corrected.note else ""), corrected))
        if judge.meaning and judge.meaning.kind == "ordinal" and judge.mean_score:
            rows.append((f"judge mean score ({judge.name})", judge.mean_score))
    for role, metrics in getattr(summary, "format", {}).items():
        for metric, block in metrics.items():
            rows.append((f"{role} {metric} failures", block.failure_rate))
    # A number over no example (KL and ECE of a run without label probabilities) has nothing to show: no row.
    return [(name, n) for name, n in rows if n is not None and (n.value is not None or n.n)]


def holm_line(gate: Gate) -> str | None:
    """Gives the gate's multiplicity correction in words: the family Holm's correction used and what it left out."""
    family = gate.holm_family
    left = [x for x in gate.holm_left_out if x.reason != "not on a slice: tested alone, not corrected"]
    if not family and not left:
        return None
    said = f"Holm's correction ran over {family} slice interval test{'s' if family != 1 else ''}"
    return said + ("; left out: " + "; ".join(f"{x.rule} ({x.reason})" for x in left) if left else "")


def better(headline: str | None) -> str | None:
    """Gives the direction of a slice headline such as 'equivalence_rate (summary_quality)', from the registry."""
    return registry.better(headline.split(" (")[0]) if headline else None


def slice_rows(summary: Summary | dict) -> list[dict]:
    """Gives one row per slice with its headline number, weakest first, unranked last, ranked across every field.

    A derived slice that repeats a configured one (`rare_class=legal` holding exactly the
    examples of `category=legal`: same value, n and number) is folded into it (`also`). The rank
    runs over every rankable slice of every field, weakest first, in the headline's direction.
    """
    summary = parse(summary)
    rows: list[dict] = []
    critical = set(summary.critical)
    for field, value, block in summary.each_slice():
        head = block.headline
        twin = next((r for r in rows if r["value_name"] == str(value) and r["n"] == block.n
                     and r["value"] == (head.value if head else None)
                     and r["ci"] == (head.ci if head else [None, None])), None)
        name = f"{field}={value}"
        if twin is not None:
            twin["also"].append(name)
            continue
        rows.append({"slice": name, "value_name": str(value), "n": block.n, "metric": head.metric if head else None,
                     "value": head.value if head else None, "ci": list(head.ci) if head else [None, None],
                     "rank": None, "mde": head.mde if head else None, "too_small": block.too_small_to_rank,
                     "why": block.rank_note, "critical": name in critical, "also": [],
                     # aggregate left it unranked though it has a value and examples enough (slices.rank says why)
                     "unranked": head is not None and head.value is not None and block.rank is None
                     and not block.too_small_to_rank and block.rank_note is not None})
    sign = -1 if better(next((r["metric"] for r in rows if r["metric"]), None)) == "lower" else 1
    rows.sort(key=lambda r: (r["value"] is None or r["unranked"], r["too_small"],
                             sign * r["value"] if r["value"] is not None else 0))
    for k, r in enumerate(x for x in rows if x["value"] is not None and not x["too_small"] and not x["unranked"]):
        r["rank"] = k + 1
    return rows


def weakest(summary: Summary, count: int = 3) -> list[dict]:
    """Gives the weakest slices by value, small ones included (the reader is told their n), critical ones first."""
    rows = [r for r in slice_rows(summary) if r["value"] is not None and not r["unranked"]]
    sign = -1 if rows and better(rows[0]["metric"]) == "lower" else 1
    by_value = sorted(rows, key=lambda r: sign * r["value"])
    overall = summary.headline.value if summary.headline else None
    below = [r for r in by_value if overall is None or sign * r["value"] < sign * overall]
    return below[:count]
