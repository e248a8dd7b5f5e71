"""vLLM generation through `ray.data.llm` (Ray's own processor, real), its engine the strict stand-in.

Ray's processor runs as it would on a cluster — `build_processor`, its actor pool, its engine stage
(`vLLMEngineStageUDF`, `vLLMEngineWrapper`) — and only `vllm` is the stand-in (tests/fake_vllm: the
`AsyncEngineArgs` / `AsyncLLMEngine` that Ray 2.60's stage drives, strict about engine arguments
and `SamplingParams`). Ray gets one logical GPU, which is what the engine stage asks for; nothing
runs on it. The engine writes each request it gets to a log, read here to check the fields.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from genval.config import load_config
from genval.pipeline import prepare, run_stages
from genval.progress import Progress
from tests.conftest import FAKE_VLLM, write_jsonl, write_yaml

pytestmark = pytest.mark.slow  # a local Ray cluster

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data.llm", reason="ray.data.llm needs Ray's llm extra's light dependencies (aiohttp)")
FAKE = FAKE_VLLM
N = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray with 2 CPUs and 1 logical GPU whose workers import the stand-in vllm; gives the request log."""
    log = tmp_path_factory.mktemp("fake_vllm") / "requests.jsonl"
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"py_modules": [str(FAKE / "vllm")], "env_vars": {"FAKE_VLLM_LOG": str(log),
                                                                         "HF_HUB_OFFLINE": "1"}})
    yield log
    ray.shutdown()



def config(folder: Path, tiny: Path) -> Path:
    examples = [{"id": f"e{i}", "input": f"ticket number {i} about a late parcel", "reference": "late parcel"}
                for i in range(N)]
    write_jsonl(folder / "eval.jsonl", examples)
    write_jsonl(folder / "student.jsonl", [{"id": e["id"], "text": "a parcel"} for e in examples])
    data = {"name": "v", "task": "summarization", "eval_set": "eval.jsonl", "prompt": "Summarise: {input}",
            "models": {"teacher": {"backend": "vllm", "model": str(tiny), "dtype": "float32",
                                   "gpu_memory_utilization": 0.5, "max_model_len": 256},
                       "student": {"backend": "replay", "path": "student.jsonl"}},
            "generation": {"max_tokens": 12, "temperature": 0.0, "top_p": 0.9, "seed": 3, "stop": [" dog"]},
            "metrics": ["bleu"], "cache": str(folder / "cache.sqlite")}
    return write_yaml(folder / "run.yaml", data)


def generate(config_path: Path, out: Path, executor: str):
    cfg = load_config(config_path)
    run = prepare(cfg, out, executor)
    run_stages(run, cfg, Progress(quiet=True), only=["generate"], executor=executor)
    return run


def test_vllm_on_ray_goes_through_the_processor_and_writes_the_local_paths_rows(cluster, fake_vllm, tiny, tmp_path):
    from transformers import AutoTokenizer

    on_ray = generate(config(tmp_path / "ray", tiny), tmp_path / "ray" / "runs", "ray")
    requests = [json.loads(line) for line in cluster.read_text().splitlines()]
    # Every prompt reached the engine once, rendered as the vllm backend renders it, with its sampling fields.
    assert sorted(r["prompt"] for r in requests) == sorted(f"Summarise: ticket number {i} about a late parcel"
                                                           for i in range(N))
    assert {json.dumps(r["sampling_params"], sort_keys=True) for r in requests} == {json.dumps(
        {"temperature": 0.0, "top_p": 0.9, "max_tokens": 12, "seed": 3, "stop": [" dog"], "logprobs": None},
        sort_keys=True)}
    engine = requests[0]["engine"]
    assert (engine["model"], engine["dtype"], engine["gpu_memory_utilization"], engine["max_model_len"]) == \
        (str(tiny), "float32", 0.5, 256)
    assert engine["runner"] == "generate" and engine["disable_log_stats"] is False and engine["seed"] == 0
    # The answers: the stand-in's stream, cut by max_tokens (12) — " dog" is not within it.
    tok = AutoTokenizer.from_pretrained(tiny)
    stream = tok(fake_vllm.entrypoints.llm.STREAM, add_special_tokens=False)["input_ids"][:12]
    outputs = on_ray.read_table("outputs")
    teacher = outputs[outputs.role == "teacher"]
    assert teacher["text"].tolist() == [tok.decode(stream)] * N
    assert teacher["completion_tokens"].tolist() == [12] * N
    assert teacher["prompt_tokens"].tolist() == [len(tok(f"Summarise: ticket number {i} about a late parcel")
                                                     ["input_ids"]) for i in range(N)]
    assert teacher["latency_s"].tolist() == pytest.approx([0.12] * N)  # the engine's last_token_ts − queued_ts
    # The same rows, column for column, as the local executor's vllm path (vllm.LLM in this process).
    local = generate(config(tmp_path / "local", tiny), tmp_path / "local" / "runs", "local")
    assert len(fake_vllm.LLM.instances) == 1
    pd.testing.assert_frame_equal(local.read_table("outputs"), outputs, check_exact=False, rtol=1e-6)
    # And the same request cache: the Ray run's answers serve the local path (no engine started for them).
    again = generate(config(tmp_path / "ray", tiny), tmp_path / "ray" / "again", "local")
    assert len(fake_vllm.LLM.instances) == 1
    cached = again.read_table("outputs").query("role == 'teacher'")
    assert cached["cached"].all() and cached["text"].tolist() == teacher["text"].tolist()


def test_the_processor_config_follows_ray_260s_api(tiny):
    from genval.config import VLLMModel
    from genval.models.ray_llm import RayLLMBackend

    model = VLLMModel(backend="vllm", model=str(tiny), tensor_parallel_size=2, enforce_eager=True)
    config = RayLLMBackend(model, concurrency=3).processor_config(chat=False)
    # Ray's own pydantic model: task_type is put into engine_kwargs by its validator.
    assert config.engine_kwargs["task_type"] == "generate"
    assert (config.model_source, config.concurrency, config.should_continue_on_error) == (str(tiny), 3, True)
    assert config.engine_kwargs["tensor_parallel_size"] == 2 and config.engine_kwargs["enforce_eager"] is True
    assert config.chat_template_stage == {"enabled": False} and config.tokenize_stage == {"enabled": False}
