"""Secrets out of everything genval stores or prints: the values of the variables named by `api_key_env`.

The key lives only in the environment and is sent only in the Authorization header, but a
server may quote it back (a 401 body that echoes the request's headers), and a quoted key
would then reach the outputs table, the manifest's notes, the report and stderr. Every
value of a watched variable is replaced by REDACTED wherever genval writes a string: the run
folder's JSON, text and tables, error lines and progress messages.
"""

from __future__ import annotations

import os
from typing import Iterable

REDACTED = "[REDACTED]"
MIN_LENGTH = 4  # shorter values would blank ordinary words; no real API key is this short

_values: set[str] = set()


def watch(names: Iterable[str | None]) -> None:
    """Starts redacting the current values of the environment variables `names` (None and unset are skipped)."""
    for name in names:
        value = os.environ.get(name) if name else None
        if value and len(value.strip()) >= MIN_LENGTH:
            _values.add(value)
            _values.add(value.strip())


def watch_config(config) -> None:
    """Watches every `api_key_env` a run config names, for its models and its judges' models."""
    models = list(config.models.values()) + [ref.model for ref in config.judge]
    watch(getattr(model, "api_key_env", None) for model in models)


def redact(text):
    """Gives `text` with every watched secret replaced by REDACTED (anything not a string as it is)."""
    if not _values or not isinstance(text, str):
        return text
    for value in sorted(_values, key=len, reverse=True):  # a longer value first: its stripped twin is inside it
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def redact_frame(frame):
    """Gives `frame` with watched secrets redacted from its text cells (the same frame when none holds one)."""
    if not _values:
        return frame
    from pandas.api.types import is_object_dtype, is_string_dtype

    out = frame
    for column in frame.columns:
        if not (is_object_dtype(frame[column]) or is_string_dtype(frame[column])):
            continue
        hit = frame[column].map(lambda v: isinstance(v, str) and any(s in v for s in _values))
        if hit.any():
            out = out.copy() if out is frame else out
            out.loc[hit, column] = frame.loc[hit, column].map(redact)
    return out
