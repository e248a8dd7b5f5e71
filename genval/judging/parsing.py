"""Reading a judge's answer: a verdict from a final tagged line, a JSON object or a constrained choice.

An answer that cannot be read is kept raw with `parsed=False` and counted; nothing is
guessed. Text inside fences (the candidate quoted back) is removed before parsing, so an
output that says "VERDICT: equivalent" cannot answer for the judge.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from genval.judging.definition import Definition, Scale
from genval.judging.prompts import strip_fences

_MARKUP = re.compile(r"[*`\"'“”‘’\[\]()<>]")


@dataclass
class Parsed:
    """One answer read: the verdict (a scale token) or None, and why not when None."""

    verdict: str | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is not None


def normalise(value: str) -> str:
    """Gives a label as compared: lower case, markup and edge punctuation gone, spaces and hyphens as `_`."""
    text = _MARKUP.sub("", str(value)).strip().strip("_").strip().strip(".,;:!?").strip().lower()
    return re.sub(r"[\s\-]+", "_", text)


def match_scale(value, scale: Scale) -> Parsed:
    """Gives the scale token that `value` names exactly, or why it names none."""
    if scale.kind == "ordinal":
        if isinstance(value, bool):
            return Parsed(None, f"not a score: {value!r}")
        if isinstance(value, (int, float)):
            number = value
        else:
            text = normalise(value)
            m = re.fullmatch(r"(-?\d+(?:\.\d+)?)(?:_?(?:/|out_of)_?\d+)?", text)
            if not m:
                return Parsed(None, f"not a score: {str(value)[:40]!r}")
            number = float(m.group(1))
        if not math.isfinite(number) or number != int(number):
            return Parsed(None, f"not a whole score: {value!r}")
        if not scale.min <= int(number) <= scale.max:
            return Parsed(None, f"score {int(number)} outside {scale.min}..{scale.max}")
        return Parsed(str(int(number)))
    if not isinstance(value, str):
        return Parsed(None, f"not a label: {value!r}")
    wanted = normalise(value)
    for label in scale.labels:
        if normalise(label) == wanted:
            return Parsed(label)
    return Parsed(None, f"not one of {', '.join(scale.labels)}: {value[:40]!r}")


def _tagged(answer: str, definition: Definition) -> Parsed:
    tag = re.escape(definition.parser.tag)
    pattern = re.compile(rf"^[\s>#*_`-]*{tag}[*_`\s]*[:=]\s*(.+?)\s*$", re.I | re.M)
    found = pattern.findall(answer)
    if not found:
        return Parsed(None, f"no line '{definition.parser.tag}: …'")
    return match_scale(found[-1], definition.scale)  # the last tagged line is the final answer


def _last_json_object(answer: str):
    """Gives the last top-level JSON object in the answer (bare or inside a code fence), or None."""
    decoder = json.JSONDecoder()
    found, i = None, answer.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(answer, i)
        except json.JSONDecodeError:
            i = answer.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found = obj
        i = answer.find("{", end)  # skip the object's inside: nested objects are not answers
    return found


def _json(answer: str, definition: Definition) -> Parsed:
    obj = _last_json_object(answer)
    if obj is None:
        return Parsed(None, "no JSON object")
    key = definition.parser.key
    if key not in obj:
        return Parsed(None, f"JSON object has no '{key}'")
    return match_scale(obj[key], definition.scale)


def _choice(answer: str, definition: Definition) -> Parsed:
    return match_scale(answer.strip(), definition.scale)


PARSERS = {"tagged": _tagged, "json": _json, "choice": _choice}


def parse_answer(answer: str | None, definition: Definition) -> Parsed:
    """Gives the verdict in a judge's answer, or None with the reason (empty, no tag, off-scale, …)."""
    if answer is None or not answer.strip():
        return Parsed(None, "empty answer")
    return PARSERS[definition.parser.kind](strip_fences(answer), definition)


def _credit(token: str, scale: Scale) -> list[str]:
    """Gives the scale tokens a model token counts for: the one it names, else every label it begins.

    A label of several tokens ("not_equivalent") shows in a top-k list by its first token
    ("not"); an ordinal point counts only when named exactly.
    """
    key = normalise(token)
    if not key:
        return []
    exact = [t for t in scale.tokens if normalise(t) == key]
    if exact or scale.kind == "ordinal":
        return exact
    return [t for t in scale.tokens if normalise(t).startswith(key)]


def scale_mass(probs: dict[str, float] | None, scale: Scale) -> dict[str, float]:
    """Gives the probability each scale token holds in `probs` (token variants such as " 4" summed).

    A token that begins several labels is shared equally among them. A scale token absent from
    `probs` holds nothing: it is never given a floor, so a top-k list that misses "1"–"4"
    leaves the weight on the tokens the judge named (G-Eval's Σ p(s)·s renormalised over the scale).
    """
    mass: dict[str, float] = {}
    for token, p in (probs or {}).items():
        hits = _credit(token, scale)
        for t in hits:
            mass[t] = mass.get(t, 0.0) + float(p) / len(hits)
    return mass


def choose(probs: dict[str, float] | None, scale: Scale) -> Parsed:
    """Gives the likeliest scale token of a constrained choice (answers scored, none generated); a tie is None."""
    mass = scale_mass(probs, scale)
    if not mass or sum(mass.values()) <= 0:
        return Parsed(None, "no probability on any scale token")
    ranked = sorted(mass.values(), reverse=True)
    if len(ranked) > 1 and ranked[0] == ranked[1]:
        return Parsed(None, "two scale tokens equally likely")
    return Parsed(max(mass, key=mass.get))


def expected_score(probs: dict[str, float] | None, scale: Scale) -> float | None:
    """Gives the probability-weighted score over the scale's tokens (G-Eval, Liu et al. 2023, eq. 1).

    Ordinal: Σ p(s)·s over the scale points, renormalised over the mass they hold. Binary:
    the probability of the positive label. None when no scale token has probability.
    """
    mass = scale_mass(probs, scale)
    total = sum(mass.values())
    if total <= 0:
        return None
    if scale.kind == "ordinal":
        return sum(int(t) * p for t, p in mass.items()) / total
    if scale.kind == "binary":
        return mass.get(scale.positive, 0.0) / total
    return None


def probs_from_top_logprobs(top: list[dict[str, float]] | None, scale: Scale,
                            first: bool = False) -> dict[str, float] | None:
    """Gives the probabilities of the tokens that count for the scale at the verdict's position.

    That position is the last generated one whose likeliest token counts for the scale (the
    final tagged line comes last); with `first`, the first position, whatever is likeliest there
    — a choice answer is its first token. Tokens that count for no scale token (junk such as
    "The") are left out, so they weigh on nothing. None when no token there counts.
    """
    if not top:
        return None
    for position in (top[:1] if first else reversed(top)):
        if not position:
            continue
        if first or _credit(max(position, key=position.get), scale):
            return {t: math.exp(lp) for t, lp in position.items() if _credit(t, scale)} or None
    return None
