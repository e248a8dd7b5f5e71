"""Format and extraction: does the output parse as JSON, does it follow the schema, are its fields right.

Format adherence (json_valid, schema_valid) is kept apart from content (fields): an output that
breaks the schema is a format failure, and its fields still score wherever they can be read.
"""

from __future__ import annotations

import json
import re
from typing import Literal

import numpy as np

from genval.errors import GenvalError
from genval.metrics.registry import (
    Corpus,
    MetricContext,
    MetricResult,
    Options,
    Other,
    Prepass,
    reference_lists,
    register,
    with_references,
)
from genval.numbers import BAD_SHARE, SHARE

FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)
UNREADABLE = "format failure: no JSON object can be read from the output"


def parse_json(text: str):
    """Gives (value, fenced): the parsed JSON and whether it sat in a Markdown code fence; (None, False) if neither parses."""
    try:
        return json.loads(text), False
    except (json.JSONDecodeError, TypeError):
        pass
    match = FENCE.match(text or "")
    if match:
        try:
            return json.loads(match.group(1)), True
        except json.JSONDecodeError:
            pass
    return None, False


def read_object(text: str) -> dict | None:
    """Gives the JSON object an output holds, reading leniently (fence, or the outermost {...}); None if none."""
    value, _ = parse_json(text)
    if isinstance(value, dict):
        return value
    if value is None and text:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:  # prose around the object: still readable for content scoring
            try:
                value = json.loads(text[start:end + 1])
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None


@register("json_valid", kind="single", numbers={"json_valid": SHARE, "json_fenced": BAD_SHARE})
def json_valid(candidates: list[str], ctx: MetricContext) -> MetricResult:
    """Gives 1 where the output parses as JSON (bare or fenced), and `json_fenced` = 1 where it needed the fence."""
    valid, fenced = [], []
    for text in candidates:
        value, was_fenced = parse_json(text)
        ok = value is not None or (text or "").strip() == "null"
        valid.append(1.0 if ok else 0.0)
        fenced.append(1.0 if was_fenced else 0.0)
    sig = "json.loads|fence:markdown"
    return MetricResult({"json_valid": valid, "json_fenced": fenced}, {"json_valid": sig, "json_fenced": sig})


def _path(error) -> str:
    """Gives a JSON-path-like location ('$.items[2].price') of a jsonschema error."""
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


@register("schema_valid", kind="single", numbers={"schema_valid": SHARE})
def schema_valid(candidates: list[str], ctx: MetricContext) -> MetricResult:
    """Gives 1 where the output parses and validates against the task's JSON Schema, with the failing path and reason."""
    import jsonschema
    from jsonschema.exceptions import best_match

    if ctx.schema is None:
        raise GenvalError("metrics: 'schema_valid' needs the task's JSON Schema: add 'schema: path/to/schema.json' to the config")
    cls = jsonschema.validators.validator_for(ctx.schema)
    try:
        cls.check_schema(ctx.schema)
    except jsonschema.SchemaError as exc:
        raise GenvalError(f"schema: not a valid JSON Schema ({exc.message})") from None
    validator = cls(ctx.schema)
    values, details = [], []
    for text in candidates:
        value, _ = parse_json(text)
        if value is None and (text or "").strip() != "null":
            values.append(0.0)
            details.append("not JSON")
            continue
        error = best_match(validator.iter_errors(value))
        values.append(0.0 if error else 1.0)
        details.append(f"{_path(error)}: {error.message}" if error else None)
    from importlib.metadata import version

    sig = f"jsonschema:{version('jsonschema')}|{cls.__name__}|best_match"
    return MetricResult({"schema_valid": values}, {"schema_valid": sig}, details={"schema_valid": details})


# --- fields -------------------------------------------------------------------------------
def normalise(value):
    """Gives a field value in the form compared for exact match.

    Strings: Unicode casefolded, whitespace trimmed and collapsed ("  Foo  Bar" == "foo bar");
    numbers: as float (1 == 1.0); booleans and null as themselves; lists and objects with their
    items normalised the same way (order of list items kept, since order can carry meaning).
    """
    if isinstance(value, str):
        return " ".join(value.split()).casefold()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in sorted(value.items())}
    return value


def field_names(ctx: MetricContext) -> list[str]:
    """Gives the fields to score: the option's, else the schema's top-level properties, else every key
    the other side's objects have over the whole run (the Prepass gathered them)."""
    if ctx.options.fields:
        return list(ctx.options.fields)
    if ctx.schema and isinstance(ctx.schema.get("properties"), dict):
        return list(ctx.schema["properties"])
    return list(ctx.prepared or [])


def _keys_seen(candidates: list[str], others: list[Other], ctx: MetricContext) -> dict[str, list[str]]:
    """Gives per pair the keys of the other side's objects in this batch (every reference's), in order of first appearance."""
    out: dict[str, list[str]] = {}
    for pair, a, b in ctx.segments or [("all", 0, len(others))]:
        names: dict[str, None] = {}
        for group in reference_lists(others[a:b]):
            for other in group:
                names.update(dict.fromkeys(read_object(other) or {}))
        out.setdefault(pair, [])
        out[pair] = list(dict.fromkeys([*out[pair], *names]))
    return out


def _keys_merged(partials: list[dict[str, list[str]]]) -> list[str]:
    """Gives the keys in the order a single call over all rows would meet them: pair by pair, then by example."""
    per_pair: dict[str, dict[str, None]] = {}
    for partial in partials:
        for pair, names in partial.items():
            per_pair.setdefault(pair, {}).update(dict.fromkeys(names))
    return list(dict.fromkeys(name for names in per_pair.values() for name in names))


def _f1(tp: int, fp: int, fn: int) -> float | None:
    """Gives F1 = 2TP / (2TP + FP + FN), None when there is nothing to count."""
    return None if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def _counts(pred: dict, gold: dict, name: str) -> tuple[int, int, int, int]:
    """Gives (match, tp, fp, fn) for one field; a null or missing value counts as 'not filled'."""
    p = normalise(pred.get(name)) if name in pred else None
    g = normalise(gold.get(name)) if name in gold else None
    match = int(p == g)
    if match:
        return 1, int(g is not None), 0, 0
    return 0, 0, int(p is not None), int(g is not None)


class FieldsOptions(Options):
    """The fields to compare (default: every field of the schema, else of the reference objects), and the reduction
    over several references: `max` scores against the reference that agrees best (highest per-example F1, then
    accuracy), `mean` averages every number and count over the references."""

    fields: list[str] | None = None
    reduce: Literal["max", "mean"] = "max"


def _count(value: float):
    """Gives a summed count as an int when whole (a `reduce: mean` over references can make it fractional)."""
    return int(value) if float(value).is_integer() else float(value)


def _fields_partial(column: str, rows) -> dict:
    """Sums one column's statistics: a field's [match, tp, fp, fn], or the rows' [scored, unreadable, no reference]."""
    total = [_count(v) for v in np.sum(np.stack(rows["stats"].to_numpy()), axis=0)]
    if column == "fields_accuracy":
        return {"rows": total, "fields": {}}
    return {"rows": [0, 0, 0], "fields": {column.removeprefix("field:"): total}}


def _fields_merge(a: dict, b: dict) -> dict:
    fields = dict(a["fields"])
    for name, counts in b["fields"].items():
        fields[name] = [x + y for x, y in zip(fields.get(name, [0, 0, 0, 0]), counts)]
    return {"rows": [x + y for x, y in zip(a["rows"], b["rows"])], "fields": fields}


def _fields_finish(state: dict) -> dict:
    """Gives per-field accuracy and F1, and micro/macro F1 over fields, for one pair.

    `n` counts every scored row, `unreadable` those whose output held no object (scored as an
    empty object), `no_reference` the rows whose other side holds no object (not scorable).
    """
    n, unreadable, no_reference = state["rows"]
    per_field = {}
    total = [0, 0, 0]
    for name, (match, tp, fp, fn) in state["fields"].items():
        total = [total[0] + tp, total[1] + fp, total[2] + fn]
        per_field[name] = {"accuracy": match / n if n else None, "f1": _f1(tp, fp, fn), "tp": tp, "fp": fp, "fn": fn}
    macro = [v["f1"] for v in per_field.values() if v["f1"] is not None]
    return {"fields": {"n": n, "unreadable": unreadable, "no_reference": no_reference, "micro_f1": _f1(*total),
                       "macro_f1": sum(macro) / len(macro) if macro else None, "per_field": per_field}}


@register("fields", options=FieldsOptions, references=True, numbers={"field:*": SHARE, "fields_accuracy": SHARE, "fields_f1": SHARE},
          corpus=Corpus(columns=("field:*", "fields_accuracy"), partial=_fields_partial, merge=_fields_merge,
                        finish=_fields_finish),
          prepass=Prepass(map=_keys_seen, merge=_keys_merged,
                          needed=lambda ctx: not ctx.options.fields and not (
                              ctx.schema and isinstance(ctx.schema.get("properties"), dict))))
def fields(candidates: list[str], others: list[Other], ctx: MetricContext) -> MetricResult:
    """Gives per-field exact match, per-example field accuracy and F1, with the counts for micro/macro F1 per pair.

    A field counts as filled when its value is not null. Per field: match = normalised values
    equal (both null counts as a match); TP = filled and matching, FP = filled and wrong, FN =
    the gold filled and the output wrong or empty (slot filling, as in entity extraction). Each
    `field:<name>` row carries [match, tp, fp, fn] as its statistics, each `fields_accuracy` row
    [scored, unreadable, no reference]; the Corpus reducer adds them up per pair.
    """
    names = field_names(ctx)
    columns = [*(f"field:{n}" for n in names), "fields_accuracy", "fields_f1"]
    cols: dict[str, list] = {c: [] for c in columns}
    stats: dict[str, list] = {c: [] for c in columns}
    details: list[str | None] = []
    for text, group in zip(candidates, reference_lists(others)):
        pred = read_object(text)
        scored = [_score_one(pred, gold, names) for gold in map(read_object, group)]
        scored = [found for found in scored if found is not None]
        if not scored:
            for col in columns:
                cols[col].append(float("nan"))
                stats[col].append([0.0] * 4 if col.startswith("field:") else None)  # the field is known, not counted
            stats["fields_accuracy"][-1] = [0.0, 0.0, 1.0]
            details.append("the other side holds no JSON object")
            continue
        if ctx.options.reduce == "max" or len(scored) == 1:  # the best-agreeing reference (the first on a tie)
            values, counts = max(scored, key=lambda found: (found[0]["fields_f1"], found[0]["fields_accuracy"]))
        else:
            values = {c: float(np.mean([found[0][c] for found in scored])) for c in columns}
            counts = {c: None if scored[0][1][c] is None else [float(v) for v in np.mean([found[1][c] for found in scored],
                                                                                         axis=0)] for c in columns}
        for col in columns:
            cols[col].append(values[col])
            stats[col].append(counts[col])
        details.append(UNREADABLE if pred is None else None)
    sig = "fields|exact-match|normalise:casefold,strip,collapse-space,number-as-float|null=not-filled"
    rows = with_references(sig, others, ctx.options.reduce)
    return MetricResult(cols, {c: sig for c in cols}, details={c: details for c in cols}, stats=stats,
                        row_settings={c: rows for c in cols})


def _score_one(pred: dict | None, gold: dict | None, names: list[str]) -> tuple[dict, dict] | None:
    """Gives one output's numbers and statistics per column against one reference object; None when it holds none.

    An output with no readable object gives its user no fields: it is scored as an empty
    object (every filled gold field missed), not left out, so content numbers are not
    computed on the survivors of a format failure.
    """
    if gold is None:
        return None
    counts = {n: _counts(pred if pred is not None else {}, gold, n) for n in names}
    values = {f"field:{n}": float(found[0]) for n, found in counts.items()}
    stats = {f"field:{n}": [float(v) for v in found] for n, found in counts.items()}
    values["fields_accuracy"] = sum(c[0] for c in counts.values()) / len(names) if names else float("nan")
    stats["fields_accuracy"] = [1.0, float(pred is None), 0.0]
    f1 = _f1(*(sum(c[i] for c in counts.values()) for i in (1, 2, 3)))
    values["fields_f1"] = 1.0 if f1 is None else f1  # nothing filled on either side: all agree
    stats["fields_f1"] = None
    return values, stats
