"""The judge stage: asks each configured judge about each pair, then checks the judge against humans.

Reads `examples` and `outputs`; writes `judgments` (and `calibration.json` when the config
has human labels). A config without a judge writes an empty `judgments` table.
"""

from __future__ import annotations

import pandas as pd

from genval.cache import RequestCache
from genval.config import RunConfig
from genval.errors import GenvalError
from genval.progress import Progress
from genval.run import Run

JUDGMENT_COLUMNS = ["id", "pair", "judge", "verdict", "score", "raw", "parsed", "swap_consistent"]


def judge(run: Run, config: RunConfig, progress: Progress, cache: RequestCache) -> dict:
    """Writes the judgments table; gives the stage's record."""
    if config.judge:
        raise GenvalError("judge: judging is not available in this build of genval; remove the 'judge' key")
    run.write_table("judgments", pd.DataFrame(columns=JUDGMENT_COLUMNS))
    return {"judges": 0}
