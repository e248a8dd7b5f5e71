"""What a step's evaluation puts into the Trainer's logs, and which step is best by the gate's numbers.

`headline(summary)` flattens a run's overall numbers — the headline, every pair's metrics, the
classification and judge figures, each role's failure rate, the gate's and decision's outcomes —
into `name → value`, the names the Trainer's logs get under `genval/`. `best(steps)` ranks
evaluated steps by the gate: most rules passed first, then each rule's own number in its rule
order, better being its registered direction (genval.registry); without a gate, READY first, then
the headline number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from genval import registry
from genval.analysis.gate import CLASSIFICATION, JUDGE_NUMBERS, ROLE_FIGURES

READY = "READY"


def _value(number) -> float | None:
    """Gives a summary number's value (a {value, ci, n} or a plain float), None where it has none."""
    value = number.get("value") if isinstance(number, dict) else number
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _section(summary: dict, name: str) -> dict:
    found = summary.get(name)
    return found if isinstance(found, dict) else {}


def headline(summary: dict) -> dict[str, float]:
    """Gives every overall number of a summary with a value, by the name it is logged under (without `genval/`)."""
    found: dict[str, float | None] = {"headline": _value(_section(summary, "headline"))}
    for pair, numbers in _section(summary, "metrics").items():
        found.update({f"{pair}/{metric}": _value(number) for metric, number in numbers.items()})
    classification = _section(summary, "classification")
    found.update({name: _value(classification.get(name)) for name in CLASSIFICATION})
    for role, number in (classification.get("ece") or {}).items():
        found[f"{role}/ece"] = _value(number)
    for role, figures in classification.items():
        if isinstance(figures, dict) and role not in ("ece", "errors"):
            found.update({f"{role}/{figure}": _value(figures.get(figure)) for figure in ROLE_FIGURES})
    judge = _section(summary, "judge")
    found.update({f"judge/{name}": _value(judge.get(name)) for name in JUDGE_NUMBERS})
    found["task_retention"] = _value(_section(summary, "fidelity").get("task_retention"))
    for role, number in _section(summary, "generation").items():
        found[f"{role}/generation_error"] = _value(number)
    gate = summary.get("gate")
    if isinstance(gate, dict):
        found["gate_passed"] = float(bool(gate.get("passed")))
    found["ready"] = float(_section(summary, "decision").get("verdict") == READY)
    return {name: value for name, value in found.items() if value is not None}


@dataclass
class Step:
    """One evaluated training step: its run folder and what its summary says."""

    step: int
    folder: Path
    summary: dict

    @property
    def gate(self) -> dict | None:
        found = self.summary.get("gate")
        return found if isinstance(found, dict) else None

    def key(self) -> tuple:
        """Gives the step's rank key (larger is better): the gate's rules, else the decision and headline."""
        if self.gate is not None:
            rules = self.gate.get("rules") or []
            numbers = []
            for rule in rules:
                spec = registry.spec(rule["metric"])
                value = _value(rule.get("value"))
                numbers.append(-math.inf if value is None or spec is None else spec.sign * value)
            return (sum(bool(r.get("passed")) for r in rules), *numbers)
        head = _section(self.summary, "headline")
        metric = str(head.get("metric") or "").split(" ")[0]
        spec = registry.spec(metric)
        value = _value(head)
        return (float(_section(self.summary, "decision").get("verdict") == READY),
                -math.inf if value is None or spec is None else spec.sign * value)

    def outcome(self) -> str:
        """Gives the step's gate outcome in a few words (or its decision without a gate)."""
        if self.gate is None:
            return f"decision {_section(self.summary, 'decision').get('verdict', 'NO_DECISION')} (no gate)"
        rules = self.gate.get("rules") or []
        passed = sum(bool(r.get("passed")) for r in rules)
        failing = self.gate.get("failing") or []
        said = f"gate {'PASS' if self.gate.get('passed') else 'FAIL'} ({passed} of {len(rules)} rules pass)"
        return said + (f"; failing: {failing[0]}" + (f" and {len(failing) - 1} more" if len(failing) > 1 else "")
                       if failing else "")


def best(steps: list[Step]) -> Step | None:
    """Gives the best step by `Step.key`; of equal steps, the earliest (more training bought nothing)."""
    if not steps:
        return None
    return max(steps, key=lambda s: (s.key(), -s.step))
