"""A load test of an OpenAI-compatible endpoint: latency and throughput as concurrency rises.

At each concurrency level the same number of requests go out, at most that many at once,
with no retries and no cache (a retry would hide the server's own latency). One warm-up
request goes out before the first level and is not counted. The figure that sets serving
cost is the highest throughput whose P95 latency stays within the budget; P50 and P95 carry
order-statistic intervals (genval.models.ops.quantile_ci).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from genval.config import OpenAIModel
from genval.errors import GenvalError
from genval.files import parse_json, read_text
from genval.models.base import Params, Request
from genval.models.openai import OpenAIBackend
from genval.models.ops import quantile_ci


def parse_levels(text: str) -> list[int]:
    """Gives the concurrency levels of '1,2,4,8' as a sorted list of distinct positive ints."""
    try:
        levels = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise GenvalError(f"--concurrency '{text}': give whole numbers separated by commas, e.g. 1,2,4,8") from None
    if not levels or levels[0] < 1:
        raise GenvalError(f"--concurrency '{text}': every level should be 1 or more")
    return levels


def read_prompts(path: str | Path) -> list[str]:
    """Gives the prompts of a file: one per line, or JSONL records with a 'prompt' field."""
    path = Path(path)
    lines = [line for line in read_text(path, "prompts").splitlines() if line.strip()]
    prompts = []
    for n, line in enumerate(lines, start=1):
        if line.lstrip().startswith("{"):
            record = parse_json(line, path, n)
            if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
                raise GenvalError(f"{path}:{n}: a JSON line needs a string 'prompt'")
            prompts.append(record["prompt"])
        else:
            prompts.append(line)
    if not prompts:
        raise GenvalError(f"{path}: no prompts in the file")
    return prompts


def run_level(model: OpenAIModel, prompts: list[str], n: int, max_tokens: int) -> dict:
    """Gives one level's figures: n requests at `model.concurrency` at once."""
    requests = [Request(id=str(i), prompt=prompts[i % len(prompts)], params=Params(max_tokens=max_tokens))
                for i in range(n)]
    started = time.perf_counter()
    completions = list(OpenAIBackend(model).generate(requests))
    wall = time.perf_counter() - started
    ok = [c for c in completions if not c.error]
    latencies = np.asarray([c.latency_s for c in ok], dtype=float)
    p50, p95 = (np.percentile(latencies, [50, 95]) if len(latencies) else (None, None))
    tokens = sum(c.completion_tokens or 0 for c in ok)
    return {
        "concurrency": model.concurrency, "requests": n, "errors": n - len(ok), "wall_s": wall,
        "latency_p50_s": None if p50 is None else float(p50), "latency_p95_s": None if p95 is None else float(p95),
        "latency_p50_ci_s": quantile_ci(latencies, 0.50), "latency_p95_ci_s": quantile_ci(latencies, 0.95),
        "requests_per_s": len(ok) / wall if wall > 0 else None,
        "output_tokens_per_s": tokens / wall if wall > 0 and tokens else None,
        "first_error": next((c.error for c in completions if c.error), None),
    }


def best_level(levels: list[dict], budget_s: float | None) -> dict | None:
    """Gives the level with the highest throughput whose P95 is within the budget and that had no errors."""
    fits = [lv for lv in levels if not lv["errors"] and lv["requests_per_s"]
            and (budget_s is None or lv["latency_p95_s"] <= budget_s)]
    return max(fits, key=lambda lv: lv["requests_per_s"]) if fits else None


def loadtest(base_url: str, model: str, prompts: list[str], levels: list[int], requests: int, max_tokens: int,
             budget_s: float | None, api_key_env: str | None = None, timeout_s: float = 60.0,
             on_level=None) -> dict:
    """Gives every level's P50/P95 and throughput, and the best level within the latency budget."""
    results = []
    for level in levels:
        config = OpenAIModel(backend="openai", model=model, base_url=base_url, api_key_env=api_key_env,
                             concurrency=level, max_retries=0, timeout_s=timeout_s)
        if not results:  # before the first clock: connections and the server's first-call costs
            # the load test's own warm-up: a measurement of the server, not a run's request (no cache, not counted)
            for _ in OpenAIBackend(config).generate([Request(id="warm-up", prompt=prompts[0],
                                                             params=Params(max_tokens=max_tokens))]):
                pass
        results.append(run_level(config, prompts, requests, max_tokens))
        if on_level:
            on_level(results[-1])
    return {"base_url": base_url, "model": model, "latency_budget_s": budget_s, "warm_up": True,
            "interval": "order statistics, 95 %", "levels": results, "best": best_level(results, budget_s)}


def markdown(result: dict) -> str:
    """Gives the load test as a Markdown table plus the one line that answers it."""

    def num(value, fmt):
        return "–" if value is None else format(value, fmt)

    def with_ci(lv, key):
        lo, hi = lv.get(f"{key}_ci_s") or (None, None)
        return f"{num(lv[f'{key}_s'], '.3f')} [{num(lo, '.3f')}, {num(hi, '.3f')}]"

    lines = ["| concurrency | P50 s [95 % CI] | P95 s [95 % CI] | requests/s | output tokens/s | errors |",
             "|---:|---:|---:|---:|---:|---:|"]
    for lv in result["levels"]:
        lines.append(f"| {lv['concurrency']} | {with_ci(lv, 'latency_p50')} | {with_ci(lv, 'latency_p95')} | "
                     f"{num(lv['requests_per_s'], '.2f')} | {num(lv['output_tokens_per_s'], '.1f')} | {lv['errors']} |")
    best, budget = result["best"], result["latency_budget_s"]
    within = f" with P95 ≤ {budget:g} s" if budget is not None else ""
    if best:
        lines.append(f"\nBest{within}: concurrency {best['concurrency']}, {best['requests_per_s']:.2f} requests/s "
                     f"(P95 {best['latency_p95_s']:.3f} s).")
    else:
        first = next((lv["first_error"] for lv in result["levels"] if lv.get("first_error")), None)
        lines.append(f"\nNo level ran without errors{within}." + (f" First error: {first}" if first else ""))
    return "\n".join(lines) + "\n"
