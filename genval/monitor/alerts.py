"""Alerts: the gate's rules, evaluated per window and slice on the `windows` table.

A rule reads as in a gate (`agreement_rate lower >= 0.85 on segment=enterprise`; `field=*` for
every slice of the field; no `on`: the whole window). It raises an alert in a window when the
number breaks a bound: the value under `min` or over `max`, the interval's lower end under
`lower` or its upper end over `upper`, or a change against the baseline worse than
`max_regression` (worse: in the number's direction, from genval.registry). A slice without the
number in a window (no traffic there, or no value) raises nothing; the report shows the gap.
"""

from __future__ import annotations

import pandas as pd

from genval import registry
from genval.analysis.gate import describe
from genval.config import GateRule
from genval.errors import GenvalError
from genval.monitor.numbers import ALL

WINDOW_NUMBERS_HINT = "agreement_rate, accuracy, failure_rate, reference_failure_rate, a configured metric's " \
                      "column, psi:<slice field>, psi:input_length, uncovered_share"


def _broken(rule: GateRule, row) -> list[str]:
    value, lo, hi = row.value, row.ci_lo, row.ci_hi
    reasons = []
    if rule.min is not None and value < rule.min:
        reasons.append(f"{value:.4g} < min {rule.min:g}")
    if rule.max is not None and value > rule.max:
        reasons.append(f"{value:.4g} > max {rule.max:g}")
    if rule.lower is not None and (pd.isna(lo) or lo < rule.lower):
        reasons.append(f"lower end {lo:.4g} < {rule.lower:g}" if not pd.isna(lo) else "no interval (n < 2)")
    if rule.upper is not None and (pd.isna(hi) or hi > rule.upper):
        reasons.append(f"upper end {hi:.4g} > {rule.upper:g}" if not pd.isna(hi) else "no interval (n < 2)")
    if rule.max_regression is not None and not pd.isna(row.change):
        sign = (registry.spec(rule.metric) or registry.SHARE).sign or 1
        if -sign * row.change > rule.max_regression:
            reasons.append(f"regressed {abs(row.change):.4g} vs baseline {row.baseline:.4g} "
                           f"(allowed {rule.max_regression:g})")
    return reasons


def check_rules(rules: list[GateRule], windows: pd.DataFrame) -> None:
    """Raises for a rule on a number no window has (a misspelt name would otherwise never alert)."""
    known = set(windows["number"]) if len(windows) else set()
    for rule in rules:
        if known and rule.metric not in known:
            raise GenvalError(f"alert '{describe(rule)}': no number named '{rule.metric}' in this monitor "
                              f"(it has: {', '.join(sorted(known))}; see docs/monitor.md)")


def evaluate(rules: list[GateRule], windows: pd.DataFrame) -> list[dict]:
    """Gives every alert of every window: {rule, window_start, window_end, slice, number, value, ci, reason}."""
    check_rules(rules, windows)
    alerts = []
    for rule in rules:
        rows = windows[windows["number"] == rule.metric]
        if rule.slice is None:
            rows = rows[rows["slice"] == ALL]
        elif rule.slice.endswith("=*"):
            rows = rows[rows["slice"].str.startswith(rule.slice[:-1])]
        else:
            rows = rows[rows["slice"] == rule.slice]
        for row in rows.itertuples(index=False):
            if pd.isna(row.value):
                continue
            reasons = _broken(rule, row)
            if reasons:
                alerts.append({"rule": describe(rule), "window_start": row.window_start, "window_end": row.window_end,
                               "slice": row.slice, "number": rule.metric, "value": float(row.value),
                               "ci": [None if pd.isna(row.ci_lo) else float(row.ci_lo),
                                      None if pd.isna(row.ci_hi) else float(row.ci_hi)],
                               "n": None if pd.isna(row.n) else int(row.n), "reason": "; ".join(reasons)})
    return sorted(alerts, key=lambda a: (a["window_start"], a["slice"], a["rule"]))
