"""Every candidate against the one teacher: its decision, task headline, fidelity, judge rates and ops, side by side.

The summary's decision is the student's. A further candidate (`student_v2`, …) gets the same
gate rules checked on its own numbers: the summary seen as if that candidate were the student
(its pairs renamed, its ops as the student's), through `genval.analysis.gate.check` — the gate's
own code, so a rule means the same for every candidate. The aggregate stage computes slices,
classification and interval tests for the student only, so a rule on a slice is "not measured"
for a further candidate, and its decision says INCOMPLETE rather than guess.
"""

from __future__ import annotations

from genval import registry
from genval.analysis.gate import check
from genval.config import GateConfig
from genval.models.ops import savings


def names(summary: dict) -> list[str]:
    """Gives the candidates in the run: the student first, then every other role with a `~teacher` pair."""
    found = [p.split("~")[0] for p in summary.get("metrics") or {} if p.endswith("~teacher")]
    found += [r for r in ((summary.get("ops") or {}).get("roles") or {}) if r != "teacher"]
    rest = sorted({r for r in found if r != "student"})
    return ["student"] + rest


def _renamed(pair: str, candidate: str) -> str | None:
    """Gives a pair of `candidate` as the student's pair; None for another candidate's pair or the student's own."""
    head, _, tail = pair.partition("~")
    if head == candidate:
        return "student" + ("~" + tail if tail else "")
    return pair if head == "teacher" else None


def as_student(summary: dict, candidate: str) -> dict:
    """Gives the summary as if `candidate` were the student: its metric pairs, judge rates and ops."""
    if candidate == "student":
        return summary
    metrics = {_renamed(p, candidate): m for p, m in (summary.get("metrics") or {}).items() if _renamed(p, candidate)}
    judge = dict(summary.get("judge") or {})
    if judge:
        rates = {name: {_renamed(p, candidate): r for p, r in pairs.items() if _renamed(p, candidate)}
                 for name, pairs in (judge.get("judges") or {}).items()}
        mine = rates.get(judge["name"], {}).get(judge.get("pair")) or {}
        judge.update(judges=rates, equivalence_rate=mine.get("equivalence_rate"), mean_score=mine.get("mean_score"),
                     corrected_equivalence_rate=None)
    roles = (summary.get("ops") or {}).get("roles") or {}
    ops = {"roles": {"teacher": roles.get("teacher"), "student": roles.get(candidate)}}
    ops.update(teacher=roles.get("teacher"), student=roles.get(candidate),
               savings=savings({"teacher": roles.get("teacher"), "student": roles.get(candidate)})
               if roles.get("teacher") and roles.get(candidate) else {})
    return {**summary, "metrics": metrics, "judge": judge or None, "ops": ops, "slices": {}, "classification": None,
            "fidelity": {"metrics": metrics.get("student~teacher") or {}}, "generation": None, "diagnoses": []}


def decision(summary: dict, candidate: str) -> dict:
    """Gives {verdict, reasons} for one candidate: the summary's for the student, the gate re-checked for another."""
    if candidate == "student":
        return summary.get("decision") or {"verdict": "NO_DECISION", "reasons": ["summary.json holds no decision"]}
    rules = (summary.get("gate") or {}).get("rules") or []
    if not rules:
        return {"verdict": "NO_DECISION", "reasons": ["no gate rules to check this candidate against"]}
    view = as_student(summary, candidate)
    failed, missing = [], []
    for text in [r["rule"] for r in rules]:
        rule = GateConfig(rules=[text]).rules[0]
        if rule.slice:
            missing.append(f"{text}: slices are computed for the student only")
            continue
        out = check(rule, view, None)
        if out["value"] is None:
            missing.append(f"{text}: not measured for {candidate}")
        elif not out["passed"]:
            failed.append(f"{text}: {out['reason']}")
    if failed:
        return {"verdict": "NOT_READY", "reasons": [f"the gate fails on {candidate} ({len(failed)} of {len(rules)} "
                                                   f"rules): {'; '.join(failed)}"] + missing}
    if missing:
        return {"verdict": "INCOMPLETE", "reasons": [f"{len(missing)} of {len(rules)} rules could not be checked on "
                                                    f"{candidate}"] + missing}
    return {"verdict": "READY", "reasons": [f"every gate rule passes on {candidate}'s numbers"]}


def task_metric(summary: dict) -> str | None:
    """Gives the task headline every candidate is compared on: the task-retention metric, else the first shared one."""
    chosen = ((summary.get("fidelity") or {}).get("task_retention") or {}).get("metric")
    if chosen:
        return chosen
    shared = (summary.get("metrics") or {}).get("student~reference") or {}
    return next((m for m in ("rougeL", "chrf", "bleu", "fields_f1", "label_correct") if m in shared), None)


def rows(summary: dict) -> list[dict]:
    """Gives one row per candidate: decision, task number with interval, fidelity, KL, judge rates, latency and cost."""
    metric = task_metric(summary)
    fidelity = next((m for m in ("rougeL", "chrf", "embedding", "bleu", "fields_f1", "label_agree")
                     if m in ((summary.get("metrics") or {}).get("student~teacher") or {})), None)
    judge = summary.get("judge") or {}
    out = []
    for name in names(summary):
        view = as_student(summary, name)
        metrics = view.get("metrics") or {}
        ops = (view.get("ops") or {}).get("student") or {}
        rates = {j: (pairs.get(judge.get("pair")) or pairs.get("student~teacher") or {}).get("equivalence_rate")
                 for j, pairs in ((view.get("judge") or {}).get("judges") or {}).items()}
        out.append({"candidate": name, "decision": decision(summary, name),
                    "task": (metrics.get("student~reference") or {}).get(metric), "task_metric": metric,
                    "fidelity": (metrics.get("student~teacher") or {}).get(fidelity), "fidelity_metric": fidelity,
                    "kl": (metrics.get("student~teacher") or {}).get("kl"),
                    "judges": rates, "latency_p50_s": ops.get("latency_p50_s"),
                    "cost_per_1k_calls": ops.get("cost_per_1k_calls")})
    return out


def pareto(points: list[tuple[float, float]], task_better: str | None) -> list[bool]:
    """Says, per (kl, task) point, whether no other point has lower-or-equal KL and a better-or-equal task number
    with one of the two strictly better (the Pareto frontier of the trade-off)."""
    sign = -1 if task_better == "lower" else 1
    out = []
    for k, (kl, task) in enumerate(points):
        beaten = any(o_kl <= kl and sign * o_task >= sign * task and (o_kl < kl or sign * o_task > sign * task)
                     for j, (o_kl, o_task) in enumerate(points) if j != k)
        out.append(not beaten)
    return out


def direction(metric: str | None) -> str | None:
    return registry.better(metric) if metric else None
