"""The report stage: summary.json rendered for people — report.md (a PR comment) and report.html (self-contained).

Reads `summary.json` (every number and plot's data), and from the tables only bounded samples:
the drill-down's rows (genval.report.drilldown) and the latencies of teacher and student.
"""

from __future__ import annotations

import numpy as np

from genval.config import RunConfig
from genval.progress import Progress
from genval.report import drilldown, html, markdown, pivot
from genval.runfolder import Run
from genval.summary import read, read_calibration


def _latency(run: Run) -> dict[str, np.ndarray]:
    """Gives every role's latency per answered call, read in batches (8 bytes an output)."""
    if not run.has("outputs") or "latency_s" not in run.table_columns("outputs"):
        return {}
    found: dict[str, list] = {}
    for frame in run.iter_table("outputs", columns=["role", "latency_s", "error"]):
        ok = frame[frame["error"].isna() & frame["role"].notna()]
        for role, group in ok.groupby("role", sort=True):
            found.setdefault(role, []).append(group["latency_s"].dropna().to_numpy(dtype=float))
    return {role: np.concatenate(parts) for role, parts in sorted(found.items())}


def run_label(run: Run) -> str:
    """Gives the run folder as a reader's command names it: its parent folder and its own name, never absolute."""
    return f"{run.root.parent.name}/{run.root.name}" if run.root.parent.name else run.root.name


def report(run: Run, config: RunConfig, progress: Progress) -> dict:
    """Writes report.md and report.html from the run's summary; gives their paths."""
    summary = read(run.path("summary.json"))
    calibration = read_calibration(run.path("calibration.json")) if run.has("calibration.json") else None
    price = next((m.price for m in config.models.values() if m.price is not None), None)
    extras = {"calibration": calibration, "run_label": run_label(run), "currency": price.currency if price else ""}
    extras["retention"] = pivot.retention(summary)
    stages = run.manifest.get("stages") or {}
    extras["replay_notes"] = [note for name in ("generate", "judge")
                              for note in stages.get(name, {}).get("replay_notes") or []]
    run.write_text("report.md", markdown.render(summary, extras))
    rows = drilldown.rows(run, summary, config.analysis.seed)
    run.write_text("report.html", html.render(summary, rows, {**extras, "latency": _latency(run)}))
    return {"report": str(run.path("report.md")), "html": str(run.path("report.html")), "examples": len(rows)}
