"""Plots drawn with matplotlib and inlined as SVG, so report.html stays one self-contained file.

Each function gives one `<svg class="plot" data-plot="NAME">` element, or "" when there is
nothing to draw (no empty boxes). matplotlib's tick locators give nice tick values and its
constrained layout makes room for every label. No pyplot: each plot is its own `Figure`, so
nothing global is touched and a plot can be drawn from any thread. The SVG keeps text as text
(`svg.fonttype: none`) and fixed ids (`svg.hashsalt`), so a re-run writes the same bytes.
"""

from __future__ import annotations

import io
import re

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

TEACHER, STUDENT, GREY, PASS, FAIL = "#1f77b4", "#d62728", "#9e9e9e", "#2e7d32", "#c62828"
CANDIDATE_COLOURS = ["#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
STYLE = {"svg.fonttype": "none", "svg.hashsalt": "genval", "font.size": 9, "axes.titlesize": 10,
         "axes.spines.top": False, "axes.spines.right": False}


def colour(role: str, candidates: list[str] | None = None) -> str:
    if role == "teacher":
        return TEACHER
    order = candidates or ["student"]
    return CANDIDATE_COLOURS[order.index(role) % len(CANDIDATE_COLOURS)] if role in order else GREY


def _svg(fig: Figure, name: str, title: str) -> str:
    """Gives the figure as an inline <svg> element named for the page's tests and styles."""
    buffer = io.StringIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r"<svg ", f'<svg class="plot" data-plot="{name}" role="img" aria-label="{title}" ', text, count=1)


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(STYLE):
        return Figure(figsize=(width, height), layout="constrained")


def slice_bars(rows: list[dict], metric: str, better: str | None, overall: float | None,
               threshold: float | None) -> str:
    """Gives the slices as horizontal bars sorted by value (weakest at the top), with interval whiskers,
    the overall value and the gate's threshold drawn, coloured pass/fail against the threshold.

    rows: {label, value, lo, hi, n, small}. Without a threshold, a bar is coloured against the
    overall value instead (below it in the bad direction: red). Small slices are hatched.
    """
    rows = [r for r in rows if r.get("value") is not None]
    if not rows:
        return ""
    sign = -1 if better == "lower" else 1
    rows = sorted(rows, key=lambda r: sign * r["value"], reverse=True)   # weakest last → drawn at the top
    line = threshold if threshold is not None else overall
    with matplotlib.rc_context(STYLE):
        fig = _figure(6.4, 0.9 + 0.28 * len(rows))
        ax = fig.add_subplot()
        y = np.arange(len(rows))
        values = np.array([r["value"] for r in rows])
        good = [line is None or sign * (v - line) >= 0 for v in values]
        colours = [PASS if g else FAIL for g in good]
        bars = ax.barh(y, values, color=colours, alpha=0.8, height=0.65)
        for bar, r in zip(bars, rows):
            if r.get("small"):
                bar.set_hatch("///")
                bar.set_alpha(0.45)
        lo = np.array([r["lo"] if r.get("lo") is not None else r["value"] for r in rows])
        hi = np.array([r["hi"] if r.get("hi") is not None else r["value"] for r in rows])
        ax.errorbar(values, y, xerr=[values - lo, hi - values], fmt="none", ecolor="#222", elinewidth=1, capsize=2)
        ax.set_yticks(y, [f"{r['label']} (n={r['n']})" for r in rows])
        if overall is not None:
            ax.axvline(overall, color="#333", linestyle="--", linewidth=1, label=f"overall {overall:.3g}")
        if threshold is not None:
            ax.axvline(threshold, color=FAIL, linestyle=":", linewidth=1.5, label=f"gate {threshold:g}")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
        ax.set_xlabel(f"{metric} ({better} is better)" if better else metric)
        fig.legend(loc="outside upper right", ncols=2, fontsize=8, frameon=False)
        ax.set_title(f"Per slice: {metric}", loc="left")
    return _svg(fig, "slices", f"Per slice: {metric}")


def reliability(bins: dict[str, list[dict]], ece: dict[str, float | None]) -> str:
    """Gives the reliability diagram: accuracy against confidence per bin, each bin's marker sized by its count
    with the count written by it, so a 1-example bin reads as one example and not as a full bin."""
    roles = [r for r in ("teacher", "student") if any(b.get("n") for b in bins.get(r) or [])]
    if not roles:
        return ""
    with matplotlib.rc_context(STYLE):
        fig = _figure(4.4, 4.0)
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="#aaa", linestyle="--", linewidth=1)
        total = max(sum(b["n"] for b in bins[r] if b.get("n")) for r in roles)
        for role in roles:
            points = [b for b in bins[role] if b.get("n") and b.get("confidence") is not None]
            x = [b["confidence"] for b in points]
            y = [b["accuracy"] for b in points]
            size = [20 + 600 * b["n"] / total for b in points]
            found = ece.get(role)
            label = f"{role}" + (f" (ECE {found:.3f})" if found is not None else "")
            ax.scatter(x, y, s=size, color=colour(role), alpha=0.45, edgecolors=colour(role), label=label)
            for b in points:
                ax.annotate(str(b["n"]), (b["confidence"], b["accuracy"]), textcoords="offset points",
                            xytext=(6, -10 if role == "student" else 4), fontsize=7, color=colour(role))
        ax.set_xlim(0, 1.02)
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel("confidence (bin mean)")
        ax.set_ylabel("accuracy")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        ax.set_title("Reliability: marker area = examples in the bin", loc="left")
    return _svg(fig, "reliability", "Reliability diagram")


def temperature(sweep: list[dict], fitted: dict | None) -> str:
    """Gives the student's NLL and ECE against its softmax temperature — what temperature scaling changes
    (it cannot move accuracy: the arg-max is the same at every temperature) — with the fitted temperature marked."""
    points = [p for p in sweep or [] if p.get("nll") is not None]
    if len(points) < 2:
        return ""
    t = [p["temperature"] for p in points]
    with matplotlib.rc_context(STYLE):
        fig = _figure(4.6, 3.4)
        ax = fig.add_subplot()
        ax.plot(t, [p["nll"] for p in points], marker="o", color=STUDENT, label="NLL (left)")
        ax.set_xscale("log", base=2)
        ticks = [v for k, v in enumerate(t) if k == 0 or np.log2(v / t[k - 1]) > 0.3]   # none that overprint
        ax.set_xticks(ticks, [f"{v:.3g}" for v in ticks], rotation=45, fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("student temperature T (log scale)")
        ax.set_ylabel("NLL (nats)", color=STUDENT)
        right = ax.twinx()
        right.spines["right"].set_visible(True)
        right.plot(t, [p["ece"] for p in points], marker="s", color="#555", label="ECE (right)")
        right.set_ylabel("ECE", color="#555")
        right.yaxis.set_major_locator(MaxNLocator(nbins=5))
        if fitted and fitted.get("value"):
            ax.axvline(fitted["value"], color=PASS, linestyle=":", label=f"fitted T={fitted['value']:.2f}")
        lines = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, frameon=False, loc="upper center")
        ax.set_title("Temperature scaling: NLL and ECE vs T", loc="left")
    return _svg(fig, "temperature", "NLL and ECE against temperature")


def latency(samples: dict[str, np.ndarray], candidates: list[str], bins: int = 30) -> str:
    """Gives overlaid latency histograms (seconds per call), one per role, with each median marked."""
    data = {role: np.asarray([v for v in values if v is not None and np.isfinite(v)], float)
            for role, values in samples.items()}
    data = {role: v for role, v in data.items() if v.size}
    if not data:
        return ""
    edges = np.linspace(0, max(v.max() for v in data.values()) * 1.02, bins + 1)
    with matplotlib.rc_context(STYLE):
        fig = _figure(4.8, 3.2)
        ax = fig.add_subplot()
        for role, values in data.items():
            ax.hist(values, edges, weights=np.full(values.size, 1 / values.size), color=colour(role, candidates),
                    alpha=0.45, label=f"{role} (p50 {np.median(values):.3g} s)")
            ax.axvline(float(np.median(values)), color=colour(role, candidates), linestyle="--", linewidth=1)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.set_xlabel("seconds per call")
        ax.set_ylabel("share of calls")
        fig.legend(loc="outside upper right", fontsize=8, frameon=False)
        ax.set_title("Latency per call; dashed: median", loc="left")
    return _svg(fig, "latency", "Latency distribution")


def confusion(labels: list[str], matrix: list[list[float]], title: str) -> str:
    """Gives a confusion matrix, humans' verdicts in rows and the judge's in columns, every label written whole."""
    if not labels or not matrix:
        return ""
    counts = np.asarray(matrix, float)
    k = len(labels)
    with matplotlib.rc_context(STYLE):
        fig = _figure(1.6 + 0.55 * k + 0.06 * max(len(s) for s in labels), 1.4 + 0.5 * k)
        ax = fig.add_subplot()
        ax.imshow(counts, cmap="Blues", vmin=0)
        peak = counts.max() or 1
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{counts[i, j]:g}", ha="center", va="center", fontsize=8,
                        color="white" if counts[i, j] > peak / 2 else "#222")
        turn = k > 2 or max(len(s) for s in labels) > 8    # long labels side by side would overprint
        ax.set_xticks(range(k), labels, rotation=30 if turn else 0, ha="right" if turn else "center")
        ax.set_yticks(range(k), labels)
        ax.set_xlabel("judge")
        ax.set_ylabel("humans")
        ax.set_title(title, loc="left")
    return _svg(fig, "confusion", title)


def tradeoff(points: list[dict], x_name: str, y_name: str) -> str:
    """Gives one point per candidate: the task number (y) against KL(teacher‖student) or another fidelity number (x),
    with interval bars both ways and the Pareto frontier drawn and its members ringed.

    points: {label, x, x_lo, x_hi, y, y_lo, y_hi, frontier}.
    """
    points = [p for p in points if p.get("x") is not None and p.get("y") is not None]
    if not points:
        return ""
    with matplotlib.rc_context(STYLE):
        fig = _figure(4.8, 3.6)
        ax = fig.add_subplot()
        for k, p in enumerate(points):
            xerr = [[p["x"] - p["x_lo"]], [p["x_hi"] - p["x"]]] if p.get("x_lo") is not None else None
            yerr = [[p["y"] - p["y_lo"]], [p["y_hi"] - p["y"]]] if p.get("y_lo") is not None else None
            c = CANDIDATE_COLOURS[k % len(CANDIDATE_COLOURS)]
            ax.errorbar([p["x"]], [p["y"]], xerr=xerr, yerr=yerr, fmt="o", color=c, capsize=3, label=p["label"])
            if p.get("frontier"):
                ax.scatter([p["x"]], [p["y"]], s=160, facecolors="none", edgecolors=PASS, linewidths=1.5)
        front = sorted((p["x"], p["y"]) for p in points if p.get("frontier"))
        if len(front) > 1:
            ax.plot(*zip(*front), color=PASS, linestyle="--", linewidth=1, label="Pareto frontier")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.set_xlabel(x_name)
        ax.set_ylabel(y_name)
        ax.legend(fontsize=8, frameon=False)
        ax.set_title("Candidates: task vs fidelity; ringed: Pareto frontier", loc="left")
    return _svg(fig, "tradeoff", "Candidates: task against fidelity")
