"""Times genval's scoring against the loop a user would otherwise write, on the same synthetic pairs.

Lexical: genval's bleu, chrf and rouge metrics over all pairs at once (what the score stage
does) against, per pair, sacrebleu's `sentence_bleu` and `sentence_chrf` and one
`rouge_score.rouge_scorer.RougeScorer(...).score`. Semantic: genval's bertscore and embedding
against `bert_score.score` and `SentenceTransformer.encode` called once per pair kind. Every
number is asserted equal (exactly for lexical, within float tolerance for the models).

    python benchmarks/scoring.py                      # 20,000 lexical pairs, 1,200 semantic pairs, CPU
    python benchmarks/scoring.py --device cuda        # semantic part on the GPU (fp16 for genval)
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


def semantic(n_examples: int, device: str) -> dict:
    import torch
    from bert_score import score as bert_score
    from sentence_transformers import SentenceTransformer, util

    from genval.metrics import semantic as sem
    from genval.metrics.registry import MetricContext

    refs, teachers, students = synthetic(n_examples, seed=1)
    cands, others, ids, segments = pair_lists(refs, teachers, students)
    path = sem.default_model_path()
    n = n_examples

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    start = time.perf_counter()
    naive_f = []
    for k in range(3):  # what a user writes: one bert_score.score call per pair kind
        _, _, f = bert_score(cands[k * n:(k + 1) * n], others[k * n:(k + 1) * n], model_type=path,
                             num_layers=sem.DEFAULT_LAYER, device=device)
        naive_f.extend(f.tolist())
    sync()
    t_bert_naive = time.perf_counter() - start
    start = time.perf_counter()
    model = SentenceTransformer(path, device=device)
    naive_cos = []
    for k in range(3):
        a = model.encode(cands[k * n:(k + 1) * n])
        b = model.encode(others[k * n:(k + 1) * n])
        naive_cos.extend(util.cos_sim(a, b).diagonal().tolist())
    sync()
    t_emb_naive = time.perf_counter() - start

    sem.bert_scorer.cache_clear()
    sem.sentence_model.cache_clear()
    ctx = MetricContext(task="summarization", options={"device": device}, ids=ids, segments=segments)
    start = time.perf_counter()
    ours_f = sem.bertscore(cands, others, ctx).values["bertscore_f1"]
    sync()
    t_bert = time.perf_counter() - start
    start = time.perf_counter()
    ours_cos = sem.embedding(cands, others, ctx).values["embedding"]
    sync()
    t_emb = time.perf_counter() - start
    fp16 = device.startswith("cuda")
    tol = 1e-3 if fp16 else 1e-5  # fp16 on the GPU: F1 within 1e-3 of fp32 (issue 4)
    bert_diff = float(np.max(np.abs(np.array(ours_f) - np.array(naive_f))))
    emb_diff = float(np.max(np.abs(np.array(ours_cos) - np.array(naive_cos))))
    assert bert_diff <= tol, f"BERTScore F1 differs by {bert_diff}"
    assert emb_diff <= (1e-2 if fp16 else 1e-5), f"embedding cosine differs by {emb_diff}"
    return {"pairs": len(cands), "bert_naive_s": t_bert_naive, "bert_s": t_bert, "bert_max_diff": bert_diff,
            "emb_naive_s": t_emb_naive, "emb_s": t_emb, "emb_max_diff": emb_diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20000, help="lexical pairs (three per example)")
    parser.add_argument("--semantic-pairs", type=int, default=1200, help="semantic pairs (three per example)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda, for the semantic part")
    parser.add_argument("--skip-lexical", action="store_true")
    parser.add_argument("--skip-semantic", action="store_true")
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
    sm = semantic(max(1, args.semantic_pairs // 3), args.device)
    print(f"bertscore {sm['pairs']:>6} pairs  bert_score.score×3 {sm['bert_naive_s']:7.2f} s   genval {sm['bert_s']:6.2f} s   "
          f"×{sm['bert_naive_s'] / sm['bert_s']:.1f}  (max |ΔF1| {sm['bert_max_diff']:.1e})")
    print(f"embedding {sm['pairs']:>6} pairs  encode per pair kind {sm['emb_naive_s']:7.2f} s   genval {sm['emb_s']:6.2f} s   "
          f"×{sm['emb_naive_s'] / sm['emb_s']:.1f}  (max |Δcos| {sm['emb_max_diff']:.1e})")


if __name__ == "__main__":
    main()
