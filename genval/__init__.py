"""genval: is this distilled student good enough to replace its teacher, and where does it fall short?"""

import os

# pyarrow (which holds pandas' strings) allocates from jemalloc, which gives back what a batch
# freed; with its default (mimalloc) a stage's memory creeps up batch after batch. Read when
# pyarrow loads, so set before it does; a user's own setting wins (genval.executors.local).
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

from importlib.metadata import PackageNotFoundError  # noqa: E402
from importlib.metadata import version as _version

try:
    __version__ = _version("genval")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"

from genval.errors import GenvalError  # noqa: E402
from genval.load import load  # noqa: E402


def run(config_path, out_dir="runs", force=(), quiet=False):
    """Runs every stage of the config at `config_path` and gives back the run folder's path.

    The library twin of `genval run`: same stages, same skipping, same run folder. The
    decision is in the folder's summary.json (`genval.pipeline.outcome(path)` reads it).
    """
    from genval.pipeline import run_pipeline

    return run_pipeline(config_path, out_dir=out_dir, force=force, quiet=quiet)


__all__ = ["GenvalError", "__version__", "load", "run"]
