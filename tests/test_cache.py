"""The request cache: shared by concurrent writers, and what makes a killed run resume."""

import multiprocessing as mp
from typing import Iterator

import pytest

from genval.models.base import Backend, CallStats, Completion, Params, Request, generate_cached
from genval.models.cache import RequestCache, request_key


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
    dying = CountingBackend(die_after=5)
    with pytest.raises(KeyboardInterrupt):
        generate_cached(dying, _requests(10), cache)
    assert dying.calls == ["warm-up", "0", "1", "2", "3"]  # a one-token probe before the clock: no request of the run
    assert len(cache) == 4

    again = CountingBackend()
    stats = CallStats()
    done = generate_cached(again, _requests(10), cache, stats=stats)
    assert again.calls == ["warm-up"] + [str(i) for i in range(4, 10)]  # the probe, then the six not finished
    assert [c.text for c in done] == [f"PROMPT {i}" for i in range(10)]
    assert [c.cached for c in done] == [True] * 4 + [False] * 6
    assert (stats.cached, stats.called) == (4, 6)
    # The four cached answers keep the pass that timed them; that pass never finished, so its
    # figures are what it wrote: 4 answers, its wall time the last one's elapsed seconds.
    killed = {c.measured_in for c in done[:4]}
    assert len(killed) == 1 and None not in killed
    (killed,) = killed
    rows = cache._connect().execute("SELECT elapsed_s FROM requests WHERE pass_id = ?", (killed,)).fetchall()
    assert stats.passes[killed]["answers"] == 4 and stats.passes[killed]["finished"] is False
    assert stats.passes[killed]["wall_s"] == max(r[0] for r in rows) and not stats.passes[killed]["this_run"]
    this = stats.passes[stats.this_pass]
    assert this["answers"] == 6 and this["finished"] and this["this_run"] and this["wall_s"] == stats.wall_s
    assert {c.measured_in for c in done[4:]} == {stats.this_pass}

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
    assert second.calls == ["warm-up", "1"]  # the probe, then the retried request


def test_a_cache_from_before_passes_opens_and_keeps_its_answers(tmp_path):
    import json
    import sqlite3

    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)  # the schema genval wrote before answers kept their pass
    conn.execute("CREATE TABLE requests (key TEXT PRIMARY KEY, model TEXT NOT NULL, response TEXT NOT NULL, "
                 "created REAL NOT NULL)")
    conn.execute("INSERT INTO requests VALUES (?, ?, ?, ?)", ("k1", "m", json.dumps({"text": "old", "latency_s": 0.3}), 1.0))
    conn.commit()
    conn.close()
    cache = RequestCache(path)
    assert cache.lookup(["k1", "k2"]) == {"k1": ({"text": "old", "latency_s": 0.3}, None)}
    assert cache.get_many(["k1"]) == {"k1": {"text": "old", "latency_s": 0.3}}
    cache.put("k2", "m", {"text": "new"}, "p1", 0.5)
    cache.record_pass("p1", {"run": "r", "wall_s": 0.5, "answers": 1})
    assert cache.lookup(["k2"])["k2"] == ({"text": "new"}, "p1")
    assert cache.passes(["p1"]) == {"p1": {"run": "r", "wall_s": 0.5, "answers": 1}}
    RequestCache(path).close()  # opening it again adds nothing twice
    assert len(RequestCache(path)) == 2
