"""The run folder: the record of a run. Tables as Parquet, artifacts as JSON, a manifest over both.

Every write goes to a temporary file in the same folder and is renamed into place, so a
killed run leaves each artifact either whole or as it was before.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Iterator

import pandas as pd

from genval.errors import GenvalError
from genval.files import read_json
from genval.redact import redact, redact_frame

TABLES = ("examples", "outputs", "scores", "judgments", "human_labels")
# Rows a streamed table hands over at once: a stage's memory is bounded by this, not by the eval set.
BATCH_ROWS = 8192
LIBRARIES = (
    "genval", "numpy", "pandas", "pyarrow", "pydantic", "torch", "transformers", "sentence-transformers",
    "bert-score", "sacrebleu", "rouge-score", "rouge-score-rs", "jsonschema", "scikit-learn", "scipy", "vllm",
)


def library_versions() -> dict[str, str]:
    """Gives the installed version of each library that can change a number genval prints."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def _umask() -> int:
    """Gives the process's umask (read from /proc where it can be, so no other thread sees it changed)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes the file 0600; a run folder is shared like any file the user writes (0644 under umask 022)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Run:
    """A run folder: `manifest.json`, the stage tables (Parquet) and the derived artifacts."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.manifest = self._load_manifest()

    # --- manifest ---------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def _load_manifest(self) -> dict:
        if self.root.exists() and not self.root.is_dir():
            raise GenvalError(f"{self.root}: a file where the run folder should be; move it or change 'name' or --out")
        if not self.manifest_path.exists():
            return {"stages": {}}
        try:
            manifest = read_json(self.manifest_path, "manifest")
        except GenvalError as exc:
            raise GenvalError(f"{exc} — the manifest is damaged; restore it or run into a new folder") from None
        if not isinstance(manifest, dict):
            raise GenvalError(f"{self.manifest_path}: the manifest is damaged (not a JSON object); "
                              "restore it or run into a new folder")
        return manifest

    def save_manifest(self) -> None:
        self.write_json("manifest.json", self.manifest)

    def stage(self, name: str) -> dict:
        return self.manifest.setdefault("stages", {}).setdefault(name, {})

    # --- tables -----------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """Gives the path of an artifact: a bare table name gets `.parquet`."""
        return self.root / (f"{name}.parquet" if "." not in name else name)

    def has(self, name: str) -> bool:
        return self.path(name).exists()

    def write_table(self, name: str, frame: pd.DataFrame) -> Path:
        path = self.path(name)
        frame = redact_frame(frame)
        _atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
        return path

    def read_table(self, name: str) -> pd.DataFrame:
        path = self.path(name)
        if not path.exists():
            raise GenvalError(f"{path}: no '{name}' table in this run (run the stage that writes it first)")
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise GenvalError(f"{path}: not a readable Parquet table ({str(exc).splitlines()[0][:120]}); "
                              f"re-run the stage that writes it (`genval run CONFIG --force STAGE`)") from None

    def iter_table(self, name: str, columns: list[str] | None = None,
                   batch_size: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
        """Yields a table as pandas frames of at most `batch_size` rows, in its stored order (`columns`: only those)."""
        for batch in self._parquet(name).iter_batches(batch_size=batch_size, columns=columns):
            yield batch.to_pandas()

    def table_rows(self, name: str) -> int:
        """Gives a table's row count from its Parquet footer, reading no rows."""
        return self._parquet(name).metadata.num_rows

    def table_columns(self, name: str) -> list[str]:
        """Gives a table's column names from its Parquet footer."""
        return list(self._parquet(name).schema_arrow.names)

    def _parquet(self, name: str):
        import pyarrow.parquet as pq

        path = self.path(name)
        if not path.exists():
            raise GenvalError(f"{path}: no '{name}' table in this run (run the stage that writes it first)")
        try:
            # pre_buffer (pyarrow's default) reads every row group asked for before the first batch: the whole
            # table in memory. Off, iter_batches holds one row group at a time.
            return pq.ParquetFile(path, pre_buffer=False)
        except (OSError, ValueError) as exc:
            raise GenvalError(f"{path}: not a readable Parquet table ({str(exc).splitlines()[0][:120]}); "
                              f"re-run the stage that writes it (`genval run CONFIG --force STAGE`)") from None

    @contextmanager
    def table_writer(self, name: str, schema=None):
        """Gives a writer that appends frames to table `name` batch by batch; the table appears whole on success.

        The first frame fixes the schema unless `schema` (a pyarrow.Schema) is given; later frames
        are cast to it. Rows go to a temporary file renamed into place when the block ends, so a
        killed stage leaves the old table, never half of a new one. Secrets are redacted as in
        `write_table`.
        """
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        writer = TableWriter(tmp, schema)
        try:
            yield writer
            writer.close()
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        except BaseException:
            writer.close()
            Path(tmp).unlink(missing_ok=True)
            raise

    def write_json(self, name: str, data) -> Path:
        path = self.path(name)

        text = redact(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default)) + "\n"

        def write(tmp):
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)

        _atomic_write(path, write)
        return path

    def read_json(self, name: str):
        path = self.path(name)
        if not path.exists():
            raise GenvalError(f"{path}: no '{name}' in this run")
        return read_json(path, name)

    def write_text(self, name: str, text: str) -> Path:
        path = self.path(name)
        text = redact(text)
        _atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        return path

    def artifact_hash(self, name: str) -> str | None:
        path = self.path(name)
        return file_sha256(path) if path.exists() else None


def table_schema(columns: dict[str, tuple]):
    """Gives the Arrow schema of a streamed table: name → (Arrow type, pandas dtype it reads back as).

    A table written batch by batch needs its types fixed before the first batch (a first batch
    of only nulls would otherwise fix a null column); the pandas metadata of an empty frame of
    the given dtypes makes `pd.read_parquet` and `Run.iter_table` give nullable integers
    (`Int64`), floats (`Float64`) and booleans back as they went in.
    """
    import pyarrow as pa

    template = pd.DataFrame({name: pd.Series([], dtype=dtype) for name, (_, dtype) in columns.items()})
    schema = pa.Schema.from_pandas(template, preserve_index=False)
    for i, (name, (arrow_type, _)) in enumerate(columns.items()):
        schema = schema.set(i, pa.field(name, arrow_type))
    return schema


class TableWriter:
    """Appends pandas frames to one Parquet file (pyarrow's ParquetWriter); each `write` is one or more row groups."""

    def __init__(self, path: str, schema=None):
        self.path, self.schema, self.rows = path, schema, 0
        self._writer = None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = redact_frame(frame)
        if self.schema is None:
            self.schema = pa.Schema.from_pandas(frame, preserve_index=False)
        table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema)
        self._writer.write_table(table)
        self.rows += len(frame)

    def close(self) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:  # nothing written: an empty table (of the given schema, if any)
            import pyarrow as pa

            self._writer = pq.ParquetWriter(self.path, self.schema or pa.schema([]))
        self._writer.close()


def _json_default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def summary_schema_version() -> int:
    """Gives the `schema_version` summary.json has now (genval.summary's models)."""
    from genval.summary import SCHEMA_VERSION

    return SCHEMA_VERSION


def read_summary(path: str | Path, what: str = "summary") -> dict:
    """Gives the summary.json of a run folder (or the file itself) as the JSON it holds, checked to be of this genval's
    `schema_version`; `genval.summary.read` gives it as the model, validated whole."""
    from genval.summary import read_data

    return read_data(path, what)


def open_run(path: str | Path) -> Run:
    """Opens an existing run folder, or says in one line why it is not one."""
    path = Path(path)
    if not (path / "manifest.json").exists():
        raise GenvalError(f"{path}: not a run folder (no manifest.json); give the folder `genval run` wrote")
    return Run(path)


def environment() -> dict:
    return {
        "versions": library_versions(),
        "platform": platform.platform(),
        "argv": sys.argv,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }

