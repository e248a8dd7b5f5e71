"""The aggregate stage: every per-example number as a headline with its n and interval, overall and per slice.

Reads `examples`, `outputs`, `scores`, `judgments`, `ops.json`, `metrics.json` and
`calibration.json` (each when present), in batches (genval.analysis.collect); builds the typed
`Summary` (genval.summary: validated whole, so a key no model knows fails here, never in a
reader) and writes summary.json from it. Every further candidate (`student_v2`, …) gets, under
`candidates`, the numbers, slices, gate and decision the student gets, computed by the same
functions with it in the student's place (genval.analysis.candidates).
"""

from __future__ import annotations

import json

from genval.analysis import blocks, classification
from genval.analysis.candidates import candidate
from genval.analysis.collect import collect
from genval.analysis.decision import failures, verdicts
from genval.analysis.gate import read_baseline
from genval.analysis.numbers import Boot
from genval.analysis.parts import answered, corpus, format_checks, judge_top, retentions, slices_of
from genval.analysis.table import read_calibration
from genval.config import RunConfig
from genval.progress import Progress
from genval.runfolder import Run
from genval.summary import SCHEMA_VERSION, Findings, Summary, schema


def summary_schema() -> dict:
    """Gives the JSON Schema summary.json follows, generated from the models (docs/summary.schema.json)."""
    return schema()


def _optional(run: Run, name: str) -> dict:
    return run.read_json(name) if run.has(name) else {}


def _ops(run: Run) -> dict:
    """Gives the ops part: each role's figures (ops.json), the teacher's and student's repeated, the savings."""
    ops = _optional(run, "ops.json")
    roles = ops.get("roles") or {}
    return {"teacher": roles.get("teacher"), "student": roles.get("student"), "roles": roles,
            "savings": ops.get("savings") or {}, "savings_basis": ops.get("savings_basis")}


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def plain(part):
    """Gives a part built from numpy sums as plain JSON (numpy scalars as Python numbers)."""
    return json.loads(json.dumps(part, default=_plain))


def summarize(run: Run, config: RunConfig, progress: Progress | None = None) -> Summary:
    """Gives the whole summary of a run (without writing it): numbers, slices, status, diagnoses, gate, decision."""
    boot = Boot.of(config.analysis)
    found = collect(run, config, config.gate.rules if config.gate else (), progress)
    calibration = read_calibration(run)
    primary = calibration.primary if calibration else None
    view = found.view()
    overall = blocks.build(view, found.held, primary, config.analysis.min_slice_n)
    if overall["classification"] is not None and found.held is not None:
        classification.overall_extras(overall["classification"], found.held, config)
    retentions(view, overall)
    name, head = blocks.headline(overall)
    student = {
        "schema_version": SCHEMA_VERSION, "name": config.name, "task": config.task,
        "eval_set": {"path": str(config.eval_set), "sha256": run.manifest.get("eval_set", {}).get("sha256"),
                     "n": found.n},
        "settings": {"bootstrap": boot.n_boot, "confidence": boot.confidence, "seed": boot.seed,
                     "min_slice_n": config.analysis.min_slice_n, "interval_method": found.engine.name,
                     "metrics": _optional(run, "metrics.json").get("settings", {})},
        "headline": {"metric": name, **head} if name else None,
        "metrics": overall["metrics"], "fidelity": overall["fidelity"],
        "classification": overall["classification"],
        "judge": judge_top(overall["judge"], calibration, found, boot),
        "generation": overall["generation"],
        "errors": {role: {"failed": failed, "n": n} for role, (failed, n, *_) in found.roles.items()},
        "failures": failures(found.roles, found.judges.asked, config.analysis.max_failure_rate),
        "answered": answered(found, primary),
        "format": format_checks(view, overall),
        "slices": None, "slice_ranking": None, "slice_sources": found.sources,
        "critical": list(config.critical), "ops": _ops(run),
    }
    student["slices"], student["slice_ranking"] = slices_of(found, config, boot, primary, progress, name)
    student["corpus"] = corpus(run, student["errors"])
    student = plain(student)
    findings = Findings.model_validate(student)
    baseline = read_baseline(config.gate.baseline) if config.gate else None
    out = {key: getattr(findings, key) for key in findings.model_fields_set}
    out.update(verdicts(findings, config, baseline, found.paired, plain))
    if found.candidates:
        out["candidates"] = {role: candidate(role, student, found, config, boot, calibration, baseline, progress,
                                             plain) for role in found.candidates}
    return Summary(**out)


def build_summary(run: Run, config: RunConfig, progress: Progress | None = None) -> dict:
    """Gives the whole summary of a run as summary.json's JSON (without writing it)."""
    return summarize(run, config, progress).dump()


def paired_numbers(run: Run, config: RunConfig, rules) -> callable:
    """Gives, for `genval gate` on a finished run, each non-inferiority rule's paired number from the run's tables."""
    return collect(run, config, rules).paired


def aggregate(run: Run, config: RunConfig, progress: Progress) -> dict:
    """Writes summary.json from the typed summary; gives the status, decision and gate outcome for the manifest."""
    summary = summarize(run, config, progress)
    run.write_json("summary.json", summary.dump())
    gate = summary.gate  # the CLI prints its outcome with the decision, on every run (pipeline.outcome)
    # Not "status": the manifest's stage record keeps that key for done/failed.
    return {"level": summary.status.level, "diagnoses": len(summary.diagnoses),
            "gate": None if gate is None else ("pass" if gate.passed else "fail"),
            "verdict": summary.decision.verdict}
