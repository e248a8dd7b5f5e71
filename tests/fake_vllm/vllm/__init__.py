"""A stand-in `vllm` package for tests: vLLM 0.33's offline API, strict about how it is called.

Only the surface genval uses: `LLM(model=…, …)`, `LLM.generate(prompts, sampling_params)`,
`LLM.chat(messages, sampling_params)`, `LLM.get_tokenizer()`, `SamplingParams`,
`StructuredOutputsParams` (in `vllm.sampling_params`), and `RequestOutput` / `CompletionOutput`
/ `Logprob` / `RequestStateStats` as results. A wrong keyword raises TypeError as the real
classes do; the removed `guided_*` fields are rejected; `max_tokens` defaults to 16. The
"model" answers a fixed token stream, so tests can tell exactly what the caller asked for
(max_tokens, stop, logprobs, schema) from what comes back; only `prompt_logprobs` come from the
real causal LM in the model folder (a forward pass through transformers), so label scores are
checked against the model's own logits. `AsyncEngineArgs` / `AsyncLLMEngine` (vllm.engine.arg_utils)
are the engine Ray's `ray.data.llm` processor drives. Put this folder
on sys.path only inside the vLLM tests.
"""

from vllm import outputs, sampling_params  # noqa: F401  (Ray reads vllm.outputs.RequestOutput and
# vllm.sampling_params.StructuredOutputsParams as attributes)
from vllm.engine.arg_utils import AsyncEngineArgs, AsyncLLMEngine
from vllm.entrypoints import LLM
from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import SamplingParams

__version__ = "0.33.0"
__all__ = ["LLM", "SamplingParams", "RequestOutput", "CompletionOutput", "AsyncEngineArgs", "AsyncLLMEngine"]
