"""report.md: the decision first, then what to look at, headline numbers, weakest slices — short enough for a PR comment."""

from __future__ import annotations

from pathlib import Path

from genval.report import candidates, judges, opsview, pivot, why
from genval.report.decision import ci, decision, failure_line, file_named, headline_rows, holm_line, num, slice_rows
from genval.summary import Calibration, Estimate, Summary, parse
from genval.viewfilter import view_command

MAX_SLICES = 12  # a PR comment shows the weakest; report.html has them all


def _details(title: str, lines: list[str]) -> list[str]:
    """Gives lines folded into a <details> block (GitHub renders the Markdown table inside it)."""
    return [f"<details><summary>{title}</summary>", ""] + lines + ["", "</details>", ""]


def _command(filter_text: str | None, run_label: str) -> str:
    if filter_text is None:
        return ""
    return f" — examples: `{view_command(run_label, filter_text)}`"


def _why(summary: Summary, run_label: str) -> list[str]:
    """Gives the why: failing rules, weakest slices, the judge's trust, diagnoses, each with its examples' command."""
    out = []
    gate = summary.gate
    if gate is not None:
        out.append(f"**Gate: {'PASS' if gate.passed else 'FAIL'}** ({len(gate.rules)} rules)")
        if holm_line(gate):
            out.append(f"<sub>{holm_line(gate)}.</sub>")
        out += [f"- ❌ `{r['text']}`: {r['reason']} (95 % CI {ci(r['ci'])}){_command(r['filter'], run_label)}"
                for r in why.failing_rules(summary)] + [""]
    weakest = why.slice_lines(summary)
    if weakest:
        out += ["**Weakest slices**", ""] + [f"- {r['text']}{_command(r['filter'], run_label)}" for r in weakest] + [""]
    trust = why.judge_line(summary)
    if trust:
        out += [f"**Judge**: {trust}", ""]
    if why.diagnoses(summary):
        out += ["### What to look at", ""] + [f"- **{d.kind.replace('_', ' ')}**: {d.message}"
                                             f"{_command(why.diagnosis_filter(d), run_label)}"
                                             for d in why.diagnoses(summary)] + [""]
    out.append("<sub>`genval view` is a local app: the command serves the run and opens its examples, filtered.</sub>")
    return out + [""]


def _judges(summary: Summary, calibration: Calibration | dict | None) -> list[str]:
    found = judges.rows(summary, calibration)
    if not found:
        return []
    head = ["rank", "judge", "scale", "κ vs humans (95 % CI)", "n", "min κ", "trust", "annotators' ceiling", "unparsed"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in [r["rank"], r["judge"], r["scale"], r["kappa"], r["n"], r["min_kappa"],
                                                  r["verdict"], r["ceiling"], r["unparsed"]]) + " |" for r in found]
    return ["### Judges", ""] + lines + [""]


def render(summary: Summary | dict, extras: dict | None = None) -> str:
    """Gives report.md for a summary: the decision and its reasons first, then why."""
    summary = parse(summary)
    extras = extras or {}
    run_label = extras.get("run_label") or "RUN"
    verdict, reasons = decision(summary)
    ev = summary.eval_set
    out = [f"## genval · {summary.name}: **{verdict}**", "", f"{reasons[0]}."]
    out += [f"- {reason}." for reason in reasons[1:]] + [""]
    failed = failure_line(summary)
    if failed:
        out += [failed, ""]
    replay = extras.get("replay_notes") or []
    if replay:  # what the replay files lack, by id (a re-run will not fill it), and what they hold beyond the eval set
        out += [f"- {file_named(note)}" for note in replay] + [""]
    out += _why(summary, run_label)
    out += ["### Headline numbers", "", "| number | value | 95 % CI | n |", "| --- | --- | --- | --- |"]
    out += [f"| {name} | {num(n)} | {ci(n)} | {n.n} |" for name, n in headline_rows(summary)]
    currency = extras.get("currency") or ""
    out += [""] + _candidates(summary, currency) + _judges(summary, extras.get("calibration")) + _answered(summary)
    out += _slices(summary) + _metrics(summary, extras.get("retention", {})) + _ops(summary, currency)
    s = summary.settings
    out += ["", f"<sub>Eval set `{Path(ev.path).name}` · n={ev.n} · sha256 `{(ev.sha256 or '')[:12]}` · "
            f"{s.confidence * 100:.0f} % percentile bootstrap, {s.bootstrap} resamples, seed {s.seed} · "
            f"slices under n={s.min_slice_n} are not ranked; MDE: the smallest change a slice's n can show "
            f"(80 % power, Bloom 1995).</sub>"]
    return "\n".join(out) + "\n"


def _answered(summary: Summary) -> list[str]:
    """Gives the headline numbers on the answered examples only, when some output failed."""
    found = summary.answered
    if not found:
        return []
    rows = headline_rows(found)
    failed = ", ".join(f"{role} {n}" for role, n in found.failed.items())
    out = ["### On answered examples only", "", f"Failed outputs left out ({failed}); above, they count as wrong.",
           "", "| number | value | 95 % CI | n |", "| --- | --- | --- | --- |"]
    return out + [f"| {name} | {num(n)} | {ci(n)} | {n.n} |" for name, n in rows] + [""]


def _slices(summary: Summary) -> list[str]:
    rows = slice_rows(summary)
    if not rows:
        return []
    shown = [r for r in rows if r["critical"]] + [r for r in rows if not r["critical"]]
    shown = sorted(shown[:MAX_SLICES], key=lambda r: (r["value"] is None, r["too_small"], r["value"] or 0))
    out = ["| slice | n | headline | value | 95 % CI | MDE | rank |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in shown:
        rank = "too small to rank" if r["too_small"] else (r["rank"] or r.get("why") or "–")
        name = f"**{r['slice']}** (critical)" if r["critical"] else r["slice"]
        out.append(f"| {name} | {r['n']} | {r['metric'] or '–'} | {num(r['value'])} | {ci(r['ci'])} | "
                   f"{num(r['mde'], 3)} | {rank} |")
    if len(rows) > len(shown):
        out.append(f"| … {len(rows) - len(shown)} more in report.html | | | | | | |")
    return _details(f"Slices, weakest first ({len(rows)})", out)


def _cell(n: Estimate | None) -> str:
    return "–" if n is None or n.value is None else f"{num(n)} ({ci(n)})"


def _metrics(summary: Summary, kept: dict) -> list[str]:
    """Gives the metrics pivot, folded: one row per metric with fidelity, task quality and retention."""
    found = pivot.rows(summary, kept)
    if not found:
        return []
    lines = ["| kind | metric | fidelity: student~teacher | student~reference | teacher~reference | retention |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['group']} | {r['metric']} | {_cell(r['fidelity'])} | {_cell(r['student'])} | "
              f"{_cell(r['teacher'])} | {_cell(r['retention'])} |" for r in found]
    return _details(f"Metrics ({len(found)}, with 95 % intervals)", lines)


def _candidates(summary: Summary, currency: str) -> list[str]:
    """Gives the candidates' leaderboard (only when the run has more than the student)."""
    found = candidates.rows(summary)
    if len(found) < 2:
        return []
    # The columns the HTML table has, where any candidate has the number: label KL, ECE, token fidelity.
    extra = [(m, h) for m, h in (("kl", "KL(teacher‖student)"), ("ece", "ECE"), ("token_kl", "token_kl"),
                                 ("token_agreement", "token_agreement")) if any(r[m] for r in found)]
    head = ["candidate", "decision", f"task: {found[0]['task_metric'] or '–'}",
            f"fidelity: {found[0]['fidelity_metric'] or '–'}",
            *(h for _, h in extra), "judges", "latency p50", "cost per 1,000 calls"]
    out = ["### Candidates against the teacher", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in found:
        rates = "; ".join(f"{j} {num(n)}" for j, n in r["judges"].items() if n) or "–"
        cells = [r["candidate"], f"**{r['decision']['verdict'].replace('_', ' ')}**", _cell(r["task"]),
                 _cell(r["fidelity"]), *(_cell(r[m]) for m, _ in extra), rates,
                 opsview.show("latency_p50_s", r["latency_p50_s"]),
                 opsview.show("cost_per_1k_calls", r["cost_per_1k_calls"], currency)]
        out.append("| " + " | ".join(cells) + " |")
    return out + [""]


def _ops(summary: Summary, currency: str) -> list[str]:
    ops = summary.ops
    names = [c for c in candidates.names(summary) if c in ops.roles]
    found = opsview.rows(ops, names, currency)
    if not found:
        return []
    head = ["figure", "teacher"] + [h for c in names for h in (c, "change")]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)] + ["| " + " | ".join(r) + " |" for r in found]
    notes = [n for n in (opsview.basis_note(ops, currency), opsview.memory_note(ops)) if n]
    return _details("Operations (teacher → candidates)", lines + [""] + notes)
