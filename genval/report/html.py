"""report.html: one self-contained file (inline CSS, JS and SVG; nothing fetched), the decision first."""

from __future__ import annotations

import json
from pathlib import Path
from html import escape
from importlib import resources

from genval import registry
from genval.report import judges, plots, why
from genval.report.decision import ci, decision, failure_line, headline_rows, num, slice_rows
from genval.report.drilldown import FAILURE_KINDS, PER_STRATUM
from genval.viewfilter import parse_filter, view_command, view_url

VERDICT_CLASS = {"READY": "v-ready", "NOT READY": "v-not", "INCOMPLETE": "v-incomplete", "NO DECISION": "v-none"}


def _asset(name: str) -> str:
    return resources.files("genval").joinpath(f"report/assets/{name}").read_text("utf-8")


def _table(head: list[str], rows: list[list], cls: str = "", row_classes: list[str] | None = None) -> str:
    """Gives an HTML table; a cell given as (shown, sort_value) sorts by its value."""
    out = [f'<table class="{cls}"><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for k, row in enumerate(rows):
        klass = f' class="{row_classes[k]}"' if row_classes and row_classes[k] else ""
        cells = []
        for cell in row:
            if isinstance(cell, tuple):
                shown, value = cell
                sort = "" if value is None else f' data-value="{value}"'
                cells.append(f'<td class="num"{sort}>{escape(str(shown))}</td>')
            else:
                cells.append(f"<td>{escape(str(cell))}</td>")
        out.append(f"<tr{klass}>" + "".join(cells) + "</tr>")
    return "".join(out) + "</tbody></table>"


def _figure(svg: str, caption: str, missing: str) -> str:
    body = svg or f'<p class="muted">{escape(missing)}</p>'
    return f"<figure>{body}<figcaption>{escape(caption)}</figcaption></figure>"


def _plots(summary: dict, extras: dict) -> str:
    rows = [{"label": r["slice"], "value": r["value"], "lo": r["ci"][0], "hi": r["ci"][1], "muted": r["too_small"]}
            for r in sorted(slice_rows(summary), key=lambda r: r["slice"])]
    metric = next((r["metric"] for r in slice_rows(summary) if r["metric"]), "headline")
    found = registry.spec(metric.split(" ")[0])
    direction = f" ({found.better} is better)" if found and found.better else ""
    cls = summary.get("classification") or {}
    conf = ((summary.get("judge") or {}).get("calibration") or {}).get("confusion") or {}
    figures = [
        _figure(plots.slice_bars(rows, f"Per slice: {metric}{direction}", found.high if found else None),
                "Bars: point value; whiskers: 95 % bootstrap interval; grey: too small to rank.", "No slices."),
        _figure(plots.reliability(cls.get("reliability") or {}), "Dashed diagonal: perfect calibration.",
                "No reliability data (needs label probabilities)."),
        _figure(plots.latency(extras.get("latency") or {}), "Dashed lines: median (p50).", "No latency data."),
        _figure(plots.sweep(cls.get("sweep") or []), "Student accuracy and KL as its softmax temperature varies.",
                "No temperature sweep (needs label probabilities)."),
        _figure(plots.confusion(conf.get("labels") or [], conf.get("matrix") or [], "Judge vs human labels"),
                "Rows: human verdict; columns: the judge's.", "No judge calibration (needs human_labels and a judge)."),
    ]
    return '<div class="plots">' + "".join(figures) + "</div>"


def _header(summary: dict, run_label: str) -> str:
    verdict, reasons = decision(summary)
    out = [f'<h1>genval · {escape(summary["name"])}: <span class="verdict {VERDICT_CLASS[verdict]}" id="verdict">'
           f"{escape(verdict)}</span></h1>", f'<p class="why">{escape(reasons[0])}.</p>']
    if reasons[1:]:
        out.append('<ul class="reasons">' + "".join(f"<li>{escape(r)}.</li>" for r in reasons[1:]) + "</ul>")
    failed = failure_line(summary)
    if failed:
        out.append(f'<p class="failures">{escape(failed)}</p>')
    out.append(_why(summary, run_label))
    return "".join(out)


def _link(filter_text: str | None, run_label: str, drill: dict | None = None) -> str:
    """Gives the links to a filter's examples: the viewer's URL, its command, and the drill-down below."""
    if filter_text is None:
        return ' <span class="muted">(no per-example rows behind this number)</span>'
    out = (f' <a class="view" href="{escape(view_url(filter_text))}">examples in genval view</a>'
           f' <span class="muted">(a local app, running only once started:</span> '
           f'<code>{escape(view_command(run_label, filter_text))}</code><span class="muted">)</span>')
    if drill:
        out += (f' · <a class="drill" href="#examples" data-slice="{escape(drill.get("slice") or "")}" '
                f'data-failure="{escape(drill.get("failure") or "")}">show them below</a>')
    return out


def _drill(filter_text: str | None) -> dict | None:
    """Gives the static drill-down's filters for a view filter (slice, failure kind), where they have one."""
    if filter_text is None:
        return None
    terms = parse_filter(filter_text)
    failure = {"student_only_error": "student_only_wrong", "format_failure": "format_failure"}.get(terms.get("flag"))
    if terms.get("verdict"):
        failure = "not_equivalent"
    return {"slice": terms.get("slice"), "failure": failure}


def _why(summary: dict, run_label: str) -> str:
    """Gives the why section: failing rules, weakest slices, the judge's trust, the diagnoses — each with its examples."""
    out = ['<section id="why"><h2>Why</h2>']
    gate = summary.get("gate")
    if gate is not None:
        state = "PASS" if gate["passed"] else "FAIL"
        out.append(f'<p>Gate: <span class="gate-{state.lower()}" id="gate-state">{state}</span> '
                   f'({len(gate["rules"])} rules)</p>')
        failing = why.failing_rules(summary)
        if failing:
            out.append('<ul class="evidence" id="failing-rules">' + "".join(
                f'<li><b>{escape(r["text"])}</b>: {escape(r["reason"])} (95 % CI {ci(r)})'
                f'{_link(r["filter"], run_label, _drill(r["filter"]))}</li>' for r in failing) + "</ul>")
    weakest = why.slice_lines(summary)
    if weakest:
        out.append('<p>Weakest slices:</p><ul class="evidence" id="weakest-slices">' + "".join(
            f'<li>{escape(r["text"])}{_link(r["filter"], run_label, _drill(r["filter"]))}</li>' for r in weakest)
            + "</ul>")
    trust = why.judge_line(summary)
    if trust:
        out.append(f'<p id="judge-trust">{escape(trust)} <a href="#judges">The judges ↓</a></p>')
    if summary.get("diagnoses"):
        out.append('<h3>What to look at</h3><ul class="diag evidence">' + "".join(
            f"<li><b>{escape(d['kind'].replace('_', ' '))}</b>: {escape(d['message'])}"
            f"{_link(why.diagnosis_filter(d), run_label, _drill(why.diagnosis_filter(d)))}</li>"
            for d in summary["diagnoses"]) + "</ul>")
    return "".join(out) + "</section>"


def _judges(summary: dict, calibration: dict | None) -> str:
    """Gives the judge section: every judge ranked by agreement, its figures, and its per-slice agreement."""
    found = judges.rows(summary, calibration)
    if not found:
        return '<p class="muted">No judge in this run.</p>'
    out = ['<p class="muted">Ranked by agreement with humans (calibration.json). A judge\'s rates are trusted '
           "only as far as its κ: validated when the interval's lower end reaches min κ.</p>",
           _table(judges.HEAD, [judges.cells(r) for r in found], "judges",
                  ["" if r["verdict"] == "validated" else "untrusted" for r in found])]
    for r in found:
        if r["per_slice"]:
            out.append(f'<details><summary>{escape(r["judge"])}: agreement per slice</summary>'
                       + _table(["slice", "n", "agreement", "κ"], r["per_slice"]) + "</details>")
        for line in r["warnings"]:
            out.append(f'<p class="muted">{escape(r["judge"])}: {escape(line)}</p>')
    return "".join(out)


def _slice_table(summary: dict) -> str:
    rows, classes = [], []
    for r in slice_rows(summary):
        rank = "too small to rank" if r["too_small"] else r["rank"]
        rows.append([r["slice"], (r["n"], r["n"]), r["metric"] or "–", (num(r["value"]), r["value"]),
                     ci({"ci": r["ci"]}), (num(r["mde"], 3), r["mde"]),
                     (rank if rank is not None else "–", r["rank"] if r["rank"] else 1e9)])
        classes.append(" ".join(c for c, on in (("small", r["too_small"]), ("critical", r["critical"])) if on))
    return _table(["slice", "n", "headline", "value", "95 % CI", "MDE (80 % power)", "rank (1 = weakest)"], rows,
                  "sortable", classes) \
        if rows else '<p class="muted">No slices configured.</p>'


def _metrics_table(summary: dict) -> str:
    rows = [[pair, metric, (num(n), n["value"]), ci(n), (n["n"], n["n"])]
            for pair, metrics in sorted(summary.get("metrics", {}).items()) for metric, n in metrics.items()]
    return _table(["pair", "metric", "value", "95 % CI", "n"], rows, "sortable")


def _ops_table(summary: dict) -> str:
    ops = summary.get("ops") or {}
    teacher, student, savings = ops.get("teacher") or {}, ops.get("student") or {}, ops.get("savings") or {}
    rows = []
    for key in sorted(set(teacher) | set(student)):
        t, s = teacher.get(key), student.get(key)
        if isinstance(t, (int, float)) or isinstance(s, (int, float)):
            saving = savings.get(f"{key}_pct")
            rows.append([key, (num(t), t), (num(s), s), ("–" if saving is None else f"{saving:+.1f} %", saving)])
    return _table(["figure", "teacher", "student", "saving"], rows, "sortable") if rows else \
        '<p class="muted">No ops.json in this run.</p>'


def _examples(rows: list[dict], total: int) -> str:
    slices = sorted({f"{k}={v}" for r in rows for k, v in r["slices"].items()})
    present = {f for r in rows for f in r["failures"]}
    slice_opts = '<option value="">all slices</option>' + "".join(
        f'<option value="{escape(s)}">{escape(s)}</option>' for s in slices)
    fail_opts = '<option value="">any outcome</option><option value="__any">any failure</option>' + "".join(
        f'<option value="{k}">{escape(v)} ({k})</option>' for k, v in FAILURE_KINDS.items() if k in present)
    data = json.dumps(rows, ensure_ascii=False).replace("</", "<\\/")
    head = "".join(f"<th>{h}</th>" for h in ("id", "input", "teacher", "student", "reference", "scores", "verdict",
                                              "slices", "failure"))
    sampled = "" if len(rows) >= total else (
        f'<p class="muted">{len(rows)} of {total} examples: a seeded sample of up to {PER_STRATUM} of each slice, '
        'each failure kind and the whole set; the run folder holds every example.</p>')
    return (sampled + f'<div class="filters"><label>Slice <select id="filter-slice">{slice_opts}</select></label>'
            f'<label>Failure kind <select id="filter-failure">{fail_opts}</select></label>'
            '<label>Search <input id="filter-text" type="search" placeholder="id or text"></label>'
            '<span id="row-count" class="muted"></span></div>'
            f'<table id="example-table"><thead><tr>{head}</tr></thead><tbody></tbody></table>'
            f'<script type="application/json" id="example-data">{data}</script>')


def render(summary: dict, examples: list[dict], extras: dict) -> str:
    """Gives report.html: the summary (numbers and plot data), the drill-down rows and the latencies."""
    ev, s = summary["eval_set"], summary["settings"]
    headline = _table(["number", "value", "95 % CI", "n"],
                      [[name, (num(n), n.get("value")), ci(n), n.get("n") if n.get("n") is not None else "–"]
                       for name, n in headline_rows(summary)])
    footer = (f'<p class="muted">Eval set {escape(Path(ev["path"]).name)} · n={ev["n"]} · sha256 {escape((ev["sha256"] or "")[:12])}'
              f' · {s["confidence"] * 100:.0f} % percentile bootstrap, {s["bootstrap"]} resamples, seed {s["seed"]} · '
              f'slices under n={s["min_slice_n"]} are not ranked.</p>')
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>genval · {escape(summary['name'])}</title><style>{_asset('report.css')}</style></head><body>"
            f"{_header(summary, extras.get('run_label') or 'RUN')}<h2>Headline numbers</h2>{headline}"
            f'<h2 id="judges">Judges</h2>{_judges(summary, extras.get("calibration"))}'
            f"<h2>Plots</h2>{_plots(summary, extras)}"
            f'<h2>Slices</h2><p class="muted">Click a column to sort.</p>{_slice_table(summary)}'
            f"<h2>Metrics</h2>{_metrics_table(summary)}<h2>Operations</h2>{_ops_table(summary)}"
            f'<h2 id="examples">Examples</h2>{_examples(examples, ev["n"])}{footer}'
            f"<script>{_asset('report.js')}</script></body></html>\n")
