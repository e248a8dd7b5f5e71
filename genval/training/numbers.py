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
from genval.summary import Estimate, Summary, parse

READY = "READY"


def _value(value) -> float | None:
    """Gives a finite value (of a number or a plain figure), None where it has none."""
    if isinstance(value, Estimate):
        value = value.value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def headline(summary: Summary | dict) -> dict[str, float]:
    """Gives a summary's overall numbers by the name they are logged under (without `genval/`): the names
    `genval export --mlflow` gives them (genval.report.export), each with its interval's ends and n — the
    headline numbers (`headline/…`) and every pair's metrics (`metrics/<pair>/…`) — and the outcome of the
    gate (`gate_passed`, 1 or 0) and of the decision (`ready`, 1 when READY)."""
    from genval.report.export import numbers

    summary = parse(summary)
    found = {name: value for name, value in numbers(summary).items() if name.startswith(("headline/", "metrics/"))}
    if summary.gate is not None:
        found["gate_passed"] = float(summary.gate.passed)
    found["ready"] = float(summary.decision.verdict == READY)
    return found


@dataclass
class Step:
    """One evaluated training step: its run folder and its summary (typed)."""

    step: int
    folder: Path
    model: Summary

    @property
    def summary(self) -> dict:
        """Gives the step's summary.json as the JSON it holds."""
        return self.model.dump()

    def key(self) -> tuple:
        """Gives the step's rank key (larger is better): the gate's rules, else the decision and headline."""
        gate = self.model.gate
        if gate is not None:
            numbers = []
            for rule in gate.rules:
                spec, value = registry.spec(rule.metric), _value(rule.value)
                numbers.append(-math.inf if value is None or spec is None else spec.sign * value)
            return (sum(r.passed for r in gate.rules), *numbers)
        head = self.model.headline
        spec = registry.spec(head.metric.split(" ")[0]) if head else None
        value = _value(head)
        return (float(self.model.decision.verdict == READY),
                -math.inf if value is None or spec is None else spec.sign * value)

    def outcome(self) -> str:
        """Gives the step's gate outcome in a few words (or its decision without a gate)."""
        gate = self.model.gate
        if gate is None:
            return f"decision {self.model.decision.verdict} (no gate)"
        passed = sum(r.passed for r in gate.rules)
        said = f"gate {'PASS' if gate.passed else 'FAIL'} ({passed} of {len(gate.rules)} rules pass)"
        failing = gate.failing
        return said + (f"; failing: {failing[0]}" + (f" and {len(failing) - 1} more" if len(failing) > 1 else "")
                       if failing else "")


def best(steps: list[Step]) -> Step | None:
    """Gives the best step by `Step.key`; of equal steps, the earliest (more training bought nothing)."""
    if not steps:
        return None
    return max(steps, key=lambda s: (s.key(), -s.step))
