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
    assert out["a"].error is None and "missing from replay file" in out["b"].error
    assert any("1 record(s) for ids the eval set lacks: zzz" in n for n in backend.notes)
    assert any("1 example(s) have no record" in n for n in backend.notes)


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
