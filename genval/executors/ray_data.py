"""The Ray executor: the same map functions on Ray Data, on this machine or a cluster (`pip install genval[ray]`).

A map writes its source's batches once — the very frames the local executor would map
(`Source.frames`: a table of the run folder, or the examples joined with their outputs by
genval.pairs) — as the row groups of one Parquet file in the run folder, and runs the task
with `map_batches` over the batches' numbers: as Ray tasks when it holds nothing, as an actor
pool (`ActorPoolStrategy`) when it holds a model (BERTScore, embeddings, an engine), each actor
building it once and reading each batch it is given from the file.
`DataContext.execution_options.preserve_order` keeps the batches in the source's order, so the
stage writes its table from `iter_batches` exactly as the local executor would. vLLM generation
goes through `ray.data.llm` instead (genval.models.ray_llm).

A cluster must see the run folder and the request cache at the same paths (a shared
filesystem); on one machine they are simply there.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import uuid
from typing import Callable, Iterator

import pandas as pd

from genval.errors import GenvalError
from genval.executors.local import Source, count, counted_rows


def import_ray():
    """Gives the `ray` module, or says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise GenvalError("executor 'ray' needs Ray Data: pip install genval[ray] (or use the local executor: "
                          "drop '--executor ray' / set executor.kind: local)") from None
    return ray


# How long a cluster's address may take to accept a connection: ray.init itself retries an
# address that answers nothing for minutes (measured: still retrying after 6 minutes).
CONNECT_TIMEOUT_S = 5.0


def check_address(address: str | None) -> None:
    """Raises a one-line GenvalError unless `address` (host:port, ray://host:port or 'auto') accepts a connection.

    None starts Ray on this machine and needs no check. 'auto' is what Ray finds: RAY_ADDRESS,
    else the cluster the last `ray start` on this machine recorded.
    """
    if address is None:
        return
    where = "executor.address"
    target = address
    if address == "auto":
        target = os.environ.get("RAY_ADDRESS") or None
        if target is None:
            try:
                from ray._private.services import canonicalize_bootstrap_address

                target = canonicalize_bootstrap_address("auto")
            except Exception:  # noqa: BLE001 — Ray's own lookup failing means the same to the user: no cluster
                target = None
        if target is None:
            raise GenvalError(f"{where} 'auto': no Ray cluster found on this machine (start one with "
                              "'ray start --head', set RAY_ADDRESS, or drop executor.address to start Ray here)")
    host, _, port = target.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise GenvalError(f"{where} '{address}': expected host:port, ray://host:port or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise GenvalError(f"{where} '{address}': no Ray cluster answers at {host}:{port} ({exc.strerror or exc}); "
                          "start it ('ray start --head') or fix the address") from None


def source_schema(source: Source, columns: list[str]):
    """Gives the Arrow schema of a source's rows: each column typed (with its pandas metadata) as in its own table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if source.roles is None:
        stored = pq.read_schema(source.run.path(source.table))
        return pa.schema([stored.field(name) for name in columns], metadata=stored.metadata)
    tables = {"examples": pq.read_schema(source.run.path("examples")),
              "outputs": pq.read_schema(source.run.path("outputs"))}
    fields = []
    for name in columns:
        role, dot, column = name.partition(".")
        table, column = (tables["outputs"], column) if dot and role in (source.roles or ()) else (tables["examples"], name)
        kind = table.field(column).type
        fields.append(pa.field(name, pa.string() if pa.types.is_null(kind) else kind))
    return pa.schema(fields)


def read_batch(path: str, group: int) -> pd.DataFrame:
    """Gives batch `group` of a batches file (one row group per batch) as the local executor would have read it."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path, pre_buffer=False).read_row_group(group).to_pandas()


def run_batches(task, path: str, groups: pd.DataFrame) -> pd.DataFrame:
    """Gives `task`'s rows for each batch named in `groups` (row group numbers of the batches file), in order."""
    return pd.concat([count(task, read_batch(path, int(g))) for g in groups["group"]], ignore_index=True)


def worker_class(task, path: str):
    """Gives the class of the pool's actors: each holds `task` (its model loads at the first batch) and maps batches."""

    class Worker:
        def __init__(self):
            self.task = task

        def __call__(self, groups: pd.DataFrame) -> pd.DataFrame:
            return run_batches(self.task, path, groups)

    return Worker


class RayExecutor:
    """Maps tasks over a source's batches with Ray Data; started (or joined, `address`) on first use."""

    kind = "ray"

    def __init__(self, settings):
        self.settings = settings
        self.batch_rows = settings.batch_rows
        self.ray = import_ray()
        self.started = False
        if not self.ray.is_initialized():
            check_address(settings.address)
            kwargs = {"address": settings.address, "include_dashboard": False, "log_to_driver": False,
                      "logging_level": logging.ERROR, "configure_logging": True}
            if settings.address is None and settings.num_cpus is not None:
                kwargs["num_cpus"] = settings.num_cpus
            self.ray.init(**kwargs)
            self.started = True
        for name in ("ray", "ray.data"):  # the stage shows its own progress; Ray's notes go to its log files
            logging.getLogger(name).setLevel(logging.ERROR)
        context = self.ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # the rows come back in the source's order
        context.enable_progress_bars = False  # the stage shows its own bar

    def workers(self, task=None) -> int:
        """Gives the actors of a pool: as configured, else one per CPU the cluster has; never more than the task takes."""
        wanted = self.settings.workers or max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        return min(wanted, getattr(task, "max_workers", None) or wanted)

    def map(self, source: Source, task: Callable, model: bool = False, bar=None) -> Iterator[pd.DataFrame]:
        """Yields `task(batch)` for each batch of `source`, in the source's order; `bar` counts source rows done.

        The batches are the local executor's own (`Source.frames`), written once as the row
        groups of one Parquet file in the run folder; Ray maps over their numbers and each task
        reads its batch from the file. So a batch is the same rows whichever executor runs it,
        and a stage whose rows depend on its batches (the score stage writes a batch metric by
        metric) writes the same table. Ray Data's own blocks would cut the rows elsewhere.
        """
        if hasattr(task, "ray_map"):  # a task with its own way through Ray (vLLM generation, ray.data.llm)
            yield from task.ray_map(self, source, bar)
            return
        path, groups = self.batches_file(source)
        try:
            if groups == 0:
                return
            data = self.ray.data.from_items([{"group": g} for g in range(groups)])
            if model:
                data = data.map_batches(worker_class(task, str(path)), batch_size=1, batch_format="pandas",
                                        num_cpus=1, num_gpus=self.settings.gpus_per_worker or None,
                                        compute=self.ray.data.ActorPoolStrategy(size=self.workers(task)))
            else:
                data = data.map_batches(functools.partial(run_batches, task, str(path)), batch_size=1,
                                        batch_format="pandas")
            for frame in data.iter_batches(batch_format="pandas", batch_size=None):
                out, covered = counted_rows(frame)
                if bar is not None:
                    bar.update(covered)
                yield out
        finally:
            path.unlink(missing_ok=True)

    def batches_file(self, source: Source):
        """Writes the source's batches as the row groups of a Parquet file in the run folder; gives its path and
        the number of batches."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = source.run.root / f".batches-{uuid.uuid4().hex[:12]}.parquet"
        writer, schema, groups = None, None, 0
        try:
            for frame in source.frames(self.batch_rows):
                if writer is None:
                    schema = source_schema(source, list(frame.columns))
                    writer = pq.ParquetWriter(path, schema)
                writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False),
                                   row_group_size=max(1, len(frame)))
                groups += 1
        except BaseException:
            if writer is not None:
                writer.close()
            path.unlink(missing_ok=True)
            raise
        if writer is not None:
            writer.close()
        return path, groups

    def close(self) -> None:
        """Shuts Ray down if this executor started it (one it joined keeps running)."""
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
            self.started = False
