"""Human labels: JSONL and CSV, round trips, one-line errors with file:line, and the rating sheet."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from genval.cli import main
from genval.errors import GenvalError
from genval.judging.asking import PairSpec
from genval.judging.labels import read_labels, write_labels
from genval.judging.sampling import _proportional, draw_sample

RATINGS = [
    {"id": "a", "pair": "student~teacher", "annotator": "ann1", "verdict": "equivalent", "note": "fine, \"quoted\""},
    {"id": "a", "pair": "student~teacher", "annotator": "ann2", "verdict": "not_equivalent"},
    {"id": "b", "pair": "student", "annotator": "ann1", "score": 4, "aspect": "consistency"},
    {"id": "c", "pair": "student", "annotator": "ann1", "score": 2.5, "note": "línea, with comma"},
]


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_reads_into_the_label_table(tmp_path):
    frame = read_labels(_write(tmp_path / "l.jsonl", RATINGS))
    assert frame["id"].tolist() == ["a", "a", "b", "c"]
    assert frame["verdict"].tolist()[:2] == ["equivalent", "not_equivalent"]
    assert frame["score"].tolist()[2:] == [4.0, 2.5] and frame["aspect"].tolist()[2] == "consistency"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_round_trip_through_csv_and_jsonl(tmp_path, suffix):
    first = read_labels(_write(tmp_path / "l.jsonl", RATINGS))
    write_labels(first, tmp_path / f"copy{suffix}")
    again = read_labels(tmp_path / f"copy{suffix}")
    pd.testing.assert_frame_equal(first, again)
    # and back to JSONL gives the same records
    write_labels(again, tmp_path / "back.jsonl")
    assert [json.loads(line) for line in (tmp_path / "back.jsonl").read_text().splitlines()] == \
        [{k: v for k, v in r.items()} for r in RATINGS]


@pytest.mark.parametrize("line, message", [
    ("{not json", ":2: not valid JSON"),
    ('["a list"]', ":2: each line should be a JSON object"),
    ('{"pair": "p", "annotator": "x", "verdict": "equivalent"}', ":2: the rating has no 'id'"),
    ('{"id": "q", "annotator": "x", "verdict": "equivalent"}', ":2: the rating has no 'pair'"),
    ('{"id": "q", "pair": "p", "verdict": "equivalent"}', ":2: the rating has no 'annotator'"),
    ('{"id": "q", "pair": "p", "annotator": "x"}', ":2: the rating has neither 'verdict' nor 'score'"),
    ('{"id": "q", "pair": "p", "annotator": "x", "score": "high"}', ":2: 'score' should be a number"),
    ('{"id": "q", "pair": "p", "annotator": "x", "score": NaN}', ":2: 'score' should be a finite number"),
    ('{"id": "q", "pair": "p", "annotator": "x", "verdict": 1}', ":2: 'verdict' should be text"),
    ('{"id": "a", "pair": "student~teacher", "annotator": "ann1", "verdict": "x"}', ":2: annotator 'ann1' rated 'a'"),
])
def test_bad_jsonl_lines_name_file_and_line(tmp_path, line, message):
    path = _write(tmp_path / "l.jsonl", [RATINGS[0], line])
    with pytest.raises(GenvalError) as err:
        read_labels(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value) and "\n" not in str(err.value)


def test_bad_csv_rows_name_file_and_line(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("id,pair,annotator,verdict,score\na,p,x,equivalent,\nb,p,x,,lots\n", encoding="utf-8")
    with pytest.raises(GenvalError, match=r"l\.csv:3: 'score' should be a number"):
        read_labels(path)
    path.write_text("id,annotator,verdict\na,x,equivalent\n", encoding="utf-8")
    with pytest.raises(GenvalError, match=r"l\.csv:1: the header lacks pair"):
        read_labels(path)


def test_unrated_sheet_rows_are_skipped(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_text("id,pair,annotator,verdict,score,note,input\na,p,,,,,text\nb,p,ann,equivalent,,,text\n", encoding="utf-8")
    assert read_labels(path)["id"].tolist() == ["b"]


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    path = _write(tmp_path / "l.jsonl", ["{oops"])
    assert main(["labels", str(path), str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}:1" in err


def test_proportional_allocation_by_largest_remainder():
    sizes = pd.Series({"a": 50, "b": 30, "c": 20})
    assert _proportional(sizes, 10).to_dict() == {"a": 5, "b": 3, "c": 2}
    assert _proportional(sizes, 7).to_dict() == {"a": 4, "b": 2, "c": 1}  # 3.5, 2.1, 1.4 → the .5 goes to a
    assert _proportional(pd.Series({"a": 1, "b": 100}), 50).sum() == 50


def test_sample_is_stratified_and_critical_slices_get_enough():
    n = 300
    ids = [f"e{i:03d}" for i in range(n)]
    crit = ["true" if i % 20 == 0 else "false" for i in range(n)]  # 15 critical items: 5 %
    kind = ["x" if i % 3 else "y" for i in range(n)]
    examples = pd.DataFrame({"id": ids, "prompt": "p", "input": "in", "reference": "ref",
                             "slice_critical": crit, "slice_kind": kind})
    outputs = pd.DataFrame([{"id": i, "role": r, "text": f"{r} {i}", "error": None} for i in ids for r in ("teacher", "student")])
    sheet = draw_sample(examples, outputs, PairSpec("student~teacher", "student", "teacher"), 60,
                        ["critical", "kind"], ["critical=true"], seed=1, min_critical=10)
    assert len(sheet) == 60 and sheet["id"].is_unique
    assert (sheet["slice_critical"] == "true").sum() >= 10  # proportional alone would give 3
    rest = sheet[sheet["slice_critical"] == "false"]
    assert abs((rest["slice_kind"] == "y").mean() - 1 / 3) < 0.05
    assert sheet["student"].tolist()[0] == f"student {sheet['id'].tolist()[0]}"
    again = draw_sample(examples, outputs, PairSpec("student~teacher", "student", "teacher"), 60,
                        ["critical", "kind"], ["critical=true"], seed=1, min_critical=10)
    assert again["id"].tolist() == sheet["id"].tolist()  # seeded


def test_sample_command_on_the_demo_config_writes_a_sheet_people_can_fill(tmp_path, capsys):
    from tests.conftest import ROOT

    sheet = tmp_path / "sheet.jsonl"
    assert main(["sample", str(ROOT / "configs" / "demo.yaml"), "--n", "50", "--to", str(sheet),
                 "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    rows = [json.loads(line) for line in sheet.read_text().splitlines()]
    assert len(rows) == 50 and {r["pair"] for r in rows} == {"student~teacher"}
    assert sum(r["slice_critical"] == "true" for r in rows) >= 30  # the critical slice gets its minimum
    assert all("student" in r and "teacher" in r and "input" in r and "verdict" not in r for r in rows)
    assert len(read_labels(sheet)) == 0  # nothing rated yet: every row is skipped, none is an error
    rows[0].update(annotator="me", verdict="equivalent")
    sheet.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert read_labels(sheet)["verdict"].tolist() == ["equivalent"]


def test_a_sheet_whose_rating_column_is_misnamed_is_named_at_its_header(tmp_path):
    # `label` for `verdict`: every row read as "neither verdict nor score", line 2 blamed for a header's mistake
    path = tmp_path / "l.csv"
    path.write_text("id,pair,annotator,label\na,p,x,equivalent\n", encoding="utf-8")
    with pytest.raises(GenvalError, match=r"^.*l\.csv:1: the header lacks 'verdict' or 'score' "
                                          r"\(it has: id, pair, annotator, label\)$"):
        read_labels(path)
    path.write_text("id,pair,Annotator,verdict\na,p,x,equivalent\n", encoding="utf-8")
    with pytest.raises(GenvalError, match=r"l\.csv:1: the header lacks annotator .*did you mean 'Annotator'\?"):
        read_labels(path)
