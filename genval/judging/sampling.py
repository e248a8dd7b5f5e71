"""The sample people rate: drawn stratified by slice, with every critical slice given enough items.

Critical slices first get `min_critical` items each (or all they have), because an
agreement number on five items says nothing; the rest of the sample is spread over the
slice combinations in proportion to their size (largest-remainder rounding), so the
sample looks like the eval set outside the critical slices. Those are over-drawn: the judge's
corrected rates post-stratify by membership of them (genval.analysis.judge_correction).
Seeded: the same config draws the same sample.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from genval.errors import GenvalError
from genval.judging.asking import PairSpec, pair_items

SHEET_COLUMNS = ["id", "pair", "annotator", "verdict", "score", "note"]


def pick(items: pd.DataFrame, n: int, critical: list[str], seed: int = 0, min_critical: int = 30) -> list[str]:
    """Gives the ids drawn from `items` (indexed by id, a `slice_<field>` column per slice), critical slices first."""
    slice_cols = list(items.columns)
    n = min(n, len(items))
    rng = np.random.default_rng(seed)
    picked: list[str] = []
    for ref in critical:
        field, _, value = ref.partition("=")
        column = f"slice_{field}"
        if column not in items.columns:
            continue
        members = [i for i in items.index[items[column] == value] if i not in picked]
        quota = min(len(members), min_critical, n - len(picked))
        picked.extend(rng.choice(members, size=quota, replace=False).tolist() if quota > 0 else [])
    rest = items.drop(index=picked)
    strata = rest[slice_cols].astype(str).agg("|".join, axis=1) if slice_cols else pd.Series("all", index=rest.index)
    counts = _proportional(strata.value_counts().sort_index(), n - len(picked))
    for key, k in counts.items():
        members = strata.index[strata == key].tolist()
        if k > 0:
            picked.extend(rng.choice(members, size=int(k), replace=False).tolist())
    return picked


def _proportional(sizes: pd.Series, total: int) -> pd.Series:
    """Gives per-stratum counts summing to `total`, proportional to `sizes` (largest remainder)."""
    if total <= 0 or sizes.sum() == 0:
        return sizes * 0
    exact = sizes / sizes.sum() * total
    counts = np.minimum(np.floor(exact).astype(int), sizes)
    remainder = (exact - counts).sort_values(ascending=False)
    for key in remainder.index:
        if counts.sum() >= total:
            break
        if counts[key] < sizes[key]:
            counts[key] += 1
    while counts.sum() < total and (counts < sizes).any():  # strata that hit their size pass the rest on
        for key in sizes.index:
            if counts.sum() < total and counts[key] < sizes[key]:
                counts[key] += 1
    return counts


def scale_text(scale) -> str:
    """Gives a judge's scale as a sheet states it: the verdicts to write, or the score range with its anchors."""
    if scale.kind == "ordinal":
        anchors = "; ".join(f"{k}: {v}" for k, v in sorted(scale.anchors.items()))
        return f"score {scale.min}..{scale.max}" + (f" ({anchors})" if anchors else "")
    return "verdict: " + " | ".join(scale.labels)


def stated_scale(text: str, where: str):
    """Gives the scale a sheet's `scale` column states (scale_text's words read back), or raises naming `where`.

    Only what a rating is checked against comes back: the labels, or min..max (anchors are words for people).
    """
    from genval.judging.definition import Scale

    score = re.fullmatch(r"score (-?\d+)\.\.(-?\d+)(?: \(.*\))?", text.strip(), flags=re.S)
    if score:
        return Scale.model_construct(kind="ordinal", labels=[], min=int(score.group(1)), max=int(score.group(2)))
    if text.strip().startswith("verdict: "):
        labels = [label.strip() for label in text.strip()[len("verdict: "):].split("|") if label.strip()]
        return Scale.model_construct(kind="binary" if len(labels) == 2 else "choice", labels=labels)
    raise GenvalError(f"{where}: the 'scale' column says {text!r}, not a scale as `genval sample` states one "
                      "('verdict: a | b' or 'score 1..5'); correct it, or check against a judge with --judge")


def draw_sample(examples: pd.DataFrame, outputs: pd.DataFrame, spec: PairSpec, n: int, slices: list[str],
                critical: list[str], seed: int = 0, min_critical: int = 30, exclude=(), scale=None) -> pd.DataFrame:
    """Gives the rating sheet: SHEET_COLUMNS blank for people to fill, then the scale, input, outputs and slices.

    `exclude`: ids not to draw (items already rated), so the sheet holds `n` new ones where there are.
    `scale`: the judge's scale (genval.judging.definition.Scale), stated on every row (`scale`).
    """
    items = pair_items(examples, outputs, spec)
    slice_cols = [f"slice_{s}" for s in slices if f"slice_{s}" in examples.columns]
    items = items.merge(examples[["id", *slice_cols]], on="id", how="left").set_index("id")
    items = items.drop(index=[i for i in set(exclude) if i in items.index])
    picked = pick(items[slice_cols], n, critical, seed, min_critical)
    sheet = items.loc[sorted(picked)].reset_index()
    out = pd.DataFrame({"id": sheet["id"], "pair": spec.name, "annotator": None, "verdict": None,
                        "score": None, "note": None})
    if scale is not None:
        out["scale"] = scale_text(scale)
    out["input"] = sheet["input"]
    out["reference"] = sheet["reference"]
    out[spec.candidate] = sheet["candidate"]
    if spec.other and spec.other != "reference":
        out[spec.other] = sheet["other"]
    for column in slice_cols:
        out[column] = sheet[column]
    return out
