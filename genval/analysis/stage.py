"""The aggregate stage: every per-example number as a headline with its n and interval, overall and per slice.

Reads `examples`, `outputs`, `scores`, `judgments`, `ops.json`, `metrics.json`,
`classification.json` and `calibration.json` (each when present); writes `summary.json`,
checked against the JSON Schema shipped in `genval/schemas/summary.schema.json`.
"""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pandas as pd

from genval.analysis import blocks, slices
from genval.analysis.decision import decide, failures
from genval.analysis.diagnosis import diagnose, status
from genval.analysis.gate import evaluate, read_baseline
from genval.analysis.judge_correction import corrected_rate
from genval.analysis.numbers import Boot, mean, minimum_detectable_effect, ratio
from genval.analysis.table import FORMAT_METRICS, answered, example_labels, failed_outputs, numbers_of, wide
from genval.config import RunConfig
from genval.progress import Progress
from genval.runfolder import Run

SCHEMA_VERSION = 2  # 2: decision, failures, answered, corrected judge rate, slice MDE


def summary_schema() -> dict:
    """Gives the JSON Schema summary.json follows (shipped as package data)."""
    return json.loads(resources.files("genval").joinpath("schemas/summary.schema.json").read_text("utf-8"))


def _optional(run: Run, name: str):
    return run.read_json(name) if run.has(name) else None


def _primary_judge(calibration: dict | None) -> str | None:
    ranking = (calibration or {}).get("ranking") or []
    return ranking[0] if ranking else None


def _judge_top(block: dict | None, calibration: dict | None, judgments: pd.DataFrame | None, boot: Boot) -> dict | None:
    """Adds the primary judge's validation, meaning, verdict shares and corrected rate to the overall judge block."""
    if not block:
        return None
    cal = ((calibration or {}).get("judges") or {}).get(block["name"])
    meaning = ((calibration or {}).get("meaning") or {}).get(block["name"])
    block["validated"] = bool(cal.get("validated")) if cal else False
    block["calibration"] = cal
    block["meaning"] = meaning
    block["mean_score"] = (block["judges"][block["name"]].get(block["pair"]) or {}).get("mean_score")
    block["corrected_equivalence_rate"] = None
    if judgments is not None and not judgments.empty:
        mine = judgments[(judgments["judge"] == block["name"]) & (judgments["pair"] == block["pair"])]
        verdicts = mine["verdict"].dropna().astype(str)
        block["verdicts"] = {k: float(v) for k, v in verdicts.value_counts(normalize=True).sort_index().items()}
        block["corrected_equivalence_rate"] = corrected_rate(mine, cal, meaning, boot.n_boot, boot.confidence,
                                                             boot.seed)
    return block


def _task_retention(numbers: pd.DataFrame, block: dict, boot: Boot) -> dict | None:
    """Gives student / teacher task quality on the primary reference metric, paired by example."""
    metric = blocks.primary_metric(block, "student~reference")
    if metric is None or metric not in block["metrics"].get("teacher~reference", {}):
        return None
    both = pd.concat([wide(numbers, "student~reference", metric).rename("s"),
                      wide(numbers, "teacher~reference", metric).rename("t")], axis=1, join="inner").dropna()
    return {"metric": metric, **ratio(both["s"], both["t"], boot)}


def _format(numbers: pd.DataFrame, block: dict, boot: Boot) -> dict:
    """Gives per role the failure share of each format metric, and content quality on the outputs that pass."""
    out: dict = {}
    content_metric = blocks.primary_metric(block, "student~reference")
    for role in ("teacher", "student"):
        for metric in FORMAT_METRICS:
            passed = wide(numbers, role, metric).dropna()
            if passed.empty:
                continue
            entry = {"failure_rate": mean(1.0 - passed, boot)}
            if content_metric:
                quality = wide(numbers, f"{role}~reference", content_metric).dropna()
                valid = quality[quality.index.isin(passed.index[passed == 1.0])]
                entry["content_on_valid"] = {"metric": content_metric, **mean(valid, boot),
                                             "all": float(quality.mean()) if len(quality) else None}
            out.setdefault(role, {})[metric] = entry
    return out


def _slices(run: Run, numbers, examples, config, boot, cls_json, primary, progress=None) -> tuple[dict, dict, dict]:
    """Gives field → value → block for every slice (ranked), where each field came from, and its members."""
    fields = slices.configured(examples)
    sources = {field: "configured" for field in fields}
    if "difficulty" not in fields:
        groups, basis = slices.difficulty(numbers)
        if groups:
            fields["difficulty"], sources["difficulty"] = groups, basis
    labels = example_labels(examples, (cls_json or {}).get("label_source") or
                            (f"field:{config.label_field}" if config.label_field else "label"))
    rare = slices.rare_classes(labels, (cls_json or {}).get("rare_classes"), config.analysis.rare_class_share)
    if rare:
        fields["rare_class"], sources["rare_class"] = rare, "classes under analysis.rare_class_share of examples"
    detail_slices = (cls_json or {}).get("slices") or {}
    out: dict = {}
    with (progress or Progress(quiet=True)).bar("aggregate slices", total=sum(map(len, fields.values())), unit="slice") as bar:
        for field, groups in fields.items():
            out[field] = {}
            for value, ids in groups.items():
                detail = (detail_slices.get(field) or {}).get(value)
                out[field][value] = blocks.build(numbers, ids, boot, detail, primary)
                bar.update(1)
            slices.rank(out[field], config.analysis.min_slice_n, blocks.headline)
            for block in out[field].values():
                if block["headline"]:
                    block["headline"]["mde"] = minimum_detectable_effect(block["headline"], boot.confidence)
    return out, sources, fields


def _answered(numbers: pd.DataFrame, failed: dict, ids: list[str], boot: Boot, primary: str | None) -> dict | None:
    """Gives the overall numbers on the answered examples only (failed outputs left out), None when none failed."""
    if not any(failed.values()):
        return None
    rows = answered(numbers, failed)
    block = blocks.build(rows, ids, boot, None, primary)
    block["fidelity"]["task_retention"] = _task_retention(rows, block, boot)
    name, head = blocks.headline(block)
    return {"note": "the same numbers with every failed or missing output left out (n counts the answered "
                    "examples); the numbers above count them as wrong",
            "failed": {role: len(bad) for role, bad in sorted(failed.items())},
            "headline": {"metric": name, **head} if name else None, "metrics": block["metrics"],
            "fidelity": block["fidelity"], "classification": block["classification"], "judge": block["judge"]}


def build_summary(run: Run, config: RunConfig, progress: Progress | None = None) -> dict:
    """Gives the whole summary of a run (without writing it): numbers, slices, status, diagnoses, gate."""
    examples = run.read_table("examples")
    outputs, judgments = _read(run, "outputs"), _read(run, "judgments")
    numbers = numbers_of(_read(run, "scores"), judgments, outputs)
    failed = failed_outputs(outputs)
    boot = Boot.of(config.analysis)
    cls_json, calibration = _optional(run, "classification.json"), _optional(run, "calibration.json")
    primary = _primary_judge(calibration)
    all_ids = examples["id"].astype(str).tolist()
    overall = blocks.build(numbers, all_ids, boot, (cls_json or {}).get("overall"), primary)
    if overall["classification"] is not None and cls_json:
        overall["classification"]["temperature"] = cls_json.get("temperature")
    overall["fidelity"]["task_retention"] = _task_retention(numbers, overall, boot)
    slice_blocks, sources, members = _slices(run, numbers, examples, config, boot, cls_json, primary, progress)
    name, head = blocks.headline(overall)
    ops = _optional(run, "ops.json") or {}
    summary = {
        "schema_version": SCHEMA_VERSION, "name": config.name, "task": config.task,
        "eval_set": {"path": str(config.eval_set), "sha256": run.manifest.get("eval_set", {}).get("sha256"),
                     "n": len(examples)},
        "settings": {"bootstrap": boot.n_boot, "confidence": boot.confidence, "seed": boot.seed,
                     "min_slice_n": config.analysis.min_slice_n,
                     "metrics": (_optional(run, "metrics.json") or {}).get("settings", {})},
        "headline": {"metric": name, **head} if name else None,
        "metrics": overall["metrics"], "fidelity": overall["fidelity"],
        "classification": overall["classification"],
        "judge": _judge_top(overall["judge"], calibration, judgments, boot),
        "generation": overall["generation"],
        "errors": _error_counts(outputs),
        "failures": failures(outputs, judgments, config.analysis.max_failure_rate),
        "answered": _answered(numbers, failed, all_ids, boot, primary),
        "format": _format(numbers, overall, boot),
        "slices": slice_blocks, "slice_sources": sources,
        # Membership of the slices genval derived (not in the examples table), for the report's drill-down.
        "derived_slices": {field: {value: ids for value, ids in groups.items()}
                           for field, groups in members.items() if sources.get(field) != "configured"},
        "critical": list(config.critical),
        "ops": {"teacher": (ops.get("roles") or {}).get("teacher"), "student": (ops.get("roles") or {}).get("student"),
                "roles": ops.get("roles") or {}, "savings": ops.get("savings") or {},
                "savings_basis": ops.get("savings_basis")},
    }
    summary["status"] = status(summary)
    summary["diagnoses"] = diagnose(summary, config)
    summary["gate"] = evaluate(config.gate, summary, read_baseline(config.gate.baseline), numbers, members) \
        if config.gate else None
    summary["decision"] = decide(summary)
    return json.loads(json.dumps(summary, default=_plain))


def _read(run: Run, name: str) -> pd.DataFrame | None:
    return run.read_table(name) if run.has(name) else None


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _error_counts(outputs: pd.DataFrame | None) -> dict:
    """Gives per role how many model calls failed, and how many outputs there were."""
    if outputs is None:
        return {}
    return {role: {"failed": int(group["error"].notna().sum()), "n": int(len(group))}
            for role, group in outputs.groupby("role", sort=True)}


def aggregate(run: Run, config: RunConfig, progress: Progress) -> dict:
    """Writes summary.json, validated against its schema; gives the status and gate outcome for the manifest."""
    summary = build_summary(run, config, progress)
    jsonschema.validate(summary, summary_schema())
    run.write_json("summary.json", summary)
    gate = summary["gate"]
    if gate is not None:
        progress.say(f"gate: {'PASS' if gate['passed'] else 'FAIL'}" +
                     "".join(f"\n  failing: {line}" for line in gate["failing"]))
    # Not "status": the manifest's stage record keeps that key for done/failed.
    return {"level": summary["status"]["level"], "diagnoses": len(summary["diagnoses"]),
            "gate": None if gate is None else ("pass" if gate["passed"] else "fail"),
            "verdict": summary["decision"]["verdict"]}
