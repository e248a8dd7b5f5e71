"""The judge stage: asks each configured judge about each pair, as a map over batches.

Reads `examples` and `outputs` through the one join (genval.pairs.joined), batch by batch;
writes `judgments` (one row per example × pair × judge, with `equivalent` read from the judge
file's meaning; an example whose pair has a failed output gets a row that made no request, at
the worst score). Nothing aggregated: how far a judge agrees with people is the aggregate's
(`calibration_for`, below, serves `genval calibrate` until that moves). The judge model is
called only through genval.models, with the run's shared request cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd

from genval.config import JudgeRef, RunConfig
from genval.errors import GenvalError
from genval.executors import Source
from genval.judging.asking import EXAMPLE_COLUMNS, batch_items, build_requests, read_verdicts, request_ids
from genval.judging.calibration import Settings, calibrate_judge, ranking
from genval.judging.definition import Definition, load_definition
from genval.judging.labels import read_labels
from genval.models import CallStats, load_backend
from genval.models.base import Session
from genval.models.cache import RequestCache
from genval.pairs import Pair, resolve_pairs, roles_of
from genval.progress import Progress
from genval.runfolder import Run, table_schema

JUDGMENT_COLUMNS = ["id", "pair", "judge", "verdict", "score", "equivalent", "raw", "parsed", "swap_consistent",
                    "spread", "samples", "samples_swapped", "requests", "failed_requests", "problem", "prompt_tokens",
                    "completion_tokens", "latency_s"]
NOTHING_TO_JUDGE = "nothing to judge: an output of this pair failed or is missing; counted at the worst score"


def judge_names(config: RunConfig) -> list[tuple[str, JudgeRef, Definition]]:
    """Gives (name, reference, definition) per configured judge; two judges may not share a name."""
    out, seen = [], set()
    for i, ref in enumerate(config.judge):
        definition = load_definition(ref.config)
        name = ref.name or (f"{definition.name}.{ref.aspect}" if ref.aspect and ref.aspect != definition.aspect
                            else definition.name)
        if name in seen:
            raise GenvalError(f"judge[{i}]: a second judge named '{name}'; give each a distinct 'name'")
        seen.add(name)
        out.append((name, ref, definition))
    return out


@dataclass(frozen=True)
class JudgeScope:
    """What one configured judge answers: its name, the pairs it is asked about, its definition and aspect."""

    name: str
    pairs: frozenset
    definition: Definition
    aspect: str | None


def judge_scopes(config: RunConfig) -> list[JudgeScope]:
    """Gives the scope of every configured judge, the pairs resolved against the config's roles."""
    # in config order: the config line of judge i's `pairs` goes with its name into a mistake's message
    return [JudgeScope(name, frozenset(s.name for s in resolve_pairs(
                ref.pairs, config.roles, f"{config.where('judge', i, 'pairs')}: judge '{name}'.pairs")),
                       definition, ref.aspect or definition.aspect)
            for i, (name, ref, definition) in enumerate(judge_names(config))]


@dataclass
class JudgeTask:
    """The judge stage's map for one judge: a joined batch → its judgments rows.

    An item whose pair lacks an output gets a row that made no request, at the worst score.
    Built once per worker: the judge's engine loads at the first request the cache cannot
    answer, and its live calls over every batch form one timed pass.
    """

    name: str
    ref: JudgeRef
    definition: Definition
    pairs: list[Pair]
    task: str
    cache_path: str | None
    key: bytes = field(default=b"", repr=False)  # the cache's fence secret (never printed, so not in repr)
    on_item = None  # set by an in-process executor: called with 1 per finished request

    def __post_init__(self):
        self._session = None

    def session(self) -> Session:
        if self._session is None:
            backend = load_backend(self.ref.model)
            cache = RequestCache(self.cache_path) if backend.uses_cache and self.cache_path else None
            self._session = Session(backend, cache, CallStats(), {"role": f"judge:{self.name}"})
        return self._session

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        requests, unanswered = [], []
        for pair in self.pairs:
            items, scope = batch_items(batch, pair)
            requests.extend(build_requests(self.definition, items, pair.name, self.task, self.ref.samples,
                                           self.ref.swap, self.ref.aspect, self.key))
            unanswered.append(unanswered_rows(self.definition, self.name, pair.name, scope.astype(str).tolist(),
                                              items["id"]))
        done = (lambda _c: self.on_item(1)) if self.on_item else None
        completions = self.session().answer(requests, done) if requests else []
        frame = read_verdicts(self.definition, self.name, requests, completions) if requests else \
            pd.DataFrame(columns=JUDGMENT_COLUMNS)
        if len(frame):
            frame["equivalent"] = [self.definition.scale.equivalent_value(v if isinstance(v, str) else None, sc)
                                   for v, sc in zip(frame["verdict"], frame["score"])]
            missing = getattr(self.session().backend, "missing_error", lambda: None)()
            tally: dict[tuple[str, str], list] = {}
            for r, c in zip(requests, completions):
                counts = tally.setdefault(tuple(r.id.rsplit("|", 3)[:2]), [0, 0, 0, 0, None])
                counts[0] += bool(c.error)
                counts[1] += not c.cached
                counts[2] += bool(c.cached)
                counts[3] += c.error is not None and c.error == missing
                counts[4] = counts[4] or c.measured_in
            keys = list(zip(frame["id"].astype(str), frame["pair"]))
            frame["failed_requests"] = [tally[k][0] for k in keys]
            frame[CALLED], frame[CACHED], frame[MISSING], frame[PASS] = ([tally[k][i] for k in keys] for i in range(1, 5))
        frames = [f for f in (frame, *unanswered) if len(f)]
        out = pd.concat(frames, ignore_index=True) if frames else frame
        return _typed(out.reindex(columns=JUDGMENT_COLUMNS + [CALLED, CACHED, MISSING, PASS]))

    def __getstate__(self):  # a worker builds its own engine and cache connection
        return {k: v for k, v in self.__dict__.items() if k != "_session"} | {"_session": None}

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session.backend.close()


# Per row, not written: requests sent to the engine, answered by the cache, without a replay record; a pass.
CALLED, CACHED, MISSING, PASS = "_called", "_cached", "_missing", "_pass"


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({
        "score": "float64", "equivalent": "float64", "spread": "float64", "latency_s": "float64", "parsed": "bool",
        "swap_consistent": "boolean", "samples": "Int64", "samples_swapped": "Int64", "requests": "Int64",
        "failed_requests": "Int64", "prompt_tokens": "Int64", "completion_tokens": "Int64",
        CALLED: "Int64", CACHED: "Int64", MISSING: "Int64",
    })


def judgment_schema():
    """Gives the judgments table's Arrow schema (fixed, so a batch of unanswered rows writes like any other)."""
    import pyarrow as pa

    text, number, count = (pa.string(), "str"), (pa.float64(), "float64"), (pa.int64(), "Int64")
    types = {"id": text, "pair": text, "judge": text, "verdict": text, "score": number, "equivalent": number,
             "raw": text, "parsed": (pa.bool_(), "bool"), "swap_consistent": (pa.bool_(), "boolean"), "spread": number,
             "samples": count, "samples_swapped": count, "requests": count, "failed_requests": count, "problem": text,
             "prompt_tokens": count, "completion_tokens": count, "latency_s": number}
    return table_schema({c: types[c] for c in JUDGMENT_COLUMNS})


class _JudgeTally:
    """A judge's record, added up over the batches of its rows."""

    def __init__(self):
        self.requests = self.called = self.cached = self.failed = self.answered = self.unparsed = self.missing = 0
        self.unanswered = self.swapped = self.flipped = 0
        self.passes: set[str] = set()
        self.missing_ids: list[str] = []  # the first few examples whose judge request the replay file lacks

    def add(self, frame: pd.DataFrame) -> None:
        asked = frame["requests"].fillna(0).to_numpy() > 0
        self.requests += int(frame["requests"].fillna(0).sum())
        self.called += int(frame[CALLED].fillna(0).sum())
        self.cached += int(frame[CACHED].fillna(0).sum())
        self.failed += int(frame["failed_requests"].fillna(0).sum())
        self.missing += int(frame[MISSING].fillna(0).sum())
        lacking = frame[MISSING].fillna(0).to_numpy() > 0
        self.missing_ids += frame.loc[lacking, "id"].astype(str).tolist()[:5 - len(self.missing_ids)]
        self.answered += int(asked.sum())
        self.unparsed += int((~frame["parsed"].astype(bool).to_numpy() & asked).sum())
        self.unanswered += int((~asked).sum())
        swapped = frame["swap_consistent"].dropna().astype(bool)
        self.swapped += len(swapped)
        self.flipped += int((~swapped).sum())
        self.passes.update(p for p, c in zip(frame[PASS], frame[CALLED]) if isinstance(p, str) and c)

    def record(self, cache: RequestCache | None, notes: list[str]) -> dict:
        wall = sum((r.get("wall_s") or 0.0) for r in (cache.passes(self.passes).values() if cache else []))
        return {"requests": self.requests, "model_calls": self.called, "cached": self.cached, "failed": self.failed,
                "wall_s": round(wall, 3), "judgments": self.answered, "unparsed": self.unparsed,
                "nothing_to_judge": self.unanswered,
                "flip_rate": self.flipped / self.swapped if self.swapped else None, "notes": notes}


def ask_judge(run: Run, name: str, ref: JudgeRef, definition: Definition, config: RunConfig, progress: Progress,
              cache: RequestCache | None, executor, out) -> dict:
    """Writes one judge's judgments (through `out`, the table writer) batch by batch; gives its record."""
    pairs = resolve_pairs(ref.pairs, config.roles, f"judge '{name}'.pairs")
    notes = []
    if ref.samples > 1 and definition.parameters.temperature == 0:
        notes.append(f"judge '{name}': samples {ref.samples} at temperature 0 draw the same answer "
                     f"{ref.samples} times on a deterministic engine; set parameters.temperature in {ref.config.name}")
    source = Source(run, columns=EXAMPLE_COLUMNS, roles=tuple(roles_of(pairs)))
    # No cache, nothing to keep the prompts stable for: a secret for this run alone.
    key = cache.secret("fence") if cache is not None else os.urandom(32)
    task = JudgeTask(name, ref, definition, pairs, config.task, str(cache.path) if cache is not None else None, key)
    backend = load_backend(ref.model)
    tally = _JudgeTally()
    with progress.bar(f"judge {name}", total=source.rows()) as bar:
        for frame in executor.map(source, task, model=True, bar=bar):
            tally.add(frame)
            out.write(frame[JUDGMENT_COLUMNS])
    task.close()
    if hasattr(backend, "unmatched"):
        def asked():  # the requests the eval set calls for (no model is called)
            # The pair's whole scope, not only the items asked: a record for an example whose output
            # failed (nothing to judge) belongs to the eval set and is no stray id.
            for batch in source.frames():
                for pair in pairs:
                    _items, scope = batch_items(batch, pair)
                    yield [i for ident in scope.astype(str)
                           for i in request_ids(ident, pair.name, definition, ref.samples, ref.swap)]

        replay = backend.unmatched(tally.requests - tally.missing, asked) + \
            backend.missing_note(tally.missing, tally.missing_ids)
        notes.extend(replay)
    else:
        replay = []
    backend.close()
    return {**tally.record(cache if backend.uses_cache else None, notes), "missing": tally.missing,
            "replay_notes": replay}


def unanswered_rows(definition: Definition, name: str, pair: str, scope: list[str], judged) -> pd.DataFrame:
    """Gives a row per example of the pair's scope with nothing to judge: not equivalent, at the worst score.

    Such a row made no request (`requests` 0), so it is no failure of the judge's; it is
    the failed output's, counted as a user of the deployed model would meet it.
    """
    missing = sorted(set(scope) - set(map(str, judged)))
    return pd.DataFrame({"id": missing, "pair": pair, "judge": name, "verdict": None,
                         "score": definition.scale.worst_score,
                         "equivalent": 0.0 if definition.scale.counts_equivalence else None, "raw": "", "parsed": False,
                         "swap_consistent": None, "spread": None, "samples": 0, "samples_swapped": 0, "requests": 0,
                         "failed_requests": 0,
                         "problem": NOTHING_TO_JUDGE, "prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0},
                        columns=JUDGMENT_COLUMNS)


def calibration_for(config: RunConfig, judgments: pd.DataFrame, examples: pd.DataFrame,
                    outputs: pd.DataFrame) -> dict:
    """Gives calibration.json's content: each judge against the human labels, and the judges ranked."""
    meaning = judge_meaning(config)
    if config.human_labels is None or not config.judge:
        return {"judges": {}, "ranking": [], "meaning": meaning}
    labels = read_labels(config.human_labels, judges=judge_scopes(config))
    a = config.analysis
    judges = {}
    asked = judgments["requests"].fillna(1) > 0 if "requests" in judgments else True  # not the unanswered rows
    for name, ref, definition in judge_names(config):
        rows = judgments[(judgments["judge"] == name) & asked]
        settings = Settings(min_kappa=ref.min_kappa, n_boot=a.bootstrap, confidence=a.confidence, seed=a.seed,
                            min_slice_n=a.min_slice_n, price=ref.model.price, labels_path=str(config.human_labels))
        judges[name] = calibrate_judge(rows, labels, definition, examples, outputs, settings, ref.aspect)
    return {"judges": judges, "ranking": ranking(judges), "human_labels": str(config.human_labels), "meaning": meaning}


def judge_meaning(config: RunConfig) -> dict:
    """Gives per judge what its verdicts mean (from its file): the equivalent labels or the pass threshold, in words."""
    out = {}
    for name, _ref, definition in judge_names(config):
        scale = definition.scale
        out[name] = {"kind": scale.kind, "labels": list(scale.tokens), "equivalent": scale.equivalent,
                     "pass_threshold": scale.pass_threshold, "min": scale.min, "max": scale.max,
                     "says": scale.meaning()}
    return out


def judge(run: Run, config: RunConfig, progress: Progress, cache: RequestCache, executor) -> dict:
    """Writes the judgments table, judge after judge, batch by batch; gives the stage's record."""
    records = {}
    with run.table_writer("judgments", schema=judgment_schema()) as out:
        for name, ref, definition in judge_names(config):
            records[name] = ask_judge(run, name, ref, definition, config, progress, cache, executor, out)
            for note in records[name]["notes"]:
                progress.say(f"note: {note}")
    return {"judges": records, "failed_requests": sum(r["failed"] for r in records.values()),
            "missing": sum(r["missing"] for r in records.values()),
            "replay_notes": [n for r in records.values() for n in r["replay_notes"]]}


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"
