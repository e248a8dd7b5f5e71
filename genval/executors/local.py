"""The local executor: a stage's map over Parquet batches in this process, or over the machine's cores.

Batches are read with `pyarrow.parquet.ParquetFile.iter_batches` (through `Run.iter_table` and the
one join, `genval.pairs.joined`), mapped, and handed back in order; the stage writes them as they
come. With more than one worker, batches go to worker processes — each builds the task once and
keeps it, as a Ray actor would — one more than the workers in flight, so memory stays bounded by
the batch size whatever the number of rows.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator

import pandas as pd

from genval.pairs import joined
from genval.runfolder import BATCH_ROWS, Run

# Below this many rows, starting worker processes costs more than it saves.
PARALLEL_MIN_ROWS = 4000
INPUT_ROWS = "_input_rows"  # a result column that says how many source rows a batch covered (for progress)


@dataclass(frozen=True)
class Source:
    """The rows a map reads: a table of the run folder, or (`roles` given) the examples joined with those roles' outputs."""

    run: Run
    table: str = "examples"
    columns: tuple[str, ...] | None = None  # None: every column
    roles: tuple[str, ...] | None = None
    output_columns: tuple[str, ...] = ("text", "error")

    def frames(self, batch_rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
        """Yields the rows as pandas frames of at most `batch_rows` rows, in the table's order."""
        columns = None if self.columns is None else list(self.columns)
        if self.roles is None:
            yield from self.run.iter_table(self.table, columns=columns, batch_size=batch_rows)
        else:
            yield from joined(self.run, list(self.roles), columns, self.output_columns, batch_size=batch_rows)

    def rows(self) -> int:
        return self.run.table_rows(self.table if self.roles is None else "examples")


def counted_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Gives a result frame without its row count, and the count of source rows it covers."""
    if INPUT_ROWS not in frame:
        return frame, 0
    return frame.drop(columns=INPUT_ROWS), int(frame[INPUT_ROWS].sum())


_POOL_SET = False
# glibc's threshold, fixed: the score stage's pickled results (~18 MiB a batch) lie above it. Measured at 100k (the
# parent's peak; aggregate's time, whose bootstrap blocks pay an mmap each above it): 1 MiB 380 MiB, +0.8 s;
# 8 MiB 380 MiB, +0.1 s; 16 MiB 386 MiB; unfixed 419 MiB.
MMAP_THRESHOLD = 8 << 20
M_MMAP_THRESHOLD = -3  # glibc's malloc.h


def bounded_memory() -> None:
    """Sets this process's allocators (once) so that memory freed after a batch is given back: pyarrow's and glibc's.

    pandas keeps its strings in Arrow arrays; with pyarrow's default pool (mimalloc) a process
    that maps batch after batch grows by a megabyte or two per batch (measured: +150 MB over
    36 batches of the score stage), while jemalloc's stays flat at the batch's working set.
    genval/__init__.py asks for it before pyarrow loads (ARROW_DEFAULT_MEMORY_POOL); this is for
    a process that loaded pyarrow first, unless the user chose a pool. Then `fixed_mmap_threshold`.
    """
    global _POOL_SET
    if _POOL_SET:
        return
    _POOL_SET = True
    fixed_mmap_threshold()
    import pyarrow as pa

    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL", "jemalloc") != "jemalloc" or \
            pa.default_memory_pool().backend_name == "jemalloc":
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, AttributeError):  # a pyarrow built without jemalloc keeps its default
        pass


def fixed_mmap_threshold() -> bool:
    """Fixes glibc malloc's mmap threshold at `MMAP_THRESHOLD`, so a large block freed is unmapped at once; says if it did.

    glibc gives a block above its threshold (128 KiB at start) a mapping of its own, but each time
    such a block is freed it raises the threshold to that block's size, up to 32 MiB (mallopt(3),
    M_MMAP_THRESHOLD). After the first batches, then, the pickled batches and results a worker
    pool moves and their arrays come from malloc's heaps, whose freed holes stay resident: the
    process's peak grew with the number of batches — the score stage's parent peaked at 319 MiB at
    10k examples (2 batches) and 419 MiB at 100k (13), a whole run 368 → 491 MiB from 10k to 1M.
    Setting the threshold turns that raising off. A user's MALLOC_MMAP_THRESHOLD_ wins; off glibc
    (macOS, musl) nothing changes.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # no glibc
        return False
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1


def count(task: Callable, frame: pd.DataFrame) -> pd.DataFrame:
    """Runs `task` on one batch; the result carries the batch's row count in its first row (`INPUT_ROWS`)."""
    bounded_memory()
    out = task(frame).reset_index(drop=True)
    marks = [0] * len(out)
    if marks:
        marks[0] = len(frame)
    return out.assign(**{INPUT_ROWS: pd.array(marks, dtype="int64")})


def cores() -> int:
    """Gives the number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_TASK = None  # the task a worker process built once


def _install(task) -> None:
    global _TASK
    _TASK = task
    if "torch" in sys.modules:  # a model in each worker: share the cores instead of each taking all of them
        import torch

        torch.set_num_threads(max(1, cores() // max(1, int(os.environ.get("GENVAL_WORKERS", "1")))))


def _run(frame: pd.DataFrame) -> pd.DataFrame:
    return count(_TASK, frame)


class LocalExecutor:
    """Maps tasks over a source's batches in this process, or in `workers` local processes."""

    kind = "local"

    def __init__(self, workers: int | None = None, batch_rows: int = BATCH_ROWS):
        self.workers, self.batch_rows = workers, batch_rows
        bounded_memory()

    def workers_for(self, model: bool, task=None) -> int:
        """Gives the processes a task gets: as configured, else every core — one when the task holds a model
        (it uses the cores itself, and a copy per process would cost memory) — and never more than the task takes."""
        wanted = self.workers if self.workers is not None else (1 if model else cores())
        return min(wanted, getattr(task, "max_workers", None) or wanted)

    def map(self, source: Source, task: Callable, model: bool = False, bar=None) -> Iterator[pd.DataFrame]:
        """Yields `task(batch)` for each batch of `source`, in order; `bar` (a tqdm bar) counts source rows done.

        In this process a task with an `on_item` attribute is given `bar.update`, so a slow
        model's bar moves with every answer rather than with every batch.
        """
        workers = self.workers_for(model, task)
        if workers > 1 and source.rows() >= PARALLEL_MIN_ROWS:
            yield from self._pooled(source, task, workers, bar)
            return
        per_item = bar is not None and hasattr(task, "on_item")
        if per_item:
            task.on_item = bar.update
        try:
            for frame in source.frames(self.batch_rows):
                out, covered = counted_rows(count(task, frame))
                if bar is not None and not per_item:
                    bar.update(covered)
                yield out
        finally:
            if per_item:
                task.on_item = None

    def _pooled(self, source: Source, task: Callable, workers: int, bar) -> Iterator[pd.DataFrame]:
        import multiprocessing

        # fork shares the imported libraries; a parent that has started torch's threads must not fork
        method = "forkserver" if "torch" in sys.modules else "fork"
        os.environ["GENVAL_WORKERS"] = str(workers)
        pending: deque = deque()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method), initializer=_install,
                                 initargs=(task,)) as pool:
            for frame in source.frames(self.batch_rows):
                pending.append(pool.submit(_run, frame))
                if len(pending) > workers:  # one batch waiting per worker, no more: memory stays bounded
                    yield self._done(pending.popleft().result(), bar)
            while pending:
                yield self._done(pending.popleft().result(), bar)

    @staticmethod
    def _done(result: pd.DataFrame, bar) -> pd.DataFrame:
        out, covered = counted_rows(result)
        if bar is not None:
            bar.update(covered)
        return out

    def close(self) -> None:
        """Nothing to release: worker processes end with each map."""
