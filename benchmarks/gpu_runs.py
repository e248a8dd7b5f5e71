"""The whole-run part of benchmarks/gpu_check.sh: configs for `genval run` on a device, and a CUDA-vs-CPU comparison.

    python benchmarks/gpu_runs.py make DIR --device cuda [--examples N] [--classification-examples M]
        writes DIR/models (a seeded teacher and student Llama), DIR/summarization.jsonl,
        DIR/classification.jsonl and three configs: summarization-<device>.yaml,
        classification-<device>.yaml and classification-cpu-check.yaml, each with its own request
        cache (the cache key has no device: a shared cache would answer the CPU run from the CUDA one)
    python benchmarks/gpu_runs.py compare RUN_A RUN_B
        prints, as a Markdown table, how far two runs' label probabilities, texts and scores are apart
    python benchmarks/gpu_runs.py ops RUN
        prints each role's requests/s, tokens/s and device from the run's ops.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABELS = ["billing", "shipping", "account", "fraud"]
# (hidden, layers) of teacher and student: the GPU gets models big enough to keep it busy
SIZES = {"cuda": ((768, 12), (384, 6)), "cpu": ((48, 2), (32, 2))}


def build(folder: Path, hidden: int, layers: int, seed: int) -> Path:
    """Gives a seeded random-weight Llama with the tests' tokenizer (1,000 pieces), saved to `folder`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.tiny_models import train_tokenizer

    tok = train_tokenizer(vocab_size=1000)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 4, num_hidden_layers=layers,
                         num_attention_heads=8 if hidden % 8 == 0 else 4, max_position_embeddings=1024,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)  # well-separated greedy choices: the same text on any device
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def make(out: Path, device: str, n: int, n_classification: int) -> None:
    from tests.tiny_models import SENTENCES

    out.mkdir(parents=True, exist_ok=True)
    (teacher, student) = SIZES["cuda" if device.startswith("cuda") else "cpu"]
    paths = {"teacher": build(out / "models" / "teacher", *teacher, seed=0),
             "student": build(out / "models" / "student", *student, seed=1)}
    rows = [{"id": f"e{i}", "input": " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 3)),
             "reference": SENTENCES[(i * 7) % len(SENTENCES)], "label": LABELS[i % len(LABELS)]} for i in range(n)]
    (out / "summarization.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "classification.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:n_classification]))

    def models(on: str) -> dict:
        return {role: {"backend": "hf", "model": str(path), "device": on, "dtype": "float32"}
                for role, path in paths.items()}

    import yaml

    tag = "cuda" if device.startswith("cuda") else "cpu"
    configs = {
        f"summarization-{tag}": {"name": f"summarization-{tag}", "task": "summarization",
                                 "eval_set": "summarization.jsonl", "prompt": "Summarise: {input}",
                                 "models": models(device), "generation": {"max_tokens": 32},
                                 "metrics": ["bleu", "chrf", "rouge", {"name": "bertscore", "device": device},
                                             {"name": "embedding", "device": device}],
                                 "cache": f"cache-summarization-{tag}.sqlite"},
        f"classification-{tag}": {"name": f"classification-{tag}", "task": "classification",
                                  "eval_set": "classification.jsonl", "labels": LABELS,
                                  "prompt": "Ticket: {input}\nCategory:", "models": models(device),
                                  "generation": {"max_tokens": 4}, "cache": f"cache-classification-{tag}.sqlite"},
    }
    # the same classification config on the CPU, with a request cache of its own
    configs["classification-cpu-check"] = {**configs[f"classification-{tag}"], "name": "classification-cpu-check",
                                           "models": models("cpu"), "cache": "cache-classification-cpu-check.sqlite"}
    for name, config in configs.items():
        (out / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def run_folder(parent: Path) -> Path:
    """Gives the one run folder `genval run --out parent` made."""
    found = [p for p in Path(parent).iterdir() if (p / "manifest.json").exists()]
    if len(found) != 1:
        raise SystemExit(f"expected one run folder in {parent}, found {len(found)}")
    return found[0]


def compare(a: Path, b: Path) -> int:
    """Prints how far two runs of one classification config are apart; exit 1 when beyond float rounding."""
    import numpy as np

    from genval.runfolder import Run

    ra, rb = Run(run_folder(a)), Run(run_folder(b))
    oa = ra.read_table("outputs").set_index(["id", "role"]).sort_index()
    ob = rb.read_table("outputs").set_index(["id", "role"]).sort_index()
    probs = []
    for cell_a, cell_b in zip(oa["label_probs"], ob["label_probs"]):
        pa, pb = json.loads(cell_a), json.loads(cell_b)
        probs.append(max(abs(pa[k] - pb[k]) for k in pa))
    texts = float(np.mean(oa["text"].fillna("").to_numpy() == ob["text"].fillna("").to_numpy()))
    sa = ra.read_table("scores").set_index(["id", "pair", "metric"])["value"].astype(float)
    sb = rb.read_table("scores").set_index(["id", "pair", "metric"])["value"].astype(float)
    joined = sa.to_frame("a").join(sb.to_frame("b"), how="outer")
    print(f"| comparison ({run_folder(a).name} vs {run_folder(b).name}) | value |\n| --- | --- |")
    print(f"| label probabilities, max abs difference over {len(probs)} (example, role) | {max(probs):.2e} |")
    print(f"| generated texts equal | {texts:.1%} |")
    worst = 0.0
    for metric, rows in joined.groupby(level="metric"):
        diff = float(np.nanmax(np.abs(rows["a"] - rows["b"]))) if len(rows) else 0.0
        worst = max(worst, diff)
        print(f"| score `{metric}`, max abs difference | {diff:.2e} |")
    # fp32 on both devices: different kernels, the same numbers to ~1e-6 (probabilities) and texts alike
    ok = max(probs) <= 1e-4 and worst <= 1e-4
    print(f"| verdict | {'same numbers (within 1e-4)' if ok else 'DIFFERENT: look at the rows above'} |")
    return 0 if ok else 1


def ops(run: Path) -> int:
    from genval.runfolder import Run

    found = Run(run_folder(run)).read_json("ops.json")["roles"]
    print(f"| {run_folder(run).name}: role | device | requests/s | output tokens/s | batch |\n| --- | --- | --- | --- | --- |")
    for role, o in found.items():
        rps, tps = o.get("requests_per_s") or 0.0, o.get("output_tokens_per_s") or 0.0
        batch = ", ".join(str((m.get("batch") or {}).get("batch_size")) for m in o.get("measured_in", []))
        print(f"| {role} | {o.get('device')} | {rps:.1f} | {tps:.0f} | {batch} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("out", type=Path)
    m.add_argument("--device", default="cuda")
    m.add_argument("--examples", type=int, default=2000, help="summarization examples")
    m.add_argument("--classification-examples", type=int, default=400,
                   help="classification examples (run on the device and again on the CPU)")
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    o = sub.add_parser("ops")
    o.add_argument("run", type=Path)
    args = parser.parse_args()
    if args.command == "make":
        make(args.out, args.device, args.examples, args.classification_examples)
        return 0
    if args.command == "compare":
        return compare(args.a, args.b)
    return ops(args.run)


if __name__ == "__main__":
    sys.exit(main())
