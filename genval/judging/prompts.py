"""Judge prompts: a definition's templates filled with the texts under judgment, each one fenced.

Every text that came from a model or the eval set (input, reference, the candidate, the
other output) is escaped and placed inside a fence whose tag carries a nonce derived from
the text, so a candidate cannot close its fence early and speak as the judge's
instructions; the templates tell the judge that fenced text is data. (OWASP LLM01,
"prompt injection": delimit and escape untrusted content.)
"""

from __future__ import annotations

import hashlib
import re

from genval.evalset import render
from genval.judging.definition import Definition

FENCED = ("input", "reference", "candidate", "other", "output_a", "output_b")
FENCE_BLOCK = re.compile(r"<(?P<tag>[a-z_]+)-(?P<nonce>[0-9a-f]{10})>.*?</(?P=tag)-(?P=nonce)>", re.S)


def escape(text: str) -> str:
    """Gives `text` with &, < and > escaped, so it cannot open or close a fence."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fence(name: str, text: str | None) -> str:
    """Gives `text` escaped and wrapped in a `<name-nonce>` … `</name-nonce>` fence."""
    body = escape(text if isinstance(text, str) else "")  # an absent field (None, NaN) is empty
    nonce = hashlib.sha256(f"{name}\0{body}".encode("utf-8")).hexdigest()[:10]
    return f"<{name}-{nonce}>\n{body}\n</{name}-{nonce}>"


def strip_fences(text: str) -> str:
    """Gives `text` without any fenced block, so text the judge merely quotes is never parsed as its verdict."""
    return FENCE_BLOCK.sub(" ", text)


def render_prompt(definition: Definition, fields: dict, aspect: str | None = None) -> tuple[str | None, str]:
    """Gives the (system, user) prompt of one judge request.

    `fields` holds the raw texts (input, reference, candidate, other, output_a, output_b,
    task); the ones in FENCED are fenced here, the rest are filled as they are.
    """
    aspect = aspect or definition.aspect
    values = {
        "task": fields.get("task", ""),
        "scale": definition.scale.describe(),
        "aspect": aspect or "",
        "aspect_definition": definition.aspects.get(aspect, "") if aspect else "",
    }
    for name in FENCED:
        values[name] = fence(name, fields.get(name))
    system = render(definition.prompt.system, values) if definition.prompt.system else None
    return system, render(definition.prompt.user, values)
