"""Leakage: training examples that are exact or near duplicates of eval examples.

A frozen eval set that the student was trained on measures memory, not ability. Exact
duplicates are found by sha256 of the normalised text; near duplicates by MinHash over word
n-grams (Broder 1997, "On the resemblance and containment of documents") with LSH banding
(Leskovec, Rajaraman & Ullman, Mining of Massive Datasets, ch. 3), each candidate then
confirmed by its exact Jaccard similarity.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

import numpy as np

from genval.errors import GenvalError
from genval.evalset import Record, as_text, read_records
from genval.progress import Progress

PRIME = (1 << 61) - 1  # Mersenne prime; hashes < 2^32 and multipliers < 2^31 keep a·x + b under 2^63
TEXT_FIELDS = ("input", "text", "prompt", "question", "document")


def normalise(text: str) -> str:
    """Gives text folded for comparison: NFKC, lower case, punctuation dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def record_text(data: dict, field: str | None) -> str:
    """Gives the text of a record: the named field, else the first usual text field, else every string value."""
    if field:
        if field not in data:
            raise KeyError(field)
        return as_text(data[field])
    for name in TEXT_FIELDS:
        if name in data:
            return as_text(data[name])
    return " ".join(str(v) for k, v in data.items() if k != "id" and isinstance(v, str))


def read_texts(path: Path, field: str | None) -> list[tuple[str, str]]:
    """Gives (id, text) per record of a JSONL/CSV/Parquet/datasets file, or per line of a .txt file."""
    path = Path(path)
    if not path.exists():
        raise GenvalError(f"{path}: no such file")
    if path.suffix.lower() == ".txt":
        lines = path.read_text(encoding="utf-8").splitlines()
        return [(f"line {n}", line) for n, line in enumerate(lines, start=1) if line.strip()]
    out = []
    for n, record in enumerate(read_records(path), start=1):
        out.append((str(record.data.get("id", f"record {n}")), _text(record, field)))
    return out


def _text(record: Record, field: str | None) -> str:
    try:
        return record_text(record.data, field)
    except KeyError:
        raise GenvalError(f"{record.where}: no field '{field}' (choose the text field with --field)") from None


def shingles(text: str, n: int) -> set[str]:
    """Gives the set of word n-grams of normalised text (the whole text when shorter than n words)."""
    words = normalise(text).split()
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def _hashes(items: set[str]) -> np.ndarray:
    return np.array([int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=4).digest(), "little")
                     for s in items], dtype=np.uint64)


def signatures(sets: list[set[str]], num_perm: int, seed: int = 0, bar=None) -> np.ndarray:
    """Gives the MinHash signature (num_perm values) of each shingle set; empty sets get all-max rows."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 31, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, 1 << 31, size=num_perm, dtype=np.uint64)
    out = np.full((len(sets), num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    for row, items in enumerate(sets):
        if items:
            h = _hashes(items)[:, None]
            out[row] = ((a[None, :] * h + b[None, :]) % PRIME).min(axis=0)
        if bar is not None:
            bar.update(1)
    return out


def jaccard(x: set, y: set) -> float:
    """Gives |x ∩ y| / |x ∪ y| (0 for two empty sets)."""
    union = len(x | y)
    return len(x & y) / union if union else 0.0


def _candidates(eval_sig: np.ndarray, train_sig: np.ndarray, bands: int) -> set[tuple[int, int]]:
    rows = eval_sig.shape[1] // bands
    pairs = set()
    for band in range(bands):
        part = slice(band * rows, (band + 1) * rows)
        buckets: dict[bytes, list[int]] = {}
        for i, sig in enumerate(eval_sig[:, part]):
            buckets.setdefault(sig.tobytes(), []).append(i)
        for j, sig in enumerate(train_sig[:, part]):
            for i in buckets.get(sig.tobytes(), ()):
                pairs.add((i, j))
    return pairs


def find_leaks(eval_texts: list[tuple[str, str]], train_texts: list[tuple[str, str]], threshold: float = 0.8,
               ngram: int = 5, num_perm: int = 128, bands: int = 32, progress=None) -> dict:
    """Gives the exact and near duplicates between eval and training texts, and the share of eval leaked."""
    if num_perm % bands:
        raise GenvalError(f"--num-perm {num_perm} must be a multiple of --bands {bands}")
    eval_hash = {}
    for ident, text in eval_texts:
        eval_hash.setdefault(hashlib.sha256(normalise(text).encode()).hexdigest(), []).append(ident)
    exact = []
    for ident, text in train_texts:
        for eval_id in eval_hash.get(hashlib.sha256(normalise(text).encode()).hexdigest(), ()):
            exact.append({"eval_id": eval_id, "train_id": ident})
    eval_sets = [shingles(t, ngram) for _, t in eval_texts]
    train_sets = [shingles(t, ngram) for _, t in train_texts]
    progress = progress or Progress(quiet=True)
    with progress.bar("leakage: MinHash", total=len(eval_sets) + len(train_sets), unit="text") as bar:
        eval_sig, train_sig = signatures(eval_sets, num_perm, bar=bar), signatures(train_sets, num_perm, bar=bar)
    pairs = _candidates(eval_sig, train_sig, bands)
    exact_keys = {(e["eval_id"], e["train_id"]) for e in exact}
    near = []
    for i, j in sorted(pairs):
        score = jaccard(eval_sets[i], train_sets[j])
        key = (eval_texts[i][0], train_texts[j][0])
        if score >= threshold and key not in exact_keys:
            near.append({"eval_id": key[0], "train_id": key[1], "jaccard": round(score, 4)})
    leaked = sorted({e["eval_id"] for e in exact} | {e["eval_id"] for e in near})
    return {"n_eval": len(eval_texts), "n_train": len(train_texts), "threshold": threshold, "ngram": ngram,
            "num_perm": num_perm, "bands": bands, "exact": exact, "near": near, "leaked_eval_ids": leaked,
            "leaked_share": len(leaked) / len(eval_texts) if eval_texts else 0.0}
