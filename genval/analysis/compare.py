"""Version over version: two runs on the same frozen eval set, per number and slice, with paired tests.

Each change is mean(B − A) over the examples both runs have, with a paired bootstrap
interval — for a 0/1 number (label correctness, agreement, judge equivalence, format validity)
Newcombe's paired score interval, which a bootstrap cannot replace when no example changed
(genval.analysis.intervals). Its p-value: McNemar's exact test on the discordant pairs for a
0/1 number (McNemar 1947, exact binomial form as in Fagerland, Lydersen & Laake 2013, BMC Med
Res Methodol 13:91), else read off the bootstrap interval (genval.analysis.significance), never below
2 · 0.5ⁿ, the least an exact paired test of n examples can give. Each
distinct number is tested once: two columns of a pair with the same values in both runs (a
binary judge's `score` and `equivalent`, an extraction's `field:<label field>` and
`label_correct`) are one number, listed under `same` and not tested again. Every test of the
comparison, overall and per slice, is corrected together with Holm's step-down procedure (Holm 1979). A number is
regressed or improved when its Holm-adjusted p is at most 1 − confidence and its change shows at
the number's printing precision, on the side genval.registry calls worse or better; a change
that does not show when printed is unchanged. Teacher rows that did not change are not listed.
Ops figures (latency, throughput, cost, memory) are compared too; without intervals on both
sides they are listed as deltas, not tested.
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from genval import registry
from genval.analysis import intervals
from genval.analysis.blocks import no_zero_width, zero_width
from genval.analysis.numbers import Boot, paired_difference, percentile_interval, resampled_means
from genval.analysis.significance import holm, two_sided_p
from genval.analysis.slices import configured
from genval.analysis.table import example_numbers
from genval.errors import GenvalError
from genval.runfolder import Run, open_run
from genval.summary import read

OPS_FIGURES = ("latency_p50_s", "latency_p95_s", "requests_per_s", "output_tokens_per_s", "cost_per_1k_calls",
               "peak_memory_bytes")


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
    sha = run.manifest.get("eval_set", {}).get("sha256")
    if sha is None and run.has("summary.json"):
        sha = read(run.root).eval_set.sha256
    return sha


def _row(metric: str, pair: str, where: str | None, a: float, b: float, change: dict, p: float | None,
         test: str) -> dict:
    return {"metric": metric, "pair": pair, "slice": where, "a": float(a), "b": float(b),
            "change": change["value"], "ci": change["ci"], "n": change["n"], "p": p, "test": test}


def _rows(a: pd.DataFrame, b: pd.DataFrame, ids: set[str] | None, boot: Boot, where: str | None) -> list[dict]:
    """Gives one tested row per (pair, metric) the two runs share, over `ids` (all when None)."""
    if ids is not None:
        a, b = a[a["id"].isin(ids)], b[b["id"].isin(ids)]
    before = a.groupby(["pair", "metric", "id"])["value"].mean()
    after = b.groupby(["pair", "metric", "id"])["value"].mean()
    joined = pd.concat([before.rename("a"), after.rename("b")], axis=1, join="inner").dropna()
    out, seen = [], {}
    groups = sorted(joined.groupby(level=[0, 1], sort=True), key=lambda item: (item[0][0], _preference(item[0][1])))
    for (pair, metric), group in groups:
        key = (pair, tuple(group.index.get_level_values(2)), group["a"].to_numpy().tobytes(),
               group["b"].to_numpy().tobytes())
        if key in seen:  # the same values in both runs: one number under two names, tested once
            out.append({"metric": metric, "pair": pair, "slice": where, "same_as": seen[key]})
            continue
        seen[key] = metric
        if set(group["a"].unique()) | set(group["b"].unique()) <= {0.0, 1.0}:
            change = _binary_change(group["a"].to_numpy(), group["b"].to_numpy(), boot.confidence)
            p, test = mcnemar_exact(group["a"], group["b"])["p_value"], "mcnemar"
        else:
            change = paired_difference(group["b"], group["a"], boot)
            p, test = _floored(two_sided_p(change["value"], change["ci"], boot.confidence), change["n"]), \
                "paired bootstrap"
            if zero_width(change):  # every example changed by the same amount: no spread to read a p-value off
                change = {**change, "ci": [None, None]}
                p, test = (_least_p(change["n"]) if change["value"] else 1.0), "sign test"
        out.append(_row(metric, pair, where, group["a"].mean(), group["b"].mean(), change, p, test))
    retention = _retention_row(a, b, boot, where)
    return ([retention] if retention else []) + out


def _least_p(n: int) -> float:
    """Gives 2 · 0.5ⁿ, the least two-sided p an exact paired test of n examples (sign flips of the differences;
    the sign test) can give: the sign test's p when all n move the same way."""
    return min(1.0, 2 * 0.5 ** n)


def _floored(p: float | None, n: int) -> float | None:
    """Gives a paired bootstrap p-value no smaller than `_least_p(n)`: read off a normal approximation to the
    interval it had no floor, and 4 examples that all got worse (a GenvalCallback step's slice) read p = 0.0002,
    not 0.125."""
    return None if p is None else max(p, _least_p(n))


def _preference(metric: str) -> tuple:
    """Orders the names one number may have: the verdict before a binary judge's score, a label's correctness
    before the field it is read from."""
    return metric.endswith(":score"), metric.startswith("field:"), metric


def _binary_change(before: np.ndarray, after: np.ndarray, confidence: float) -> dict:
    """Gives mean(after − before) of paired 0/1 values with Newcombe's interval (method 10)."""
    both = int(np.sum((after == 1) & (before == 1)))
    only_after, only_before = int(np.sum((after == 1) & (before == 0))), int(np.sum((after == 0) & (before == 1)))
    n = len(after)
    return {"value": (only_after - only_before) / n, "n": n, "method": intervals.NEWCOMBE,
            "ci": intervals.paired_difference(both, only_after, only_before, n - both - only_after - only_before,
                                              confidence)}


def _retention_row(a: pd.DataFrame, b: pd.DataFrame, boot: Boot, where: str | None) -> dict | None:
    """Gives the change in accuracy retention (student / teacher accuracy) with a paired bootstrap interval.

    All four accuracy columns (teacher and student, runs A and B) are resampled on the same
    examples, so the interval of the difference of ratios keeps every pairing.
    """
    def column(frame, pair):
        rows = frame[(frame["pair"] == pair) & (frame["metric"] == "label_correct")]
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
    change = no_zero_width({"value": float(after - before), "ci": ci, "n": int(len(table))})
    return _row("accuracy_retention", "student~teacher", where, before, after, change,
                _floored(two_sided_p(change["value"], ci, boot.confidence), change["n"]), "paired bootstrap")


def _figure(figures: dict, name: str) -> tuple[float | None, list | None]:
    """Gives (value, interval) of an ops figure; latency P50/P95 carry theirs as `<name minus _s>_ci_s`."""
    value = figures.get(name)
    ci = figures.get(name.removesuffix("_s") + "_ci_s") if name.endswith("_s") else None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None, None
    return float(value), ci if isinstance(ci, list) and len(ci) == 2 else None


def _ops_rows(run_a: Run, run_b: Run, confidence: float) -> list[dict]:
    """Gives per role and ops figure the change B − A; tested only where both runs give the figure an interval."""
    ops_a, ops_b = ((r.read_json("ops.json").get("roles") if r.has("ops.json") else None) or {}
                    for r in (run_a, run_b))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    out = []
    for role in sorted(set(ops_a) & set(ops_b)):
        for figure in OPS_FIGURES:
            (a, ci_a), (b, ci_b) = _figure(ops_a[role], figure), _figure(ops_b[role], figure)
            if a is None or b is None:
                continue
            ci, p = None, None
            if ci_a and ci_b and None not in (*ci_a, *ci_b):
                # Two independent runs: the standard errors add in quadrature (each read off its interval).
                se = math.hypot((ci_a[1] - ci_a[0]) / (2 * z), (ci_b[1] - ci_b[0]) / (2 * z))
                ci = [b - a - z * se, b - a + z * se]
                p = two_sided_p(b - a, ci, confidence)
            out.append(_row(figure, role, None, a, b, {"value": b - a, "ci": ci, "n": None}, p,
                            "independent intervals" if p is not None else "not tested (no interval)"))
    return out


def classify(rows: list[dict], confidence: float) -> dict[str, list[dict]]:
    """Gives rows sorted into regressed, improved, unchanged, changed (no known direction) and untested.

    Holm's correction runs over every row with a p-value whose change shows at its printing
    precision (one that does not is unchanged whatever its p, so it is not tested); a teacher
    row that did not change is left out.
    """
    alpha = 1 - confidence
    shows = [not (registry.spec(r["metric"]) or registry.SHARE).printed_zero(r["change"]) for r in rows]
    for row, adjusted in zip(rows, holm([r["p"] if s else None for r, s in zip(rows, shows)])):
        row["p_holm"] = adjusted
    out: dict[str, list[dict]] = {"regressed": [], "improved": [], "unchanged": [], "changed": [], "untested": []}
    for row, show in zip(rows, shows):
        found = registry.spec(row["metric"])
        if not show:
            kind = "unchanged"
        elif row["p_holm"] is None:
            kind = "untested"
        elif row["p_holm"] > alpha:
            kind = "unchanged"
        elif found is None or not found.sign:
            kind = "changed"
        else:
            kind = "improved" if found.sign * row["change"] > 0 else "regressed"
        if kind == "unchanged" and row["pair"].split("~")[0] == "teacher":
            continue
        out[kind].append(row)
    return out


def compare_runs(path_a: str | Path, path_b: str | Path, boot: Boot = Boot()) -> dict:
    """Gives run B's change against run A per number, overall and per slice, sorted by what it means."""
    run_a, run_b = open_run(path_a), open_run(path_b)
    sha_a, sha_b = fingerprint(run_a), fingerprint(run_b)
    if sha_a is None or sha_b is None or sha_a != sha_b:
        raise GenvalError(f"{path_b}: eval-set fingerprint {str(sha_b)[:12]} differs from {path_a}'s "
                          f"{str(sha_a)[:12]}; compare only runs on the same frozen eval set")
    numbers_a, numbers_b = example_numbers(run_a), example_numbers(run_b)
    rows = _rows(numbers_a, numbers_b, None, boot, None)
    for field, groups in configured(run_b.read_table("examples")).items():
        for value, ids in groups.items():
            rows += _rows(numbers_a, numbers_b, set(ids), boot, f"{field}={value}")
    rows += _ops_rows(run_a, run_b, boot.confidence)
    same = [r for r in rows if "same_as" in r]
    rows = [r for r in rows if "same_as" not in r]
    sorted_rows = classify(rows, boot.confidence)
    return {"a": str(path_a), "b": str(path_b), "eval_set_sha256": sha_a, "confidence": boot.confidence,
            "incomplete": {"a": _incomplete(run_a), "b": _incomplete(run_b)},
            "tests": sum(r["p_holm"] is not None for r in rows), **sorted_rows, "same": same}


def _incomplete(run) -> str | None:
    """Gives why a run's decision is INCOMPLETE (its first reason), None when it is not or it has no summary.

    Its numbers count the failed requests as wrong: a change against it can be the failures, not the model,
    and compare used to say nothing of it."""
    if not run.has("summary.json"):
        return None
    decision = read(run.root).decision
    return (decision.reasons[0] if decision.reasons else "INCOMPLETE") if decision.verdict == "INCOMPLETE" else None


def _where(row: dict) -> str:
    return f"on {row['slice']}" if row["slice"] else "overall"


def _p(value: float) -> str:
    """Gives a p-value as printed, with its relation: '=0.0123', or '<0.0001' below what a paired test of a few
    hundred examples can mean (the JSON keeps the number)."""
    return "<0.0001" if value < 1e-4 else f"={value:.3g}"


def _say(row: dict) -> str:
    fmt = (registry.spec(row["metric"]) or registry.SHARE).format
    lo, hi = row["ci"] or [None, None]
    ci = f", {fmt(lo, True)}…{fmt(hi, True)}" if lo is not None else ""
    p = f", p{_p(row['p'])} (Holm {_p(row['p_holm'])}, {row['test']})" if row["p_holm"] is not None else ""
    n = f", n={row['n']}" if row["n"] else ""
    return f"{fmt(row['a'])} → {fmt(row['b'])} (change {fmt(row['change'], True)}{ci}{p}{n})"


def markdown(result: dict) -> str:
    """Gives the comparison as Markdown: regressed, improved, changed, then the overall table and ops."""
    alpha = 1 - result["confidence"]
    lines = [f"# genval compare: {result['b']} vs {result['a']}", "",
             f"Eval set sha256 `{result['eval_set_sha256'][:12]}` (same in both runs). {result['tests']} tests, "
             f"Holm-corrected; a change counts when its adjusted p ≤ {alpha:g} and it shows at the number's precision.",
             ""]
    for side in ("a", "b"):
        why = (result.get("incomplete") or {}).get(side)
        if why:
            lines += [f"**Run {side.upper()} ({result[side]}) is INCOMPLETE**: {why} — its numbers count the failed "
                      "requests as wrong, so a change may be those failures, not the model (a plain `genval run` "
                      "retries them).", ""]
    overall_same = [r for r in result.get("same", []) if r["slice"] is None]
    if overall_same:
        lines += ["Tested once (the same values under another name): " + ", ".join(
            f"{r['metric']} [{r['pair']}] = {r['same_as']}" for r in overall_same) + ".", ""]
    for kind, title, empty in (("regressed", "**Regressed**", "No number regressed."),
                               ("improved", "**Improved**", "No number improved."),
                               ("changed", "**Changed** (no better side is known for these numbers)", None)):
        if result[kind]:
            lines += [f"{title}:", ""] + [f"- {r['metric']} [{r['pair']}] {_where(r)}: {_say(r)}"
                                          for r in result[kind]] + [""]
        elif empty:
            lines += [empty, ""]
    overall = sorted((r for kind in ("regressed", "improved", "changed", "unchanged") for r in result[kind]
                      if r["slice"] is None and r["metric"] not in OPS_FIGURES),
                     key=lambda r: (r["pair"], r["metric"]))
    lines += ["| pair | metric | A | B | change | 95 % CI | p (Holm) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in overall:
        fmt = (registry.spec(r["metric"]) or registry.SHARE).format
        lo, hi = r["ci"] or [None, None]
        ci = "–" if lo is None else f"{fmt(lo, True)}…{fmt(hi, True)}"
        p = "–" if r["p_holm"] is None else f"{_p(r['p']).lstrip('=')} ({_p(r['p_holm']).lstrip('=')})"
        flag = " ▼" if r in result["regressed"] else (" ▲" if r in result["improved"] else "")
        lines.append(f"| {r['pair']} | {r['metric']} | {fmt(r['a'])} | {fmt(r['b'])} | {fmt(r['change'], True)}{flag} "
                     f"| {ci} | {p} |")
    ops = [r for kind in ("regressed", "improved", "unchanged", "untested") for r in result[kind]
           if r["metric"] in OPS_FIGURES]
    if ops:
        lines += ["", "Operations (B − A; tested only where both runs give an interval):", "",
                  "| role | figure | A | B | change |", "| --- | --- | --- | --- | --- |"]
        for r in ops:
            fmt = (registry.spec(r["metric"]) or registry.SHARE).format
            lines.append(f"| {r['pair']} | {r['metric']} | {fmt(r['a'])} | {fmt(r['b'])} | {fmt(r['change'], True)} |")
    return "\n".join(lines) + "\n"
