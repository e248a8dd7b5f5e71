"""Operational figures per role and the student's savings, checked against numbers worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from genval.backends import CallStats, Completion
from genval.backends.ops import peak_memory, reset_peak_memory, role_ops, savings
from genval.config import Price


def completions(latencies, prompt=10, output=5):
    return [Completion(id=str(i), text="x", latency_s=lat, prompt_tokens=prompt, completion_tokens=output)
            for i, lat in enumerate(latencies)]


def test_latency_percentiles_throughput_and_token_cost():
    lat = [0.1, 0.2, 0.3, 0.4, 1.0]
    comps = completions(lat) + [Completion(id="bad", error="HTTP 500")]
    stats = CallStats(called=6, wall_s=2.0)
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
    assert ops["requests_per_s"] == pytest.approx(5 / 2.0)  # 5 answered in 2 s
    assert ops["output_tokens_per_s"] == pytest.approx(25 / 2.0)
    # per call: 10 in × $2/M + 5 out × $8/M = $60/M = $0.00006 → per 1,000 calls: $0.06
    assert ops["cost_per_1k_calls"] == pytest.approx(0.06)
    assert ops["cost_basis"] == "per_million_tokens"


def test_gpu_hour_cost_uses_wall_time():
    ops = role_ops(completions([1.0] * 4), CallStats(called=4, wall_s=36.0), {}, Price(per_gpu_hour=4.0, gpus=2))
    # 36 s on 2 GPUs at $4/GPU-hour = $0.08 for 4 calls → $20 per 1,000.
    assert ops["cost_per_1k_calls"] == pytest.approx(20.0)
    assert ops["cost_basis"] == "per_gpu_hour (measured)"


def test_cached_answers_fall_back_to_the_serial_latency_sum():
    ops = role_ops(completions([0.5, 1.5]), CallStats(cached=2), {}, None)
    assert ops["throughput_basis"] == "serial_latency_sum" and ops["wall_s"] == pytest.approx(2.0)
    assert ops["requests_per_s"] == pytest.approx(1.0)
    assert ops["cost_per_1k_calls"] is None


def test_savings_in_percent():
    teacher = {"latency_p50_s": 2.0, "latency_p95_s": 4.0, "cost_per_1k_calls": 10.0, "parameters": 1000,
               "weight_bytes": 4000, "peak_memory_bytes": 800, "requests_per_s": 5.0, "output_tokens_per_s": 100.0}
    student = {"latency_p50_s": 0.5, "latency_p95_s": 1.0, "cost_per_1k_calls": 2.5, "parameters": 250,
               "weight_bytes": 1000, "peak_memory_bytes": 200, "requests_per_s": 20.0, "output_tokens_per_s": 300.0}
    out = savings({"teacher": teacher, "student": student})
    for key in ("latency_p50_s", "latency_p95_s", "cost_per_1k_calls", "parameters", "weight_bytes", "peak_memory_bytes"):
        assert out[f"{key}_pct"] == pytest.approx(75.0)
    assert out["throughput_gain_pct"] == pytest.approx(300.0)
    assert out["output_tokens_per_s_gain_pct"] == pytest.approx(200.0)
    assert out["latency_mean_s_pct"] is None  # neither has it
    assert savings({"teacher": teacher}) == {}


def test_peak_memory_resets_between_models():
    reset_peak_memory("cpu")
    before = peak_memory("cpu")["peak_memory_bytes"]
    block = np.ones(64 << 20, dtype=np.uint8)  # touch 64 MiB
    grown = peak_memory("cpu")["peak_memory_bytes"]
    assert grown >= before + (60 << 20)
    del block
    reset_peak_memory("cpu")
    after = peak_memory("cpu")
    assert after["memory_kind"] == "process_peak_rss"
    if open("/proc/self/status").read().count("VmHWM"):  # Linux: the peak can be reset
        assert after["peak_memory_bytes"] < grown - (32 << 20)


def test_replayed_outputs_are_not_timed_as_a_live_batch(tmp_path):
    from genval.backends import generate_cached
    from genval.backends.base import Request
    from genval.backends.replay import ReplayBackend
    from tests.conftest import write_jsonl

    write_jsonl(tmp_path / "r.jsonl", [{"id": "a", "text": "x", "latency_s": 0.5}, {"id": "b", "text": "y", "latency_s": 1.5}])
    stats = CallStats()
    comps = generate_cached(ReplayBackend(tmp_path / "r.jsonl"), [Request(id="a", prompt="p"), Request(id="b", prompt="q")],
                            None, stats=stats)
    ops = role_ops(comps, stats, {}, None)
    # Reading the file takes about a millisecond; the replayed latencies are the only timing there is.
    assert ops["throughput_basis"] == "serial_latency_sum" and ops["requests_per_s"] == pytest.approx(1.0)
