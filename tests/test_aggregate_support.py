"""Builders for small hand-made run folders: tables and artifacts written directly, numbers known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from genval.config import parse_config
from genval.runfolder import Run

LABELS = ["pos", "neg"]


def make_config(tmp_path: Path, **extra):
    """Gives a classification RunConfig (replay models; their files are never read by aggregate)."""
    data = {"name": "hand", "task": "classification", "eval_set": "eval.jsonl", "prompt": "{input}",
            "labels": LABELS, "models": {"teacher": {"backend": "replay", "path": "t.jsonl"},
                                         "student": {"backend": "replay", "path": "s.jsonl"}},
            "slices": ["region"], "analysis": {"bootstrap": 500, "min_slice_n": 30}}
    data.update(extra)
    return parse_config(data, tmp_path)


def make_run(root: Path, teacher_correct, student_correct, region=None, sha="abc123", kl=None,
             rouge_student=None, rouge_teacher=None, json_valid=None, verdicts=None, latency=None,
             errors=None, probs=None) -> Run:
    """Writes a run folder with per-example label rows (and optional text metrics, judgments, ops).

    `probs`: role → per example [p(pos), p(neg)], written as the outputs' label_probs.
    """
    n = len(teacher_correct)
    ids = [f"e{i:03d}" for i in range(n)]
    region = region or ["a"] * n
    labels = ["pos" if i % 2 else "neg" for i in range(n)]
    examples = pd.DataFrame({"id": ids, "prompt": ["p"] * n, "system": [None] * n, "input": [f"text {i}" for i in ids],
                             "reference": labels, "label": labels, "slice_region": region,
                             "record": [json.dumps({"id": i}) for i in ids]})
    run = Run(root)
    run.root.mkdir(parents=True, exist_ok=True)
    run.manifest["eval_set"] = {"path": "eval.jsonl", "sha256": sha, "n": n}
    run.save_manifest()
    run.write_table("examples", examples)
    rows = []

    def add(pair, metric, values):
        rows.extend({"id": i, "pair": pair, "metric": metric, "value": float(v), "detail": None}
                    for i, v in zip(ids, values))

    add("teacher~reference", "label_correct", teacher_correct)
    add("student~reference", "label_correct", student_correct)
    add("student~teacher", "label_agree", [int(t == s) for t, s in zip(teacher_correct, student_correct)])
    if kl is not None:
        add("student~teacher", "kl", kl)
    if rouge_student is not None:
        add("student~reference", "rougeL", rouge_student)
        add("teacher~reference", "rougeL", rouge_teacher)
    if json_valid is not None:
        add("student", "json_valid", json_valid)
        add("teacher", "json_valid", [1.0] * n)
    scores = pd.DataFrame(rows)
    scores["value"] = scores["value"].astype("Float64")
    run.write_table("scores", scores)
    outputs = []
    errors = errors or {}
    latency = latency or {"teacher": [1.0] * n, "student": [0.5] * n}
    for role in ("teacher", "student"):
        for k, i in enumerate(ids):
            err = "timeout" if k < errors.get(role, 0) else None
            outputs.append({"id": i, "role": role, "text": None if err else labels[k], "prompt_tokens": 5,
                            "completion_tokens": 1, "latency_s": latency[role][k],
                            "label_probs": json.dumps(dict(zip(LABELS, probs[role][k])))
                            if probs and role in probs else None,
                            "error": err, "cached": False})
    run.write_table("outputs", pd.DataFrame(outputs))
    if verdicts is not None:
        # As the judge stage writes them, for a binary judge whose `equivalent` is [equivalent].
        run.write_table("judgments", pd.DataFrame({
            "id": ids, "pair": "student~teacher", "judge": "j1", "verdict": verdicts, "score": [None] * n,
            "equivalent": [None if v is None else float(v == "equivalent") for v in verdicts],
            "raw": ["r"] * n, "parsed": [v is not None for v in verdicts], "swap_consistent": [True] * n,
            "requests": [1] * n}))
    return run


def bernoulli(n, p, seed):
    """Gives n 0/1 values with about share p of ones (seeded)."""
    return (np.random.default_rng(seed).random(n) < p).astype(int).tolist()
