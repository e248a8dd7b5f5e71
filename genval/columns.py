"""Per-example columns: a run's long tables turned into one value per example, window by window.

`scores` and `judgments` hold one row per example × pair × metric (or judge), in whatever
order their stage wrote them; aggregation and the report's drill-down need an example's
numbers side by side. Holding every column for every example would grow with the eval set
(8 bytes × examples × columns), so the rows are first dealt out by example position into
windows of WINDOW consecutive examples — a distribution sort (Knuth, TAOCP vol. 3, §5.2.5,
radix distribution), kept in memory when the run has one window and spilled to files in a
hidden temporary folder of the run otherwise — and one window is made dense at a time.
Memory: the id index (12 bytes an example) plus one window's columns, whatever the eval set's size.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from genval.errors import GenvalError
from genval.pairs import joined
from genval.runfolder import BATCH_ROWS, Run

WINDOW = 65536          # examples made dense at once (a multiple of every block size that reads windows)
READ_ROWS = 65536       # rows of a long table read at once
FLUSH_BYTES = 8 << 20   # pending rows go to their windows' files past this size
Key = tuple[str, str]   # (pair, metric)


def _hash(ids) -> np.ndarray:
    return pd.util.hash_array(np.asarray(pd.Series(ids).astype(str), dtype=object))


class Positions:
    """Gives each example id its position in the examples table (64-bit hashes, sorted: 12 bytes an example)."""

    def __init__(self, run: Run):
        hashes = [_hash(frame["id"]) for frame in run.iter_table("examples", columns=["id"], batch_size=READ_ROWS)]
        found = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
        self.n = int(found.size)
        self._order = np.argsort(found, kind="stable").astype(np.int32 if self.n < 2**31 else np.int64)
        self._sorted = found[self._order]
        if self.n > 1 and (self._sorted[1:] == self._sorted[:-1]).any():
            raise GenvalError(f"{run.path('examples')}: two example ids share one id or one 64-bit hash; "
                              "give every example a distinct id and re-run (`genval run CONFIG --force generate`)")

    def of(self, ids) -> np.ndarray:
        """Gives the positions of `ids` (int64), -1 for an id that is no example of the run."""
        wanted = _hash(ids)
        if not self.n:
            return np.full(wanted.size, -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._sorted, wanted), self.n - 1)
        return np.where(self._sorted[at] == wanted, self._order[at], -1).astype(np.int64)


@dataclass
class Window:
    """One window of examples [lo, hi): each column's values (NaN where absent) and where a row exists."""

    lo: int
    hi: int
    values: dict[Key, np.ndarray]
    present: dict[Key, np.ndarray]

    def value(self, key: Key) -> np.ndarray:
        """Gives a column's values in this window, all NaN when the run has no such column."""
        found = self.values.get(key)
        return found if found is not None else np.full(self.hi - self.lo, np.nan)


class ColumnStore:
    """Rows (example position, column, value) dealt into windows; read back one dense window at a time.

    Add rows with `add`, then read `windows()` (or one `column`) and `close()` (or use as a
    context manager) to remove the spill folder. `stats[key]` is (rows, values, min, max).
    """

    def __init__(self, run: Run, n: int, window: int = WINDOW, flush_bytes: int = FLUSH_BYTES):
        self.run, self.n, self.window, self.flush_bytes = run, n, max(1, window), flush_bytes
        self.keys: list[Key] = []
        self._code: dict[Key, int] = {}
        self.stats: dict[Key, list] = {}
        count = max(1, -(-n // self.window))
        self._pending: list[list[tuple]] = [[] for _ in range(count)]
        self._bytes = 0
        self._folder: Path | None = None

    def __enter__(self) -> "ColumnStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def code(self, key: Key) -> int:
        if key not in self._code:
            self._code[key] = len(self.keys)
            self.keys.append(key)
            self.stats[key] = [0, 0, np.inf, -np.inf]
        return self._code[key]

    def add(self, key: Key, positions: np.ndarray, values: np.ndarray) -> None:
        """Adds one column's rows: example positions (rows at -1, no example of the run, are left out) and values."""
        positions = np.asarray(positions, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        keep = positions >= 0
        positions, values = positions[keep], values[keep]
        code = self.code(key)
        stat = self.stats[key]
        finite = values[~np.isnan(values)]
        stat[0] += positions.size
        stat[1] += finite.size
        if finite.size:
            stat[2], stat[3] = min(stat[2], float(finite.min())), max(stat[3], float(finite.max()))
        which = positions // self.window
        for w in np.unique(which):
            here = which == w
            part = (positions[here].astype(np.int32), np.full(int(here.sum()), code, np.int32), values[here])
            self._pending[w].append(part)
            self._bytes += part[0].size * 16
        if len(self._pending) > 1 and self._bytes > self.flush_bytes:
            for w in range(len(self._pending)):
                self._flush(w)
            self._bytes = 0

    def _files(self, w: int) -> list[Path]:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix=".columns-", dir=self.run.root))
        return [self._folder / f"{w}.{kind}" for kind in ("pos", "key", "val")]

    def _flush(self, w: int) -> None:
        if not self._pending[w]:
            return
        for path, arrays in zip(self._files(w), zip(*self._pending[w])):
            with open(path, "ab") as fh:
                for arr in arrays:
                    arr.tofile(fh)
        self._pending[w] = []

    def _rows(self, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts: list[list[np.ndarray]] = [[], [], []]
        if self._folder is not None:
            for k, (path, dtype) in enumerate(zip(self._files(w), (np.int32, np.int32, np.float64))):
                if path.exists():
                    parts[k].append(np.fromfile(path, dtype=dtype))
        for part in self._pending[w]:
            for k in range(3):
                parts[k].append(part[k])
        return tuple(np.concatenate(p) if p else np.empty(0, d)
                     for p, d in zip(parts, (np.int32, np.int32, np.float64)))

    def window_at(self, w: int, keys: list[Key] | None = None) -> Window:
        """Gives window `w` dense: every column (or those in `keys`) over its examples."""
        lo, hi = w * self.window, min(self.n, (w + 1) * self.window)
        pos, code, val = self._rows(w)
        values, present = {}, {}
        wanted = self.keys if keys is None else [k for k in keys if k in self._code]
        for key in wanted:
            here = code == self._code[key]
            at = pos[here] - lo
            counts = np.bincount(at, minlength=hi - lo)
            if counts.size and counts.max() > 1:
                raise GenvalError(f"{self.run.root}: example at position {lo + int(counts.argmax())} has two rows "
                                  f"of {key[0]} {key[1]}; re-run the stage that writes them (`--force score` or "
                                  "`--force judge`)")
            column = np.full(hi - lo, np.nan)
            column[at] = val[here]
            values[key], present[key] = column, counts.astype(bool)
        return Window(lo, hi, values, present)

    def windows(self, keys: list[Key] | None = None) -> Iterator[Window]:
        for w in range(len(self._pending)):
            yield self.window_at(w, keys)

    def column(self, key: Key) -> np.ndarray:
        """Gives one column over every example (8 bytes an example: for a number that needs them all at once)."""
        out = np.full(self.n, np.nan)
        for window in self.windows([key]):
            out[window.lo:window.hi] = window.value(key)
        return out


def windows(run: Run, roles: list, example_columns: list | None, output_columns: tuple,
            size: int = WINDOW) -> Iterator[pd.DataFrame]:
    """Yields the examples joined with each role's outputs (genval.pairs.joined) in frames of `size` rows.

    The frames line up with a ColumnStore's windows of the same size: frame w holds the
    examples at positions [w·size, (w+1)·size).
    """
    held, rows = [], 0
    for frame in joined(run, roles, example_columns, output_columns, batch_size=min(size, BATCH_ROWS)):
        held.append(frame)
        rows += len(frame)
        while rows >= size:
            whole = pd.concat(held, ignore_index=True)
            yield whole.iloc[:size].reset_index(drop=True)
            rest = whole.iloc[size:]
            held, rows = ([rest] if len(rest) else []), len(rest)
    if rows:
        yield pd.concat(held, ignore_index=True)
