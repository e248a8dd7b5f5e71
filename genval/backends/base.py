"""The one model interface: `generate(requests) -> completions`, whatever the engine.

hf, vllm, openai and replay differ inside a backend, never at the call site. Every call
goes through `generate_cached`, which answers what the request cache holds and writes each
finished completion to it as it finishes.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Iterator

from genval.cache import RequestCache, request_key


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
    label_delimiter: str = " "  # between prompt and label when a label is scored (see backends/labels.py)
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

    def to_cache(self) -> dict:
        data = asdict(self)
        data.pop("id")
        data.pop("cached")
        return data

    @classmethod
    def from_cache(cls, ident: str, data: dict) -> "Completion":
        return cls(id=ident, cached=True, **data)


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

    def info(self) -> dict:
        """Gives what the engine knows of the model: parameter count, weight bytes, peak memory."""
        return {}

    def close(self) -> None:
        """Frees the model's memory."""


@dataclass
class CallStats:
    """How many requests the cache answered and how many went to the model."""

    cached: int = 0
    called: int = 0
    failed: int = 0
    wall_s: float = 0.0


def generate_cached(
    backend: Backend,
    requests: list[Request],
    cache: RequestCache | None,
    on_done: Callable[[Completion], None] | None = None,
    stats: CallStats | None = None,
) -> list[Completion]:
    """Gives one completion per request, in request order: cached ones first, the rest from the model.

    Each completion the model finishes is written to the cache before the next is awaited,
    so a killed run resumes with everything that finished. Failed requests are not cached.
    """
    stats = stats if stats is not None else CallStats()
    use_cache = cache is not None and backend.uses_cache
    model = backend.fingerprint()
    keys = [request_key(model, asdict(r.params), r.cache_payload()) for r in requests]
    hits = cache.get_many(keys) if use_cache else {}
    done: dict[int, Completion] = {}
    misses: list[Request] = []
    miss_index: dict[str, list[int]] = {}
    for i, (req, key) in enumerate(zip(requests, keys)):
        if key in hits:
            done[i] = Completion.from_cache(req.id, hits[key])
            stats.cached += 1
            if on_done:
                on_done(done[i])
        else:
            misses.append(req)
            miss_index.setdefault(req.id, []).append(i)
    if misses:
        backend.load()
        start = time.perf_counter()
        for completion in backend.generate(misses):
            i = miss_index[completion.id].pop(0)
            done[i] = completion
            stats.called += 1
            if completion.error:
                stats.failed += 1
            elif use_cache:
                cache.put(keys[i], model, completion.to_cache())
            if on_done:
                on_done(completion)
        if backend.live:  # reading a replay file in 1 ms says nothing about the model's throughput
            stats.wall_s += time.perf_counter() - start
    missing = [requests[i].id for i in range(len(requests)) if i not in done]
    for i in range(len(requests)):
        if i not in done:
            done[i] = Completion(id=requests[i].id, error="the backend gave no completion for this request")
    if missing:
        stats.failed += len(missing)
    return [done[i] for i in range(len(requests))]


def iter_batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
