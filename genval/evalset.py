"""Eval sets: load (JSONL, CSV, Parquet, a `datasets` folder), validate, fingerprint, render prompts.

The fingerprint is sha256 over a canonical serialisation of the records (sorted by id, keys
sorted, compact JSON), so the same set in another file format or order has the same
fingerprint: it is the frozen yardstick that later comparisons check.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from genval.errors import GenvalError
from genval.files import parse_json, read_json, read_text

FIELD = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_.]*)\}")


@dataclass
class Record:
    """One eval example as read, with where it came from (for error messages)."""

    data: dict
    where: str  # "file:line" or "file row N"
    line: int | None = None


def read_jsonl(path: Path, what: str = "JSONL") -> list[Record]:
    """Gives the JSON object on each non-blank line, with `file:line`; a bad line is a one-line error."""
    records = []
    text = read_text(path, what)
    for n, line in enumerate(io.StringIO(text, newline=None), start=1):
        if not line.strip():
            continue
        data = parse_json(line, path, n)
        if not isinstance(data, dict):
            raise GenvalError(f"{path}:{n}: each line should be a JSON object, found {type(data).__name__}")
        records.append(Record(data, f"{path}:{n}", n))
    return records


def read_csv(path: Path, what: str = "CSV", delimiter: str = ",") -> list[Record]:
    """Gives each CSV row as a dict of strings, with `file:line` (the header is line 1).

    A cell may be as long as the file: a long document is an eval example, not a mistake.
    """
    text = read_text(path, what)
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    records = []
    try:
        for row in reader:
            extra = row.pop(None, None)
            if extra:
                raise GenvalError(f"{path}:{reader.line_num}: more cells than the header has columns")
            records.append(Record(dict(row), f"{path}:{reader.line_num}", reader.line_num))
    except csv.Error as exc:
        raise GenvalError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
    duplicated = sorted({name for name in reader.fieldnames or [] if (reader.fieldnames or []).count(name) > 1})
    if duplicated:
        raise GenvalError(f"{path}:1: the header names column '{duplicated[0]}' twice; give each column once")
    return records


def _rows_from_table(table, path: Path, what: str) -> list[Record]:
    rows = table.to_pylist()
    return [Record(row, f"{path} {what} {i + 1}") for i, row in enumerate(rows)]


def _read_parquet(path: Path) -> list[Record]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise GenvalError(f"{path}: not a readable Parquet file ({exc})") from None
    return _rows_from_table(table, path, "row")


def _read_datasets_folder(path: Path) -> list[Record]:
    """Reads a folder written by `datasets.Dataset.save_to_disk` (Arrow stream files + state.json)."""
    import pyarrow as pa

    state = read_json(path / "state.json", "datasets state")
    try:
        tables = []
        for entry in state.get("_data_files", []):
            with pa.memory_map(str(path / entry["filename"])) as source:
                tables.append(pa.ipc.open_stream(source).read_all())
        if not tables:
            return []
        table = pa.concat_tables(tables)
        indices = state.get("_indices_data_files")
        if indices:
            with pa.memory_map(str(path / indices[0]["filename"])) as source:
                order = pa.ipc.open_stream(source).read_all().column("indices")
            table = table.take(order)
    except (OSError, KeyError, TypeError, AttributeError, pa.ArrowException) as exc:
        raise GenvalError(f"{path}: not a readable `datasets` folder ({type(exc).__name__}: {exc}); "
                          "save it again with Dataset.save_to_disk") from None
    return _rows_from_table(table, path, "row")


def read_records(path: Path) -> list[Record]:
    """Gives the records of the eval set at `path`, in file order."""
    path = Path(path)
    if not path.exists():
        raise GenvalError(f"{path}: no such eval set (check 'eval_set' in the config)")
    if path.is_dir():
        if (path / "state.json").exists():
            return _read_datasets_folder(path)
        if (path / "dataset_dict.json").exists():
            raise GenvalError(f"{path}: a DatasetDict folder; point 'eval_set' at one split's folder inside it")
        raise GenvalError(f"{path}: a folder that is not a `datasets` save_to_disk folder (no state.json)")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return read_jsonl(path, "eval set")
    if suffix in (".csv", ".tsv"):
        return read_csv(path, "eval set", "\t" if suffix == ".tsv" else ",")
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    raise GenvalError(f"{path}: unknown eval-set format '{suffix}' (use .jsonl, .csv, .parquet or a datasets folder)")


def template_fields(template: str) -> list[str]:
    """Gives the field names a prompt template refers to, in order of first use."""
    seen = []
    for match in FIELD.finditer(template):
        name = match.group(1)
        if name and name not in seen:
            seen.append(name)
    return seen


def _lookup(data: dict, name: str):
    value = data
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(name)
        value = value[part]
    return value


def as_text(value) -> str:
    """Gives a field value as prompt text: strings as they are, anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def render(template: str, data: dict) -> str:
    """Fills `{field}` (and `{a.b}` for nested objects) in a template; `{{`/`}}` give braces.

    Any other brace is left as written, so a prompt can show a JSON example without escaping.
    """

    def sub(match: re.Match) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return as_text(_lookup(data, match.group(1)))

    return FIELD.sub(sub, template)


def canonical(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(records: list[dict]) -> str:
    """Gives the sha256 of the records' canonical serialisation, independent of file format and order."""
    digest = hashlib.sha256()
    for data in sorted(records, key=lambda r: str(r["id"])):
        digest.update(canonical(data).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass
class EvalSet:
    path: Path
    examples: pd.DataFrame
    sha256: str

    @property
    def n(self) -> int:
        return len(self.examples)


def _clean(data: dict) -> dict:
    """Drops the NaN/None cells a CSV or Parquet row carries for absent values."""
    out = {}
    for key, value in data.items():
        if value is None or (isinstance(value, float) and value != value):
            continue
        out[key] = value
    return out


def slice_value(value) -> str:
    """Gives a slice value as the string the report groups by (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def load_evalset(path: Path, prompt: str, slices: list[str], system_prompt: str | None = None) -> EvalSet:
    """Loads and validates the eval set: unique ids, the prompt's fields, the slice fields.

    Gives the `examples` table: `id`, `prompt`, `system`, `input`, `reference`, `label`,
    one `slice_<field>` per configured slice, and `record` (the whole record as JSON).
    """
    records = read_records(path)
    if not records:
        raise GenvalError(f"{path}: the eval set has no records")
    needed = template_fields(prompt) + (template_fields(system_prompt) if system_prompt else [])
    seen: dict[str, str] = {}
    rows = []
    for rec in records:
        data = _clean(rec.data)
        if "id" not in data or str(data["id"]).strip() == "":
            raise GenvalError(f"{rec.where}: the record has no 'id' (every example needs a unique id)")
        ident = str(data["id"])
        if ident in seen:
            raise GenvalError(f"{rec.where}: duplicate id '{ident}' (first at {seen[ident]}); ids must be unique")
        seen[ident] = rec.where
        data["id"] = ident
        nested = data.get("slices") if isinstance(data.get("slices"), dict) else {}
        lookup = {**nested, **data}
        for name in needed:
            try:
                _lookup(lookup, name)
            except KeyError:
                have = ", ".join(sorted(k for k in data if k != "slices"))
                raise GenvalError(
                    f"{rec.where}: the prompt names '{{{name}}}' but the record has no field '{name}' (it has: {have})"
                ) from None
        row = {
            "id": ident,
            "prompt": render(prompt, lookup),
            "system": render(system_prompt, lookup) if system_prompt else None,
            "input": as_text(data["input"]) if "input" in data else None,
            "reference": as_text(data["reference"]) if "reference" in data else None,
            "label": slice_value(data["label"]) if "label" in data else None,
        }
        for field in slices:
            if field in nested:
                value = nested[field]
            elif field in data:
                value = data[field]
            else:
                raise GenvalError(
                    f"{rec.where}: no slice field '{field}' (put it in the record's 'slices' object or as a top-level field)"
                )
            row[f"slice_{field}"] = slice_value(value)
        row["record"] = canonical(data)
        rows.append(row)
    examples = pd.DataFrame(rows)
    return EvalSet(path=Path(path), examples=examples, sha256=fingerprint([_clean(r.data) | {"id": str(r.data["id"])} for r in records]))
