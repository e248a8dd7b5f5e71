"""The generate stage: every role (teacher, student, more candidates) over the same prompts.

Reads `examples`; writes `outputs` (one row per example × role) and `ops.json`. Teacher and
student go through the same requests — same prompt, same parameters — so that the
comparison is clean; only the engine behind each differs.
"""

from __future__ import annotations

import json

import pandas as pd

from genval.config import RunConfig
from genval.models import CallStats, Params, Request, generate_cached, load_backend
from genval.models.cache import RequestCache
from genval.models.ops import role_ops, savings, savings_basis
from genval.progress import Progress
from genval.runfolder import Run

OUTPUT_COLUMNS = ["id", "role", "text", "prompt_tokens", "completion_tokens", "latency_s", "label_probs", "error", "cached"]


def task_requests(examples: pd.DataFrame, config: RunConfig) -> list[Request]:
    """Gives the one list of requests that every role answers."""
    gen = config.generation
    params = Params(max_tokens=gen.max_tokens, temperature=gen.temperature, top_p=gen.top_p,
                    seed=gen.seed, stop=tuple(gen.stop))
    labels = tuple(config.labels) if config.labels and config.task == "classification" else None
    schema = config.load_schema() if config.task == "extraction" else None
    return [
        Request(id=row.id, prompt=row.prompt, system=row.system, params=params, labels=labels, schema=schema,
                label_delimiter=gen.label_delimiter)
        for row in examples.itertuples(index=False)
    ]


def generate(run: Run, config: RunConfig, progress: Progress, cache: RequestCache) -> dict:
    """Runs each role over the eval set; gives the stage's record (model calls, notes)."""
    examples = run.read_table("examples")
    requests = task_requests(examples, config)
    rows, ops, notes, errors = [], {}, [], {}
    calls = 0
    for role in config.roles:
        backend = load_backend(config.models[role], labels=config.labels)
        stats = CallStats()
        with progress.bar(f"generate {role}", total=len(requests)) as bar:
            completions = generate_cached(backend, requests, cache, on_done=lambda _c: bar.update(1), stats=stats,
                                          measure={"run": run.root.name, "role": role})
        info = backend.info()
        notes.extend(getattr(backend, "notes", []))
        backend.close()
        calls += stats.called
        ops[role] = role_ops(completions, stats, info, config.models[role].price, config.analysis.confidence)
        failed = [c for c in completions if c.error]
        if failed:  # the run goes on; the outputs table and the report count them
            notes.append(f"{role}: {len(failed)} of {len(completions)} requests failed (first: {failed[0].error})")
        errors[role] = len(failed)
        for c in completions:
            rows.append({
                "id": c.id, "role": role, "text": c.text if not c.error else (c.text or None),
                "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                "latency_s": c.latency_s,
                "label_probs": json.dumps(c.label_probs, sort_keys=True) if c.label_probs else None,
                "error": c.error, "cached": c.cached,
            })
    outputs = pd.DataFrame(rows, columns=OUTPUT_COLUMNS).astype({
        "prompt_tokens": "Int64", "completion_tokens": "Int64", "latency_s": "float64", "cached": "bool",
    })
    run.write_table("outputs", outputs)
    basis = savings_basis(ops)
    if basis and not basis.startswith("teacher and student: "):  # the two roles were not timed alike: say so
        notes.append(f"ops: {basis}")
    run.write_json("ops.json", {"roles": ops, "savings": savings(ops), "savings_basis": basis})
    for note in notes:
        progress.say(f"note: {note}")
    return {"model_calls": calls, "errors": errors, "failed_requests": sum(errors.values()), "notes": notes}
