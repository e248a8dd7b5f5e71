"""Format checks and field scoring, against hand-worked cases."""

import json
from dataclasses import replace

import pytest

from genval.errors import GenvalError
from genval.metrics import get_metric, structure
from genval.metrics.corpus import corpus_numbers
from genval.metrics.registry import MetricContext
from tests.conftest import score_frames

SCHEMA = {
    "type": "object", "required": ["name", "items"],
    "properties": {
        "name": {"type": "string"},
        "items": {"type": "array", "items": {"type": "object", "properties": {"price": {"type": "number"}},
                                             "required": ["price"]}},
        "note": {"type": ["string", "null"]},
    },
}


def test_json_valid_and_fenced_apart():
    texts = ['{"a": 1}', '```json\n{"a": 1}\n```', "not json", "", "null", "```\n[1, 2]\n```"]
    result = structure.json_valid(texts, MetricContext(task="extraction"))
    assert result.values["json_valid"] == [1, 1, 0, 0, 1, 1]
    assert result.values["json_fenced"] == [0, 1, 0, 0, 0, 1]


def test_schema_valid_keeps_nested_path_and_reason():
    texts = [
        json.dumps({"name": "x", "items": [{"price": 1}, {"price": 2.5}]}),
        json.dumps({"name": "x", "items": [{"price": 1}, {"price": "two"}]}),
        json.dumps({"items": []}),
        "Sure! here it is",
    ]
    result = structure.schema_valid(texts, MetricContext(task="extraction", schema=SCHEMA))
    assert result.values["schema_valid"] == [1, 0, 0, 0]
    details = result.details["schema_valid"]
    assert details[0] is None
    assert details[1].startswith("$.items[1].price:") and "'two' is not of type 'number'" in details[1]
    assert details[2].startswith("$:") and "'name' is a required property" in details[2]
    assert details[3] == "not JSON"


def test_schema_valid_without_schema_is_a_user_error():
    with pytest.raises(GenvalError, match="schema"):
        structure.schema_valid(["{}"], MetricContext(task="extraction"))


def test_fields_by_hand():
    gold = json.dumps({"name": "Acme  Corp", "items": [{"price": 1}], "note": None})
    cands = [
        json.dumps({"name": "acme corp", "items": [{"price": 1.0}], "note": None}),  # all match after normalising
        json.dumps({"name": "Other", "items": [{"price": 1}], "note": "extra"}),  # name wrong, note filled wrongly
        'Here: {"name": "Acme Corp", "items": "none"}',  # prose around it, breaks the schema: still read
        "I cannot help with that",  # unreadable: a format failure, and no fields for its user
    ]
    segments = [("student~reference", 0, 4)]
    result = structure.fields(cands, [gold] * 4, MetricContext(task="extraction", schema=SCHEMA, segments=segments))
    v = result.values
    assert v["field:name"][:3] == [1, 0, 1]
    assert v["field:items"][:3] == [1, 1, 0]
    assert v["field:note"][:3] == [1, 0, 1]  # both null is a match
    assert v["fields_accuracy"][:3] == pytest.approx([1, 1 / 3, 2 / 3])
    # row 2: tp items=1, fp name+note=2, fn name=1 → F1 = 2/(2+2+1)
    assert v["fields_f1"][1] == pytest.approx(2 / 5)
    # row 3: tp name=1, fp items=1, fn items=1 → 2/(2+1+1)
    assert v["fields_f1"][2] == pytest.approx(2 / 4)
    # row 4 is scored as an empty object: name and items missed (FN), note null on both sides (a match)
    assert [v[f"field:{n}"][3] for n in ("name", "items", "note")] == [0, 0, 1]
    assert v["fields_accuracy"][3] == pytest.approx(1 / 3)
    assert v["fields_f1"][3] == 0.0  # tp 0, fp 0, fn 2
    assert result.details["fields_f1"][3] == structure.UNREADABLE
    summary = corpus_numbers(score_frames(result, segments, batch=3))["student~reference"]["fields"]
    assert summary["n"] == 4 and summary["unreadable"] == 1 and summary["no_reference"] == 0
    # name: tp 2 (rows 1, 3), fn 2 (rows 2, 4), fp 1 (row 2) → F1 = 4/7
    assert summary["per_field"]["name"]["f1"] == pytest.approx(4 / 7)
    # micro over all fields: tp = 2+2+0 (name, items; note never filled on gold) fp = 1+1+1, fn = 1+1+2 (row 4)
    assert summary["micro_f1"] == pytest.approx(2 * 4 / (2 * 4 + 3 + 4))
    per = summary["per_field"]
    assert summary["macro_f1"] == pytest.approx((per["name"]["f1"] + per["items"]["f1"] + per["note"]["f1"]) / 3)
    assert per["note"]["f1"] == 0.0  # one false positive, nothing to find


def test_fields_without_a_schema_come_from_the_prepass_in_first_seen_order():
    pairs = [("student~teacher", 0, 2), ("student~reference", 2, 4)]
    others = ['{"b": 1}', '{"a": 1, "c": 2}', '{"d": 1, "a": 2}', "no object"]
    ctx = MetricContext(task="extraction", segments=pairs, options=structure.FieldsOptions())
    prepass = get_metric("fields").prepass
    assert prepass.needed(ctx) and not prepass.needed(replace(ctx, schema=SCHEMA))
    # two batches, each holding part of each pair, merged in batch order
    first = prepass.map(["", "", ""], [others[0], others[2], others[3]],
                        replace(ctx, segments=[("student~teacher", 0, 1), ("student~reference", 1, 3)]))
    second = prepass.map([""], [others[1]], replace(ctx, segments=[("student~teacher", 0, 1)]))
    names = prepass.merge([first, second])
    assert names == ["b", "a", "c", "d"]  # the order one call over all rows (pair by pair) meets them
    result = structure.fields(['{"a": 2}'] * 4, others, replace(ctx, prepared=names))
    assert [c for c in result.values if c.startswith("field:")] == ["field:b", "field:a", "field:c", "field:d"]
    summary = corpus_numbers(score_frames(result, pairs, batch=2))
    assert summary["student~reference"]["fields"]["no_reference"] == 1
    assert summary["student~reference"]["fields"]["per_field"]["a"] == {"accuracy": 1.0, "f1": 1.0, "tp": 1, "fp": 0,
                                                                         "fn": 0}


def test_normalise():
    assert structure.normalise("  Foo   BAR ") == "foo bar"
    assert structure.normalise(1) == structure.normalise(1.0)
    assert structure.normalise(True) is True and structure.normalise(None) is None
    assert structure.normalise({"b": [" X "], "a": None}) == {"a": None, "b": ["x"]}
