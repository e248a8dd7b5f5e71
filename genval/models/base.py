"""The one model interface: `generate(requests) -> completions`, whatever the engine.

hf, vllm, openai and replay differ inside a backend, never at the call site. Every call
goes through `generate_cached`, which answers what the request cache holds and writes each
finished completion to it as it finishes.

Timing: the live calls of one `Session` (one `generate_cached`, or one role of a stage over all
its batches) form a *pass*. A local engine (hf, vllm) is warmed before the pass's clock starts
by a one-token probe of the first prompt — not a request of the run, its answer dropped — so
first-call costs (kernels, allocator) stay out of the figures; the clock then covers the engine
at its own batch settings. A remote server (openai) is not warmed: it is serving already, and a
warm-up would be a paid request answered twice (after a kill and resume, once per resume), or
spend a rate-limited server's 429 before the run's first request; no request of a run is ever
sent twice once answered. Each answer is cached with its pass, so a later run that reads it
reports the figures measured when it was made (genval/models/ops.py).
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Callable, Iterable, Iterator

from genval.models.cache import RequestCache, request_key


@dataclass(frozen=True)
class Params:
    """Generation parameters of one request (the judge's may differ from the task's)."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    logprobs: int | None = None  # top log-probabilities per generated token, where the engine gives them


@dataclass(frozen=True)
class Request:
    """One prompt to one model. `id` is the example id (or the judge's id for its request)."""

    id: str
    prompt: str
    system: str | None = None
    params: Params = field(default_factory=Params)
    labels: tuple[str, ...] | None = None  # ask for the probability of each label as the answer
    label_delimiter: str = " "  # between prompt and label when a label is scored (see models/labels.py)
    schema: dict | None = None  # constrain the output to this JSON Schema, where the engine can
    generate: bool = True  # False: only label probabilities are wanted, no text

    def cache_payload(self) -> dict:
        """Gives everything about the request that changes the answer (the id does not)."""
        payload = {
            "system": self.system,
            "prompt": self.prompt,
            "labels": list(self.labels) if self.labels else None,
            "schema": self.schema,
            "generate": self.generate,
        }
        if self.labels:  # the delimiter changes label probabilities only; text requests keep their keys
            payload["label_delimiter"] = self.label_delimiter
        return payload


@dataclass
class Completion:
    """What a model gave back for one request, with the operational numbers around it."""

    id: str
    text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None
    label_probs: dict[str, float] | None = None
    top_logprobs: list[dict[str, float]] | None = None  # per generated token: token -> logprob
    error: str | None = None
    cached: bool = False
    measured_in: str | None = None  # the pass whose clock timed this answer (None: replayed, or cached before passes)

    def to_cache(self) -> dict:
        data = asdict(self)
        for key in ("id", "cached", "measured_in"):  # the pass is a column of the cache, not part of the answer
            data.pop(key)
        return data

    @classmethod
    def from_cache(cls, ident: str, data: dict, measured_in: str | None = None) -> "Completion":
        return cls(id=ident, cached=True, measured_in=measured_in, **data)


class Backend(ABC):
    """A text-generation engine behind the one interface."""

    name: str = "backend"
    uses_cache: bool = True  # replay reads files; caching it would only copy them

    @property
    def live(self) -> bool:
        """Whether answers are computed now, so their wall time measures the engine (replay only reads them)."""
        return self.uses_cache

    @abstractmethod
    def fingerprint(self) -> str:
        """Gives a string that changes whenever the model's answers could change."""

    @abstractmethod
    def generate(self, requests: list[Request]) -> Iterator[Completion]:
        """Yields one completion per request, as each finishes (any order)."""

    def load(self) -> None:
        """Loads the model; `generate_cached` calls it before its clock starts, so throughput excludes loading."""

    def warm_up(self, request: Request) -> bool:
        """Runs a one-token probe of `request`'s prompt before the clock starts; says whether it warmed anything.

        The probe asks for one token under its own id, so it is no request of the run: none is answered twice.
        """
        probe = replace(request, id="warm-up", params=replace(request.params, max_tokens=1))
        for _ in self.generate([probe]):
            pass
        return True

    def batch_settings(self) -> dict:
        """Gives the settings the engine batches at (batch size, concurrency), recorded with its timings."""
        return {}

    def info(self) -> dict:
        """Gives what the engine knows of the model: parameter count, weight bytes, peak memory."""
        return {}

    def close(self) -> None:
        """Frees the model's memory."""


@dataclass
class CallStats:
    """How many requests the cache answered and how many went to the model, and the passes that timed them."""

    cached: int = 0
    called: int = 0
    failed: int = 0
    wall_s: float = 0.0
    live: bool = True  # the answers come from an engine (False: read from a replay file)
    this_pass: str | None = None  # the pass of this call's live requests
    passes: dict[str, dict] = field(default_factory=dict)  # pass id → its record, for every pass an answer came from


@lru_cache(maxsize=64)
def _params(params: Params) -> dict:
    """Gives `asdict(params)` once per distinct Params (a stage's requests share one; asdict deep-copies)."""
    return asdict(params)


def _new_pass(measure: dict | None) -> tuple[str, dict]:
    return uuid.uuid4().hex[:16], {**(measure if measure else {}),
                                   "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


class Session:
    """Answers batch after batch of requests through the cache, the engine's live calls timed as one pass.

    The first request the cache cannot answer loads the engine and, a local one, warms it with
    a one-token probe before the pass's clock starts; the clock then runs only while the engine answers,
    batch after batch, so a stage that streams its rows gets the figures one call over all of
    them would have. Each finished answer is written to the cache at once, with its pass and
    the pass's seconds so far; the pass's record is rewritten after every batch (a killed run
    leaves figures for what it finished), and marked finished by `close`.
    """

    def __init__(self, backend: Backend, cache: RequestCache | None, stats: CallStats | None = None,
                 measure: dict | None = None):
        self.backend = backend
        self.cache = cache if backend.uses_cache else None
        self.stats = stats if stats is not None else CallStats()
        self.stats.live = backend.live
        self.measure = measure
        self.model = backend.fingerprint()
        self.pass_id: str | None = None
        self.record: dict = {}
        self.answers = 0
        self.wall = 0.0
        self.warmed = False

    def _start(self, first: Request) -> None:
        self.backend.load()
        if self.backend.live:
            self.warmed = bool(self.backend.warm_up(first))
            self.pass_id, self.record = _new_pass(self.measure)
            self.stats.this_pass = self.pass_id
            if self.cache is not None:
                self.cache.record_pass(self.pass_id, self.record)

    def answer(self, requests: list[Request], on_done: Callable[[Completion], None] | None = None) -> list[Completion]:
        """Gives one completion per request, in request order: cached ones first, the rest from the engine.

        Failed requests are not cached; a request the engine gave nothing for is a failure.
        """
        # a replay file is not cached: no key to compute (a sha256 of JSON per request)
        keys = [request_key(self.model, _params(r.params), r.cache_payload()) for r in requests] \
            if self.cache is not None else [None] * len(requests)
        hits = self.cache.lookup(keys) if self.cache is not None else {}
        done: dict[int, Completion] = {}
        misses: list[Request] = []
        miss_index: dict[str, list[int]] = {}
        for i, (req, key) in enumerate(zip(requests, keys)):
            if key in hits:
                done[i] = Completion.from_cache(req.id, *hits[key])
                self.stats.cached += 1
                if on_done:
                    on_done(done[i])
            else:
                misses.append(req)
                miss_index.setdefault(req.id, []).append(i)
        if misses:
            self._live(misses, keys, miss_index, done, on_done)
        if self.cache is not None:
            earlier = {c.measured_in for c in done.values() if c.cached and c.measured_in} - set(self.stats.passes)
            self.stats.passes.update({p: {**record, "this_run": False}
                                      for p, record in self.cache.passes(earlier).items()})
        for i in range(len(requests)):
            if i not in done:
                done[i] = Completion(id=requests[i].id, error="the backend gave no completion for this request")
                self.stats.failed += 1
        return [done[i] for i in range(len(requests))]

    def _live(self, misses: list[Request], keys: list[str], miss_index: dict, done: dict, on_done) -> None:
        if self.pass_id is None and not self.answers and not self.stats.called:
            self._start(misses[0])
        start = time.perf_counter()
        for completion in self.backend.generate(misses):
            elapsed = self.wall + time.perf_counter() - start
            i = miss_index[completion.id].pop(0)
            done[i] = completion
            completion.measured_in = self.pass_id
            self.stats.called += 1
            if completion.error:
                self.stats.failed += 1
            else:
                self.answers += 1
                if self.cache is not None:
                    self.cache.put(keys[i], self.model, completion.to_cache(), self.pass_id, elapsed)
            if on_done:
                on_done(completion)
        self.wall += time.perf_counter() - start
        self._record(finished=False)

    def _record(self, finished: bool) -> None:
        if not self.pass_id:  # reading a replay file in 1 ms says nothing about the model's throughput
            return
        self.stats.wall_s = self.wall
        self.record.update(wall_s=self.wall, answers=self.answers, batch=self.backend.batch_settings(),
                           info=self.backend.info(), warm_up=self.warmed, finished=finished)
        self.stats.passes[self.pass_id] = {**self.record, "this_run": True}
        if self.cache is not None:
            self.cache.record_pass(self.pass_id, self.record)

    def close(self) -> None:
        """Marks the pass finished (its figures final)."""
        self._record(finished=True)


def generate_cached(
    backend: Backend,
    requests: list[Request],
    cache: RequestCache | None,
    on_done: Callable[[Completion], None] | None = None,
    stats: CallStats | None = None,
    measure: dict | None = None,
) -> list[Completion]:
    """Gives one completion per request, in request order: cached ones first, the rest from the model.

    One `Session` over one batch: each completion the model finishes is written to the cache
    before the next is awaited, so a killed run resumes with everything that finished. Failed
    requests are not cached. `measure` (e.g. run and role) is recorded with the pass that times
    the live calls; `stats.passes` ends up holding every pass an answer came from.
    """
    session = Session(backend, cache, stats, measure)
    out = session.answer(requests, on_done)
    session.close()
    return out


def iter_batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
