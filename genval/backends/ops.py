"""Operational numbers per role — latency, throughput, cost, memory — and the student's savings.

These are what a distillation is for; `ops.json` holds them per role, plus the
teacher-vs-student savings in percent (positive: the student is cheaper or faster).
"""

from __future__ import annotations

import resource
import sys

import numpy as np

from genval.backends.base import CallStats, Completion
from genval.config import Price

# The figures where a smaller number is better, and so a saving is (teacher − student) / teacher.
SAVED = ("latency_p50_s", "latency_p95_s", "latency_p99_s", "latency_mean_s", "cost_per_1k_calls",
         "peak_memory_bytes", "parameters", "weight_bytes")


def reset_peak_memory(device: str | None) -> None:
    """Starts a fresh peak-memory measurement, so a student loaded after its teacher is not charged for it.

    CUDA: torch's peak counters. CPU on Linux: writing 5 to /proc/self/clear_refs resets the
    process's peak RSS (VmHWM; proc(5), Linux ≥ 4.0). Elsewhere the peak cannot be reset.
    """
    if device and device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _vm_hwm() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_memory(device: str | None) -> dict:
    """Gives the peak memory since the last reset: CUDA's max allocated bytes on a GPU, else the peak RSS.

    Peak RSS covers the whole process (Python, libraries, the model), so on CPU it is an upper
    bound on the model's own need; `memory_kind` says which was measured.
    """
    if device and device.startswith("cuda"):
        import torch

        return {"peak_memory_bytes": int(torch.cuda.max_memory_allocated(device)), "memory_kind": "cuda_max_allocated"}
    hwm = _vm_hwm()
    if hwm is not None:
        return {"peak_memory_bytes": hwm, "memory_kind": "process_peak_rss"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # getrusage(2): Linux reports kilobytes, macOS bytes; this peak is never reset.
    return {"peak_memory_bytes": int(rss if sys.platform == "darwin" else rss * 1024), "memory_kind": "process_peak_rss"}


def _percentiles(latencies: list[float]) -> dict:
    if not latencies:
        return {"latency_p50_s": None, "latency_p95_s": None, "latency_p99_s": None, "latency_mean_s": None}
    arr = np.asarray(latencies, dtype=float)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])  # numpy's default linear interpolation
    return {"latency_p50_s": float(p50), "latency_p95_s": float(p95), "latency_p99_s": float(p99),
            "latency_mean_s": float(arr.mean())}


def role_ops(completions: list[Completion], stats: CallStats, info: dict, price: Price | None) -> dict:
    """Gives one role's operational figures from its completions and the engine's own report."""
    ok = [c for c in completions if not c.error]
    latencies = [c.latency_s for c in ok if c.latency_s is not None]
    prompt_tokens = sum(c.prompt_tokens or 0 for c in ok)
    output_tokens = sum(c.completion_tokens or 0 for c in ok)
    n = len(completions)
    # Throughput is measured over the wall time of live calls; when every answer came from a
    # cache or a replay file, the serial sum of latencies stands in, and the figure says so.
    if stats.called == n and stats.wall_s > 0:
        wall, basis = stats.wall_s, "measured"
    else:
        wall, basis = (sum(latencies) if latencies else None), "serial_latency_sum"
    out = {
        "n": n,
        "errors": n - len(ok),
        "cached": stats.cached,
        "model_calls": stats.called,
        **_percentiles(latencies),
        "wall_s": wall,
        "throughput_basis": basis,
        "requests_per_s": (len(ok) / wall) if wall else None,
        "output_tokens_per_s": (output_tokens / wall) if wall and output_tokens else None,
        "prompt_tokens": prompt_tokens,
        "output_tokens": output_tokens,
        "parameters": info.get("parameters"),
        "weight_bytes": info.get("weight_bytes"),
        "peak_memory_bytes": info.get("peak_memory_bytes"),
        "memory_kind": info.get("memory_kind"),
        "device": info.get("device"),
        "cost_per_1k_calls": None,
        "cost_basis": None,
    }
    if price is not None and ok:
        if price.per_million_input_tokens is not None or price.per_million_output_tokens is not None:
            total = (prompt_tokens * (price.per_million_input_tokens or 0)
                     + output_tokens * (price.per_million_output_tokens or 0)) / 1e6
            out["cost_per_1k_calls"] = total / len(ok) * 1000
            out["cost_basis"] = "per_million_tokens"
        elif price.per_gpu_hour is not None and wall:
            total = wall / 3600 * price.gpus * price.per_gpu_hour
            out["cost_per_1k_calls"] = total / len(ok) * 1000
            out["cost_basis"] = f"per_gpu_hour ({basis})"
    return out


def savings(ops: dict[str, dict]) -> dict:
    """Gives, per figure, the student's saving against the teacher in percent (None where either lacks it)."""
    teacher, student = ops.get("teacher"), ops.get("student")
    if not teacher or not student:
        return {}
    out = {}
    for key in SAVED:
        t, s = teacher.get(key), student.get(key)
        out[f"{key}_pct"] = (t - s) / t * 100 if t not in (None, 0) and s is not None else None
    t, s = teacher.get("requests_per_s"), student.get("requests_per_s")
    out["throughput_gain_pct"] = (s - t) / t * 100 if t and s is not None else None
    t, s = teacher.get("output_tokens_per_s"), student.get("output_tokens_per_s")
    out["output_tokens_per_s_gain_pct"] = (s - t) / t * 100 if t and s is not None else None
    return out
