"""The request cache: shared by concurrent writers, and what makes a killed run resume."""

import multiprocessing as mp
from typing import Iterator

import pytest

from genval.backends.base import Backend, CallStats, Completion, Params, Request, generate_cached
from genval.cache import RequestCache, request_key


def _writer(path, worker, n):
    cache = RequestCache(path)
    for i in range(n):
        cache.put(f"{worker}-{i}", "m", {"text": f"{worker} {i}"})
    cache.close()


def test_two_concurrent_writer_processes_lose_nothing(tmp_path):
    path = tmp_path / "cache.sqlite"
    RequestCache(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 300)) for w in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    cache = RequestCache(path)
    assert len(cache) == 600
    assert cache.get("a-299") == {"text": "a 299"} and cache.get("b-0") == {"text": "b 0"}
    assert cache._connect().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_key_changes_with_model_params_and_prompt():
    base = request_key("m", {"t": 0}, "p")
    assert base == request_key("m", {"t": 0}, "p")
    assert len({base, request_key("m2", {"t": 0}, "p"), request_key("m", {"t": 1}, "p"), request_key("m", {"t": 0}, "q")}) == 4


class CountingBackend(Backend):
    """Upper-cases prompts, counts calls, and can be made to die after k completions."""

    name = "counting"

    def __init__(self, die_after=None, fail_ids=()):
        self.calls = []
        self.die_after = die_after
        self.fail_ids = set(fail_ids)

    def fingerprint(self):
        return "counting-v1"

    def generate(self, requests) -> Iterator[Completion]:
        for req in requests:
            if self.die_after is not None and len(self.calls) >= self.die_after:
                raise KeyboardInterrupt
            self.calls.append(req.id)
            if req.id in self.fail_ids:
                yield Completion(id=req.id, error="boom")
            else:
                yield Completion(id=req.id, text=req.prompt.upper(), latency_s=0.1)


def _requests(n):
    return [Request(id=str(i), prompt=f"prompt {i}", params=Params(max_tokens=8)) for i in range(n)]


def test_killed_run_resumes_without_redoing_finished_requests(tmp_path):
    cache = RequestCache(tmp_path / "c.sqlite")
    dying = CountingBackend(die_after=4)
    with pytest.raises(KeyboardInterrupt):
        generate_cached(dying, _requests(10), cache)
    assert dying.calls == ["0", "1", "2", "3"]
    assert len(cache) == 4

    again = CountingBackend()
    stats = CallStats()
    done = generate_cached(again, _requests(10), cache, stats=stats)
    assert again.calls == [str(i) for i in range(4, 10)]
    assert [c.text for c in done] == [f"PROMPT {i}" for i in range(10)]
    assert [c.cached for c in done] == [True] * 4 + [False] * 6
    assert (stats.cached, stats.called) == (4, 6)

    third = CountingBackend()
    generate_cached(third, _requests(10), cache)
    assert third.calls == []


def test_failed_requests_are_not_cached_and_are_retried(tmp_path):
    cache = RequestCache(tmp_path / "c.sqlite")
    first = CountingBackend(fail_ids={"1"})
    out = generate_cached(first, _requests(3), cache)
    assert out[1].error == "boom" and len(cache) == 2
    second = CountingBackend()
    generate_cached(second, _requests(3), cache)
    assert second.calls == ["1"]
