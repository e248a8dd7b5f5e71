"""The `hf` backend: a transformers causal LM, batched, length-sorted and left-padded.

Requests are grouped by their parameters, sorted by prompt length (longest first, so an
out-of-memory batch shows up at once and a halved batch size serves the rest) and
generated in batches. Latency: every request in a batch waits for the whole batch, so each
gets the batch's wall time as its `latency_s` — what a caller of a batch server would see;
throughput (`ops.json`) is measured over the pass's wall time at this batch size, not from these.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Iterator

from genval.errors import GenvalError
from genval.models import hf_continuous
from genval.models.base import Backend, Completion, Params, Request
from genval.models.labels import label_loglik_batch, normalise
from genval.models.ops import peak_memory, reset_peak_memory

AUTO_BATCH_START = {"cuda": 64, "cpu": 16}
# Padded tokens per label-scoring forward (rows × the longest row). Measured on 2 CPU cores
# (benchmarks/labels.py): past ~4k tokens a bigger forward is no faster; a GPU wants more.
LABEL_TOKENS = {"cuda": 32768, "cpu": 4096}
# Label-only requests under `batch_size: auto` start at this many examples a batch: their
# memory is bounded by LABEL_TOKENS per forward, not by the number of examples.
LABEL_BATCH = 256


def _model_fingerprint(name: str) -> str:
    """Gives a digest of a local model folder (small files whole, big weight files by name and size), or the id."""
    path = Path(name)
    if not path.is_dir():
        return name
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        size = file.stat().st_size
        # Hashing gigabytes of weights on every run would cost minutes; below 64 MiB it is cheap
        # and catches a re-initialised test model of the same shape.
        if size <= 64 << 20:
            digest.update(hashlib.sha256(file.read_bytes()).digest())
        else:
            digest.update(f"{size}:{file.stat().st_mtime_ns}".encode())
    return f"{path.resolve()}#{digest.hexdigest()[:16]}"


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


class _StopOnStrings:
    """A stopping criterion: a row is done once its generated text contains a stop string."""

    def __init__(self, tokenizer, stop: tuple[str, ...], prompt_len: int):
        self.tokenizer, self.stop, self.prompt_len = tokenizer, stop, prompt_len

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len:], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop) for t in texts], device=input_ids.device)


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Gives the text up to the first stop string (excluded, as OpenAI and vLLM do) and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def resolve_device(requested: str, model: str) -> str:
    """Gives the device a model runs on: CUDA for 'auto' when present; a CUDA device asked for must exist."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise GenvalError(f"model '{model}': device '{requested}' but CUDA is not available "
                          "(set 'device: auto' or 'cpu')")
    return requested


def load_pretrained(config):
    """Gives (model, tokenizer) loaded with transformers as an `hf` model config says, or a one-line error."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = "auto" if config.dtype == "auto" else getattr(torch, config.dtype)
    kwargs = {"revision": config.revision, "trust_remote_code": config.trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(config.model, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(config.model, dtype=dtype, **kwargs)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenvalError(f"model '{config.model}': cannot load it with transformers ({first}); "
                          "check 'model' (a Hugging Face id or a local folder)") from None
    return model, tokenizer


def prepare(model, tokenizer, device: str):
    """Gives (model, tokenizer, device): the model on `device` in eval mode, the tokenizer padding on the left.

    Decoder-only models continue from the right edge, so prompts are left-padded; a tokenizer
    without a pad token pads with its end-of-sequence token.
    """
    model.to(device).eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, device


def eos_ids(model) -> set[int]:
    """Gives the token ids that end a generation (the model's generation config may list several)."""
    eos = model.generation_config.eos_token_id
    return set(eos if isinstance(eos, list) else [eos]) - {None}


def finish(tokenizer, row: list[int], eos: set[int], stop: tuple[str, ...]) -> tuple[str, int]:
    """Gives (text, completion tokens) of one generated row: up to its end token, cut at the first stop string.

    The end token counts as generated; padding after a finished row does not. A text cut at a
    stop string counts the tokens of what is left.
    """
    n = next((k + 1 for k, t in enumerate(row) if t in eos), None)
    row = row[:n] if n is not None else [t for t in row if t != tokenizer.pad_token_id]
    text, stopped = cut_at_stop(tokenizer.decode(row, skip_special_tokens=True), stop)
    count = len(tokenizer(text, add_special_tokens=False)["input_ids"]) if stopped else len(row)
    return text, count


class HFBackend(Backend):
    """A transformers model by id or local path; loaded on first use, so a fully cached run never loads it."""

    name = "hf"

    def __init__(self, config):
        self.config = config
        self.model = None
        self.tokenizer = None
        self.device = None
        self.batch_size = config.batch_size if isinstance(config.batch_size, int) else None
        self._fingerprint = None
        self._label_batch = LABEL_BATCH  # examples per batch of label-only requests under `batch_size: auto`

    # --- loading ------------------------------------------------------------------------------
    def load(self) -> None:
        """Loads model and tokenizer once; a missing model is the user's mistake, said in one line."""
        if self.model is not None:
            return
        device = resolve_device(self.config.device, self.config.model)
        self._free()  # whatever an earlier role left behind is not this model's memory
        reset_peak_memory(device)
        model, tokenizer = load_pretrained(self.config)
        self.attach(model, tokenizer, device)

    def attach(self, model, tokenizer, device: str) -> None:
        """Makes this backend use a model and tokenizer already in memory (moved to `device`, set for batching)."""
        self.model, self.tokenizer, self.device = prepare(model, tokenizer, device)
        if self.config.chat_template is True and not self.tokenizer.chat_template:
            raise GenvalError(f"model '{self.config.model}': 'chat_template: true' but its tokenizer has no chat "
                              "template (set 'chat_template: false' to send the raw prompt)")

    def uses_chat(self) -> bool:
        return self.config.chat_template is not False and bool(self.tokenizer.chat_template)

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            c = self.config
            key = {"model": _model_fingerprint(c.model), "revision": c.revision, "dtype": c.dtype,
                   "chat_template": c.chat_template}
            if c.engine != "batched":  # batched answers cached before engines existed keep their keys
                key["engine"] = c.engine
            self._fingerprint = "hf:" + json.dumps(key, sort_keys=True)
        return self._fingerprint

    # --- prompts --------------------------------------------------------------------------
    def render(self, request: Request) -> str:
        """Gives the text the model continues: the chat template applied when used, else system + prompt."""
        if self.uses_chat():
            messages = ([{"role": "system", "content": request.system}] if request.system else [])
            messages.append({"role": "user", "content": request.prompt})
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{request.system}\n\n{request.prompt}" if request.system else request.prompt

    def encode(self, text: str) -> list[int]:
        # A chat template writes its own special tokens; a raw prompt gets the tokenizer's (e.g. BOS).
        return self.tokenizer(text, add_special_tokens=not self.uses_chat())["input_ids"]

    # --- generation -----------------------------------------------------------------------
    def generate(self, requests: list[Request]) -> Iterator[Completion]:
        self.load()
        groups: dict[tuple[Params, bool], list[Request]] = {}
        for req in requests:  # label-only requests batch apart: their memory is the label forwards'
            groups.setdefault((req.params, req.generate), []).append(req)
        for (params, _), group in groups.items():
            encoded = [(req, self.render(req)) for req in group]
            encoded = [(req, text, self.encode(text)) for req, text in encoded]
            encoded.sort(key=lambda item: -len(item[2]))
            if self.config.engine == "continuous" and encoded[0][0].generate and params.logprobs is None:
                yield from self._generate_continuous(params, encoded)
            else:
                yield from self._generate_sorted(params, encoded)

    def _generate_continuous(self, params: Params, encoded: list) -> Iterator[Completion]:
        """Yields the completions of transformers' continuous batching, CHUNK prompts a call (hf_continuous)."""
        eos = eos_ids(self.model)
        for start in range(0, len(encoded), hf_continuous.CHUNK):
            chunk = encoded[start:start + hf_continuous.CHUNK]
            found = hf_continuous.generate(self.model, self.tokenizer, self.device, params, [ids for _, _, ids in chunk])
            labelled = [i for i, (req, _, _) in enumerate(chunk) if req.labels]
            items = [(chunk[i][1], chunk[i][0].labels, chunk[i][0].label_delimiter) for i in labelled]
            probs = dict(zip(labelled, map(normalise, label_loglik_batch(
                self.model, self.tokenizer, items, self.uses_chat(), tokens=LABEL_TOKENS[self._kind()]))))
            for i, ((req, _, ids), got) in enumerate(zip(chunk, found)):
                if got["error"]:
                    yield Completion(id=req.id, error=f"continuous batching: {got['error']}")
                    continue
                text, count = finish(self.tokenizer, got["tokens"], eos, params.stop)
                yield Completion(id=req.id, text=text, prompt_tokens=len(ids), completion_tokens=count,
                                 latency_s=got["latency_s"], label_probs=probs.get(i))

    def _generate_sorted(self, params: Params, encoded: list) -> Iterator[Completion]:
        """Yields each batch's completions; with `batch_size: auto`, halves the size on out-of-memory and keeps it."""
        auto = self.config.batch_size == "auto"
        labels_only = not encoded[0][0].generate
        size = self._label_batch if labels_only and auto else self.batch_size or AUTO_BATCH_START[self._kind()]
        start = 0
        while start < len(encoded):
            batch = encoded[start:start + size]
            try:
                done = self._run_batch(params, batch)
            except Exception as exc:
                if not _is_oom(exc):
                    raise
                self._free()
                if not auto or size == 1:  # nothing smaller to try: these requests fail, the rest go on
                    done = [Completion(id=r.id, error=f"out of memory at batch size {size}") for r, _, _ in batch]
                else:
                    size //= 2
                    while size > 1 and size >= len(batch):
                        size //= 2  # a size that holds the whole failing batch would fail the same way
                    continue
            if auto and labels_only:
                self._label_batch = size
            elif auto:
                self.batch_size = size
            start += len(batch)
            yield from done

    def _kind(self) -> str:
        return "cuda" if self.device.startswith("cuda") else "cpu"

    def _free(self) -> None:
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _run_batch(self, params: Params, batch: list) -> list[Completion]:
        """Gives the completions of one batch (texts and/or label probabilities), timed as one call."""
        import torch

        started = time.perf_counter()
        texts: list[tuple[str, int, list | None]] = [("", 0, None)] * len(batch)
        to_generate = [i for i, (req, _, _) in enumerate(batch) if req.generate]
        if to_generate:
            for i, result in zip(to_generate, self._generate_texts(params, [batch[i][2] for i in to_generate])):
                texts[i] = result
        labelled = [i for i, (req, _, _) in enumerate(batch) if req.labels]
        probs = {}
        if labelled:  # every example's label rows together, in forwards of at most LABEL_TOKENS padded tokens
            items = [(batch[i][1], batch[i][0].labels, batch[i][0].label_delimiter) for i in labelled]
            found = label_loglik_batch(self.model, self.tokenizer, items, self.uses_chat(),
                                       tokens=LABEL_TOKENS[self._kind()])
            probs = {i: normalise(loglik) for i, loglik in zip(labelled, found)}
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        latency = time.perf_counter() - started
        return [
            Completion(id=req.id, text=texts[i][0], prompt_tokens=len(ids), completion_tokens=texts[i][1],
                       latency_s=latency, label_probs=probs.get(i), top_logprobs=texts[i][2])
            for i, (req, _, ids) in enumerate(batch)
        ]

    def _generate_texts(self, params: Params, prompts: list[list[int]]) -> list[tuple[str, int, list | None]]:
        """Gives (text, completion tokens, top log-probabilities per token or None) for prompts generated together."""
        import torch
        from transformers import StoppingCriteriaList

        tok = self.tokenizer
        padded = tok.pad({"input_ids": prompts}, padding=True, return_tensors="pt").to(self.device)
        width = padded["input_ids"].shape[1]
        kwargs = {"max_new_tokens": params.max_tokens, "pad_token_id": tok.pad_token_id}
        if params.temperature > 0:
            torch.manual_seed(params.seed)  # a sampled batch is reproducible for the same batch and order
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if params.stop:
            kwargs["stopping_criteria"] = StoppingCriteriaList([_StopOnStrings(tok, params.stop, width)])
        if params.logprobs is not None:
            # Raw logits (before temperature or top-p), as OpenAI's and vLLM's logprobs are.
            kwargs.update(output_logits=True, return_dict_in_generate=True)
        with torch.inference_mode():
            out = self.model.generate(**padded, **kwargs)
        sequences = out.sequences if params.logprobs is not None else out
        results = []
        eos = eos_ids(self.model)
        for r, row in enumerate(sequences[:, width:].tolist()):
            text, count = finish(tok, row, eos, params.stop)
            top = self._top_logprobs(out.logits, r, count, params.logprobs) if params.logprobs is not None else None
            results.append((text, count, top))
        return results

    def _top_logprobs(self, logits, row: int, steps: int, k: int) -> list[dict[str, float]]:
        """Gives, per generated token of one row, its top-k tokens (decoded) and their log-probabilities."""
        import torch

        out = []
        for step in logits[:steps]:
            logp = torch.log_softmax(step[row].float(), dim=-1)
            values, ids = torch.topk(logp, max(k, 1))
            top: dict[str, float] = {}
            for v, i in zip(values.tolist(), ids.tolist()):
                # Two ids can decode to one string (e.g. partial UTF-8 bytes); keep the likelier.
                top.setdefault(self.tokenizer.decode([i]), v)
            out.append(top)
        return out

    # --- what the engine knows ------------------------------------------------------------
    def batch_settings(self) -> dict:
        return {"batch_size": self.batch_size if self.batch_size is not None else self.config.batch_size}

    def info(self) -> dict:
        if self.model is None:
            return {}
        params = sum(p.numel() for p in self.model.parameters())
        weight_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        return {"parameters": int(params), "weight_bytes": int(weight_bytes), "device": self.device,
                "batch_size": self.batch_size, **peak_memory(self.device)}

    def close(self) -> None:
        self.model = None
        self._free()
