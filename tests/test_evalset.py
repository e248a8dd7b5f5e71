"""Eval sets: every format reads the same records, the fingerprint is format-free, bad records are named."""

import hashlib
import json

import pandas as pd
import pytest

from genval.errors import GenvalError
from genval.evalset import fingerprint, load_evalset, render, template_fields

from tests.conftest import write_jsonl

ROWS = [
    {"id": "1", "input": "alpha text", "reference": "a", "difficulty": "easy"},
    {"id": "2", "input": "beta text", "reference": "b", "difficulty": "hard"},
    {"id": "3", "input": "gamma text", "reference": "c", "difficulty": "easy"},
]


def test_fingerprint_is_sha256_of_sorted_canonical_records():
    expected = hashlib.sha256()
    for row in sorted(ROWS, key=lambda r: r["id"]):
        expected.update(json.dumps(row, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    assert fingerprint(list(reversed(ROWS))) == expected.hexdigest()


def test_jsonl_csv_parquet_and_datasets_folder_agree(tmp_path):
    write_jsonl(tmp_path / "e.jsonl", ROWS)
    pd.DataFrame(ROWS).to_csv(tmp_path / "e.csv", index=False)
    pd.DataFrame(ROWS).to_parquet(tmp_path / "e.parquet")
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "ds"))
    sets = [load_evalset(tmp_path / name, "Q: {input}", ["difficulty"])
            for name in ("e.jsonl", "e.csv", "e.parquet", "ds")]
    assert len({s.sha256 for s in sets}) == 1
    for s in sets:
        assert s.examples["prompt"].tolist() == ["Q: alpha text", "Q: beta text", "Q: gamma text"]
        assert s.examples["slice_difficulty"].tolist() == ["easy", "hard", "easy"]
        assert s.examples["reference"].tolist() == ["a", "b", "c"]


def test_slices_object_and_boolean_values(tmp_path):
    rows = [{"id": "x", "input": "i", "slices": {"critical": True}}, {"id": "y", "input": "j", "slices": {"critical": False}}]
    ev = load_evalset(write_jsonl(tmp_path / "e.jsonl", rows), "{input}", ["critical"])
    assert ev.examples["slice_critical"].tolist() == ["true", "false"]


def test_object_reference_becomes_canonical_json(tmp_path):
    rows = [{"id": "x", "input": "i", "reference": {"b": 1, "a": [1, 2]}}]
    ev = load_evalset(write_jsonl(tmp_path / "e.jsonl", rows), "{input}", [])
    assert ev.examples["reference"][0] == '{"a": [1, 2], "b": 1}'


def test_template_leaves_json_braces_alone():
    template = 'Answer like {"category": "x"} for: {input} {{literal}} {meta.source}'
    assert template_fields(template) == ["input", "meta.source"]
    assert render(template, {"input": "hi", "meta": {"source": "web"}}) == 'Answer like {"category": "x"} for: hi {literal} web'


@pytest.mark.parametrize("lines, message", [
    (['{"id": "1", "input": "a"}', '{"id": "1", "input": "b"}'], r"e.jsonl:2: duplicate id '1' \(first at .*e.jsonl:1\)"),
    (['{"id": "1", "input": "a"}', '{"input": "b"}'], r"e.jsonl:2: the record has no 'id'"),
    (['{"id": "1", "input": "a"}', '{"id": "2", "input": '], r"e.jsonl:2: not valid JSON"),
    (['{"id": "1", "text": "a"}'], r"e.jsonl:1: the prompt names '\{input\}' but the record has no field 'input' \(it has: id, text\)"),
    (['[1, 2]'], r"e.jsonl:1: each line should be a JSON object"),
])
def test_bad_records_name_file_and_line(tmp_path, lines, message):
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(GenvalError, match=message):
        load_evalset(path, "{input}", [])


def test_missing_slice_field_and_missing_file(tmp_path):
    path = write_jsonl(tmp_path / "e.jsonl", [{"id": "1", "input": "a"}])
    with pytest.raises(GenvalError, match=r"e.jsonl:1: no slice field 'topic'"):
        load_evalset(path, "{input}", ["topic"])
    with pytest.raises(GenvalError, match="no such eval set"):
        load_evalset(tmp_path / "nope.jsonl", "{input}", [])
    (tmp_path / "x.txt").write_text("id,input\n")
    with pytest.raises(GenvalError, match="unknown eval-set format '.txt'"):
        load_evalset(tmp_path / "x.txt", "{input}", [])


def test_csv_line_numbers_count_the_header(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("id,input\n1,a\n1,b\n")
    with pytest.raises(GenvalError, match=r"e.csv:3: duplicate id '1'"):
        load_evalset(path, "{input}", [])
