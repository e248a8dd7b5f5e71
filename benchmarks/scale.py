"""Peak memory and wall time of a whole `genval run` as the eval set grows: 10k, 100k, 1M replay examples.

Each size is a summarization run with replayed teacher and student (synthetic 12–40 word texts:
the teacher copies the reference 30 % of the time, the student the teacher half the time),
BLEU, chrF and ROUGE, and two slice fields — the lead's scale setup (/work/wt/scale-data/make.py).
Every run is its own `genval run` in a subprocess under `/usr/bin/time -v`; the peak is the
largest resident set of any one process of the run (time's "Maximum resident set size") and,
sampled from /proc every 50 ms, the largest sum of proportional set sizes over the run's process
tree (worker processes included, shared pages counted once). Per-stage seconds are read from
the run's manifest. `--upto judge` stops after the data plane's stages (generate, score, judge).

    python benchmarks/scale.py                          # 10k and 100k, local executor
    python benchmarks/scale.py --sizes 10000 100000 1000000
    python benchmarks/scale.py --sizes 100000 --executor ray
    python benchmarks/scale.py --upto judge              # generate, score and judge only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

STAGES = ("generate", "score", "judge", "aggregate", "report")


def make_data(folder: Path, n: int) -> Path:
    """Writes the eval set, teacher and student replay files and the config for `n` examples; gives the config."""
    config = folder / f"scale{n}.yaml"
    if config.exists():
        return config
    rnd = random.Random(0)
    words = [f"w{i}" for i in range(3000)]

    def sent(k):
        return " ".join(rnd.choice(words) for _ in range(k))

    with open(folder / f"eval{n}.jsonl", "w") as e, open(folder / f"t{n}.jsonl", "w") as t, \
            open(folder / f"s{n}.jsonl", "w") as s:
        for i in range(n):
            ref = sent(rnd.randint(12, 40))
            te = ref if rnd.random() < 0.3 else sent(rnd.randint(12, 40))
            st = te if rnd.random() < 0.5 else sent(rnd.randint(12, 40))
            e.write(json.dumps({"id": f"e{i}", "input": sent(20), "reference": ref,
                                "segment": rnd.choice(["a", "b", "c", "d"]),
                                "channel": rnd.choice(["web", "mail", "phone"])}) + "\n")
            t.write(json.dumps({"id": f"e{i}", "text": te, "latency_s": 0.5}) + "\n")
            s.write(json.dumps({"id": f"e{i}", "text": st, "latency_s": 0.1}) + "\n")
    config.write_text(f"""name: scale{n}
task: summarization
eval_set: eval{n}.jsonl
prompt: "Summarise: {{input}}"
slices: [segment, channel]
metrics: [bleu, chrf, rouge]
models:
  teacher: {{backend: replay, path: t{n}.jsonl}}
  student: {{backend: replay, path: s{n}.jsonl}}
""")
    return config


def _tree_pss(pid: int) -> int:
    """Gives the summed proportional set size (bytes) of a process and all its descendants, from /proc.

    PSS charges a page shared by k processes 1/k to each, so forked workers, which share their
    parent's pages until they write them, are not counted twice as a sum of RSS would.
    """
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def run_once(config: Path, out: Path, executor: str, upto: str = "run") -> dict:
    """Runs `genval run` (or the stage command `upto`) once in a subprocess; gives wall seconds, peak memory
    figures and per-stage seconds."""
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "genval.cli", upto, str(config), "--out", str(out), "--quiet",
           "--executor", executor]
    peak = [0]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_pss(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode not in (0, 3):  # 3: the run finished with a decision that is INCOMPLETE
        raise SystemExit(f"genval run failed ({proc.returncode}):\n{err[-2000:]}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    # CPU seconds of the run and the child processes it waited for (workers; not Ray's, which its raylet owns):
    # on a machine other processes load, what the run itself used.
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", err))
    manifest = json.loads((out / config.stem / "manifest.json").read_text())
    return {"wall_s": wall, "cpu_s": cpu, "max_rss": int(found.group(1)) * 1024 if found else None,
            "tree_peak": peak[0],
            "stages": {s: manifest["stages"].get(s, {}).get("seconds") for s in STAGES}}


def mib(n) -> str:
    return "–" if n is None else f"{n / 2**20:,.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--executor", choices=["local", "ray"], default="local")
    ap.add_argument("--upto", choices=["run", "generate", "score", "judge", "aggregate"], default="run",
                    help="the command: a whole run, or the stages up to this one")
    ap.add_argument("--data", type=Path, default=None, help="folder for the synthetic data (default: a temp folder)")
    args = ap.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="genval-scale-"))
    data.mkdir(parents=True, exist_ok=True)
    print(f"{platform.machine()} CPU, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"executor {args.executor}, `genval {args.upto}`, data in {data}")
    rows = []
    for n in args.sizes:
        config = make_data(data, n)
        with tempfile.TemporaryDirectory(prefix="genval-scale-run-") as tmp:
            result = run_once(config, Path(tmp), args.executor, args.upto)
        rows.append((n, result))
        stages = ", ".join(f"{s} {v:.1f} s" for s, v in result["stages"].items() if v is not None)
        print(f"{n:>9,}: {result['wall_s']:.1f} s ({result['cpu_s']:.1f} CPU s), "
              f"largest process {mib(result['max_rss'])}, "
              f"process tree (PSS) {mib(result['tree_peak'])} ({stages})", flush=True)
    load = os.getloadavg()[0]
    print(f"\nload average at the end: {load:.1f} on {os.cpu_count()} cores")
    print("\n| examples | wall | CPU | peak RSS (largest process) | peak PSS (process tree) | " +
          " | ".join(STAGES) + " |")
    print("| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in STAGES) + " |")
    for n, r in rows:
        print(f"| {n:,} | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s | {mib(r['max_rss'])} | {mib(r['tree_peak'])} | " +
              " | ".join("–" if r["stages"][s] is None else f"{r['stages'][s]:.1f} s" for s in STAGES) + " |")


if __name__ == "__main__":
    main()
