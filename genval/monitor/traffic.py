"""Logged traffic, streamed: one record at a time from JSONL, CSV or Parquet, each with its `file:line`.

A log of a million requests is never held whole: JSONL and CSV are read line by line, Parquet by
record batch. Each record gets a content hash (a 64-bit BLAKE2b of its canonical JSON), which is
how a later invocation knows the rows it has already read; its timestamp is read as ISO 8601
(no offset: UTC) and placed in a window counted from Monday 1970-01-05 00:00 UTC, so 7-day
windows run Monday to Monday.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from genval.errors import GenvalError
from genval.evalset import canonical
from genval.files import decode, parse_json

ORIGIN = datetime(1970, 1, 5, tzinfo=timezone.utc)  # a Monday: weekly windows start on Mondays
PARQUET_BATCH = 8192


@dataclass
class LogRecord:
    """One logged request as read, with where it came from and its content hash."""

    data: dict
    where: str
    digest: int


def row_digest(data: dict) -> int:
    """Gives a record's 64-bit content hash: the same request logged in two files has the same one."""
    return int.from_bytes(hashlib.blake2b(canonical(data).encode("utf-8"), digest_size=8).digest(), "big")


def _jsonl(path: Path) -> Iterator[tuple[dict, str]]:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            line = decode(raw, path) if raw.strip() else ""
            if not line.strip():
                continue
            data = parse_json(line, path, n)
            if not isinstance(data, dict):
                raise GenvalError(f"{path}:{n}: each line should be a JSON object, found {type(data).__name__}")
            yield data, f"{path}:{n}"


def _csv(path: Path, delimiter: str) -> Iterator[tuple[dict, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        try:
            for row in reader:
                if row.pop(None, None):
                    raise GenvalError(f"{path}:{reader.line_num}: more cells than the header has columns")
                yield dict(row), f"{path}:{reader.line_num}"
        except csv.Error as exc:
            raise GenvalError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
        except UnicodeDecodeError as exc:
            raise GenvalError(f"{path}:{reader.line_num}: not UTF-8 ({exc.reason}); save the file as UTF-8") from None


def _parquet(path: Path) -> Iterator[tuple[dict, str]]:
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path, pre_buffer=False)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise GenvalError(f"{path}: not a readable Parquet file ({exc})") from None
    row = 0
    for batch in source.iter_batches(batch_size=PARQUET_BATCH):
        for data in batch.to_pylist():
            row += 1
            yield data, f"{path} row {row}"


def read_log(path: Path) -> Iterator[LogRecord]:
    """Yields the records of one traffic file in file order, hashed; a bad line is a one-line error."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        rows = _jsonl(path)
    elif suffix in (".csv", ".tsv"):
        rows = _csv(path, "\t" if suffix == ".tsv" else ",")
    elif suffix in (".parquet", ".pq"):
        rows = _parquet(path)
    else:
        raise GenvalError(f"{path}: unknown traffic format '{suffix}' (use .jsonl, .csv or .parquet)")
    for data, place in rows:
        yield LogRecord(data, place, row_digest(data))


def parse_timestamp(value, place: str, field: str) -> datetime:
    """Gives the record's timestamp in UTC; a missing or unreadable one names the line and the format wanted."""
    if value is None or value == "":
        raise GenvalError(f"{place}: no timestamp in field '{field}' (each request needs an ISO 8601 time, "
                          "e.g. 2026-03-02T14:05:00Z; or set 'timestamp_field')")
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.strip())
        except ValueError:
            raise GenvalError(f"{place}: '{field}' is '{value[:40]}', not an ISO 8601 time "
                              "(e.g. 2026-03-02T14:05:00Z)") from None
    else:
        raise GenvalError(f"{place}: '{field}' should be an ISO 8601 time string, found {value!r}"[:200])
    return stamp.replace(tzinfo=timezone.utc) if stamp.tzinfo is None else stamp.astimezone(timezone.utc)


def window_start(stamp: datetime, length: timedelta) -> datetime:
    """Gives the start of the window that holds `stamp` (windows are counted from ORIGIN)."""
    return ORIGIN + ((stamp - ORIGIN) // length) * length


def iso(stamp: datetime) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
