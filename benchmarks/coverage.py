"""Measures how often each interval genval gives covers the truth, on synthetic runs drawn from a known population.

Every replication draws one run's per-example numbers — a teacher and a student right or wrong
on each example (both kinds of disagreement), a continuous quality score for each, a judge
with known sensitivity and specificity and people's ratings of a sample — and hands them to
the code aggregate uses: the exact and the Poisson bootstrap engines (genval.analysis.resampling,
`feed` / `mean` / `ratio` / `difference`), over slices of 10, 30, 100 and 1000 examples, and the
judge's cells to genval.analysis.judge_correction (also as `genval sample` draws the rated items: a critical
slice's first, the rates post-stratified). Each interval's coverage is the share of
replications whose interval holds the population's value, with its Wilson interval.

Targets (issue 20): within [0.93, 0.97] at n ≥ 100; at least 0.93 at n = 10–30.

    python benchmarks/coverage.py [--reps 2000] [--boot 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import defaultdict

import numpy as np

from genval.analysis.intervals import wilson
from genval.analysis.judge_correction import corrected
from genval.analysis.numbers import Boot
from genval.analysis.resampling import Exact, Poisson, difference

SIZES = (10, 30, 100, 1000)          # the slices of one run, each its own group
# Student × teacher right or wrong on one example: both, only the student, only the teacher, neither.
CELLS = np.array([0.70, 0.035, 0.10, 0.165])
STUDENT, TEACHER = CELLS[0] + CELLS[1], CELLS[0] + CELLS[2]
QUALITY = (2.0, 3.0)                  # the teacher's quality ~ Beta(2, 3); the student's is 0.9 of it plus noise
NOISE = 0.05
# The judge: true rate π, sensitivity, specificity; (examples judged, of them rated by people).
JUDGE = (0.6, 0.9, 0.85)
JUDGE_SIZES = ((300, 20), (300, 30), (1000, 150), (1000, 300))
# As `genval sample` draws: a critical slice's items first. Per stratum (judged, rated, true rate, se, sp): a 5 % critical
# slice with 30 of the 150 rated items, where the judge errs more, and the rest.
STRATA = ((100, 30, 0.4, 0.6, 0.9), (1900, 120, 0.7, 0.95, 0.8))


def _truth(rng: np.random.Generator, draws: int = 2_000_000) -> dict:
    """Gives the population values: closed form for the shares, a large sample for the continuous ones."""
    teacher = rng.beta(*QUALITY, draws)
    student = np.clip(0.9 * teacher + rng.normal(0, NOISE, draws), 0, 1)
    return {"share": STUDENT, "accuracy_retention": STUDENT / TEACHER, "difference (0/1)": STUDENT - TEACHER,
            "mean (continuous)": student.mean(), "task_retention": student.mean() / teacher.mean(),
            "difference (continuous)": (student - teacher).mean()}


def _run(rng: np.random.Generator) -> tuple[dict, dict]:
    """Gives one synthetic run's features and its slice partition (code k: the k-th size in SIZES)."""
    n = sum(SIZES)
    kind = rng.choice(4, size=n, p=CELLS)
    student = np.isin(kind, (0, 1)).astype(float)
    teacher = np.isin(kind, (0, 2)).astype(float)
    t_quality = rng.beta(*QUALITY, n)
    s_quality = np.clip(0.9 * t_quality + rng.normal(0, NOISE, n), 0, 1)
    features = {"s": student, "t": teacher, "sq": s_quality, "tq": t_quality, "dq": s_quality - t_quality}
    return features, {"part": np.repeat(np.arange(len(SIZES)), SIZES)}


def _intervals(engine, size_index: int) -> dict:
    group = ("part", size_index)
    return {"share": engine.mean(group, "s"), "accuracy_retention": engine.ratio(group, "s", "t"),
            "difference (0/1)": difference(engine, group, "s", "t", None),
            "mean (continuous)": engine.mean(group, "sq"), "task_retention": engine.ratio(group, "sq", "tq"),
            "difference (continuous)": difference(engine, group, "sq", "tq", "dq")}


def _judge_cells(rng: np.random.Generator, judged: int, rated: int, judge=JUDGE) -> np.ndarray:
    pi, se, sp = judge
    human = rng.random(judged) < pi
    judge = np.where(human, rng.random(judged) < se, rng.random(judged) >= sp)
    is_rated = np.zeros(judged, bool)
    is_rated[rng.choice(judged, rated, replace=False)] = True
    return np.array([(is_rated & human & judge).sum(), (is_rated & human & ~judge).sum(),
                     (is_rated & ~human & judge).sum(), (is_rated & ~human & ~judge).sum(),
                     (~is_rated & judge).sum(), (~is_rated & ~judge).sum(), 0], dtype=float)


def measure(reps: int, n_boot: int, seed: int) -> tuple[dict, dict]:
    """Gives (hits, counts) per (interval, method, n) over `reps` replications."""
    rng = np.random.default_rng(seed)
    truth = _truth(np.random.default_rng(seed + 1))
    hits, counts = defaultdict(int), defaultdict(int)
    for r in range(reps):
        features, partitions = _run(rng)
        boot = Boot(n_boot, 0.95, r)
        for engine_class in (Exact, Poisson):
            engine = engine_class(boot, 10)
            engine.declare(ratios=[("s", "t"), ("sq", "tq")])
            engine.feed(features, partitions, 0)
            engine.finish()
            for k, n in enumerate(SIZES):
                for name, number in _intervals(engine, k).items():
                    method = number.get("method", "")
                    if method.startswith(("Wilson", "Newcombe", "MOVER")):
                        if engine_class is Poisson:
                            continue   # closed forms: the same under either engine, counted once
                        label = method.split(" (")[0]
                    else:
                        label = "exact bootstrap" if engine_class is Exact else "Poisson bootstrap"
                    lo, hi = number["ci"]
                    key = (name, label, n)
                    counts[key] += 1
                    hits[key] += lo is not None and lo <= truth[name] <= (np.inf if hi is None else hi)
        for judged, rated in JUDGE_SIZES:
            rg, ppi = corrected(_judge_cells(rng, judged, rated), boot)
            for name, number in (("judge rate, Rogan–Gladen", rg), ("judge rate, PPI++", ppi)):
                key = (name, "whole-example bootstrap", rated)
                counts[key] += 1
                lo, hi = number["ci"]
                hits[key] += lo is not None and lo <= JUDGE[0] <= hi
        cells = np.array([_judge_cells(rng, judged, rated, judge) for judged, rated, *judge in STRATA])
        rate = sum(judged * judge[0] for judged, _, *judge in STRATA) / sum(judged for judged, *_ in STRATA)
        rg, ppi = corrected(cells, boot)
        for name, number in (("judge rate, Rogan–Gladen", rg), ("judge rate, PPI++", ppi)):
            key = (name, "whole-example bootstrap, post-stratified (critical slice drawn first)", int(cells[:, :4].sum()))
            counts[key] += 1
            lo, hi = number["ci"]
            hits[key] += lo is not None and lo <= rate <= hi
    return hits, counts


def verdict(coverage: float, n: int) -> str:
    """Gives whether a coverage meets the targets: [0.93, 0.97] at n ≥ 100, at least 0.93 below."""
    if n >= 100:
        return "ok" if 0.93 <= coverage <= 0.97 else "MISSED"
    return "ok" if coverage >= 0.93 else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    hits, counts = measure(args.reps, args.boot, args.seed)
    seconds = time.perf_counter() - start
    print(f"{args.reps} replications, {args.boot} resamples, seed {args.seed}; {seconds:.0f} s on "
          f"{platform.processor() or platform.machine()}\n")
    print("| number | interval | n (rated, for the judge) | coverage | its 95 % interval | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    missed = 0
    for key in sorted(counts, key=lambda k: (k[0], k[1], k[2])):
        name, label, n = key
        coverage = hits[key] / counts[key]
        lo, hi = wilson(hits[key], counts[key])
        said = verdict(coverage, n)
        missed += said != "ok"
        print(f"| {name} | {label} | {n} | {coverage:.3f} | {lo:.3f}–{hi:.3f} | {said} |")
    print(f"\n{missed} of {len(counts)} cells outside their target.")


if __name__ == "__main__":
    main()
