"""`hf` generation, both engines, against the loop a user would otherwise write: one `model.generate` per example.

All sides run the same random-weight Llama over the same prompts, greedy, with a fixed
output length (no end token in the generation config, so no row stops early), and must give the
same texts. genval's `engine: batched` (length-sorted, left-padded batches) and `engine:
continuous` (transformers' generate_batch over a paged cache) are timed after one warm-up
run each. Model loading is outside every clock. Prints a table.

    python benchmarks/generation.py                 # CPU (1 thread), a ~2.5M-parameter model
    python benchmarks/generation.py --device cuda   # GPU, a ~110M-parameter model
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402

from genval.config import HFModel  # noqa: E402
from genval.models.base import Params, Request  # noqa: E402
from genval.models.hf import HFBackend  # noqa: E402
from tests.tiny_models import SENTENCES, train_tokenizer  # noqa: E402

SIZES = {  # hidden, layers, intermediate: ~4M parameters on CPU, ~110M on the GPU
    "cpu": (192, 4, 768),
    "cuda": (768, 12, 3072),
}


def build_model(folder: Path, device: str, max_new: int) -> Path:
    """Gives the folder of a seeded random-weight Llama whose generation length is fixed at `max_new`."""
    hidden, layers, inter = SIZES[device]
    # Room for every merge the sentences allow: ~1.2 tokens per word, as production tokenizers give
    # for English (the tests' 300-token vocabulary spends ~4 tokens a word and inflates the prompts).
    tok = train_tokenizer(vocab_size=1000)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                         num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=1024,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)  # well-separated greedy choices: padding cannot flip an argmax
    # Fixed output length on every side: no end token (continuous batching does not take min_new_tokens)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def make_prompts(n: int) -> list[str]:
    """Gives n prompts of varied length built from the tokenizer's sentences."""
    return [" ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 4)) for i in range(n)]


def best_of(repeat: int, run) -> tuple[list[str], float]:
    """Gives the texts and the fastest of `repeat` timed runs (timeit's rule: the minimum is the least disturbed)."""
    best, texts = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        texts = run()
        best = min(best, time.perf_counter() - started)
    return texts, best


def baseline(folder: Path, prompts: list[str], max_new: int, device: str, repeat: int) -> tuple[list[str], float]:
    """Gives the texts and seconds of a plain per-example `model.generate` loop over `prompts`."""
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(device).eval()

    def run():
        texts = []
        with torch.inference_mode():
            for prompt in prompts:
                enc = tok(prompt, return_tensors="pt").to(device)
                out = model.generate(**enc, max_new_tokens=max_new, do_sample=False,
                                     pad_token_id=tok.pad_token_id)
                texts.append(tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
        if device == "cuda":
            torch.cuda.synchronize()
        return texts

    return best_of(repeat, run)


def genval_hf(folder: Path, prompts: list[str], max_new: int, device: str, batch_size,
              repeat: int, engine: str = "batched") -> tuple[list[str], float, int]:
    """Gives the texts, seconds and batch size of genval's hf backend (`engine`) over the same prompts."""
    backend = HFBackend(HFModel(backend="hf", model=str(folder), device=device, dtype="float32", batch_size=batch_size,
                                engine=engine))
    backend.load()
    requests = [Request(id=str(i), prompt=p, params=Params(max_tokens=max_new)) for i, p in enumerate(prompts)]

    def run():
        done = {c.id: c for c in backend.generate(requests)}
        if device == "cuda":
            torch.cuda.synchronize()
        return [done[str(i)].text for i in range(len(prompts))]

    run()  # warm-up: kernels, allocator, (continuous) CUDA graphs

    texts, seconds = best_of(repeat, run)
    return texts, seconds, backend.batch_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--prompts", type=int, default=None, help="default: 64 on CPU, 512 on the GPU")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", default=None, help="an int or 'auto' (default: 32 on CPU, auto on the GPU)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side; the fastest counts (default: 3)")
    parser.add_argument("--baseline-prompts", type=int, default=None,
                        help="time the per-example loop on the first N prompts only and apply its rate (default: all)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default on CPU: 1, so a shared machine's contention does not swamp the ratio)")
    args = parser.parse_args()
    threads = args.threads or (1 if args.device == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("--device cuda: no CUDA device here", file=sys.stderr)
            return 2
        torch.backends.cuda.matmul.allow_tf32 = False  # the same float32 math on both sides
        torch.backends.cudnn.allow_tf32 = False
    n = args.prompts or (64 if args.device == "cpu" else 512)
    batch = args.batch_size or ("32" if args.device == "cpu" else "auto")
    batch = batch if batch == "auto" else int(batch)
    prompts = make_prompts(n)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_model(Path(tmp), args.device, args.max_new_tokens)
        params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(folder).parameters())
        ours, ours_s, used = genval_hf(folder, prompts, args.max_new_tokens, args.device, batch, args.repeat)
        flow, flow_s, _ = genval_hf(folder, prompts, args.max_new_tokens, args.device, batch, args.repeat,
                                    engine="continuous")
        k = min(args.baseline_prompts or n, n)  # the loop's time is per prompt: a subset gives its rate
        theirs, theirs_s = baseline(folder, prompts[:k], args.max_new_tokens, args.device, args.repeat)
        theirs_s *= n / k
    same = sum(a == b for a, b in zip(ours, theirs))
    assert same == k, f"outputs differ on {k - same} of {k} prompts"
    same_flow = sum(a == b for a, b in zip(flow, ours))
    assert same_flow == n, f"continuous outputs differ from batched on {n - same_flow} of {n} prompts"
    tokens = len(prompts) * args.max_new_tokens
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"params={params / 1e6:.1f}M prompts={len(prompts)} new_tokens={args.max_new_tokens} batch_size={used} "
          f"best of {args.repeat}; same outputs on every side ({same}/{k} against the loop, {same_flow}/{n} "
          f"between engines)" + (f"; the loop timed on {k} prompts, its rate applied to {n}" if k < n else ""))
    print("| engine | seconds | tokens/s | against the per-example loop |\n| --- | --- | --- | --- |")
    print(f"| per-example `model.generate` loop | {theirs_s:.2f} | {tokens / theirs_s:,.0f} | ×1 |")
    print(f"| genval hf, `engine: batched` | {ours_s:.2f} | {tokens / ours_s:,.0f} | ×{theirs_s / ours_s:.1f} |")
    print(f"| genval hf, `engine: continuous` | {flow_s:.2f} | {tokens / flow_s:,.0f} | ×{theirs_s / flow_s:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
