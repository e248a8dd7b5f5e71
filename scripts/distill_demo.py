"""A real distillation on the CPU, then genval's verdict on it: a teacher trained here, three students distilled from it.

The task has a real answer: read a support ticket, give its category and a one-line summary
(" billing | refund 120 dollars for order 512"). Tickets come from seeded templates with random
slots (order numbers, amounts, user names, error codes, days), openers and closers, so no eval
ticket is a training ticket and a model must read the ticket, not remember it. Two tickets in
five mix two topics; their category is the first topic's seven times in ten, so a good model is
unsure there (about 0.7) — the uncertainty that soft targets carry and hard ones lose.

1. A teacher (a 3-layer Llama, ~0.4M parameters, with a tokenizer trained on the tickets) learns
   the task from the gold answers (cross-entropy on the answer's tokens).
2. Three students (2 layers, ~0.1M parameters) learn from the teacher on the same tickets, at
   every token of the answer (Hinton et al. 2015; word-level distillation, Kim & Rush 2016):
   `student` from its distribution at temperature 1, `student_t2` at temperature 2 (loss × T²),
   `student_hard` from its top-1 token only (a one-hot target: the hard labels).
3. genval evaluates them (configs/distill.yaml, the `hf` backend): real label probabilities, KL,
   ECE and the temperature sweep, token-level fidelity, the accuracy-vs-KL Pareto plot.

Training predicts the ranking: the hard-label student never sees the teacher's doubt, so it is
sure where the teacher is not — the highest KL to the teacher and the worst calibration (ECE).
Seeded throughout (data, initialisation, batch order; deterministic kernels), so a re-run gives
the same checkpoints and the same numbers.

    python scripts/distill_demo.py            # build/distill/ (data, checkpoints), then runs/distill/
    python scripts/distill_demo.py --quick    # a smaller run for tests: fewer tickets and steps
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

CATEGORIES = ["billing", "shipping", "account", "technical"]
CUES = {  # (what the ticket says, the summary of it), with slots filled at random
    "billing": [("i was charged twice for order {order}", "charged twice for order {order}"),
                ("my invoice for order {order} is {amount} dollars too high", "invoice {order} {amount} dollars too high"),
                ("please refund {amount} dollars for order {order}", "refund {amount} dollars for order {order}"),
                ("the discount on order {order} was not applied", "discount missing on order {order}")],
    "shipping": [("my package {order} has not arrived after {days} days", "package {order} late by {days} days"),
                 ("the parcel for order {order} came damaged", "parcel {order} damaged"),
                 ("tracking for order {order} stopped {days} days ago", "tracking {order} stuck {days} days"),
                 ("order {order} went to the wrong address", "order {order} sent to wrong address")],
    "account": [("i cannot log in as {user}", "login fails for {user}"),
                ("please reset the password of {user}", "password reset for {user}"),
                ("the account {user} was locked", "account {user} locked"),
                ("i want to delete the account {user}", "delete account {user}")],
    "technical": [("the app crashes with error {code}", "app crash error {code}"),
                  ("checkout shows error {code} for order {order}", "checkout error {code} on order {order}"),
                  ("the page is slow for {days} days now", "page slow for {days} days"),
                  ("the export button gives error {code}", "export error {code}")],
}
OPENERS = ["hello", "hi team", "good morning", "dear support", "hey", "hi", ""]
CLOSERS = ["thanks", "thank you", "please help", "regards", "asap please", "cheers", ""]
NAMES = ["anna", "ben", "carla", "dev", "eva", "femi", "gus", "hana", "ivan", "jo", "kim", "lena", "max", "nora",
         "omar", "pia", "quinn", "rosa", "sam", "tara", "uma", "vic", "wen", "xavi", "yara", "zoe"]
PROMPT = "Ticket: {text}\nCategory and summary:"
MIXED_SHARE, FIRST_WINS = 0.4, 0.7
SIZES = {  # tickets (train, eval); optimiser steps and batch sizes (teacher, each student)
    "full": {"train": 4000, "eval": 400, "teacher_steps": 1200, "student_steps": 1600, "batch": 32, "student_batch": 16},
    "quick": {"train": 2000, "eval": 240, "teacher_steps": 600, "student_steps": 1000, "batch": 32, "student_batch": 16},
}
TEACHER, STUDENT = (64, 2), (32, 2)  # hidden size, layers
STUDENTS = {"student": ("soft", 1.0), "student_t2": ("soft", 2.0), "student_hard": ("hard", None)}


# --- data ------------------------------------------------------------------------------------
def cue(rng: np.random.Generator, category: str) -> tuple[str, str]:
    said, summary = CUES[category][int(rng.integers(len(CUES[category])))]
    slots = {"order": str(int(rng.integers(100, 1000))), "amount": str(int(rng.integers(1, 100)) * 10),
             "user": f"{NAMES[int(rng.integers(len(NAMES)))]}{int(rng.integers(10, 100))}",
             "code": str(int(rng.integers(400, 600))), "days": str(int(rng.integers(2, 31)))}
    return said.format(**slots), summary.format(**slots)


def ticket(rng: np.random.Generator, i: int) -> dict:
    """Gives one ticket: text, gold category and summary, and whether it mixes two topics."""
    first = CATEGORIES[int(rng.integers(4))]
    said, summary = cue(rng, first)
    label, kind = first, "clear"
    if rng.random() < MIXED_SHARE:
        second = CATEGORIES[(CATEGORIES.index(first) + 1 + int(rng.integers(3))) % 4]
        said2, summary2 = cue(rng, second)
        said, kind = f"{said} and also {said2}", "mixed"
        if rng.random() >= FIRST_WINS:
            label, summary = second, summary2
    opener, closer = OPENERS[int(rng.integers(len(OPENERS)))], CLOSERS[int(rng.integers(len(CLOSERS)))]
    text = " ".join(p for p in (opener, said, closer) if p)
    return {"id": f"t{i:05d}", "text": text, "label": label, "reference": f"{label} | {summary}", "kind": kind}


def make_data(seed: int, n_train: int, n_eval: int) -> tuple[list[dict], list[dict]]:
    """Gives (train, eval) tickets; an eval ticket whose text is also a training ticket's is drawn again."""
    rng = np.random.default_rng(seed)
    train = [ticket(rng, i) for i in range(n_train)]
    seen = {t["text"] for t in train}
    evals = []
    while len(evals) < n_eval:
        found = ticket(rng, n_train + len(evals))
        if found["text"] not in seen:
            evals.append({**found, "id": f"e{len(evals):04d}"})
    return train, evals


# --- models ----------------------------------------------------------------------------------
def train_tokenizer(texts: list[str]):
    """Gives a byte-level BPE tokenizer trained on the tickets (as tests/tiny_models.py builds one)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", padding_side="left")


def build(tokenizer, hidden: int, layers: int, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=128, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def encode(tokenizer, tickets: list[dict]):
    """Gives (ids, attention mask, answer mask): prompt then answer then end of sequence, padded on the right;
    the answer mask marks the positions whose next token is part of the answer."""
    import torch

    rows, marks = [], []
    for t in tickets:
        prompt = tokenizer(PROMPT.format(text=t["text"]))["input_ids"]
        answer = tokenizer(" " + t["reference"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(prompt + answer)
        marks.append([0] * (len(prompt) - 1) + [1] * len(answer) + [0])
    width = max(map(len, rows))
    ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    answer = torch.tensor([m + [0] * (width - len(m)) for m in marks], dtype=torch.bool)
    return ids, mask, answer


def fit(model, data, steps: int, batch: int, seed: int, loss_of, label: str) -> None:
    """Trains `model` for `steps` AdamW steps on seeded batches; `loss_of(model, ids, mask, answer)` gives the loss."""
    import torch

    ids, mask, answer = data
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * max(0.05, 1 - s / steps))
    model.train()
    order, at, started = torch.randperm(len(ids), generator=gen), 0, time.perf_counter()
    for step in range(steps):
        if at + batch > len(order):
            order, at = torch.randperm(len(ids), generator=gen), 0
        rows = order[at:at + batch]
        at += batch
        width = int(mask[rows].sum(1).max())
        loss = loss_of(model, ids[rows, :width], mask[rows, :width], answer[rows, :width])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if (step + 1) % max(1, steps // 4) == 0:
            print(f"  {label}: step {step + 1}/{steps}, loss {loss.item():.4f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    model.eval()


def gold_loss(model, ids, mask, answer):
    """Cross-entropy of the gold answer's tokens."""
    import torch.nn.functional as F

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    return F.cross_entropy(logits[answer[:, :-1]], ids[:, 1:][answer[:, :-1]])


def distil_loss(teacher, kind: str, temperature: float | None):
    """Gives the loss of a student learning from `teacher` at the answer's positions: its distribution at
    `temperature` (KL, × T² as Hinton et al. 2015 scale it), or its top-1 token (`hard`)."""
    import torch
    import torch.nn.functional as F

    def loss_of(model, ids, mask, answer):
        with torch.no_grad():
            target = teacher(input_ids=ids, attention_mask=mask).logits[answer]
        logits = model(input_ids=ids, attention_mask=mask).logits[answer]
        if kind == "hard":
            return F.cross_entropy(logits, target.argmax(-1))
        t = temperature
        return F.kl_div(F.log_softmax(logits / t, -1), F.log_softmax(target / t, -1), log_target=True,
                        reduction="batchmean") * t * t

    return loss_of


def train_all(out: Path, size: dict, seed: int) -> None:
    """Writes the tickets and trains the teacher and the students into `out`."""
    import torch

    torch.use_deterministic_algorithms(True)
    train, evals = make_data(seed, size["train"], size["eval"])
    (out / "data").mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("eval", evals)):
        (out / "data" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tokenizer = train_tokenizer([PROMPT.format(text=t["text"]) + " " + t["reference"] for t in train])
    data = encode(tokenizer, train)
    teacher = build(tokenizer, *TEACHER, seed=seed)
    fit(teacher, data, size["teacher_steps"], size["batch"], seed, gold_loss, "teacher")
    save(teacher, tokenizer, out / "teacher")
    for k, (role, (kind, temperature)) in enumerate(STUDENTS.items()):
        student = build(tokenizer, *STUDENT, seed=seed + 1)  # one initialisation: only the targets differ
        fit(student, data, size["student_steps"], size["student_batch"], seed + 2 + k,
            distil_loss(teacher, kind, temperature), role)
        save(student, tokenizer, out / role)


def save(model, tokenizer, folder: Path) -> None:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


# --- evaluation --------------------------------------------------------------------------------
def run_config(out: Path, name: str) -> Path:
    """Writes configs/distill.yaml with its data and model paths pointed at `out` (and named `name`); gives its path."""
    data = yaml.safe_load((ROOT / "configs" / "distill.yaml").read_text(encoding="utf-8"))
    data["name"] = name
    data["eval_set"] = str((out / "data" / "eval.jsonl").resolve())
    for role, model in data["models"].items():
        model["model"] = str((out / role).resolve())
    path = out / "distill.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tickets and steps (for tests)")
    parser.add_argument("--out", default=str(ROOT / "build" / "distill"), help="data and checkpoints")
    parser.add_argument("--runs", default=str(ROOT / "runs"), help="where genval writes its run folder")
    parser.add_argument("--seed", type=int, default=0)
    # One thread: on a shared machine more threads than free cores make training several times slower, and a
    # fixed count keeps re-runs bit-identical (the kernels' sums are ordered by their thread split).
    parser.add_argument("--threads", type=int, default=1, help="torch threads (fixed, so re-runs give the same bits)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    out = Path(args.out)
    size = SIZES["quick" if args.quick else "full"]
    print(f"distill demo: {size['train']} training tickets, {size['eval']} eval tickets → {out}", flush=True)
    train_all(out, size, args.seed)
    trained = time.perf_counter() - started
    print(f"trained the teacher and {len(STUDENTS)} students in {trained:.0f} s", flush=True)

    import genval
    from genval.pipeline import outcome, report_path
    from genval.runfolder import Run

    folder = genval.run(run_config(out, "distill-quick" if args.quick else "distill"), out_dir=args.runs)
    result = outcome(folder)
    print(f"genval: {result['decision']['verdict']} — {result['decision']['reasons'][0]}")
    print(f"whole demo: {time.perf_counter() - started:.0f} s (training {trained:.0f} s)")
    print(f"report: {report_path(Run(folder))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
