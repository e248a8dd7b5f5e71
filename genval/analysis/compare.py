"""Version over version: two runs on the same frozen eval set, per metric and slice, with paired intervals.

Each change is mean(B − A) over the examples both runs scored, with a paired bootstrap
interval; a 0/1 number (label correctness, agreement, judge equivalence, format validity)
also gets McNemar's exact test on the discordant pairs (McNemar 1947; exact binomial form,
as in Fagerland, Lydersen & Laake 2013, BMC Med Res Methodol 13:91).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from genval.analysis.gate import lower_is_better
from genval.analysis.numbers import Boot, percentile_interval, paired_difference, resampled_means
from genval.analysis.slices import configured
from genval.analysis.table import example_numbers
from genval.errors import GenvalError
from genval.run import Run, open_run, read_summary


def mcnemar_exact(before, after) -> dict:
    """Gives McNemar's exact two-sided test for paired 0/1 outcomes: b (1→0), c (0→1), p_value."""
    b = int(sum(1 for x, y in zip(before, after) if x == 1 and y == 0))
    c = int(sum(1 for x, y in zip(before, after) if x == 0 and y == 1))
    n = b + c
    if n == 0:
        return {"b": 0, "c": 0, "p_value": 1.0}
    # Two-sided exact p: twice the binomial(n, 1/2) tail at min(b, c), in log space for large n.
    log_terms = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2)
                 for k in range(min(b, c) + 1)]
    top = max(log_terms)
    tail = math.exp(top) * sum(math.exp(t - top) for t in log_terms)
    return {"b": b, "c": c, "p_value": min(1.0, 2 * tail)}


def fingerprint(run: Run) -> str | None:
    """Gives the eval-set fingerprint a run recorded (manifest, else summary.json)."""
    sha = (run.manifest.get("eval_set") or {}).get("sha256")
    if sha is None and run.has("summary.json"):
        sha = (read_summary(run.root).get("eval_set") or {}).get("sha256")
    return sha


def _rows(a: pd.DataFrame, b: pd.DataFrame, ids: set[str] | None, boot: Boot) -> list[dict]:
    if ids is not None:
        a, b = a[a["id"].isin(ids)], b[b["id"].isin(ids)]
    before = a.groupby(["pair", "metric", "id"])["value"].mean()
    after = b.groupby(["pair", "metric", "id"])["value"].mean()
    joined = pd.concat([before.rename("a"), after.rename("b")], axis=1, join="inner").dropna()
    out = []
    for (pair, metric), group in joined.groupby(level=[0, 1], sort=True):
        change = paired_difference(group["b"], group["a"], boot)
        binary = set(group["a"].unique()) | set(group["b"].unique()) <= {0.0, 1.0}
        lo, hi = change["ci"]
        worse = (lo is not None and lo > 0) if lower_is_better(metric) else (hi is not None and hi < 0)
        better = (hi is not None and hi < 0) if lower_is_better(metric) else (lo is not None and lo > 0)
        out.append({"pair": pair, "metric": metric, "before": float(group["a"].mean()),
                    "after": float(group["b"].mean()), "change": change,
                    "mcnemar": mcnemar_exact(group["a"], group["b"]) if binary else None,
                    "regressed": bool(worse), "improved": bool(better)})
    retention = _retention_row(a, b, None, boot)
    return ([retention] if retention else []) + out


def _retention_row(a: pd.DataFrame, b: pd.DataFrame, ids: set[str] | None, boot: Boot) -> dict | None:
    """Gives the change in accuracy retention (student / teacher accuracy) with a paired bootstrap interval.

    All four accuracy columns (teacher and student, runs A and B) are resampled on the same
    examples, so the interval of the difference of ratios keeps every pairing.
    """
    def column(frame, pair):
        rows = frame[(frame["pair"] == pair) & (frame["metric"] == "label_correct")]
        if ids is not None:
            rows = rows[rows["id"].isin(ids)]
        return rows.groupby("id")["value"].mean()

    table = pd.concat([column(a, "teacher~reference").rename("ta"), column(a, "student~reference").rename("sa"),
                       column(b, "teacher~reference").rename("tb"), column(b, "student~reference").rename("sb")],
                      axis=1, join="inner").dropna()
    if table.empty or table["ta"].mean() == 0 or table["tb"].mean() == 0:
        return None
    before = table["sa"].mean() / table["ta"].mean()
    after = table["sb"].mean() / table["tb"].mean()
    ci = [None, None]
    if len(table) >= 2:
        ta, sa, tb, sb = resampled_means([table[c].to_numpy(float) for c in ("ta", "sa", "tb", "sb")], boot)
        with np.errstate(divide="ignore", invalid="ignore"):
            ci = percentile_interval(sb / tb - sa / ta, boot.confidence)
    lo, hi = ci
    return {"pair": "student~teacher", "metric": "accuracy_retention", "before": float(before), "after": float(after),
            "change": {"value": float(after - before), "ci": ci, "n": int(len(table))}, "mcnemar": None,
            "regressed": bool(hi is not None and hi < 0), "improved": bool(lo is not None and lo > 0)}


def compare_runs(path_a: str | Path, path_b: str | Path, boot: Boot = Boot()) -> dict:
    """Gives run B's change against run A per metric, overall and per slice, and the list of regressions."""
    run_a, run_b = open_run(path_a), open_run(path_b)
    sha_a, sha_b = fingerprint(run_a), fingerprint(run_b)
    if sha_a is None or sha_b is None or sha_a != sha_b:
        raise GenvalError(f"{path_b}: eval-set fingerprint {str(sha_b)[:12]} differs from {path_a}'s "
                          f"{str(sha_a)[:12]}; compare only runs on the same frozen eval set")
    numbers_a, numbers_b = example_numbers(run_a), example_numbers(run_b)
    result = {"a": str(path_a), "b": str(path_b), "eval_set_sha256": sha_a,
              "overall": _rows(numbers_a, numbers_b, None, boot), "slices": {}}
    for field, groups in configured(run_b.read_table("examples")).items():
        result["slices"][field] = {value: _rows(numbers_a, numbers_b, set(ids), boot) for value, ids in groups.items()}
    regressions = [f"{r['metric']} [{r['pair']}] overall: {_say(r)}" for r in result["overall"] if r["regressed"]]
    for field, groups in result["slices"].items():
        for value, rows in groups.items():
            regressions += [f"{r['metric']} [{r['pair']}] on {field}={value}: {_say(r)}" for r in rows if r["regressed"]]
    result["regressions"] = regressions
    return result


def _say(row: dict) -> str:
    lo, hi = row["change"]["ci"]
    p = f", McNemar p={row['mcnemar']['p_value']:.3g}" if row["mcnemar"] else ""
    return f"{row['before']:.4g} → {row['after']:.4g} (change {row['change']['value']:+.4g}, " \
           f"95 % CI {lo:+.4g}…{hi:+.4g}, n={row['change']['n']}{p})"


def markdown(result: dict) -> str:
    """Gives the comparison as Markdown: the regressions first, then every overall change."""
    lines = [f"# genval compare: {result['b']} vs {result['a']}", "",
             f"Eval set sha256 `{result['eval_set_sha256'][:12]}` (same in both runs).", ""]
    if result["regressions"]:
        lines += ["**Regressed** (interval entirely on the worse side):", ""]
        lines += [f"- {line}" for line in result["regressions"]] + [""]
    else:
        lines += ["No number regressed beyond its interval.", ""]
    lines += ["| pair | metric | before | after | change | 95 % CI | McNemar p |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["overall"]:
        lo, hi = r["change"]["ci"]
        ci = "–" if lo is None else f"{lo:+.4g}…{hi:+.4g}"
        p = f"{r['mcnemar']['p_value']:.3g}" if r["mcnemar"] else "–"
        flag = " ▼" if r["regressed"] else (" ▲" if r["improved"] else "")
        lines.append(f"| {r['pair']} | {r['metric']} | {r['before']:.4g} | {r['after']:.4g} | "
                     f"{r['change']['value']:+.4g}{flag} | {ci} | {p} |")
    return "\n".join(lines) + "\n"
