"""The judge stage: asks each configured judge about each pair, then checks the judge against humans.

Reads `examples` and `outputs`; writes `judgments` (one row per example × pair × judge, with
`equivalent` read from the judge file's meaning; an example whose pair has a failed output
gets a row that made no request, at the worst score) and `calibration.json` (judge vs the
human-rated sample, `{"judges": {}, "ranking": []}` without human labels or judges, and each
judge's `meaning`). The judge model is called only through
genval.models, with the run's shared request cache.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from genval.config import JudgeRef, RunConfig
from genval.errors import GenvalError
from genval.judging.asking import build_requests, pair_items, read_verdicts, resolve_pairs
from genval.judging.calibration import Settings, calibrate_judge, ranking
from genval.judging.definition import Definition, load_definition
from genval.judging.labels import read_labels
from genval.models import CallStats, generate_cached, load_backend
from genval.models.cache import RequestCache
from genval.progress import Progress
from genval.runfolder import Run

JUDGMENT_COLUMNS = ["id", "pair", "judge", "verdict", "score", "equivalent", "raw", "parsed", "swap_consistent",
                    "spread", "samples", "samples_swapped", "requests", "failed_requests", "problem", "prompt_tokens",
                    "completion_tokens", "latency_s"]
NOTHING_TO_JUDGE = "nothing to judge: an output of this pair failed or is missing; counted at the worst score"


def judge_names(config: RunConfig) -> list[tuple[str, JudgeRef, Definition]]:
    """Gives (name, reference, definition) per configured judge; two judges may not share a name."""
    out, seen = [], set()
    for i, ref in enumerate(config.judge):
        definition = load_definition(ref.config)
        name = ref.name or (f"{definition.name}.{ref.aspect}" if ref.aspect and ref.aspect != definition.aspect
                            else definition.name)
        if name in seen:
            raise GenvalError(f"judge[{i}]: a second judge named '{name}'; give each a distinct 'name'")
        seen.add(name)
        out.append((name, ref, definition))
    return out


@dataclass(frozen=True)
class JudgeScope:
    """What one configured judge answers: its name, the pairs it is asked about, its definition and aspect."""

    name: str
    pairs: frozenset
    definition: Definition
    aspect: str | None


def judge_scopes(config: RunConfig) -> list[JudgeScope]:
    """Gives the scope of every configured judge, the pairs resolved against the config's roles."""
    return [JudgeScope(name, frozenset(s.name for s in resolve_pairs(ref.pairs, config.roles, f"judge '{name}'.pairs")),
                       definition, ref.aspect or definition.aspect)
            for name, ref, definition in judge_names(config)]


def ask_judge(name: str, ref: JudgeRef, definition: Definition, examples: pd.DataFrame, outputs: pd.DataFrame,
              config: RunConfig, progress: Progress, cache: RequestCache | None) -> tuple[pd.DataFrame, dict]:
    """Gives one judge's judgments and its record (requests, model calls, unparsed, flip rate)."""
    specs = resolve_pairs(ref.pairs, config.roles, f"judge '{name}'.pairs")
    requests, unanswered = [], []
    for spec in specs:
        items = pair_items(examples, outputs, spec)
        requests.extend(build_requests(definition, items, spec.name, config.task, ref.samples, ref.swap,
                                       ref.aspect))
        unanswered.append(unanswered_rows(definition, name, spec.name, _scope(examples, spec), items["id"]))
    notes = []
    if ref.samples > 1 and definition.parameters.temperature == 0:
        notes.append(f"judge '{name}': samples {ref.samples} at temperature 0 draw the same answer "
                     f"{ref.samples} times on a deterministic engine; set parameters.temperature in {ref.config.name}")
    backend = load_backend(ref.model)
    stats = CallStats()
    try:
        with progress.bar(f"judge {name}", total=len(requests)) as bar:
            completions = generate_cached(backend, requests, cache, on_done=lambda _c: bar.update(1), stats=stats,
                                          measure={"role": f"judge:{name}"})
    finally:
        backend.close()
    frame = read_verdicts(definition, name, requests, completions) if requests else pd.DataFrame(columns=JUDGMENT_COLUMNS)
    if len(frame):
        frame["equivalent"] = [definition.scale.equivalent_value(v if isinstance(v, str) else None, sc)
                               for v, sc in zip(frame["verdict"], frame["score"])]
        failed = Counter(tuple(r.id.rsplit("|", 3)[:2]) for r, c in zip(requests, completions) if c.error)
        frame["failed_requests"] = [failed.get((str(i), p), 0) for i, p in zip(frame["id"], frame["pair"])]
    swapped = frame["swap_consistent"].dropna() if len(frame) else pd.Series(dtype=bool)
    record = {
        "requests": len(requests), "model_calls": stats.called, "cached": stats.cached, "failed": stats.failed,
        "wall_s": round(stats.wall_s, 3), "judgments": int(len(frame)),
        "unparsed": int((~frame["parsed"].astype(bool)).sum()) if len(frame) else 0,
        "nothing_to_judge": int(sum(map(len, unanswered))),
        "flip_rate": float((~swapped.astype(bool)).mean()) if len(swapped) else None,
        "notes": notes + list(getattr(backend, "notes", [])),
    }
    frames = [f for f in (frame, *unanswered) if len(f)]
    return (pd.concat(frames, ignore_index=True) if frames else frame), record


def _scope(examples: pd.DataFrame, spec) -> list[str]:
    """Gives the ids a pair is judged on when nothing fails: every example, or those with a reference."""
    if spec.other == "reference":
        return examples.loc[examples["reference"].notna(), "id"].astype(str).tolist()
    return examples["id"].astype(str).tolist()


def unanswered_rows(definition: Definition, name: str, pair: str, scope: list[str], judged) -> pd.DataFrame:
    """Gives a row per example of the pair's scope with nothing to judge: not equivalent, at the worst score.

    Such a row made no request (`requests` 0), so it is no failure of the judge's; it is
    the failed output's, counted as a user of the deployed model would meet it.
    """
    missing = sorted(set(scope) - set(map(str, judged)))
    return pd.DataFrame({"id": missing, "pair": pair, "judge": name, "verdict": None,
                         "score": definition.scale.worst_score,
                         "equivalent": 0.0 if definition.scale.counts_equivalence else None, "raw": "", "parsed": False,
                         "swap_consistent": None, "spread": None, "samples": 0, "samples_swapped": 0, "requests": 0,
                         "failed_requests": 0,
                         "problem": NOTHING_TO_JUDGE, "prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0},
                        columns=JUDGMENT_COLUMNS)


def calibration_for(config: RunConfig, judgments: pd.DataFrame, examples: pd.DataFrame,
                    outputs: pd.DataFrame) -> dict:
    """Gives calibration.json's content: each judge against the human labels, and the judges ranked."""
    meaning = judge_meaning(config)
    if config.human_labels is None or not config.judge:
        return {"judges": {}, "ranking": [], "meaning": meaning}
    labels = read_labels(config.human_labels, judges=judge_scopes(config))
    a = config.analysis
    judges = {}
    asked = judgments["requests"].fillna(1) > 0 if "requests" in judgments else True  # not the unanswered rows
    for name, ref, definition in judge_names(config):
        rows = judgments[(judgments["judge"] == name) & asked]
        settings = Settings(min_kappa=ref.min_kappa, n_boot=a.bootstrap, confidence=a.confidence, seed=a.seed,
                            min_slice_n=a.min_slice_n, price=ref.model.price, labels_path=str(config.human_labels))
        judges[name] = calibrate_judge(rows, labels, definition, examples, outputs, settings, ref.aspect)
    return {"judges": judges, "ranking": ranking(judges), "human_labels": str(config.human_labels), "meaning": meaning}


def judge_meaning(config: RunConfig) -> dict:
    """Gives per judge what its verdicts mean (from its file): the equivalent labels or the pass threshold, in words."""
    out = {}
    for name, _ref, definition in judge_names(config):
        scale = definition.scale
        out[name] = {"kind": scale.kind, "labels": list(scale.tokens), "equivalent": scale.equivalent,
                     "pass_threshold": scale.pass_threshold, "min": scale.min, "max": scale.max,
                     "says": scale.meaning()}
    return out


def judge(run: Run, config: RunConfig, progress: Progress, cache: RequestCache) -> dict:
    """Writes the judgments table and calibration.json; gives the stage's record."""
    examples = run.read_table("examples")
    outputs = run.read_table("outputs")
    frames, records = [], {}
    for name, ref, definition in judge_names(config):
        frame, records[name] = ask_judge(name, ref, definition, examples, outputs, config, progress, cache)
        frames.append(frame)
        for note in records[name]["notes"]:
            progress.say(f"note: {note}")
    judgments = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=JUDGMENT_COLUMNS)
    judgments = judgments.reindex(columns=JUDGMENT_COLUMNS).astype({
        "score": "float64", "equivalent": "float64", "spread": "float64", "latency_s": "float64", "parsed": "bool",
        "swap_consistent": "boolean", "samples": "Int64", "samples_swapped": "Int64", "requests": "Int64",
        "failed_requests": "Int64",
        "prompt_tokens": "Int64", "completion_tokens": "Int64",
    })
    run.write_table("judgments", judgments)
    calibration = calibration_for(config, judgments, examples, outputs)
    run.write_json("calibration.json", calibration)
    for name, block in calibration["judges"].items():
        k = block["kappa"]
        progress.say(f"judge {name}: kappa {_fmt(k['value'])} [{_fmt(k['ci'][0])}, {_fmt(k['ci'][1])}] n={k['n']}, "
                     f"{'validated' if block['validated'] else 'NOT validated'} (min_kappa {block['min_kappa']})")
    return {"judges": records, "validated": {n: b["validated"] for n, b in calibration["judges"].items()},
            "failed_requests": sum(r["failed"] for r in records.values())}


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"
