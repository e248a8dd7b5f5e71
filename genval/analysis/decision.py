"""The decision a run ends with: READY, NOT_READY, INCOMPLETE or NO_DECISION, and the reasons, in words.

INCOMPLETE comes first: when more than `analysis.max_failure_rate` of any role's requests,
or of any judge's verdicts, failed, the numbers rest on too little to decide on (they count
the failures as wrong, so a retry can only change them). Otherwise the gate decides when it
fails, then the status grade (EXCELLENT … WEAK) on failure-counted numbers; diagnoses that
block a release are given as caveats of a READY.
"""

from __future__ import annotations

from genval.analysis.diagnosis import diagnose, pct, status
from genval.analysis.gate import evaluate
from genval.summary import Decision, Diagnosis, Failures, Findings, Gate, Status, Summary, parse

BLOCKING = ("weak_critical_slice", "small_slice", "student_only_errors", "format_failures")


def _share(failed: int, n: int) -> dict:
    return {"failed": int(failed), "n": int(n), "rate": failed / n if n else 0.0}


def failures(roles: dict[str, list[int]], judges: dict[str, list[int]], max_failure_rate: float) -> dict:
    """Gives per role the failed requests and per judge the verdicts it failed to give, each as {failed, n, rate}.

    `roles` is role → [failed calls, outputs, of the failed: ids a replay file lacks, errors a replay file
    records] (genval.analysis.table.role_counts; the last two optional); `judges` is
    judge → [asked rows, unreadable verdicts, failed requests] (JudgeCounts.asked). A judge's
    failure is a row that asked it and got no usable verdict: a failed request or an answer that
    could not be parsed (both leave the example unjudged). Rows that asked nothing (the pair's own
    output failed) are the role's failures, not the judge's.
    """
    found_roles = {role: _share(failed, n) for role, (failed, n, *_) in sorted(roles.items())}
    for role, (_, _, *unfilled) in roles.items():
        for key, count in zip(("missing", "recorded"), unfilled):
            if count:
                found_roles[role][key] = int(count)
    found_judges = {}
    for name, (asked, unreadable, requests_failed) in sorted(judges.items()):
        if not asked:
            continue
        found_judges[name] = _share(unreadable, asked)
        found_judges[name]["requests_failed"] = int(requests_failed)
    over = [f"role {r}" for r, v in found_roles.items() if v["rate"] > max_failure_rate] + \
        [f"judge {j}" for j, v in found_judges.items() if v["rate"] > max_failure_rate]
    return {"max_failure_rate": max_failure_rate, "roles": found_roles, "judges": found_judges, "over_limit": over,
            "requests_failed": int(sum(v["failed"] for v in found_roles.values())
                                   + sum(v["requests_failed"] for v in found_judges.values())),
            "counted_as": "a failed or missing output takes its number's worst value (accuracy: wrong; "
                          "a score: the bad end of its range); `answered` gives the numbers without them"}


def _on_numbers(status: Status, gate: Gate | None, diagnoses: list[Diagnosis]) -> tuple[str, list[str]]:
    """Gives the verdict the numbers alone give (gate, then status grade), with its reasons."""
    if gate is not None and not gate.passed:
        return "NOT_READY", [f"the release gate fails ({len(gate.failing)} of {len(gate.rules)} rules): "
                             + "; ".join(gate.failing)]
    if status.level is None:
        return "NO_DECISION", [status.basis or "no number to base a status on"]
    said = f"status {status.level} on {status.basis}"
    if status.level == "WEAK":
        return "NOT_READY", [f"{said}: " + "; ".join(status.held_back or [f"retention {pct(status.retention)}"])]
    caveats = [d for d in diagnoses if d.kind in BLOCKING]
    clean = status.level != "ACCEPTABLE" and not caveats
    reasons = [said + (": the student can replace the teacher on this eval set" if clean else ", with caveats")]
    if status.level == "ACCEPTABLE":  # the caveat names the number that kept the status out of GOOD
        reasons += [f"caveat: {why}" for why in status.held_back]
    reasons += [f"caveat: {d.kind.replace('_', ' ')} — {d.message}" for d in caveats]
    return "READY", reasons


def _failure_reasons(found: Failures) -> list[str]:
    """Gives, per role or judge over the limit, what failed; then what a re-run can and cannot fix."""
    limit, out, unreadable = found.max_failure_rate, [], False
    for kind, name, entry in found.over():
        said = "verdicts failed or could not be read" if kind == "judge" else "requests failed"
        out.append(f"{entry.failed} of {entry.n} {name} {said} ({pct(entry.rate)}, over the "
                   f"{pct(limit)} limit of analysis.max_failure_rate)")
        unreadable |= entry.failed > (entry.failed if entry.requests_failed is None else entry.requests_failed)
    missing = sum(v.missing or 0 for v in found.roles.values())
    recorded = sum(v.recorded or 0 for v in found.roles.values())
    if found.requests_failed > missing + recorded:
        out.append("a plain re-run retries the failed requests (finished ones come from the request cache)")
    if missing:
        out.append(f"{missing} of the failed outputs are ids a replay file lacks: a re-run will not fill them; "
                   "add their records to the file")
    if recorded:
        out.append(f"{recorded} of the failed outputs are errors a replay file records (its `error` key): a re-run "
                   "reads them again; replace those records with the outputs")
    if unreadable:
        out.append("an unreadable judge answer comes back the same from the cache: fix the judge's prompt or "
                   "parser, or raise analysis.max_failure_rate knowingly")
    return out


def decide(summary: Summary | dict) -> dict:
    """Gives {verdict, reasons, grade}: the run's decision, the reasons in the order a reader needs them.

    It reads the summary's failures, status, gate and diagnoses (a summary.json's dict is read into
    the model first; aggregate gives its summary before the decision is in it).
    """
    summary = parse(summary) if isinstance(summary, dict) else summary
    verdict, reasons = _on_numbers(summary.status, summary.gate, summary.diagnoses)
    if summary.failures.over_limit:
        said = _failure_reasons(summary.failures)
        said.append(f"on the numbers so far (failures counted as wrong): {verdict.replace('_', ' ')} — {reasons[0]}")
        return {"verdict": "INCOMPLETE", "reasons": said, "grade": summary.status.level}
    return {"verdict": verdict, "reasons": reasons, "grade": summary.status.level}


def verdicts(findings: Findings, config, baseline: Summary | None, paired, plain) -> dict:
    """Gives what the numbers come to — status, diagnoses, gate, decision — as models, for the student's findings
    or a candidate's in his place (`paired`: a non-inferiority rule's paired number; `plain`: the JSON of a part)."""
    grade = Status.model_validate(status(findings))
    found = [Diagnosis.model_validate(d) for d in plain(diagnose(findings, config, grade))]
    gate = Gate.model_validate(plain(evaluate(config.gate, findings, baseline, paired))) if config.gate else None
    pending = Summary.model_construct(**{key: getattr(findings, key) for key in findings.model_fields_set},
                                      status=grade, diagnoses=found, gate=gate)   # all but the decision
    return {"status": grade, "diagnoses": found, "gate": gate, "decision": Decision.model_validate(decide(pending))}
