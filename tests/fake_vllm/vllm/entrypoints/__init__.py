from vllm.entrypoints.llm import LLM

__all__ = ["LLM"]
