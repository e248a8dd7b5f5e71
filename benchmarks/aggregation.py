"""Times genval's aggregate stage against per-number scipy.stats.bootstrap, on one synthetic run.

Baseline: what a user would otherwise write — for every slice and every (pair, metric), a
pandas filter and `scipy.stats.bootstrap(..., method="percentile")` for the 95 % interval of
the mean (1000 resamples), or for a 0/1 number (a share) scipy's Wilson interval
(`binomtest(...).proportion_ci(method="wilson")`), the intervals genval gives them (issue 20). genval: `build_summary` over the same tables, which also computes
retention, error shares, difficulty and rare-class slices, status and diagnoses. Reports the
ratio of wall times and the largest difference between the two sets of interval ends.

    python benchmarks/aggregation.py              # 10,000 examples, 2 slice fields, 12 per-example numbers
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest, bootstrap

from genval.analysis.stage import build_summary
from genval.config import parse_config
from genval.runfolder import Run

METRICS = {"teacher~reference": ["label_correct", "rougeL", "bleu"], "student~reference": ["label_correct", "rougeL", "bleu"],
           "student~teacher": ["label_agree", "kl", "rougeL", "bleu"], "student": ["json_valid"], "teacher": ["json_valid"]}


def make_run(root: Path, n: int) -> tuple[Run, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    ids = [f"e{i}" for i in range(n)]
    examples = pd.DataFrame({"id": ids, "input": "t", "reference": "r", "label": rng.choice(list("abcd"), n, p=[.5, .3, .17, .03]),
                             "slice_region": rng.choice(list("abcdefgh"), n), "slice_tier": rng.choice(["x", "y"], n)})
    frames = []
    for pair, metrics in METRICS.items():
        for metric in metrics:
            v = rng.random(n) if metric in ("rougeL", "bleu", "kl") else (rng.random(n) < 0.9).astype(float)
            frames.append(pd.DataFrame({"id": ids, "pair": pair, "metric": metric, "value": v, "detail": None}))
    scores = pd.concat(frames, ignore_index=True)
    run = Run(root)
    root.mkdir(parents=True)
    run.manifest["eval_set"] = {"path": "synthetic", "sha256": "s", "n": n}
    run.save_manifest()
    run.write_table("examples", examples)
    run.write_table("scores", scores)
    return run, examples, scores


def baseline(examples: pd.DataFrame, scores: pd.DataFrame) -> dict:
    """Gives (slice, pair, metric) → (lo, hi) the way a user would compute it with scipy."""
    out = {}
    groups = {"all": examples["id"]}
    for field in ("region", "tier"):
        for value, part in examples.groupby(f"slice_{field}"):
            groups[f"{field}={value}"] = part["id"]
    for name, ids in groups.items():
        part = scores[scores["id"].isin(set(ids))]
        for (pair, metric), g in part.groupby(["pair", "metric"]):
            values = g["value"].to_numpy()
            if np.isin(values, (0.0, 1.0)).all():
                ci = binomtest(int(values.sum()), values.size).proportion_ci(0.95, method="wilson")
                out[(name, pair, metric)] = (ci.low, ci.high)
                continue
            res = bootstrap((values,), np.mean, n_resamples=1000, method="percentile", random_state=0, vectorized=True)
            out[(name, pair, metric)] = (res.confidence_interval.low, res.confidence_interval.high)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run, examples, scores = make_run(Path(tmp) / "run", args.examples)
        # summarization: the synthetic run has per-example label rows but no outputs table to read predicted labels
        # from, which a classification config needs (it stopped with KeyError 'teacher.error')
        config = parse_config({"name": "bench", "task": "summarization", "eval_set": "x.jsonl", "prompt": "{input}",
                               "slices": ["region", "tier"],
                               "models": {"teacher": {"backend": "replay", "path": "t"},
                                          "student": {"backend": "replay", "path": "s"}}}, Path(tmp))
        start = time.perf_counter()
        summary = build_summary(run, config)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        theirs = baseline(examples, scores)
        base_s = time.perf_counter() - start
    worst = 0.0
    for (name, pair, metric), (lo, hi) in theirs.items():
        block = summary if name == "all" else summary["slices"][name.split("=")[0]][name.split("=")[1]]
        ci = block["metrics"][pair][metric]["ci"]
        worst = max(worst, abs(ci[0] - lo), abs(ci[1] - hi))
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"{args.examples} examples, {len(theirs)} numbers with intervals in the baseline")
    print(f"pandas + scipy.stats.bootstrap: {base_s:.2f} s; genval build_summary: {ours_s:.2f} s; "
          f"ratio ×{base_s / ours_s:.2f}; largest interval-end difference {worst:.4f} (different resample streams)")


if __name__ == "__main__":
    main()
