"""Drift: each window's numbers against a baseline, and the drift of its inputs.

The baseline is a `genval run` folder on the frozen eval set (`baseline:`) or the first windows the
monitor recorded (`baseline_windows`). Each window holds other requests than the baseline, so a
change is tested two-sample, never paired: Welch's t-test on the per-request values where both
sides have them (scipy.stats.ttest_ind, equal_var=False), a two-proportion z-test on the failure
counts, and a z-test on standard errors read off the intervals where the baseline is a run's
summary. Each window's tests are corrected together with Holm's procedure (genval.analysis.significance).

Input drift is the population stability index of the slice mix (per slice field) and of input
length: PSI = Σ (p − q) · ln(p / q) over bins, an empty bin counted at 0.0001 (Siddiqi 2006,
"Credit Risk Scorecards", ch. 8: under 0.1 stable, 0.1–0.25 a shift, over 0.25 a large one).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd
from scipy import stats as sps

from genval.analysis.significance import holm
from genval.monitor.numbers import ALL

PSI_FLOOR = 1e-4
_NORMAL = NormalDist()


@dataclass
class Baseline:
    """What a window is compared with: per slice and number the value, its rows or standard error, and the mix."""

    source: str
    numbers: dict = field(default_factory=dict)  # slice → number → {value, n, rows?, se?, failed?}
    mix: dict = field(default_factory=dict)  # slice field → value → count
    lengths: np.ndarray | None = None
    covered: dict | None = None  # slice field → the values the frozen eval set has (None: no eval set)


def psi(actual, expected) -> float | None:
    """Gives the population stability index of two count (or share) vectors over the same bins."""
    a, e = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    if a.sum() == 0 or e.sum() == 0:
        return None
    p, q = np.maximum(a / a.sum(), PSI_FLOOR), np.maximum(e / e.sum(), PSI_FLOOR)
    return float(np.sum((p - q) * np.log(p / q)))


def mix_psi(window_mix: dict, base_mix: dict) -> float | None:
    """Gives the PSI of one slice field's mix: value → count in the window against the baseline's."""
    keys = sorted(set(window_mix) | set(base_mix))
    return psi([window_mix.get(k, 0) for k in keys], [base_mix.get(k, 0) for k in keys])


def _z_p(change: float, se: float) -> float | None:
    if not np.isfinite(se):
        return None
    if se == 0:
        return 1.0 if change == 0 else 0.0
    return float(2 * (1 - _NORMAL.cdf(abs(change) / se)))


def change_test(number: str, now: dict, rows_now, base: dict, confidence: float) -> float | None:
    """Gives the two-sided p-value of "no change" between a window's number and the baseline's."""
    if now.get("value") is None or base.get("value") is None:
        return None
    change = now["value"] - base["value"]
    if number == "failure_rate" and "failed" in base:  # two proportions, pooled under "no change"
        n1, n0 = now["n"], base["n"]
        pooled = (now["value"] * n1 + base["failed"]) / (n1 + n0)
        return _z_p(change, float(np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))))
    if rows_now is not None and base.get("rows") is not None:
        a, b = np.asarray(rows_now, dtype=float), np.asarray(base["rows"], dtype=float)
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        if a.size < 2 or b.size < 2:
            return None
        if a.var() == 0 and b.var() == 0:
            return 1.0 if a[0] == b[0] else 0.0
        with warnings.catch_warnings():  # nearly constant 0/1 columns: scipy warns, the p-value stands
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(sps.ttest_ind(a, b, equal_var=False).pvalue)
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    ses = []
    for side in (now, base):
        lo, hi = (side.get("ci") or [None, None])
        if lo is None or hi is None:
            return None
        ses.append((hi - lo) / (2 * z))
    return _z_p(change, float(np.hypot(*ses)))


def drift_rows(numbers: dict, rows: dict, baseline: Baseline | None, confidence: float) -> list[dict]:
    """Gives one row per (slice, number) of a window: value, interval, n, and the change against the baseline.

    `numbers`: slice → number → {value, ci, n}; `rows`: slice → number → the per-request values
    behind it (sample numbers only).
    """
    out = []
    for name, figures in numbers.items():
        for number, fig in figures.items():
            ci = fig.get("ci") or [None, None]
            row = {"slice": name, "number": number, "value": fig.get("value"), "ci_lo": ci[0], "ci_hi": ci[1],
                   "n": fig.get("n"), "baseline": None, "change": None, "p": None}
            base = baseline.numbers.get(name, {}).get(number) if baseline else None
            if base is not None and base.get("value") is not None and fig.get("value") is not None:
                row["baseline"] = base["value"]
                row["change"] = fig["value"] - base["value"]
                row["p"] = change_test(number, fig, rows.get(name, {}).get(number), base, confidence)
            out.append(row)
    for row, adjusted in zip(out, holm([r["p"] for r in out])):
        row["p_holm"] = adjusted
        row["drift"] = adjusted is not None and adjusted <= 1 - confidence
    return out


def input_drift(window, baseline: Baseline | None, slices: list[str], boot, covered: dict | None = None) \
        -> dict[str, dict]:
    """Gives the window's input-drift numbers (slice `all`): PSI of each slice field's mix and of input length
    against the baseline, and the share of traffic in slices the frozen eval set does not cover (`covered`:
    the `eval_set:` file's values; else a baseline run's)."""
    from genval.monitor.numbers import share_number

    out: dict[str, dict] = {}
    covered = covered if covered is not None else baseline.covered if baseline is not None else None
    if baseline is not None:
        for name in slices:
            mix = {v: c[0] for (f, v), c in window.slices.items() if f == name}
            out[f"psi:{name}"] = {"value": mix_psi(mix, baseline.mix.get(name, {})), "ci": [None, None],
                                  "n": window.n}
        if baseline.lengths is not None:
            out["psi:input_length"] = {"value": psi(window.lengths, baseline.lengths), "ci": [None, None],
                                       "n": int(window.lengths.sum())}
    if covered is not None:
        outside = sum(count for values, count in window.combos.items()
                      if any(f in covered and v not in covered[f] for f, v in zip(slices, values)))
        out["uncovered_share"] = share_number(window.n, outside, boot)
    return out


def covered_by_evalset(path, slices: list[str]) -> dict[str, set]:
    """Gives slice field → the values the frozen eval set at `path` has (a field no record has is left out:
    the eval set says nothing about it); a slice lives in a record's `slices` object or at its top level."""
    from genval.evalset import iter_records, slice_value

    covered: dict[str, set] = {}
    for record in iter_records(path):
        nested = record.data.get("slices") if isinstance(record.data.get("slices"), dict) else {}
        for name in slices:
            if name in nested or name in record.data:
                covered.setdefault(name, set()).add(slice_value(nested[name] if name in nested else record.data[name]))
    return covered


def baseline_from_tables(windows: pd.DataFrame, sample: pd.DataFrame, labelled: pd.DataFrame, mix: pd.DataFrame,
                         slices: list[str], starts: list[str]) -> Baseline:
    """Gives the baseline pooled over the recorded windows starting at `starts` (the first windows)."""
    from genval.monitor.numbers import slice_masks

    base = Baseline(source=f"the first {len(starts)} window(s): {', '.join(starts)}")
    part = sample[sample["window_start"].isin(starts)].reset_index(drop=True)
    columns = {"agreement_rate": "agree", "reference_failure_rate": "ref_failed",
               **{c.removeprefix("metric:"): c for c in part.columns if c.startswith("metric:")}}
    for name, mask in slice_masks(part, slices).items():
        for number, column in columns.items():
            values = part.loc[mask, column].to_numpy(dtype=float)
            kept = values[~np.isnan(values)]
            base.numbers.setdefault(name, {})[number] = {
                "value": float(kept.mean()) if kept.size else None, "n": int(kept.size), "rows": values}
    lab = labelled[labelled["window_start"].isin(starts)].reset_index(drop=True)
    for name, mask in slice_masks(lab, slices).items():
        values = lab.loc[mask, "correct"].to_numpy(dtype=float)
        base.numbers.setdefault(name, {})["accuracy"] = {
            "value": float(values.mean()) if values.size else None, "n": int(values.size), "rows": values}
    counts = windows[windows["window_start"].isin(starts) & (windows["number"] == "failure_rate")]
    for name, group in counts.groupby("slice"):
        n = int(group["n"].sum())
        failed = float((group["value"] * group["n"]).sum())
        base.numbers.setdefault(name, {})["failure_rate"] = {"value": failed / n if n else None, "n": n,
                                                             "failed": failed}
    mine = mix[mix["window_start"].isin(starts)]
    for (kind, key), group in mine.groupby(["kind", "key"]):
        if kind == "length":
            continue
        base.mix.setdefault(kind, {})[key] = base.mix.get(kind, {}).get(key, 0) + int(group["count"].sum())
    lengths = mine[mine["kind"] == "length"]
    if len(lengths):
        base.lengths = lengths.groupby("key")["count"].sum().reindex(
            [str(i) for i in range(len(_length_bins()))], fill_value=0).to_numpy()
    return base


def _length_bins():
    from genval.monitor.collect import LENGTH_EDGES

    return range(len(LENGTH_EDGES) + 1)


def baseline_from_run(path, slices: list[str], task: str) -> Baseline:
    """Gives the baseline of a `genval run` folder: its summary's numbers per slice, its eval set's mix and lengths."""
    from genval.analysis.gate import lookup
    from genval.monitor.collect import LENGTH_EDGES
    from genval.runfolder import open_run
    from genval.summary import Estimate, read

    summary = read(path, "baseline summary")
    run = open_run(path)
    base = Baseline(source=f"the run {path}")
    blocks = {ALL: summary.block}
    for name in slices:
        for value, block in summary.slices.get(name, {}).items():
            blocks[f"{name}={value}"] = block
    metrics = {m for pair in summary.metrics.values() for m in pair}
    for name, block in blocks.items():
        for number, (metric, pair) in {"agreement_rate": ("agreement_rate", None), "accuracy": ("accuracy", None),
                                       "failure_rate": ("generation_error", "student"),
                                       **{m: (m, "student~teacher") for m in metrics}}.items():
            found = lookup(summary, block, metric, pair)[1]
            if isinstance(found, Estimate) and found.value is not None:
                base.numbers.setdefault(name, {})[number] = {"value": found.value, "ci": list(found.ci), "n": found.n}
    columns = [f"slice_{s}" for s in slices if f"slice_{s}" in run.table_columns("examples")]
    has_input = "input" in run.table_columns("examples")
    base.covered = {c.removeprefix("slice_"): set() for c in columns}  # a field the eval set lacks covers nothing
    base.lengths = np.zeros(len(LENGTH_EDGES) + 1, dtype=np.int64)
    for frame in run.iter_table("examples", columns=columns + (["input"] if has_input else [])):
        for column in columns:
            name = column.removeprefix("slice_")
            counts = frame[column].astype(str).value_counts()
            base.covered[name] |= set(counts.index)
            for value, count in counts.items():
                base.mix.setdefault(name, {})[value] = base.mix.get(name, {}).get(value, 0) + int(count)
        if has_input:
            lengths = frame["input"].dropna().astype(str).str.len().to_numpy()
            np.add.at(base.lengths, np.searchsorted(LENGTH_EDGES, lengths, side="right"), 1)
    return base
