"""The judge's equivalence rate corrected for the judge's own errors, measured on the human-rated sample.

A judge that says "equivalent" with sensitivity se (on items people call equivalent) and
specificity sp (on items people call not equivalent) reports, in expectation, the rate
p = π·se + (1 − π)(1 − sp) when the true rate is π. Solving for π gives the Rogan–Gladen
estimator (Rogan & Gladen 1978, Am J Epidemiol 107(1):71–76):

    π̂ = (p̂ + sp − 1) / (se + sp − 1),   clipped to [0, 1].

Its denominator is Youden's J = se + sp − 1 (Youden 1950, Cancer 3:32–35): at J = 0 the judge
separates nothing and there is nothing to correct with; below `MIN_YOUDEN` the correction
multiplies every error in p̂, se and sp more than 1/J-fold, so genval reports none. The
interval carries both samples' uncertainty: a percentile bootstrap (Efron & Tibshirani 1993,
ch. 13) that resamples the judged examples (p̂) and, independently, the human-rated items
(the 2×2 table of human × judge, hence se and sp); an interval that took se and sp as known
would be too narrow (Lang & Reiczigel 2014, Prev Vet Med 113(1):13–22).
"""

from __future__ import annotations

import numpy as np

from genval.stats import percentile_interval

MIN_YOUDEN = 0.2
METHOD = "Rogan–Gladen (1978), two-sample percentile bootstrap"


def two_by_two(confusion: dict, equivalent) -> dict | None:
    """Gives {tp, fn, fp, tn} from calibration.json's confusion (rows human, columns judge) and the judge's meaning.

    `equivalent` says whether a category counts as equivalent (a label in the judge file's
    `equivalent`, or an ordinal score at or above its `pass_threshold`).
    """
    labels, matrix = confusion.get("labels") or [], confusion.get("matrix") or []
    if not labels or not matrix:
        return None
    eq = np.array([bool(equivalent(label)) for label in labels])
    m = np.asarray(matrix, dtype=float)
    return {"tp": int(m[np.ix_(eq, eq)].sum()), "fn": int(m[np.ix_(eq, ~eq)].sum()),
            "fp": int(m[np.ix_(~eq, eq)].sum()), "tn": int(m[np.ix_(~eq, ~eq)].sum())}


def _estimate(p, se, sp):
    with np.errstate(divide="ignore", invalid="ignore"):
        j = se + sp - 1
        return np.where(j > 0, np.clip((p + sp - 1) / j, 0.0, 1.0), np.nan)


def rogan_gladen(positive: int, n: int, table: dict, n_boot: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> dict:
    """Gives the corrected rate {value, ci, n, sensitivity, specificity, youden_j, method, note}.

    `positive` of `n` judged examples got an equivalent verdict; `table` is the human-rated
    sample's {tp, fn, fp, tn} (tp: people and judge both say equivalent). `value` is None,
    with the reason in `note`, when the sample lacks either kind of item or J < MIN_YOUDEN.
    """
    tp, fn, fp, tn = (int(table[k]) for k in ("tp", "fn", "fp", "tn"))
    out = {"value": None, "ci": [None, None], "n": int(n), "raw": positive / n if n else None,
           "sensitivity": None, "specificity": None, "youden_j": None, "human_n": tp + fn + fp + tn,
           "method": METHOD, "note": None}
    if n == 0 or tp + fn == 0 or fp + tn == 0:
        out["note"] = "not corrected: the human-rated sample needs items people call equivalent and items they do not"
        return out
    se, sp = tp / (tp + fn), tn / (tn + fp)
    out.update(sensitivity=se, specificity=sp, youden_j=se + sp - 1)
    if se + sp - 1 < MIN_YOUDEN:
        out["note"] = (f"not corrected: Youden's J = se + sp − 1 = {se + sp - 1:.3f} is under {MIN_YOUDEN}; "
                       "the judge separates too little to correct its rate with")
        return out
    out["value"] = float(_estimate(positive / n, se, sp))
    rng = np.random.default_rng(seed)
    p_star = rng.binomial(n, positive / n, n_boot) / n
    cells = rng.multinomial(tp + fn + fp + tn, np.array([tp, fn, fp, tn]) / (tp + fn + fp + tn), n_boot)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_star = cells[:, 0] / (cells[:, 0] + cells[:, 1])
        sp_star = cells[:, 3] / (cells[:, 3] + cells[:, 2])
    out["ci"] = percentile_interval(_estimate(p_star, se_star, sp_star), confidence)
    return out


def counted(corrected: dict, unanswered: int) -> dict:
    """Gives the corrected rate over judged and unanswered examples: an unanswered one is not equivalent."""
    n = corrected["n"] + unanswered
    share = corrected["n"] / n if n else 0.0
    scale = (lambda v: None if v is None else v * share)  # noqa: E731
    return {**corrected, "value": scale(corrected["value"]), "ci": [scale(v) for v in corrected["ci"]], "n": n,
            "on_judged": {"value": corrected["value"], "ci": corrected["ci"], "n": corrected["n"]}}


def corrected_rate(positive: float, judged: int, unanswered: int, calibration: dict | None, meaning: dict | None,
                   n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict | None:
    """Gives one judge's corrected rate on one pair from its counts, its calibration block and its meaning.

    `positive` of `judged` asked examples were called equivalent; `unanswered` examples had
    nothing to judge. None without a human-agreement confusion matrix or a recorded meaning
    (calibration.json).
    """
    if not calibration or not meaning or not calibration.get("confusion"):
        return None
    threshold, equivalent = meaning.get("pass_threshold"), set(meaning.get("equivalent") or [])
    if threshold is None and not equivalent:  # an ordinal judge without a pass_threshold has no rate to correct
        return None
    table = two_by_two(calibration["confusion"], (lambda label: float(label) >= threshold) if threshold is not None
                       else (lambda label: label in equivalent))
    if table is None:
        return None
    return counted(rogan_gladen(int(positive), judged, table, n_boot, confidence, seed), unanswered)
