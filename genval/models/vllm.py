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
- Label probabilities: each label (after its `label_delimiter`, as the hf backend scores it)
  appended to the prompt as a TokensPrompt
  (`{"prompt_token_ids": [...]}`) with `SamplingParams(max_tokens=1, prompt_logprobs=0)`;
  `RequestOutput.prompt_logprobs[p][token_id].logprob` per label position.
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

from genval.errors import GenvalError
from genval.models.base import Backend, Completion, Request
from genval.models.hf import _model_fingerprint
from genval.models.labels import continuation_ids, normalise

CHUNK = 256


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
        kwargs = {"temperature": p.temperature, "top_p": p.top_p, "max_tokens": p.max_tokens, "seed": p.seed,
                  "stop": list(p.stop) or None, "logprobs": p.logprobs}
        if request.schema is not None:
            kwargs["structured_outputs"] = self._structured(json=request.schema)
        return self._vllm.SamplingParams(**kwargs)

    def render(self, request: Request) -> str:
        """Gives the text the model continues: the chat template applied when used, else system + prompt."""
        if self.uses_chat():
            messages = ([{"role": "system", "content": request.system}] if request.system else [])
            messages.append({"role": "user", "content": request.prompt})
            return self.llm.get_tokenizer().apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{request.system}\n\n{request.prompt}" if request.system else request.prompt

    def generate(self, requests: list[Request]) -> Iterator[Completion]:
        self.load()
        for start in range(0, len(requests), CHUNK):
            chunk = requests[start:start + CHUNK]
            began = time.perf_counter()
            texts = self._generate_texts(chunk)
            probs = self._label_probs(chunk)
            wall = time.perf_counter() - began
            for i, request in enumerate(chunk):
                completion = self._completion(request, texts[i], wall) if i in texts else Completion(
                    id=request.id, latency_s=wall)
                completion.label_probs = probs.get(i)
                yield completion

    def _generate_texts(self, chunk: list[Request]) -> dict[int, object]:
        """Gives position in chunk → `RequestOutput` for the requests that want text."""
        wanted = [i for i, r in enumerate(chunk) if r.generate]
        if not wanted:
            return {}
        params = [self.sampling_params(chunk[i]) for i in wanted]
        if self.uses_chat():
            messages = [([{"role": "system", "content": chunk[i].system}] if chunk[i].system else [])
                        + [{"role": "user", "content": chunk[i].prompt}] for i in wanted]
            outputs = self.llm.chat(messages, sampling_params=params, use_tqdm=False)
        else:
            prompts = [self.render(chunk[i]) for i in wanted]
            outputs = self.llm.generate(prompts, sampling_params=params, use_tqdm=False)
        return dict(zip(wanted, outputs))

    def _label_probs(self, chunk: list[Request]) -> dict[int, dict[str, float]]:
        """Gives position in chunk → label probabilities, from the exact log-likelihood of each label's tokens.

        The same quantity the hf backend computes (lm-evaluation-harness's multiple-choice scoring,
        which its vLLM backend also takes from `prompt_logprobs`), so a teacher on vLLM and a student
        on transformers are compared on one definition: context + label as a TokensPrompt,
        `SamplingParams(max_tokens=1, prompt_logprobs=0)`, the label positions' logprobs summed.
        """
        tokenizer = self.llm.get_tokenizer()
        chat = self.uses_chat()
        prompts, spans = [], []
        for i, request in enumerate(chunk):
            if not request.labels:
                continue
            context = self.render(request)
            for label in request.labels:
                ctx, cont = continuation_ids(tokenizer, context, label, chat, request.label_delimiter)
                prompts.append({"prompt_token_ids": ctx + cont})
                spans.append((i, label, len(ctx), len(cont)))
        if not prompts:
            return {}
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outputs = self.llm.generate(prompts, sampling_params=params, use_tqdm=False)
        loglik: dict[int, dict[str, float]] = {}
        for (i, label, n_ctx, n_cont), output in zip(spans, outputs):
            ids, logprobs = output.prompt_token_ids, output.prompt_logprobs
            loglik.setdefault(i, {})[label] = sum(logprobs[p][ids[p]].logprob for p in range(n_ctx, n_ctx + n_cont))
        return {i: normalise(scores) for i, scores in loglik.items()}

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
        return Completion(id=request.id, text=first.text, prompt_tokens=len(output.prompt_token_ids or []),
                          completion_tokens=len(first.token_ids), latency_s=latency, top_logprobs=top)

    def batch_settings(self) -> dict:
        return {"chunk": CHUNK, "scheduling": "continuous batching (vLLM)"}

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
