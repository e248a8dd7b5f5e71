"""The report stage: summary.json rendered for people — report.md (a PR comment) and report.html (self-contained).

Reads `summary.json`, `examples`, `outputs`, `scores`, `judgments`, and `classification.json`
and `calibration.json` when present (for the plots).
"""

from __future__ import annotations

from genval.config import RunConfig
from genval.progress import Progress
from genval.report import drilldown, html, markdown
from genval.runfolder import Run, read_summary


def _latency(run: Run) -> dict[str, list[float]]:
    if not run.has("outputs"):
        return {}
    outputs = run.read_table("outputs")
    ok = outputs[outputs["error"].isna()]
    return {role: group["latency_s"].dropna().astype(float).tolist()
            for role, group in ok.groupby("role", sort=True) if role in ("teacher", "student")}


def report(run: Run, config: RunConfig, progress: Progress) -> dict:
    """Writes report.md and report.html from the run's summary; gives their paths."""
    summary = read_summary(run.path("summary.json"))
    run.write_text("report.md", markdown.render(summary))
    extras = {"classification": run.read_json("classification.json") if run.has("classification.json") else None,
              "calibration": run.read_json("calibration.json") if run.has("calibration.json") else None,
              "latency": _latency(run)}
    rows = drilldown.rows(run, summary)
    run.write_text("report.html", html.render(summary, rows, extras))
    return {"report": str(run.path("report.md")), "html": str(run.path("report.html")), "examples": len(rows)}
