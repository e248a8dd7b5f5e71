"""Models the caller holds in memory (a training loop's student), named in a run config like a model on disk.

`hold(name, model, tokenizer)` gives the name (`memory:<name>`) a config's `hf` model can carry
as its `model`; `genval.models.load_backend` then gives a backend over the held objects instead
of loading weights. The held model changes as it trains, so its answers are never cached (the
request cache keys an answer by the model's fingerprint, which a changing model lacks): every
evaluation asks it afresh, and its calls are timed like any live engine's.
"""

from __future__ import annotations

import copy

from genval.models.hf import HFBackend

PREFIX = "memory:"
_HELD: dict[str, tuple[object, object]] = {}


def hold(name: str, model, tokenizer) -> str:
    """Keeps `model` and `tokenizer` under `name`; gives what a config's `model:` says to use them."""
    _HELD[PREFIX + name] = (model, tokenizer)
    return PREFIX + name


def release(name: str) -> None:
    """Forgets the model held under `name` (or `memory:<name>`)."""
    _HELD.pop(name if name.startswith(PREFIX) else PREFIX + name, None)


def held(config) -> tuple[object, object] | None:
    """Gives (model, tokenizer) when `config` is an hf model config naming a held model, else None."""
    if getattr(config, "backend", None) != "hf":
        return None
    return _HELD.get(config.model)


class HeldBackend(HFBackend):
    """The hf backend over a model and tokenizer already in memory: nothing loaded, nothing cached."""

    uses_cache = False

    def __init__(self, config, model, tokenizer):
        super().__init__(config)
        self._held = (model, tokenizer)

    @property
    def live(self) -> bool:
        return True  # computed now (not read from a file), so its calls are timed

    def fingerprint(self) -> str:
        return f"hf:{self.config.model}"

    def load(self) -> None:
        if self.model is not None:
            return
        model, tokenizer = self._held
        # Where the Trainer keeps it; the tokenizer a copy: generation pads on the left, and the training
        # loop's collator keeps its own side.
        self.attach(model, copy.deepcopy(tokenizer), str(next(model.parameters()).device))

    def close(self) -> None:
        self.model = None  # the caller's model stays theirs: nothing freed here


def backend(config) -> HeldBackend | None:
    """Gives the backend over the held model `config` names, or None when it names none."""
    found = held(config)
    return HeldBackend(config, *found) if found is not None else None
