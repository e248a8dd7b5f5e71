"""Label probabilities: KL divergence, calibration (ECE, reliability table, Brier, NLL) and temperature scaling.

Every function takes plain arrays: `probs` is (n, k) with rows summing to 1 over the label set,
`gold` is (n,) label indices.
"""

from __future__ import annotations

import numpy as np

# Student probabilities are clipped from below at this value (then renormalised) before the
# KL and the log: a 0 where the teacher puts mass would make KL infinite and say nothing useful.
EPSILON = 1e-6

# Interpretation of KL(teacher ‖ student), from the distillation literature's rules of thumb
# (e.g. Hinton et al. 2015 report soft-target matching; practitioners' bands as the issue states).
KL_BANDS = ((0.05, "near-identical"), (0.1, "very good"), (0.5, "acceptable"))


def kl_signature(sources: str, eps: float = EPSILON) -> str:
    """Gives the signature of KL(teacher ‖ student): unit, clipping, and how each role's label probabilities were made."""
    return f"KL(teacher||student)|nats|eps:{eps:g}|label_probs:{sources}"


def ece_signature(bins: int, sources: str) -> str:
    """Gives the signature of the ECE: its equal-width bins and how the label probabilities were made."""
    return f"ECE|bins:{bins}|equal-width|label_probs:{sources}"


def clip(probs: np.ndarray, eps: float = EPSILON) -> np.ndarray:
    """Gives `probs` with every entry at least `eps`, rows renormalised to sum to 1."""
    out = np.clip(np.asarray(probs, dtype=float), eps, None)
    return out / out.sum(axis=1, keepdims=True)


def kl_per_example(teacher: np.ndarray, student: np.ndarray, eps: float = EPSILON) -> np.ndarray:
    """Gives KL(teacher ‖ student) per row, in nats: Σ p log(p / q), with q clipped at `eps`; terms with p = 0 are 0."""
    p = np.asarray(teacher, dtype=float)
    q = clip(student, eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / q), 0.0)
    # KL is never negative (Gibbs' inequality); float rounding of two equal rows leaves −1e-16, which a report
    # printed as a KL of "-1.11e-16" (a parity run's teacher against itself).
    return np.maximum(terms.sum(axis=1), 0.0)


def kl_band(value: float | None) -> str | None:
    """Gives the interpretation band of a mean KL: near-identical, very good, acceptable or weak."""
    if value is None:
        return None
    for bound, name in KL_BANDS:
        if value < bound:
            return name
    return "weak"


def bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Gives each confidence's bin among `bins` equal-width bins [i/B, (i+1)/B), the top bin closed at 1.0.

    Without the closing, a confidence of exactly 1.0 would fall in bin B and be dropped.
    """
    return np.minimum((np.asarray(confidence, dtype=float) * bins).astype(int), bins - 1)


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> list[dict]:
    """Gives the per-bin table a reliability diagram draws: lo, hi, n, mean confidence, accuracy (None when empty)."""
    idx = bin_index(confidence, bins)
    table = []
    for b in range(bins):
        mask = idx == b
        n = int(mask.sum())
        table.append({"lo": b / bins, "hi": (b + 1) / bins, "n": n,
                      "confidence": float(confidence[mask].mean()) if n else None,
                      "accuracy": float(correct[mask].mean()) if n else None})
    return table


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float | None:
    """Gives the expected calibration error Σ_b (n_b / N) |acc_b − conf_b| (Guo et al. 2017, eq. 3)."""
    confidence = np.asarray(confidence, dtype=float)
    if confidence.size == 0:
        return None
    idx = bin_index(confidence, bins)
    conf_sum = np.bincount(idx, weights=confidence, minlength=bins)
    acc_sum = np.bincount(idx, weights=np.asarray(correct, dtype=float), minlength=bins)
    return float(np.abs(acc_sum - conf_sum).sum() / confidence.size)


def brier(probs: np.ndarray, gold: np.ndarray) -> float | None:
    """Gives the multi-class Brier score: mean over rows of Σ_k (p_k − y_k)² (Brier 1950)."""
    probs = np.asarray(probs, dtype=float)
    if probs.shape[0] == 0:
        return None
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(gold)), gold] = 1.0
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def nll(probs: np.ndarray, gold: np.ndarray, eps: float = EPSILON) -> float | None:
    """Gives the mean negative log-likelihood of the gold label, probabilities clipped at `eps`."""
    probs = np.asarray(probs, dtype=float)
    if probs.shape[0] == 0:
        return None
    return float(-np.log(np.maximum(probs[np.arange(len(gold)), gold], eps)).mean())


def with_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Gives softmax(log p / T): the distribution a temperature T puts on the same logits (up to a constant)."""
    logits = np.log(clip(probs)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def fit_temperature(probs: np.ndarray, gold: np.ndarray) -> float | None:
    """Gives the temperature that minimises NLL on (probs, gold) — temperature scaling (Guo et al. 2017, §4.2)."""
    from scipy.optimize import minimize_scalar

    if len(gold) == 0:
        return None
    # search log T so the bound is symmetric: T between 0.05 and 20
    found = minimize_scalar(lambda log_t: nll(with_temperature(probs, float(np.exp(log_t))), gold),
                            bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(found.x))
