"""The Ray executor: the same map functions on Ray Data, on this machine or a cluster (`pip install genval[ray]`).

A map reads its source with `ray.data.read_parquet` — the run folder's table itself, or, for the
examples joined with their outputs, a Parquet file the one join (genval.pairs.joined) writes
once — and runs the task with `map_batches`: as Ray tasks when it holds nothing, as an actor
pool (`ActorPoolStrategy`) when it holds a model (BERTScore, embeddings, an engine), each
actor building it once. `DataContext.execution_options.preserve_order` keeps the rows in the
source's order, so the stage writes its table from `iter_batches` exactly as the local executor
would. vLLM generation goes through `ray.data.llm` instead (genval.models.ray_llm).

Reads are declared to need no CPU: the actors of a pool hold the CPUs they ask for from the
start, and a read that waited for one would wait for ever on a small machine. A cluster must
see the run folder and the request cache at the same paths (a shared filesystem); on one
machine they are simply there.
"""

from __future__ import annotations

import functools
import logging
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


def joined_schema(source: Source, columns: list[str]):
    """Gives the Arrow schema of the joined rows: each column typed as in the table it comes from."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = {"examples": pq.read_schema(source.run.path("examples")),
              "outputs": pq.read_schema(source.run.path("outputs"))}
    fields = []
    for name in columns:
        role, dot, column = name.partition(".")
        table, column = (tables["outputs"], column) if dot and role in (source.roles or ()) else (tables["examples"], name)
        kind = table.field(column).type
        fields.append(pa.field(name, pa.string() if pa.types.is_null(kind) else kind))
    return pa.schema(fields)


def worker_class(task):
    """Gives the class of the pool's actors: each holds `task` (its model loads at the first batch) and maps batches.

    The task travels inside the class, pickled with it, rather than as a constructor argument
    kept in the object store (which Ray warns an actor restart could lose).
    """

    class Worker:
        def __init__(self):
            self.task = task

        def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
            return count(self.task, batch)

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
        if hasattr(context, "use_datasource_v2"):
            # Ray 2.60's Parquet datasource v2 lists files in a task that needs a CPU, which an actor
            # pool holding every CPU never frees; v1 reads with the resources given below.
            context.use_datasource_v2 = False

    def workers(self, task=None) -> int:
        """Gives the actors of a pool: as configured, else one per CPU the cluster has; never more than the task takes."""
        wanted = self.settings.workers or max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        return min(wanted, getattr(task, "max_workers", None) or wanted)

    def map(self, source: Source, task: Callable, model: bool = False, bar=None) -> Iterator[pd.DataFrame]:
        """Yields `task(batch)` for each batch of `source`, in the source's order; `bar` counts source rows done."""
        if hasattr(task, "ray_map"):  # a task with its own way through Ray (vLLM generation, ray.data.llm)
            yield from task.ray_map(self, source, bar)
            return
        path, temporary = self.parquet(source)
        try:
            data = self.read(path, source)
            if model:
                data = data.map_batches(worker_class(task), batch_size=self.batch_rows,
                                        batch_format="pandas", num_cpus=1, num_gpus=self.settings.gpus_per_worker or None,
                                        compute=self.ray.data.ActorPoolStrategy(size=self.workers(task)))
            else:
                data = data.map_batches(functools.partial(count, task), batch_size=self.batch_rows,
                                        batch_format="pandas")
            for frame in data.iter_batches(batch_format="pandas", batch_size=None):
                out, covered = counted_rows(frame)
                if bar is not None:
                    bar.update(covered)
                yield out
        finally:
            if temporary:
                path.unlink(missing_ok=True)

    def read(self, path, source: Source):
        """Gives the Ray dataset of a Parquet file (reads need no CPU: see the module's note)."""
        columns = None if source.roles is not None or source.columns is None else list(source.columns)
        return self.ray.data.read_parquet(str(path), columns=columns, num_cpus=0)

    def parquet(self, source: Source):
        """Gives a Parquet file that holds the source's rows, and whether it is a temporary one to delete."""
        if source.roles is None:
            return source.run.path(source.table), False
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = source.run.root / f".joined-{uuid.uuid4().hex[:12]}.parquet"
        schema = None
        writer = None
        try:
            for frame in source.frames(self.batch_rows):
                if writer is None:
                    schema = joined_schema(source, list(frame.columns))
                    writer = pq.ParquetWriter(path, schema)
                writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
        except BaseException:
            if writer is not None:
                writer.close()
            path.unlink(missing_ok=True)
            raise
        if writer is not None:
            writer.close()
        return path, True

    def close(self) -> None:
        """Shuts Ray down if this executor started it (one it joined keeps running)."""
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
            self.started = False
