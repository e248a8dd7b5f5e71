"""The aggregate stage: every per-example number as a headline with its n and interval.

Reads `examples`, `scores`, `ops.json`; writes `summary.json`.
"""

from __future__ import annotations

from genval.config import RunConfig
from genval.progress import Progress
from genval.run import Run
from genval.stats import number


def aggregate(run: Run, config: RunConfig, progress: Progress) -> dict:
    examples = run.read_table("examples")
    scores = run.read_table("scores")
    a = config.analysis
    metrics: dict = {}
    for (pair, metric), group in scores.groupby(["pair", "metric"], sort=True):
        metrics.setdefault(pair, {})[metric] = number(group["value"].astype(float), a.bootstrap, a.confidence, a.seed)
    summary = {
        "eval_set": {"path": str(config.eval_set), "sha256": run.manifest.get("eval_set", {}).get("sha256"),
                     "n": len(examples)},
        "metrics": metrics,
        "ops": run.read_json("ops.json") if run.has("ops.json") else {},
    }
    run.write_json("summary.json", summary)
    return {}
