"""GenvalCallback's cost per evaluation, against the training step it interrupts and against what a careful user
would otherwise run: save a checkpoint and `genval.run` a config that names it.

One process: a seeded Llama student (and a teacher of its shape) built here, a transformers Trainer on
fixed-length causal-LM batches, an eval set of 64 prompts scored with token_fidelity and chrF (1000
bootstrap resamples). Three measurements:

1. the Trainer alone: the mean optimiser step (the first 5 steps left out: allocation, first kernels);
2. the same training with `GenvalCallback(every=N)`: each evaluation's wall time (the first asks the
   teacher and loads it for token fidelity; the later ones read the teacher from the request cache);
3. per evaluation, the careful alternative: `model.save_pretrained(folder)` and `genval.run` of the same
   config with the student loaded from `folder` (the teacher cached too, models loaded once per call).

    python benchmarks/training_callback.py            # CPU, 1 thread
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
import yaml  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments  # noqa: E402

from genval.models import forced  # noqa: E402
from genval.training import GenvalCallback  # noqa: E402
from tests.conftest import write_jsonl  # noqa: E402
from tests.tiny_models import SENTENCES, train_tokenizer  # noqa: E402

LENGTH, BATCH = 32, 8


class Fixed(torch.utils.data.Dataset):
    def __init__(self, tokenizer, n: int):
        text = " ".join(SENTENCES)
        ids = tokenizer(text)["input_ids"]
        self.rows = [(ids * 4)[k % len(ids):k % len(ids) + LENGTH] for k in range(n)]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        ids = torch.tensor(self.rows[i])
        return {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids)}


def build(folder: Path, tokenizer, seed: int, hidden: int, layers: int) -> Path:
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 4,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def config_file(root: Path, name: str, student: str) -> Path:
    data = {"name": name, "task": "generation", "eval_set": str(root / "eval.jsonl"), "prompt": "{input}",
            "models": {"teacher": {"backend": "hf", "model": str(root / "teacher"), "device": "cpu"},
                       "student": {"backend": "hf", "model": student, "device": "cpu"}},
            "generation": {"max_tokens": 16}, "metrics": ["token_fidelity", "chrf"],
            "gate": {"rules": ["token_kl <= 1.0", "chrf >= 0"]}}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def trainer(root: Path, steps: int, callbacks=()) -> tuple[Trainer, list[float]]:
    from transformers import AutoTokenizer, TrainerCallback

    tokenizer = AutoTokenizer.from_pretrained(root / "student")
    model = LlamaForCausalLM.from_pretrained(root / "student")
    args = TrainingArguments(output_dir=str(root / "trainer"), max_steps=steps, per_device_train_batch_size=BATCH,
                             learning_rate=1e-3, report_to=[], save_strategy="no", logging_strategy="no",
                             use_cpu=True, disable_tqdm=True, seed=0)
    times: list[float] = []

    class Clock(TrainerCallback):  # the optimiser step alone: begin → end of each step, before any evaluation
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    found = Trainer(model=model, args=args, train_dataset=Fixed(tokenizer, steps * BATCH), processing_class=tokenizer,
                    callbacks=[Clock()])
    for callback in callbacks:
        callback.attach(found) if hasattr(callback, "attach") else found.add_callback(callback)
    return found, times


def alternative(root: Path, every: int, tokenizer):
    """A callback that, right after each GenvalCallback evaluation, times the careful alternative on the same
    weights: save_pretrained, then genval.run of the config naming the saved folder (models loaded per run)."""
    import genval
    from transformers import TrainerCallback

    class Alternative(TrainerCallback):
        seconds: list[float] = []
        folders: list[Path] = []

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % every:
                return
            forced.release()  # a run of its own loads its models
            folder = root / f"checkpoint-{state.global_step}"
            started = time.perf_counter()
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            self.folders.append(genval.run(config_file(root, f"saved-{state.global_step}", str(folder)),
                                           out_dir=root / "runs" / "saved", quiet=True))
            self.seconds.append(time.perf_counter() - started)
            model.train()
            forced.release()

    return Alternative()


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _stages(folders) -> dict[str, float]:
    """Gives each stage's median seconds over run folders (their manifests)."""
    import json

    found: dict[str, list[float]] = {}
    for folder in folders:
        for stage, record in json.loads((Path(folder) / "manifest.json").read_text())["stages"].items():
            found.setdefault(stage, []).append(record.get("seconds") or 0.0)
    return {stage: median(v) for stage, v in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tokenizer = train_tokenizer(vocab_size=1000)
        build(root / "teacher", tokenizer, 0, args.hidden, args.layers)
        build(root / "student", tokenizer, 1, args.hidden, args.layers)
        write_jsonl(root / "eval.jsonl", [{"id": f"e{i}", "input": " ".join(SENTENCES[(i + k) % len(SENTENCES)]
                                                                            for k in range(1 + i % 3)),
                                           "reference": SENTENCES[i % len(SENTENCES)]} for i in range(64)])
        params = sum(p.numel() for p in LlamaForCausalLM.from_pretrained(root / "student").parameters())

        plain, plain_steps = trainer(root, args.steps)
        plain.train()
        forced.release()
        callback = GenvalCallback(config_file(root, "watched", "in-memory"), every=args.every, out=root / "runs",
                                  quiet=True)
        other = alternative(root, args.every, tokenizer)
        watched, watched_steps = trainer(root, args.steps, [callback, other])
        watched.train()
        evals, baseline = callback.seconds, other.seconds
        stages = {"callback": _stages([s.folder for s in callback.steps[1:]]), "alternative": _stages(other.folders[1:])}

    step_s = median(plain_steps[5:])
    later, later_alt = median(evals[1:]), median(baseline[1:])
    print(f"student: {params / 1e6:.2f}M parameters, batch {BATCH} × {LENGTH} tokens, {args.steps} steps, "
          f"evaluation every {args.every} ({len(evals)} evaluations of 64 examples, 1000 bootstrap resamples)")
    print(f"training step, median (Trainer alone): {step_s * 1000:.0f} ms; with the callback attached, between "
          f"evaluations: {median(watched_steps[5:]) * 1000:.0f} ms")
    print(f"callback evaluation: first {evals[0]:.2f} s (teacher generated and loaded), later (median) {later:.2f} s "
          f"= {later / step_s:.0f} training steps")
    print(f"careful alternative (save_pretrained + genval.run, teacher from the cache): first {baseline[0]:.2f} s, "
          f"later (median) {later_alt:.2f} s; callback / alternative: {later / later_alt:.2f}")
    for name, seconds in stages.items():
        print(f"  stages, {name} (median of the later ones): " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
