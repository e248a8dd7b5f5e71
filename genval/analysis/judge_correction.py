"""The judge's equivalence rate corrected by what people say about the same outputs: Rogan–Gladen and PPI++.

Every judged example of a pair falls in one cell (`CELLS`): rated by people and the judge —
tp (both say equivalent), fn (people yes, judge no), fp (people no, judge yes), tn (both no) —
or judged only (u1: the judge says equivalent, u0: it does not), or unanswered (the pair's own
output failed: nothing to judge, counted not equivalent). The counts are all either estimator
needs, for the whole run and for every slice alike.

**Rogan–Gladen** (Rogan & Gladen 1978, Am J Epidemiol 107(1):71–76). A judge with sensitivity se
and specificity sp reports, in expectation, p = π·se + (1 − π)(1 − sp) when the true rate is π,
so π̂ = (p̂ + sp − 1) / (se + sp − 1), clipped to [0, 1]. Its denominator is Youden's J
(Youden 1950, Cancer 3:32–35): below `MIN_YOUDEN` the correction multiplies every error more
than 1/J-fold and genval gives none.

**Prediction-powered inference** (Angelopoulos, Bates, Fannjiang, Jordan & Zrnic 2023, Science
382:669–674) with the power tuning of PPI++ (Angelopoulos, Duchi & Zrnic 2023, arXiv:2311.01453),
as ppi_py's `ppi_mean_pointestimate` computes it: with the judge's verdicts f on the N judged-only
examples and (Y people, f judge) on the n rated ones,
    θ̂ = λ·mean_N(f) + mean_n(Y − λ·f),   λ = Cov_n(Y, f) / ((1 + n/N)·Var(f over all n + N)), clipped to [0, 1]
(λ = 1 is the original PPI, λ = 0 people alone). Its normal interval θ̂ ± z·√(λ²·Var_N(f)/N + Var_n(Y − λf)/n)
is given as `normal_ci`, for reference.

**Intervals** (both numbers): a percentile bootstrap that resamples whole examples — an
example's verdict and, where people rated it, their rating together — as draws of the cell
counts (a multinomial over the cells is the bootstrap of examples; Efron & Tibshirani 1993,
ch. 13). Resampling the judged and the rated samples independently, as genval did before,
ignores that the rated items are judged items too: its intervals covered 99.3 % of the time
for a 95 % level. The four rated cells each get half an example (the Jeffreys prior's
pseudo-count, as in Agresti & Coull 1998, Am Stat 52:119–126, "add successes and failures")
in the distribution the resamples are drawn from: a judge that made no error on 20 rated items
has not been shown to make none, and a plain bootstrap would take its se and sp as 1.
benchmarks/coverage.py measures the coverage (benchmarks/RESULTS.md).

**Strata.** Both estimators take the rated items to be a random sample of the judged ones, and
`genval sample` does not draw one: it gives each critical slice its `min_critical` items first,
so a 5 % slice can hold a fifth of the rated sample, and a judge that errs differently there
moved Rogan–Gladen's rate by 4 points (coverage 0.77; benchmarks/coverage.py). The cells are
therefore kept per stratum — the examples' membership of the config's critical slices — and
both estimators are post-stratified (Cochran 1977, Sampling Techniques, §5A.9): each stratum's
rated items speak for that stratum's judged examples, weighted by its share of them,
    se = Σ_h W_h·tp_h/n_h / Σ_h W_h·(tp_h + fn_h)/n_h  (sp alike),   θ̂ = Σ_h W_h·θ̂_h (PPI++ per stratum, one λ),
and the bootstrap draws each stratum's examples within it. A stratum with fewer than
`MIN_STRATUM_RATED` rated items is pooled with the stratum that has the most (its own error
rate could not be read from so few); one stratum left is the unstratified estimator, exactly.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from genval.analysis.intervals import z_of
from genval.analysis.numbers import Boot
from genval.analysis.table import ASKED, HUMAN_PREFIX, judge_metric
from genval.stats import percentile_interval

CELLS = ("tp", "fn", "fp", "tn", "u1", "u0", "unanswered")
MIN_YOUDEN = 0.2
PSEUDO = 0.5   # half an example in each rated cell of the distribution resamples are drawn from
MIN_STRATUM_RATED = 10   # fewer rated items than this in a stratum: pooled with the stratum that has the most
RG_METHOD = ("Rogan–Gladen (1978); percentile bootstrap of whole examples (verdict and rating together), "
             "rated cells smoothed by ½")
PPI_METHOD = ("prediction-powered inference, PPI++ power-tuned λ (Angelopoulos et al. 2023); percentile bootstrap "
              "of whole examples, rated cells smoothed by ½")
STRATA_METHOD = ("; post-stratified by membership of the critical slices ({k} strata, each weighted by its judged "
                 "examples)")


def cells_from(table: dict, positive: float, judged: int, unanswered: int) -> np.ndarray | None:
    """Gives the cell counts from a human × judge table {tp, fn, fp, tn} and the pair's judged counts.

    For a calibration.json without per-item ratings (written by an older genval): the rated
    items are taken to be among the judged ones; None when the counts say they cannot be.
    """
    tp, fn, fp, tn = (int(table[k]) for k in ("tp", "fn", "fp", "tn"))
    u1, u0 = int(round(positive)) - tp - fp, judged - int(round(positive)) - fn - tn
    if u1 < 0 or u0 < 0:
        return None
    return np.array([tp, fn, fp, tn, u1, u0, unanswered], dtype=float)


def _cell_codes(window, judge: str, pair: str) -> np.ndarray:
    """Gives each example's cell of the judge's rate (`CELLS`), -1 for none.

    0–3: rated by people and judged (tp, fn, fp, tn); 4–5: judged only (equivalent or not); 6:
    unanswered (the pair's output failed). An asked example without a readable verdict is in no
    cell: it is left out of the rate's n, as the equivalence rate leaves it out.
    """
    verdict = window.value((pair, judge_metric(judge)))
    asked = window.value((pair, judge_metric(judge, ASKED)))
    human = window.value((pair, HUMAN_PREFIX + judge))
    judged = (asked == 1) & ~np.isnan(verdict)
    rated = judged & ~np.isnan(human)
    codes = np.full(len(verdict), -1, dtype=np.int64)
    codes[rated] = np.where(human[rated] == 1, np.where(verdict[rated] == 1, 0, 1), np.where(verdict[rated] == 1, 2, 3))
    only = judged & np.isnan(human)
    codes[only] = np.where(verdict[only] == 1, 4, 5)
    codes[asked == 0] = 6
    return codes


class JudgeCells:
    """Counts, per group, (judge, pair) and stratum, the examples in each cell of the judge's rate: what Rogan–Gladen
    and PPI need, for the whole run and every slice (an (strata, 7) array each; `strata`: see `stratum_codes`)."""

    def __init__(self, strata: int = 1):
        self.strata = strata
        self.counts: dict = defaultdict(lambda: defaultdict(lambda: np.zeros((strata, 7))))   # group → (judge, pair)

    def add(self, window, judged: list, partitions: dict, rows: int, strata: np.ndarray | None = None) -> None:
        groups = {"all": np.zeros(rows, dtype=np.int64), **{k: np.asarray(v) for k, v in partitions.items()}}
        stratum = np.zeros(rows, dtype=np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
        size = self.strata * 7
        for judge, pair in judged:
            codes = _cell_codes(window, judge, pair)
            has = codes >= 0
            for partition, group in groups.items():
                keep = has & (group >= 0)
                if not keep.any():
                    continue
                width = int(group[keep].max()) + 1
                flat = group[keep] * size + stratum[keep] * 7 + codes[keep]
                table = np.bincount(flat, minlength=width * size).reshape(width, self.strata, 7)
                for code in np.flatnonzero(table.sum(axis=(1, 2))):
                    self.counts[(partition, int(code))][(judge, pair)] += table[code]

    def of(self, group) -> dict:
        """Gives (judge, pair) → cell counts of one group, for the pairs people rated anywhere in the run."""
        rated = {key for key, c in self.counts.get(("all", 0), {}).items() if c[..., :4].sum()}
        return {key: c for key, c in self.counts.get(group, {}).items() if key in rated}


def stratum_codes(frame, critical: list[tuple[str, str]]) -> np.ndarray:
    """Gives each example's stratum: which of the critical slices (column, value) it belongs to, as bits."""
    codes = np.zeros(len(frame), dtype=np.int64)
    for bit, (column, value) in enumerate(critical):
        values = frame[column]
        codes += (values.notna() & (values.astype(str) == value)).to_numpy().astype(np.int64) << bit
    return codes


def merged_strata(c) -> np.ndarray:
    """Gives the strata estimators use: empty ones dropped, each with under `MIN_STRATUM_RATED` rated items pooled
    with the one that has the most; a single row (the unstratified cells) when one is left."""
    c = np.asarray(c, dtype=float)
    if c.ndim == 1:
        return c
    c = c[c.sum(axis=1) > 0]
    if len(c) <= 1:
        return c.sum(axis=0) if len(c) else np.zeros(7)
    rated = c[:, :4].sum(axis=1)
    small = rated < MIN_STRATUM_RATED
    if small.all():
        return c.sum(axis=0)
    keep = c[~small].copy()
    keep[int(np.argmax(rated[~small]))] += c[small].sum(axis=0)
    return keep[0] if len(keep) == 1 else keep


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


def _columns(c: np.ndarray) -> tuple:
    """Gives the cells of one count vector, or of every row of a matrix of draws, as float columns."""
    c = np.asarray(c, dtype=float)
    return tuple(c[..., k] for k in range(len(CELLS)))


def rogan_gladen_of(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gives (π̂ over judged examples, π̂ over judged and unanswered) of counts (vectorised over draws; NaN: none)."""
    tp, fn, fp, tn, u1, u0, out = _columns(c)
    judged = tp + fn + fp + tn + u1 + u0
    with np.errstate(divide="ignore", invalid="ignore"):
        p, se, sp = (tp + fp + u1) / judged, tp / (tp + fn), tn / (tn + fp)
        j = se + sp - 1
        on_judged = np.where(j > 0, np.clip((p + sp - 1) / j, 0.0, 1.0), np.nan)
        return on_judged, on_judged * judged / (judged + out)


def ppi_of(c: np.ndarray, lam=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gives (θ̂ over judged examples, θ̂ over judged and unanswered, λ) of counts (vectorised over draws).

    PPI++'s tuned λ when `lam` is None (ppi_py's `_calc_lam_glm` for a mean, clipped to [0, 1]).
    """
    tp, fn, fp, tn, u1, u0, out = _columns(c)
    n, big_n = tp + fn + fp + tn, u1 + u0
    with np.errstate(divide="ignore", invalid="ignore"):
        y, f = (tp + fn) / n, (tp + fp) / n
        cov = tp / n - y * f                                   # Cov_n(Y, f), 1/n as ppi_py
        total = n + big_n
        q = (tp + fp + u1) / total
        var_all = q * (1 - q) * total / (total - 1)            # np.cov of f over both sets (ddof 1)
        if lam is None:
            lam = np.where((var_all > 0) & (big_n > 0), np.clip(cov / ((1 + n / big_n) * var_all), 0.0, 1.0), 0.0)
        imputed = np.where(big_n > 0, u1 / big_n, 0.0)
        on_judged = lam * imputed + y - lam * f
        return on_judged, on_judged * (n + big_n) / (n + big_n + out), lam * np.ones_like(on_judged)


def _per_stratum(c: np.ndarray) -> tuple[tuple, np.ndarray]:
    """Gives the cells of (…, strata, 7) counts as (…, strata) columns, and each stratum's weight W_h: its share of
    the judged examples."""
    cols = _columns(c)
    judged = sum(cols[:6])
    with np.errstate(divide="ignore", invalid="ignore"):
        return cols, judged / judged.sum(axis=-1, keepdims=True)


def rogan_gladen_strata_of(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gives (π̂ over judged, π̂ over judged and unanswered, se, sp) of per-stratum counts, post-stratified
    (vectorised over draws; NaN: none)."""
    (tp, fn, fp, tn, u1, u0, out), w = _per_stratum(c)
    n = tp + fn + fp + tn
    judged = (n + u1 + u0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        def share(x):   # a rated cell's share of all judged examples: each stratum's rated items speak for it
            return (w * x / n).sum(axis=-1)
        p = (tp + fp + u1).sum(axis=-1) / judged
        se, sp = share(tp) / share(tp + fn), share(tn) / share(tn + fp)
        j = se + sp - 1
        on_judged = np.where(j > 0, np.clip((p + sp - 1) / j, 0.0, 1.0), np.nan)
        return on_judged, on_judged * judged / (judged + out.sum(axis=-1)), se, sp


def ppi_strata_of(c: np.ndarray, lam=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gives (θ̂ over judged, θ̂ over judged and unanswered, λ) of per-stratum counts: PPI++ within each stratum with
    one λ (the pooled cells' tuned one when `lam` is None; any λ leaves θ̂ unbiased), weighted by W_h."""
    c = np.asarray(c, dtype=float)
    (tp, fn, fp, tn, u1, u0, out), w = _per_stratum(c)
    lam = ppi_of(c.sum(axis=-2))[2] if lam is None else lam * np.ones(c.shape[:-2])
    n, big_n = tp + fn + fp + tn, u1 + u0
    with np.errstate(divide="ignore", invalid="ignore"):
        lam_h = np.where(big_n > 0, np.asarray(lam)[..., None], 0.0)   # a stratum rated whole: people's rate alone
        theta = lam_h * np.where(big_n > 0, u1 / big_n, 0.0) + (tp + fn) / n - lam_h * (tp + fp) / n
        on_judged = (w * theta).sum(axis=-1)
        judged = (n + big_n).sum(axis=-1)
        return on_judged, on_judged * judged / (judged + out.sum(axis=-1)), np.asarray(lam)


def normal_ci(c: np.ndarray, lam: float, confidence: float) -> list:
    """Gives the PPI paper's normal interval θ̂ ± z·√(λ²·Var_N(f)/N + Var_n(Y − λf)/n) over judged examples; of
    per-stratum counts, θ̂ ± z·√Σ_h W_h²·(…)_h, each stratum's variance as that."""
    c = np.asarray(c, dtype=float)
    rows = c.reshape(-1, 7)
    judged = rows[:, :6].sum(axis=1)
    variance = 0.0
    for row, weight in zip(rows, judged / judged.sum()):
        tp, fn, fp, tn, u1, u0, _ = (float(x) for x in row)
        n, big_n = tp + fn + fp + tn, u1 + u0
        lam_h = lam if big_n else 0.0
        y, f, yf = (tp + fn) / n, (tp + fp) / n, tp / n
        rectifier = y * (1 - y) + lam_h ** 2 * f * (1 - f) - 2 * lam_h * (yf - y * f)   # Var_n(Y − λf), ddof 0
        imputed = (u1 / big_n) * (1 - u1 / big_n) if big_n else 0.0
        variance += weight ** 2 * ((lam_h ** 2 * imputed / big_n if big_n else 0.0) + max(rectifier, 0.0) / n)
    value = float((ppi_of(c, lam) if c.ndim == 1 else ppi_strata_of(c, lam))[0])
    half = z_of(confidence) * float(np.sqrt(variance))
    return [value - half, value + half]


def draws(c: np.ndarray, boot: Boot) -> np.ndarray:
    """Gives `boot.n_boot` resampled cell counts: the examples drawn again, whole (rated cells smoothed by ½); of
    per-stratum counts, each stratum's examples drawn within it (n_boot × strata × 7)."""
    rng = np.random.default_rng(boot.seed)
    rows = []
    for row in np.atleast_2d(np.asarray(c, dtype=float)):
        weights = row.copy()
        weights[:4] += PSEUDO
        rows.append(rng.multinomial(int(round(row.sum())), weights / weights.sum(), boot.n_boot))
    return rows[0] if np.ndim(c) == 1 else np.stack(rows, axis=1)


def _base(c: np.ndarray) -> dict:
    tp, fn, fp, tn, u1, u0, out = (int(round(x)) for x in c.reshape(-1, 7).sum(axis=0))
    judged = tp + fn + fp + tn + u1 + u0
    return {"value": None, "ci": [None, None], "n": judged + out, "human_n": tp + fn + fp + tn,
            "raw": (tp + fp + u1) / judged if judged else None}


def _rated_note(c: np.ndarray) -> str | None:
    tp, fn, fp, tn = c.reshape(-1, 7).sum(axis=0)[:4]
    if tp + fn + fp + tn == 0:
        return "not corrected: no example here has a human rating of this pair"
    if tp + fn == 0 or fp + tn == 0:
        return "not corrected: the human-rated sample needs items people call equivalent and items they do not"
    return None


def _method(method: str, c: np.ndarray) -> str:
    return method + (STRATA_METHOD.format(k=len(c)) if c.ndim == 2 else "")


def rogan_gladen(c, boot: Boot = Boot(), resampled: np.ndarray | None = None) -> dict:
    """Gives the Rogan–Gladen rate {value, ci, n, sensitivity, specificity, youden_j, human_n, raw, method, note,
    on_judged} of cell counts (`CELLS`; per stratum: `merged_strata`'s rows); `resampled`: the draws to read the
    interval from (else drawn here)."""
    c = np.asarray(c, dtype=float)
    estimate = rogan_gladen_of if c.ndim == 1 else (lambda x: rogan_gladen_strata_of(x)[:2])
    out = {**_base(c), "sensitivity": None, "specificity": None, "youden_j": None, "method": _method(RG_METHOD, c),
           "note": _rated_note(c)}
    out["on_judged"] = {"value": None, "ci": [None, None], "n": out["n"] - int(c[..., 6].sum())}
    if out["note"]:
        return out
    if c.ndim == 1:
        tp, fn, fp, tn = c[:4]
        se, sp = tp / (tp + fn), tn / (tn + fp)
    else:
        se, sp = rogan_gladen_strata_of(c)[2:]
    out.update(sensitivity=float(se), specificity=float(sp), youden_j=float(se + sp - 1))
    if se + sp - 1 < MIN_YOUDEN:
        out["note"] = (f"not corrected: Youden's J = se + sp − 1 = {se + sp - 1:.3f} is under {MIN_YOUDEN}; "
                       "the judge separates too little to correct its rate with")
        return out
    on_judged, counted = (float(v) for v in estimate(c))
    stats = estimate(draws(c, boot) if resampled is None else resampled)
    out.update(value=counted, ci=percentile_interval(stats[1], boot.confidence))
    out["on_judged"].update(value=on_judged, ci=percentile_interval(stats[0], boot.confidence))
    return out


def ppi(c, boot: Boot = Boot(), resampled: np.ndarray | None = None) -> dict:
    """Gives the PPI++ rate {value, ci, n, lambda, normal_ci, classic, human_n, raw, method, note, on_judged} of
    cell counts (`CELLS`; per stratum: `merged_strata`'s rows); `classic` is the original PPI (λ = 1) with its
    interval from the same draws."""
    c = np.asarray(c, dtype=float)
    estimate = ppi_of if c.ndim == 1 else ppi_strata_of
    out = {**_base(c), "lambda": None, "normal_ci": [None, None], "classic": None, "method": _method(PPI_METHOD, c),
           "note": None if c[..., :4].sum() else "no example here has a human rating of this pair"}
    out["on_judged"] = {"value": None, "ci": [None, None], "n": out["n"] - int(c[..., 6].sum())}
    if out["note"]:
        return out
    on_judged, counted, lam = (float(v) for v in estimate(c))
    resampled = draws(c, boot) if resampled is None else resampled
    stats = estimate(resampled)
    classic = estimate(resampled, 1.0)
    out.update(value=counted, ci=percentile_interval(stats[1], boot.confidence), **{"lambda": lam},
               normal_ci=normal_ci(c, lam, boot.confidence),
               classic={"value": float(estimate(c, 1.0)[1]), "ci": percentile_interval(classic[1], boot.confidence)})
    out["on_judged"].update(value=on_judged, ci=percentile_interval(stats[0], boot.confidence))
    return out


def corrected(c, boot: Boot) -> tuple[dict, dict]:
    """Gives (Rogan–Gladen, PPI++) of one pair's cell counts — one row, or one per stratum (`JudgeCells`), merged
    as `merged_strata` says — read off the same resampled examples."""
    c = merged_strata(c)
    resampled = draws(c, boot) if c[..., :4].sum() else None
    return rogan_gladen(c, boot, resampled), ppi(c, boot, resampled)
