"""Times genval's judge calibration against the statistics a user would otherwise call in a bootstrap loop.

Baseline: for 1,000 bootstrap resamples of the judge-vs-human items, scikit-learn's
`cohen_kappa_score`, `precision_score`, `recall_score`, the `krippendorff` package's `alpha`,
scipy's `spearmanr` and `kendalltau`, and numpy's mean for raw agreement — the seven numbers
with intervals that calibration.json holds. genval's `calibrate_judge` computes those (same
resample indices: genval.stats draws them with `default_rng(seed).integers`) and also the
confusion matrix, bias checks, per-slice agreement and the cross-validated threshold.

    python benchmarks/judge_calibration.py [--n 1000] [--boot 1000]
"""

from __future__ import annotations

import argparse
import platform
import time

import krippendorff
import numpy as np
import pandas as pd
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score, precision_score, recall_score

from genval.judging.calibration import Settings, calibrate_judge
from genval.judging.definition import load_definition


def tables(n: int, seed: int = 0):
    """Gives judgments, human labels, examples and outputs for n items: a judge that agrees 85 % of the time."""
    rng = np.random.default_rng(seed)
    human = rng.choice(["equivalent", "not_equivalent"], size=n, p=[0.6, 0.4])
    judge = np.where(rng.random(n) < 0.85, human, rng.choice(["equivalent", "not_equivalent"], size=n))
    ids = [f"e{i:05d}" for i in range(n)]
    rows = pd.DataFrame({"id": ids, "pair": "student~teacher", "judge": "j", "verdict": judge,
                         "score": np.clip((judge == "equivalent") * 0.7 + rng.random(n) * 0.3, 0, 1),
                         "parsed": True, "swap_consistent": pd.array([None] * n, dtype="boolean"), "latency_s": 0.1})
    labels = pd.DataFrame({"id": ids, "pair": "student~teacher", "annotator": "a", "verdict": human,
                           "score": np.nan, "note": None, "aspect": None})
    examples = pd.DataFrame({"id": ids, "reference": "r", "slice_kind": rng.choice(["a", "b", "c"], size=n)})
    outputs = pd.DataFrame([{"id": i, "role": r, "text": "x" * int(rng.integers(5, 50)), "error": None}
                            for i in ids for r in ("student", "teacher")])
    return rows, labels, examples, outputs


def baseline(rows: pd.DataFrame, labels: pd.DataFrame, n_boot: int, seed: int) -> dict:
    """Gives the seven intervals computed the way a user would: library calls in a resample loop."""
    j = rows["verdict"].to_numpy()
    h = labels.set_index("id").loc[rows["id"], "verdict"].to_numpy()
    js, hs = rows["score"].to_numpy(), (h == "equivalent").astype(float)
    idx = np.random.default_rng(seed).integers(0, len(j), size=(n_boot, len(j)))
    stats = {k: [] for k in ("agreement", "kappa", "alpha", "spearman", "kendall", "precision", "recall")}
    for sample in idx:
        a, b = j[sample], h[sample]
        stats["agreement"].append(np.mean(a == b))
        stats["kappa"].append(cohen_kappa_score(a, b))
        stats["alpha"].append(krippendorff.alpha(reliability_data=[(a == "equivalent") * 1.0, (b == "equivalent") * 1.0],
                                                 level_of_measurement="nominal"))
        stats["spearman"].append(sps.spearmanr(js[sample], hs[sample])[0])
        stats["kendall"].append(sps.kendalltau(js[sample], hs[sample])[0])
        stats["precision"].append(precision_score(b, a, pos_label="equivalent"))
        stats["recall"].append(recall_score(b, a, pos_label="equivalent"))
    return {k: np.quantile(v, [0.025, 0.975]).tolist() for k, v in stats.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--boot", type=int, default=1000)
    args = parser.parse_args()
    rows, labels, examples, outputs = tables(args.n)
    definition = load_definition("judges/equivalence.yaml")
    start = time.perf_counter()
    base = baseline(rows, labels, args.boot, seed=0)
    t_base = time.perf_counter() - start
    start = time.perf_counter()
    block = calibrate_judge(rows, labels, definition, examples, outputs, Settings(n_boot=args.boot, seed=0))
    t_ours = time.perf_counter() - start
    diff = max(abs(a - b) for k in base for a, b in zip(base[k], block[k]["ci"]))
    print(f"| {platform.machine()} CPU | {args.n} items, {args.boot} resamples | {t_base:.2f} s | {t_ours:.2f} s | "
          f"×{t_base / t_ours:.1f} | {diff:.2g} |")


if __name__ == "__main__":
    main()
