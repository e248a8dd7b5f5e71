"""What a step's evaluation puts into the Trainer's logs, and which step is best by the gate's numbers.

`headline(summary)` gives a run's overall numbers — the headline numbers and every pair's
metrics, with their intervals, as `genval export --mlflow` names them, and the gate's and the
decision's outcomes — as `name → value`, the names the Trainer's logs get under `genval/`.
`best(steps)` ranks evaluated steps by the gate: most rules passed first, then each rule's own number in its rule
order, better being its registered direction (genval.registry); without a gate, READY first, then
the headline number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from genval import registry

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
    """Gives a summary's overall numbers by the name they are logged under (without `genval/`): the names
    `genval export --mlflow` gives them (genval.report.export), each with its interval's ends and n — the
    headline numbers (`headline/…`) and every pair's metrics (`metrics/<pair>/…`) — and the outcome of the
    gate (`gate_passed`, 1 or 0) and of the decision (`ready`, 1 when READY)."""
    from genval.report.export import numbers

    found = {name: value for name, value in numbers(summary).items() if name.startswith(("headline/", "metrics/"))}
    gate = summary.get("gate")
    if isinstance(gate, dict):
        found["gate_passed"] = float(bool(gate.get("passed")))
    found["ready"] = float(_section(summary, "decision").get("verdict") == READY)
    return found


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
