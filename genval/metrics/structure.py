"""Format checks for extraction: does the output parse as JSON."""

from __future__ import annotations

import json
import re

from genval.metrics.registry import MetricContext, MetricResult, register

FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


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


@register("json_valid", kind="single")
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
