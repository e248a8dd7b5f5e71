"""The `hf` backend's opt-in continuous engine: transformers' continuous batching over a paged KV cache.

`engine: continuous` sends a group's prompts to `model.generate_batch` (transformers ≥ 5:
generation/continuous_batching), which schedules requests into a running batch as others
finish, instead of padding fixed batches to their longest prompt and longest answer. Under
greedy decoding the texts are those of the batched engine (tested on CPU); sampled texts are
seeded (`seed`) but differ from the batched engine's. Each request's `latency_s` is its own
(queued → finished), as vLLM reports it. What it does not do: per-token top log-probabilities
(requests asking for them take the batched engine) and stop strings during decoding (a row runs
to its end token or `max_tokens`, then is cut at the first stop string: the same text, more
tokens computed).

On CUDA the engine sizes its paged cache from free GPU memory, as transformers does by default.
On CPU that default sizes the cache (and a token-by-token attention mask) from the machine's
memory, which took seconds for a handful of prompts: the cache is sized from the workload instead.
"""

from __future__ import annotations

from genval.models.base import Params

CHUNK = 512  # prompts per generate_batch call: a killed run loses at most one chunk's answers
CPU_PAGE = 256  # tokens per cache page on CPU
CPU_BATCH_TOKENS = 512  # tokens per forward on CPU (prefill chunks and decode steps together)
CPU_ROWS = 64  # requests whose whole cache fits at once on CPU


def cache_config(device: str, prompts: list[list[int]], max_new: int, seed: int | None):
    """Gives the ContinuousBatchingConfig: transformers' own sizing on CUDA, the workload's on CPU."""
    from transformers import ContinuousBatchingConfig

    if device.startswith("cuda"):
        return ContinuousBatchingConfig(seed=seed)
    longest = max(len(p) for p in prompts) + max_new
    pages = -(-longest // CPU_PAGE) * min(len(prompts), CPU_ROWS)
    return ContinuousBatchingConfig(page_size=CPU_PAGE, num_blocks=pages, max_batch_tokens=CPU_BATCH_TOKENS,
                                    seed=seed)


def generation_config(model, tokenizer, params: Params):
    """Gives the model's own generation config with the request's settings, as `generate(**kwargs)` would merge them.

    Raises GenvalError when that config asks for logits processors continuous batching drops
    (transformers marks them `supports_continuous_batching = False`: min_new_tokens,
    repetition_penalty, ...): the texts would then silently differ from the batched engine's.
    """
    import copy

    from genval.errors import GenvalError

    config = copy.deepcopy(model.generation_config)
    sampled = params.temperature > 0
    config.update(max_new_tokens=params.max_tokens, do_sample=sampled, pad_token_id=tokenizer.pad_token_id,
                  temperature=params.temperature if sampled else None, top_p=params.top_p if sampled else None,
                  top_k=0 if sampled else None)
    try:
        processors = model._get_logits_processor(config)  # what generate_batch builds (continuous_api.py)
    except (AttributeError, TypeError):
        processors = []
    dropped = [type(p).__name__ for p in processors if getattr(p, "supports_continuous_batching", None) is False]
    if dropped:
        raise GenvalError(f"model '{model.name_or_path}': 'engine: continuous' would drop {', '.join(dropped)} that "
                          "its generation config asks for (transformers' continuous batching does not support them); "
                          "use 'engine: batched'")
    return config


def generate(model, tokenizer, device: str, params: Params, prompts: list[list[int]]) -> list[dict]:
    """Gives, per prompt, {'tokens': generated ids, 'latency_s': its queued → finished time, 'error': str | None}.

    The caller sends at most CHUNK prompts a call, so that answers are cached as each call ends.
    """
    import torch

    config = generation_config(model, tokenizer, params)
    sampled = params.temperature > 0
    cb = cache_config(device, prompts, params.max_tokens, params.seed if sampled else None)
    with torch.inference_mode():
        found = model.generate_batch(inputs=prompts, generation_config=config, continuous_batching_config=cb,
                                     warmup=device.startswith("cuda"))
    out = []
    # a fresh manager names requests req_0, req_1, … in input order; a missing one failed inside the engine
    for r in (found.get(f"req_{i}") for i in range(len(prompts))):
        if r is None:
            out.append({"tokens": [], "latency_s": None, "error": "continuous batching lost this request"})
        else:
            done = r.lifespan[1] if r.lifespan[1] > 0 else None
            out.append({"tokens": list(r.generated_tokens), "error": r.error,
                        "latency_s": (done - r.created_time) if done is not None else None})
    return out
