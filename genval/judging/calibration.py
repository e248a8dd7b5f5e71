"""Calibration: how well a judge agrees with the human-rated sample, with intervals, and whether to trust it.

A judge is `validated` only when the lower end of its kappa's interval reaches `min_kappa`
(default 0.6, the lower bound of "substantial" in Landis & Koch 1977); the gate ignores an
unvalidated judge and the report shows its numbers under a warning.

Intervals: the raw agreement is a share, with its Wilson score interval (genval.analysis.intervals);
kappa, alpha and the correlations a percentile bootstrap over the rated items. A bootstrap cannot
see a disagreement it never samples (10 of 10 items agreed resample to κ = 1 every time), so with
fewer than `min_slice_n` items, or an interval of width 0, an unweighted kappa's interval is
widened to at least the kappas the Wilson ends of the agreement give at the observed chance
agreement: κ(p) = (p − p_e) / (1 − p_e) (Cohen 1960). Each number's `method` says which.
`rated` lists the items with their human (majority) value: aggregate reads it to correct the
judge's rate per slice (genval.analysis.judge_correction).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from genval.errors import GenvalError
from genval.judging.agreement import (
    cohen_kappa, confusion, krippendorff_alpha, precision_recall,
)
from genval.judging.bias import annotator_agreement, bias_checks, per_slice
from genval.judging.definition import Definition
from genval.judging.parsing import match_scale
from genval.analysis.intervals import WILSON, wilson
from genval.judging.threshold import best_threshold
from genval.stats import bootstrap_ci

BOOTSTRAP = "percentile bootstrap over the rated items"
WIDENED = "percentile bootstrap over the rated items, widened to κ at the Wilson ends of the agreement"


@dataclass
class Settings:
    """What the calibration of one judge needs besides the tables."""

    min_kappa: float = 0.6
    n_boot: int = 1000
    confidence: float = 0.95
    seed: int = 0
    min_slice_n: int = 30
    price: object = None  # genval.config.Price or None
    labels_path: str = "human_labels"


def human_values(labels: pd.DataFrame, definition: Definition, where: str) -> pd.DataFrame:
    """Gives each rating's value on the judge's scale: `value` (category) and `number` (for correlations).

    Ratings of another kind (scores for a label scale, or the reverse) are left out: they
    belong to another judge. A rating of the right kind that is off the scale is an error
    (`check_ratings` finds it before a run writes anything; this is the last line of defence).
    """
    scale = definition.scale
    values, numbers, keep = [], [], []
    for row in labels.itertuples(index=False):
        if scale.kind == "ordinal":
            if pd.isna(row.score):
                keep.append(False)
                continue
            if not scale.min <= row.score <= scale.max:  # never clipped: 9 on 1–5 is a mistake, not a 5
                raise GenvalError(f"{where}: '{row.id}' ({row.pair}, {row.annotator}) has score {row.score:g}, "
                                  f"off judge '{definition.name}''s scale {scale.min}..{scale.max}")
            values.append(str(int(np.floor(row.score + 0.5))))
            numbers.append(float(row.score))
        else:
            if pd.isna(row.verdict):
                keep.append(False)
                continue
            parsed = match_scale(row.verdict, scale)
            if parsed.verdict is None:
                raise GenvalError(f"{where}: '{row.id}' ({row.pair}, {row.annotator}) has verdict {row.verdict!r}, "
                                  f"not on judge '{definition.name}''s scale ({', '.join(scale.labels)})")
            values.append(parsed.verdict)
            numbers.append(_verdict_number(parsed.verdict, definition))
        keep.append(True)
    out = labels[keep].copy()
    out["value"], out["number"] = values, numbers
    return out


def _verdict_number(verdict: str, definition: Definition) -> float:
    scale = definition.scale
    if scale.kind == "ordinal":
        return float(verdict)
    if scale.kind == "binary":
        return 1.0 if verdict == scale.positive else 0.0
    return {scale.labels[0]: 1.0, scale.labels[1]: 0.0}.get(verdict, 0.5)


def majority(rated: pd.DataFrame, definition: Definition) -> pd.DataFrame:
    """Gives one human value per (id, pair): the majority label (ties dropped) or the median score."""
    rows = []
    for (ident, pair), group in rated.groupby(["id", "pair"], sort=True):
        if definition.scale.kind == "ordinal":
            median = float(np.median(group["number"]))
            value = str(int(np.clip(np.floor(median + 0.5), definition.scale.min, definition.scale.max)))
            number = float(group["number"].mean())
        else:
            counts = group["value"].value_counts()
            if len(counts) > 1 and counts.iloc[0] == counts.iloc[1]:
                continue  # a split vote is no majority; the item is left out, not guessed
            value = counts.index[0]
            number = _verdict_number(value, definition)
        rows.append({"id": ident, "pair": pair, "human": value, "human_number": number, "raters": len(group)})
    return pd.DataFrame(rows, columns=["id", "pair", "human", "human_number", "raters"])


def _boot(stat, n: int, s: Settings) -> dict:
    """Gives {value, ci, n} for a statistic of item indices, with its percentile-bootstrap interval."""
    idx = np.arange(n, dtype=float)
    value = stat(idx.astype(int)) if n else float("nan")

    def safe(sample):
        v = stat(sample.astype(int))
        return v if np.isfinite(v) else np.nan

    lo, hi = bootstrap_ci(idx, statistic=safe, n_boot=s.n_boot, confidence=s.confidence, seed=s.seed) if n >= 2 else (None, None)
    clean = lambda v: None if v is None or not np.isfinite(v) else float(v)  # noqa: E731
    return {"value": clean(value), "ci": [clean(lo), clean(hi)], "n": int(n), "method": BOOTSTRAP}


def _share(hits: int, n: int, s: Settings) -> dict:
    """Gives a share of the rated items with its Wilson interval."""
    if not n:
        return {"value": None, "ci": [None, None], "n": 0, "method": WILSON}
    return {"value": hits / n, "ci": wilson(hits, n, s.confidence), "n": int(n), "method": WILSON}


def _widened(kappa: dict, j, h, categories: list, s: Settings) -> dict:
    """Gives an unweighted kappa whose interval reaches at least κ at the Wilson ends of the raw agreement.

    Only where the bootstrap is least to be trusted: fewer than `min_slice_n` items, or an
    interval of width 0 (every resample agreed as the sample did).
    """
    lo, hi = kappa["ci"]
    n = len(j)
    if kappa["value"] is None or not n or (n >= s.min_slice_n and lo is not None and hi > lo):
        return kappa
    chance = sum(np.mean(j == c) * np.mean(h == c) for c in categories)
    if chance >= 1:
        return kappa
    ends = [(p - chance) / (1 - chance) for p in wilson(int(np.sum(j == h)), n, s.confidence)]
    lo, hi = (ends[0], ends[1]) if lo is None else (min(lo, ends[0]), max(hi, ends[1]))
    return {**kappa, "ci": [float(lo), float(hi)], "method": WIDENED}


def _correlation(func, x, y):
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(func(x, y)[0])


def headline(joined: pd.DataFrame, definition: Definition, s: Settings) -> dict:
    """Gives agreement, kappa, alpha, Spearman, Kendall, precision and recall, each with CI and n."""
    scale = definition.scale
    j = joined["verdict"].to_numpy(dtype=object)
    h = joined["human"].to_numpy(dtype=object)
    js = joined["score"].to_numpy(dtype=float)
    hs = joined["human_number"].to_numpy(dtype=float)
    categories = list(scale.tokens)
    weights = "quadratic" if scale.kind == "ordinal" else None
    code = {c: i for i, c in enumerate(categories)}
    level = "ordinal" if scale.kind == "ordinal" else "nominal"
    kappa = _boot(lambda i: cohen_kappa(j[i], h[i], weights, categories), len(j), s)
    out = {
        "agreement": _share(int(np.sum(j == h)), len(j), s),
        "kappa": kappa if weights else _widened(kappa, j, h, categories, s),
        "alpha": _boot(lambda i: krippendorff_alpha([[code[v] for v in j[i]], [code[v] for v in h[i]]], level),
                       len(j), s),
        "spearman": _boot(lambda i: _correlation(sps.spearmanr, js[i], hs[i]), len(j), s),
        "kendall": _boot(lambda i: _correlation(sps.kendalltau, js[i], hs[i]), len(j), s),
    }
    if scale.kind == "binary":
        out["precision"] = _boot(lambda i: precision_recall(j[i], h[i], scale.positive)[0], len(j), s)
        out["recall"] = _boot(lambda i: precision_recall(j[i], h[i], scale.positive)[1], len(j), s)
    else:
        out["precision"] = out["recall"] = None
    out["confusion"] = {"labels": categories, "rows": "human", "columns": "judge",
                        "matrix": confusion(j, h, categories)}
    return out


@dataclass
class Totals:
    """A judge's asked rows summed: the pairs it answered, judgments, unparsed, order swaps and flips, tokens, seconds.

    Summed batch by batch (`add`), so a judge's calibration needs in memory only the rows
    people rated, whatever the number of judgments.
    """

    pairs: set = field(default_factory=set)
    judgments: int = 0
    unparsed: int = 0
    swapped: int = 0
    flips: int = 0
    seconds: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0

    def add(self, rows: pd.DataFrame) -> "Totals":
        self.pairs |= set(rows["pair"])
        self.judgments += len(rows)
        self.unparsed += int((~rows["parsed"].astype(bool)).sum())
        swapped = rows["swap_consistent"].dropna() if "swap_consistent" in rows else pd.Series(dtype=bool)
        self.swapped += len(swapped)
        self.flips += int((~swapped.astype(bool)).sum())
        for name in ("seconds", "prompt_tokens", "completion_tokens"):
            column = "latency_s" if name == "seconds" else name
            if column in rows:
                setattr(self, name, getattr(self, name) + float(rows[column].fillna(0).sum()))
        return self


def _cost(totals: Totals, price) -> tuple[float | None, float]:
    """Gives the judge's cost (from its model's price) and its model seconds, over its judgments."""
    seconds = totals.seconds
    if price is None:
        return None, seconds
    cost = 0.0
    if price.per_million_input_tokens is not None:
        cost += totals.prompt_tokens * price.per_million_input_tokens / 1e6
    if price.per_million_output_tokens is not None:
        cost += totals.completion_tokens * price.per_million_output_tokens / 1e6
    if price.per_gpu_hour is not None:
        cost += seconds / 3600 * price.per_gpu_hour * price.gpus  # summed latency: an upper bound under concurrency
    return cost, seconds


def calibrate_judge(rows: pd.DataFrame, labels: pd.DataFrame, definition: Definition, examples: pd.DataFrame,
                    outputs: pd.DataFrame, s: Settings, aspect: str | None = None,
                    totals: Totals | None = None) -> dict:
    """Gives one judge's calibration block (the shape calibration.json holds per judge).

    `rows` are the judge's asked judgments — all of them, or (with `totals` summed over all
    of them) those of the items people rated; `examples` and `outputs` need hold only those items.
    """
    aspect = aspect or definition.aspect
    totals = totals or Totals().add(rows)
    pairs = totals.pairs
    mine = labels[labels["pair"].isin(pairs)]
    if aspect is not None:
        mine = mine[mine["aspect"].isna() | (mine["aspect"] == aspect)]
    rated = human_values(mine, definition, s.labels_path)
    human = majority(rated, definition)
    usable = rows[rows["verdict"].notna()]
    joined = usable.merge(human, on=["id", "pair"], how="inner").sort_values(["pair", "id"]).reset_index(drop=True)
    warnings = []
    if not len(rated):
        warnings.append(f"no human rating of this judge's pairs ({', '.join(sorted(pairs))}) on its scale "
                        f"({'scores' if definition.scale.kind == 'ordinal' else ', '.join(definition.scale.labels)})")
    unparsed = totals.unparsed
    if unparsed:
        warnings.append(f"{unparsed} of {totals.judgments} judgments could not be parsed; they are left out")
    if len(joined) < s.min_slice_n:
        warnings.append(f"only {len(joined)} items are rated by both the judge and people (fewer than {s.min_slice_n})")
    block = headline(joined, definition, s)
    lo = block["kappa"]["ci"][0]
    validated = bool(lo is not None and lo >= s.min_kappa)
    if not validated:
        warnings.append(f"kappa's interval lower end {lo:.3f} is below min_kappa {s.min_kappa}: the gate ignores "
                        "this judge" if lo is not None else
                        f"kappa has no interval ({len(joined)} items rated by both the judge and people; it takes "
                        f"2 or more, and {s.min_slice_n} to rank): the gate ignores this judge")
    cost, seconds = _cost(totals, s.price)
    return {
        "validated": validated, "min_kappa": s.min_kappa, "n": int(len(joined)), "aspect": aspect,
        **block,
        "annotators": annotator_agreement(rated, joined, definition, s),
        "bias": bias_checks(totals, joined, examples, outputs, definition),
        "per_slice": per_slice(joined, examples, definition, s.min_slice_n),
        "threshold": best_threshold(joined, definition, s.seed),
        "unparsed": unparsed, "judgments": int(totals.judgments), "warnings": warnings,
        "cost": cost, "seconds": seconds,
        "rated": {"id": [str(v) for v in human["id"]], "pair": [str(v) for v in human["pair"]],
                  "human": [str(v) for v in human["human"]]},
    }


def ranking(judges: dict) -> list[str]:
    """Gives judge names best first: by kappa (validated first), then cheaper, then faster."""
    def key(name):
        block = judges[name]
        kappa = block["kappa"]["value"]
        return (not block["validated"], -(kappa if kappa is not None else -2.0),
                block["cost"] if block["cost"] is not None else float("inf"), block["seconds"])

    return sorted(judges, key=key)
