"""Agreement statistics between a judge and people: raw agreement, Cohen's kappa, Krippendorff's alpha.

Written with numpy so the bootstrap can call them a thousand times; the tests check each
against scikit-learn's `cohen_kappa_score` and the `krippendorff` package.
"""

from __future__ import annotations

import numpy as np


def _codes(a, b) -> tuple[np.ndarray, np.ndarray, list]:
    categories = sorted(set(a) | set(b), key=lambda v: (isinstance(v, str), v))
    index = {c: i for i, c in enumerate(categories)}
    return np.array([index[v] for v in a]), np.array([index[v] for v in b]), categories


def raw_agreement(a, b) -> float:
    """Gives the share of items on which the two raters gave the same value."""
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    return float(np.mean(a == b)) if len(a) else float("nan")


def cohen_kappa(a, b, weights: str | None = None, categories: list | None = None) -> float:
    """Gives Cohen's kappa (Cohen 1960); `weights='quadratic'` for ordinal scales (Cohen 1968).

    κ = 1 − Σ w·O / Σ w·E, with O the observed and E the chance confusion matrix; the
    quadratic weights use category positions, so numeric categories must be given in order
    (`categories`), else the sorted union of both raters' values. NaN when undefined.
    """
    if len(a) == 0:
        return float("nan")
    if categories is None:
        x, y, categories = _codes(a, b)
    else:
        index = {c: i for i, c in enumerate(categories)}
        x, y = np.array([index[v] for v in a]), np.array([index[v] for v in b])
    k = len(categories)
    observed = np.zeros((k, k))
    np.add.at(observed, (x, y), 1)
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    grid = np.arange(k)
    if weights == "quadratic":
        w = (grid[:, None] - grid[None, :]) ** 2.0
    elif weights == "linear":
        w = np.abs(grid[:, None] - grid[None, :]).astype(float)
    else:
        w = 1.0 - np.eye(k)
    denom = (w * expected).sum()
    if denom == 0:
        return float("nan")
    return float(1.0 - (w * observed).sum() / denom)


def krippendorff_alpha(ratings, level: str = "nominal") -> float:
    """Gives Krippendorff's alpha over a raters × items matrix (NaN = not rated); Krippendorff 2011.

    α = 1 − D_o / D_e from the coincidence matrix of pairable values; `level` is nominal,
    ordinal or interval (the difference functions of Krippendorff's "Computing
    Krippendorff's Alpha-Reliability", 2011). Values must be numeric codes.
    """
    data = np.asarray(ratings, dtype=float)
    values = np.unique(data[~np.isnan(data)])
    if values.size < 2:
        return float("nan")
    # counts[u, c]: how many raters gave item u the value c; only items rated twice or more are pairable.
    counts = (data.T[:, :, None] == values[None, None, :]).sum(axis=1).astype(float)
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    weighted = counts / (m - 1)[:, None]
    # Σ_u (c_u c_uᵀ − diag c_u) / (m_u − 1), the coincidence matrix, for all items at once.
    coincidence = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    if n <= 1:
        return float("nan")
    delta = _difference(values, n_c, level)
    observed = (coincidence * delta).sum() / n
    expected = (np.outer(n_c, n_c) * delta).sum() / (n * (n - 1))
    if expected == 0:
        return float("nan")
    return float(1.0 - observed / expected)


def _difference(values: np.ndarray, n_c: np.ndarray, level: str) -> np.ndarray:
    k = values.size
    if level == "nominal":
        return 1.0 - np.eye(k)
    if level == "interval":
        return (values[:, None] - values[None, :]) ** 2
    if level == "ordinal":
        cum = np.cumsum(n_c)
        delta = np.zeros((k, k))
        for i in range(k):
            for j in range(k):
                lo, hi = min(i, j), max(i, j)
                between = cum[hi] - cum[lo] + n_c[lo]  # Σ n_g for g in lo..hi
                delta[i, j] = (between - (n_c[i] + n_c[j]) / 2.0) ** 2
        return delta
    raise ValueError(f"unknown level {level!r}")


def precision_recall(judge, human, positive) -> tuple[float, float]:
    """Gives the precision and recall of the judge's `positive` verdicts against the humans'."""
    j = np.asarray(judge, dtype=object) == positive
    h = np.asarray(human, dtype=object) == positive
    tp = float(np.sum(j & h))
    precision = tp / j.sum() if j.sum() else float("nan")
    recall = tp / h.sum() if h.sum() else float("nan")
    return precision, recall


def confusion(judge, human, labels: list) -> list[list[int]]:
    """Gives counts[h][j]: rows are the humans' values, columns the judge's, in `labels` order."""
    index = {v: i for i, v in enumerate(labels)}
    out = np.zeros((len(labels), len(labels)), dtype=int)
    for j, h in zip(judge, human):
        if j in index and h in index:
            out[index[h], index[j]] += 1
    return out.tolist()
