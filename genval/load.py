"""`genval.load(RUN)`: a finished run folder as pandas tables and its summary, for a notebook."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # `import genval` stays light: pandas and the run folder are imported when a run is loaded
    import pandas as pd

TABLES = ("examples", "outputs", "scores", "judgments", "labels")


class Loaded(Mapping):
    """Table name → pandas DataFrame (read when first asked for), plus `summary` (summary.json as a dict) and `model`
    (the same, typed: genval.summary.Summary).

    A table the run does not have (no judge, no human labels) is left out of the mapping rather
    than given empty, so `"judgments" in run` says whether the run was judged.
    """

    def __init__(self, path: Path):
        from genval.runfolder import open_run
        from genval.summary import read

        self.run = open_run(path)
        self.path = self.run.root
        self.model = read(self.run.root)   # validated whole: a summary this genval cannot read is one line
        self.summary: dict = self.model.dump()
        self._names = [name for name in TABLES if self.run.has(name)]
        self._read: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._names:
            raise KeyError(f"{name!r}: this run has the tables {', '.join(self._names)}")
        if name not in self._read:
            self._read[name] = self.run.read_table(name)
        return self._read[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"genval.load({str(self.path)!r}): tables {', '.join(self._names)}; .summary"


def load(run: str | Path) -> Loaded:
    """Gives a finished run as {table name: DataFrame} (examples, outputs, scores, judgments, labels), `.summary`."""
    return Loaded(Path(run))
