"""The headline decision a report opens with, and the number formats both reports share."""

from __future__ import annotations

from pathlib import Path

from genval import registry


def decision(summary: dict) -> tuple[str, list[str]]:
    """Gives (verdict as shown, its reasons): READY, NOT READY, INCOMPLETE or NO DECISION, from summary.decision."""
    found = summary.get("decision") or {"verdict": "NO_DECISION", "reasons": ["summary.json holds no decision"]}
    return found["verdict"].replace("_", " "), [r[0].upper() + r[1:].rstrip(".") for r in found["reasons"]]


def failure_line(summary: dict) -> str | None:
    """Gives one line on the failed outputs and judge verdicts, or None when nothing failed."""
    found = summary.get("failures") or {}
    roles = [f"{name} {v['failed']} of {v['n']} ({pct(v['rate'])})"
             for name, v in (found.get("roles") or {}).items() if v["failed"]]
    judges = [f"judge {name} {v['failed']} of {v['n']} ({pct(v['rate'])})"
              for name, v in (found.get("judges") or {}).items() if v["failed"]]
    if not roles and not judges:
        return None
    said = [f"Failed: {', '.join(roles + judges)}; the limit is {pct(found.get('max_failure_rate'))} per role or judge."]
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
        says = (judge.get("meaning") or {}).get("says")
        rows.append((f"judge equivalence ({judge['name']}, {mark}{': ' + says if says else ''})",
                     judge.get("equivalence_rate")))
        for key, said in (("corrected_equivalence_rate", "Rogan–Gladen"), ("equivalence_rate_ppi", "PPI++")):
            corrected = judge.get(key)
            if corrected:
                rows.append((f"judge equivalence corrected for its error ({said})" +
                             (f" — {corrected['note']}" if corrected.get("note") else ""), corrected))
        if (judge.get("meaning") or {}).get("kind") == "ordinal" and judge.get("mean_score"):
            rows.append((f"judge mean score ({judge['name']})", judge["mean_score"]))
    for role, metrics in (summary.get("format") or {}).items():
        for metric, block in metrics.items():
            rows.append((f"{role} {metric} failures", block.get("failure_rate")))
    return [(name, n if isinstance(n, dict) else ({"value": n, "ci": [None, None], "n": None} if n is not None else None))
            for name, n in rows if n is not None]


def holm_line(gate: dict) -> str | None:
    """Gives the gate's multiplicity correction in words: the family Holm's correction used and what it left out."""
    family = gate.get("holm_family") or 0
    left = [x for x in gate.get("holm_left_out") or [] if x["reason"] != "not on a slice: tested alone, not corrected"]
    if not family and not left:
        return None
    said = f"Holm's correction ran over {family} slice interval test{'s' if family != 1 else ''}"
    return said + ("; left out: " + "; ".join(f"{x['rule']} ({x['reason']})" for x in left) if left else "")


def better(headline: str | None) -> str | None:
    """Gives the direction of a slice headline such as 'equivalence_rate (summary_quality)', from the registry."""
    return registry.better(headline.split(" (")[0]) if headline else None


def slice_rows(summary: dict) -> list[dict]:
    """Gives one row per slice with its headline number, weakest first, unranked last, ranked across every field.

    A derived slice that repeats a configured one (`rare_class=legal` holding exactly the
    examples of `category=legal`: same value, n and number) is folded into it (`also`). The rank
    runs over every rankable slice of every field, weakest first, in the headline's direction.
    """
    rows: list[dict] = []
    critical = set(summary.get("critical") or [])
    for field, values in (summary.get("slices") or {}).items():
        for value, block in values.items():
            head = block.get("headline") or {}
            twin = next((r for r in rows if r["value_name"] == str(value) and r["n"] == block["n"]
                         and r["value"] == head.get("value") and r["ci"] == (head.get("ci") or [None, None])), None)
            name = f"{field}={value}"
            if twin is not None:
                twin["also"].append(name)
                continue
            rows.append({"slice": name, "value_name": str(value), "n": block["n"], "metric": head.get("metric"),
                         "value": head.get("value"), "ci": head.get("ci") or [None, None], "rank": None,
                         "mde": head.get("mde"), "too_small": bool(block.get("too_small_to_rank")),
                         "why": block.get("rank_note"), "critical": name in critical, "also": []})
    sign = -1 if better(next((r["metric"] for r in rows if r["metric"]), None)) == "lower" else 1
    rows.sort(key=lambda r: (r["value"] is None, r["too_small"], sign * r["value"] if r["value"] is not None else 0))
    for k, r in enumerate(x for x in rows if x["value"] is not None and not x["too_small"]):
        r["rank"] = k + 1
    return rows


def weakest(summary: dict, count: int = 3) -> list[dict]:
    """Gives the weakest slices by value, small ones included (the reader is told their n), critical ones first."""
    rows = [r for r in slice_rows(summary) if r["value"] is not None]
    sign = -1 if rows and better(rows[0]["metric"]) == "lower" else 1
    by_value = sorted(rows, key=lambda r: sign * r["value"])
    overall = (summary.get("headline") or {}).get("value")
    below = [r for r in by_value if overall is None or sign * r["value"] < sign * overall]
    return below[:count]
