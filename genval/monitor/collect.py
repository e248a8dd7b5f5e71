"""One streaming pass over the new traffic: every record checked, counted into its window, the sample drawn.

Memory is bounded by the windows, not the log: per window the pass keeps counts (per slice value,
per combination of slice values, an input-length histogram, failures), the rows people labelled,
and the sample. The sample is a bottom-k sample on a seeded hash of each row's content (per
window the k rows of smallest priority; with `rate`, every row whose priority falls under the
rate): the same log gives the same sample in any file order, and a row's priority never depends
on which other rows arrived first (Cohen & Kaplan 2007, "Summarizing data using bottom-k sketches").
Nothing is written here: a bad record stops the command before the run folder changes.
"""

from __future__ import annotations

import hashlib
import heapq
from array import array
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from genval.errors import GenvalError
from genval.evalset import as_text, render, slice_value, template_fields
from genval.monitor.config import MonitorConfig
from genval.monitor.numbers import same_answer
from genval.monitor.traffic import LogRecord, iso, parse_timestamp, read_log, window_start

# Input length (characters) bins for the input-drift PSI: fixed edges, so every window and the
# baseline are binned alike without a first pass over the data.
LENGTH_EDGES = np.array([16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192])
BATCH = 8192
_TOP = float(2 ** 64)


@dataclass
class Window:
    """What the pass keeps of one window: counts, the people-labelled rows, and the sample."""

    start: datetime
    n: int = 0
    failed: int = 0
    slices: dict = field(default_factory=dict)  # (field, value) → [n, failed]
    combos: dict = field(default_factory=dict)  # tuple of slice values → n
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(len(LENGTH_EDGES) + 1, dtype=np.int64))
    labelled: list = field(default_factory=list)  # (slice values, correct 0/1) of rows people labelled
    heap: list = field(default_factory=list)  # (−priority, digest, row): the k smallest priorities
    taken: list = field(default_factory=list)  # rows under the rate (sample.rate)

    def sample(self) -> list[dict]:
        rows = [row for _, _, row in self.heap] + self.taken
        return sorted(rows, key=lambda r: (r["timestamp"], r["id"]))  # time order: the table reads as the log


@dataclass
class Pass:
    """The outcome of one pass: new windows, digests read, and what was left out and why."""

    windows: dict[datetime, Window] = field(default_factory=dict)
    digests: array = field(default_factory=lambda: array("Q"))
    rows: int = 0
    repeated: int = 0  # rows an earlier invocation already read
    late: dict = field(default_factory=dict)  # window start → rows that came after the window was recorded
    files: dict = field(default_factory=dict)  # path → {sha256, rows}


def priority(digest: int, seed: int) -> float:
    """Gives a row's sampling priority in [0, 1): a seeded hash of its content hash."""
    key = hashlib.blake2b(digest.to_bytes(8, "big"), digest_size=8, key=seed.to_bytes(8, "big", signed=True))
    return int.from_bytes(key.digest(), "big") / _TOP


class Collector:
    """Reads records into windows; `seen` (sorted uint64) are the digests of earlier invocations."""

    def __init__(self, config: MonitorConfig, seen: np.ndarray, recorded: set[datetime], human: dict[str, str]):
        self.config, self.seen, self.recorded, self.human = config, seen, recorded, human
        self.out = Pass()
        self.length = config.window_length
        self.needed = [name.split(".")[0] for name in template_fields(config.prompt)
                       + (template_fields(config.system_prompt) if config.system_prompt else [])]

    def read_file(self, path: Path, sha256: str) -> None:
        batch: list[LogRecord] = []
        rows = 0
        for record in read_log(path):
            batch.append(record)
            rows += 1
            if len(batch) == BATCH:
                self._batch(batch)
                batch = []
        if batch:
            self._batch(batch)
        self.out.files[str(path)] = {"sha256": sha256, "rows": rows}

    def _batch(self, batch: list[LogRecord]) -> None:
        digests = np.fromiter((r.digest for r in batch), dtype=np.uint64, count=len(batch))
        old = np.isin(digests, self.seen) if self.seen.size else np.zeros(len(batch), dtype=bool)
        for record, repeated in zip(batch, old):
            stamp = self._check(record)
            if repeated:
                self.out.repeated += 1
                continue
            self.out.digests.append(record.digest)
            self.out.rows += 1
            start = window_start(stamp, self.length)
            if start in self.recorded:
                self.out.late[iso(start)] = self.out.late.get(iso(start), 0) + 1
                continue
            window = self.out.windows.get(start)
            if window is None:
                window = self.out.windows[start] = Window(start)
            self._count(window, record, stamp)

    def _check(self, record: LogRecord) -> datetime:
        """Gives the record's timestamp after checking every field the monitor reads; a gap is a one-line error."""
        c, data = self.config, record.data
        stamp = parse_timestamp(data.get(c.timestamp_field), record.where, c.timestamp_field)
        if c.output_field not in data:
            have = ", ".join(sorted(map(str, data))[:12])
            raise GenvalError(f"{record.where}: no output field '{c.output_field}' (what the student answered; "
                              f"set 'output_field' — the record has: {have})")
        for name in [*self.needed, *c.slices]:
            if name not in data:
                what = "the prompt names" if name in self.needed else "a slice field is"
                raise GenvalError(f"{record.where}: {what} '{name}' but the record has no field '{name}'")
        return stamp

    def _count(self, window: Window, record: LogRecord, stamp: datetime) -> None:
        c, data = self.config, record.data
        output = data.get(c.output_field)
        failed = output is None or bool(data.get(c.error_field))
        values = tuple(slice_value(data[name]) for name in c.slices)
        window.n += 1
        window.failed += failed
        for name, value in zip(c.slices, values):
            cell = window.slices.setdefault((name, value), [0, 0])
            cell[0] += 1
            cell[1] += failed
        window.combos[values] = window.combos.get(values, 0) + 1
        text = data.get(c.input_field)
        if text is not None:
            window.lengths[np.searchsorted(LENGTH_EDGES, len(as_text(text)), side="right")] += 1
        ident = str(data[c.id_field]) if data.get(c.id_field) is not None else f"{record.digest:016x}"
        if ident in self.human:
            right = not failed and same_answer(as_text(output), self.human[ident], c.labels)
            window.labelled.append((values, float(right)))
        self._sample(window, record, stamp, ident, values, None if failed else as_text(output))

    def _sample(self, window: Window, record: LogRecord, stamp, ident, values, output) -> None:
        sample = self.config.sample
        rank = priority(record.digest, sample.seed)
        if sample.rate is not None:
            if rank < sample.rate:
                window.taken.append(self._row(record, stamp, ident, values, output, rank))
            return
        if len(window.heap) < sample.per_window:
            heapq.heappush(window.heap, (-rank, record.digest, self._row(record, stamp, ident, values, output, rank)))
        elif -window.heap[0][0] > rank:
            row = self._row(record, stamp, ident, values, output, rank)
            heapq.heapreplace(window.heap, (-rank, record.digest, row))

    def _row(self, record: LogRecord, stamp, ident, values, output, rank) -> dict:
        c, data = self.config, record.data
        try:
            prompt = render(c.prompt, data)
            system = render(c.system_prompt, data) if c.system_prompt else None
        except KeyError as exc:
            raise GenvalError(f"{record.where}: the prompt names '{{{exc.args[0]}}}' but the record has no such "
                              "field") from None
        return {"id": ident, "digest": record.digest, "priority": rank, "timestamp": iso(stamp),
                **{f"slice_{name}": value for name, value in zip(c.slices, values)},
                "output": output, "prompt": prompt, "system": system, "where": record.where}

