"""Reproduces G-Eval's Table 1 ROUGE rows (Liu et al. 2023) from a user's copy of SummEval's expert ratings.

The data are not shipped (no PyPI package carries them; `summ-eval` 0.892 was checked): give the
path of SummEval's `model_annotations.aligned.paired.jsonl` (or `.aligned.jsonl`). The script runs
what a user would: `genval import summeval FILE`, the run with the generated config's ROUGE
(rouge-score F-measure averaged over the 11 references, ROUGE-L at summary level: rougeLsum, its
sentences split by genval's rule-based splitter, as rouge-score's split_summaries splits them with
nltk's Punkt), and `genval metaeval --published benchmarks/geval_table1.json`,
which prints the summary-level ρ and τ per aspect beside the published figures and flags each
more than 0.01 away. Exit status 0 when all 24 land within 0.01, 1 otherwise.

    python benchmarks/summeval_reproduce.py PATH/model_annotations.aligned.paired.jsonl [--out DIR] [--all-metrics]

`--all-metrics` keeps BLEU and BERTScore (reduce: mean) in the run too (slower; not in Table 1's ROUGE rows).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

from genval.cli import main as genval

PUBLISHED = Path(__file__).with_name("geval_table1.json")


def reproduce(path: Path, out: Path, all_metrics: bool) -> int:
    """Runs import, score and metaeval on the user's file; gives the number of published figures missed."""
    if genval(["import", "summeval", str(path), "--out", str(out / "summeval")]) != 0:
        return -1
    config_path = out / "summeval" / "summeval.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    if not all_metrics:
        config["metrics"] = [m for m in config["metrics"] if isinstance(m, dict) and m["name"] == "rouge"]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    genval(["run", str(config_path), "--out", str(out / "runs"), "--quiet"])  # its exit status is the release decision
    run = out / "runs" / config["name"]
    if genval(["metaeval", str(run), "--published", str(PUBLISHED)]) != 0:
        return -1
    found = json.loads((run / "metaeval.json").read_text(encoding="utf-8"))["published"]
    return found["flagged"] + len(found["missing"])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file", type=Path, help="SummEval's model_annotations.aligned[.paired].jsonl")
    p.add_argument("--out", type=Path, help="working folder (default: a temporary one)")
    p.add_argument("--all-metrics", action="store_true", help="keep BLEU and BERTScore in the run")
    return p.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="genval-summeval-") as tmp:
        missed = reproduce(args.file, args.out or Path(tmp), args.all_metrics)
    print("all 24 figures within 0.01 of G-Eval's Table 1" if missed == 0 else f"{missed} figures missed")
    sys.exit(0 if missed == 0 else 1)
