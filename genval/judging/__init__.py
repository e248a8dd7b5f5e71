"""The LLM judge: prompts from judges/*.yaml, verdicts parsed, agreement with human labels measured."""
