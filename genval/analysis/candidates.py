"""Every further candidate (`student_v2`, …) decided as the student is: its block, slices, status, diagnoses, gate
and decision, rebuilt with it in the student's place by the same functions, its pairs then named as its own.
"""

from __future__ import annotations

from genval.analysis import blocks
from genval.analysis.blocks import as_role
from genval.analysis.collect import Collected
from genval.analysis.decision import failures, verdicts
from genval.analysis.numbers import Boot, empty
from genval.analysis.parts import format_checks, held_as, judge_top, retentions, slices_of
from genval.config import RunConfig
from genval.errors import GenvalError
from genval.models.ops import savings
from genval.progress import Progress
from genval.summary import Calibration, Candidate, Findings, Summary


def _named(block: dict, role: str) -> dict:
    """Gives a block of a candidate seen as the student with its pairs under their own names (`student_v2~teacher`)."""
    def rename(pairs: dict) -> dict:
        return {as_role(pair, "student", role): v for pair, v in pairs.items()}

    out = {**block, "metrics": rename(block["metrics"]), "generation": rename(block["generation"])}
    if block.get("headline"):
        out["headline"] = _headline_named(block["headline"], role)
    if block.get("judge"):
        out["judge"] = {**block["judge"], "pair": as_role(block["judge"]["pair"], "student", role),
                        "judges": {name: rename(pairs) for name, pairs in block["judge"]["judges"].items()}}
    return out


def _headline_named(headline: dict | None, role: str) -> dict | None:
    """Gives a candidate's headline with its pair named as its own: `rougeL (student_v2~reference)`."""
    if not headline or not headline.get("metric"):
        return headline
    return {**headline, "metric": headline["metric"].replace("(student~", f"({role}~")}


def _ops(ops: dict, role: str) -> dict:
    """Gives the ops part of a candidate's summary: its figures as the student's, its savings against the teacher."""
    roles = ops["roles"]
    mine = {"teacher": roles.get("teacher"), "student": roles.get(role)}
    return {**mine, "roles": mine, "savings": savings(mine) if all(mine.values()) else {},
            "savings_basis": ops["savings_basis"]}


def candidate(role: str, student: dict, found: Collected, config: RunConfig, boot: Boot,
              calibration: Calibration | None, baseline: Summary | None, progress: Progress | None,
              plain) -> Candidate:
    """Gives a further candidate's headline, its pairs' numbers, fidelity, slices, status, diagnoses, gate and
    decision: the student's findings (`student`, as JSON) rebuilt with `role` in the student's place."""
    primary = calibration.primary if calibration else None
    view = found.view(role=role)
    block = blocks.build(view, held_as(found, role), primary, config.analysis.min_slice_n)
    retentions(view, block, every=False)
    name, head = blocks.headline(block)
    roles = {r: found.roles[r] for r in ("teacher", role) if r in found.roles}
    own_slices, ranking = slices_of(found, config, boot, primary, progress, name, role)
    mine = plain({**student, "headline": {"metric": name, **head} if name else None, "metrics": block["metrics"],
                  "fidelity": block["fidelity"], "classification": block["classification"],
                  "judge": judge_top(block["judge"], calibration, found, boot, view),
                  "generation": block["generation"],
                  "failures": failures(roles, found.judges.asked, config.analysis.max_failure_rate),
                  "answered": None, "format": format_checks(view, block), "slices": own_slices,
                  "slice_ranking": ranking, "ops": _ops(student["ops"], role)})

    def paired(rule):
        try:
            return found.paired(rule, role)
        except GenvalError:  # the candidate lacks the rule's number: its test has no interval, and fails
            return empty()

    decided = verdicts(Findings.model_validate(mine), config, baseline, paired, plain)
    named = _named(mine, role)
    return Candidate.model_validate({
        "headline": named.get("headline"),
        "metrics": {pair: m for pair, m in named["metrics"].items() if pair.partition("~")[0] == role},
        "fidelity": mine["fidelity"], "classification": mine["classification"], "judge": named["judge"],
        "generation": named["generation"], "failures": mine["failures"], "format": mine["format"],
        "slices": {field: {value: _named(b, role) for value, b in values.items()}
                   for field, values in mine["slices"].items()}, "slice_ranking": ranking, **decided})
