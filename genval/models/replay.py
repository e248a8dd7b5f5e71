"""The `replay` backend: outputs a user already has, one JSONL record per example.

A record holds `id` and `text`, and optionally `latency_s`, `prompt_tokens`,
`completion_tokens` and `label_probs` (label → probability). A duplicate id is an error
(which record is meant?); an id the eval set lacks, or an example the file lacks, is
reported in the run's notes and in the outputs table's `error` column, never dropped silently.

The file is read once, streaming, to check every record (a repeated id is found by sorting
the ids' 64-bit hashes — pandas' `hash_array`, the same in every process — and reading back
the few records that share one). Generation then reads the file alongside the requests: a file
in the eval set's order (the usual case) is read straight through, holding one record. Only
when a request's record is not the next one does the backend build an index — each id's hash
and the byte offset of its line, sorted, 25 bytes a record — and read records back from their
offsets (a hash shared by two ids is told apart by reading both). The index is built once per
process and version of the file.
"""

from __future__ import annotations

import heapq
import math
from array import array
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from genval.errors import GenvalError
from genval.evalset import iter_jsonl
from genval.files import line_at, parse_json
from genval.models.base import Backend, Completion, Request
from genval.runfolder import file_sha256

MISSING = "missing from replay file"  # an output's error when its id is not in the file: a re-run cannot fill it
RECORDED = "recorded in replay file"  # before a record's own `error`: a re-run reads it again

OPTIONAL_NUMBERS = ("latency_s", "prompt_tokens", "completion_tokens")
KEYS = ("id", "text", *OPTIONAL_NUMBERS, "label_probs", "error")  # a record's keys; any other is a mistake
HASH_CHUNK = 65536  # ids hashed at once while the index is built (only their 8-byte hashes are kept)


def id_hashes(ids) -> np.ndarray:
    """Gives a uint64 hash of each id (as a string), equal in every process."""
    import pandas as pd

    return pd.util.hash_array(np.asarray([str(i) for i in ids], dtype=object))


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


def checked(data: dict, where: str, labels: tuple[str, ...] | None) -> dict:
    """Gives a replay record checked and with its label probabilities normalised; a bad one is a one-line error."""
    if "id" not in data:
        raise GenvalError(f"{where}: the record has no 'id'")
    if not isinstance(data["id"], (str, int)) or isinstance(data["id"], bool):
        raise GenvalError(f"{where}: 'id' should be a string or a whole number, found {data['id']!r}")
    unknown = [key for key in data if key not in KEYS]
    if unknown:  # an output under `output` would otherwise read as an empty text and move every number
        from genval.errors import did_you_mean

        hint = did_you_mean(unknown[0], KEYS)
        if not hint and "text" not in data and isinstance(data[unknown[0]], str):
            hint = "; the output's text goes under 'text'"
        raise GenvalError(f"{where}: unknown key '{unknown[0]}' in a replay record (its keys: {', '.join(KEYS)})"
                          + hint)
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        raise GenvalError(f"{where}: 'text' should be a string, found {type(text).__name__}")
    for key in OPTIONAL_NUMBERS:
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise GenvalError(f"{where}: '{key}' should be a number ≥ 0, found {value!r}")
        if key != "latency_s" and value != int(value):
            raise GenvalError(f"{where}: '{key}' should be a whole number of tokens, found {value!r}")
    if data.get("error") is not None and not isinstance(data["error"], str):
        raise GenvalError(f"{where}: 'error' should be a string (the failure's message), found {data['error']!r}")
    if data.get("label_probs") is not None:
        data["label_probs"] = _label_probs(data["label_probs"], where, labels)
    return data


@dataclass(frozen=True)
class ReplayIndex:
    """Where each record of a replay file is: id hashes sorted, with each line's byte offset, part and number."""

    path: Path
    keys: np.ndarray  # uint64, sorted
    offsets: np.ndarray  # int64
    parts: np.ndarray  # int8: the part of a line a lone \r split (genval.files.iter_lines)
    lines: np.ndarray  # int64 line numbers

    def __len__(self) -> int:
        return len(self.keys)

    def positions(self, ids: list[str]) -> list[int | None]:
        """Gives each id's position in the index (None where the file has no record of it)."""
        keys = id_hashes(ids)
        lo = np.searchsorted(self.keys, keys, side="left")
        hi = np.searchsorted(self.keys, keys, side="right")
        out: list[int | None] = []
        for ident, a, b in zip(ids, lo, hi):
            if b - a == 1:
                out.append(int(a))  # one record of this hash: its id is checked when it is read
            elif b == a:
                out.append(None)
            else:  # two ids share a 64-bit hash: read them to tell which is meant
                out.append(next((int(k) for k in range(a, b) if str(self.record_id(int(k))) == ident), None))
        return out

    def read(self, position: int, handle=None) -> dict:
        text = line_at(self.path, int(self.offsets[position]), int(self.parts[position]), handle)
        return parse_json(text, self.path, int(self.lines[position]))

    def record_id(self, position: int) -> str:
        return str(self.read(position)["id"])


def _scan(path: Path, labels: tuple[str, ...] | None, keep=None) -> tuple[np.ndarray, tuple | None, int]:
    """Reads every record once and checks it; gives the good records' id hashes (in file order), the first
    mistake as (line, error) or None, and the number of records. `keep(record)` is called for each good one."""
    hashes, ids, mistake, n = [], [], None, 0
    for record in iter_jsonl(Path(path), "replay"):
        n += 1
        try:
            checked(record.data, record.where, labels)
        except GenvalError as exc:
            mistake = mistake or (record.line, exc)
            continue
        ids.append(str(record.data["id"]))
        if keep is not None:
            keep(record)
        if len(ids) == HASH_CHUNK:
            hashes.append(id_hashes(ids))
            ids = []
    hashes.append(id_hashes(ids))
    return np.concatenate(hashes), mistake, n


def _index(path: Path, labels: tuple[str, ...] | None) -> ReplayIndex:
    """Reads the file once: every record checked, the index built from ids hashed a chunk at a time.

    A line that is no JSON stops at once; a record's own mistake, or a repeated id, is reported
    after the whole file was read, the first in file order, as a reader of the whole file would.
    """
    offsets, parts, lines = array("q"), array("b"), array("q")

    def keep(record) -> None:
        offsets.append(record.at[0])
        parts.append(record.at[1])
        lines.append(record.line)

    keys, mistake, _ = _scan(path, labels, keep)
    order = np.argsort(keys, kind="stable")
    index = ReplayIndex(Path(path), keys[order], np.frombuffer(offsets, dtype=np.int64)[order],
                        np.frombuffer(parts, dtype=np.int8)[order], np.frombuffer(lines, dtype=np.int64)[order])
    found = [m for m in (mistake, _first_repeat(index)) if m is not None]
    if found:
        raise min(found, key=lambda m: m[0])[1]
    return index


def _first_repeat(index: ReplayIndex) -> tuple[int, GenvalError] | None:
    """Gives (line, error) of the first record (in file order) whose id an earlier record has, or None.

    Only records that share a 64-bit hash can share an id; those few are read back to compare.
    """
    starts = np.flatnonzero(np.r_[True, index.keys[1:] != index.keys[:-1]])
    ends = np.r_[starts[1:], len(index.keys)]
    repeats = []
    for a, b in zip(starts[ends - starts > 1], ends[ends - starts > 1]):  # in file order within the group
        seen: dict[str, int] = {}
        for k in range(a, b):
            ident = index.record_id(k)
            if ident in seen:
                repeats.append((int(index.lines[k]), seen[ident], ident))
            else:
                seen[ident] = int(index.lines[k])
    if not repeats:
        return None
    line, first_line, ident = min(repeats)
    return line, GenvalError(f"{index.path}:{line}: duplicate id '{ident}' (first at line {first_line}); "
                             "keep one record per id")


@lru_cache(maxsize=8)
def _cached_index(path: str, size: int, mtime_ns: int, labels: tuple[str, ...] | None) -> ReplayIndex:
    return _index(Path(path), labels)


def _version(path: Path) -> tuple[str, int, int]:
    path = Path(path)
    if not path.exists():
        raise GenvalError(f"{path}: no such replay file (check the model's 'path' in the config)")
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def replay_index(path: Path, labels: tuple[str, ...] | None = None) -> ReplayIndex:
    """Gives the checked index of a replay file, built once per process and version of the file."""
    return _cached_index(*_version(path), labels)


@lru_cache(maxsize=8)
def _cached_count(path: str, size: int, mtime_ns: int, labels: tuple[str, ...] | None) -> int:
    """Checks every record of the file (as `_index` does) and gives how many there are, keeping only a count."""
    keys, mistake, n = _scan(Path(path), labels)
    keys = np.sort(keys)
    repeat = _first_repeat(replay_index(path, labels)) if (keys[1:] == keys[:-1]).any() else None
    found = [m for m in (mistake, repeat) if m is not None]
    if found:
        raise min(found, key=lambda m: m[0])[1]
    return n


def replay_records(path: Path, labels: tuple[str, ...] | None = None) -> int:
    """Checks a replay file (once per process and version of it) and gives its number of records."""
    return _cached_count(*_version(path), labels)


class ReplayBackend(Backend):
    """Reads precomputed outputs; makes no model call."""

    name = "replay"
    uses_cache = False

    def __init__(self, path: Path, labels: list[str] | None = None):
        self.path = Path(path)
        self.labels = tuple(labels) if labels else None
        self.records = replay_records(self.path, self.labels)
        self.missing = 0
        self._file = None  # the file, read line after line from `_offset` (line `_line` next)
        self._offset, self._line = 0, 1
        self._next = None  # the record at the cursor: (data, where), or None at the end

    def fingerprint(self) -> str:
        return f"replay:{file_sha256(self.path)}"

    def __getstate__(self):  # a worker reads the file with its own cursor
        return {**self.__dict__, "_file": None, "_offset": 0, "_line": 1, "_next": None}

    def _advance(self) -> None:
        """Reads the next record at the cursor (blank lines skipped); a line a lone \\r splits ends the straight read."""
        self._next = None
        while True:
            if self._file.tell() != self._offset:
                self._file.seek(self._offset)
            raw = self._file.readline()
            if not raw:
                return
            start, self._offset, line = self._offset, self._offset + len(raw), self._line
            self._line += 1
            text = (raw[3:] if start == 0 and raw.startswith(b"\xef\xbb\xbf") else raw).decode("utf-8")
            if "\r" in text.rstrip("\r\n") or text.endswith("\r"):  # numbered apart by iter_lines: use the index
                return
            if text.strip():
                self._next = (parse_json(text, self.path, line), f"{self.path}:{line}")
                return

    def _find(self, ident: str) -> tuple[dict, str] | None:
        """Gives a request's record: the one at the cursor when it is the one, else through the index (and the
        cursor moves on from there, so a file in order after a jump is read straight again)."""
        if self._file is None:
            self._file = open(self.path, "rb")
            self._advance()
        if self._next is not None and str(self._next[0].get("id")) == ident:
            found = self._next
            self._advance()
            return found
        index = replay_index(self.path, self.labels)
        position = index.positions([ident])[0]
        if position is None:
            return None
        data = index.read(position, self._file)
        if str(data.get("id")) != ident:
            return None
        if index.parts[position] == 0:  # read on from the line after it
            self._offset, self._line = self._file.tell(), int(index.lines[position]) + 1
            self._advance()
        return data, f"{self.path}:{int(index.lines[position])}"

    def generate(self, requests: list[Request]) -> Iterator[Completion]:
        """Yields each request's record, in request order."""
        for req in requests:
            found = self._find(req.id)
            if found is None:
                self.missing += 1
                yield Completion(id=req.id, error=self.missing_error())
                continue
            data = checked(found[0], found[1], self.labels)
            yield Completion(
                    id=req.id,
                    text=data.get("text") or "",
                    prompt_tokens=data.get("prompt_tokens"),
                    completion_tokens=data.get("completion_tokens"),
                    latency_s=data.get("latency_s"),
                    label_probs=data.get("label_probs"),
                    error=self.recorded(data.get("error")),
                )

    def unmatched(self, found: int, asked: Callable[[], Iterable[list[str]]]) -> list[str]:
        """Gives the note on records for ids never asked for, when `found` records of the file were used.

        Ids are unique in the file and among the requests, so the count is the file's records
        less those found; only when it is not 0 are the requested ids (`asked()` yields them batch
        by batch) looked up, one flag per record, to name the first few.
        """
        if self.records - found <= 0:
            return []
        index = replay_index(self.path, self.labels)
        seen = np.zeros(len(index), dtype=bool)
        for ids in asked():
            for position in index.positions(list(ids)):
                if position is not None:
                    seen[position] = True
        unknown = np.flatnonzero(~seen)
        if not len(unknown):
            return []
        with open(self.path, "rb") as handle:
            names = heapq.nsmallest(5, (str(index.read(int(k), handle)["id"]) for k in unknown))
        shown = ", ".join(names) + (" …" if len(unknown) > 5 else "")
        return [f"{self.path}: {len(unknown)} record(s) for ids the eval set lacks: {shown}"]

    def missing_note(self, missing: int, ids=()) -> list[str]:
        """Gives the note on requests the file had no record for (failed outputs), naming the first few ids."""
        if not missing:
            return []
        shown = f" ({', '.join(map(str, list(ids)[:5]))}{' …' if missing > 5 else ''})" if len(ids) else ""
        return [f"{self.path}: {missing} example(s) have no record{shown}; they count as errors, and a re-run "
                "will not fill them: add their records to the file"]

    def missing_error(self) -> str:
        return f"{MISSING} {self.path.name}"

    def recorded(self, error) -> str | None:
        """Gives a record's own `error` as the output's, saying where it comes from (a re-run reads it again)."""
        return f"{RECORDED} {self.path.name}: {error}" if isinstance(error, str) else None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._offset, self._line, self._next = None, 0, 1, None
