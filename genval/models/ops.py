"""Operational numbers per role — latency, throughput, cost, memory — and the student's savings.

These are what a distillation is for; `ops.json` holds them per role, plus the
teacher-vs-student savings in percent (positive: the student is cheaper or faster).

Latency and throughput come only from measured model calls. A live engine's answers carry the
pass that timed them (genval/models/base.py): answers made in this run, and answers the cache
kept from an earlier pass, each count with the figures of their own pass. A replay file's
latencies are the user's own; its throughput is the serial sum of them. Each role names its
`basis`, and timing savings are computed only when teacher and student share a basis kind.
"""

from __future__ import annotations

import resource
import sys

import numpy as np

from genval.config import Price
from genval.numbers import BUILTIN, lookup
from genval.models.base import CallStats, Completion

# The figures compared as a saving, (teacher − student) / teacher: those the number registry says are
# better lower (genval.numbers), so the direction of a figure is written once, there.
COMPARED = ("latency_p50_s", "latency_p95_s", "latency_p99_s", "latency_mean_s", "cost_per_1k_calls",
            "peak_memory_bytes", "parameters", "weight_bytes")
SAVED = tuple(key for key in COMPARED if lookup(BUILTIN, key).better == "lower")
TIMED = ("latency_p50_s", "latency_p95_s", "latency_p99_s", "latency_mean_s")  # savings that need one basis


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


def quantile_ci(values, q: float, confidence: float = 0.95) -> list[float | None]:
    """Gives a distribution-free interval for the q-quantile: two order statistics of the sample.

    The number of observations below the true q-quantile is Binomial(n, q), so the order
    statistics x_(l) ≤ x_(u) cover it with probability F(u−1) − F(l−1), F the binomial CDF;
    l is the largest and u the smallest index that keep each tail within (1 − confidence)/2
    (Conover, Practical Nonparametric Statistics, 3rd ed. 1999, §3.2; Hahn & Meeker,
    Statistical Intervals 1991, §5.2). Exact for any continuous distribution and needs no
    resampling. A bound the sample is too small to give is None: 20 latencies bound P95 from
    below only.
    """
    from scipy.stats import binom

    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return [None, None]
    tail = (1 - confidence) / 2
    # cdf(k) = P(B ≤ k) is non-decreasing: the bounds lie next to its quantiles, so a few values of
    # it decide them (not all n, which for a million latencies would be three arrays of 8 MB).
    low = _last_at_most(lambda k: binom.cdf(k, n, q) <= tail, int(binom.ppf(tail, n, q)), n)
    high = _first_at_least(lambda k: binom.cdf(k, n, q) >= 1 - tail, int(binom.ppf(1 - tail, n, q)), n)
    return [float(x[low]) if low is not None else None, float(x[high]) if high is not None else None]


def _last_at_most(holds, guess: int, n: int) -> int | None:
    """Gives the largest k in [0, n) where `holds(k)` (true up to some k, false after), searching from `guess`."""
    k = min(max(guess, 0), n - 1)
    while k >= 0 and not holds(k):
        k -= 1
    while k + 1 < n and holds(k + 1):
        k += 1
    return k if k >= 0 else None


def _first_at_least(holds, guess: int, n: int) -> int | None:
    """Gives the smallest k in [0, n) where `holds(k)` (false up to some k, true after), searching from `guess`."""
    k = min(max(guess, 0), n - 1)
    while k < n and not holds(k):
        k += 1
    while k - 1 >= 0 and holds(k - 1):
        k -= 1
    return k if k < n else None


def _percentiles(latencies, confidence: float) -> dict:
    if not len(latencies):
        return {"latency_p50_s": None, "latency_p95_s": None, "latency_p99_s": None, "latency_mean_s": None,
                "latency_p50_ci_s": [None, None], "latency_p95_ci_s": [None, None]}
    arr = np.asarray(latencies, dtype=float)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])  # numpy's default linear interpolation
    return {"latency_p50_s": float(p50), "latency_p95_s": float(p95), "latency_p99_s": float(p99),
            "latency_mean_s": float(arr.mean()), "latency_p50_ci_s": quantile_ci(arr, 0.50, confidence),
            "latency_p95_ci_s": quantile_ci(arr, 0.95, confidence)}


def _when(record: dict) -> str:
    return f"run {record.get('run') or '?'}, {record.get('started') or 'date unknown'}"


class OpsTally:
    """One role's completions added up as they stream by: counts, token sums, answers per pass, and latencies.

    Only the latencies are kept one by one (a float array, 8 bytes per answer: the percentiles and
    their intervals need them all); everything else is a running sum, so a role's figures over a
    million requests need a few megabytes.
    """

    def __init__(self):
        self.n = self.errors = self.prompt_tokens = self.output_tokens = 0
        self.latencies: list[np.ndarray] = []
        self.per_pass: dict[str | None, list[int]] = {}  # pass of an answered request → [answers, output tokens]

    def add(self, error, latency, prompt_tokens, completion_tokens, measured_in) -> None:
        """Adds a batch of completions, given as equal-length sequences (a failed one has an error)."""
        import pandas as pd

        error = pd.Series(list(error), dtype=object).notna().to_numpy()
        ok = ~error
        latency = pd.to_numeric(pd.Series(list(latency), dtype=object), errors="coerce").to_numpy(dtype=float)
        prompt, output = (pd.to_numeric(pd.Series(list(v), dtype=object), errors="coerce").fillna(0).to_numpy(np.int64)
                          for v in (prompt_tokens, completion_tokens))
        self.n += len(error)
        self.errors += int(error.sum())
        self.prompt_tokens += int(prompt[ok].sum())
        self.output_tokens += int(output[ok].sum())
        timed = latency[ok]
        self.latencies.append(timed[~np.isnan(timed)])
        for pass_id, tokens in zip(np.asarray(measured_in, dtype=object)[ok], output[ok]):
            entry = self.per_pass.setdefault(pass_id if isinstance(pass_id, str) else None, [0, 0])
            entry[0] += 1
            entry[1] += int(tokens)

    def add_completions(self, completions: list[Completion]) -> None:
        self.add([c.error for c in completions], [np.nan if c.latency_s is None else c.latency_s for c in completions],
                 [c.prompt_tokens for c in completions], [c.completion_tokens for c in completions],
                 [c.measured_in for c in completions])

    def latency_array(self) -> np.ndarray:
        return np.concatenate(self.latencies) if self.latencies else np.zeros(0)

    def answered(self) -> int:
        return self.n - self.errors


def _timing(tally: OpsTally, stats: CallStats) -> dict:
    """Gives the wall time behind the throughput, the answers and output tokens it timed, and the basis.

    Each answer is charged its pass's wall time ÷ the pass's answers — the share of a clock
    that ran at the engine's batch settings — so one pass gives its own throughput and several
    give the pooled one. Answers without a recorded pass (cached before passes were kept) add
    their latency but no throughput.
    """
    if not tally.answered():
        return {"wall_s": None, "timed": 0, "tokens": 0, "basis": None, "basis_kind": None, "measured_in": []}
    if not stats.live:
        latencies = tally.latency_array().tolist()
        return {"wall_s": sum(latencies) if latencies else None, "timed": tally.answered(),
                "tokens": tally.output_tokens, "basis": "replay file", "basis_kind": "replay file", "measured_in": []}
    wall, timed, tokens, parts, unrecorded = 0.0, 0, 0, [], 0
    for pass_id, (n, pass_tokens) in sorted(tally.per_pass.items(), key=lambda item: -item[1][0]):
        record = stats.passes.get(pass_id) if pass_id else None
        if not record or not record.get("answers") or not record.get("wall_s"):
            unrecorded += n
            continue
        wall += n * record["wall_s"] / record["answers"]
        timed += n
        tokens += pass_tokens
        parts.append({"pass": pass_id, "answers_used": n, **{k: record.get(k) for k in (
            "run", "role", "started", "answers", "wall_s", "batch", "warm_up", "finished", "this_run")}})
    names = ["this run" if p["this_run"] else _when(p) for p in parts]
    if len(parts) == 1:
        basis = "measured in this run" if parts[0]["this_run"] else f"measured when cached ({names[0]})"
    elif parts:
        basis = f"measured in {len(parts)} passes: " + "; ".join(
            f"{name} ({p['answers_used']} answers)" for name, p in zip(names, parts))
    else:
        basis = "measured when cached"
    if unrecorded:
        basis += f"; {unrecorded} answers cached before genval recorded passes (their latency only)"
    return {"wall_s": wall or None, "timed": timed, "tokens": tokens, "basis": basis, "basis_kind": "measured",
            "measured_in": parts}


def _engine_info(info: dict, stats: CallStats) -> dict:
    """Gives what the engine reported now, or — when this run called no model — what it reported
    with the pass most answers came from (the model was never loaded here)."""
    if stats.this_pass or not stats.passes:
        return info
    return max(stats.passes.values(), key=lambda p: p.get("answers") or 0).get("info") or info


def role_ops(completions: list[Completion], stats: CallStats, info: dict, price: Price | None,
             confidence: float = 0.95) -> dict:
    """Gives one role's operational figures from its completions, the passes that timed them, and the engine."""
    tally = OpsTally()
    tally.add_completions(completions)
    return tally_ops(tally, stats, info, price, confidence)


def tally_ops(tally: OpsTally, stats: CallStats, info: dict, price: Price | None, confidence: float = 0.95) -> dict:
    """Gives one role's operational figures from its tally, the passes that timed them, and the engine."""
    latencies = tally.latency_array()
    timing = _timing(tally, stats)
    wall, basis = timing["wall_s"], timing["basis"]
    info = _engine_info(info, stats)
    n = tally.n
    out = {
        "n": n,
        "errors": tally.errors,
        "cached": stats.cached,
        "model_calls": stats.called,
        **_percentiles(latencies, confidence),
        "latency_ci": {"method": "order statistics (Conover 1999, §3.2)", "confidence": confidence,
                       "n": len(latencies)},
        "wall_s": wall,
        "throughput_basis": "serial_latency_sum" if timing["basis_kind"] == "replay file" else "measured",
        "requests_per_s": (timing["timed"] / wall) if wall else None,
        "output_tokens_per_s": (timing["tokens"] / wall) if wall and timing["tokens"] else None,
        "basis": basis,
        "basis_kind": timing["basis_kind"],
        "measured_in": timing["measured_in"],
        "prompt_tokens": tally.prompt_tokens,
        "output_tokens": tally.output_tokens,
        "parameters": info.get("parameters"),
        "weight_bytes": info.get("weight_bytes"),
        "peak_memory_bytes": info.get("peak_memory_bytes"),
        "memory_kind": info.get("memory_kind"),
        "device": info.get("device"),
        "cost_per_1k_calls": None,
        "cost_basis": None,
    }
    answered = tally.answered()
    if price is not None and answered:
        if price.per_million_input_tokens is not None or price.per_million_output_tokens is not None:
            total = (tally.prompt_tokens * (price.per_million_input_tokens or 0)
                     + tally.output_tokens * (price.per_million_output_tokens or 0)) / 1e6
            out["cost_per_1k_calls"] = total / answered * 1000
            out["cost_basis"] = "per_million_tokens"
        elif price.per_gpu_hour is not None and wall:
            total = wall / 3600 * price.gpus * price.per_gpu_hour
            out["cost_per_1k_calls"] = total / timing["timed"] * 1000
            out["cost_basis"] = f"per_gpu_hour ({out['throughput_basis']})"
    return out


def _one_basis(teacher: dict, student: dict) -> bool:
    kind = teacher.get("basis_kind")
    return kind is not None and kind == student.get("basis_kind")


def savings(ops: dict[str, dict]) -> dict:
    """Gives, per figure, the student's saving against the teacher in percent (None where either lacks it).

    Figures made from timings — latency, throughput, a per-GPU-hour cost — are compared only
    when both roles stand on one basis kind (both measured, or both replay files); `savings_basis`
    says which, or why not.
    """
    teacher, student = ops.get("teacher"), ops.get("student")
    if not teacher or not student:
        return {}
    timed_ok = _one_basis(teacher, student)
    timed = set(TIMED)
    if "per_gpu_hour" in f"{teacher.get('cost_basis')} {student.get('cost_basis')}":
        timed.add("cost_per_1k_calls")  # priced by wall time
    out = {}
    for key in SAVED:
        t, s = teacher.get(key), student.get(key)
        usable = t not in (None, 0) and s is not None and (timed_ok or key not in timed)
        out[f"{key}_pct"] = (t - s) / t * 100 if usable else None
    for key, name in (("requests_per_s", "throughput_gain_pct"), ("output_tokens_per_s", "output_tokens_per_s_gain_pct")):
        t, s = teacher.get(key), student.get(key)
        out[name] = (s - t) / t * 100 if timed_ok and t and s is not None else None
    return out


def savings_basis(ops: dict[str, dict]) -> str | None:
    """Gives the one line that says on what the timing savings stand, or why they were not computed."""
    teacher, student = ops.get("teacher"), ops.get("student")
    if not teacher or not student:
        return None
    t, s = teacher.get("basis"), student.get("basis")
    if not _one_basis(teacher, student):
        return (f"timing savings not computed: the teacher's figures are {t or 'missing'} and the student's "
                f"{s or 'missing'}, not one basis")
    return f"teacher and student: {t}" if t == s else f"teacher: {t}; student: {s}"
