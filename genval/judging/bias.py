"""What a judge's agreement hides: people's own agreement (the ceiling), length bias, flips, slices.

Length bias follows the check of Dubois et al. 2024 ("Length-controlled AlpacaEval"): does
the judge's verdict track output length more than people's does?
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as sps

from genval.judging.agreement import cohen_kappa, krippendorff_alpha, raw_agreement
from genval.judging.definition import Definition


def _float(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _wide(rated: pd.DataFrame) -> pd.DataFrame:
    """Gives the ratings' values on the scale as one row per (id, pair), one column per annotator."""
    return rated.drop_duplicates(["id", "pair", "annotator"]).set_index(["id", "pair", "annotator"])["value"] \
        .unstack("annotator")


def annotator_pairs(rated: pd.DataFrame, definition: Definition) -> list[dict]:
    """Gives, per two annotators with items in common, the items shared, raw agreement and Cohen's kappa.

    `rated` holds each rating's `value` on the judge's scale (genval.judging.calibration.human_values),
    so `Equivalent` and `equivalent` are one verdict; an ordinal scale's kappa is weighted quadratically
    over its steps. The rating page and `annotator_agreement` (calibration.json) both read these.
    """
    scale = definition.scale
    categories = list(scale.tokens)
    weights = "quadratic" if scale.kind == "ordinal" else None
    if not len(rated):
        return []
    wide = _wide(rated)
    out = []
    for a, b in combinations(sorted(wide.columns), 2):
        both = wide[[a, b]].dropna()
        if len(both):
            kappa = cohen_kappa(both[a].tolist(), both[b].tolist(), weights, categories)
            out.append({"a": a, "b": b, "n": int(len(both)), "agreement": raw_agreement(both[a].tolist(), both[b].tolist()),
                        "kappa": _float(kappa) if kappa is not None else None})
    return out


def annotator_agreement(rated: pd.DataFrame, joined: pd.DataFrame, definition: Definition, s) -> dict:
    """Gives people's agreement with each other where several rated an item, and the judge's on those items."""
    scale = definition.scale
    categories = list(scale.tokens)
    weights = "quadratic" if scale.kind == "ordinal" else None
    counts = rated.groupby(["id", "pair"])["annotator"].nunique()
    multi = counts[counts >= 2].index
    names = sorted(rated["annotator"].unique())
    out = {"annotators": names, "items_multi_rated": int(len(multi))}
    if not len(multi):
        return out
    wide = _wide(rated).loc[multi]
    pairs = [p for p in annotator_pairs(rated, definition) if p["n"] >= 2]
    pair_kappas = [np.nan if p["kappa"] is None else p["kappa"] for p in pairs]
    pair_agree = [p["agreement"] for p in pairs]
    code = {c: i for i, c in enumerate(categories)}
    matrix = wide.apply(lambda col: col.map(code)).to_numpy(dtype=float).T
    level = "ordinal" if scale.kind == "ordinal" else "nominal"
    on_multi = joined.set_index(["id", "pair"]).reindex(multi).dropna(subset=["verdict"])
    judge_each = []
    for name in names:
        theirs = rated[rated["annotator"] == name].set_index(["id", "pair"])["value"]
        both = joined.set_index(["id", "pair"])["verdict"].to_frame().join(theirs.rename("human"), how="inner")
        if len(both) >= 2:
            judge_each.append(cohen_kappa(both["verdict"].tolist(), both["human"].tolist(), weights, categories))
    out.update({
        "pairwise_kappa_mean": _float(np.nanmean(pair_kappas)) if pair_kappas else None,
        "pairwise_agreement_mean": _float(np.mean(pair_agree)) if pair_agree else None,
        "alpha": _float(krippendorff_alpha(matrix, level)),
        "judge_vs_majority_kappa": _float(cohen_kappa(on_multi["verdict"].tolist(), on_multi["human"].tolist(),
                                                      weights, categories)) if len(on_multi) >= 2 else None,
        "judge_vs_majority_n": int(len(on_multi)),
        "judge_vs_each_kappa_mean": _float(np.nanmean(judge_each)) if judge_each else None,
    })
    return out


def _length(text) -> float:
    """Gives a text's length in characters; NaN where there is none (no reference, no output)."""
    return float(len(text)) if isinstance(text, str) else np.nan


def _lengths(joined: pd.DataFrame, examples: pd.DataFrame, outputs: pd.DataFrame) -> pd.DataFrame:
    """Gives the character length of each pair's two sides (`candidate_len`, `other_len`)."""
    ok = outputs[outputs["error"].isna()]
    length = {(r.id, r.role): _length(r.text) for r in ok.itertuples(index=False)}
    # An eval set without references reads its `reference` column back as NaN (a float), not None.
    ref_len = {r.id: _length(r.reference) for r in examples.itertuples(index=False)}
    cand, other = [], []
    for r in joined.itertuples(index=False):
        left, _, right = r.pair.partition("~")
        cand.append(length.get((r.id, left), np.nan))
        other.append(ref_len.get(r.id, np.nan) if right == "reference" else length.get((r.id, right), np.nan) if right else np.nan)
    return pd.DataFrame({"candidate_len": cand, "other_len": other}, index=joined.index)


def _spearman(x, y) -> float | None:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    if keep.sum() < 3 or np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
        return None
    return _float(sps.spearmanr(x[keep], y[keep])[0])


def bias_checks(totals, joined: pd.DataFrame, examples: pd.DataFrame, outputs: pd.DataFrame,
                definition: Definition) -> dict:
    """Gives the flip rate under order swap, length bias (judge vs people) and positive rates.

    `totals` (genval.judging.calibration.Totals) holds the judge's order swaps and flips.
    """
    out = {
        "flip_rate": _float(totals.flips / totals.swapped) if totals.swapped else None,
        "flip_n": int(totals.swapped),
    }
    if not len(joined):
        return out
    lens = _lengths(joined, examples, outputs)
    # Longer candidate than the other side: positive; the correlation with the verdict's number says
    # whether a longer output is judged better; compare the judge's with people's on the same items.
    gap = (lens["candidate_len"] - lens["other_len"]).to_numpy(dtype=float)
    judge_corr = _spearman(joined["score"], gap)
    human_corr = _spearman(joined["human_number"], gap)
    out["length"] = {
        "judge_vs_length_gap_spearman": judge_corr, "human_vs_length_gap_spearman": human_corr,
        "excess": None if judge_corr is None or human_corr is None else judge_corr - human_corr,
        "n": int(len(joined)),
    }
    if definition.scale.kind == "binary":
        pos = definition.scale.positive
        out["positive_rate"] = {"judge": float((joined["verdict"] == pos).mean()),
                                "human": float((joined["human"] == pos).mean())}
    if definition.mode == "pairwise":
        a, b = definition.scale.labels[:2]
        decisive = joined[joined["verdict"].isin([a, b])]
        longer = np.where(lens.loc[decisive.index, "candidate_len"] >= lens.loc[decisive.index, "other_len"], a, b)
        hum = joined[joined["human"].isin([a, b])]
        h_longer = np.where(lens.loc[hum.index, "candidate_len"] >= lens.loc[hum.index, "other_len"], a, b)
        out["picks_longer"] = {
            "judge": _float(float(np.mean(decisive["verdict"].to_numpy() == longer))) if len(decisive) else None,
            "human": _float(float(np.mean(hum["human"].to_numpy() == h_longer))) if len(hum) else None,
        }
    return out


def per_slice(joined: pd.DataFrame, examples: pd.DataFrame, definition: Definition, min_n: int) -> dict:
    """Gives agreement and kappa per slice value; a slice under `min_n` items is marked small."""
    columns = [c for c in examples.columns if c.startswith("slice_")]
    if not columns or not len(joined):
        return {}
    merged = joined.merge(examples[["id", *columns]], on="id", how="left")
    weights = "quadratic" if definition.scale.kind == "ordinal" else None
    categories = list(definition.scale.tokens)
    out: dict = {}
    for column in columns:
        field = column.removeprefix("slice_")
        out[field] = {}
        for value, group in merged.groupby(column, sort=True):
            j, h = group["verdict"].tolist(), group["human"].tolist()
            out[field][str(value)] = {
                "n": int(len(group)), "agreement": raw_agreement(j, h),
                "kappa": _float(cohen_kappa(j, h, weights, categories)), "small": len(group) < min_n,
            }
    return out
