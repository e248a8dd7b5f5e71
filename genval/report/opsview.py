"""Operations figures as people read them: units, currency, GiB, what memory was measured, and the change said in
words that fit the figure (faster, cheaper, smaller, more) — the direction read from the number registry."""

from __future__ import annotations

from genval import registry
from genval.summary import Ops

GIB = 1024 ** 3
# figure → (label, unit kind); the order is the reading order
FIGURES = {
    "latency_p50_s": ("latency p50", "seconds"), "latency_p95_s": ("latency p95", "seconds"),
    "latency_p99_s": ("latency p99", "seconds"), "latency_mean_s": ("latency mean", "seconds"),
    "requests_per_s": ("throughput", "requests"), "output_tokens_per_s": ("output tokens per second", "tokens"),
    "cost_per_1k_calls": ("cost per 1,000 calls", "money"), "peak_memory_bytes": ("peak memory", "bytes"),
    "weight_bytes": ("weights on disk", "bytes"), "parameters": ("parameters", "count"),
    "wall_s": ("time for the eval set", "seconds"), "output_tokens": ("output tokens", "count"),
    "errors": ("failed calls", "count"),
}
# unit kind → (word when the candidate's figure is better, word when it is worse)
WORDS = {"seconds": ("faster", "slower"), "requests": ("more", "fewer"), "tokens": ("more", "fewer"),
         "money": ("cheaper", "dearer"), "bytes": ("smaller", "larger"), "count": ("fewer", "more")}
MEMORY = {"process_peak_rss": "peak RSS of the whole genval process (an upper bound on the model's need)",
          "cuda_max_allocated": "CUDA memory the model allocated at peak (torch.cuda.max_memory_allocated)",
          "vllm_reserved": "GPU memory vLLM reserved (gpu_memory_utilization × the GPU)"}


def show(key: str, value, currency: str = "") -> str:
    """Gives one figure with its unit: ms or s, requests/s, tokens/s, currency, GiB, thousands separators."""
    if value is None:
        return "–"
    kind = FIGURES.get(key, ("", ""))[1]
    if kind == "seconds":
        if value < 1:
            return f"{value * 1000:.0f} ms"
        return f"{value:.2f} s" if value < 120 else f"{value / 60:.1f} min"
    if kind == "requests":
        return f"{value:.2f} requests/s"
    if kind == "tokens" and key.endswith("_per_s"):
        return f"{value:,.1f} tokens/s"
    if kind == "money":
        return f"{value:.4f} {currency}".strip()
    # A small model's figure in a unit that shows it: "0.00 GiB" and "0.0 M" said nothing of the distill demo's
    # students, beside a change of "67.0 % smaller" against a teacher also shown as 0.00 GiB.
    if kind == "bytes":
        return f"{value / GIB:.2f} GiB" if value >= 0.005 * GIB else f"{value / 2 ** 20:.2f} MiB"
    if key == "parameters":
        if value >= 1e9:
            return f"{value / 1e9:.2f} B"
        return f"{value / 1e6:.1f} M" if value >= 1e6 else f"{value / 1e3:.1f} K"
    return f"{value:,.0f}" if isinstance(value, (int, float)) else str(value)


def change(key: str, teacher, candidate) -> str:
    """Gives the candidate's change against the teacher in words ('71.1 % faster'), '–' where either is missing."""
    if teacher is None or candidate is None:
        return "–"
    if candidate == teacher:
        return "same"
    if teacher == 0:
        return "–"
    better = registry.better(key)
    kind = FIGURES.get(key, ("", "count"))[1]
    good, bad = WORDS.get(kind, ("better", "worse"))
    if better == "lower":   # a share saved: (teacher − candidate) / teacher
        saved = (teacher - candidate) / teacher * 100
        return f"{saved:.1f} % {good}" if saved > 0 else f"{-saved:.1f} % {bad}"
    gain = (candidate - teacher) / teacher * 100
    if better == "higher":
        return f"{gain:.1f} % {good}" if gain > 0 else f"{-gain:.1f} % {bad}"
    return f"{gain:+.1f} %"


def _roles(ops: Ops | dict) -> dict[str, dict]:
    """Gives role → its figures (an empty dict for a role with none), from the summary's ops or ops.json's dict."""
    roles = ops.roles if isinstance(ops, Ops) else ops.get("roles") or {}
    return {role: figures or {} for role, figures in roles.items()}


def rows(ops: Ops | dict, candidates: list[str], currency: str = "") -> list[list[str]]:
    """Gives one row per figure: label, the teacher's, then each candidate's value and change."""
    roles = _roles(ops)
    teacher = roles.get("teacher", {})
    out = []
    for key, (label, _) in FIGURES.items():
        values = [roles.get(c, {}).get(key) for c in candidates]
        if teacher.get(key) is None and all(v is None for v in values):
            continue
        row = [label, show(key, teacher.get(key), currency)]
        for c, v in zip(candidates, values):
            row += [show(key, v, currency), _timed_change(key, teacher, roles.get(c, {}))]
        out.append(row)
    return out


def _timed_change(key: str, teacher: dict, candidate: dict) -> str:
    """Gives the change, or why none: timed figures compare only on one basis (both measured or both replayed)."""
    timed = key.startswith("latency") or key.endswith("_per_s") or key == "wall_s" or \
        (key == "cost_per_1k_calls" and "per_gpu_hour" in f"{teacher.get('cost_basis')}{candidate.get('cost_basis')}")
    if timed and teacher.get("basis_kind") != candidate.get("basis_kind"):
        return "not comparable (different basis)"
    return change(key, teacher.get(key), candidate.get(key))


def memory_note(ops: Ops | dict) -> str | None:
    """Gives what the memory figures measured, per role; None when no role measured memory."""
    roles = _roles(ops)
    said = [f"{role}: {MEMORY.get(figures.get('memory_kind'), figures.get('memory_kind'))}"
            for role, figures in roles.items() if figures and figures.get("memory_kind")]
    return ("Memory measured — " + "; ".join(said) + ".") if said else None


def basis_note(ops: Ops | dict, currency: str) -> str:
    """Gives where the figures come from (measured, replay file) and how cost was priced."""
    roles = _roles(ops)
    basis = "; ".join(f"{role}: {f.get('basis')}" for role, f in roles.items() if f and f.get("basis"))
    cost = "; ".join(f"{role}: {f.get('cost_basis')}" for role, f in roles.items() if f and f.get("cost_basis"))
    out = f"Figures from — {basis}." if basis else ""
    if cost:
        out += f" Cost priced by {cost}, in {currency or 'the price config’s currency'}."
    return out.strip()
