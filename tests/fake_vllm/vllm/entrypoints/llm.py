"""`vllm.LLM` as vLLM 0.33 exposes it, over a fake engine that answers a fixed token stream."""

from __future__ import annotations

import json
import time

from vllm.outputs import CompletionOutput, Logprob, RequestOutput, RequestStateStats
from vllm.sampling_params import SamplingParams

STREAM = " the cat sat on the mat and the dog barked at night while rain falls in spring" * 4
# The first answer token's top log-probabilities (decoded token → logprob), for label tests.
FIRST_TOKEN = {"positive": -0.3, " negative": -1.5, "Neutral": -2.5, "the": -3.0, ".": -4.0}
ENGINE_ARGS = {"max_model_len", "disable_log_stats", "max_num_seqs", "max_num_batched_tokens",
               "enable_prefix_caching", "max_logprobs", "kv_cache_dtype", "distributed_executor_backend"}


def _example(schema: dict):
    """Gives a small value that satisfies a simple JSON Schema (what constrained decoding would yield)."""
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _example(v) for k, v in props.items() if k in schema.get("required", props)}
    if kind == "array":
        return []
    return {"string": "x", "integer": 1, "number": 1.0, "boolean": True, "null": None}.get(kind, None)


class LLM:
    calls: list[dict] = []  # every generate/chat call, for tests to inspect
    instances: list["LLM"] = []

    def __init__(self, model: str, *, runner="auto", convert="auto", tokenizer=None, tokenizer_mode="auto",
                 skip_tokenizer_init=False, trust_remote_code=False, allowed_local_media_path="",
                 allowed_media_domains=None, tensor_parallel_size=1, dtype="auto", quantization=None,
                 revision=None, tokenizer_revision=None, seed=0, gpu_memory_utilization=0.9, swap_space=4,
                 cpu_offload_gb=0, enforce_eager=False, disable_custom_all_reduce=False, hf_token=None,
                 hf_overrides=None, mm_processor_kwargs=None, pooler_config=None, structured_outputs_config=None,
                 kv_cache_memory_bytes=None, compilation_config=None, logits_processors=None, **kwargs):
        unknown = sorted(set(kwargs) - ENGINE_ARGS)
        if unknown:
            raise TypeError(f"EngineArgs.__init__() got an unexpected keyword argument '{unknown[0]}'")
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError("gpu_memory_utilization must be in (0, 1]")
        from transformers import AutoTokenizer

        self.model, self.dtype, self.seed = model, dtype, seed
        self.tensor_parallel_size, self.gpu_memory_utilization = tensor_parallel_size, gpu_memory_utilization
        # LLM's own default is disable_log_stats=True, which leaves RequestOutput.metrics empty.
        self.log_stats = not kwargs.get("disable_log_stats", True)
        self.kwargs = kwargs
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or model, revision=revision)
        self._scorer = None  # the folder's causal LM, loaded when prompt log-probabilities are first asked for
        self._counter = 0
        LLM.instances.append(self)

    def get_tokenizer(self):
        return self.tokenizer

    # --- the offline API --------------------------------------------------------------------
    def generate(self, prompts, sampling_params=None, *, use_tqdm=True, lora_request=None, priority=None,
                 tokenization_kwargs=None) -> list[RequestOutput]:
        prompts = [prompts] if isinstance(prompts, (str, dict)) else list(prompts)
        for p in prompts:  # a text prompt, or a TokensPrompt: {"prompt_token_ids": [...]}
            if isinstance(p, dict) and (set(p) - {"prompt_token_ids", "multi_modal_data", "mm_processor_kwargs",
                                                  "cache_salt"} or "prompt_token_ids" not in p):
                raise TypeError(f"not a TokensPrompt: keys {sorted(p)}")
            if not isinstance(p, (str, dict)):
                raise TypeError("prompts should be strings or TokensPrompt dicts")
        params = self._params(sampling_params, len(prompts))
        LLM.calls.append({"method": "generate", "prompts": prompts, "params": params})
        return [self._answer(p if isinstance(p, str) else None,
                             self.tokenizer(p)["input_ids"] if isinstance(p, str) else list(p["prompt_token_ids"]), sp)
                for p, sp in zip(prompts, params)]

    def chat(self, messages, sampling_params=None, use_tqdm=True, lora_request=None, chat_template=None,
             chat_template_content_format="auto", add_generation_prompt=True, continue_final_message=False,
             tools=None, chat_template_kwargs=None, mm_processor_kwargs=None) -> list[RequestOutput]:
        conversations = [messages] if messages and isinstance(messages[0], dict) else list(messages)
        for conv in conversations:
            if not all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in conv):
                raise TypeError("each message should be a dict with 'role' and 'content'")
        if not (chat_template or self.tokenizer.chat_template):
            raise ValueError("As of transformers v4.44, default chat template is no longer allowed, so you "
                             "must provide a chat template if the tokenizer does not define one.")
        params = self._params(sampling_params, len(conversations))
        texts = [self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=add_generation_prompt,
                                                    chat_template=chat_template) for c in conversations]
        LLM.calls.append({"method": "chat", "messages": conversations, "prompts": texts, "params": params})
        return [self._answer(t, self.tokenizer(t, add_special_tokens=False)["input_ids"], sp)
                for t, sp in zip(texts, params)]

    # --- the fake engine --------------------------------------------------------------------
    def _params(self, sampling_params, n: int) -> list[SamplingParams]:
        if sampling_params is None:
            return [SamplingParams()] * n
        if isinstance(sampling_params, SamplingParams):
            return [sampling_params] * n
        sampling_params = list(sampling_params)
        if len(sampling_params) != n:
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        if not all(isinstance(sp, SamplingParams) for sp in sampling_params):
            raise TypeError("sampling_params must be SamplingParams")
        return sampling_params

    def _prompt_logprobs(self, prompt_ids: list[int]) -> list[list[float]]:
        """Gives, per prompt position, the model's log-softmax over the vocabulary (float32, as vLLM computes).

        Prompt log-probabilities are the one thing here that a real model computes: label scores
        must be checked against the model's own logits, not against numbers the stand-in made up.
        """
        import torch
        from transformers import AutoModelForCausalLM

        if self._scorer is None:
            self._scorer = AutoModelForCausalLM.from_pretrained(self.model).eval()
        with torch.inference_mode():
            logits = self._scorer(torch.tensor([prompt_ids])).logits[0].float()
        return torch.log_softmax(logits, dim=-1).tolist()

    def _prompt_entries(self, prompt_ids: list[int], k: int) -> list:
        """As vLLM: None for the first token, then per position the k likeliest tokens (ranks 1..k) and the
        prompt's own token with its rank, which makes k + 1 entries when it is not among them."""
        limit = self.kwargs.get("max_logprobs", 20)
        if k > limit:  # vLLM refuses more than its max_logprobs (default 20)
            raise ValueError(f"Requested prompt logprobs of {k}, which is greater than max allowed: {limit}")
        logp = self._prompt_logprobs(prompt_ids)
        out = [None]
        for p, t in enumerate(prompt_ids[1:], start=1):
            row = logp[p - 1]
            order = sorted(range(len(row)), key=lambda v: -row[v])
            entry = {v: Logprob(row[v], r + 1, self.tokenizer.decode([v])) for r, v in enumerate(order[:k])}
            if t not in entry:
                entry[t] = Logprob(row[t], order.index(t) + 1, self.tokenizer.decode([t]))
            out.append(entry)
        return out

    def _answer(self, prompt: str, prompt_ids: list[int], sp: SamplingParams) -> RequestOutput:
        tok = self.tokenizer
        schema = sp.structured_outputs.json if sp.structured_outputs is not None else None
        if schema is not None:
            schema = json.loads(schema) if isinstance(schema, str) else schema
            # As vLLM's structured-output backends do, a schema that is not one is refused, not ignored.
            from jsonschema import validators

            validators.validator_for(schema).check_schema(schema)
            ids = tok(json.dumps(_example(schema)), add_special_tokens=False)["input_ids"][:sp.max_tokens]
        else:
            ids = tok(STREAM, add_special_tokens=False)["input_ids"][:sp.max_tokens]
        text, finish, stop_reason = tok.decode(ids), "length", None
        for s in sp.stop or []:
            if s in text:
                text, finish, stop_reason = text[:text.find(s)], "stop", s
                ids = tok(text, add_special_tokens=False)["input_ids"]
        logprobs = None
        if sp.logprobs is not None:
            logprobs = []
            for pos, tid in enumerate(ids):
                top = {tid: Logprob(-0.1, 1, tok.decode([tid]))}
                if pos == 0:
                    top = {1000 + i: Logprob(lp, i + 1, t) for i, (t, lp) in enumerate(list(FIRST_TOKEN.items())[:sp.logprobs])}
                logprobs.append(top)
        now = time.monotonic()
        metrics = None
        if self.log_stats:
            metrics = RequestStateStats(num_generation_tokens=len(ids), arrival_time=time.time(), queued_ts=now,
                                        scheduled_ts=now + 0.001, first_token_ts=now + 0.002,
                                        last_token_ts=now + 0.01 * len(ids), first_token_latency=0.002)
        prompt_logprobs = None
        if sp.prompt_logprobs is not None:
            prompt_logprobs = self._prompt_entries(prompt_ids, sp.prompt_logprobs)
        self._counter += 1
        out = CompletionOutput(index=0, text=text, token_ids=list(ids), cumulative_logprob=None, logprobs=logprobs,
                               finish_reason=finish, stop_reason=stop_reason)
        return RequestOutput(request_id=str(self._counter), prompt=prompt, prompt_token_ids=list(prompt_ids),
                             prompt_logprobs=prompt_logprobs, outputs=[out], finished=True, metrics=metrics)
