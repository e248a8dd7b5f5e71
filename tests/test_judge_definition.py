"""Judge files: the shipped ones load and render; mistakes are one line naming the file, line and key."""

from __future__ import annotations

import pandas as pd
import pytest

from genval.errors import GenvalError
from genval.judging.asking import build_requests, resolve_pairs
from genval.judging.calibration import Settings, calibrate_judge
from genval.judging.definition import load_definition
from genval.judging.prompts import FENCE_BLOCK
from tests.conftest import ROOT

GOOD = """\
name: j
mode: pointwise
scale: {kind: binary, labels: [good, bad]}
prompt:
  user: "{candidate} vs {other}: {scale}"
parser: {kind: tagged}
"""


@pytest.mark.parametrize("name", ["equivalence", "summary_quality", "extraction_equivalence", "pairwise"])
def test_shipped_judges_load_and_render_every_fence(name):
    definition = load_definition(ROOT / "judges" / f"{name}.yaml")
    items = pd.DataFrame({"id": ["x"], "input": ["src"], "reference": ["ref"], "candidate": ["cand"], "other": ["oth"]})
    requests = build_requests(definition, items, "student~teacher", "summarization", samples=2, swap=True, aspect=None, key=b"k")
    orders = 2 if definition.mode == "pairwise" else 1
    assert [r.id for r in requests][:2] == ["x|student~teacher|ab|0", "x|student~teacher|ab|1"]
    assert len(requests) == 2 * orders and requests[0].params.seed + 1 == requests[1].params.seed
    assert "{" + "candidate}" not in requests[0].prompt and FENCE_BLOCK.search(requests[0].prompt)
    if definition.mode == "pairwise":  # the swapped order puts the other output first
        first = FENCE_BLOCK.search(requests[-1].prompt[requests[-1].prompt.index("Answer A"):]).group(0)
        assert "oth" in first


@pytest.mark.parametrize("change, message", [
    (("parser: {kind: tagged}", "parser: {kind: regex}"), ":6: 'parser.kind'"),
    (("mode: pointwise", "mode: pointwise\ncolour: red"), ":3: unknown key 'colour'"),
    (("name: j\n", ""), "missing key 'name'"),
    (("labels: [good, bad]", "labels: [yes, no]"), ":3: 'scale.labels': YAML reads bare yes/no"),
    (("labels: [good, bad]", "labels: [good]"), ":3: 'scale': a binary scale needs 'labels' with exactly two"),
    (("mode: pointwise", "mode: pairwise"), "a pairwise judge needs a 'choice' scale"),
    (("scale: {kind: binary, labels: [good, bad]}", "scale: {kind: ordinal, min: 5, max: 1}"), "'min' < 'max'"),
    (("scale: {kind: binary, labels: [good, bad]}", "scale: {kind: ordinal, min: 1, max: 5, pass_threshold: 7}"),
     "'pass_threshold' 7 lies outside min..max (1..5)"),
    (("labels: [good, bad]}", "labels: [good, bad], equivalent: [fine]}"),
     "'equivalent' should list labels of the scale (good, bad); 'fine' is not one"),
    (("mode: pointwise\nscale: {kind: binary, labels: [good, bad]}", "mode: pairwise\nscale: {kind: choice, labels: [A, B]}"),
     "a choice scale of two labels needs 'equivalent'"),
])
def test_judge_file_mistakes_name_file_line_and_key(tmp_path, change, message):
    path = tmp_path / "j.yaml"
    path.write_text(GOOD.replace(*change), encoding="utf-8")
    with pytest.raises(GenvalError) as err:
        load_definition(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value) and "\n" not in str(err.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(GenvalError, match="no such judge file"):
        load_definition(tmp_path / "none.yaml")
    (tmp_path / "b.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(GenvalError, match=r"b\.yaml:\d+: not valid YAML"):
        load_definition(tmp_path / "b.yaml")


def test_pairs_resolve_wildcards_and_name_unknown_roles():
    roles = ["teacher", "student", "small"]
    assert [p.name for p in resolve_pairs(["*~teacher"], roles, "w")] == ["student~teacher", "small~teacher"]
    assert [p.name for p in resolve_pairs(["*"], roles, "w")] == roles
    assert resolve_pairs(["student~reference"], roles, "w")[0].other == "reference"
    with pytest.raises(GenvalError, match="w: pair 'tiny~teacher' names role 'tiny'"):
        resolve_pairs(["tiny~teacher"], roles, "w")


def _rows(verdicts):
    return pd.DataFrame({"id": [f"e{i}" for i in range(len(verdicts))], "pair": "student~teacher", "judge": "p",
                         "verdict": verdicts, "score": 0.5, "parsed": True,
                         "swap_consistent": pd.array([True] * len(verdicts), dtype="boolean"), "latency_s": 0.0})


def test_labels_of_another_kind_leave_the_judge_unrated_and_off_scale_labels_are_errors():
    pairwise = load_definition(ROOT / "judges" / "pairwise.yaml")
    labels = pd.DataFrame({"id": ["e0", "e1"], "pair": "student~teacher", "annotator": "h",
                           "verdict": ["equivalent", "equivalent"], "score": [float("nan")] * 2, "note": None,
                           "aspect": None})
    examples = pd.DataFrame({"id": ["e0", "e1"], "reference": "r"})
    outputs = pd.DataFrame({"id": ["e0", "e1"], "role": "student", "text": "t", "error": None})
    with pytest.raises(GenvalError, match="labels.jsonl: 'e0' .* not on judge 'pairwise''s scale"):
        calibrate_judge(_rows(["A", "B"]), labels, pairwise, examples, outputs, Settings(labels_path="labels.jsonl"))
    quality = load_definition(ROOT / "judges" / "summary_quality.yaml")
    block = calibrate_judge(_rows(["4", "5"]), labels, quality, examples, outputs, Settings(n_boot=100))
    assert block["n"] == 0 and not block["validated"] and "no human rating" in block["warnings"][0]


def test_what_a_verdict_means_comes_from_the_judge_file():
    pairwise = load_definition(ROOT / "judges" / "pairwise.yaml").scale
    assert [pairwise.equivalent_value(v, None) for v in ("tie", "A", "B", None)] == [1.0, 0.0, 0.0, None]
    binary = load_definition(ROOT / "judges" / "equivalence.yaml").scale
    assert binary.equivalent == ["equivalent"] and binary.equivalent_value("not_equivalent", 0.0) == 0.0
    ordinal = load_definition(ROOT / "judges" / "summary_quality.yaml").scale
    assert ordinal.pass_threshold == 4 and ordinal.worst_score == 1.0
    assert [ordinal.equivalent_value(v, None) for v in ("5", "4", "3")] == [1.0, 1.0, 0.0]
    assert ordinal.equivalent_value(None, 4.2) == 1.0 and ordinal.equivalent_value(None, 3.9) == 0.0


def test_an_ordinal_judge_without_a_threshold_has_no_equivalence(tmp_path):
    path = tmp_path / "j.yaml"
    path.write_text(GOOD.replace("scale: {kind: binary, labels: [good, bad]}", "scale: {kind: ordinal, min: 1, max: 5}"),
                    encoding="utf-8")
    scale = load_definition(path).scale
    assert not scale.counts_equivalence and scale.equivalent_value("5", 5.0) is None
    assert scale.meaning().startswith("no pass_threshold")
