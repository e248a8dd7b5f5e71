"""Eval sets: load (JSONL, CSV, Parquet, a `datasets` folder), validate, fingerprint, render prompts.

The fingerprint is sha256 over a canonical serialisation of the records (sorted by id, keys
sorted, compact JSON), so the same set in another file format or order has the same
fingerprint: it is the frozen yardstick that later comparisons check. A record's `reference`
may be a list of references (SummEval has 11 per document); the fingerprint covers them all.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pandas as pd

from genval.errors import GenvalError, did_you_mean
from genval.files import iter_lines, parse_json, read_json

MAX_SLICE_VALUES = 10000  # distinct values of one slice field kept for the checks (the memory of a few ids)
BATCH_RECORDS = 8192  # records read into one frame (genval.runfolder.BATCH_ROWS, which this module sits below)

FIELD = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_.]*)\}")


@dataclass
class Record:
    """One eval example as read, with where it came from (for error messages)."""

    data: dict
    where: str  # "file:line" or "file row N"
    line: int | None = None
    at: tuple[int, int] | None = None  # (byte offset, part) of its line, for JSONL (genval.files.line_at)


def iter_jsonl(path: Path, what: str = "JSONL") -> Iterator[Record]:
    """Yields the JSON object on each non-blank line, with `file:line`, reading the file as it goes."""
    for n, line, offset, part in iter_lines(path, what):
        if not line.strip():
            continue
        data = parse_json(line, path, n)
        if not isinstance(data, dict):
            raise GenvalError(f"{path}:{n}: each line should be a JSON object, found {type(data).__name__}")
        yield Record(data, f"{path}:{n}", n, (offset, part))


def read_jsonl(path: Path, what: str = "JSONL") -> list[Record]:
    """Gives the JSON object on each non-blank line, with `file:line`; a bad line is a one-line error."""
    return list(iter_jsonl(path, what))


def _csv_lines(path: Path, what: str) -> Iterator[str]:
    for _n, line, _offset, _part in iter_lines(path, what, raw=True):
        yield line


def iter_csv(path: Path, what: str = "CSV", delimiter: str = ",") -> Iterator[Record]:
    """Yields each CSV row as a dict of strings, with `file:line` (the header is line 1), reading as it goes.

    A cell may be as long as the file: a long document is an eval example, not a mistake.
    """
    csv.field_size_limit(max(csv.field_size_limit(), Path(path).stat().st_size + 1 if Path(path).is_file() else 0))
    reader = csv.DictReader(_csv_lines(path, what), delimiter=delimiter)
    try:
        for row in reader:
            extra = row.pop(None, None)
            if extra:
                raise GenvalError(f"{path}:{reader.line_num}: more cells than the header has columns")
            yield Record(dict(row), f"{path}:{reader.line_num}", reader.line_num)
    except csv.Error as exc:
        raise GenvalError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
    _header_unique(path, reader.fieldnames)


def _header_unique(path: Path, fieldnames) -> None:
    duplicated = sorted({name for name in fieldnames or [] if (fieldnames or []).count(name) > 1})
    if duplicated:
        raise GenvalError(f"{path}:1: the header names column '{duplicated[0]}' twice; give each column once")


def read_csv(path: Path, what: str = "CSV", delimiter: str = ",") -> list[Record]:
    """Gives each CSV row as a dict of strings, with `file:line` (the header is line 1)."""
    return list(iter_csv(path, what, delimiter))


def _iter_parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        batches = file.iter_batches(batch_size=BATCH_RECORDS)
        row = 0
        for batch in batches:
            for data in batch.to_pylist():
                row += 1
                yield Record(data, f"{path} row {row}")
    except GenvalError:
        raise
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise GenvalError(f"{path}: not a readable Parquet file ({exc})") from None


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
    return [Record(row, f"{path} row {i + 1}") for i, row in enumerate(table.to_pylist())]


def iter_records(path: Path) -> Iterator[Record]:
    """Yields the records of the eval set at `path`, in file order, reading as it goes (a `datasets` folder whole)."""
    path = Path(path)
    if not path.exists():
        raise GenvalError(f"{path}: no such eval set (check 'eval_set' in the config)")
    if path.is_dir():
        if (path / "state.json").exists():
            yield from _read_datasets_folder(path)
            return
        if (path / "dataset_dict.json").exists():
            raise GenvalError(f"{path}: a DatasetDict folder; point 'eval_set' at one split's folder inside it")
        raise GenvalError(f"{path}: a folder that is not a `datasets` save_to_disk folder (no state.json)")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        yield from iter_jsonl(path, "eval set")
    elif suffix in (".csv", ".tsv"):
        yield from iter_csv(path, "eval set", "\t" if suffix == ".tsv" else ",")
    elif suffix in (".parquet", ".pq"):
        yield from _iter_parquet(path)
    else:
        raise GenvalError(f"{path}: unknown eval-set format '{suffix}' (use .jsonl, .csv, .parquet or a datasets folder)")


def read_records(path: Path) -> list[Record]:
    """Gives the records of the eval set at `path`, in file order."""
    return list(iter_records(path))


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


class SortedDigest:
    """The fingerprint and the duplicate-id check over records that stream by, in memory bounded by `chunk`.

    `fingerprint` hashes the records sorted by id; here each record's (id, canonical text,
    where) is kept until `chunk` characters have gathered, then sorted and spilled to a temporary file,
    and the sorted runs are merged at the end (an external merge sort), so a million records
    need a chunk's memory and the disk space of their text. Two equal ids meet in the merge.
    """

    def __init__(self, chunk: int = 8 << 20):
        self.chunk, self.held, self.runs, self.n, self.size = chunk, [], [], 0, 0
        self._dir = None

    def add(self, ident: str, text: str, where_: str, ordinal: int) -> None:
        self.held.append((ident, ordinal, where_, text))
        self.n += 1
        self.size += len(text) + len(where_) + len(ident)
        if self.size >= self.chunk:
            self._spill()

    def _spill(self) -> None:
        import tempfile

        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="genval-evalset-")
        path = Path(self._dir.name) / f"run{len(self.runs)}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for entry in sorted(self.held):
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.runs.append(path)
        self.held, self.size = [], 0

    def _sorted(self) -> Iterator[tuple]:
        if not self.runs:
            yield from sorted(self.held)
            return
        self._spill()
        import heapq

        files = [open(path, encoding="utf-8") for path in self.runs]
        try:
            yield from heapq.merge(*[(tuple(json.loads(line)) for line in fh) for fh in files])
        finally:
            for fh in files:
                fh.close()

    def finish(self) -> tuple[str, tuple[int, GenvalError] | None]:
        """Gives the fingerprint, and the first repeated id in file order as (its record's position, the error)."""
        digest, previous, repeats = hashlib.sha256(), None, []
        try:
            for ident, ordinal, where_, text in self._sorted():
                if previous is not None and previous[0] == ident:
                    repeats.append((ordinal, where_, ident, previous[2]))
                else:
                    previous = (ident, ordinal, where_)
                digest.update(text.encode("utf-8"))
                digest.update(b"\n")
        finally:
            if self._dir is not None:
                self._dir.cleanup()
        if repeats:
            ordinal, where_, ident, first = min(repeats)
            return digest.hexdigest(), (ordinal, GenvalError(f"{where_}: duplicate id '{ident}' (first at {first}); "
                                                             "ids must be unique"))
        return digest.hexdigest(), None


@dataclass
class EvalSet:
    """A checked eval set: its fingerprint, its size, its first example, and its examples read again on demand."""

    path: Path
    sha256: str
    n: int
    first: dict  # the first example's row (the judge files' prompts are rendered with it)
    prompt: str = ""
    slices: tuple[str, ...] = ()
    system_prompt: str | None = None
    max_references: int = 0  # the most references one example gives (a list `reference` counts each)
    # Each slice field's values and how many examples have each (at most MAX_SLICE_VALUES kept per field:
    # a field with more is no slice to read; `slice_values_cut` names such fields).
    slice_values: dict = field(default_factory=dict)
    slice_values_cut: frozenset = frozenset()

    def batches(self, rows: int = BATCH_RECORDS) -> Iterator[pd.DataFrame]:
        """Yields the `examples` table in frames of at most `rows` rows, reading the file again."""
        batch = []
        for row, error, _rec in _example_rows(self.path, self.prompt, list(self.slices), self.system_prompt):
            if error is not None:  # the file changed since it was checked
                raise error
            batch.append(row)
            if len(batch) == rows:
                yield pd.DataFrame(batch, columns=self.columns())
                batch = []
        if batch:
            yield pd.DataFrame(batch, columns=self.columns())

    def columns(self) -> list[str]:
        return [*EXAMPLE_COLUMNS, *(f"slice_{field}" for field in self.slices), "record"]

    @property
    def examples(self) -> pd.DataFrame:
        """Gives the whole `examples` table in memory (small sets, tests); a stage reads it in batches."""
        frames = list(self.batches())
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=self.columns())


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


EXAMPLE_COLUMNS = ["id", "prompt", "system", "input", "reference", "references", "label"]


def references_text(value, where: str) -> str | None:
    """Gives a list `reference` as a JSON array of each reference's text (None for a single reference).

    The `reference` column keeps the field as written (a list shows as JSON to a judge and in the
    report); `references` is what the metrics read: every reference, each as text.
    """
    if not isinstance(value, list):
        return None
    if not value:
        raise GenvalError(f"{where}: 'reference' is an empty list (give one or more references, or leave it out)")
    return json.dumps([as_text(v) for v in value], ensure_ascii=False)


def _example_row(rec: Record, prompt: str, slices: list[str], system_prompt: str | None, needed: list[str]) -> dict:
    """Gives the examples row of one record, checking its id, the prompt's fields and the slice fields."""
    data = _clean(rec.data)
    if "id" not in data or str(data["id"]).strip() == "":
        raise GenvalError(f"{rec.where}: the record has no 'id' (every example needs a unique id)")
    ident = str(data["id"])
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
        "references": references_text(data.get("reference"), rec.where),
        "label": slice_value(data["label"]) if "label" in data else None,
    }
    for name in slices:
        if name in nested:
            value = nested[name]
        elif name in data:
            value = data[name]
        else:
            fields = sorted({*map(str, data), *map(str, nested)} - {"slices"})
            raise GenvalError(
                f"{rec.where}: no slice field '{name}' (put it in the record's 'slices' object or as a top-level field)"
                + did_you_mean(name, fields)
            )
        if isinstance(value, str) and not value.strip():
            # A blank cell (CSV's empty string) would make a slice called `field=` that no one asked for.
            raise GenvalError(f"{rec.where}: slice field '{name}' is blank; give it a value (write 'unknown' or "
                              "'missing' where the value is not known, so the slice is named)")
        row[f"slice_{name}"] = slice_value(value)
    row["record"] = canonical(data)
    return row


def _example_rows(path: Path, prompt: str, slices: list[str], system_prompt: str | None):
    """Yields (examples row or None, the record's error or None, Record) per record of the file.

    A file that cannot be read (bad JSON, CSV, bytes) stops at once; a record's own mistake is
    given back, so that the checks can report the first one after the whole file has been read,
    as a reader of the whole file would.
    """
    needed = template_fields(prompt) + (template_fields(system_prompt) if system_prompt else [])
    for rec in iter_records(path):
        try:
            yield _example_row(rec, prompt, slices, system_prompt, needed), None, rec
        except GenvalError as exc:
            yield None, exc, rec


def load_evalset(path: Path, prompt: str, slices: list[str], system_prompt: str | None = None) -> EvalSet:
    """Reads and checks the eval set once, streaming: unique ids, the prompt's fields, the slice fields.

    Gives its fingerprint, size and first example; `EvalSet.batches()` reads the `examples` table
    (`id`, `prompt`, `system`, `input`, `reference`, `label`, one `slice_<field>` per configured
    slice, and `record`, the whole record as JSON) again, batch by batch.
    """
    digest, first, mistake, n, most = SortedDigest(), None, None, 0, 0
    values: dict[str, Counter] = {name: Counter() for name in slices}
    cut: set[str] = set()
    for row, error, rec in _example_rows(path, prompt, slices, system_prompt):
        if error is not None:
            mistake = mistake or (n, error)
        else:
            for name in slices:
                seen, value = values[name], row[f"slice_{name}"]
                if value in seen or len(seen) < MAX_SLICE_VALUES:
                    seen[value] += 1
                else:
                    cut.add(name)
            digest.add(row["id"], row["record"], rec.where, n)  # the canonical text is what the fingerprint hashes
            first = first or row
            refs = row["references"]
            most = max(most, len(json.loads(refs)) if refs is not None else int(row["reference"] is not None))
        n += 1
    if n == 0:
        raise GenvalError(f"{path}: the eval set has no records")
    sha256, repeat = digest.finish()
    found = [m for m in (mistake, repeat) if m is not None]
    if found:  # the first mistake in file order
        raise min(found, key=lambda m: m[0])[1]
    return EvalSet(path=Path(path), sha256=sha256, n=n, first=first, prompt=prompt, slices=tuple(slices),
                   system_prompt=system_prompt, max_references=most, slice_values={k: dict(v) for k, v in values.items()},
                   slice_values_cut=frozenset(cut))
