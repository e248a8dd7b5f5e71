"""Plots as inline SVG strings: no library, no network, so report.html opens anywhere.

Each function gives one `<svg class="plot">` element with a `<title>`, sized in pixels,
or an empty string when there is nothing to draw.
"""

from __future__ import annotations

from html import escape

import numpy as np

TEACHER, STUDENT, GREY = "#1f77b4", "#d62728", "#999999"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _svg(width: int, height: int, title: str, body: list[str], name: str) -> str:
    return (f'<svg class="plot" data-plot="{name}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img"><title>{escape(title)}</title>'
            + "".join(body) + "</svg>")


def _text(x, y, s, anchor="start", extra="") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT} {extra}>{escape(str(s))}</text>'


def _axes(x0, y0, x1, y1, xlabel, ylabel, xticks, yticks, sx, sy) -> list[str]:
    out = [f'<line x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}" stroke="#333"/>',
           f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#333"/>']
    for t in xticks:
        out.append(_text(sx(t), y1 + 14, f"{t:.3g}", "middle"))
    for t in yticks:
        out.append(_text(x0 - 4, sy(t) + 4, f"{t:.3g}", "end"))
        out.append(f'<line x1="{x0}" y1="{sy(t):.1f}" x2="{x1}" y2="{sy(t):.1f}" stroke="#eee"/>')
    out.append(_text((x0 + x1) / 2, y1 + 30, xlabel, "middle"))
    out.append(_text(12, (y0 + y1) / 2, ylabel, "middle", f'transform="rotate(-90 12 {(y0 + y1) / 2:.1f})"'))
    return out


def _legend(x, y, items) -> list[str]:
    out = []
    for k, (label, color) in enumerate(items):
        out.append(f'<rect x="{x}" y="{y + 16 * k}" width="10" height="10" fill="{color}"/>')
        out.append(_text(x + 14, y + 9 + 16 * k, label))
    return out


def slice_bars(rows: list[dict], title: str, high: float | None = None, width: int = 640) -> str:
    """Gives horizontal bars with interval whiskers: rows of {label, value, lo, hi, muted}.

    The axis runs to the number's top of range (`high`, from genval.registry) when every
    value fits under it, so a BLEU of 40 is drawn against 100; else to the largest value.
    """
    rows = [r for r in rows if r.get("value") is not None]
    if not rows:
        return ""
    top, row_h, left, right = 26, 20, 190, width - 60
    height = top + row_h * len(rows) + 34
    hi_all = max([r["hi"] if r.get("hi") is not None else r["value"] for r in rows] + [1e-9])
    if high is not None and hi_all <= high:
        scale = high
    else:
        scale = 1.0 if hi_all <= 1.0 else hi_all * 1.05
    sx = lambda v: left + (right - left) * max(0.0, v) / scale  # noqa: E731
    body = [_text(8, 16, title, extra='font-weight="bold"')]
    for k, r in enumerate(rows):
        y = top + k * row_h
        color = GREY if r.get("muted") else STUDENT
        body.append(_text(left - 6, y + 13, r["label"][:32], "end"))
        body.append(f'<rect class="bar" x="{left}" y="{y + 3}" width="{max(1.0, sx(r["value"]) - left):.1f}" '
                    f'height="{row_h - 6}" fill="{color}" opacity="0.75"><title>{escape(r["label"])}: '
                    f'{r["value"]:.4g}</title></rect>')
        if r.get("lo") is not None and r.get("hi") is not None:
            body.append(f'<line x1="{sx(r["lo"]):.1f}" y1="{y + row_h / 2}" x2="{sx(r["hi"]):.1f}" '
                        f'y2="{y + row_h / 2}" stroke="#222" stroke-width="1.5"/>')
        body.append(_text(sx(r["value"]) + 4 if r.get("hi") is None else sx(r["hi"]) + 4, y + 13, f"{r['value']:.3g}"))
    axis_y = top + row_h * len(rows) + 4
    body.append(f'<line x1="{left}" y1="{axis_y}" x2="{right}" y2="{axis_y}" stroke="#333"/>')
    for t in np.linspace(0, scale, 5):
        body.append(_text(sx(t), axis_y + 14, f"{t:.2g}", "middle"))
    return _svg(width, height, title, body, "slices")


def reliability(bins: dict[str, list[dict]], width: int = 360, height: int = 320) -> str:
    """Gives the reliability diagram: accuracy against confidence per bin, teacher and student, with the diagonal."""
    if not any(bins.get(role) for role in ("teacher", "student")):
        return ""
    x0, y0, x1, y1 = 48, 24, width - 16, height - 44
    sx = lambda v: x0 + (x1 - x0) * v  # noqa: E731
    sy = lambda v: y1 - (y1 - y0) * v  # noqa: E731
    ticks = [0, 0.25, 0.5, 0.75, 1]
    body = [_text(8, 14, "Reliability: accuracy vs confidence", extra='font-weight="bold"')]
    body += _axes(x0, y0, x1, y1, "confidence", "accuracy", ticks, ticks, sx, sy)
    body.append(f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" stroke="#aaa" stroke-dasharray="4 3"/>')
    for role, color in (("teacher", TEACHER), ("student", STUDENT)):
        points = [b for b in bins.get(role) or [] if b.get("n") and b.get("confidence") is not None]
        if not points:
            continue
        path = " ".join(f"{sx(b['confidence']):.1f},{sy(b['accuracy']):.1f}" for b in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for b in points:
            body.append(f'<circle cx="{sx(b["confidence"]):.1f}" cy="{sy(b["accuracy"]):.1f}" r="3" fill="{color}">'
                        f'<title>{role}: confidence {b["confidence"]:.2f}, accuracy {b["accuracy"]:.2f}, '
                        f'n={b["n"]}</title></circle>')
    body += _legend(x0 + 8, y0 + 4, [("teacher", TEACHER), ("student", STUDENT)])
    return _svg(width, height, "Reliability diagram", body, "reliability")


def latency(samples: dict[str, list[float]], width: int = 420, height: int = 260, bins: int = 30) -> str:
    """Gives overlaid latency histograms (seconds per call), teacher vs student."""
    data = {role: np.asarray([v for v in values if v is not None and np.isfinite(v)], float)
            for role, values in samples.items()}
    data = {role: v for role, v in data.items() if v.size}
    if not data:
        return ""
    top = max(v.max() for v in data.values()) or 1.0
    edges = np.linspace(0, top * 1.02, bins + 1)
    counts = {role: np.histogram(v, edges)[0] / v.size for role, v in data.items()}
    peak = max(c.max() for c in counts.values()) or 1.0
    x0, y0, x1, y1 = 48, 24, width - 16, height - 44
    sx = lambda v: x0 + (x1 - x0) * v / edges[-1]  # noqa: E731
    sy = lambda v: y1 - (y1 - y0) * v / peak  # noqa: E731
    body = [_text(8, 14, "Latency per call (s)", extra='font-weight="bold"')]
    body += _axes(x0, y0, x1, y1, "seconds", "share of calls", np.linspace(0, edges[-1], 5), np.linspace(0, peak, 3), sx, sy)
    colors = {"teacher": TEACHER, "student": STUDENT}
    for role, c in counts.items():
        color = colors.get(role, GREY)
        for k, share in enumerate(c):
            if share:
                body.append(f'<rect x="{sx(edges[k]):.1f}" y="{sy(share):.1f}" width="{sx(edges[k + 1]) - sx(edges[k]):.1f}" '
                            f'height="{y1 - sy(share):.1f}" fill="{color}" opacity="0.45"/>')
        p50 = float(np.median(data[role]))
        body.append(f'<line x1="{sx(p50):.1f}" y1="{y0}" x2="{sx(p50):.1f}" y2="{y1}" stroke="{color}" '
                    f'stroke-dasharray="3 2"><title>{role} p50 {p50:.3g} s</title></line>')
    body += _legend(x1 - 80, y0, [(r, colors.get(r, GREY)) for r in counts])
    return _svg(width, height, "Latency distribution", body, "latency")


def sweep(points: list[dict], width: int = 380, height: int = 280) -> str:
    """Gives accuracy against KL(teacher‖student) as the student's temperature varies."""
    points = [p for p in points or [] if p.get("accuracy") is not None and p.get("kl") is not None]
    if not points:
        return ""
    kls = [p["kl"] for p in points]
    accs = [p["accuracy"] for p in points]
    kmax = max(kls) * 1.1 or 1.0
    amin, amax = min(accs), max(accs)
    pad = max(0.02, (amax - amin) * 0.1)
    amin, amax = max(0.0, amin - pad), min(1.0, amax + pad)
    x0, y0, x1, y1 = 52, 24, width - 16, height - 44
    sx = lambda v: x0 + (x1 - x0) * v / kmax  # noqa: E731
    sy = lambda v: y1 - (y1 - y0) * (v - amin) / ((amax - amin) or 1)  # noqa: E731
    body = [_text(8, 14, "Accuracy vs KL over temperatures", extra='font-weight="bold"')]
    body += _axes(x0, y0, x1, y1, "KL(teacher‖student)", "student accuracy",
                  np.linspace(0, kmax, 4), np.linspace(amin, amax, 4), sx, sy)
    line = " ".join(f"{sx(p['kl']):.1f},{sy(p['accuracy']):.1f}" for p in points)
    body.append(f'<polyline points="{line}" fill="none" stroke="{STUDENT}" stroke-width="1.5"/>')
    labelled: list[tuple[float, float]] = []
    for p in points:
        x, y = sx(p["kl"]), sy(p["accuracy"])
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{STUDENT}">'
                    f'<title>T={p.get("temperature")}: accuracy {p["accuracy"]:.3f}, KL {p["kl"]:.3f}</title></circle>')
        # Label a point only where it does not overprint a label already drawn (hover shows every T).
        if all(abs(x - lx) > 34 or abs(y - ly) > 12 for lx, ly in labelled):
            body.append(_text(x + 4, y - 5, f"T={p.get('temperature')}", extra='font-size="9"'))
            labelled.append((x, y))
    return _svg(width, height, "Accuracy vs KL", body, "sweep")


def confusion(labels: list[str], matrix: list[list[float]], title: str, width: int = 320) -> str:
    """Gives a confusion matrix as a shaded grid: rows the humans' verdict, columns the judge's."""
    if not labels or not matrix:
        return ""
    k = len(labels)
    cell = min(60, (width - 110) // k)
    x0, y0 = 100, 40
    height = y0 + cell * k + 40
    peak = max(max(row) for row in matrix) or 1
    body = [_text(8, 14, title, extra='font-weight="bold"')]
    for i, row in enumerate(matrix):
        body.append(_text(x0 - 4, y0 + i * cell + cell / 2 + 4, labels[i][:14], "end"))
        for j, v in enumerate(row):
            shade = int(255 - 200 * v / peak)
            body.append(f'<rect x="{x0 + j * cell}" y="{y0 + i * cell}" width="{cell}" height="{cell}" '
                        f'fill="rgb({shade},{shade},255)" stroke="#fff"/>')
            body.append(_text(x0 + j * cell + cell / 2, y0 + i * cell + cell / 2 + 4, f"{v:g}", "middle"))
    for j, label in enumerate(labels):
        body.append(_text(x0 + j * cell + cell / 2, y0 + k * cell + 14, label[:10], "middle"))
    body.append(_text(x0 + k * cell / 2, y0 + k * cell + 30, "judge →   (rows: humans)", "middle"))
    return _svg(max(width, x0 + k * cell + 10), height, title, body, "confusion")
