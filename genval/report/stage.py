"""The report stage: summary.json rendered for people, as Markdown."""

from __future__ import annotations

from genval.config import RunConfig
from genval.progress import Progress
from genval.run import Run


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.4g}"


def report(run: Run, config: RunConfig, progress: Progress) -> dict:
    summary = run.read_json("summary.json")
    lines = [f"# genval: {config.name}", "", f"Eval set: `{summary['eval_set']['path']}` "
             f"(n={summary['eval_set']['n']}, sha256 `{(summary['eval_set']['sha256'] or '')[:12]}`)", "",
             "| pair | metric | value | 95% CI | n |", "| --- | --- | --- | --- | --- |"]
    for pair, metrics in summary["metrics"].items():
        for metric, num in metrics.items():
            lo, hi = num["ci"]
            lines.append(f"| {pair} | {metric} | {_fmt(num['value'])} | {_fmt(lo)}–{_fmt(hi)} | {num['n']} |")
    run.write_text("report.md", "\n".join(lines) + "\n")
    return {"report": str(run.path("report.md"))}
