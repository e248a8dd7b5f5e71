"""monitor.html (self-contained: inline CSS and SVG, nothing fetched) and monitor.md (for a chat message).

One trend plot per number and slice: the value per window as a line, its interval as a band, the
baseline as a dashed line, and windows that raised an alert marked in red. Plots are drawn with
matplotlib (Agg) into inline SVG.
"""

from __future__ import annotations

import io
from html import escape
from importlib import resources

import pandas as pd

from genval import registry
from genval.monitor.config import MonitorConfig
from genval.monitor.numbers import ALL
from genval.runfolder import Run


def _fmt(name: str, value) -> str:
    return "–" if value is None or pd.isna(value) else registry.spec(name).format(value) if registry.spec(name) \
        else f"{value:.4f}"


def trend_svg(rows: pd.DataFrame, number: str, slice_name: str, alert_starts: set[str]) -> str:
    """Gives one trend plot as inline SVG: value per window, interval band, baseline, alert windows in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rows.sort_values("window_start")
    x = pd.to_datetime(rows["window_start"]).dt.tz_localize(None)
    fig, ax = plt.subplots(figsize=(5.2, 2.2), dpi=72)
    try:
        ax.fill_between(x, rows["ci_lo"].astype(float), rows["ci_hi"].astype(float), alpha=0.25, color="#4c72b0",
                        linewidth=0, label="interval")
        ax.plot(x, rows["value"].astype(float), marker="o", markersize=3, color="#4c72b0", label=number)
        if rows["baseline"].notna().any():
            ax.plot(x, rows["baseline"].astype(float), linestyle="--", color="#888888", linewidth=1, label="baseline")
        marked = rows["window_start"].isin(alert_starts).to_numpy()
        if marked.any():
            ax.scatter(x[marked], rows["value"].astype(float)[marked], color="#c0392b", zorder=3, s=30, label="alert")
        ax.set_title(f"{number} · {slice_name}", fontsize=9)
        ax.tick_params(labelsize=7)
        fig.autofmt_xdate()
        ax.legend(fontsize=6, loc="best")
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def markdown(config: MonitorConfig, windows: pd.DataFrame, result: dict) -> str:
    """Gives monitor.md: the latest window's verdict, its alerts, and its headline numbers."""
    latest = result["latest_window"]
    lines = [f"# genval monitor · {config.name}", ""]
    if latest is None:
        return "\n".join(lines + ["No window recorded yet.", ""])
    state = f"**ALERT** ({len(result['latest_alerts'])})" if result["latest_alerts"] else "**OK**"
    lines += [f"Latest window {latest} ({result['windows']} windows recorded): {state}", ""]
    for alert in result["latest_alerts"]:
        lines.append(f"- `{alert['rule']}` on {alert['slice']}: {alert['reason']}")
    rows = windows[(windows["window_start"] == latest) & (windows["slice"] == ALL)]
    lines += ["", "| number | value | interval | n | change vs baseline |", "| --- | --- | --- | --- | --- |"]
    for row in rows.itertuples(index=False):
        ci = f"[{_fmt(row.number, row.ci_lo)}, {_fmt(row.number, row.ci_hi)}]" if not pd.isna(row.ci_lo) else "–"
        change = "–" if pd.isna(row.change) else f"{row.change:+.4f}" + (" (drift)" if row.drift else "")
        lines.append(f"| {row.number} | {_fmt(row.number, row.value)} | {ci} | {row.n} | {change} |")
    earlier = len(result["alerts"]) - len(result["latest_alerts"])
    lines += ["", f"Earlier windows raised {earlier} alert(s); see monitor.html.", ""]
    return "\n".join(lines)


def html(config: MonitorConfig, windows: pd.DataFrame, result: dict) -> str:
    """Gives monitor.html: the latest verdict, every alert, and a trend plot per number and slice."""
    css = resources.files("genval").joinpath("report/assets/report.css").read_text("utf-8")
    alerts_by = {}
    for alert in result["alerts"]:
        alerts_by.setdefault((alert["number"], alert["slice"]), set()).add(alert["window_start"])
    state = "v-not" if result["latest_alerts"] else "v-ready"
    verdict = f"{len(result['latest_alerts'])} ALERT(S)" if result["latest_alerts"] else "NO ALERT"
    rows = "".join(f"<tr><td>{escape(a['window_start'])}</td><td>{escape(a['slice'])}</td><td>{escape(a['rule'])}</td>"
                   f"<td>{escape(a['reason'])}</td></tr>" for a in result["alerts"])
    figures = []
    for (number, slice_name), group in windows.groupby(["number", "slice"], sort=True):
        if group["value"].notna().any():
            svg = trend_svg(group, number, slice_name, alerts_by.get((number, slice_name), set()))
            figures.append(f"<figure>{svg}<figcaption>{escape(number)} on {escape(slice_name)}</figcaption></figure>")
    s = result["settings"]
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>genval monitor · {escape(config.name)}</title><style>{css}</style></head><body>"
            f"<h1>genval monitor · {escape(config.name)}</h1>"
            f"<p class=\"verdict {state}\">Latest window {escape(str(result['latest_window']))}: {verdict}</p>"
            f"<h2>Alerts</h2><table><thead><tr><th>window</th><th>slice</th><th>rule</th><th>why</th></tr></thead>"
            f"<tbody>{rows or '<tr><td colspan=4>none</td></tr>'}</tbody></table>"
            f"<h2>Trends</h2>{''.join(figures)}"
            f"<p class=\"muted\">{result['windows']} windows of {escape(s['window'])}; "
            f"baseline: {escape(s['baseline'])};"
            f" {s['confidence'] * 100:.0f} % percentile bootstrap, {s['bootstrap']} resamples, seed {s['seed']}.</p>"
            "</body></html>\n")


def write_reports(run: Run, config: MonitorConfig, windows: pd.DataFrame, result: dict) -> None:
    run.write_text("monitor.md", markdown(config, windows, result))
    run.write_text("monitor.html", html(config, windows, result))
