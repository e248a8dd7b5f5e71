"""report.html: one self-contained file (inline CSS, JS and SVG; nothing fetched), the decision first."""

from __future__ import annotations

import json
from pathlib import Path
from html import escape
from importlib import resources

from genval.config import GateConfig
from genval.report import candidates, judges, opsview, pivot, plots, why
from genval.report.decision import better, ci, decision, failure_line, file_named, headline_rows, holm_line, num, slice_rows
from genval.report.drilldown import FAILURE_KINDS, PER_STRATUM
from genval.summary import Calibration, Estimate, Summary, parse
from genval.summary.calibration import Confusion
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


def gate_threshold(summary: Summary, metric: str | None) -> float | None:
    """Gives the gate's bound on the headline metric (a min or max rule, on any slice), None when no rule bounds it."""
    for found in summary.gate.rules if summary.gate else []:
        if found.metric == metric and not found.pair:
            rule = GateConfig(rules=[found.rule]).rules[0]
            bound = rule.min if rule.min is not None else rule.max
            if bound is not None:
                return bound
    return None


def _tradeoff(summary: Summary) -> str:
    """Gives the candidates' task number against KL (or, without label probabilities, against fidelity)."""
    found = candidates.rows(summary)
    if len(found) < 2:
        return ""
    use_kl = all(r["kl"] for r in found)
    x_key = "kl" if use_kl else "fidelity"
    x_name = "KL(teacher‖student), lower is better" if use_kl else \
        f"fidelity: student~teacher {found[0]['fidelity_metric']}"
    metric = found[0]["task_metric"]
    usable = [r for r in found if r[x_key] and r["task"]]
    sign_x = -1 if use_kl else 1
    frontier = candidates.pareto([(sign_x * -r[x_key].value, r["task"].value) for r in usable],
                                 candidates.direction(metric))
    points = [{"label": r["candidate"], "x": r[x_key].value, "x_lo": r[x_key].lo, "x_hi": r[x_key].hi,
               "y": r["task"].value, "y_lo": r["task"].lo, "y_hi": r["task"].hi, "frontier": f}
              for r, f in zip(usable, frontier)]
    return plots.tradeoff(points, x_name, f"task: student~reference {metric}")


def _plots(summary: Summary, extras: dict) -> str:
    rows = [{"label": r["slice"], "value": r["value"], "lo": r["ci"][0], "hi": r["ci"][1], "n": r["n"],
             "small": r["too_small"]} for r in slice_rows(summary)]
    metric = next((r["metric"] for r in slice_rows(summary) if r["metric"]), None)
    cls = summary.classification
    ece = {role: n.value if n else None for role, n in cls.ece.items()} if cls else {}
    reliability = {role: [b.dump() for b in bins] for role, bins in cls.reliability.items()} \
        if cls and cls.reliability else {}
    sweep = [p.dump() for p in cls.sweep] if cls and cls.sweep else []
    fitted = cls.temperature.dump() if cls and cls.temperature else None
    names = candidates.names(summary)
    figures = [
        (plots.slice_bars(rows, metric or "headline", better(metric),
                          summary.headline.value if summary.headline else None, gate_threshold(summary, metric)),
         "Weakest at the top. Bars: point value; whiskers: 95 % bootstrap interval; green passes the gate's bound "
         "(or the overall value where no rule bounds it), red does not; hatched: too few examples to rank."),
        (plots.reliability(reliability, ece), "Dashed diagonal: perfect calibration."),
        (plots.temperature(sweep, fitted),
         "Post-hoc temperature moves calibration (NLL, ECE), never accuracy."),
        (plots.latency(extras.get("latency") or {}, names), "Share of calls per latency bin, per role."),
        (_tradeoff(summary), "One point per candidate with 95 % intervals both ways."),
    ]
    calibration = extras.get("calibration") or Calibration()
    for row in judges.rows(summary, calibration):
        cal = calibration.judges.get(row["judge"])
        conf = cal.confusion if cal and cal.confusion else Confusion(labels=[], matrix=[])
        figures.append((plots.confusion(conf.labels, conf.matrix,
                                        f"Judge {row['judge']}\nagainst humans"), "Rows: the humans' verdict; columns: "
                        "the judge's."))
    return '<div class="plots">' + "".join(f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"
                                           for svg, caption in figures if svg) + "</div>"


def _header(summary: Summary, run_label: str, replay_notes=()) -> str:
    verdict, reasons = decision(summary)
    out = [f'<h1>genval · {escape(summary.name)}: <span class="verdict {VERDICT_CLASS[verdict]}" id="verdict">'
           f"{escape(verdict)}</span></h1>", f'<p class="why">{escape(reasons[0])}.</p>']
    if reasons[1:]:
        out.append('<ul class="reasons">' + "".join(f"<li>{escape(r)}.</li>" for r in reasons[1:]) + "</ul>")
    failed = failure_line(summary)
    if failed:
        out.append(f'<p class="failures">{escape(failed)}</p>')
    if replay_notes:  # ids a replay file lacks (a re-run will not fill them) and records for ids the eval set lacks
        out.append('<ul class="failures replay">' + "".join(f"<li>{escape(file_named(n))}</li>" for n in replay_notes)
                   + "</ul>")
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


def _why(summary: Summary, run_label: str) -> str:
    """Gives the why section: failing rules, weakest slices, the judge's trust, diagnoses — each with its examples."""
    out = ['<section id="why"><h2>Why</h2>']
    gate = summary.gate
    if gate is not None:
        state = "PASS" if gate.passed else "FAIL"
        out.append(f'<p>Gate: <span class="gate-{state.lower()}" id="gate-state">{state}</span> '
                   f'({len(gate.rules)} rules)</p>')
        if holm_line(gate):
            out.append(f'<p class="muted" id="gate-holm">{escape(holm_line(gate))}.</p>')
        failing = why.failing_rules(summary)
        if failing:
            out.append('<ul class="evidence" id="failing-rules">' + "".join(
                f'<li><b>{escape(r["text"])}</b>: {escape(r["reason"])} (95 % CI {ci(r["ci"])})'
                f'{_link(r["filter"], run_label, _drill(r["filter"]))}</li>' for r in failing) + "</ul>")
    weakest = why.slice_lines(summary)
    if weakest:
        out.append('<p>Weakest slices:</p><ul class="evidence" id="weakest-slices">' + "".join(
            f'<li>{escape(r["text"])}{_link(r["filter"], run_label, _drill(r["filter"]))}</li>' for r in weakest)
            + "</ul>")
    trust = why.judge_line(summary)
    if trust:
        out.append(f'<p id="judge-trust">{escape(trust)} <a href="#judges">The judges ↓</a></p>')
    if why.diagnoses(summary):
        out.append('<h3>What to look at</h3><ul class="diag evidence">' + "".join(
            f"<li><b>{escape(d.kind.replace('_', ' '))}</b>: {escape(d.message)}"
            f"{_link(why.diagnosis_filter(d), run_label, _drill(why.diagnosis_filter(d)))}</li>"
            for d in why.diagnoses(summary)) + "</ul>")
    return "".join(out) + "</section>"


def _judges(summary: Summary, calibration: Calibration | None) -> str:
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


def _slice_table(summary: Summary) -> str:
    rows, classes = [], []
    for r in slice_rows(summary):
        rank = "too small to rank" if r["too_small"] else r["rank"] if r["rank"] is not None else \
            (r.get("why") or "–")
        rows.append([r["slice"], (r["n"], r["n"]), r["metric"] or "–", (num(r["value"]), r["value"]),
                     ci(r["ci"]), (num(r["mde"], 3), r["mde"]),
                     (rank if rank is not None else "–", r["rank"] if r["rank"] else 1e9)])
        classes.append(" ".join(c for c, on in (("small", r["too_small"]), ("critical", r["critical"])) if on))
    return _table(["slice", "n", "headline", "value", "95 % CI", "MDE (80 % power)", "rank (1 = weakest)"], rows,
                  "sortable", classes) \
        if rows else '<p class="muted">No slices configured.</p>'


def _metrics_table(summary: Summary, kept: dict) -> str:
    """Gives the metrics pivot: one row per metric, grouped, with fidelity, task quality and retention."""
    found = pivot.rows(summary, kept)
    if not found:
        return '<p class="muted">No metrics in this run.</p>'
    out = ['<table class="pivot"><thead><tr><th>metric</th><th>fidelity: student~teacher</th>'
           "<th>student~reference</th><th>teacher~reference</th><th>retention: student / teacher</th></tr></thead>"]
    group = None
    for r in found:
        if r["group"] != group:
            group = r["group"]
            out.append(f'<tbody><tr class="group"><th colspan="5">{escape(group)}</th></tr>')
        title = f' title="{escape(r["signature"])}"' if r["signature"] else ""
        cells = [_with_ci(r[k]) for k in ("fidelity", "student", "teacher")]
        kept_ = r["retention"]
        cells.append(_with_ci(kept_) + (f'<br><span class="muted">{escape(kept_.note)}</span>'
                                        if kept_ and kept_.note else ""))
        out.append(f'<tr><td{title}><details><summary>{escape(r["metric"])}</summary><code>'
                   f'{escape(r["signature"] or "no signature recorded")}</code></details></td>'
                   + "".join(f'<td class="num">{c}</td>' for c in cells) + "</tr>")
    return "".join(out) + "</tbody></table>"


def _with_ci(n: Estimate | None) -> str:
    if n is None or n.value is None:
        return "–"
    return f'{escape(num(n))} <span class="muted">({escape(ci(n))}, n={n.n})</span>'


def _ops_table(summary: Summary, currency: str) -> str:
    ops = summary.ops
    names = [c for c in candidates.names(summary) if c in (ops.roles if ops.roles else ("student",))]
    found = opsview.rows(ops, names, currency)
    if not found:
        return '<p class="muted">No ops.json in this run.</p>'
    head = ["figure", "teacher"] + [h for c in names for h in (c, f"{c}: change")]
    notes = [n for n in (opsview.basis_note(ops, currency), opsview.memory_note(ops)) if n]
    return _table(head, found, "ops") + "".join(f'<p class="muted">{escape(n)}</p>' for n in notes)


def _candidates(summary: Summary, currency: str) -> str:
    """Gives the section on candidates against the one teacher (decision, task, fidelity, judge rates, ops),
    or nothing when the run has only the student: one row would repeat the headline (docs/report.md)."""
    found = candidates.rows(summary)
    if len(found) < 2:
        return ""
    judge_names = sorted({j for r in found for j in r["judges"]})
    with_ece = any(r["ece"] for r in found)  # a classification run with label probabilities
    tokens = [m for m in candidates.TOKEN_FIDELITY if any(r[m] for r in found)]  # a run with token_fidelity
    head = ["candidate", "decision", f"task: {found[0]['task_metric'] or '–'}",
            f"fidelity: {found[0]['fidelity_metric'] or '–'}", "KL(teacher‖student)"] + (["ECE"] if with_ece else []) + \
        tokens + [f"judge {j}" for j in judge_names] + ["latency p50", "cost per 1,000 calls"]
    rows = []
    for r in found:
        verdict = r["decision"]["verdict"].replace("_", " ")
        rows.append([r["candidate"], f"{verdict}: {'; '.join(r['decision']['reasons'])}",
                     (f"{num(r['task'])} ({ci(r['task'])})", _value(r["task"])),
                     (f"{num(r['fidelity'])} ({ci(r['fidelity'])})", _value(r["fidelity"])),
                     (f"{num(r['kl'])} ({ci(r['kl'])})" if r["kl"] else "–", _value(r["kl"]))]
                    + ([(f"{num(r['ece'])} ({ci(r['ece'])})" if r["ece"] else "–", _value(r["ece"]))]
                       if with_ece else [])
                    + [(f"{num(r[m])} ({ci(r[m])})" if r[m] else "–", _value(r[m])) for m in tokens]
                    + [(f"{num(r['judges'].get(j))} ({ci(r['judges'].get(j))})", _value(r["judges"].get(j)))
                       for j in judge_names]
                    + [(opsview.show("latency_p50_s", r["latency_p50_s"]), r["latency_p50_s"]),
                       (opsview.show("cost_per_1k_calls", r["cost_per_1k_calls"], currency), r["cost_per_1k_calls"])])
    note = ('<p class="muted">Each candidate is decided as the student is: the gate\'s rules (slices, interval '
            "bounds and Holm's correction included) on its own numbers.</p>") if len(found) > 1 else ""
    return ('<h2 id="candidates">Candidates against the teacher</h2>'
            + _table(head, rows, "sortable candidates") + note)


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


def _calibration(found: Calibration | dict | None) -> Calibration | None:
    """Gives calibration.json typed (the report stage reads it so; a caller may hand its dict)."""
    return Calibration.model_validate(found) if isinstance(found, dict) else found


def _value(n: Estimate | None) -> float | None:
    return n.value if n else None


def render(summary: Summary | dict, examples: list[dict], extras: dict) -> str:
    """Gives report.html: the summary (numbers and plot data), the drill-down rows and the latencies."""
    summary = parse(summary)
    extras = {**extras, "calibration": _calibration(extras.get("calibration"))}
    ev, s = summary.eval_set, summary.settings
    currency = extras.get("currency") or ""
    headline = _table(["number", "value", "95 % CI", "n"],
                      [[name, (num(n), n.value), ci(n), n.n] for name, n in headline_rows(summary)])
    footer = (f'<p class="muted">Eval set {escape(Path(ev.path).name)} · n={ev.n} · sha256 {escape((ev.sha256 or "")[:12])}'
              f' · {s.confidence * 100:.0f} % percentile bootstrap, {s.bootstrap} resamples, seed {s.seed} · '
              f'slices under n={s.min_slice_n} are not ranked.</p>')
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>genval · {escape(summary.name)}</title><style>{_asset('report.css')}</style></head><body>"
            f"{_header(summary, extras.get('run_label') or 'RUN', extras.get('replay_notes') or ())}<h2>Headline numbers</h2>{headline}"
            f"{_candidates(summary, currency)}"  # docs/report.md's order: headline, candidates, judges, plots, …
            f'<h2 id="judges">Judges</h2>{_judges(summary, extras.get("calibration"))}'
            f"<h2>Plots</h2>{_plots(summary, extras)}"
            f'<h2>Slices</h2><p class="muted">Click a column to sort.</p>{_slice_table(summary)}'
            f'<h2>Metrics</h2>{_metrics_table(summary, extras.get("retention", {}))}'
            f"<h2>Operations</h2>{_ops_table(summary, currency)}"
            f'<h2 id="examples">Examples</h2>{_examples(examples, ev.n)}{footer}'
            f"<script>{_asset('report.js')}</script></body></html>\n")
