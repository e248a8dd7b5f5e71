"""Times `genval monitor` over 1M logged requests in 30 daily windows (500 sampled per window, replay teacher).

Against what a user would otherwise run: pandas reads every log file whole (`read_json(lines=True)`),
concatenates them and groups by day and slice for the agreement of a sample joined with the
teacher's answers — no intervals, drift, alerts or re-run memory. Each side runs in a child
process so its peak RSS is its own. A second monitor invocation on the same files is timed too
(it reads no file and makes no call).

    python benchmarks/monitor.py                 # 1,000,000 requests, 30 windows
    python benchmarks/monitor.py --rows 100000   # quicker
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

LABELS = ["billing", "shipping", "account"]
PANDAS_BASELINE = """
import sys, glob, pandas as pd
frames = [pd.read_json(p, lines=True) for p in sorted(glob.glob(sys.argv[1] + '/logs/*.jsonl'))]
log = pd.concat(frames, ignore_index=True)
teacher = pd.read_json(sys.argv[1] + '/teacher.jsonl', lines=True)
log['day'] = pd.to_datetime(log['timestamp']).dt.floor('D')
sample = log.groupby('day', group_keys=False).apply(lambda g: g.sample(min(len(g), 500), random_state=0))
joined = sample.merge(teacher, on='id')
joined['agree'] = joined['output'] == joined['text']
print(joined.groupby(['day', 'segment'])['agree'].mean().shape)
"""


def write_traffic(root: Path, rows: int, windows: int) -> None:
    """Writes one JSONL log per day and the teacher's answers for the requests the monitor will sample."""
    from genval.monitor.collect import priority
    from genval.monitor.traffic import row_digest

    rng = np.random.default_rng(0)
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    (root / "logs").mkdir(parents=True)
    per_day = rows // windows
    teacher = []
    for day in range(windows):
        segments = rng.choice(["enterprise", "smb", "consumer"], per_day)
        channels = rng.choice(["web", "email", "phone"], per_day)
        truth = rng.integers(0, 3, per_day)
        agree = rng.random(per_day) < 0.95
        seconds = np.sort(rng.integers(0, 86400, per_day))
        ranked = []
        with open(root / "logs" / f"day{day:02d}.jsonl", "w", encoding="utf-8") as fh:
            for i in range(per_day):
                stamp = (start + timedelta(days=day, seconds=int(seconds[i]))).strftime("%Y-%m-%dT%H:%M:%SZ")
                record = {"id": f"d{day}-{i}", "timestamp": stamp, "input": f"order {i} did not arrive " * (1 + i % 5),
                          "output": LABELS[truth[i] if agree[i] else (truth[i] + 1) % 3],
                          "segment": segments[i], "channel": channels[i]}
                fh.write(json.dumps(record) + "\n")
                ranked.append((priority(row_digest(record), 0), record["id"], LABELS[truth[i]]))
        teacher += [{"id": ident, "text": label} for _, ident, label in sorted(ranked)[:500]]
    with open(root / "teacher.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(t) + "\n" for t in teacher)
    config = {"name": "bench", "task": "classification", "traffic": "logs/*.jsonl", "prompt": "Classify: {input}",
              "labels": LABELS, "reference": {"backend": "replay", "path": "teacher.jsonl"},
              "sample": {"per_window": 500, "seed": 0}, "window": "1d", "slices": ["segment", "channel"],
              "alerts": ["agreement_rate lower >= 0.85 on segment=*"]}
    (root / "monitor.yaml").write_text(json.dumps(config), encoding="utf-8")


def child(args: list[str]) -> tuple[float, float]:
    """Gives (wall seconds, peak RSS MiB) of a child process."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]);"
         " print('RSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr);"
         " sys.exit(r.returncode)", *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stderr[-2000:])
    rss = int(proc.stderr.rsplit("RSS", 1)[1].split()[0]) / 1024
    return wall, rss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--windows", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_traffic(root, args.rows, args.windows)
        size = sum(p.stat().st_size for p in (root / "logs").iterdir()) / 2 ** 20
        genval = [sys.executable, "-m", "genval.cli", "monitor", str(root / "monitor.yaml"), "--out",
                  str(root / "runs"), "--quiet"]
        first = child(genval)
        second = child(genval)
        pandas = child([sys.executable, "-c", PANDAS_BASELINE, str(root)])
        windows = json.loads((root / "runs" / "bench" / "monitor.json").read_text())["windows"]
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}, python {platform.python_version()}")
    print(f"{args.rows:,} requests ({size:.0f} MiB of JSONL) in {windows} windows, 500 sampled per window")
    print(f"genval monitor, first run : {first[0]:.1f} s, peak RSS {first[1]:.0f} MiB")
    print(f"genval monitor, re-run    : {second[0]:.1f} s, peak RSS {second[1]:.0f} MiB")
    print(f"pandas read + groupby     : {pandas[0]:.1f} s, peak RSS {pandas[1]:.0f} MiB")
    print(f"ratios genval/pandas      : time {first[0] / pandas[0]:.2f}x, peak RSS {first[1] / pandas[1]:.2f}x")


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
