"""`AsyncEngineArgs` and `AsyncLLMEngine` as Ray's batch-LLM engine stage calls them (vLLM 0.29: `ray[llm]` 2.60's).

Ray's `vLLMEngineWrapper` builds `AsyncEngineArgs(**kwargs)` from the processor's `engine_kwargs`
(plus `model`, `runner` and `enable_log_requests`), reads `create_engine_config()`'s
`scheduler_config.max_num_seqs` and `parallel_config.pipeline_parallel_size`, starts
`AsyncLLMEngine.from_engine_args(args, stat_loggers=…)` and streams
`engine.generate(request_id=…, prompt=TextPrompt|TokensPrompt, sampling_params=SamplingParams,
lora_request=…)` until an output is `finished`, and calls `do_log_stats()` after each batch.
An engine argument vLLM does not know is a TypeError, as the real dataclass raises. The engine answers with the offline stand-in's model
(vllm.entrypoints.llm.LLM), so what Ray hands back can be checked against it; each request is
appended as one JSON line to the file named by FAKE_VLLM_LOG (the engine runs in a Ray actor, a
process the test cannot look into otherwise).
"""

from __future__ import annotations

import inspect
import json
import os
from types import SimpleNamespace

from vllm.entrypoints.llm import ENGINE_ARGS, LLM
from vllm.sampling_params import SamplingParams

# EngineArgs' fields: those `LLM` takes by name or passes on, and the async engine's own.
KNOWN = (set(inspect.signature(LLM.__init__).parameters) - {"self", "kwargs"}) | ENGINE_ARGS | {
    "enable_log_requests", "pipeline_parallel_size", "load_format"}


class AsyncEngineArgs:
    def __init__(self, **kwargs):
        unknown = sorted(set(kwargs) - KNOWN)
        if unknown:
            raise TypeError(f"AsyncEngineArgs.__init__() got an unexpected keyword argument '{unknown[0]}'")
        if "model" not in kwargs:
            raise TypeError("AsyncEngineArgs needs 'model'")
        if kwargs.get("runner", "auto") not in ("auto", "generate", "pooling", "draft"):
            raise ValueError(f"runner {kwargs['runner']!r}")
        self.kwargs = kwargs

    def create_engine_config(self):
        return SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=self.kwargs.get("max_num_seqs", 256)),
                               parallel_config=SimpleNamespace(
                                   pipeline_parallel_size=self.kwargs.get("pipeline_parallel_size", 1)))


class AsyncLLMEngine:
    def __init__(self, args: AsyncEngineArgs, stat_loggers=None):
        llm_kwargs = {k: v for k, v in args.kwargs.items() if k not in ("enable_log_requests", "pipeline_parallel_size",
                                                                        "load_format")}
        self.args = args.kwargs
        self.llm = LLM(**llm_kwargs)
        self.stat_loggers = stat_loggers

    @classmethod
    def from_engine_args(cls, engine_args: AsyncEngineArgs, stat_loggers=None, **kwargs):
        if not isinstance(engine_args, AsyncEngineArgs):
            raise TypeError("from_engine_args takes an AsyncEngineArgs")
        return cls(engine_args, stat_loggers)

    async def generate(self, prompt, sampling_params, request_id, *, lora_request=None, trace_headers=None,
                       priority=0, data_parallel_rank=None, tokenization_kwargs=None):
        if not isinstance(sampling_params, SamplingParams):
            raise TypeError("sampling_params must be a SamplingParams")
        if not isinstance(prompt, dict) or ("prompt" in prompt) == ("prompt_token_ids" in prompt):
            raise TypeError("prompt must be a TextPrompt or a TokensPrompt")
        text = prompt.get("prompt")
        ids = list(prompt["prompt_token_ids"]) if text is None else self.llm.tokenizer(text)["input_ids"]
        log = os.environ.get("FAKE_VLLM_LOG")
        if log:
            with open(log, "a") as fh:
                sp = {k: getattr(sampling_params, k) for k in sampling_params.explicit
                      if k != "structured_outputs"}
                if sampling_params.structured_outputs is not None:
                    sp["structured_outputs"] = {"json": sampling_params.structured_outputs.json}
                fh.write(json.dumps({"request_id": request_id, "prompt": text, "sampling_params": sp,
                                     "engine": {k: v for k, v in self.args.items()}}, default=str) + "\n")
        yield self.llm._answer(text, ids, sampling_params)

    async def do_log_stats(self, scheduler_outputs=None, model_output=None) -> None:
        pass

    def shutdown(self):
        pass
