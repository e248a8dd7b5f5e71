"""The release gate: rules on summary numbers, overall or per slice, and against a baseline run.

A rule names a headline number (see `lookup` and docs/reports.md for the names), an
optional pair and slice, and bounds: `min`, `max`, `max_regression` (how much worse than
the baseline run's same number it may be, in the number's own units).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from genval.analysis.diagnosis import value
from genval.config import GateConfig, GateRule, read_yaml, validation_error
from genval.errors import GenvalError
from genval.run import read_summary

CLASSIFICATION = ("accuracy_retention", "agreement_rate", "kl_teacher_student", "spearman", "kendall")
ROLE_FIGURES = ("accuracy", "precision", "recall", "f1", "brier", "nll")
ERROR_KINDS = ("both_correct", "both_wrong", "only_student_wrong", "only_teacher_wrong")
LOWER_IS_BETTER = {"kl_teacher_student", "ece", "brier", "nll", "both_wrong", "only_student_wrong",
                   "generation_error"}


def lower_is_better(metric: str) -> bool:
    """Says whether a smaller value of `metric` is the better one (KL, ECE, latency, cost, failures)."""
    return metric in LOWER_IS_BETTER or metric.startswith(("latency", "cost", "peak_memory"))


def lookup(summary: dict, block: dict, metric: str, pair: str | None) -> tuple[bool, float | None]:
    """Gives (known, value) of a rule's number in `block` (the summary or one of its slices)."""
    cls = block.get("classification") or {}
    if metric in CLASSIFICATION:
        return True, value(cls.get(metric))
    if metric in ROLE_FIGURES:
        return True, value((cls.get(pair or "student") or {}).get(metric))
    if metric == "ece":
        return True, value((cls.get("ece") or {}).get(pair or "student"))
    if metric in ERROR_KINDS:
        return True, value((cls.get("errors") or {}).get(metric))
    if metric == "equivalence_rate":
        judge = block.get("judge") or {}
        if pair is None:
            return True, value(judge.get("equivalence_rate"))
        return True, value(((judge.get("judges") or {}).get(judge.get("name"), {}).get(pair) or {})
                           .get("equivalence_rate"))
    if metric == "task_retention":
        return True, value((block.get("fidelity") or {}).get("task_retention"))
    if metric == "generation_error":
        return True, value((block.get("generation") or {}).get(pair or "student"))
    ops = summary.get("ops") or {}
    if metric in (ops.get("savings") or {}):
        return True, value(ops["savings"][metric])
    roles = ops.get("roles") or {}
    if any(metric in figures for figures in roles.values()):
        return True, value((roles.get(pair or "student") or {}).get(metric))
    pairs = block.get("metrics") or {}
    candidates = [pair] if pair else ["student~reference", "student~teacher", "student"]
    for name in candidates:
        if metric in (pairs.get(name) or {}):
            return True, value(pairs[name][metric])
    known = any(metric in m for m in (summary.get("metrics") or {}).values())
    return known, None


def describe(rule: GateRule) -> str:
    """Gives a rule in one line, e.g. `accuracy_retention >= 0.95 on critical=true`."""
    parts = [rule.metric + (f" [{rule.pair}]" if rule.pair else "")]
    if rule.min is not None:
        parts.append(f">= {rule.min:g}")
    if rule.max is not None:
        parts.append(f"<= {rule.max:g}")
    if rule.max_regression is not None:
        parts.append(f"regresses <= {rule.max_regression:g} vs baseline")
    if rule.slice:
        parts.append(f"on {rule.slice}")
    return " ".join(parts)


def _block(summary: dict, rule: GateRule) -> dict | None:
    if not rule.slice:
        return summary
    field, _, wanted = rule.slice.partition("=")
    return (summary.get("slices") or {}).get(field, {}).get(wanted)


def check(rule: GateRule, summary: dict, baseline: dict | None) -> dict:
    """Gives one rule's outcome: the value, the baseline value, passed, and why not."""
    out = {"rule": describe(rule), "metric": rule.metric, "pair": rule.pair, "slice": rule.slice,
           "value": None, "baseline": None, "passed": False, "reason": None}
    block = _block(summary, rule)
    if block is None:
        out["reason"] = f"no slice {rule.slice} in this run"
        return out
    known, current = lookup(summary, block, rule.metric, rule.pair)
    if not known:
        raise GenvalError(f"gate rule '{describe(rule)}': no number named '{rule.metric}'"
                          f"{' for pair ' + rule.pair if rule.pair else ''} in this run's summary "
                          "(see docs/reports.md, 'Gate metric names')")
    out["value"] = current
    if current is None:
        out["reason"] = "the number is missing in this run"
        return out
    reasons = []
    if rule.min is not None and current < rule.min:
        reasons.append(f"{current:.4g} < min {rule.min:g}")
    if rule.max is not None and current > rule.max:
        reasons.append(f"{current:.4g} > max {rule.max:g}")
    if rule.max_regression is not None:
        base_block = _block(baseline, rule) if baseline else None
        before = lookup(baseline, base_block, rule.metric, rule.pair)[1] if base_block else None
        out["baseline"] = before
        if before is None:
            reasons.append("no baseline value to compare with")
        else:
            worse = current - before if lower_is_better(rule.metric) else before - current
            if worse > rule.max_regression:
                reasons.append(f"regressed {worse:.4g} vs baseline {before:.4g} (allowed {rule.max_regression:g})")
    out["passed"] = not reasons
    out["reason"] = "; ".join(reasons) or None
    return out


def evaluate(gate: GateConfig, summary: dict, baseline: dict | None) -> dict:
    """Gives the gate's outcome: passed, every rule's result, and the failing rules in one line each."""
    results = [check(rule, summary, baseline) for rule in gate.rules]
    failing = [f"{r['rule']}: {r['reason']}" for r in results if not r["passed"]]
    return {"passed": not failing, "baseline": str(gate.baseline) if gate.baseline else None,
            "rules": results, "failing": failing}


def load_gate(path: str | Path) -> GateConfig:
    """Reads a gate file: `rules:` (and `baseline:`) at the top, or a run config's `gate:` key."""
    path = Path(path)
    data, text = read_yaml(path, "gate")
    if isinstance(data, dict) and "gate" in data:
        data, text = data["gate"], ""  # a run config: key lines would be looked up from the wrong root
    if not isinstance(data, dict):
        raise GenvalError(f"{path}: a gate file holds 'rules: [...]' (and optionally 'baseline: RUN')")
    try:
        gate = GateConfig.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, str(path), text) from None
    if gate.baseline is not None and not gate.baseline.is_absolute():
        gate.baseline = (path.resolve().parent / gate.baseline).resolve()
    return gate


def read_baseline(path: Path | None) -> dict | None:
    """Gives the baseline run's summary.json (a run folder or the file itself), None when not set."""
    if path is None:
        return None
    try:
        return read_summary(path, "baseline summary")
    except GenvalError as exc:
        raise GenvalError(f"gate.baseline: {exc}") from None
