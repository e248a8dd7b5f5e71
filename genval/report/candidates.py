"""Every candidate against the one teacher: its decision, task headline, fidelity, judge rates and ops, side by side.

The summary is the one source: the student's decision is `summary.decision`; every further
candidate's (`student_v2`, …) is `summary.candidates[role].decision`, which the aggregate stage
computed as the student's — its slices, intervals, the gate's rules (interval forms and Holm's
correction included) and the decision, on that candidate's own numbers. Nothing is re-checked here.
"""

from __future__ import annotations

from genval import registry
from genval.analysis.blocks import as_role


def names(summary: dict) -> list[str]:
    """Gives the candidates in the run: the student first, then every further candidate the summary has numbers of,
    and any other model role with ops figures."""
    found = list(summary.get("candidates") or {})
    found += [r for r in ((summary.get("ops") or {}).get("roles") or {}) if r != "teacher"]
    return ["student"] + sorted({r for r in found if r != "student"})


def decision(summary: dict, candidate: str) -> dict:
    """Gives {verdict, reasons} of one candidate, as the aggregate stage decided it."""
    if candidate == "student":
        return summary.get("decision") or {"verdict": "NO_DECISION", "reasons": ["summary.json holds no decision"]}
    found = ((summary.get("candidates") or {}).get(candidate) or {}).get("decision")
    return found or {"verdict": "NO_DECISION", "reasons": [
        f"summary.json has no numbers of {candidate} (no scores of its own, or written by an older genval: re-run "
        "the aggregate stage)"]}


def task_metric(summary: dict) -> str | None:
    """Gives the task headline every candidate is compared on: the task-retention metric, else the first shared one."""
    chosen = ((summary.get("fidelity") or {}).get("task_retention") or {}).get("metric")
    if chosen:
        return chosen
    shared = (summary.get("metrics") or {}).get("student~reference") or {}
    return next((m for m in ("rougeL", "chrf", "bleu", "fields_f1", "label_correct") if m in shared), None)


def rows(summary: dict) -> list[dict]:
    """Gives one row per candidate: decision, task number with interval, fidelity, KL, ECE, judge rates, latency and
    cost."""
    metric = task_metric(summary)
    pairs = summary.get("metrics") or {}
    fidelity = next((m for m in ("rougeL", "chrf", "embedding", "bleu", "fields_f1", "label_agree")
                     if m in (pairs.get("student~teacher") or {})), None)
    judge = summary.get("judge") or {}
    roles = (summary.get("ops") or {}).get("roles") or {}
    out = []
    for name in names(summary):
        own = pairs.get(as_role("student~teacher", "student", name)) or {}
        task = pairs.get(as_role("student~reference", "student", name)) or {}
        rates = {j: (found.get(as_role(judge.get("pair") or "student~teacher", "student", name))
                     or found.get(as_role("student~teacher", "student", name)) or {}).get("equivalence_rate")
                 for j, found in (judge.get("judges") or {}).items()}
        ops = roles.get(name) or {}
        ece = (((summary if name == "student" else (summary.get("candidates") or {}).get(name) or {})
                .get("classification") or {}).get("ece") or {}).get("student")
        out.append({"ece": ece, "candidate": name, "decision": decision(summary, name), "task": task.get(metric),
                    "task_metric": metric, "fidelity": own.get(fidelity), "fidelity_metric": fidelity,
                    "kl": own.get("kl"), "judges": rates, "latency_p50_s": ops.get("latency_p50_s"),
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
