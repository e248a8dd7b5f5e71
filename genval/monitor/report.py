"""monitor.html (self-contained: inline CSS and SVG, nothing fetched) and monitor.md (for a chat message).

One trend plot per number and slice: the value per window as a line, its interval as a band, the
baseline as a dashed line, and windows that raised an alert shaded and marked in red. Plots are
inline SVG drawn here: a plot of a few dozen points, drawn in well under a millisecond, where matplotlib
took a third of a second each (report.html's fewer, denser plots use matplotlib: genval.report.plots).
"""

from __future__ import annotations

from html import escape
from importlib import resources

import numpy as np
import pandas as pd

from genval import registry
from genval.monitor.config import MonitorConfig
from genval.monitor.numbers import ALL
from genval.runfolder import Run

BLUE, RED = "#4c72b0", "#c0392b"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _svg(width: int, height: int, title: str, body: list[str], name: str) -> str:
    return (f'<svg class="plot" data-plot="{name}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img"><title>{escape(title)}</title>'
            + "".join(body) + "</svg>")


def _text(x, y, s, anchor="start", extra="") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT} {extra}>{escape(str(s))}</text>'
_ORDER = {"agreement_rate": 0, "accuracy": 1, "failure_rate": 3, "reference_failure_rate": 4, "uncovered_share": 5}


def _fmt(name: str, value) -> str:
    return "–" if value is None or pd.isna(value) else registry.spec(name).format(value) if registry.spec(name) \
        else f"{value:.4f}"


def _ticks(lo: float, hi: float, count: int = 4) -> list[tuple[float, str]]:
    """Gives about `count` round ticks in [lo, hi] (steps of 1, 2 or 5 × a power of ten), each with its label
    printed to the step's decimals (0.85, 0.90 — not 0.8500)."""
    raw = (hi - lo) / count or 1.0
    power = 10 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    decimals = max(0, int(-np.floor(np.log10(step) + 1e-9)))
    ticks = [round(float(t), decimals) + 0.0 for t in np.arange(np.ceil(lo / step) * step, hi + step / 2, step)]
    return [(t, f"{t:.{decimals}f}") for t in ticks if lo - 1e-12 <= t <= hi + 1e-12]  # + 0.0: no "-0.00"


def when(start: str) -> str:
    """Gives a window start as people read it: the date, with the hour only for windows shorter than a day."""
    return start[:10] if start[11:19] == "00:00:00" else f"{start[:10]} {start[11:16]}"


def trend_svg(rows: pd.DataFrame, number: str, slice_name: str, alert_starts: set[str]) -> str:
    """Gives one trend plot as inline SVG: value per window, interval band, baseline dashed, alert windows in red.

    Drawn by hand (as genval.report.plots draws report.html's) rather than with matplotlib: a monitor
    has dozens of these, and matplotlib took a third of a second each. Date labels are thinned so
    that no two overlap, and the value axis spans what is drawn (value, interval, baseline), padded.
    """
    rows = rows.sort_values("window_start").reset_index(drop=True)
    stamps = pd.to_datetime(rows["window_start"]).dt.tz_localize(None)
    value, lo, hi, base = (rows[c].astype(float).to_numpy() for c in ("value", "ci_lo", "ci_hi", "baseline"))
    drawn = np.concatenate([value, lo, hi, base])
    drawn = drawn[np.isfinite(drawn)]
    ymin, ymax = float(drawn.min()), float(drawn.max())
    pad = max((ymax - ymin) * 0.08, 0.005 if ymax <= 1 else abs(ymax) * 0.02)
    known = registry.spec(number)  # never pad past the number's range: no share under 0 or over 1
    floor = known.low if known and known.low is not None else 0.0 if ymin >= 0 else -np.inf
    ceiling = known.high if known and known.high is not None else np.inf
    ymin, ymax = max(ymin - pad, min(floor, ymin)), min(ymax + pad, max(ceiling, ymax))
    width, height, x0, y0, x1, y1 = 420, 178, 48, 10, 396, 140
    span = (stamps.iloc[-1] - stamps.iloc[0]).total_seconds() or 1.0
    inset = 14  # the first date label clears the value axis's lowest tick label
    where = [(t - stamps.iloc[0]).total_seconds() / span if len(rows) > 1 else 0.5 for t in stamps]
    xs = [x0 + inset + (x1 - x0 - 2 * inset) * w for w in where]
    sy = lambda v: y1 - (y1 - y0) * (v - ymin) / ((ymax - ymin) or 1)  # noqa: E731
    step = (x1 - x0 - 2 * inset) / max(len(rows) - 1, 1)
    body = [f'<line x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}" stroke="#333"/>',
            f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#333"/>']
    for k, start in enumerate(rows["window_start"]):
        if start in alert_starts:  # the alert window, shaded behind everything
            left = max(x0, xs[k] - step / 2)
            body.append(f'<rect class="alert-window" data-window="{escape(start)}" x="{left:.1f}" y="{y0}" '
                        f'width="{min(x1, xs[k] + step / 2) - left:.1f}" height="{y1 - y0}" fill="#fbe3e0"/>')
    for t, label in _ticks(ymin, ymax):
        body.append(f'<line x1="{x0}" y1="{sy(t):.1f}" x2="{x1}" y2="{sy(t):.1f}" stroke="#eee"/>')
        body.append(_text(x0 - 4, sy(t) + 4, label, "end"))
    daily = all(start[11:19] == "00:00:00" for start in rows["window_start"])
    labels = [f"{t:%m-%d}" if daily else f"{t:%d %H:%M}" for t in stamps]
    every = int(np.ceil((7 * len(labels[0]) + 8) / step)) if len(rows) > 1 else 1  # ~7 px a character: no overlap
    for k in range(0, len(rows), every):
        body.append(_text(xs[k], y1 + 14, labels[k], "middle"))
    axis = "window start (month-day, UTC)" if daily else "window start (day hour:minute, UTC)"
    body.append(_text((x0 + x1) / 2, y1 + 28, axis, "middle", 'fill="#666"'))
    banded = np.isfinite(lo) & np.isfinite(hi)
    if banded.any():
        upper = [f"{xs[k]:.1f},{sy(hi[k]):.1f}" for k in range(len(rows)) if banded[k]]
        lower = [f"{xs[k]:.1f},{sy(lo[k]):.1f}" for k in reversed(range(len(rows))) if banded[k]]
        body.append(f'<polygon class="band" points="{" ".join(upper + lower)}" fill="{BLUE}" fill-opacity="0.2"/>')
    if np.isfinite(base).any():
        points = " ".join(f"{xs[k]:.1f},{sy(base[k]):.1f}" for k in range(len(rows)) if np.isfinite(base[k]))
        body.append(f'<polyline class="baseline" points="{points}" fill="none" stroke="#888" stroke-dasharray="4 3"/>')
    shown = np.isfinite(value)
    points = " ".join(f"{xs[k]:.1f},{sy(value[k]):.1f}" for k in range(len(rows)) if shown[k])
    body.append(f'<polyline class="value" points="{points}" fill="none" stroke="{BLUE}" stroke-width="1.5"/>')
    for k, start in enumerate(rows["window_start"]):
        if not shown[k]:
            continue
        alert = start in alert_starts
        ci = f" [{_fmt(number, lo[k])}, {_fmt(number, hi[k])}]" if banded[k] else ""
        body.append(f'<circle class="{"alert" if alert else "point"}" cx="{xs[k]:.1f}" cy="{sy(value[k]):.1f}" '
                    f'r="{4 if alert else 2.5}" fill="{RED if alert else BLUE}"><title>{escape(when(start))}: '
                    f'{_fmt(number, value[k])}{ci}, n {rows["n"].iloc[k]}{" — ALERT" if alert else ""}'
                    '</title></circle>')
    return _svg(width, height, f"{number} on {slice_name}", body, "trend")


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
    rows = "".join(f"<tr><td>{escape(when(a['window_start']))}</td><td>{escape(a['slice'])}</td>"
                   f"<td>{escape(a['rule'])}</td><td>{escape(a['reason'])}</td></tr>" for a in result["alerts"])
    sections = []
    for number, of_number in sorted(windows.groupby("number"), key=lambda item: (_ORDER.get(item[0], 2), item[0])):
        figures = []
        for slice_name, group in sorted(of_number.groupby("slice"), key=lambda item: (item[0] != ALL, item[0])):
            if group["value"].notna().any():
                marked = alerts_by.get((number, slice_name), set())
                svg = trend_svg(group, number, slice_name, marked)
                figures.append(f'<figure class="trend" data-number="{escape(number)}" data-slice="{escape(slice_name)}"'
                               f' data-alerts="{len(marked)}">{svg}<figcaption>{escape(number)} on '
                               f'{escape(slice_name)}{f" — {len(marked)} alert window(s)" if marked else ""}'
                               "</figcaption></figure>")
        if figures:
            sections.append(f"<h3>{escape(number)}</h3><div class=\"plots\">{''.join(figures)}</div>")
    legend = (f"<p class=\"muted\">Each plot: the value per window (line), its {result['settings']['confidence']:.0%}"
              " interval (band), the baseline (dashed), windows that raised an alert (shaded, red point).</p>")
    s = result["settings"]
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>genval monitor · {escape(config.name)}</title><style>{css}</style></head><body>"
            f"<h1>genval monitor · {escape(config.name)}</h1>"
            f"<p class=\"verdict {state}\">Latest window {escape(when(str(result['latest_window'])))}: {verdict}</p>"
            f"<h2>Alerts</h2><table><thead><tr><th>window</th><th>slice</th><th>rule</th><th>why</th></tr></thead>"
            f"<tbody>{rows or '<tr><td colspan=4>none</td></tr>'}</tbody></table>"
            f"<h2>Trends</h2>{legend}{''.join(sections)}"
            f"<p class=\"muted\">{result['windows']} windows of {escape(s['window'])}; "
            f"baseline: {escape(s['baseline'])};"
            f" {s['confidence'] * 100:.0f} % intervals: Wilson score for shares, else percentile bootstrap, "
            f"{s['bootstrap']} resamples, seed {s['seed']}.</p>"
            "</body></html>\n")


def write_reports(run: Run, config: MonitorConfig, windows: pd.DataFrame, result: dict) -> None:
    run.write_text("monitor.md", markdown(config, windows, result))
    run.write_text("monitor.html", html(config, windows, result))
