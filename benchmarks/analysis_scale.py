"""The analysis plane at scale: calibrate, aggregate and report over 10k, 100k and 1M examples.

Measures wall time per stage and the peak RSS of the process that runs them, each size in
its own process (so ru_maxrss is that size's alone). The run folders are synthetic, written as
the streaming stages write them — Parquet row groups of 8192 rows, `outputs` one block per
role in the examples' order, `scores` in example batches (5 metrics × 3 pairs: BLEU, chrF,
ROUGE-1/2/L) — with seeded values (a share of exact ties, as real BLEU and ROUGE have) and two
slice fields (segment: 4 values, channel: 3), so aggregation does the work of the replay
benchmark (issue 11) without generating or scoring. `--run FOLDER --config CONFIG` measures an
existing run folder instead (e.g. one the whole pipeline made). `--candidates K` adds K further
students (`student_v2`, …), each with its `~teacher` and `~reference` pairs and outputs: the
aggregate stage then computes every candidate's slices, gate and decision as the student's.

    python benchmarks/analysis_scale.py                      # 10k, 100k and 1M
    python benchmarks/analysis_scale.py --sizes 100000 --bootstrap 1000
    python benchmarks/analysis_scale.py --sizes 100000 --candidates 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS = 8192  # a row group: what Run.table_writer writes per batch
PAIRS = ("student~teacher", "teacher~reference", "student~reference")
METRICS = ("bleu", "chrf", "rouge1", "rouge2", "rougeL")
STAGES = ["calibrate", "aggregate", "report"]


def _candidates(k: int) -> list[str]:
    """Gives the further students' roles: student_v2, student_v3, …"""
    return [f"student_v{i + 2}" for i in range(k)]


def _pairs(k: int) -> tuple[str, ...]:
    return PAIRS + tuple(f"{role}~{other}" for role in _candidates(k) for other in ("teacher", "reference"))


def _config(n: int, bootstrap: int, k: int = 0) -> dict:
    return {"name": f"scale{n}", "task": "summarization", "eval_set": "eval.jsonl", "prompt": "Summarise: {input}",
            "slices": ["segment", "channel"], "metrics": ["bleu", "chrf", "rouge"],
            "analysis": {"bootstrap": bootstrap},
            "models": {"teacher": {"backend": "replay", "path": "t.jsonl"},
                       "student": {"backend": "replay", "path": "s.jsonl"},
                       **{role: {"backend": "replay", "path": f"{role}.jsonl"} for role in _candidates(k)}}}


def _words(rng, count: int, length: int) -> list[str]:
    vocab = np.array([f"w{i}" for i in range(3000)])
    return [" ".join(row) for row in vocab[rng.integers(0, len(vocab), (count, length))]]


def _scores(rng, ids: list[str], pairs: tuple[str, ...] = PAIRS):
    """Gives one batch's score rows: every pair and metric of each example, ties as real metrics have them."""
    import pyarrow as pa

    n = len(ids)
    share = {"teacher": 0.5, "reference": 0.15}  # how often an output equals the other side (teacher~reference: 0.3)
    shares = [[0.3 if pair == "teacher~reference" else share[pair.split("~")[1]]] for pair in pairs]
    same = rng.random((len(pairs), n)) < np.array(shares)
    cols = {"id": [], "pair": [], "metric": [], "value": [], "detail": []}
    for p, pair in enumerate(pairs):
        for metric in METRICS:
            top = 100.0 if metric in ("bleu", "chrf") else 1.0
            value = np.where(same[p], top, np.round(rng.beta(2, 5, n) * top, 4))
            cols["id"] += ids
            cols["pair"] += [pair] * n
            cols["metric"] += [metric] * n
            cols["value"].append(value)
            cols["detail"] += [None] * n
    cols["value"] = np.concatenate(cols["value"])
    return pa.table({k: pa.array(v, type=pa.string() if k != "value" else pa.float64()) for k, v in cols.items()})


def make_run(root: Path, n: int, bootstrap: int, seed: int = 0, k: int = 0) -> Path:
    """Writes a synthetic run folder of n examples (tables, metrics.json, ops.json, manifest) under root."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / (f"scale{n}" + (f"+{k}" if k else ""))
    roles = ("teacher", "student", *_candidates(k))
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    writers = {}

    def write(name: str, table) -> None:
        if name not in writers:
            writers[name] = pq.ParquetWriter(folder / f"{name}.parquet", table.schema)
        writers[name].write_table(table)

    outputs = []
    for lo in range(0, n, ROWS):
        count = min(ROWS, n - lo)
        ids = [f"e{i}" for i in range(lo, lo + count)]
        inputs, refs = _words(rng, count, 20), _words(rng, count, 16)
        segment = np.array(list("abcd"))[rng.integers(0, 4, count)]
        channel = np.array(["web", "mail", "phone"])[rng.integers(0, 3, count)]
        write("examples", pa.table({
            "id": ids, "prompt": [f"Summarise: {t}" for t in inputs], "system": pa.nulls(count, pa.string()),
            "input": inputs, "reference": refs, "label": pa.nulls(count, pa.string()),
            "slice_segment": segment.tolist(), "slice_channel": channel.tolist(),
            "record": [json.dumps({"id": i, "segment": s}) for i, s in zip(ids, segment)]}))
        write("scores", _scores(rng, ids, _pairs(k)))
        outputs.append((ids, *(_words(rng, count, 16) for _ in roles)))
    for r, role in enumerate(roles):  # one block per role, in the examples' order
        for ids, *texts in outputs:
            count = len(ids)
            write("outputs", pa.table({
                "id": ids, "role": [role] * count, "text": texts[r], "prompt_tokens": np.full(count, 30),
                "completion_tokens": np.full(count, 16), "latency_s": rng.gamma(4, 0.1 if r else 0.3, count),
                "label_probs": pa.nulls(count, pa.string()), "error": pa.nulls(count, pa.string()),
                "cached": np.zeros(count, bool)}))
    for writer in writers.values():
        writer.close()
    (folder / "metrics.json").write_text(json.dumps({"settings": {m: f"{m}|synthetic" for m in METRICS}}))
    (folder / "ops.json").write_text(json.dumps({"roles": {}, "savings": {}}))
    (folder / "manifest.json").write_text(json.dumps({"stages": {}, "eval_set": {"path": "eval.jsonl", "n": n},
                                                      "config": _config(n, bootstrap, k)}))
    return folder


def peak_rss_mib() -> int:
    """Gives this process's peak resident set (VmHWM: of its own address space, not the parent's it was forked from)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child(folder: Path, config_path: str | None) -> dict:
    """Runs calibrate, aggregate and report on a run folder; gives seconds per stage and peak RSS (MiB)."""
    from genval.config import load_config, parse_config
    from genval.pipeline import run_stages
    from genval.progress import Progress
    from genval.runfolder import Run

    run = Run(folder)
    config = load_config(config_path) if config_path else parse_config(run.manifest["config"], run.root)
    start_rss = peak_rss_mib()
    for name in STAGES:
        run.manifest.get("stages", {}).pop(name, None)
    start = time.perf_counter()
    run_stages(run, config, Progress(quiet=True), only=STAGES)
    wall = time.perf_counter() - start
    stages = run.manifest["stages"]
    return {"examples": run.table_rows("examples"), "seconds": {s: stages[s]["seconds"] for s in STAGES},
            "wall_s": round(wall, 2), "rss_after_imports_mib": start_rss, "peak_rss_mib": peak_rss_mib(),
            "report_html_bytes": run.path("report.html").stat().st_size,
            "summary_json_bytes": run.path("summary.json").stat().st_size,
            "interval_method": json.loads(run.path("summary.json").read_text())["settings"]["interval_method"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--candidates", type=int, default=0, help="further students besides `student` (default 0)")
    parser.add_argument("--folder", help="where to write the run folders (default: a temporary folder)")
    parser.add_argument("--run", help="measure this existing run folder instead")
    parser.add_argument("--config", help="the run config of --run (default: the one its manifest recorded)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child), args.config)))
        return
    targets = [Path(args.run)] if args.run else None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.folder or tmp)
        if targets is None:
            targets = []
            for n in args.sizes:
                start = time.perf_counter()
                targets.append(make_run(root, n, args.bootstrap, k=args.candidates))
                print(f"made {n:,} examples in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        for folder in targets:
            command = [sys.executable, __file__, "--child", str(folder)] + (["--config", args.config] if args.config
                                                                              else [])
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            print(json.dumps(result))


if __name__ == "__main__":
    main()
