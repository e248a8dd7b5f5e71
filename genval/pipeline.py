"""The stages in order: generate → score → judge → calibrate → aggregate → report.

Each stage is a function `(run, config, …) -> record` that reads tables from the run
folder and writes tables to it. A stage runs only when the hash of its inputs (the tables
it reads and the part of the config it uses) differs from the one its last finished run
recorded, so a re-run after a crash or a config change redoes only what changed.

generate, score and judge are maps over batches of rows; an executor drives them
(genval.executors: this machine, streaming, or Ray Data). The executor never changes a
number, so it is in no stage's input hash.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from genval.analysis.stage import aggregate
from genval.checks import check_inputs
from genval.config import RunConfig, load_config, parse_config
from genval.errors import GenvalError
from genval.evalset import canonical
from genval.executors import check_executor, make_executor
from genval.generate import generate
from genval.judging.calibrate import calibrate
from genval.judging.labels import update_table
from genval.judging.stage import judge, judge_scopes
from genval.metrics.stage import score
from genval.models.cache import RequestCache
from genval.progress import Progress
from genval.report.stage import report
from genval.runfolder import Run, environment, file_sha256, table_schema
from genval.summary import OlderSummary, Summary
from genval.summary import read as read_summary_model


def _file_digest(path: Path | None) -> str | None:
    if path is None:
        return None
    return file_sha256(path) if Path(path).is_file() else None


def _models_key(config: RunConfig) -> dict:
    """Gives each role's model config, with what is on disk behind it: a replay file's digest, a local model
    folder's (a checkpoint retrained in place is another model, though its path is the same)."""
    from genval.models.hf import _model_fingerprint

    out = {}
    for role, model in config.models.items():
        data = model.model_dump(mode="json")
        if model.backend == "replay":
            data["path_sha256"] = _file_digest(model.path)
        elif model.backend in ("hf", "vllm") and Path(model.model).is_dir():
            data["folder"] = _model_fingerprint(model.model)
        out[role] = data
    return out


def _judges_key(config: RunConfig) -> list:
    out = []
    for ref in config.judge:
        data = ref.model_dump(mode="json")
        data["config_sha256"] = _file_digest(ref.config)
        if ref.model.backend == "replay":
            data["model"]["path_sha256"] = _file_digest(ref.model.path)
        out.append(data)
    return out


def _scores_with_models(config: RunConfig) -> bool:
    """Says whether a configured metric runs the roles' models (token fidelity): then they are the score stage's input."""
    from genval.metrics import get_metric

    return any(get_metric(spec.name).role_models for spec in config.metric_specs)


@dataclass
class Stage:
    """A stage: its function, the artifacts it reads and writes, and the config it depends on."""

    name: str
    run: Callable
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    config_key: Callable[[RunConfig], object]
    needs_cache: bool = False
    version: int = 1  # bump when the stage's code changes its outputs
    maps: bool = False  # a map over batches: it takes the executor


STAGES = [
    Stage("generate", generate, ("examples",), ("outputs", "ops.json"),
          lambda c: {"models": _models_key(c), "generation": c.generation.model_dump(mode="json"), "task": c.task,
                     "labels": c.labels, "schema": _file_digest(c.schema_path) if c.task == "extraction" else None},
          needs_cache=True, version=5, maps=True),  # 5: streamed; 4: failed_requests (not current with failures)
    # score and judge write per-example rows only: analysis settings, slices and human labels are not theirs
    Stage("score", score, ("examples", "outputs"), ("scores", "metrics.json"),
          lambda c: {"metrics": [m.model_dump(mode="json") for m in c.metric_specs], "task": c.task,
                     "schema": _file_digest(c.schema_path), "labels": c.labels, "label_field": c.label_field,
                     **({"models": _models_key(c)} if _scores_with_models(c) else {})},
          version=7, maps=True),  # 7: label KL never below 0; 6: several references; 5: signature per row
    Stage("judge", judge, ("examples", "outputs"), ("judgments",),
          lambda c: {"judges": _judges_key(c), "task": c.task},
          needs_cache=True, version=4, maps=True),  # 4: streamed, no calibration.json; 3: `equivalent`, unanswered
    Stage("calibrate", calibrate, ("examples", "outputs", "judgments", "labels"), ("calibration.json",),
          lambda c: {"judges": _judges_key(c), "analysis": c.analysis.model_dump(
              mode="json", include={"bootstrap", "confidence", "seed", "min_slice_n"})}),
    Stage("aggregate", aggregate,
          ("examples", "outputs", "scores", "judgments", "ops.json", "metrics.json", "calibration.json"),
          ("summary.json",),
          lambda c: {"analysis": c.analysis.model_dump(mode="json"), "slices": c.slices, "critical": c.critical,
                     "labels": c.labels, "label_field": c.label_field, "task": c.task,
                     "gate": c.gate.model_dump(mode="json") if c.gate else None,
                     "baseline": _file_digest(c.gate.baseline / "summary.json" if c.gate.baseline.is_dir()
                                              else c.gate.baseline) if c.gate and c.gate.baseline else None},
          # 7: a 0/1 KL or BLEU is no share; judge rates post-stratified; difficulty by both models' scores;
          # 6: typed summary (schema 3); 5: corpus, retention
          version=7),
    Stage("report", report, ("summary.json", "calibration.json", "examples", "outputs", "scores", "judgments"),
          ("report.md", "report.html"),
          lambda c: {"name": c.name, "seed": c.analysis.seed},
          version=6),  # 6: candidates' token fidelity (and KL, ECE in report.md); 5: decision and why, judges
]
STAGE_NAMES = [s.name for s in STAGES]


def input_hash(run: Run, stage: Stage, config: RunConfig) -> str:
    """Gives the hash of everything a stage reads: its input artifacts and its slice of the config."""
    blob = {
        "stage": stage.name,
        "version": stage.version,
        "config": stage.config_key(config),
        "inputs": {name: run.artifact_hash(name) for name in stage.reads},
    }
    return hashlib.sha256(canonical(blob).encode("utf-8")).hexdigest()


def _is_current(run: Run, stage: Stage, digest: str) -> bool:
    """Says whether a stage can be skipped: done, same inputs, outputs untouched, and no failed request.

    A stage that finished with failed requests is not current, so a plain re-run retries
    exactly those (the request cache answers the finished ones; it never stores a failure).
    """
    record = run.manifest.get("stages", {}).get(stage.name, {})
    if record.get("status") != "done" or record.get("input_hash") != digest or record.get("failed_requests"):
        return False
    outputs = record.get("outputs", {})
    return all(run.has(name) and outputs.get(name) == run.artifact_hash(name) for name in stage.writes)


def prepare(config: RunConfig, out_dir: Path, executor: str | None = None) -> Run:
    """Checks every input, then opens (or creates) the run folder and writes its `examples` table when the eval set or prompt changed.

    Nothing is written before `check_inputs` has passed, nor before the executor (`executor`
    overriding the config's) is known to be able to start: a mistake leaves the folder as it was.
    """
    evalset = check_inputs(config, Path(out_dir)).evalset
    check_executor(config, executor)
    run = Run(Path(out_dir) / config.name)
    run.root.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(canonical({"sha256": evalset.sha256, "prompt": config.prompt,
                                    "system": config.system_prompt, "slices": config.slices}).encode()).hexdigest()
    if run.manifest.get("examples_key") != key or not run.has("examples"):
        with run.table_writer("examples", schema=_examples_schema(evalset)) as out:
            for frame in evalset.batches():
                out.write(frame)
        run.manifest["examples_key"] = key
    update_table(run, config.human_labels, judge_scopes(config))  # the config's labels and RUN/labels/*.jsonl
    run.manifest["eval_set"] = {"path": str(config.eval_set), "sha256": evalset.sha256, "n": evalset.n}
    run.manifest["config"] = config.resolved()
    run.manifest["environment"] = environment()
    run.save_manifest()
    return run


def _examples_schema(evalset):
    """Gives the examples table's schema: text columns; `system` all null (as it always was) without a system prompt."""
    import pyarrow as pa

    return table_schema({name: ((pa.null(), "object") if name == "system" and not evalset.system_prompt
                                else (pa.string(), "str")) for name in evalset.columns()})


def check_force(force) -> None:
    """Raises for a `--force` name that is no stage (before anything is written)."""
    unknown = sorted(set(force) - set(STAGE_NAMES))
    if unknown:
        raise GenvalError(f"--force: unknown stage '{unknown[0]}' (stages: {', '.join(STAGE_NAMES)})")


def run_stages(run: Run, config: RunConfig, progress: Progress, force=(), only: list[str] | None = None,
               executor: str | None = None) -> dict:
    """Runs the stages whose inputs changed (and those in `force`); gives name → 'ran' | 'skipped'.

    `executor` ('local' | 'ray') overrides the config's `executor.kind`; it is started at the
    first stage that maps over batches.
    """
    check_force(force)
    cache_path = config.cache or (run.root.parent / "cache.sqlite")
    cache = None
    driver = None
    done = {}
    try:
        for stage in STAGES:
            if only is not None and stage.name not in only:
                continue
            digest = input_hash(run, stage, config)
            if stage.name not in force and _is_current(run, stage, digest):
                progress.say(f"{stage.name}: skipped (inputs unchanged)")
                done[stage.name] = "skipped"
                continue
            # Opened before the stage is marked running (a bad path leaves no stage 'running'), and once:
            # `cache or …` would open a second one whenever the first is empty (RequestCache has __len__).
            if stage.needs_cache and cache is None:
                cache = RequestCache(cache_path)
            record = run.stage(stage.name)
            record.clear()
            record.update({"status": "running", "input_hash": digest, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
            run.save_manifest()
            start = time.perf_counter()
            args = (run, config, progress)
            if stage.needs_cache:
                args = (*args, cache)
            if stage.maps:
                driver = driver or make_executor(config, executor)
                args = (*args, driver)
            try:
                result = stage.run(*args) or {}
            except BaseException as exc:
                record.update({"status": "failed", "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
                run.save_manifest()
                raise
            record.update({
                "status": "done", "seconds": round(time.perf_counter() - start, 3),
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "outputs": {name: run.artifact_hash(name) for name in stage.writes}, **_jsonable(result),
            })
            run.save_manifest()
            done[stage.name] = "ran"
    finally:
        if cache is not None:
            cache.close()
        if driver is not None:
            driver.close()
    return done


def _jsonable(result: dict) -> dict:
    return json.loads(json.dumps(result, default=str))


def outcome(run: Run | str | Path, stages: list[str] | None = None) -> dict:
    """Gives how a run ended: failed requests per stage, the decision and gate outcome (when aggregated), the exit code.

    Exit code 3 when requests failed or the decision is INCOMPLETE, else 0. `stages` limits
    both to the stages a command ran (the decision only when `aggregate` is among them).
    """
    run = run if isinstance(run, Run) else Run(Path(run))
    names = stages or STAGE_NAMES
    records = run.manifest.get("stages", {})
    failed = {name: int(records[name].get("failed_requests") or 0) for name in names
              if name in records and records[name].get("failed_requests")}
    decision = gate = None
    if "aggregate" in names and run.has("summary.json"):
        summary = read_summary_model(run.root)
        decision, gate = summary.decision.dump(), summary.gate
    incomplete = bool(failed) or (decision is not None and decision["verdict"] == "INCOMPLETE")
    # Of the failed requests, those a re-run cannot fill (ids a replay file lacks), and what the files lack
    missing = {name: int(records[name].get("missing") or 0) for name in failed if records[name].get("missing")}
    recorded = {name: int(records[name].get("recorded") or 0) for name in failed if records[name].get("recorded")}
    notes = [n for name in names if name in records for n in records[name].get("replay_notes") or []]
    return {"failed_requests": failed, "missing": missing, "recorded": recorded, "replay_notes": notes,
            "decision": decision,
            "exit_code": 3 if incomplete else 0,
            "gate": None if gate is None else {"passed": gate.passed, "failing": gate.failing}}


def current_summary(run: Run, progress: Progress | None = None) -> Summary:
    """Gives a finished run's summary.json as the model; one an older genval wrote is re-aggregated first.

    An older summary (a smaller `schema_version`) is never half-read: when the run folder holds
    its tables and config, the aggregate stage runs again on them (and says so); otherwise, or for
    a summary.json that is no genval summary of any version, the error is one line naming the file.
    """
    try:
        return read_summary_model(run.root)
    except OlderSummary as exc:
        if not run.has("examples") or not run.manifest.get("config"):
            raise
        (progress or Progress()).say(f"{exc.message.split(';')[0]}: re-aggregating it from the run's tables")
    config = parse_config(run.manifest["config"], run.root, source=f"{run.root}/manifest.json")
    run_stages(run, config, progress or Progress(quiet=True), force=("aggregate",), only=["aggregate"])
    return read_summary_model(run.root)


def report_path(run: Run) -> Path:
    html = run.path("report.html")
    return html if html.exists() else run.path("report.md")


def run_pipeline(config_path, out_dir="runs", force=(), quiet=False, progress: Progress | None = None,
                 executor: str | None = None) -> Path:
    """Runs every stage of the config at `config_path`; gives the run folder's path.

    Its `summary.json` holds the `decision`; `outcome(path)` gives it with the failed requests
    and the exit code `genval run` would give. `executor` ('local' | 'ray') overrides the config's.
    """
    config = load_config(config_path)
    check_force(force)
    progress = progress or Progress(quiet=quiet)
    run = prepare(config, Path(out_dir), executor)
    run_stages(run, config, progress, force=tuple(force), executor=executor)
    return run.root
