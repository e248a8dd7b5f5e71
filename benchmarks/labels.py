"""Label probabilities batched across examples against the path before it: one forward per example.

Both sides score the same (prompt, label) pairs with the same seeded random-weight Llama and
must give the same probabilities (within 1e-6). The baseline is genval's earlier `label_loglik`:
per example, one right-padded forward over its label rows and a log-softmax over every
position. genval: the `hf` backend's label path (`label_loglik_batch`): every example's rows
length-sorted into forwards of at most `LABEL_TOKENS` padded tokens, logits only where a label
is read. Model loading is outside both clocks; each side best of `--repeat`.

    python benchmarks/labels.py                   # CPU, 1 torch thread, 512 examples
    python benchmarks/labels.py --device cuda     # GPU, a ~110M-parameter model, 4,096 examples
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.generation import SIZES, best_of, make_prompts  # noqa: E402
from genval.config import HFModel  # noqa: E402
from genval.models.base import Request  # noqa: E402
from genval.models.hf import HFBackend  # noqa: E402
from genval.models.labels import continuation_ids, normalise  # noqa: E402
from tests.tiny_models import train_tokenizer  # noqa: E402

LABELS = ("billing", "shipping", "account", "technical", "fraud", "legal")


def build_model(folder: Path, device: str) -> Path:
    """Gives the folder of a seeded random-weight Llama (the generation benchmark's sizes)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, layers, inter = SIZES[device]
    tok = train_tokenizer(vocab_size=1000)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                         num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=1024,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def per_example(model, tokenizer, prompts: list[str]) -> list[dict[str, float]]:
    """genval's label path before batching: one forward per example over its label rows, full log-softmax."""
    out = []
    for context in prompts:
        pairs = [continuation_ids(tokenizer, context, label, False, " ") for label in LABELS]
        seqs = [ctx + cont for ctx, cont in pairs]
        width = max(len(s) for s in seqs)
        pad = tokenizer.pad_token_id
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=model.device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=model.device)
        with torch.inference_mode():
            logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        loglik = {}
        for row, (label, (ctx, cont)) in enumerate(zip(LABELS, pairs)):
            positions = torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1, device=model.device)
            loglik[label] = float(logprobs[row, positions, torch.tensor(cont, device=model.device)].sum())
        out.append(normalise(loglik))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--examples", type=int, default=None, help="default: 512 on CPU, 4,096 on the GPU")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-examples", type=int, default=None,
                        help="time the per-example loop on the first N examples only and apply its rate (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default on CPU: 1)")
    args = parser.parse_args()
    threads = args.threads or (1 if args.device == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device here", file=sys.stderr)
        return 2
    n = args.examples or (512 if args.device == "cpu" else 4096)
    prompts = [f"{p} . category :" for p in make_prompts(n)]
    requests = [Request(id=str(i), prompt=p, labels=LABELS, generate=False) for i, p in enumerate(prompts)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_model(Path(tmp), args.device)
        backend = HFBackend(HFModel(backend="hf", model=str(folder), device=args.device, dtype="float32",
                                    batch_size="auto"))
        backend.load()
        sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

        def ours():
            done = {c.id: c.label_probs for c in backend.generate(requests)}
            sync()
            return [done[str(i)] for i in range(n)]

        k = min(args.baseline_examples or n, n)  # the loop's time is per example: a subset gives its rate

        def theirs():
            found = per_example(backend.model, backend.tokenizer, prompts[:k])
            sync()
            return found

        ours()  # warm-up, both sides
        theirs()
        got, ours_s = best_of(args.repeat, ours)
        expected, theirs_s = best_of(args.repeat, theirs)
        theirs_s *= n / k
        params = sum(p.numel() for p in backend.model.parameters())
    diff = max(abs(a[x] - b[x]) for a, b in zip(got, expected) for x in LABELS)
    assert diff <= 1e-6, f"label probabilities differ by {diff}"
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"params={params / 1e6:.1f}M examples={n} labels={len(LABELS)} best of {args.repeat}"
          + (f"; the per-example loop timed on {k} examples, its rate applied to {n}" if k < n else ""))
    print("| path | seconds | examples/s |\n| --- | --- | --- |")
    print(f"| one forward per example (before) | {theirs_s:.2f} | {n / theirs_s:,.0f} |")
    print(f"| batched across examples (genval hf) | {ours_s:.2f} | {n / ours_s:,.0f} |")
    print(f"speed-up ×{theirs_s / ours_s:.2f}; max |Δp| {diff:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
