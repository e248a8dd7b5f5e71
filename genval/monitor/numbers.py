"""Every number of one window, per slice, with its interval: agreement with the reference, accuracy
against people's labels, the configured metrics, and the failure rates.

A share — every value 0 or 1: agreement, accuracy, the failure rates, a 0/1 metric — gets the Wilson
score interval of its count, as in a run (docs/reports.md): a percentile bootstrap of 16 agreeing
requests out of 16 is [1, 1], and `agreement_rate lower >= 0.85` passed on it as if certain (a failure
rate of 0 in 24 requests likewise had upper end 0). Other numbers resample the sample's rows
(genval.stats, seeded).
A student failure counts as a disagreement and at each metric's worst value (as in a run); a
reference failure leaves the row out of agreement and metrics, and shows as `reference_failure_rate`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genval.analysis.intervals import wilson
from genval.analysis.numbers import Boot, mean
from genval.metrics import MetricContext, get_metric
from genval.metrics.classification import match_label
from genval.monitor.config import MonitorConfig

ALL = "all"  # the slice that holds every request of the window


def same_answer(candidate: str | None, other: str | None, labels: list[str] | None) -> bool:
    """Says whether two answers agree: the same label of the set (classification), else the same text up to spacing."""
    if candidate is None or other is None:
        return False
    if labels:
        found = match_label(candidate, labels)
        return found is not None and found == match_label(other, labels)
    return " ".join(candidate.split()) == " ".join(other.split())


def reference_label(text: str | None, probs: dict | None, labels: list[str]) -> str | None:
    """Gives the reference's label: its text when that names a label, else the argmax of its label probabilities."""
    found = match_label(text, labels) if text else None
    if found is None and probs:
        found = max(probs, key=probs.get)
    return found


def score_sample(rows: pd.DataFrame, config: MonitorConfig) -> tuple[pd.DataFrame, dict]:
    """Gives the sample with per-row numbers (`agree`, `ref_failed`, one per metric) and the metrics' settings."""
    rows = rows.copy()
    answered = rows["reference"].notna()
    rows["ref_failed"] = (~answered).astype(float)
    rows["agree"] = [float(same_answer(o, r, config.labels)) if ok else np.nan
                     for o, r, ok in zip(rows["output"], rows["reference"], answered)]
    settings: dict = {}
    for spec in config.metrics:
        metric = get_metric(spec.name)
        scored = answered & rows["output"].notna()
        ctx = MetricContext(task=config.task, options=spec.options, labels=config.labels,
                            segments=[("student~teacher", 0, int(scored.sum()))], ids=rows.loc[scored, "id"].tolist())
        if metric.kind == "pair":
            result = metric.func(rows.loc[scored, "output"].tolist(), rows.loc[scored, "reference"].tolist(), ctx)
        else:
            result = metric.func(rows.loc[scored, "output"].tolist(), ctx)
        settings.update(result.settings)
        for column, values in result.values.items():
            full = pd.Series(np.nan, index=rows.index)
            full[scored] = [np.nan if v is None else float(v) for v in values]
            worst = metric.worst(column)
            full[answered & rows["output"].isna()] = np.nan if worst is None else worst
            rows[f"metric:{column}"] = full
    return rows, settings


def share_number(n: int, failed: int, boot: Boot) -> dict:
    """Gives failed / n (a share of all requests) as {value, ci, n}, with its Wilson score interval."""
    if n == 0:
        return {"value": None, "ci": [None, None], "n": 0}
    return {"value": failed / n, "ci": wilson(failed, n, boot.confidence), "n": n}


def sample_mean(values, boot: Boot) -> dict:
    """Gives the mean of `values` (NaN dropped) as {value, ci, n}: Wilson's interval when every value is 0 or 1."""
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size and np.isin(arr, (0.0, 1.0)).all():
        return share_number(int(arr.size), int(arr.sum()), boot)
    return mean(arr, boot)


def slice_masks(frame: pd.DataFrame, slices: list[str]) -> dict[str, np.ndarray]:
    """Gives `all` and each `field=value` of the frame's slice columns, as boolean row masks."""
    out = {ALL: np.ones(len(frame), dtype=bool)}
    for name in slices:
        column = frame[f"slice_{name}"].astype(str).to_numpy() if len(frame) else np.array([], dtype=str)
        for value in sorted(set(column)):
            out[f"{name}={value}"] = column == value
    return out


def sample_numbers(scored: pd.DataFrame, mask: np.ndarray, boot: Boot) -> dict[str, dict]:
    """Gives the sample's numbers on the rows of `mask`: agreement, reference failures, each metric."""
    part = scored[mask] if len(scored) else scored
    out = {"agreement_rate": sample_mean(part["agree"], boot) if len(part) else mean([], boot),
           "reference_failure_rate": sample_mean(part["ref_failed"], boot) if len(part) else mean([], boot)}
    for column in [c for c in scored.columns if c.startswith("metric:")]:
        out[column.removeprefix("metric:")] = sample_mean(part[column], boot)
    return out


def window_numbers(window, scored: pd.DataFrame, config: MonitorConfig, boot: Boot) -> dict[str, dict[str, dict]]:
    """Gives slice → number → {value, ci, n} for one window (`window`: collect.Window, `scored`: its sample)."""
    out: dict[str, dict[str, dict]] = {}
    masks = slice_masks(scored, config.slices) if config.reference is not None else {}
    names = {ALL} | {f"{f}={v}" for f, v in window.slices}
    labelled = pd.DataFrame([dict(zip(config.slices, values), correct=c) for values, c in window.labelled],
                            columns=[*config.slices, "correct"])
    for name in sorted(names, key=lambda s: (s != ALL, s)):
        numbers: dict[str, dict] = {}
        if name == ALL:
            numbers["failure_rate"] = share_number(window.n, window.failed, boot)
        else:
            field, _, value = name.partition("=")
            n, failed = window.slices[(field, value)]
            numbers["failure_rate"] = share_number(n, failed, boot)
        if config.reference is not None:
            mask = masks.get(name, np.zeros(len(scored), dtype=bool))
            numbers.update(sample_numbers(scored, mask, boot))
        if config.human_labels is not None:
            if name == ALL:
                part = labelled["correct"]
            else:
                field, _, value = name.partition("=")
                part = labelled.loc[labelled[field] == value, "correct"]
            numbers["accuracy"] = sample_mean(part.to_numpy(dtype=float), boot)
        out[name] = numbers
    return out
