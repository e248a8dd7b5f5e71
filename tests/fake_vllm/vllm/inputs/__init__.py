"""`TextPrompt` and `TokensPrompt` (TypedDicts, re-exported from vllm.inputs before vLLM 0.19)."""

from typing import Any, TypedDict


class TextPrompt(TypedDict, total=False):
    prompt: str
    multi_modal_data: Any
    mm_processor_kwargs: Any
    multi_modal_uuids: Any
    cache_salt: str


class TokensPrompt(TypedDict, total=False):
    prompt_token_ids: list
    multi_modal_data: Any
    mm_processor_kwargs: Any
    multi_modal_uuids: Any
    cache_salt: str
