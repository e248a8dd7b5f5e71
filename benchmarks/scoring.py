"""Times genval's scoring against what a careful user would otherwise run, on the same synthetic pairs.

Lexical: genval's bleu, chrf and rouge metrics over all pairs at once (what the score stage
does) against, per pair, sacrebleu's `sentence_bleu` and `sentence_chrf` and one
`rouge_score.rouge_scorer.RougeScorer(...).score`. Semantic: the score stage's map with metrics
bertscore + embedding (one encoder pass for both) against the two libraries called once each,
each model loaded once: one `BERTScorer(...).score` over every pair and one
`SentenceTransformer(...).encode` of every distinct text. Every number is asserted equal
(exactly for lexical; BERTScore F1 and cosine within 1e-5 in fp32, 1e-3 / 1e-2 with --fp16).

    python benchmarks/scoring.py                      # 20,000 lexical pairs, 1,200 semantic pairs, CPU
    python benchmarks/scoring.py --device cuda --skip-lexical --semantic-pairs 6000 [--fp16]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time

import numpy as np

PAIRS = ("student~teacher", "student~reference", "teacher~reference")


def synthetic(n_examples: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Gives reference, teacher and student texts: the teacher edits the reference, the student the teacher."""
    rng = random.Random(seed)
    vocab = [f"{rng.choice('bcdfghklmnprst')}{rng.choice('aeiou')}{rng.choice('nrstlm')}{rng.choice(['', 'ing', 'ed', 's', 'er'])}"
             for _ in range(3000)]

    def edit(words, rate):
        out = []
        for w in words:
            r = rng.random()
            if r < rate / 2:
                out.append(rng.choice(vocab))
            elif r < rate * 0.75:
                continue
            else:
                out.append(w)
        return out

    refs, teachers, students = [], [], []
    for _ in range(n_examples):
        ref = [rng.choice(vocab) for _ in range(rng.randint(12, 40))]
        teacher = edit(ref, 0.3)
        student = edit(teacher, 0.3)
        refs.append(" ".join(ref) + ".")
        teachers.append(" ".join(teacher) + ".")
        students.append(" ".join(student) + ".")
    return refs, teachers, students


def pair_lists(refs, teachers, students):
    """Gives (candidates, others, ids, segments) stacked as the score stage stacks them."""
    n = len(refs)
    ids = [f"e{i}" for i in range(n)] * 3
    cands = students + students + teachers
    others = teachers + refs + refs
    segments = [(p, k * n, (k + 1) * n) for k, p in enumerate(PAIRS)]
    return cands, others, ids, segments


def cpu_seconds() -> float:
    """Gives the CPU time of this process and its finished children: the work done, whatever the machine's load."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def lexical(n_examples: int) -> dict:
    from rouge_score import rouge_scorer
    from sacrebleu import sentence_bleu, sentence_chrf

    from genval.metrics import lexical as lex
    from genval.metrics.registry import MetricContext

    cands, others, ids, segments = pair_lists(*synthetic(n_examples))
    start, cpu = time.perf_counter(), cpu_seconds()
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    naive = {"bleu": [], "chrf": [], "rouge1": [], "rouge2": [], "rougeL": []}
    for c, o in zip(cands, others):
        naive["bleu"].append(sentence_bleu(c, [o]).score)
        naive["chrf"].append(sentence_chrf(c, [o]).score)
        r = scorer.score(o, c)
        for t in ("rouge1", "rouge2", "rougeL"):
            naive[t].append(r[t].fmeasure)
    t_naive, cpu_naive = time.perf_counter() - start, cpu_seconds() - cpu

    start, cpu = time.perf_counter(), cpu_seconds()
    ctx = MetricContext(task="summarization", ids=ids, segments=segments)
    ours = {}
    for metric in (lex.bleu, lex.chrf, lex.rouge):
        ours.update(metric(cands, others, ctx).values)
    t_ours, cpu_ours = time.perf_counter() - start, cpu_seconds() - cpu
    for key, values in naive.items():
        assert ours[key] == values, f"{key}: genval's numbers differ from the libraries'"
    return {"pairs": len(cands), "naive_s": t_naive, "genval_s": t_ours, "naive_cpu_s": cpu_naive,
            "genval_cpu_s": cpu_ours, "engine": lex.rouge_engine()}


def stage_task(tmp: str, device: str, fp16: bool):
    """Gives the score stage's map (ScoreTask) for a run with metrics bertscore + embedding, as `genval run` builds it."""
    import json
    from pathlib import Path

    import yaml

    from genval.config import load_config
    from genval.metrics import get_metric
    from genval.metrics.stage import ScoreTask

    root = Path(tmp)
    (root / "eval.jsonl").write_text(json.dumps({"id": "e0", "input": "x", "reference": "y"}) + "\n")
    for role in ("teacher", "student"):
        (root / f"{role}.jsonl").write_text(json.dumps({"id": "e0", "text": "y"}) + "\n")
    options = {"device": device, "fp16": fp16}
    config = {"name": "bench", "task": "summarization", "eval_set": "eval.jsonl", "prompt": "{input}",
              "models": {r: {"backend": "replay", "path": f"{r}.jsonl"} for r in ("teacher", "student")},
              "metrics": [{"name": "bertscore", **options}, {"name": "embedding", **options}]}
    (root / "run.yaml").write_text(yaml.safe_dump(config))
    cfg = load_config(root / "run.yaml")
    opts = [get_metric(s.name).parse_options(s.options) for s in cfg.metric_specs]
    return ScoreTask(config=cfg, options=opts, schema=None)


def joined_batch(refs, teachers, students):
    """Gives the score stage's input batch: one row per example, each role's text and error."""
    import pandas as pd

    return pd.DataFrame({"id": [f"e{i}" for i in range(len(refs))], "reference": refs,
                         "teacher.text": teachers, "teacher.error": None,
                         "student.text": students, "student.error": None})


def semantic(n_examples: int, device: str, fp16: bool = False) -> dict:
    """Times the score stage's bertscore + embedding against the two libraries called once each, models loaded once."""
    import tempfile

    import torch
    from bert_score import BERTScorer
    from sentence_transformers import SentenceTransformer

    from genval.metrics import encoding
    from genval.metrics import semantic as sem
    from genval.metrics.registry import MetricContext

    refs, teachers, students = synthetic(n_examples, seed=1)
    cands, others, ids, segments = pair_lists(refs, teachers, students)
    distinct = list(dict.fromkeys([*cands, *others]))
    path = sem.default_model_path()

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def libraries(scorer=None, model=None):
        """The careful user: one BERTScorer and one SentenceTransformer, one call each over every pair."""
        scorer = scorer or BERTScorer(model_type=path, num_layers=sem.DEFAULT_LAYER, device=device)
        _, _, f = scorer.score(cands, others, batch_size=64)
        model = model or SentenceTransformer(path, device=device)
        vectors = model.encode(distinct, normalize_embeddings=True, convert_to_numpy=True)
        row = {t: i for i, t in enumerate(distinct)}
        cos = np.einsum("ij,ij->i", vectors[[row[c] for c in cands]].astype(np.float64),
                        vectors[[row[o] for o in others]].astype(np.float64))
        sync()
        return f.tolist(), cos.tolist(), scorer, model

    def genval(task, batch):
        frame = task(batch)
        sync()
        values = {m: frame[(frame["metric"] == m)] for m in ("bertscore_f1", "embedding")}
        order = {(p, i): k for k, (p, i) in enumerate(zip([p for p, a, b in segments for _ in range(a, b)], ids))}
        out = {}
        for m, rows in values.items():
            got = [0.0] * len(cands)
            for p, i, v in zip(rows["pair"], rows["id"], rows["value"]):
                got[order[(p, i)]] = float(v)
            out[m] = got
        return out["bertscore_f1"], out["embedding"]

    with tempfile.TemporaryDirectory() as tmp:
        task = stage_task(tmp, device, fp16)
        batch = joined_batch(refs, teachers, students)
        libraries()  # the files into the page cache, kernels warmed: both sides start alike
        genval(task, batch)
        sem.sentence_model.cache_clear()
        encoding.layer_model.cache_clear()
        clock = Clock()
        lib_f, lib_cos, scorer, model = clock.time("lib", libraries)
        ours_f, ours_cos = clock.time("ours", genval, task, batch)
        clock.time("lib_warm", libraries, scorer, model)
        clock.time("ours_warm", genval, task, batch)
        # BERTScore alone, models loaded: BERTScorer.score against genval's bertscore without a partner
        ctx = MetricContext(task="summarization", options={"device": device, "fp16": fp16}, ids=ids, segments=segments)
        sem.bertscore(cands[:8], others[:8], ctx)  # its own cut model, loaded outside the clock

        def bert_lib():
            scorer.score(cands, others, batch_size=64)
            sync()

        def bert_ours():
            found = sem.bertscore(cands, others, ctx).values["bertscore_f1"]
            sync()
            return found

        clock.time("bert_lib", bert_lib)
        alone = clock.time("bert", bert_ours)
    tol = 1e-3 if fp16 else 1e-5  # fp16: F1 within 1e-3 of fp32
    bert_diff = float(np.max(np.abs(np.array(ours_f) - np.array(lib_f))))
    emb_diff = float(np.max(np.abs(np.array(ours_cos) - np.array(lib_cos))))
    assert bert_diff <= tol, f"BERTScore F1 differs by {bert_diff}"
    assert emb_diff <= (1e-2 if fp16 else 1e-5), f"embedding cosine differs by {emb_diff}"
    assert float(np.max(np.abs(np.array(alone) - np.array(lib_f)))) <= tol, "BERTScore alone differs"
    return {"pairs": len(cands), "texts": len(distinct), "clock": clock, "bert_max_diff": bert_diff,
            "emb_max_diff": emb_diff}


class Clock:
    """Wall and CPU seconds (this process and its threads) of named calls."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def time(self, name: str, func, *args):
        start, cpu = time.perf_counter(), cpu_seconds()
        found = func(*args)
        self.wall[name], self.cpu[name] = time.perf_counter() - start, cpu_seconds() - cpu
        return found

    def row(self, label: str, lib: str, ours: str) -> str:
        w, c = self.wall, self.cpu
        return (f"| {label} | {w[lib]:.2f} s (CPU {c[lib]:.2f} s) | {w[ours]:.2f} s (CPU {c[ours]:.2f} s) | "
                f"×{w[ours] / w[lib]:.2f} (CPU ×{c[ours] / c[lib]:.2f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20000, help="lexical pairs (three per example)")
    parser.add_argument("--semantic-pairs", type=int, default=1200, help="semantic pairs (three per example)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda, for the semantic part")
    parser.add_argument("--skip-lexical", action="store_true")
    parser.add_argument("--skip-semantic", action="store_true")
    parser.add_argument("--fp16", action="store_true", help="genval's semantic metrics in fp16 (CUDA only)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {platform.machine()} {platform.processor() or ''} {cores} cores usable; device {args.device}")
    if not args.skip_lexical:
        lx = lexical(max(1, args.pairs // 3))
        print(f"lexical   {lx['pairs']:>6} pairs  naive loop {lx['naive_s']:7.2f} s   genval {lx['genval_s']:6.2f} s   "
              f"×{lx['naive_s'] / lx['genval_s']:.1f}  (BLEU, chrF, ROUGE-1/2/L identical; ROUGE engine {lx['engine']})")
        print(f"          CPU seconds (all processes and threads): naive {lx['naive_cpu_s']:.2f}, genval "
              f"{lx['genval_cpu_s']:.2f}, ×{lx['naive_cpu_s'] / lx['genval_cpu_s']:.1f} less work")
    if args.skip_semantic:
        return
    sm = semantic(max(1, args.semantic_pairs // 3), args.device, args.fp16)
    print(f"\nsemantic: {sm['pairs']} pairs, {sm['texts']} distinct texts, bertscore + embedding, "
          f"{'fp16' if args.fp16 else 'fp32'} (max |ΔF1| {sm['bert_max_diff']:.1e}, max |Δcos| {sm['emb_max_diff']:.1e})")
    print("| clock | BERTScorer.score + SentenceTransformer.encode | genval score stage | genval / libraries |")
    print("| --- | --- | --- | --- |")
    clock = sm["clock"]
    print(clock.row("models loaded inside the clock", "lib", "ours"))
    print(clock.row("models already loaded", "lib_warm", "ours_warm"))
    print(clock.row("BERTScore alone, models loaded (`BERTScorer.score` / genval `bertscore`)", "bert_lib", "bert"))


if __name__ == "__main__":
    main()
