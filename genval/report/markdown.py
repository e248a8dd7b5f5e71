"""report.md: the decision first, then what to look at, headline numbers, weakest slices — short enough for a PR comment."""

from __future__ import annotations

from genval.report.decision import ci, decision, failure_line, headline_rows, num, slice_rows

MAX_SLICES = 12  # a PR comment shows the weakest; report.html has them all


def render(summary: dict) -> str:
    """Gives report.md for a summary: the decision and its reasons first."""
    verdict, reasons = decision(summary)
    ev = summary["eval_set"]
    out = [f"## genval · {summary['name']}: **{verdict}**", "", f"{reasons[0]}."]
    out += [f"- {reason}." for reason in reasons[1:]] + [""]
    failed = failure_line(summary)
    if failed:
        out += [failed, ""]
    gate = summary.get("gate")
    if gate is not None:
        out.append(f"**Gate: {'PASS' if gate['passed'] else 'FAIL'}** ({len(gate['rules'])} rules)")
        out += [f"- ❌ {line}" for line in gate["failing"]] + [""]
    if summary.get("diagnoses"):
        out += ["### What to look at", ""] + [f"- **{d['kind'].replace('_', ' ')}**: {d['message']}"
                                             for d in summary["diagnoses"]] + [""]
    out += ["### Headline numbers", "", "| number | value | 95 % CI | n |", "| --- | --- | --- | --- |"]
    out += [f"| {name} | {num(n)} | {ci(n)} | {n.get('n') if n.get('n') is not None else '–'} |"
            for name, n in headline_rows(summary)]
    out += [""] + _answered(summary) + _slices(summary) + _metrics(summary) + _ops(summary)
    s = summary["settings"]
    out += ["", f"<sub>Eval set `{ev['path']}` · n={ev['n']} · sha256 `{(ev['sha256'] or '')[:12]}` · "
            f"{s['confidence'] * 100:.0f} % percentile bootstrap, {s['bootstrap']} resamples, seed {s['seed']} · "
            f"slices under n={s['min_slice_n']} are not ranked; MDE: the smallest change a slice's n can show "
            f"(80 % power, Bloom 1995).</sub>"]
    return "\n".join(out) + "\n"


def _answered(summary: dict) -> list[str]:
    """Gives the headline numbers on the answered examples only, when some output failed."""
    found = summary.get("answered")
    if not found:
        return []
    rows = headline_rows({"classification": found["classification"], "fidelity": found["fidelity"]})
    failed = ", ".join(f"{role} {n}" for role, n in found["failed"].items())
    out = ["### On answered examples only", "", f"Failed outputs left out ({failed}); above, they count as wrong.",
           "", "| number | value | 95 % CI | n |", "| --- | --- | --- | --- |"]
    return out + [f"| {name} | {num(n)} | {ci(n)} | {n.get('n', '–')} |" for name, n in rows] + [""]


def _slices(summary: dict) -> list[str]:
    rows = slice_rows(summary)
    if not rows:
        return []
    shown = [r for r in rows if r["critical"]] + [r for r in rows if not r["critical"]]
    shown = sorted(shown[:MAX_SLICES], key=lambda r: (r["value"] is None, r["too_small"], r["value"] or 0))
    out = ["### Slices, weakest first", "", "| slice | n | headline | value | 95 % CI | MDE | rank |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in shown:
        rank = "too small to rank" if r["too_small"] else (r["rank"] or "–")
        name = f"**{r['slice']}** (critical)" if r["critical"] else r["slice"]
        out.append(f"| {name} | {r['n']} | {r['metric'] or '–'} | {num(r['value'])} | {ci({'ci': r['ci']})} | "
                   f"{num(r['mde'], 3)} | {rank} |")
    if len(rows) > len(shown):
        out.append(f"| … {len(rows) - len(shown)} more in report.html | | | | | | |")
    return out + [""]


def _metrics(summary: dict) -> list[str]:
    out = ["### Metrics", "", "| pair | metric | value | 95 % CI | n |", "| --- | --- | --- | --- | --- |"]
    for pair, metrics in sorted(summary.get("metrics", {}).items()):
        out += [f"| {pair} | {m} | {num(n)} | {ci(n)} | {n['n']} |" for m, n in metrics.items()]
    return out + [""] if len(out) > 4 else []


def _ops(summary: dict) -> list[str]:
    ops = summary.get("ops") or {}
    teacher, student = ops.get("teacher") or {}, ops.get("student") or {}
    if not teacher and not student:
        return []
    out = ["### Operations (teacher → student)", "", "| figure | teacher | student | saving |", "| --- | --- | --- | --- |"]
    savings = ops.get("savings") or {}
    for key in ("latency_p50_s", "latency_p95_s", "cost_per_1k_calls", "peak_memory_bytes", "requests_per_s"):
        if teacher.get(key) is None and student.get(key) is None:
            continue
        saving = savings.get(f"{key}_pct") if key != "requests_per_s" else savings.get("throughput_gain_pct")
        out.append(f"| {key} | {num(teacher.get(key))} | {num(student.get(key))} | "
                   f"{'–' if saving is None else f'{saving:+.1f} %'} |")
    errors = summary.get("errors") or {}
    if any(e["failed"] for e in errors.values()):
        out.append("| failed calls | " + " | ".join(f"{errors.get(r, {}).get('failed', '–')}" for r in ("teacher", "student"))
                   + " | |")
    return out
