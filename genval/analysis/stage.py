"""The aggregate stage: every per-example number as a headline with its n and interval, overall and per slice.

Reads `examples`, `outputs`, `scores`, `judgments`, `ops.json`, `metrics.json` and
`calibration.json` (each when present), in batches (genval.analysis.collect); writes
`summary.json`, checked against the JSON Schema shipped in `genval/schemas/summary.schema.json`.
Every further candidate (`student_v2`, …) gets, under `candidates`, the numbers, slices, gate
and decision the student gets, computed by the same functions with it in the student's place.
"""

from __future__ import annotations

import json
from importlib import resources

import jsonschema

from genval import registry
from genval.analysis import blocks, classification, slices
from genval.analysis.blocks import as_role
from genval.analysis.collect import Collected, collect
from genval.analysis.decision import decide, failures
from genval.analysis.diagnosis import diagnose, status
from genval.analysis.gate import evaluate, read_baseline
from genval.analysis.judge_correction import cells_from, corrected, two_by_two
from genval.analysis.numbers import Boot, empty, minimum_detectable_effect
from genval.analysis.resampling import ALL
from genval.analysis.table import FORMAT_METRICS, says_equivalent
from genval.config import RunConfig
from genval.errors import GenvalError
from genval.metrics.corpus import corpus_numbers
from genval.models.ops import savings
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


def _judge_top(block: dict | None, calibration: dict | None, found: Collected, boot: Boot,
               view: blocks.View | None = None) -> dict | None:
    """Adds the primary judge's validation, meaning and verdict shares to the overall judge block.

    Its corrected rates (Rogan–Gladen, PPI++) come with the block from the per-example cells
    (blocks.judge); a calibration.json without per-item ratings (an older genval's) gives them
    for the whole run only, from its confusion matrix.
    """
    if not block:
        return None
    cal = ((calibration or {}).get("judges") or {}).get(block["name"])
    meaning = ((calibration or {}).get("meaning") or {}).get(block["name"])
    block["validated"] = bool(cal.get("validated")) if cal else False
    block["calibration"] = {k: v for k, v in cal.items() if k != "rated"} if cal else None  # size: not per item
    block["meaning"] = meaning
    block["mean_score"] = (block["judges"][block["name"]].get(block["pair"]) or {}).get("mean_score")
    key = (block["name"], view.stored(block["pair"]) if view else block["pair"])
    if key in found.judges.rates:
        counts = found.judges.verdicts.get(key, {})
        total = sum(counts.values())
        block["verdicts"] = {k: counts[k] / total for k in sorted(counts)}
        if block.get("corrected_equivalence_rate") is None and cal and not cal.get("rated") and cal.get("confusion"):
            equivalent = says_equivalent(meaning)
            table = two_by_two(cal["confusion"], equivalent) if equivalent else None
            judged, positive, unanswered = found.judges.rates[key]
            cells = cells_from(table, positive, judged, unanswered) if table else None
            if cells is not None:
                block["corrected_equivalence_rate"], block["equivalence_rate_ppi"] = corrected(cells, boot)
    return block


def _task_retention(view: blocks.View, block: dict) -> dict | None:
    """Gives student / teacher task quality on the primary reference metric, paired by example."""
    metric = blocks.primary_metric(block, "student~reference")
    if metric is None or metric not in block["metrics"].get("teacher~reference", {}):
        return None
    return {"metric": metric, **view.ratio("student~reference", "teacher~reference", metric)}


def _retention(view: blocks.View, block: dict) -> dict:
    """Gives every reference metric's student / teacher ratio, paired by example (the report's metric pivot)."""
    student, teacher = block["metrics"].get("student~reference", {}), block["metrics"].get("teacher~reference", {})
    return {metric: view.ratio("student~reference", "teacher~reference", metric)
            for metric in sorted(set(student) & set(teacher) - {"label_correct", "kl"})}


def _format(view: blocks.View, block: dict) -> dict:
    """Gives per role the failure share of each format metric, and content quality on the outputs that pass."""
    out: dict = {}
    content_metric = blocks.primary_metric(block, "student~reference")
    for role in ("teacher", "student"):
        for metric in FORMAT_METRICS:
            entry = {"failure_rate": view.feature(f"fail:{role}", metric)}
            if not entry["failure_rate"]["n"]:
                continue
            if content_metric:
                entry["content_on_valid"] = {"metric": content_metric, **view.feature(f"valid:{role}", metric),
                                             "all": view.mean(f"{role}~reference", content_metric)["value"]}
            out.setdefault(role, {})[metric] = entry
    return out


def _slices(found: Collected, config: RunConfig, boot: Boot, primary, progress: Progress | None,
            headline: str | None, role: str = "student") -> tuple[dict, dict]:
    """Gives field → value → block for every slice, and per field how its slices rank by the run's `headline`
    number (`role`: the candidate in the student's place)."""
    out: dict = {}
    ranking: dict = {}
    total = sum(map(len, found.fields.values()))
    label = "aggregate slices" + ("" if role == "student" else f" ({role})")
    found_spec = registry.spec(headline.split(" (")[0]) if headline else None
    sign = -1 if found_spec is not None and found_spec.better == "lower" else 1
    with (progress or Progress(quiet=True)).bar(label, total=total, unit="slice") as bar:
        for field, values in found.fields.items():
            out[field] = {}
            for value, code in values:
                view = found.view((field, code), role=role)
                block = blocks.build(view, _held(found, role), primary, config.analysis.min_slice_n)
                _retentions(view, block, every=role == "student")
                out[field][value] = block
                bar.update(1)
            ranking[field] = slices.rank(out[field], config.analysis.min_slice_n, headline, blocks.named, sign)
            for block in out[field].values():
                if block["headline"]:
                    block["headline"]["mde"] = minimum_detectable_effect(block["headline"], boot.confidence)
    return out, ranking


def _retentions(view: blocks.View, block: dict, every: bool = True) -> None:
    """Adds task retention and (`every`) each reference metric's retention to a block's fidelity."""
    block["fidelity"]["task_retention"] = _task_retention(view, block)
    if every:
        block["fidelity"]["retention"] = _retention(view, block)


def _answered(found: Collected, primary: str | None) -> dict | None:
    """Gives the overall numbers on the answered examples only (failed outputs left out), None when none failed."""
    if not found.answered:
        return None
    view = found.view(ALL, "answered")
    block = blocks.build(view, None, primary, 0)
    _retentions(view, block, every=False)
    name, head = blocks.headline(block)
    return {"note": "the same numbers with every failed or missing output left out (n counts the answered "
                    "examples); the numbers above count them as wrong",
            "failed": {role: failed for role, (failed, *_) in sorted(found.roles.items()) if failed},
            "headline": {"metric": name, **head} if name else None, "metrics": block["metrics"],
            "fidelity": block["fidelity"], "classification": block["classification"], "judge": block["judge"]}


def _corpus(run: Run, errors: dict) -> dict:
    """Gives the corpus numbers (corpus BLEU, field micro/macro F1, MAE/RMSE/R²): a reduce over the scores' statistics.

    A failed output has no text to count, so these are over the answered outputs; the note says how many failed.
    """
    pairs = corpus_numbers(run.iter_table("scores", columns=["pair", "metric", "stats", "signature"])) \
        if run.has("scores") else {}
    failed = {role: e["failed"] for role, e in errors.items() if e["failed"]}
    note = "over the answered outputs only" + ("" if not failed else ": failed outputs left out (" + ", ".join(
        f"{role} {count}" for role, count in sorted(failed.items())) + ")")
    return {"note": note, "pairs": pairs}


def build_summary(run: Run, config: RunConfig, progress: Progress | None = None) -> dict:
    """Gives the whole summary of a run (without writing it): numbers, slices, status, diagnoses, gate."""
    boot = Boot.of(config.analysis)
    found = collect(run, config, config.gate.rules if config.gate else (), progress)
    calibration = _optional(run, "calibration.json")
    primary = _primary_judge(calibration)
    view = found.view()
    overall = blocks.build(view, found.held, primary, config.analysis.min_slice_n)
    if overall["classification"] is not None and found.held is not None:
        classification.overall_extras(overall["classification"], found.held, config)
    _retentions(view, overall)
    name, head = blocks.headline(overall)
    ops = _optional(run, "ops.json") or {}
    summary = {
        "schema_version": SCHEMA_VERSION, "name": config.name, "task": config.task,
        "eval_set": {"path": str(config.eval_set), "sha256": run.manifest.get("eval_set", {}).get("sha256"),
                     "n": found.n},
        "settings": {"bootstrap": boot.n_boot, "confidence": boot.confidence, "seed": boot.seed,
                     "min_slice_n": config.analysis.min_slice_n, "interval_method": found.engine.name,
                     "metrics": (_optional(run, "metrics.json") or {}).get("settings", {})},
        "headline": {"metric": name, **head} if name else None,
        "metrics": overall["metrics"], "fidelity": overall["fidelity"],
        "classification": overall["classification"],
        "judge": _judge_top(overall["judge"], calibration, found, boot),
        "generation": overall["generation"],
        "errors": {role: {"failed": failed, "n": n} for role, (failed, n, *_) in found.roles.items()},
        "failures": failures(found.roles, found.judges.asked, config.analysis.max_failure_rate),
        "answered": _answered(found, primary),
        "format": _format(view, overall),
        "slices": None, "slice_ranking": None, "slice_sources": found.sources,
        "critical": list(config.critical),
        "ops": {"teacher": (ops.get("roles") or {}).get("teacher"), "student": (ops.get("roles") or {}).get("student"),
                "roles": ops.get("roles") or {}, "savings": ops.get("savings") or {},
                "savings_basis": ops.get("savings_basis")},
    }
    summary["slices"], summary["slice_ranking"] = _slices(found, config, boot, primary, progress, name)
    summary["corpus"] = _corpus(run, summary["errors"])
    summary["status"] = status(summary)
    summary["diagnoses"] = diagnose(summary, config)
    summary["gate"] = evaluate(config.gate, summary, read_baseline(config.gate.baseline), found.paired) \
        if config.gate else None
    summary["decision"] = decide(summary)
    if found.candidates:
        summary["candidates"] = {role: _candidate(role, summary, found, config, boot, calibration, progress)
                                 for role in found.candidates}
    return json.loads(json.dumps(summary, default=_plain))


def _named(block: dict, role: str) -> dict:
    """Gives a block of a candidate seen as the student with its pairs under their own names (`student_v2~teacher`)."""
    def rename(pairs: dict) -> dict:
        return {as_role(pair, "student", role): v for pair, v in pairs.items()}

    out = {**block, "metrics": rename(block["metrics"]), "generation": rename(block.get("generation") or {})}
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


def _held(found: Collected, role: str):
    """Gives the held labels and probabilities with `role` in the student's place (its ECE, F1, Brier, confusion)."""
    return found.held.as_role(role) if found.held is not None and role in found.held.roles else None


def _candidate_ops(ops: dict, role: str) -> dict:
    """Gives the ops part of a candidate's summary: its figures as the student's, its savings against the teacher."""
    roles = ops.get("roles") or {}
    mine = {"teacher": roles.get("teacher"), "student": roles.get(role)}
    return {**mine, "roles": mine, "savings": savings(mine) if all(mine.values()) else {},
            "savings_basis": ops.get("savings_basis")}


def _candidate(role: str, summary: dict, found: Collected, config: RunConfig, boot: Boot, calibration: dict | None,
               progress: Progress | None) -> dict:
    """Gives a further candidate's headline, its pairs' numbers, fidelity, slices, status, diagnoses, gate and
    decision: the student's summary rebuilt with `role` in the student's place, through the same functions."""
    primary = _primary_judge(calibration)
    view = found.view(role=role)
    block = blocks.build(view, _held(found, role), primary, config.analysis.min_slice_n)
    _retentions(view, block, every=False)
    name, head = blocks.headline(block)
    roles = {r: found.roles[r] for r in ("teacher", role) if r in found.roles}
    cand_slices, cand_ranking = _slices(found, config, boot, primary, progress, name, role)
    mine = {**summary, "headline": {"metric": name, **head} if name else None, "metrics": block["metrics"],
            "fidelity": block["fidelity"], "classification": block["classification"],
            "judge": _judge_top(block["judge"], calibration, found, boot, view), "generation": block["generation"],
            "failures": failures(roles, found.judges.asked, config.analysis.max_failure_rate), "answered": None,
            "format": _format(view, block), "slices": cand_slices,
            "ops": _candidate_ops(summary["ops"], role)}
    mine["status"] = status(mine)
    mine["diagnoses"] = diagnose(mine, config)

    def paired(rule):
        try:
            return found.paired(rule, role)
        except GenvalError:  # the candidate lacks the rule's number: its test has no interval, and fails
            return empty()

    mine["gate"] = evaluate(config.gate, mine, read_baseline(config.gate.baseline), paired) if config.gate else None
    named = _named(block, role)
    own = {pair: m for pair, m in named["metrics"].items() if pair.partition("~")[0] == role}
    return {"headline": _headline_named(mine["headline"], role), "metrics": own,
            "fidelity": mine["fidelity"], "classification": mine["classification"], "judge": named["judge"],
            "generation": named["generation"], "failures": mine["failures"], "format": mine["format"],
            "slices": {field: {value: _named(b, role) for value, b in values.items()}
                       for field, values in mine["slices"].items()}, "slice_ranking": cand_ranking,
            "status": mine["status"], "diagnoses": mine["diagnoses"], "gate": mine["gate"], "decision": decide(mine)}


def paired_numbers(run: Run, config: RunConfig, rules) -> callable:
    """Gives, for `genval gate` on a finished run, each non-inferiority rule's paired number from the run's tables."""
    return collect(run, config, rules).paired


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def aggregate(run: Run, config: RunConfig, progress: Progress) -> dict:
    """Writes summary.json, validated against its schema; gives the status and gate outcome for the manifest."""
    summary = build_summary(run, config, progress)
    jsonschema.validate(summary, summary_schema())
    run.write_json("summary.json", summary)
    gate = summary["gate"]  # the CLI prints its outcome with the decision, on every run (pipeline.outcome)
    # Not "status": the manifest's stage record keeps that key for done/failed.
    return {"level": summary["status"]["level"], "diagnoses": len(summary["diagnoses"]),
            "gate": None if gate is None else ("pass" if gate["passed"] else "fail"),
            "verdict": summary["decision"]["verdict"]}
