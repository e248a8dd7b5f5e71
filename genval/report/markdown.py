"""report.md: the decision first, then what to look at, headline numbers, weakest slices — short enough for a PR comment."""

from __future__ import annotations

from genval.report.decision import ci, decision, headline_rows, num, slice_rows

MAX_SLICES = 12  # a PR comment shows the weakest; report.html has them all


def render(summary: dict) -> str:
    """Gives report.md for a summary."""
    verdict, why = decision(summary)
    ev = summary["eval_set"]
    out = [f"## genval · {summary['name']}: **{verdict}**", "", f"{why[0].upper()}{why[1:]}", ""]
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
    out += [""] + _slices(summary) + _metrics(summary) + _ops(summary)
    s = summary["settings"]
    out += ["", f"<sub>Eval set `{ev['path']}` · n={ev['n']} · sha256 `{(ev['sha256'] or '')[:12]}` · "
            f"{s['confidence'] * 100:.0f} % percentile bootstrap, {s['bootstrap']} resamples, seed {s['seed']} · "
            f"slices under n={s['min_slice_n']} are not ranked.</sub>"]
    return "\n".join(out) + "\n"


def _slices(summary: dict) -> list[str]:
    rows = slice_rows(summary)
    if not rows:
        return []
    shown = [r for r in rows if r["critical"]] + [r for r in rows if not r["critical"]]
    shown = sorted(shown[:MAX_SLICES], key=lambda r: (r["value"] is None, r["too_small"], r["value"] or 0))
    out = ["### Slices, weakest first", "", "| slice | n | headline | value | 95 % CI | rank |",
           "| --- | --- | --- | --- | --- | --- |"]
    for r in shown:
        rank = "too small to rank" if r["too_small"] else (r["rank"] or "–")
        name = f"**{r['slice']}** (critical)" if r["critical"] else r["slice"]
        out.append(f"| {name} | {r['n']} | {r['metric'] or '–'} | {num(r['value'])} | {ci({'ci': r['ci']})} | {rank} |")
    if len(rows) > len(shown):
        out.append(f"| … {len(rows) - len(shown)} more in report.html | | | | | |")
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
