"""summary.json read into the model once, or refused in one line; its JSON Schema, generated from the models.

A summary.json this genval cannot read whole — written by an older genval (an older
`schema_version`), or one whose keys do not match the models — is never half-read: `read`
raises a GenvalError naming the file and the first key that does not fit. An older one is an
`OlderSummary`, which a command holding the run folder answers by re-running the aggregate
stage (genval.pipeline.current_summary).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ValidationError
from pydantic.json_schema import GenerateJsonSchema

from genval.errors import GenvalError
from genval.files import read_json
from genval.summary.findings import SCHEMA_VERSION, Summary

SCHEMA_ID = "https://genval.dev/schemas/summary.schema.json"
RERUN = "re-run its aggregate stage: `genval run CONFIG --force aggregate`"


class OlderSummary(GenvalError):
    """A summary.json written by an older genval: its run folder's tables can give the current one."""


def _where(error: dict) -> str:
    """Gives a pydantic error's place as a dotted key path (`slices.region.a.fidelity`)."""
    parts = [str(p) for p in error["loc"] if not (isinstance(p, str) and p[:1].isupper())]   # union members' names
    return ".".join(parts) or "(top)"


def validated(model: type[BaseModel], data, source: str, fix: str, what: str = "summary.json"):
    """Gives `model.model_validate(data)`; a failure is one GenvalError naming `source`, the first bad key and `fix`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = exc.error_count() - 1
        raise GenvalError(f"{source}: not a {what} this genval can read — {_where(first)}: {first['msg']}"
                          + (f" (and {more} more)" if more else "") + f"; {fix}") from None


def _version(data) -> object:
    return data.get("schema_version") if isinstance(data, dict) else None


def check_version(data, file, what: str = "summary") -> None:
    """Raises unless `data` is a summary of this genval's `schema_version` (an older one: OlderSummary)."""
    version = _version(data)
    said = (f"{file}: not a genval summary.json of schema_version {SCHEMA_VERSION} (found {version!r}); {RERUN}")
    if isinstance(version, int) and not isinstance(version, bool) and 0 < version < SCHEMA_VERSION:
        raise OlderSummary(said)
    if version != SCHEMA_VERSION:
        raise GenvalError(said)


def file_of(path: str | Path) -> Path:
    """Gives the summary.json of a run folder (or the file itself); one line when there is none."""
    path = Path(path)
    file = path / "summary.json" if path.is_dir() else path
    if not file.is_file():
        raise GenvalError(f"{path}: no summary.json (give a finished run folder or its summary.json)")
    return file


def read_data(path: str | Path, what: str = "summary") -> dict:
    """Gives a summary.json as the JSON it holds, checked to be of this genval's `schema_version`."""
    file = file_of(path)
    data = read_json(file, what)
    check_version(data, file, what)
    return data


def read(path: str | Path, what: str = "summary") -> Summary:
    """Gives the summary.json of a run folder (or the file itself) as the model, or raises one line."""
    file = file_of(path)
    return parse(read_data(file, what), str(file))


def parse(data: dict | Summary, source: str = "summary.json") -> Summary:
    """Gives a summary given as the model or as summary.json's JSON (a dict), validated whole."""
    if isinstance(data, Summary):
        return data
    check_version(data, source)
    return validated(Summary, data, source, RERUN)


class _Untitled(GenerateJsonSchema):
    """Leaves out the title pydantic gives every field (its name again): the schema says only what the models say."""

    def field_title_should_be_set(self, schema) -> bool:
        return False


def schema() -> dict:
    """Gives summary.json's JSON Schema, generated from the models (docs/summary.schema.json is this, committed)."""
    out = Summary.model_json_schema(by_alias=True, schema_generator=_Untitled)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "genval summary.json", **{k: v for k, v in out.items() if k != "title"}}


def schema_text() -> str:
    """Gives the JSON Schema as the committed file holds it."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"
