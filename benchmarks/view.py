"""genval view at 100k examples: index build, time to the first page, filtered and sorted pages, the server's peak RSS.

Against what a user would otherwise run to look at the same examples: the run's tables read
whole into pandas (a notebook's `pd.read_parquet`, or what a static page must embed), timed
and measured in a child process of its own. The server is the real one (`genval view`, a
child process); its peak RSS is VmHWM from /proc after the pages were served.

    python benchmarks/view.py [--n 100000] [--folder /tmp/genval-view-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

METRICS = ["bleu", "chrf", "rougeL", "rouge1", "rouge2", "embedding", "fields_f1", "fields_accuracy"]
WORDS = np.array("the order refund ticket account arrived late charged twice password reset crash app shipping "
                 "invoice billing fraud legal urgent please help customer says cannot login".split())


def _texts(rng, n: int, words: int) -> list[str]:
    picks = rng.integers(0, len(WORDS), size=(n, words))
    return [" ".join(row) for row in WORDS[picks]]


def make_run(root: Path, n: int) -> None:
    """Writes a run folder of `n` examples: teacher and student outputs, 8 metrics × 3 pairs, one judge."""
    from genval.runfolder import Run

    rng = np.random.default_rng(0)
    run = Run(root)
    ids = [f"e{i:06d}" for i in range(n)]
    chunk = 8192
    with run.table_writer("examples") as w:
        for lo in range(0, n, chunk):
            k = min(chunk, n - lo)
            w.write(pd.DataFrame({"id": ids[lo:lo + k], "input": _texts(rng, k, 60), "reference": _texts(rng, k, 30),
                                  "slice_region": rng.choice(["a", "b", "c"], k),
                                  "slice_critical": rng.choice(["true", "false"], k, p=[0.2, 0.8])}))
    with run.table_writer("outputs") as w:
        for role in ("teacher", "student"):
            for lo in range(0, n, chunk):
                k = min(chunk, n - lo)
                w.write(pd.DataFrame({"id": ids[lo:lo + k], "role": role, "text": _texts(rng, k, 30),
                                      "latency_s": rng.random(k), "error": pd.Series([None] * k, dtype=object)}))
    with run.table_writer("scores") as w:
        for pair in ("student~teacher", "student~reference", "teacher~reference"):
            for metric in METRICS:
                for lo in range(0, n, chunk * 4):
                    k = min(chunk * 4, n - lo)
                    w.write(pd.DataFrame({"id": ids[lo:lo + k], "pair": pair, "metric": metric,
                                          "value": rng.random(k), "detail": pd.Series([None] * k, dtype=object)}))
    with run.table_writer("judgments") as w:
        for lo in range(0, n, chunk):
            k = min(chunk, n - lo)
            verdicts = rng.choice(["equivalent", "not_equivalent"], k)
            w.write(pd.DataFrame({"id": ids[lo:lo + k], "pair": "student~teacher", "judge": "equivalence",
                                  "verdict": verdicts, "score": (verdicts == "equivalent").astype(float),
                                  "raw": [f"Thinking briefly.\nVERDICT: {v}" for v in verdicts], "parsed": True}))
    run.manifest = {"stages": {}, "config": {"name": "bench"}}
    run.save_manifest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[float, dict]:
    start = time.perf_counter()
    body = json.loads(urllib.request.urlopen(url, timeout=120).read())
    return time.perf_counter() - start, body


def _hwm(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve_and_measure(root: Path) -> dict:
    """Starts `genval view` (index built when missing), times pages over HTTP; gives the timings and peak RSS."""
    port = _free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "genval.cli", "view", str(root), "--no-browser", "--quiet",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/run", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(proc.stderr.read())
                time.sleep(0.05)
        ready = time.perf_counter() - start
        out = {"server_ready_s": ready}
        out["first_page_s"], page = _get(f"{base}/api/examples?offset=0&limit=50")
        assert len(page["items"]) == 50
        for name, query in (("filtered_page_s", "slice=critical%3Dtrue&metric=bleu&max=0.3"),
                            ("sorted_page_s", "pair=student~teacher&sort=chrf"),
                            ("text_search_s", "q=invoice%20billing%20fraud"),
                            ("deep_page_s", "pair=student~teacher&sort=bleu&order=desc&offset=90000")):
            out[name], body = _get(f"{base}/api/examples?{query}&limit=50")
            out[name[:-2] + "_total"] = body["total"]
        out["server_peak_rss_mb"] = _hwm(proc.pid)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=20)


BASELINE = """
import json, resource, sys, time
import pandas as pd
start = time.perf_counter()
frames = {t: pd.read_parquet(f"{sys.argv[1]}/{t}.parquet") for t in ("examples", "outputs", "scores", "judgments")}
wide = frames["scores"].pivot_table(index="id", columns=["pair", "metric"], values="value")
first = frames["examples"].head(50)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss_mb": peak}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--folder", default="/tmp/genval-view-bench")
    args = parser.parse_args()
    root = Path(args.folder) / f"run{args.n}"
    if root.exists():
        shutil.rmtree(root)
    start = time.perf_counter()
    make_run(root, args.n)
    print(f"run of {args.n} examples written in {time.perf_counter() - start:.1f} s "
          f"({sum(f.stat().st_size for f in root.glob('*.parquet')) / 2**20:.0f} MiB of Parquet)")
    cold = serve_and_measure(root)  # builds the index first
    warm = serve_and_measure(root)  # the index is there
    base = json.loads(subprocess.run([sys.executable, "-c", BASELINE, str(root)], capture_output=True, text=True,
                                     check=True).stdout)
    print(json.dumps({"cold": cold, "warm": warm, "read_whole": base}, indent=2))
    peak = max(cold["server_peak_rss_mb"], warm["server_peak_rss_mb"])
    print(f"first page (index built): {warm['first_page_s'] * 1000:.0f} ms; server ready cold "
          f"{cold['server_ready_s']:.1f} s (index build), warm {warm['server_ready_s']:.1f} s; server peak RSS "
          f"{peak:.0f} MB vs reading the tables whole {base['peak_rss_mb']:.0f} MB in {base['seconds']:.1f} s")
    print(f"ratios: peak RSS whole / server {base['peak_rss_mb'] / max(cold['server_peak_rss_mb'], 1):.1f}x; "
          f"time to first page whole / warm server "
          f"{base['seconds'] / (warm['server_ready_s'] + warm['first_page_s']):.1f}x")
    print(f"index: {(root / '.view' / 'index.sqlite').stat().st_size / 2**20:.0f} MiB; "
          f"machine: {os.cpu_count()} cores, {resource.getpagesize()} B pages")


if __name__ == "__main__":
    main()
