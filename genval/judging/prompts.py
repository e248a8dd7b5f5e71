"""Judge prompts: a definition's templates filled with the texts under judgment, each one fenced.

Every text that came from a model or the eval set (input, reference, the candidate, the
other output) is escaped and placed inside a fence whose tag carries a nonce, so a candidate
cannot close its fence early and speak as the judge's instructions; the templates tell the
judge that fenced text is data. (OWASP LLM01, "prompt injection": delimit and escape
untrusted content.) The nonce is an HMAC of the fenced text under a secret kept in the
request cache (genval.models.cache, `secret`): the same text gets the same nonce for that
cache, so prompts stay cacheable, yet an output that knows the other output's text cannot
compute that output's fence, as it could when the nonce was a hash of the text alone.

Reading the answer, only the fences genval issued in that prompt count: `issued_fences`
finds them in the rendered prompt, where no fenced text can hold a `<` (it is escaped), so
every well-formed block there is one genval wrote; a fence-like pair that a candidate made up,
quoted back by the judge, removes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from functools import lru_cache

from genval.evalset import render
from genval.judging.definition import Definition

FENCED = ("input", "reference", "candidate", "other", "output_a", "output_b")
FENCE_BLOCK = re.compile(r"<(?P<tag>[a-z_]+)-(?P<nonce>[0-9a-f]{10})>.*?</(?P=tag)-(?P=nonce)>", re.S)
_ISSUED = re.compile(r"<(?P<tag>[a-z_]+)-(?P<nonce>[0-9a-f]{10})>\n(?P<body>[^<]*)\n</(?P=tag)-(?P=nonce)>")


def escape(text: str) -> str:
    """Gives `text` with &, < and > escaped, so it cannot open or close a fence."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _nonce(name: str, body: str, key: bytes) -> str:
    """Gives the fence's nonce: HMAC-SHA256 of the tag and the escaped text under `key` (RFC 2104), 40 bits."""
    return hmac.new(key, f"{name}\0{body}".encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:10]


def fence(name: str, text: str | None, key: bytes) -> str:
    """Gives `text` escaped and wrapped in a `<name-nonce>` … `</name-nonce>` fence, the nonce keyed by `key`."""
    body = escape(text if isinstance(text, str) else "")  # an absent field (None, NaN) is empty
    nonce = _nonce(name, body, key)
    return f"<{name}-{nonce}>\n{body}\n</{name}-{nonce}>"


@lru_cache(maxsize=512)
def issued_fences(prompt: str) -> dict[tuple[str, str], str]:
    """Gives the fences genval issued in a rendered prompt: (tag, nonce) → the text it holds, unescaped.

    A block counts only when its tag is a fenced field's and its body holds no `<`: a fenced text
    is escaped, so text shaped like a fence inside it cannot make a block of its own.
    """
    found = {}
    for block in _ISSUED.finditer(prompt or ""):
        tag, nonce, body = block["tag"], block["nonce"], block["body"]
        if tag in FENCED:
            found[(tag, nonce)] = html.unescape(body)
    return found


def strip_fences(text: str, issued) -> str:
    """Gives `text` without the blocks fenced with an issued (tag, nonce), so a judge's verbatim quote is never read.

    Any other fence-like pair stays: a made-up nonce cannot cut the judge's own words out.
    """
    for tag, nonce in issued:
        opening, closing = re.escape(f"<{tag}-{nonce}>"), re.escape(f"</{tag}-{nonce}>")
        text = re.sub(f"{opening}.*?{closing}", " ", text, flags=re.S)
    return text


def render_prompt(definition: Definition, fields: dict, aspect: str | None = None, *, key: bytes) -> tuple[str | None, str]:
    """Gives the (system, user) prompt of one judge request.

    `fields` holds the raw texts (input, reference, candidate, other, output_a, output_b,
    task); the ones in FENCED are fenced here, with nonces keyed by `key` (the request cache's
    fence secret), the rest are filled as they are.
    """
    aspect = aspect or definition.aspect
    values = {
        "task": fields.get("task", ""),
        "scale": definition.scale.describe(),
        "aspect": aspect or "",
        "aspect_definition": definition.aspects.get(aspect, "") if aspect else "",
    }
    for name in FENCED:
        values[name] = fence(name, fields.get(name), key)
    system = render(definition.prompt.system, values) if definition.prompt.system else None
    return system, render(definition.prompt.user, values)
