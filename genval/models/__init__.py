"""Text generation behind one interface; `load_backend` builds the engine a model config names."""

from __future__ import annotations

from genval.models.base import Backend, CallStats, Completion, Params, Request, generate_cached

__all__ = ["Backend", "CallStats", "Completion", "Params", "Request", "generate_cached", "load_backend"]


def load_backend(model, labels=None) -> Backend:
    """Gives the backend for a model config (ReplayModel, HFModel, VLLMModel, OpenAIModel).

    Engines are imported here, lazily, so that a run that replays never imports torch or vLLM.
    """
    kind = model.backend
    if kind == "replay":
        from genval.models.replay import ReplayBackend

        return ReplayBackend(model.path, labels=labels)
    if kind == "hf":
        from genval.models import memory
        from genval.models.hf import HFBackend

        held = memory.backend(model)  # a model the caller holds in memory (genval.training), if it names one
        if held is not None:
            return held

        return HFBackend(model)
    if kind == "vllm":
        from genval.models.vllm import VLLMBackend

        return VLLMBackend(model)
    if kind == "openai":
        from genval.models.openai import OpenAIBackend

        return OpenAIBackend(model)
    raise ValueError(f"unknown backend {kind!r}")  # the config's validation makes this unreachable
