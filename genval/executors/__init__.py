"""Executors: what drives a stage's map over batches — this process (streaming, or spread over local
processes) or Ray Data across many machines. Every executor runs the same map functions.

A stage hands an executor a `Source` (a table of the run folder, or the examples joined with some
roles' outputs through genval.pairs) and a *task*: a picklable callable from a pandas frame of at
most `batch_rows` rows to a frame of result rows. A task that holds a model (`model=True`) is
built once per worker and kept: in this process or a local worker process, or as a Ray actor.
The results come back to the stage in the order of the source's rows, batch by batch, so the stage
writes its table with `Run.table_writer` as they arrive and memory stays bounded by the batch.
Ray is imported only when the Ray executor is asked for.
"""

from __future__ import annotations

from genval.executors.local import LocalExecutor, Source, counted_rows

__all__ = ["LocalExecutor", "Source", "check_executor", "counted_rows", "make_executor"]


def check_executor(config, kind: str | None = None) -> None:
    """Raises a one-line GenvalError when the executor the run would use cannot start: Ray missing, or its
    cluster address answering nothing. Starts nothing, so it runs before the run folder is written."""
    if (kind or config.executor.kind) == "ray":
        from genval.executors.ray_data import check_address, import_ray

        import_ray()
        check_address(config.executor.address)


def make_executor(config, kind: str | None = None):
    """Gives the executor a run config names (`executor:`), or `kind` ('local' | 'ray') when the command line says."""
    settings = config.executor
    kind = kind or settings.kind
    if kind == "ray":
        from genval.executors.ray_data import RayExecutor

        return RayExecutor(settings)
    return LocalExecutor(workers=settings.workers, batch_rows=settings.batch_rows)
