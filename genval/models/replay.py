"""The `replay` backend: outputs a user already has, one JSONL record per example.

A record holds `id` and `text`, and optionally `latency_s`, `prompt_tokens`,
`completion_tokens` and `label_probs` (label → probability). A duplicate id is an error
(which record is meant?); an id the eval set lacks, or an example the file lacks, is
reported in the run's notes and in the outputs table's `error` column, never dropped silently.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

from genval.errors import GenvalError
from genval.evalset import read_jsonl
from genval.models.base import Backend, Completion, Request
from genval.runfolder import file_sha256

OPTIONAL_NUMBERS = ("latency_s", "prompt_tokens", "completion_tokens")


def _label_probs(value, where: str, labels: tuple[str, ...] | None) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise GenvalError(f"{where}: 'label_probs' should be an object of label → probability")
    probs = {}
    for label, p in value.items():
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not math.isfinite(p) or p < 0:
            raise GenvalError(f"{where}: 'label_probs.{label}' should be a probability ≥ 0, found {p!r}")
        probs[str(label)] = float(p)
    if labels is not None:
        unknown = sorted(set(probs) - set(labels))
        if unknown:
            raise GenvalError(f"{where}: 'label_probs' has labels outside the config's label set: {', '.join(unknown)}")
        probs = {label: probs.get(label, 0.0) for label in labels}
    total = sum(probs.values())
    if total <= 0:
        raise GenvalError(f"{where}: 'label_probs' sums to 0")
    return {label: p / total for label, p in probs.items()}


class ReplayBackend(Backend):
    """Reads precomputed outputs; makes no model call."""

    name = "replay"
    uses_cache = False

    def __init__(self, path: Path, labels: list[str] | None = None):
        self.path = Path(path)
        self.labels = tuple(labels) if labels else None
        self.records: dict[str, dict] = {}
        self.notes: list[str] = []
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            raise GenvalError(f"{self.path}: no such replay file (check the model's 'path' in the config)")
        first_line: dict[str, int] = {}
        for record in read_jsonl(self.path, "replay"):
            data, where = record.data, record.where
            if "id" not in data:
                raise GenvalError(f"{where}: the record has no 'id'")
            if not isinstance(data["id"], (str, int)) or isinstance(data["id"], bool):
                raise GenvalError(f"{where}: 'id' should be a string or a whole number, found {data['id']!r}")
            ident = str(data["id"])
            if ident in first_line:
                raise GenvalError(f"{where}: duplicate id '{ident}' (first at line {first_line[ident]}); keep one record per id")
            first_line[ident] = record.line
            text = data.get("text")
            if text is not None and not isinstance(text, str):
                raise GenvalError(f"{where}: 'text' should be a string, found {type(text).__name__}")
            for key in OPTIONAL_NUMBERS:
                value = data.get(key)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                        or value < 0:
                    raise GenvalError(f"{where}: '{key}' should be a number ≥ 0, found {value!r}")
                if key != "latency_s" and value != int(value):
                    raise GenvalError(f"{where}: '{key}' should be a whole number of tokens, found {value!r}")
            if data.get("error") is not None and not isinstance(data["error"], str):
                raise GenvalError(f"{where}: 'error' should be a string (the failure's message), found {data['error']!r}")
            if data.get("label_probs") is not None:
                data["label_probs"] = _label_probs(data["label_probs"], where, self.labels)
            data["_where"] = where
            self.records[ident] = data

    def fingerprint(self) -> str:
        return f"replay:{file_sha256(self.path)}"

    def generate(self, requests: list[Request]) -> Iterator[Completion]:
        wanted = {r.id for r in requests}
        unknown = sorted(set(self.records) - wanted)
        if unknown:
            shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
            self.notes.append(f"{self.path}: {len(unknown)} record(s) for ids the eval set lacks: {shown}")
        missing = 0
        for req in requests:
            data = self.records.get(req.id)
            if data is None:
                missing += 1
                yield Completion(id=req.id, error=f"missing from replay file {self.path.name}")
                continue
            yield Completion(
                id=req.id,
                text=data.get("text") or "",
                prompt_tokens=data.get("prompt_tokens"),
                completion_tokens=data.get("completion_tokens"),
                latency_s=data.get("latency_s"),
                label_probs=data.get("label_probs"),
                error=data.get("error") if isinstance(data.get("error"), str) else None,
            )
        if missing:
            self.notes.append(f"{self.path}: {missing} example(s) have no record; they count as errors")
