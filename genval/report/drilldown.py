"""The per-example rows of report.html: input, teacher, student, reference, scores, verdict, slices, failure kinds."""

from __future__ import annotations

import pandas as pd

from genval.runfolder import Run

MAX_EXAMPLES = 5000   # keeps report.html openable; the run folder holds every example
MAX_CHARS = 4000      # per text cell
FAILURE_KINDS = {
    "generation_error": "a model call failed",
    "format_failure": "student output fails a format check",
    "student_only_wrong": "teacher right, student wrong",
    "both_wrong": "teacher and student both wrong",
    "not_equivalent": "judge: student not equivalent to teacher",
    "low_fidelity": "lowest tenth of student~teacher similarity",
}


def _clip(text) -> str | None:
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return None
    text = str(text)
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + " …"


def _scores(run: Run) -> dict[str, dict[str, float]]:
    if not run.has("scores"):
        return {}
    scores = run.read_table("scores")
    out: dict[str, dict[str, float]] = {}
    for ident, pair, metric, value in zip(scores["id"].astype(str), scores["pair"], scores["metric"], scores["value"]):
        if value is not None and not pd.isna(value):
            out.setdefault(ident, {})[f"{pair} {metric}"] = round(float(value), 4)
    return out


def _low_fidelity(scores: dict[str, dict[str, float]], metric: str | None) -> set[str]:
    if not metric:
        return set()
    key = f"student~teacher {metric}"
    values = pd.Series({i: s[key] for i, s in scores.items() if key in s}, dtype=float)
    if len(values) < 10:
        return set()
    return set(values.index[values <= values.quantile(0.1)])


def _verdicts(run: Run, judge: str | None) -> dict[str, tuple[str, float | None]]:
    """Gives id → (verdict as shown, equivalent 1/0/None) of the judge on student~teacher.

    What counts as equivalent is the judge file's (the judgments table's `equivalent`), never
    a word read here.
    """
    if not judge or not run.has("judgments"):
        return {}
    j = run.read_table("judgments")
    j = j[(j["judge"] == judge) & (j["pair"] == "student~teacher")]
    asked = pd.to_numeric(j["requests"], errors="coerce").fillna(1) > 0 if "requests" in j else [True] * len(j)
    equivalent = j["equivalent"] if "equivalent" in j else [None] * len(j)
    out = {}
    for i, v, e, a in zip(j["id"], j["verdict"], equivalent, asked):
        shown = str(v) if v is not None and not pd.isna(v) else ("unparsed" if a else "nothing to judge")
        out[str(i)] = (shown, None if e is None or pd.isna(e) or not a else float(e))
    return out


def _failures(ident, scores, errors, verdict, low) -> list[str]:
    s = scores.get(ident, {})
    kinds = []
    if ident in errors:
        kinds.append("generation_error")
    if any(s.get(f"student {m}") == 0.0 for m in ("json_valid", "schema_valid")):
        kinds.append("format_failure")
    t, st = s.get("teacher~reference label_correct"), s.get("student~reference label_correct")
    if t == 1.0 and st == 0.0:
        kinds.append("student_only_wrong")
    if t == 0.0 and st == 0.0:
        kinds.append("both_wrong")
    if verdict is not None and verdict[1] == 0.0:
        kinds.append("not_equivalent")
    if ident in low:
        kinds.append("low_fidelity")
    return kinds


def rows(run: Run, summary: dict) -> list[dict]:
    """Gives one drill-down row per example (at most MAX_EXAMPLES), slices and failure kinds attached."""
    examples = run.read_table("examples").head(MAX_EXAMPLES)
    outputs = run.read_table("outputs") if run.has("outputs") else pd.DataFrame(columns=["id", "role", "text", "error"])
    text = {(str(i), r): (t, e) for i, r, t, e in zip(outputs["id"], outputs["role"], outputs["text"], outputs["error"])}
    errors = {str(i) for i, e in zip(outputs["id"], outputs["error"]) if e is not None and not pd.isna(e)}
    scores = _scores(run)
    judge = (summary.get("judge") or {}).get("name")
    verdicts = _verdicts(run, judge)
    fid = (summary.get("fidelity") or {}).get("metrics") or {}
    low = _low_fidelity(scores, next((m for m in ("fields_f1", "rougeL", "chrf", "embedding", "bleu") if m in fid), None))
    derived: dict[str, dict[str, str]] = {}
    for field, groups in (summary.get("derived_slices") or {}).items():
        for value, ids in groups.items():
            for ident in ids:
                derived.setdefault(ident, {})[field] = value
    slice_cols = [c for c in examples.columns if c.startswith("slice_")]
    out = []
    for record in examples.to_dict("records"):
        ident = str(record["id"])
        slices = {c.removeprefix("slice_"): str(record[c]) for c in slice_cols if record[c] is not None}
        slices.update(derived.get(ident, {}))
        teacher, student = text.get((ident, "teacher"), (None, None)), text.get((ident, "student"), (None, None))
        out.append({"id": ident, "input": _clip(record.get("input") or record.get("prompt")),
                    "teacher": _clip(teacher[0]) if teacher[1] is None else f"[error] {teacher[1]}",
                    "student": _clip(student[0]) if student[1] is None else f"[error] {student[1]}",
                    "reference": _clip(record.get("reference")), "scores": scores.get(ident, {}),
                    "verdict": (verdicts.get(ident) or (None,))[0], "slices": slices,
                    "failures": _failures(ident, scores, errors, verdicts.get(ident), low)})
    return out
