"""`SamplingParams` and `StructuredOutputsParams` as vLLM 0.33 defines them (the fields genval may touch)."""

from pydantic.dataclasses import dataclass


@dataclass
class StructuredOutputsParams:
    """One structured-output constraint (vLLM ≥ 0.12; replaces the removed guided_* fields).

    As vLLM's own: a pydantic dataclass (so `json` must be a str or a dict), and exactly one
    kind of constraint — none, or two, is an error.
    """

    json: str | dict | None = None
    regex: str | None = None
    choice: list[str] | None = None
    grammar: str | None = None
    json_object: bool | None = None
    disable_any_whitespace: bool = False
    disable_additional_properties: bool = False
    whitespace_pattern: str | None = None
    structural_tag: str | None = None

    def __post_init__(self):
        kinds = [self.json is not None, self.regex is not None, self.choice is not None,
                 self.grammar is not None, self.json_object is not None, self.structural_tag is not None]
        if sum(kinds) > 1:
            raise ValueError("You can only use one kind of structured outputs constraint but multiple are specified")
        if sum(kinds) < 1:
            raise ValueError("You must use one kind of structured outputs constraint but none are specified")


class SamplingParams:
    """Keyword-only, like the real msgspec struct; unknown keywords (guided_json, …) raise TypeError."""

    FIELDS = {
        "n": 1, "presence_penalty": 0.0, "frequency_penalty": 0.0, "repetition_penalty": 1.0,
        "temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "seed": None, "stop": None,
        "stop_token_ids": None, "ignore_eos": False, "max_tokens": 16, "min_tokens": 0, "logprobs": None,
        "prompt_logprobs": None, "detokenize": True, "skip_special_tokens": True,
        "spaces_between_special_tokens": True, "include_stop_str_in_output": False,
        "structured_outputs": None, "logit_bias": None, "allowed_token_ids": None, "extra_args": None,
    }

    def __init__(self, **kwargs):
        unknown = sorted(set(kwargs) - set(self.FIELDS))
        if unknown:
            raise TypeError(f"Unexpected keyword argument '{unknown[0]}'")
        for name, default in self.FIELDS.items():
            setattr(self, name, kwargs.get(name, default))
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}.")
        if self.temperature < 0:
            raise ValueError("temperature must be non-negative")
        if self.structured_outputs is not None and not isinstance(self.structured_outputs, StructuredOutputsParams):
            raise TypeError("structured_outputs must be a StructuredOutputsParams")
        self.explicit = set(kwargs)
