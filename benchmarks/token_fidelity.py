"""token_fidelity's memory and time against the computation a careful user would write: each model's full logits
for a batch (`model(ids).logits`), log-softmax, KL and argmax over them.

A seeded teacher and student (2-layer Llamas) with a 32,000-token vocabulary, as production tokenizers have,
over 64 sequences of a 32-token prompt and a 224-token continuation, 8 per batch. Both sides give the same
numbers (asserted to 1e-5). Each side runs in a child process of its own, so its peak RSS is its own; the
models' loading is outside the clock, not outside the peak (the same on both sides).

    python benchmarks/token_fidelity.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VOCAB, PROMPT, CONTINUATION, N, BATCH = 32000, 32, 224, 64, 8


def build(folder: Path, seed: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)


def sequences(seed: int = 0) -> list[tuple[list[int], list[int]]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [(rng.integers(4, VOCAB, PROMPT).tolist(), rng.integers(4, VOCAB, CONTINUATION).tolist()) for _ in range(N)]


class Plain:
    """What `HFForced` needs of a backend, over a model without a tokenizer: the ids are given."""

    def __init__(self, path: str):
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(path).eval()
        self.tokenizer = type("Vocabulary", (), {"__len__": lambda s: VOCAB, "pad_token_id": 0})()
        self.config = type("Config", (), {"model": path})()

    def load(self):
        pass


def genval_side(root: Path) -> list[float]:
    from genval.models.forced import Forced, HFForced, exact_fidelity

    teacher, student = HFForced(Plain(str(root / "teacher"))), HFForced(Plain(str(root / "student")))
    pairs = [(Forced(tuple(p), tuple(c)), Forced(tuple(p), tuple(c))) for p, c in sequences()]
    return [kl / n for kl, _, n in exact_fidelity(teacher, student, pairs, batch_size=BATCH)]


def careful_side(root: Path) -> list[float]:
    import torch
    from transformers import AutoModelForCausalLM

    teacher = AutoModelForCausalLM.from_pretrained(root / "teacher").eval()
    student = AutoModelForCausalLM.from_pretrained(root / "student").eval()
    out = []
    data = sequences()
    for lo in range(0, N, BATCH):
        ids = torch.tensor([p + c for p, c in data[lo:lo + BATCH]])  # equal lengths: no padding needed
        with torch.inference_mode():
            lt = torch.log_softmax(teacher(ids).logits.float(), -1)[:, PROMPT - 1:-1]
            ls = torch.log_softmax(student(ids).logits.float(), -1)[:, PROMPT - 1:-1]
            out += (lt.exp() * (lt - ls)).sum(-1).mean(-1).tolist()
    return out


def child(side: str, root: str) -> None:
    import torch

    torch.set_num_threads(1)
    fn = genval_side if side == "genval" else careful_side
    if side == "genval":
        from genval.models.forced import HFForced  # noqa: F401  (imported before the clock, as torch is)
    started = time.perf_counter()
    values = fn(Path(root))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak": peak, "values": values}))


def main() -> None:
    if len(sys.argv) == 3:
        return child(sys.argv[1], sys.argv[2])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root / "teacher", 0)
        build(root / "student", 1)
        found = {}
        for side in ("careful", "genval"):
            out = subprocess.run([sys.executable, __file__, side, str(root)], capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
            found[side] = json.loads(out.stdout.strip().splitlines()[-1])
    worst = max(abs(a - b) for a, b in zip(found["careful"]["values"], found["genval"]["values"]))
    assert worst < 1e-5, worst
    full = BATCH * (PROMPT + CONTINUATION) * VOCAB * 4 / 2**20
    print(f"{N} sequences of {PROMPT}+{CONTINUATION} tokens, vocabulary {VOCAB}, batch {BATCH}: one model's "
          f"float32 logits for a batch are {full:.0f} MiB; largest difference {worst:.1e} nats")
    for side in ("careful", "genval"):
        print(f"{side}: {found[side]['seconds']:.2f} s, peak RSS {found[side]['peak'] / 2**20:.0f} MiB")
    print(f"genval / careful: time ×{found['genval']['seconds'] / found['careful']['seconds']:.2f}, "
          f"peak ×{found['genval']['peak'] / found['careful']['peak']:.2f}")


if __name__ == "__main__":
    main()
