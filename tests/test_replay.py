"""The replay backend: reads what a user already has; reports what does not line up."""

import pytest

from genval.errors import GenvalError
from genval.models.base import Request
from genval.models.replay import ReplayBackend
from tests.conftest import write_jsonl


def _requests(*ids):
    return [Request(id=i, prompt="p") for i in ids]


def test_reads_fields_and_normalises_label_probs(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [
        {"id": "a", "text": "x", "latency_s": 0.5, "prompt_tokens": 3, "completion_tokens": 2,
         "label_probs": {"pos": 3, "neg": 1}},
    ])
    out = list(ReplayBackend(path, labels=["pos", "neg", "neutral"]).generate(_requests("a")))
    assert out[0].text == "x" and out[0].latency_s == 0.5 and out[0].completion_tokens == 2
    assert out[0].label_probs == {"pos": 0.75, "neg": 0.25, "neutral": 0.0}


def test_missing_and_unknown_ids_are_reported(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [{"id": "a", "text": "x"}, {"id": "zzz", "text": "y"}])
    backend = ReplayBackend(path)
    out = {c.id: c for c in backend.generate(_requests("a", "b"))}
    assert out["a"].error is None and out["b"].error == backend.missing_error() and backend.missing == 1
    assert "missing from replay file r.jsonl" in out["b"].error
    assert backend.unmatched(1, lambda: [["a"], ["b"]]) == [f"{path}: 1 record(s) for ids the eval set lacks: zzz"]
    assert "1 example(s) have no record" in backend.missing_note(backend.missing)[0]


def test_the_index_finds_records_in_any_order_and_shows_the_first_unknown_ids(tmp_path):
    rows = [{"id": f"r{i}", "text": f"t{i}", "latency_s": i / 10} for i in range(40)]
    path = write_jsonl(tmp_path / "r.jsonl", rows[::-1])  # the file's order is not the requests'
    backend = ReplayBackend(path)
    asked = [f"r{i}" for i in range(0, 40, 3)]
    out = list(backend.generate(_requests(*asked)))
    assert [c.text for c in out] == [f"t{i}" for i in range(0, 40, 3)]
    assert [c.latency_s for c in out] == [i / 10 for i in range(0, 40, 3)]
    unknown = sorted(f"r{i}" for i in range(40) if i % 3)
    assert backend.unmatched(len(asked), lambda: [asked[:5], asked[5:]]) == [
        f"{path}: {len(unknown)} record(s) for ids the eval set lacks: {', '.join(unknown[:5])} …"]
    assert ReplayBackend(path).unmatched(40, lambda: []) == []  # every record used: nothing to look up


def test_a_hash_shared_by_two_ids_is_told_apart_by_reading_them(tmp_path, monkeypatch):
    from genval.models import replay

    path = write_jsonl(tmp_path / "r.jsonl", [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}])
    monkeypatch.setattr(replay, "id_hashes", lambda ids: __import__("numpy").zeros(len(list(ids)), dtype="uint64"))
    replay._cached_index.cache_clear()
    replay._cached_count.cache_clear()
    backend = ReplayBackend(path)
    assert [c.text for c in backend.generate(_requests("b", "a", "c"))][:2] == ["y", "x"]
    assert backend.missing == 1
    replay._cached_index.cache_clear()
    replay._cached_count.cache_clear()


def test_a_file_in_request_order_is_read_straight_through_without_an_index(tmp_path):
    from genval.models import replay

    rows = [{"id": f"r{i}", "text": f"t{i}"} for i in range(30)]
    path = write_jsonl(tmp_path / "r.jsonl", rows)
    replay._cached_index.cache_clear()
    backend = ReplayBackend(path)
    out = [c.text for batch in (range(0, 10), range(10, 30)) for c in backend.generate(_requests(*[f"r{i}" for i in batch]))]
    assert out == [f"t{i}" for i in range(30)] and replay._cached_index.cache_info().currsize == 0
    # a request out of order goes through the index, and the next in order is read straight again
    assert [c.text for c in ReplayBackend(path).generate(_requests("r0", "r5", "r1"))] == ["t0", "t5", "t1"]
    assert replay._cached_index.cache_info().currsize == 1


@pytest.mark.parametrize("rows, message", [
    ([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], r"r.jsonl:2: duplicate id 'a' \(first at line 1\)"),
    ([{"text": "x"}], r"r.jsonl:1: the record has no 'id'"),
    ([{"id": "a", "text": 5}], r"r.jsonl:1: 'text' should be a string"),
    ([{"id": "a", "text": "x", "label_probs": {"pos": -1}}], r"r.jsonl:1: 'label_probs.pos' should be a probability"),
    ([{"id": "a", "text": "x", "label_probs": {"other": 1}}], r"r.jsonl:1: 'label_probs' has labels outside"),
])
def test_bad_records_are_one_line_errors(tmp_path, rows, message):
    path = write_jsonl(tmp_path / "r.jsonl", rows)
    with pytest.raises(GenvalError, match=message):
        ReplayBackend(path, labels=["pos", "neg"])


def test_missing_file(tmp_path):
    with pytest.raises(GenvalError, match="no such replay file"):
        ReplayBackend(tmp_path / "none.jsonl")
