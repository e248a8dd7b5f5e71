"""Every candidate against the one teacher: its decision, task headline, fidelity, judge rates and ops, side by side.

The summary is the one source: the student's decision is `summary.decision`; every further
candidate's (`student_v2`, …) is `summary.candidates[role].decision`, which the aggregate stage
computed as the student's — its slices, intervals, the gate's rules (interval forms and Holm's
correction included) and the decision, on that candidate's own numbers. Nothing is re-checked here.
"""

from __future__ import annotations

from genval import registry
from genval.analysis.blocks import as_role
from genval.summary import Summary, parse


def names(summary: Summary | dict) -> list[str]:
    """Gives the candidates in the run: the student first, then every further candidate the summary has numbers of,
    and any other model role with ops figures."""
    summary = parse(summary)
    found = (list(summary.candidates) if summary.candidates else []) + [r for r in summary.ops.roles if r != "teacher"]
    return ["student"] + sorted({r for r in found if r != "student"})


def decision(summary: Summary | dict, candidate: str) -> dict:
    """Gives {verdict, reasons, grade} of one candidate, as the aggregate stage decided it (one that has no numbers:
    NO_DECISION, saying why)."""
    summary = parse(summary)
    if candidate == "student":
        return summary.decision.dump()
    found = summary.candidate(candidate)
    return found.decision.dump() if found else {"verdict": "NO_DECISION", "grade": None, "reasons": [
        f"summary.json has no numbers of {candidate} (no scores of its own: only ops figures)"]}


def task_metric(summary: Summary) -> str | None:
    """Gives the task headline every candidate is compared on: the task-retention metric, else the first shared one."""
    task = summary.fidelity.task_retention
    if task:
        return task.metric
    shared = summary.metrics.get("student~reference", {})
    return next((m for m in ("rougeL", "chrf", "bleu", "fields_f1", "label_correct") if m in shared), None)


TOKEN_FIDELITY = ("token_kl", "token_agreement")  # each candidate's own, when the run has token_fidelity


def rows(summary: Summary | dict) -> list[dict]:
    """Gives one row per candidate: decision, task number with interval, fidelity, KL, ECE, token fidelity
    (`token_kl`, `token_agreement`; None without the metric), judge rates, latency and cost."""
    summary = parse(summary)
    metric = task_metric(summary)
    fidelity = next((m for m in ("rougeL", "chrf", "embedding", "bleu", "fields_f1", "label_agree")
                     if m in summary.metrics.get("student~teacher", {})), None)
    judge = summary.judge
    out = []
    for name in names(summary):
        own = summary.metrics.get(as_role("student~teacher", "student", name), {})
        task = summary.metrics.get(as_role("student~reference", "student", name), {})
        rates = {}
        for j in judge.judges if judge else {}:
            found = judge.rates(as_role(judge.pair, "student", name), j) or \
                judge.rates(as_role("student~teacher", "student", name), j)
            rates[j] = found.equivalence_rate if found else None
        mine = summary if name == "student" else summary.candidate(name)
        ece = mine.classification.ece.get("student") if mine and mine.classification else None
        out.append({"ece": ece, "candidate": name, "decision": decision(summary, name), "task": task.get(metric),
                    "task_metric": metric, "fidelity": own.get(fidelity), "fidelity_metric": fidelity,
                    "kl": own.get("kl"), **{m: own.get(m) for m in TOKEN_FIDELITY}, "judges": rates,
                    "latency_p50_s": summary.ops.figure(name, "latency_p50_s"),
                    "cost_per_1k_calls": summary.ops.figure(name, "cost_per_1k_calls")})
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
