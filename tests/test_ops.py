"""Operational figures per role and the student's savings, checked against numbers worked by hand."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from genval.config import Price
from genval.models import CallStats, Completion
from genval.models.ops import quantile_ci, role_ops, savings, savings_basis


def completions(latencies, prompt=10, output=5, measured_in="now", cached=False):
    return [Completion(id=str(i), text="x", latency_s=lat, prompt_tokens=prompt, completion_tokens=output,
                       measured_in=measured_in, cached=cached) for i, lat in enumerate(latencies)]


def live_stats(wall_s, answers, called=None, **kw) -> CallStats:
    """Stats of a run whose live calls were one pass ("now") of `answers` answers in `wall_s` seconds."""
    return CallStats(called=answers if called is None else called, wall_s=wall_s, this_pass="now",
                     passes={"now": {"wall_s": wall_s, "answers": answers, "this_run": True}}, **kw)


def test_latency_percentiles_throughput_and_token_cost():
    lat = [0.1, 0.2, 0.3, 0.4, 1.0]
    comps = completions(lat) + [Completion(id="bad", error="HTTP 500")]
    stats = live_stats(2.0, 5, called=6)
    price = Price(per_million_input_tokens=2.0, per_million_output_tokens=8.0)
    ops = role_ops(comps, stats, {"parameters": 100, "weight_bytes": 400}, price)
    assert (ops["n"], ops["errors"], ops["model_calls"]) == (6, 1, 6)
    # Linear interpolation between order statistics (numpy's default, Hyndman & Fan type 7):
    # P50 = the 3rd of 5 = 0.3; P95 at rank 0.95·4 = 3.8 → 0.4 + 0.8·(1.0 − 0.4) = 0.88.
    assert ops["latency_p50_s"] == pytest.approx(0.3)
    assert ops["latency_p95_s"] == pytest.approx(0.88)
    assert ops["latency_p99_s"] == pytest.approx(0.4 + 0.96 * 0.6)
    assert ops["latency_mean_s"] == pytest.approx(2.0 / 5)
    assert ops["throughput_basis"] == "measured" and ops["wall_s"] == 2.0
    assert ops["basis"] == "measured in this run" and ops["basis_kind"] == "measured"
    assert ops["requests_per_s"] == pytest.approx(5 / 2.0)  # 5 answered in 2 s
    assert ops["output_tokens_per_s"] == pytest.approx(25 / 2.0)
    # per call: 10 in × $2/M + 5 out × $8/M = $60/M = $0.00006 → per 1,000 calls: $0.06
    assert ops["cost_per_1k_calls"] == pytest.approx(0.06)
    assert ops["cost_basis"] == "per_million_tokens"
    # 5 latencies are too few for a 95 % interval on the median: P(B ≤ 0) = 1/32 > 0.025.
    assert ops["latency_p50_ci_s"] == [None, None] and ops["latency_ci"]["n"] == 5


def test_gpu_hour_cost_uses_wall_time():
    ops = role_ops(completions([1.0] * 4), live_stats(36.0, 4), {}, Price(per_gpu_hour=4.0, gpus=2))
    # 36 s on 2 GPUs at $4/GPU-hour = $0.08 for 4 calls → $20 per 1,000.
    assert ops["cost_per_1k_calls"] == pytest.approx(20.0)
    assert ops["cost_basis"] == "per_gpu_hour (measured)"


def test_cached_answers_keep_the_figures_of_the_pass_that_made_them():
    # Two answers from the cache, made in an earlier pass of 4 answers in 1 s (a batched engine:
    # each answer's latency is its batch's 0.5 s). Their throughput is that pass's, 4/s — not the
    # serial sum of latencies (1/0.5 s = 2/s) that a cached run used to report.
    earlier = {"old": {"run": "demo", "role": "teacher", "started": "2025-01-02T03:04:05Z", "wall_s": 1.0,
                       "answers": 4, "this_run": False, "info": {"parameters": 7}}}
    ops = role_ops(completions([0.5, 0.5], measured_in="old", cached=True), CallStats(cached=2, passes=earlier), {},
                   None)
    assert ops["requests_per_s"] == pytest.approx(4.0) and ops["wall_s"] == pytest.approx(0.5)
    assert ops["throughput_basis"] == "measured"
    assert ops["basis"] == "measured when cached (run demo, 2025-01-02T03:04:05Z)"
    assert ops["latency_p50_s"] == pytest.approx(0.5)
    assert ops["parameters"] == 7  # the model was not loaded now: what its pass reported
    assert ops["measured_in"][0]["answers_used"] == 2 and ops["cost_per_1k_calls"] is None


def test_answers_from_two_passes_are_each_charged_their_own_pass_time():
    earlier = {"old": {"run": "r", "started": "d", "wall_s": 1.0, "answers": 4, "this_run": False}}
    stats = live_stats(2.0, 2, cached=2)
    stats.passes.update(earlier)
    comps = completions([0.5, 0.5], measured_in="old", cached=True) + completions([1.0, 1.0])
    ops = role_ops(comps, stats, {}, None)
    # 2 answers × 1.0/4 s + 2 answers × 2.0/2 s = 2.5 s for 4 answers.
    assert ops["wall_s"] == pytest.approx(2.5) and ops["requests_per_s"] == pytest.approx(4 / 2.5)
    assert ops["basis"] == "measured in 2 passes: run r, d (2 answers); this run (2 answers)"


def test_answers_cached_before_passes_were_recorded_give_latency_but_no_throughput():
    ops = role_ops(completions([0.5, 1.5], measured_in=None, cached=True), CallStats(cached=2), {}, None)
    assert ops["latency_p50_s"] == pytest.approx(1.0)
    assert ops["requests_per_s"] is None and ops["wall_s"] is None
    assert ops["basis"] == "measured when cached; 2 answers cached before genval recorded passes (their latency only)"


def test_order_statistic_interval_of_a_quantile():
    # Conover (1999) §3.2: for n = 20 the 95 % interval of the median is [x_(6), x_(15)],
    # covering with probability P(6 ≤ B ≤ 14), B ~ Binomial(20, 0.5) = 0.9586.
    from scipy.stats import binom

    values = np.arange(1.0, 21.0)[::-1]  # order does not matter
    assert quantile_ci(values, 0.5) == [6.0, 15.0]
    assert binom.cdf(14, 20, 0.5) - binom.cdf(5, 20, 0.5) == pytest.approx(0.9586, abs=1e-4)
    assert binom.cdf(5, 20, 0.5) <= 0.025 < binom.cdf(6, 20, 0.5)  # x_(7) would leave too much below
    # P95 of 20 values: P(B ≤ 19) = 1 − 0.95^20 = 0.64 < 0.975, so no upper bound exists.
    lo, hi = quantile_ci(values, 0.95)
    assert hi is None and lo == 17.0  # largest l with P(B ≤ l−1) ≤ 0.025: B ≤ 16 has 0.016, B ≤ 17 0.075
    assert binom.cdf(16, 20, 0.95) <= 0.025 < binom.cdf(17, 20, 0.95)  # so x_(17), the 17th of 20
    assert quantile_ci([], 0.5) == [None, None]
    # Coverage by simulation: the interval holds the true median of an exponential about 95 %+ of the time.
    rng = np.random.default_rng(0)
    hits = [lo <= np.log(2) <= hi for lo, hi in (quantile_ci(rng.exponential(size=50), 0.5) for _ in range(2000))]
    assert 0.94 <= np.mean(hits) <= 0.99


def test_savings_in_percent():
    teacher = {"latency_p50_s": 2.0, "latency_p95_s": 4.0, "cost_per_1k_calls": 10.0, "parameters": 1000,
               "weight_bytes": 4000, "peak_memory_bytes": 800, "requests_per_s": 5.0, "output_tokens_per_s": 100.0,
               "basis": "measured in this run", "basis_kind": "measured"}
    student = {"latency_p50_s": 0.5, "latency_p95_s": 1.0, "cost_per_1k_calls": 2.5, "parameters": 250,
               "weight_bytes": 1000, "peak_memory_bytes": 200, "requests_per_s": 20.0, "output_tokens_per_s": 300.0,
               "basis": "measured in this run", "basis_kind": "measured"}
    out = savings({"teacher": teacher, "student": student})
    for key in ("latency_p50_s", "latency_p95_s", "cost_per_1k_calls", "parameters", "weight_bytes", "peak_memory_bytes"):
        assert out[f"{key}_pct"] == pytest.approx(75.0)
    assert out["throughput_gain_pct"] == pytest.approx(300.0)
    assert out["output_tokens_per_s_gain_pct"] == pytest.approx(200.0)
    assert out["latency_mean_s_pct"] is None  # neither has it
    assert savings({"teacher": teacher}) == {}
    assert savings_basis({"teacher": teacher, "student": student}) == "teacher and student: measured in this run"


def test_no_timing_savings_across_bases():
    # A teacher replayed from a file (serial latency sum) against a student measured now: their
    # throughputs are not one quantity, so no "+3867 %"; sizes and token prices still compare.
    teacher = {"latency_p50_s": 2.0, "requests_per_s": 0.5, "output_tokens_per_s": 10.0, "parameters": 1000,
               "cost_per_1k_calls": 4.0, "cost_basis": "per_million_tokens", "basis": "replay file",
               "basis_kind": "replay file"}
    student = {"latency_p50_s": 0.5, "requests_per_s": 19.8, "output_tokens_per_s": 400.0, "parameters": 250,
               "cost_per_1k_calls": 1.0, "cost_basis": "per_million_tokens", "basis": "measured in this run",
               "basis_kind": "measured"}
    out = savings({"teacher": teacher, "student": student})
    assert out["throughput_gain_pct"] is None and out["latency_p50_s_pct"] is None
    assert out["output_tokens_per_s_gain_pct"] is None
    assert out["parameters_pct"] == pytest.approx(75.0) and out["cost_per_1k_calls_pct"] == pytest.approx(75.0)
    assert savings_basis({"teacher": teacher, "student": student}) == (
        "timing savings not computed: the teacher's figures are replay file and the student's measured in this run, "
        "not one basis")
    gpu = {**teacher, "cost_basis": "per_gpu_hour (serial_latency_sum)"}
    assert savings({"teacher": gpu, "student": student})["cost_per_1k_calls_pct"] is None  # priced by wall time
    cached = {**teacher, "basis": "measured when cached (run r, d)", "basis_kind": "measured"}
    assert savings({"teacher": cached, "student": student})["throughput_gain_pct"] == pytest.approx(3860.0)
    assert savings_basis({"teacher": cached, "student": student}) == (
        "teacher: measured when cached (run r, d); student: measured in this run")


def test_peak_memory_resets_between_models():
    # In a fresh process: in the test process, memory other tests' threads give back (jemalloc's decay,
    # Ray's) can lower the RSS between the reset and the allocation, so 64 MiB more need not pass the peak.
    script = """
import json
import numpy as np
from genval.models.ops import peak_memory, reset_peak_memory
reset_peak_memory("cpu")
before = peak_memory("cpu")["peak_memory_bytes"]
block = np.ones(64 << 20, dtype=np.uint8)  # touch 64 MiB
grown = peak_memory("cpu")["peak_memory_bytes"]
del block
reset_peak_memory("cpu")
after = peak_memory("cpu")
print(json.dumps({"before": before, "grown": grown, "after": after,
                  "linux": open("/proc/self/status").read().count("VmHWM") > 0}))
"""
    found = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                      check=True).stdout)
    assert found["grown"] >= found["before"] + (60 << 20)
    assert found["after"]["memory_kind"] == "process_peak_rss"
    if found["linux"]:  # Linux: the peak can be reset
        assert found["after"]["peak_memory_bytes"] < found["grown"] - (32 << 20)


def test_replayed_outputs_are_not_timed_as_a_live_batch(tmp_path):
    from genval.models import generate_cached
    from genval.models.base import Request
    from genval.models.replay import ReplayBackend
    from tests.conftest import write_jsonl

    write_jsonl(tmp_path / "r.jsonl", [{"id": "a", "text": "x", "latency_s": 0.5}, {"id": "b", "text": "y", "latency_s": 1.5}])
    stats = CallStats()
    comps = generate_cached(ReplayBackend(tmp_path / "r.jsonl"), [Request(id="a", prompt="p"), Request(id="b", prompt="q")],
                            None, stats=stats)
    ops = role_ops(comps, stats, {}, None)
    # Reading the file takes about a millisecond; the replayed latencies are the only timing there is.
    assert ops["throughput_basis"] == "serial_latency_sum" and ops["requests_per_s"] == pytest.approx(1.0)
    assert ops["basis"] == "replay file" and ops["measured_in"] == []
