"""genval leakage: exact and near duplicates between an eval set and training data."""

from __future__ import annotations

import json

import pytest

from genval.analysis.leakage import find_leaks, jaccard, normalise, shingles
from genval.cli import main
from tests.conftest import write_jsonl

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def sentence(start: int, n: int = 20) -> str:
    return " ".join(WORDS[(start + 3 * k) % len(WORDS)] + str(k // 9) for k in range(n))


def test_normalise_and_shingles():
    assert normalise("  Hello,   WORLD!\tfoo ") == "hello world foo"
    assert shingles("a b c d", 2) == {"a b", "b c", "c d"}
    assert shingles("a b", 5) == {"a b"}


def test_exact_and_near_duplicates_found(tmp_path, capsys):
    evals = [{"id": f"e{i}", "input": sentence(i)} for i in range(6)]
    near_text = sentence(2).split()
    near_text[-1] = "changed"                                  # 1 of 16 five-grams differs
    train = [{"text": "Completely unrelated training sentence about the weather today"},
             {"text": sentence(0).upper() + "!!"},             # exact after normalisation
             {"text": " ".join(near_text)}]
    write_jsonl(tmp_path / "eval.jsonl", evals)
    write_jsonl(tmp_path / "train.jsonl", train)
    out = tmp_path / "leaks.json"
    code = main(["leakage", str(tmp_path / "eval.jsonl"), str(tmp_path / "train.jsonl"), "--json", str(out)])
    assert code == 1
    result = json.loads(out.read_text())
    assert result["exact"] == [{"eval_id": "e0", "train_id": "record 2"}]
    expected = jaccard(shingles(sentence(2), 5), shingles(" ".join(near_text), 5))
    assert expected >= 0.8
    assert result["near"] == [{"eval_id": "e2", "train_id": "record 3", "jaccard": pytest.approx(expected, abs=1e-4)}]
    assert result["leaked_eval_ids"] == ["e0", "e2"]
    assert "2 of 6 eval examples" in capsys.readouterr().out


def test_clean_training_data_exits_0(tmp_path):
    write_jsonl(tmp_path / "eval.jsonl", [{"id": f"e{i}", "input": sentence(i)} for i in range(4)])
    (tmp_path / "train.txt").write_text("nothing in common here at all\nanother line of plain text\n")
    assert main(["leakage", str(tmp_path / "eval.jsonl"), str(tmp_path / "train.txt")]) == 0


def test_below_threshold_is_not_near():
    a = sentence(1)
    half = a.split()[:10] + ["other"] * 10
    result = find_leaks([("e", a)], [("t", " ".join(half))], threshold=0.8)
    assert result["near"] == [] and result["exact"] == []


def test_missing_field_is_a_user_mistake(tmp_path, capsys):
    write_jsonl(tmp_path / "eval.jsonl", [{"id": "e", "input": "x"}])
    write_jsonl(tmp_path / "train.jsonl", [{"body": "x"}])
    assert main(["leakage", str(tmp_path / "eval.jsonl"), str(tmp_path / "train.jsonl"), "--train-field", "text"]) == 2
    assert "no field 'text'" in capsys.readouterr().err


def test_a_missing_training_file_is_named(tmp_path, capsys):
    from genval.cli import main

    (tmp_path / "eval.jsonl").write_text('{"id": "1", "input": "a b c"}\n')
    assert main(["leakage", str(tmp_path / "eval.jsonl"), str(tmp_path / "train.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"genval: error: {tmp_path / 'train.jsonl'}: no such file"
