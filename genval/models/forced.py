"""Teacher forcing: each model's next-token distributions along the teacher's output (for token fidelity).

The teacher's output text is tokenised (the outputs table holds text, as every engine gives it)
and appended to each model's own rendering of the prompt — its chat template, as it was asked —
so that, at each token of the output, each model's distribution over that token is read in one
forward pass, without generating. The same tokenizer must serve both models (`same_tokens`).

Two kinds of engine:
- `HFForced` (transformers) gives the whole vocabulary. The model's body runs once per batch; its
  output layer is applied to chunks of positions, so no more than a chunk of positions ×
  vocabulary log-probabilities exists at once — never vocabulary × sequence × batch.
- `VLLMForced` (vLLM's offline engine) gives the k likeliest tokens per position
  (`SamplingParams(prompt_logprobs=k)`, as vLLM's own label scoring and lm-evaluation-harness's
  vLLM backend read prompt log-probabilities); vLLM caps k at its `max_logprobs` (20 by default).
An OpenAI-compatible chat server cannot score a continuation it is given, and a replay file has no
model: token fidelity refuses them (`engine`).
"""

from __future__ import annotations

from dataclasses import dataclass

from genval.errors import GenvalError
from genval.models.base import Request

# Bytes held per position while a chunk's distributions are compared: each model's logits and log-softmax rows
# and the KL's temporaries (p, log p − log q, their product), float32 and vocabulary-long.
BYTES_PER_LOGIT = 32


@dataclass(frozen=True)
class Forced:
    """One teacher-forced sequence: a model's prompt ids and the continuation's ids after them."""

    prompt: tuple[int, ...]
    continuation: tuple[int, ...]

    @property
    def ids(self) -> list[int]:
        return [*self.prompt, *self.continuation]

    def targets(self) -> list[tuple[int, int]]:
        """Gives (index in the continuation, index of the position whose output predicts it); a continuation
        token at the very start of an empty prompt has no position before it."""
        n = len(self.prompt)
        return [(j, n + j - 1) for j in range(len(self.continuation)) if n + j >= 1]


def chunk_positions(vocabulary: int, chunk_mib: int) -> int:
    """Gives how many positions' distributions are compared at once within `chunk_mib` MiB (at least 1)."""
    return max(1, (chunk_mib << 20) // (BYTES_PER_LOGIT * vocabulary))


class HFForced:
    """A transformers causal LM's full next-token log-probabilities along given sequences."""

    exact = True

    def __init__(self, backend):
        backend.load()
        self.backend = backend
        self.model, self.tokenizer = backend.model, backend.tokenizer
        self.vocabulary_size = len(self.tokenizer)
        self._checked = False

    def fingerprint(self) -> str:
        return self.backend.fingerprint()

    def vocabulary(self) -> dict[str, int]:
        return self.tokenizer.get_vocab()

    def sequence(self, request: Request, text: str) -> Forced:
        """Gives the prompt as this model was asked it, then `text`'s tokens (no special tokens added)."""
        prompt = self.backend.encode(self.backend.render(request))
        return Forced(tuple(prompt), tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"]))

    def hidden(self, seqs: list[Forced], padding: str = "right"):
        """Gives the last hidden states of a padded batch (batch × length × width) and, per sequence, the row's
        offset (the padding before its first token)."""
        import torch

        width = max(len(s.ids) for s in seqs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        rows, mask, offsets = [], [], []
        for s in seqs:
            fill = width - len(s.ids)
            before, after = (fill, 0) if padding == "left" else (0, fill)
            rows.append([pad] * before + s.ids + [pad] * after)
            mask.append([0] * before + [1] * len(s.ids) + [0] * after)
            offsets.append(before)
        device = self.model.device
        ids, mask = torch.tensor(rows, device=device), torch.tensor(mask, device=device)
        # Positions count real tokens only, as generation numbers them: left padding shifts nothing.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            states = self.model.base_model(input_ids=ids, attention_mask=mask, position_ids=positions)
        self._check(seqs[0])
        return states.last_hidden_state, offsets

    def log_probs(self, states):
        """Gives float32 log-softmax over the tokenizer's vocabulary of the output layer applied to `states` (n × width)."""
        import torch

        with torch.inference_mode():
            logits = self._logits(states)[..., :self.vocabulary_size].float()
            return torch.log_softmax(logits, dim=-1)

    def _logits(self, states):
        """The output layer and what some architectures apply after it (Gemma's soft cap, Cohere's and
        Granite's scales), read from the model's config; `_check` proves the result equals the model's own."""
        import torch

        logits = self.model.get_output_embeddings()(states)
        config = self.model.config
        cap = getattr(config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        if getattr(config, "logit_scale", None):
            logits = logits * config.logit_scale
        if getattr(config, "logits_scaling", None):
            logits = logits / config.logits_scaling
        return logits

    def _check(self, seq: Forced) -> None:
        """Checks once, on a few tokens, that the output layer over the body gives the model's own logits."""
        if self._checked:
            return
        import torch

        probe = torch.tensor([seq.ids[:8]], device=self.model.device)
        with torch.inference_mode():
            own = self.model(input_ids=probe).logits.float()
            ours = self._logits(self.model.base_model(input_ids=probe).last_hidden_state).float()
        scale = max(1.0, float(own.abs().max()))
        if own.shape != ours.shape or float((own - ours).abs().max()) > 1e-3 * scale:
            raise GenvalError(f"token_fidelity: model {self.backend.config.model}: its logits are not its output "
                              "layer applied to its last hidden state (an architecture token fidelity does not "
                              "know); drop token_fidelity for this model")
        self._checked = True

    def top_k(self, seqs: list[Forced], k: int, batch_size: int, chunk_mib: int) -> list[list[dict[int, float]]]:
        """Gives, per sequence and continuation token, the k likeliest tokens' log-probabilities (id → logprob)."""
        import torch

        out: list[list[dict[int, float]]] = [[{} for _ in s.continuation] for s in seqs]
        chunk = chunk_positions(self.vocabulary_size, chunk_mib)
        for batch in batches(seqs, batch_size):
            states, offsets = self.hidden([seqs[i] for i in batch])
            where = [(i, j, r, offsets[r] + p) for r, i in enumerate(batch) for j, p in seqs[i].targets()]
            for lo in range(0, len(where), chunk):
                part = where[lo:lo + chunk]
                rows = torch.tensor([w[2] for w in part], device=states.device)
                cols = torch.tensor([w[3] for w in part], device=states.device)
                values, ids = torch.topk(self.log_probs(states[rows, cols]), k, dim=-1)
                for (i, j, _, _), v, t in zip(part, values.tolist(), ids.tolist()):
                    out[i][j] = dict(zip(t, v))
        return out


def batches(seqs: list[Forced], size: int) -> list[list[int]]:
    """Gives the sequences' indices in batches of `size`, longest first (the least padding, and an
    out-of-memory batch shows at once)."""
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i].ids))
    return [order[i:i + size] for i in range(0, len(order), size)]


def exact_fidelity(teacher: HFForced, student: HFForced, pairs: list[tuple[Forced, Forced]], batch_size: int = 8,
                   chunk_mib: int = 256, padding: str = "right") -> list[tuple[float, int, int]]:
    """Gives per (teacher's, student's) sequence pair: the summed KL(teacher ‖ student) over the continuation's
    tokens (nats), how many of them have the same top-1 token, and how many tokens were compared.

    KL(p ‖ q) = Σ_v p_v (log p_v − log q_v) per position (Hinton et al. 2015's distillation
    objective at temperature 1); the per-position values add up in float64. The batch is padded on `padding`'s side;
    the numbers do not depend on it beyond float rounding.
    """
    import torch

    sums = [[0.0, 0, 0] for _ in pairs]
    chunk = chunk_positions(max(teacher.vocabulary_size, student.vocabulary_size), chunk_mib)
    for batch in batches([t for t, _ in pairs], batch_size):
        t_states, t_off = teacher.hidden([pairs[i][0] for i in batch], padding)
        s_states, s_off = student.hidden([pairs[i][1] for i in batch], padding)
        where = []  # (pair, teacher row, teacher column, student column): one entry per compared token
        for r, i in enumerate(batch):
            t_seq, s_seq = pairs[i]
            s_at = dict(s_seq.targets())
            where += [(i, r, t_off[r] + p, s_off[r] + s_at[j]) for j, p in t_seq.targets() if j in s_at]
        for lo in range(0, len(where), chunk):
            part = where[lo:lo + chunk]
            rows = torch.tensor([w[1] for w in part], device=t_states.device)
            t_cols = torch.tensor([w[2] for w in part], device=t_states.device)
            s_rows = torch.tensor([w[1] for w in part], device=s_states.device)
            s_cols = torch.tensor([w[3] for w in part], device=s_states.device)
            lt = teacher.log_probs(t_states[rows, t_cols])
            ls = student.log_probs(s_states[s_rows, s_cols]).to(lt.device)
            if lt.shape[-1] != ls.shape[-1]:
                raise GenvalError(f"token_fidelity: the teacher's vocabulary has {lt.shape[-1]} tokens and the "
                                  f"student's {ls.shape[-1]}; token fidelity needs one tokenizer")
            kl = (lt.exp() * (lt - ls)).sum(-1)  # float32, as the logits are: within 1e-5 of float64 (tested)
            agree = lt.argmax(-1) == ls.argmax(-1)
            for (i, *_), d, a in zip(part, kl.tolist(), agree.tolist()):
                sums[i][0] += d
                sums[i][1] += int(a)
                sums[i][2] += 1
    return [tuple(s) for s in sums]


class VLLMForced:
    """vLLM's top-k prompt log-probabilities along given sequences (a TokensPrompt, `prompt_logprobs=k`)."""

    exact = False

    def __init__(self, backend):
        backend.load()
        self.backend = backend
        self.tokenizer = backend.llm.get_tokenizer()

    def fingerprint(self) -> str:
        return self.backend.fingerprint()

    def vocabulary(self) -> dict[str, int]:
        return self.tokenizer.get_vocab()

    def sequence(self, request: Request, text: str) -> Forced:
        """Gives the prompt as vLLM tokenises it (`LLM.chat`: the template's own special tokens; `LLM.generate`:
        the tokenizer's), then `text`'s tokens."""
        chat = self.backend.uses_chat()
        prompt = self.tokenizer(self.backend.render(request), add_special_tokens=not chat)["input_ids"]
        return Forced(tuple(prompt), tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"]))

    def top_k(self, seqs: list[Forced], k: int, batch_size: int, chunk_mib: int) -> list[list[dict[int, float]]]:
        """Gives, per sequence and continuation token, the k likeliest tokens' log-probabilities (id → logprob).

        `prompt_logprobs[p]` is the distribution that predicts prompt token p; vLLM adds the prompt's
        own token to the top k when it ranks lower, which is dropped here (rank > k).
        """
        params = self.backend._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=k)
        outputs = self.backend.llm.generate([{"prompt_token_ids": s.ids} for s in seqs], sampling_params=params,
                                            use_tqdm=False)
        out = []
        for seq, output in zip(seqs, outputs):
            found = [{} for _ in seq.continuation]
            for j, p in seq.targets():
                entry = output.prompt_logprobs[p + 1] or {}
                found[j] = {int(t): lp.logprob for t, lp in entry.items() if lp.rank is None or lp.rank <= k}
            out.append(found)
        return out


_ENGINES: dict[str, object] = {}
KEEP = 4  # engines kept loaded in a process (teacher and a few candidates), the oldest dropped first


def engine(model, role: str):
    """Gives the teacher-forcing engine of a role's model config, loaded once per process (a held model, which
    changes as it trains, afresh each time); refuses engines that cannot score a given continuation."""
    from genval.models import load_backend, memory

    if model.backend in ("replay", "openai"):
        raise GenvalError(refusal(model.backend, role))
    if memory.held(model) is not None:
        return HFForced(load_backend(model))
    key = model.model_dump_json()
    if key not in _ENGINES:
        while len(_ENGINES) >= KEEP:
            _ENGINES.pop(next(iter(_ENGINES)))
        backend = load_backend(model)
        _ENGINES[key] = HFForced(backend) if model.backend == "hf" else VLLMForced(backend)
    return _ENGINES[key]


def refusal(backend: str, role: str) -> str:
    """Gives the one-line reason token fidelity cannot run on a role's backend."""
    if backend == "replay":
        return (f"token_fidelity: role '{role}' is a replay file, which holds no model to read next-token "
                "distributions from; give it an hf or vllm model, or drop token_fidelity")
    said = ("its generation's log-probabilities are not kept in the outputs table" if role == "teacher" else
            "its chat API cannot score a continuation it is given (no teacher forcing)")
    return (f"token_fidelity: role '{role}' runs on backend 'openai': {said}; run the same model with backend hf "
            "or vllm for token fidelity, or drop it")


def release() -> None:
    """Drops every engine this module keeps loaded."""
    _ENGINES.clear()


def same_tokens(teacher, student, role: str) -> None:
    """Raises unless teacher and student share one vocabulary (token → id): token fidelity compares ids."""
    if teacher.vocabulary() != student.vocabulary():
        raise GenvalError(f"token_fidelity: role '{role}' and the teacher have different tokenizers; token fidelity "
                          "compares next-token distributions id by id and needs one tokenizer (drop the metric "
                          "for this pair, or distil with the teacher's tokenizer)")
