"""The generate stage: every role (teacher, student, more candidates) over the same prompts.

Reads `examples` in batches; writes `outputs` (one row per example × role: each role's block
in the examples' order, one role after the other, as genval.pairs' join reads it) and
`ops.json`. Teacher and student go through the same requests — same prompt, same parameters —
so that the comparison is clean; only the engine behind each differs. Every request goes
through the request cache; the ops figures add up as the batches stream by.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from genval.config import RunConfig
from genval.executors import Source
from genval.models import CallStats, Params, Request, load_backend
from genval.models.base import Session
from genval.models.cache import RequestCache
from genval.models.ops import OpsTally, savings, savings_basis, tally_ops
from genval.models.ray_llm import on_ray
from genval.models.replay import RECORDED
from genval.progress import Progress
from genval.runfolder import Run, table_schema

OUTPUT_COLUMNS = ["id", "role", "text", "prompt_tokens", "completion_tokens", "latency_s", "label_probs", "error", "cached"]
# What a batch's rows carry besides the table's columns, for the stage's own figures (not written).
PASS, CALLED = "_pass", "_called"


def output_schema():
    """Gives the outputs table's Arrow schema (fixed, so a batch of failures writes like any other)."""
    import pyarrow as pa

    text, count = (pa.string(), "str"), (pa.int64(), "Int64")
    return table_schema({"id": text, "role": text, "text": text, "prompt_tokens": count, "completion_tokens": count,
                         "latency_s": (pa.float64(), "float64"), "label_probs": text, "error": text,
                         "cached": (pa.bool_(), "bool")})


@dataclass(frozen=True)
class RequestSettings:
    """What turns an example into the request every role answers."""

    params: Params
    labels: tuple[str, ...] | None
    schema: dict | None
    label_delimiter: str

    @classmethod
    def of(cls, config: RunConfig) -> "RequestSettings":
        gen = config.generation
        return cls(Params(max_tokens=gen.max_tokens, temperature=gen.temperature, top_p=gen.top_p, seed=gen.seed,
                          stop=tuple(gen.stop)),
                   tuple(config.labels) if config.labels and config.task == "classification" else None,
                   config.load_schema() if config.task == "extraction" else None, gen.label_delimiter)

    def requests(self, examples: pd.DataFrame) -> list[Request]:
        return [Request(id=row.id, prompt=row.prompt, system=row.system if isinstance(row.system, str) else None,
                        params=self.params, labels=self.labels,
                        schema=self.schema, label_delimiter=self.label_delimiter)
                for row in examples.itertuples(index=False)]


def task_requests(examples: pd.DataFrame, config: RunConfig) -> list[Request]:
    """Gives the one list of requests that every role answers."""
    return RequestSettings.of(config).requests(examples)


def completion_rows(completions, role: str) -> pd.DataFrame:
    """Gives the outputs rows of one role's completions (with the pass that timed each, and whether it was called)."""
    return pd.DataFrame({
        "id": [c.id for c in completions], "role": role,
        "text": [c.text if not c.error else (c.text or None) for c in completions],
        "prompt_tokens": pd.array([c.prompt_tokens for c in completions], dtype="Int64"),
        "completion_tokens": pd.array([c.completion_tokens for c in completions], dtype="Int64"),
        "latency_s": pd.array([c.latency_s for c in completions], dtype="float64"),
        "label_probs": [json.dumps(c.label_probs, sort_keys=True) if c.label_probs else None for c in completions],
        "error": [c.error for c in completions], "cached": pd.array([c.cached for c in completions], dtype="bool"),
        PASS: [c.measured_in for c in completions], CALLED: [not c.cached for c in completions],
    })


@dataclass
class GenerateTask:
    """The generate stage's map for one role: a batch of examples → that role's outputs rows.

    Built once per worker: the engine is loaded at the first request the cache cannot answer,
    and its live calls over every batch form one timed pass (genval.models.base.Session).
    """

    role: str
    model: object  # the role's model config
    labels: list[str] | None
    settings: RequestSettings
    cache_path: str
    run_name: str
    reader: object = None  # a replay backend, checked once by the stage: it travels to the worker as it is
    on_item = None  # set by an in-process executor: called with 1 per finished request

    def __post_init__(self):
        self._session = None

    @property
    def max_workers(self) -> int | None:
        """A replay file is read by one worker, straight through (more would each jump about in it)."""
        return 1 if self.reader is not None else None

    def session(self) -> Session:
        if self._session is None:
            backend = self.reader if self.reader is not None else load_backend(self.model, labels=self.labels)
            cache = RequestCache(self.cache_path) if backend.uses_cache else None
            self._session = Session(backend, cache, CallStats(), {"run": self.run_name, "role": self.role})
        return self._session

    def __call__(self, examples: pd.DataFrame) -> pd.DataFrame:
        done = (lambda _c: self.on_item(1)) if self.on_item else None
        completions = self.session().answer(self.settings.requests(examples), done)
        return completion_rows(completions, self.role)

    def __getstate__(self):  # a worker builds its own engine and cache connection
        return {k: v for k, v in self.__dict__.items() if k != "_session"} | {"_session": None}

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            if self.reader is None:
                self._session.backend.close()


def _role_stats(tally: OpsTally, called: int, cached: int, passes_made: set, live: bool, cache: RequestCache | None):
    """Gives the CallStats of a role from its rows: counts, and the record of every pass an answer came from."""
    stats = CallStats(cached=cached, called=called, live=live)
    if cache is not None:
        ids = [p for p in tally.per_pass if p]
        for pass_id, record in cache.passes(ids).items():
            stats.passes[pass_id] = {**record, "this_run": pass_id in passes_made}
        stats.this_pass = next(iter(passes_made), None)
    return stats


def generate(run: Run, config: RunConfig, progress: Progress, cache: RequestCache, executor) -> dict:
    """Runs each role over the eval set, batch by batch; gives the stage's record (model calls, notes)."""
    settings = RequestSettings.of(config)
    source = Source(run, columns=("id", "prompt", "system"))
    n = source.rows()
    ops, notes, errors, calls, unfilled, replay_notes, recorded = {}, [], {}, 0, 0, [], 0
    with run.table_writer("outputs", schema=output_schema()) as out:
        for role in config.roles:
            model = config.models[role]
            backend = load_backend(model, labels=config.labels)  # checks the engine is there; loads no weights
            task = GenerateTask(role, model, config.labels, settings, str(cache.path), run.root.name,
                                reader=backend if not backend.uses_cache else None)
            task = on_ray(task, model, executor)  # vLLM on Ray: through ray.data.llm (genval.models.ray_llm)
            tally, called, cached, made, failed_first, missing, missing_ids = OpsTally(), 0, 0, set(), None, 0, []
            missing_error = backend.missing_error() if hasattr(backend, "missing_error") else None
            with progress.bar(f"generate {role}", total=n) as bar:
                for frame in executor.map(source, task, model=True, bar=bar):
                    tally.add(frame["error"], frame["latency_s"], frame["prompt_tokens"], frame["completion_tokens"],
                              frame[PASS])
                    called += int(frame[CALLED].sum())
                    cached += int(frame["cached"].sum())
                    made.update(p for p, c in zip(frame[PASS], frame[CALLED]) if c and isinstance(p, str))
                    if failed_first is None and frame["error"].notna().any():
                        failed_first = frame["error"].dropna().iloc[0]
                    if missing_error:
                        lacking = frame["error"] == missing_error
                        missing += int(lacking.sum())
                        missing_ids += frame.loc[lacking, "id"].astype(str).tolist()[:5 - len(missing_ids)]
                        recorded += int(frame["error"].str.startswith(RECORDED, na=False).sum())
                    out.write(frame[OUTPUT_COLUMNS])
            task.close()
            stats = _role_stats(tally, called, cached, made, backend.live, cache if backend.uses_cache else None)
            info = _engine_info(stats)
            calls += called
            ops[role] = tally_ops(tally, stats, info, model.price, config.analysis.confidence)
            found = _replay_notes(backend, run, tally.n - missing, missing, missing_ids)
            notes.extend(found)
            replay_notes.extend(found)
            unfilled += missing
            if tally.errors:  # the run goes on; the outputs table and the report count them
                notes.append(f"{role}: {tally.errors} of {tally.n} requests failed (first: {failed_first})")
            errors[role] = tally.errors
            backend.close()
    basis = savings_basis(ops)
    if basis and not basis.startswith("teacher and student: "):  # the two roles were not timed alike: say so
        notes.append(f"ops: {basis}")
    run.write_json("ops.json", {"roles": ops, "savings": savings(ops), "savings_basis": basis})
    for note in notes:
        progress.say(f"note: {note}")
    # `missing`: failed requests a re-run cannot fill (no record in a replay file); `replay_notes` say which;
    # `recorded`: errors a replay file's records hold, which a re-run reads again
    return {"model_calls": calls, "errors": errors, "failed_requests": sum(errors.values()), "notes": notes,
            "missing": unfilled, "recorded": recorded, "replay_notes": replay_notes}


def _engine_info(stats: CallStats) -> dict:
    """Gives what the engine reported at the end of this run's largest pass (its workers' engines report alike)."""
    mine = [p for p in stats.passes.values() if p.get("this_run")]
    return max(mine, key=lambda p: p.get("answers") or 0).get("info") or {} if mine else {}


def _replay_notes(backend, run: Run, found: int, missing: int, missing_ids=()) -> list[str]:
    """Gives a replay file's notes: records for ids the eval set lacks, examples without a record (the first few named)."""
    if not hasattr(backend, "unmatched"):
        return []

    def asked():
        return (frame["id"].astype(str).tolist() for frame in run.iter_table("examples", columns=["id"]))

    return backend.unmatched(found, asked) + backend.missing_note(missing, missing_ids)
