"""The `vllm` backend: vLLM's offline engine (`vllm.LLM`) for GPU batch generation.

Written against the vLLM 0.33 API:
- `LLM(model=…, dtype=…, tensor_parallel_size=…, gpu_memory_utilization=…, seed=…,
  disable_log_stats=False)`; `LLM` itself defaults to `disable_log_stats=True`, which leaves
  `RequestOutput.metrics` (queue, first-token and last-token times) empty, so it is set here.
- `LLM.generate(prompts, sampling_params)` for raw prompts and `LLM.chat(messages,
  sampling_params)` when the tokenizer has a chat template; a list of `SamplingParams`, one
  per prompt, in prompt order.
- `SamplingParams(temperature, top_p, max_tokens, seed, stop, logprobs, structured_outputs)`.
  `max_tokens` defaults to 16, so it is always set. JSON Schema constraints go through
  `structured_outputs=StructuredOutputsParams(json=schema)` (vllm.sampling_params); the
  `guided_*` fields were removed in 0.12.
- Results: `RequestOutput.outputs[0]` (`CompletionOutput.text`, `.token_ids`, `.logprobs` —
  per token a dict token id → `Logprob(logprob, rank, decoded_token)` — `.finish_reason`),
  `RequestOutput.prompt_token_ids`, `RequestOutput.metrics` (`RequestStateStats`).

vLLM schedules the whole list itself (continuous batching), so requests go in chunks of
CHUNK: a killed run loses at most one chunk. `latency_s` is the engine's own
last-token − queued time per request where metrics exist, else the chunk's wall time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

from genval.backends.base import Backend, Completion, Request
from genval.backends.hf import _model_fingerprint
from genval.backends.labels import from_top_logprobs
from genval.errors import GenvalError

CHUNK = 256
LABEL_TOP_K = 20  # vLLM's default max_logprobs


def import_vllm():
    """Gives the `vllm` module and `StructuredOutputsParams`, or says how to install them."""
    try:
        import vllm
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:
        raise GenvalError("backend 'vllm' needs the vllm package: pip install genval[vllm] "
                          "(or use 'backend: hf' where vLLM is not available)") from None
    return vllm, StructuredOutputsParams


class VLLMBackend(Backend):
    """vLLM's offline engine; loaded on first use, so a fully cached run never starts it."""

    name = "vllm"

    def __init__(self, config):
        self.config = config
        self.llm = None
        self._vllm = None
        self._structured = None

    def fingerprint(self) -> str:
        c = self.config
        return "vllm:" + json.dumps({"model": _model_fingerprint(c.model), "revision": c.revision, "dtype": c.dtype,
                                     "chat_template": c.chat_template, "max_model_len": c.max_model_len},
                                    sort_keys=True)

    def load(self) -> None:
        if self.llm is not None:
            return
        self._vllm, self._structured = import_vllm()
        c = self.config
        kwargs = {"model": c.model, "revision": c.revision, "dtype": c.dtype, "trust_remote_code": c.trust_remote_code,
                  "tensor_parallel_size": c.tensor_parallel_size, "gpu_memory_utilization": c.gpu_memory_utilization,
                  "seed": 0, "disable_log_stats": False}
        if c.max_model_len is not None:
            kwargs["max_model_len"] = c.max_model_len
        if c.enforce_eager:
            kwargs["enforce_eager"] = True
        self.llm = self._vllm.LLM(**kwargs)
        if c.chat_template is True and not self._has_template():
            raise GenvalError(f"model '{c.model}': 'chat_template: true' but its tokenizer has no chat template "
                              "(set 'chat_template: false' to send the raw prompt)")

    def _has_template(self) -> bool:
        return bool(getattr(self.llm.get_tokenizer(), "chat_template", None))

    def uses_chat(self) -> bool:
        return self.config.chat_template is not False and self._has_template()

    def sampling_params(self, request: Request):
        """Gives the `SamplingParams` of one request (max_tokens always set: vLLM's default is 16)."""
        p = request.params
        k = p.logprobs if p.logprobs is not None else (LABEL_TOP_K if request.labels else None)
        kwargs = {"temperature": p.temperature, "top_p": p.top_p, "max_tokens": p.max_tokens if request.generate else 1,
                  "seed": p.seed, "stop": list(p.stop) or None, "logprobs": k}
        if request.schema is not None:
            kwargs["structured_outputs"] = self._structured(json=request.schema)
        return self._vllm.SamplingParams(**kwargs)

    def generate(self, requests: list[Request]) -> Iterator[Completion]:
        self.load()
        chat = self.uses_chat()
        for start in range(0, len(requests), CHUNK):
            chunk = requests[start:start + CHUNK]
            params = [self.sampling_params(r) for r in chunk]
            began = time.perf_counter()
            if chat:
                messages = [([{"role": "system", "content": r.system}] if r.system else [])
                            + [{"role": "user", "content": r.prompt}] for r in chunk]
                outputs = self.llm.chat(messages, sampling_params=params, use_tqdm=False)
            else:
                prompts = [f"{r.system}\n\n{r.prompt}" if r.system else r.prompt for r in chunk]
                outputs = self.llm.generate(prompts, sampling_params=params, use_tqdm=False)
            wall = time.perf_counter() - began
            for request, output in zip(chunk, outputs):
                yield self._completion(request, output, wall)

    def _completion(self, request: Request, output, wall: float) -> Completion:
        """Gives the completion a `RequestOutput` holds."""
        first = output.outputs[0]
        top = None
        if first.logprobs:
            top = [{lp.decoded_token: lp.logprob for lp in entry.values()} for entry in first.logprobs]
        metrics = output.metrics
        latency = wall
        if metrics is not None and getattr(metrics, "last_token_ts", 0) and getattr(metrics, "queued_ts", 0):
            latency = metrics.last_token_ts - metrics.queued_ts  # both on the engine core's monotonic clock
        return Completion(
            id=request.id, text=first.text if request.generate else "",
            prompt_tokens=len(output.prompt_token_ids or []), completion_tokens=len(first.token_ids),
            latency_s=latency, top_logprobs=top,
            label_probs=from_top_logprobs(top[0], request.labels) if top and request.labels else None,
        )

    def info(self) -> dict:
        """Gives weight bytes (from the local folder's weight files) and the GPU memory vLLM reserves.

        vLLM's engine runs in its own process and pre-allocates `gpu_memory_utilization` of each
        GPU, so that reservation — not an in-process peak — is what the model occupies.
        """
        out: dict = {"device": "cuda (vllm)"}
        path = Path(self.config.model)
        if path.is_dir():
            files = [p for p in path.rglob("*") if p.suffix in (".safetensors", ".bin") and p.is_file()]
            out["weight_bytes"] = sum(p.stat().st_size for p in files) or None
        try:
            import torch

            if torch.cuda.is_available():
                total = torch.cuda.mem_get_info()[1]
                out["peak_memory_bytes"] = int(total * self.config.gpu_memory_utilization
                                               * self.config.tensor_parallel_size)
                out["memory_kind"] = "vllm_reserved"
        except ImportError:
            pass
        return out

    def close(self) -> None:
        self.llm = None
