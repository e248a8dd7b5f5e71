"""The parts of a summary built from a run's collected sums: the judge's top block, retention, format checks,
slices, the numbers on answered examples and the corpus numbers — each the JSON dict the typed summary validates.

One function per part, the same for the student and for every further candidate in his place
(genval.analysis.candidates); genval.analysis.stage puts them together.
"""

from __future__ import annotations

from genval import registry
from genval.analysis import blocks, slices
from genval.analysis.collect import Collected
from genval.analysis.judge_correction import cells_from, corrected, two_by_two
from genval.analysis.numbers import Boot, minimum_detectable_effect
from genval.analysis.resampling import ALL
from genval.analysis.table import FORMAT_METRICS, says_equivalent
from genval.config import RunConfig
from genval.metrics.corpus import corpus_numbers
from genval.progress import Progress
from genval.runfolder import Run
from genval.summary import Calibration


def judge_top(block: dict | None, calibration: Calibration | None, found: Collected, boot: Boot,
              view: blocks.View | None = None) -> dict | None:
    """Adds the primary judge's validation, meaning and verdict shares to the overall judge block.

    Its corrected rates (Rogan–Gladen, PPI++) come with the block from the per-example cells
    (blocks.judge); a calibration.json without per-item ratings (an older genval's) gives them
    for the whole run only, from its confusion matrix.
    """
    if not block:
        return None
    cal = calibration.judges.get(block["name"]) if calibration else None
    meaning = calibration.meaning.get(block["name"]) if calibration else None
    block["validated"] = bool(cal.validated) if cal else False
    block["calibration"] = {k: v for k, v in cal.dump().items() if k != "rated"} if cal else None   # size: not per item
    block["meaning"] = meaning.dump() if meaning else None
    block["mean_score"] = block["judges"][block["name"]].get(block["pair"], {}).get("mean_score")
    key = (block["name"], view.stored(block["pair"]) if view else block["pair"])
    if key in found.judges.rates:
        counts = found.judges.verdicts.get(key, {})
        total = sum(counts.values())
        block["verdicts"] = {k: counts[k] / total for k in sorted(counts)}
        if block.get("corrected_equivalence_rate") is None and cal and not cal.rated and cal.confusion:
            equivalent = says_equivalent(meaning)
            table = two_by_two(cal.confusion.dump(), equivalent) if equivalent else None
            judged, positive, unanswered = found.judges.rates[key]
            cells = cells_from(table, positive, judged, unanswered) if table else None
            if cells is not None:
                block["corrected_equivalence_rate"], block["equivalence_rate_ppi"] = corrected(cells, boot)
    return block


def _task_retention(view: blocks.View, block: dict) -> dict | None:
    """Gives student / teacher task quality on the primary reference metric, paired by example."""
    metric = blocks.primary_metric(block, "student~reference")
    if metric is None or metric not in block["metrics"].get("teacher~reference", {}):
        return None
    return {"metric": metric, **view.ratio("student~reference", "teacher~reference", metric)}


def _retention(view: blocks.View, block: dict) -> dict:
    """Gives every reference metric's student / teacher ratio, paired by example (the report's metric pivot)."""
    student, teacher = block["metrics"].get("student~reference", {}), block["metrics"].get("teacher~reference", {})
    return {metric: view.ratio("student~reference", "teacher~reference", metric)
            for metric in sorted(set(student) & set(teacher) - {"label_correct", "kl"})}


def format_checks(view: blocks.View, block: dict) -> dict:
    """Gives per role the failure share of each format metric, and content quality on the outputs that pass."""
    out: dict = {}
    content_metric = blocks.primary_metric(block, "student~reference")
    for role in ("teacher", "student"):
        for metric in FORMAT_METRICS:
            entry = {"failure_rate": view.feature(f"fail:{role}", metric)}
            if not entry["failure_rate"]["n"]:
                continue
            if content_metric:
                entry["content_on_valid"] = {"metric": content_metric, **view.feature(f"valid:{role}", metric),
                                             "all": view.mean(f"{role}~reference", content_metric)["value"]}
            out.setdefault(role, {})[metric] = entry
    return out


def slices_of(found: Collected, config: RunConfig, boot: Boot, primary, progress: Progress | None,
            headline: str | None, role: str = "student") -> tuple[dict, dict]:
    """Gives field → value → block for every slice, and per field how its slices rank by the run's `headline`
    number (`role`: the candidate in the student's place)."""
    out: dict = {}
    ranking: dict = {}
    total = sum(map(len, found.fields.values()))
    label = "aggregate slices" + ("" if role == "student" else f" ({role})")
    found_spec = registry.spec(headline.split(" (")[0]) if headline else None
    sign = -1 if found_spec is not None and found_spec.better == "lower" else 1
    with (progress or Progress(quiet=True)).bar(label, total=total, unit="slice") as bar:
        for field, values in found.fields.items():
            out[field] = {}
            for value, code in values:
                view = found.view((field, code), role=role)
                block = blocks.build(view, held_as(found, role), primary, config.analysis.min_slice_n)
                retentions(view, block, every=role == "student")
                out[field][value] = block
                bar.update(1)
            selected = slices.selected_on_teacher(found.sources.get(field), headline)
            ranking[field] = slices.rank(out[field], config.analysis.min_slice_n, headline, blocks.named, sign,
                                         selected)
            for block in out[field].values():
                if block["headline"]:
                    block["headline"]["mde"] = minimum_detectable_effect(block["headline"], boot.confidence)
    return out, ranking


def held_as(found: Collected, role: str):
    """Gives the held labels and probabilities with `role` in the student's place (its ECE, F1, Brier, confusion)."""
    return found.held.as_role(role) if found.held is not None and role in found.held.roles else None


def retentions(view: blocks.View, block: dict, every: bool = True) -> None:
    """Adds task retention and (`every`) each reference metric's retention to a block's fidelity."""
    block["fidelity"]["task_retention"] = _task_retention(view, block)
    if every:
        block["fidelity"]["retention"] = _retention(view, block)


def answered(found: Collected, primary: str | None) -> dict | None:
    """Gives the overall numbers on the answered examples only (failed outputs left out), None when none failed."""
    if not found.answered:
        return None
    view = found.view(ALL, "answered")
    block = blocks.build(view, None, primary, 0)
    retentions(view, block, every=False)
    name, head = blocks.headline(block)
    return {"note": "the same numbers with every failed or missing output left out (n counts the answered "
                    "examples); the numbers above count them as wrong",
            "failed": {role: failed for role, (failed, *_) in sorted(found.roles.items()) if failed},
            "headline": {"metric": name, **head} if name else None, "metrics": block["metrics"],
            "fidelity": block["fidelity"], "classification": block["classification"], "judge": block["judge"]}


def corpus(run: Run, errors: dict) -> dict:
    """Gives the corpus numbers (corpus BLEU, field micro/macro F1, MAE/RMSE/R²): a reduce over the scores' statistics.

    A failed output has no text to count, so these are over the answered outputs; the note says how many failed.
    """
    pairs = corpus_numbers(run.iter_table("scores", columns=["pair", "metric", "stats", "signature"])) \
        if run.has("scores") else {}
    failed = {role: e["failed"] for role, e in errors.items() if e["failed"]}
    note = "over the answered outputs only" + ("" if not failed else ": failed outputs left out (" + ", ".join(
        f"{role} {count}" for role, count in sorted(failed.items())) + ")")
    return {"note": note, "pairs": pairs}
