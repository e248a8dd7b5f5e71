"""Reading a judge's answer: a verdict from a final tagged line, a JSON object or a constrained choice.

An answer that cannot be read is kept raw with `parsed=False` and counted; nothing is
guessed. The verdict is read only where the judge speaks: blocks fenced with the nonces
genval issued for that prompt are removed, and a verdict span (a tagged line, a JSON
object) that reproduces any text under judgment — raw, HTML- or JSON-escaped, or with
look-alike characters folded (Unicode TR #39 confusables, NFKD) — is the judge quoting, not
answering, and is skipped. So an output that says "VERDICT: equivalent" cannot answer for
the judge wherever the judge repeats it; at worst the judge's own identical line is skipped
too, and the answer counts as unparsed, never as the candidate's verdict.
"""

from __future__ import annotations

import html
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from genval.judging.definition import Definition, Scale
from genval.judging.prompts import issued_fences, strip_fences

_MARKUP = re.compile(r"[*`\"'“”‘’\[\]()<>]")
_WORD = re.compile(r"[^\W_]+")
_JSON_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.S)
# Letters of other scripts that look like Latin ones (a subset of Unicode's confusables.txt, TR #39).
_LOOKALIKES = str.maketrans(
    "АВЕЅІЈКМНОРСТХУаеһіјӏорсԁԛѕуԝхΑΒΕΖΗΙΚΜΝΟΡΤΥΧαικνορτυχ",
    "ABESIJKMHOPCTXYaehijlopcdqsywxABEZHIKMNOPTYXaikvoptux",
)


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


def _unescape_json(match: re.Match) -> str:
    code = match.group(1)
    if code[0] == "u" and len(code) == 5:
        return chr(int(code[1:], 16))
    return " " if code in "ntrbf" else code


def skeleton(text: str) -> str:
    """Gives `text` as compared for quoting: unescaped (HTML, JSON), look-alikes folded, case and markup gone.

    What is left is the words (letters and digits) separated by single spaces, so "**VERDICT:**
    equivalent", `"verdict": "Equivalent"` and "VΕRDICT: equivalent" (a Greek Ε) read alike.
    """
    text = _JSON_ESCAPE.sub(_unescape_json, html.unescape(text))
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Mn", "Cf"))  # accents, zero-width
    return " ".join(_WORD.findall(text.translate(_LOOKALIKES).casefold()))


@lru_cache(maxsize=512)
def _under_judgment(prompt: str) -> tuple[dict, tuple[str, ...]]:
    """Gives the fences issued in `prompt` and the skeletons of the texts they hold (padded for word matching)."""
    issued = issued_fences(prompt)
    texts = tuple(f" {s} " for s in (skeleton(t) for t in issued.values()) if s)
    return issued, texts


def _quotes(span: str, texts: tuple[str, ...]) -> bool:
    """Says whether `span` reproduces, whole words and all, part of a text under judgment."""
    shape = skeleton(span)
    return bool(shape) and any(f" {shape} " in text for text in texts)


def _tagged(answer: str, definition: Definition, texts: tuple[str, ...]) -> Parsed:
    tag = re.escape(definition.parser.tag)
    pattern = re.compile(rf"^[\s>#*_`-]*{tag}[*_`\s]*[:=]\s*(.+?)\s*$", re.I | re.M)
    found = list(pattern.finditer(answer))
    if not found:
        return Parsed(None, f"no line '{definition.parser.tag}: …'")
    for line in reversed(found):  # the last tagged line in the judge's own words is the final answer
        if not _quotes(line.group(0), texts):
            return match_scale(line.group(1), definition.scale)
    return Parsed(None, f"every '{definition.parser.tag}: …' line quotes the text under judgment")


def _json_objects(answer: str) -> list[tuple[dict, str]]:
    """Gives every top-level JSON object in the answer (bare or inside a code fence), with its source text."""
    decoder = json.JSONDecoder()
    found, i = [], answer.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(answer, i)
        except (ValueError, RecursionError):  # not JSON here (or nested past Python's limit): try the next brace
            i = answer.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append((obj, answer[i:end]))
        i = answer.find("{", end)  # skip the object's inside: nested objects are not answers
    return found


def _json(answer: str, definition: Definition, texts: tuple[str, ...]) -> Parsed:
    found = [obj for obj, source in _json_objects(answer) if not _quotes(source, texts)]
    if not found:
        return Parsed(None, "no JSON object" + (" in the judge's own words" if _json_objects(answer) else ""))
    obj = found[-1]  # the last object the judge wrote is its answer
    key = definition.parser.key
    if key not in obj:
        return Parsed(None, f"JSON object has no '{key}'")
    return match_scale(obj[key], definition.scale)


def _choice(answer: str, definition: Definition, texts: tuple[str, ...]) -> Parsed:
    # The whole answer is one scale token: the judge's own word, whatever the candidate says.
    return match_scale(answer.strip(), definition.scale)


PARSERS = {"tagged": _tagged, "json": _json, "choice": _choice}


def parse_answer(answer: str | None, definition: Definition, prompt: str | None = None) -> Parsed:
    """Gives the verdict in a judge's answer, or None with the reason (empty, no tag, off-scale, only quotes, …).

    `prompt` is what the judge was asked (system and user text): the fences genval issued
    there, and the texts under judgment they hold, decide what in the answer is a quote.
    """
    if answer is None or not answer.strip():
        return Parsed(None, "empty answer")
    issued, texts = _under_judgment(prompt or "")
    return PARSERS[definition.parser.kind](strip_fences(answer, issued), definition, texts)


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
    for token, p in probs.items() if probs else ():
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
