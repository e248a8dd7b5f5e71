"""`genval monitor`: read new traffic, label its sample, append windows, evaluate alerts, write the reports.

Every input is read and checked (the config, the human labels, the reference, the baseline run and
every new traffic record) before the first write, so a bad record leaves the run folder as it was.
Then the tables are appended in an order that makes a killed invocation safe to repeat: rows of a
window being written replace any that a killed invocation left, and the traffic is marked read
(`seen_rows`, the manifest's file hashes) last.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from genval.analysis.numbers import Boot
from genval.analysis.gate import describe
from genval.errors import GenvalError, did_you_mean
from genval.evalset import read_records, slice_value
from genval.models import CallStats, Params, Request, generate_cached, load_backend
from genval.models.cache import RequestCache
from genval.monitor import drift
from genval.monitor.alerts import evaluate
from genval.monitor.collect import Collector, Pass
from genval.monitor.config import MonitorConfig
from genval.monitor.numbers import reference_label, score_sample, window_numbers
from genval.monitor.traffic import iso
from genval.progress import Progress
from genval.runfolder import Run, file_sha256

WINDOW_COLUMNS = ["window_start", "window_end", "slice", "number", "value", "ci_lo", "ci_hi", "n", "baseline",
                  "change", "p", "p_holm", "drift"]


def _human_labels(config: MonitorConfig) -> dict[str, str]:
    """Gives id → label of the people-labelled requests (a JSONL/CSV/Parquet file of `id` and `label`)."""
    if config.human_labels is None:
        return {}
    out = {}
    for record in read_records(config.human_labels):
        if "id" not in record.data or record.data.get("label") is None:
            raise GenvalError(f"{record.where}: a human label needs 'id' (the request's) and 'label'")
        out[str(record.data["id"])] = slice_value(record.data["label"])
    return out


def _state(run: Run) -> tuple[set, np.ndarray, pd.DataFrame]:
    """Gives the traffic files read before (sha256), the rows read before (sorted digests), the windows table."""
    files = set(run.manifest.get("monitor", {}).get("files", {}).values())
    seen = run.read_table("seen_rows")["digest"].to_numpy(dtype=np.uint64) if run.has("seen_rows") \
        else np.array([], dtype=np.uint64)
    windows = run.read_table("windows") if run.has("windows") else pd.DataFrame(columns=WINDOW_COLUMNS)
    return files, np.sort(seen), windows


def read_new(config: MonitorConfig, run: Run, human: dict, progress: Progress) -> tuple[Pass, pd.DataFrame]:
    """Reads every traffic file not read before into new windows; gives the pass and the windows table so far."""
    files_seen, seen, windows = _state(run)
    paths = config.traffic_files()
    if not paths:
        raise GenvalError(f"{config.where('traffic')}: traffic: no file matches {', '.join(config.traffic)}")
    recorded = {pd.Timestamp(s).to_pydatetime() for s in windows["window_start"].unique()}
    collector = Collector(config, seen, recorded, human)
    with progress.bar("read traffic", total=len(paths), unit="file") as bar:
        for path in paths:
            digest = file_sha256(path)
            if digest not in files_seen:
                collector.read_file(path, digest)
            bar.update(1)
            bar.set_postfix(rows=collector.out.rows, refresh=False)
    return collector.out, windows


def _check_alert_slices(config: MonitorConfig, new, windows: pd.DataFrame) -> None:
    """Raises for an alert on `field=value` that no request, recorded or new, has: a typo (`source=ios` for `iOS`)
    would otherwise never alert, and say nothing."""
    seen = {name for name in windows["slice"].unique()} if len(windows) else set()
    for window in new.windows.values():
        seen |= {f"{field}={value}" for field, value in window.slices}
    for i, rule in enumerate(config.alerts):
        field, _, value = (rule.slice or "").partition("=")
        if value and value != "*" and rule.slice not in seen:
            values = sorted(name.partition("=")[2] for name in seen if name.partition("=")[0] == field)
            if not values:
                continue  # no traffic yet: nothing to compare the value with
            raise GenvalError(f"{config.where('alerts', i)}: alert '{describe(rule)}': no request has {rule.slice} "
                              f"(its values: {', '.join(values[:12])})" + did_you_mean(value, values))


def label_sample(config: MonitorConfig, sample: pd.DataFrame, cache: RequestCache | None,
                 progress: Progress, notes: list | None = None) -> tuple[pd.DataFrame, CallStats]:
    """Gives the sample with the reference's answer (`reference`, `reference_error`), through the request cache;
    adds to `notes` what the user must hear of it."""
    stats = CallStats()
    sample = sample.assign(reference=None, reference_error=None)
    if config.reference is None or not len(sample):
        return sample, stats
    gen = config.generation
    params = Params(max_tokens=gen.max_tokens, temperature=gen.temperature, top_p=gen.top_p, seed=gen.seed,
                    stop=tuple(gen.stop))
    labels = tuple(config.labels) if config.task == "classification" else None
    requests = [Request(id=row.id, prompt=row.prompt, system=row.system, params=params, labels=labels,
                        label_delimiter=gen.label_delimiter) for row in sample.itertuples(index=False)]
    backend = load_backend(config.reference, labels=config.labels)
    try:
        with progress.bar("reference", total=len(requests)) as bar:
            done = generate_cached(backend, requests, cache, on_done=lambda _c: bar.update(1), stats=stats,
                                   measure={"run": config.name, "role": "reference"})
    finally:
        backend.close()
    errors = [c.error for c in done]
    if labels:
        texts = [None if c.error else reference_label(c.text, c.label_probs, config.labels) for c in done]
        note = _unlabelled(config, done, texts, errors)
        if note and notes is not None:
            notes.append(note)
    else:
        texts = [None if c.error else c.text for c in done]
    return sample.assign(reference=texts, reference_error=errors), stats


def _unlabelled(config: MonitorConfig, done: list, texts: list, errors: list) -> str | None:
    """Marks, and gives a note on, the reference answers that name no label of the set: they are left out as reference failures,
    and a label missing from `labels:` (the teacher says `neutral`) would otherwise only shrink n, without a word."""
    found = [c.text for c, text, error in zip(done, texts, errors) if text is None and error is None]
    if not found:
        return None
    for k, (c, text) in enumerate(zip(done, texts)):
        if text is None and errors[k] is None:
            errors[k] = f"the reference's answer names no label of the set: {str(c.text)[:80]!r}"
    common = pd.Series([str(t).strip()[:40] for t in found]).value_counts().index[:3]
    return (f"{len(found)} of {len(done)} reference answers name no label of 'labels' ({', '.join(config.labels)}), "
            f"e.g. {', '.join(repr(t) for t in common)}: left out as reference failures (reference_failure_rate); "
            "is a label missing from 'labels'?")


def _append(run: Run, name: str, frame: pd.DataFrame, starts: set[str]) -> None:
    """Appends `frame` to table `name`, dropping rows of the windows in `starts` a killed invocation left."""
    with run.table_writer(name) as writer:
        if run.has(name):
            for old in run.iter_table(name):
                kept = old[~old["window_start"].isin(starts)] if "window_start" in old else old
                if len(kept):
                    writer.write(kept[frame.columns] if set(frame.columns) <= set(kept.columns) else kept)
        writer.write(frame)


def _baseline(config: MonitorConfig, windows: pd.DataFrame, start: str, pending: dict) -> drift.Baseline | None:
    """Gives the baseline a window is compared with (None while the window is itself one of the first windows)."""
    if config.baseline is not None:
        return pending.setdefault("run", drift.baseline_from_run(config.baseline, config.slices, config.task))
    starts = sorted(set(windows["window_start"]))[: config.baseline_windows]
    if len(starts) < config.baseline_windows or start in starts:
        return None
    key = tuple(starts)
    if key not in pending:
        pending[key] = drift.baseline_from_tables(windows, *(pending["tables"]()), config.slices, starts)
    return pending[key]


def monitor(config: MonitorConfig, out_dir: Path, progress: Progress) -> dict:
    """Runs one monitoring pass; gives what monitor.json holds and the exit code (1: the latest window alerts)."""
    run = Run(Path(out_dir) / config.name)
    human = _human_labels(config)
    if config.reference is not None and config.reference.backend == "replay":
        load_backend(config.reference, labels=config.labels)  # a bad replay file stops here, before any write
    pending: dict = {}
    if config.baseline is not None:
        pending["run"] = drift.baseline_from_run(config.baseline, config.slices, config.task)
    covered = drift.covered_by_evalset(config.eval_set, config.slices) if config.eval_set is not None else None
    new, windows = read_new(config, run, human, progress)
    _check_alert_slices(config, new, windows)  # before anything is written: the traffic names the slice values
    if not new.windows and not new.files:
        return _finish(run, config, windows, new, None)
    cache = RequestCache(config.cache or Path(out_dir) / "cache.sqlite") if config.reference is not None else None
    notes: list[str] = []
    try:
        rows = [dict(r, window_start=iso(w.start)) for w in new.windows.values() for r in w.sample()]
        sample, stats = label_sample(config, pd.DataFrame(rows), cache, progress, notes)
    finally:
        if cache is not None:
            cache.close()
    boot = Boot.of(config.analysis)
    blocks, scored_all, labelled, mix = [], [], [], []
    tables = {"sample": pd.DataFrame(), "labelled": pd.DataFrame(), "mix": pd.DataFrame()}
    for name in tables:
        tables[name] = run.read_table(name) if run.has(name) else pd.DataFrame(columns=["window_start"])
    for start in sorted(new.windows):
        window, label = new.windows[start], iso(start)
        part = sample[sample["window_start"] == label].reset_index(drop=True) if len(sample) else sample
        scored, _settings = score_sample(part, config) if len(part) else (part.assign(agree=[], ref_failed=[]), {})
        numbers = window_numbers(window, scored, config, boot)
        lab = pd.DataFrame([{**{f"slice_{f}": v for f, v in zip(config.slices, values)}, "correct": c}
                            for values, c in window.labelled],
                           columns=[*[f"slice_{f}" for f in config.slices], "correct"])
        labelled.append(lab.assign(window_start=label))
        mix.append(_mix_rows(window, config, label))
        scored_all.append(scored)
        tables["sample"] = pd.concat([tables["sample"], scored], ignore_index=True)
        tables["labelled"] = pd.concat([tables["labelled"], labelled[-1]], ignore_index=True)
        tables["mix"] = pd.concat([tables["mix"], mix[-1]], ignore_index=True)
        pending["tables"] = lambda: (tables["sample"], tables["labelled"], tables["mix"])
        draft = pd.concat([windows, pd.DataFrame({"window_start": [label], "number": ["failure_rate"]})])
        baseline = _baseline(config, draft, label, pending)
        numbers.setdefault("all", {}).update(drift.input_drift(window, baseline, config.slices, boot, covered))
        per_rows = _per_request(scored, config)
        block = pd.DataFrame(drift.drift_rows(numbers, per_rows, baseline, config.analysis.confidence))
        block.insert(0, "window_end", iso(start + config.window_length))
        block.insert(0, "window_start", label)
        blocks.append(block[WINDOW_COLUMNS])
        windows = pd.concat([windows, blocks[-1]], ignore_index=True) if len(windows) else blocks[-1]
    starts = {iso(s) for s in new.windows}
    if blocks:
        _append(run, "sample", pd.concat(scored_all, ignore_index=True).drop(columns=["digest"]), starts)
        _append(run, "labelled", pd.concat(labelled, ignore_index=True), starts)
        _append(run, "mix", pd.concat(mix, ignore_index=True), starts)
        _append(run, "windows", _typed(pd.concat(blocks, ignore_index=True)), starts)
    _, seen, _ = _state(run)
    read = np.union1d(seen, np.frombuffer(new.digests, dtype=np.uint64))
    run.write_table("seen_rows", pd.DataFrame({"digest": read}))
    files = run.manifest.setdefault("monitor", {}).setdefault("files", {})
    files.update({path: info["sha256"] for path, info in new.files.items()})
    run.save_manifest()
    return _finish(run, config, run.read_table("windows") if run.has("windows") else windows, new, stats, notes)


def _per_request(scored: pd.DataFrame, config: MonitorConfig) -> dict:
    """Gives slice → number → per-request values of the window's sample (what Welch's test compares)."""
    from genval.monitor.numbers import slice_masks

    if config.reference is None or not len(scored):
        return {}
    columns = {"agreement_rate": "agree", "reference_failure_rate": "ref_failed",
               **{c.removeprefix("metric:"): c for c in scored.columns if c.startswith("metric:")}}
    return {name: {n: scored.loc[mask, c].to_numpy(dtype=float) for n, c in columns.items()}
            for name, mask in slice_masks(scored, config.slices).items()}


def _mix_rows(window, config: MonitorConfig, label: str) -> pd.DataFrame:
    rows = [{"kind": f, "key": v, "count": c[0]} for (f, v), c in window.slices.items()]
    rows += [{"kind": "length", "key": str(i), "count": int(c)} for i, c in enumerate(window.lengths)]
    return pd.DataFrame(rows, columns=["kind", "key", "count"]).assign(window_start=label)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    floats = ["value", "ci_lo", "ci_hi", "baseline", "change", "p", "p_holm"]
    return frame.astype({**{c: "float64" for c in floats}, "n": "int64", "drift": "bool"})


def _finish(run: Run, config: MonitorConfig, windows: pd.DataFrame, new: Pass, stats: CallStats | None,
            notes: list[str] | None = None) -> dict:
    """Evaluates the alerts over every window, writes monitor.json and the reports; gives the result."""
    from genval.monitor.report import write_reports

    alerts = evaluate(config.alerts, windows)
    latest = max(windows["window_start"]) if len(windows) else None
    previous = run.read_json("monitor.json") if run.has("monitor.json") else {}
    invocation = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files_read": len(new.files),
                  "rows_new": new.rows, "rows_read_before": new.repeated, "windows_added": len(new.windows),
                  "late_rows": new.late, "model_calls": stats.called if stats else 0,
                  "cached_answers": stats.cached if stats else 0, "notes": list(notes or [])}
    result = {"name": config.name, "latest_window": latest, "windows": int(windows["window_start"].nunique()),
              "alerts": alerts, "latest_alerts": [a for a in alerts if a["window_start"] == latest],
              "invocations": [*previous.get("invocations", []), invocation], "this_invocation": invocation,
              "settings": {"window": config.window, "sample": config.sample.model_dump(),
                           "confidence": config.analysis.confidence, "bootstrap": config.analysis.bootstrap,
                           "seed": config.analysis.seed, "baseline": str(config.baseline) if config.baseline
                           else f"the first {config.baseline_windows} window(s)"}}
    if new.files or not run.has("monitor.json"):
        run.write_json("monitor.json", {k: v for k, v in result.items() if k != "this_invocation"})
        write_reports(run, config, windows, result)
    result["exit_code"] = 1 if result["latest_alerts"] else 0
    return result
