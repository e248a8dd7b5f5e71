"""SummEval and other human-rated summary sets: import as an eval set with replays and labels; meta-evaluate.

Two layouts are read, one record per rated summary (JSONL, or a JSON list):
- SummEval's own `model_annotations.aligned.jsonl` / `.aligned.paired.jsonl` (Fabbri et al.
  2021): `id`, `model_id`, `decoded`, `references` (11 per document), `expert_annotations` —
  three experts' 1–5 ratings per aspect — and, in the paired file, the source `text`;
- the shared layout, which the G-Eval repository's `summeval.json` already follows and into which
  Newsroom, REALSumm or TopicalChat-style files convert once: `doc_id`, `system_id`, `source`,
  `references` (a list; or `reference`, one text), `system_output`, and `scores`, per aspect a
  number or a list of numbers (one per annotator).
Every reference, every rating and every aspect is kept; an aspect other than SummEval's four is
kept and named in a note.

Meta-evaluation is at summary level as in G-Eval (Liu et al. 2023, Table 1): for each
source document, correlate a metric with the human score over the systems' summaries;
skip a document where either side is constant; average over documents.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats as sps

from genval.errors import GenvalError
from genval.numbers import FAILED_DETAIL

ASPECTS = ("coherence", "consistency", "fluency", "relevance")
SUMMEVAL_KEYS = ("id", "model_id", "decoded", "references", "expert_annotations")
SHARED_KEYS = ("doc_id", "system_id", "source", "system_output", "scores")
TOLERANCE = 0.01  # a reproduced figure further than this from the published one is flagged


def _read_rows(path: Path) -> list[tuple[str, dict]]:
    """Gives (where, record) pairs of a JSON list or a JSONL file."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenvalError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        return [(f"{path} item {i + 1}", r) for i, r in enumerate(data)]
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append((f"{path}:{n}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise GenvalError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
    return rows


def _need(record, keys: tuple[str, ...], where: str, layout: str) -> None:
    if not isinstance(record, dict):
        raise GenvalError(f"{where}: each record should be a JSON object")
    missing = [k for k in keys if k not in record]
    if missing:
        raise GenvalError(f"{where}: no '{missing[0]}' (a {layout} record has {', '.join(keys)})")


def _score(value, where: str, aspect: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GenvalError(f"{where}: the rating of '{aspect}' should be a number, found {value!r}")
    return float(value)


def _references(value, where: str) -> list[str]:
    refs = [value] if isinstance(value, str) else value
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise GenvalError(f"{where}: 'references' should be a list of texts")
    return refs


def _summeval_record(r: dict, where: str) -> dict:
    _need(r, SUMMEVAL_KEYS, where, "SummEval")
    experts = r["expert_annotations"]
    if not isinstance(experts, list) or not all(isinstance(e, dict) for e in experts):
        raise GenvalError(f"{where}: 'expert_annotations' should be a list of objects (aspect → rating)")
    ratings = [{"annotator": f"expert_{k + 1}", "aspect": a, "score": _score(v, where, a)}
               for k, ann in enumerate(experts) for a, v in ann.items()]
    return {"doc": str(r["id"]), "system": str(r["model_id"]), "source": r.get("text"),
            "references": _references(r["references"], where), "summary": r["decoded"], "ratings": ratings}


def _shared_record(r: dict, where: str) -> dict:
    _need(r, SHARED_KEYS, where, "rated-summary")
    if "references" not in r and "reference" not in r:
        raise GenvalError(f"{where}: no 'references' (a list of texts; or 'reference', one text)")
    if not isinstance(r["scores"], dict):
        raise GenvalError(f"{where}: 'scores' should be an object (aspect → rating, or a list of ratings)")
    ratings = []
    for aspect, value in r["scores"].items():
        if isinstance(value, list):  # one rating per annotator
            ratings += [{"annotator": f"annotator_{k + 1}", "aspect": aspect, "score": _score(v, where, aspect)}
                        for k, v in enumerate(value)]
        else:  # one number: the annotators' mean, as G-Eval's summeval.json gives it
            ratings.append({"annotator": "mean", "aspect": aspect, "score": _score(value, where, aspect)})
    return {"doc": str(r["doc_id"]), "system": str(r["system_id"]), "source": r["source"],
            "references": _references(r.get("references", r.get("reference")), where),
            "summary": r["system_output"], "ratings": ratings}


def _normalise(rows) -> tuple[str, list[dict]]:
    """Gives the layout and one {doc, system, source, references, summary, ratings: [{annotator, aspect, score}]} per summary."""
    out, layouts = [], set()
    for where, r in rows:
        summeval = isinstance(r, dict) and ("expert_annotations" in r or "model_id" in r)
        layouts.add("summeval" if summeval else "rated-summary")
        out.append(_summeval_record(r, where) if summeval else _shared_record(r, where))
    return " + ".join(sorted(layouts)), out


def import_summeval(path: str | Path, out_dir: str | Path) -> dict:
    """Writes eval set, replay outputs per system, human labels and a run config; gives what it wrote.

    Checks the whole file before writing anything: a file that yields no rating is an error.
    """
    path, out_dir = Path(path), Path(out_dir)
    if not path.exists():
        raise GenvalError(f"{path}: no such file (give model_annotations.aligned[.paired].jsonl, G-Eval's "
                          "summeval.json, or a file in the rated-summary layout)")
    layout, summaries = _normalise(_read_rows(path))
    if not summaries:
        raise GenvalError(f"{path}: no summaries in the file")
    if not any(s["ratings"] for s in summaries):
        raise GenvalError(f"{path}: no rating in the file (SummEval: 'expert_annotations'; the rated-summary "
                          "layout: 'scores', aspect → rating)")
    systems = sorted({s["system"] for s in summaries}, key=lambda m: (len(m), m))
    if len(systems) < 2:
        raise GenvalError(f"{path}: only one system ({systems[0]}); meta-evaluation needs several per document")
    roles = {systems[0]: "teacher", systems[1]: "student", **{m: m for m in systems[2:]}}
    docs: dict[str, dict] = {}
    for s in summaries:
        doc = docs.setdefault(s["doc"], {"id": s["doc"], "input": s["source"] or ""})
        if s["references"] and "reference" not in doc:
            doc["reference"] = s["references"] if len(s["references"]) > 1 else s["references"][0]
    (out_dir / "systems").mkdir(parents=True, exist_ok=True)
    _jsonl(out_dir / "eval.jsonl", docs.values())
    for system in systems:
        _jsonl(out_dir / "systems" / f"{system}.jsonl",
               ({"id": s["doc"], "text": s["summary"]} for s in summaries if s["system"] == system))
    labels = [{"id": s["doc"], "pair": roles[s["system"]], "annotator": r["annotator"], "score": r["score"],
               "aspect": r["aspect"], "note": f"{layout} rating of {s['system']}"}
              for s in summaries for r in s["ratings"]]
    _jsonl(out_dir / "human_labels.jsonl", labels)
    config = {
        "name": "summeval", "task": "summarization", "eval_set": "eval.jsonl",
        "prompt": "Summarise the news article in a few sentences.\n\n{input}",
        "models": {roles[m]: {"backend": "replay", "path": f"systems/{m}.jsonl"} for m in systems},
        # the SummEval convention (BARTScore's and G-Eval's scripts): F-measure averaged over the references,
        # ROUGE-L at summary level (rougeLsum): summaries hold several sentences on one line, so they are split
        # by genval's rules (what rouge-score's split_summaries does with nltk's Punkt), not only at newlines
        "metrics": ["bleu", {"name": "rouge", "types": ["rouge1", "rouge2", "rougeL", "rougeLsum"], "reduce": "mean",
                             "sentences": "split"},
                    {"name": "bertscore", "reduce": "mean"}],
        "human_labels": "human_labels.jsonl",
    }
    (out_dir / "summeval.yaml").write_text(
        "# Made by `genval import`: roles are the rated systems (teacher, student = the first two).\n"
        + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    (out_dir / "systems.json").write_text(json.dumps({roles[m]: m for m in systems}, indent=2) + "\n", encoding="utf-8")
    aspects = list(dict.fromkeys(r["aspect"] for s in summaries for r in s["ratings"]))
    notes = [f"aspect '{a}' is not one of SummEval's ({', '.join(ASPECTS)}); kept as it is" for a in aspects
             if a not in ASPECTS]
    references = [len(s["references"]) for s in summaries]
    return {"layout": layout, "documents": len(docs), "systems": len(systems), "summaries": len(summaries),
            "ratings": len(labels), "aspects": aspects, "references": [min(references), max(references)],
            "without_source": sum(1 for d in docs.values() if not d["input"]), "notes": notes,
            "config": str(out_dir / "summeval.yaml")}


def _jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


# --- meta-evaluation ------------------------------------------------------------------------------
def summary_level(frame: pd.DataFrame, machine: str, human: str) -> dict:
    """Gives Pearson, Spearman and Kendall averaged over documents (G-Eval's summary-level correlation).

    `frame` has `doc`, `machine`, `human` columns (one row per summary); documents where either
    side is constant, or with fewer than two summaries, are skipped and counted.
    """
    sums = {"pearson": [], "spearman": [], "kendall": []}
    skipped = 0
    for _, group in frame.dropna(subset=[machine, human]).groupby("doc"):
        x, y = group[machine].to_numpy(dtype=float), group[human].to_numpy(dtype=float)
        if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
            skipped += 1
            continue
        sums["pearson"].append(sps.pearsonr(x, y)[0])
        sums["spearman"].append(sps.spearmanr(x, y)[0])
        sums["kendall"].append(sps.kendalltau(x, y)[0])
    out = {k: (float(np.mean(v)) if v else None) for k, v in sums.items()}
    out.update({"documents": len(sums["pearson"]), "skipped": skipped})
    return out


def machine_scores(scores: pd.DataFrame | None, judgments: pd.DataFrame | None) -> pd.DataFrame:
    """Gives one row per (doc, role) with a column per metric (`metric:pair kind`) and per judge (`judge:name`).

    Rows that stand for a failed output (counted at the worst value) are left out: people rated
    summaries that exist, and a correlation with them is about the metric, not the failures.
    """
    frames = []
    if scores is not None and len(scores):
        s = scores.dropna(subset=["value"])
        s = s[s["detail"] != FAILED_DETAIL].copy() if "detail" in s else s.copy()
        s["role"] = s["pair"].str.split("~").str[0]
        s["kind"] = s["pair"].str.partition("~")[2].replace({"": "self"})
        s = s[s["kind"].isin(["reference", "self"])]
        s["column"] = s["metric"] + (s["kind"].map({"reference": "~reference", "self": ""}))
        frames.append(s.pivot_table(index=["id", "role"], columns="column", values="value", aggfunc="mean"))
    if judgments is not None and len(judgments):
        j = judgments.dropna(subset=["score"])
        j = j[pd.to_numeric(j["requests"], errors="coerce").fillna(1) > 0].copy() if "requests" in j else j.copy()
        j["role"] = j["pair"].str.split("~").str[0]
        j["column"] = "judge:" + j["judge"]
        frames.append(j.pivot_table(index=["id", "role"], columns="column", values="score", aggfunc="mean"))
    if not frames:
        return pd.DataFrame(columns=["doc", "role"])
    return pd.concat(frames, axis=1).reset_index().rename(columns={"id": "doc"})


def metaeval(scores: pd.DataFrame | None, judgments: pd.DataFrame | None, labels: pd.DataFrame) -> dict:
    """Gives, per human aspect, each metric's and judge's summary-level correlations with the human mean."""
    machine = machine_scores(scores, judgments)
    labels = labels.dropna(subset=["score"]).copy()
    labels["aspect"] = labels["aspect"].fillna("score")
    human = labels.groupby(["id", "pair", "aspect"])["score"].mean().unstack("aspect").reset_index()
    human = human.rename(columns={"id": "doc", "pair": "role"})
    merged = machine.merge(human, on=["doc", "role"], how="inner")
    columns = [c for c in machine.columns if c not in ("doc", "role")]
    found = [c for c in human.columns if c not in ("doc", "role")]
    aspects = [a for a in ASPECTS if a in found] + [a for a in found if a not in ASPECTS]  # G-Eval's order first
    return {
        "level": "summary (per document, constant documents skipped, averaged; Liu et al. 2023)",
        "summaries": int(len(merged)),
        "aspects": {a: {c: summary_level(merged, c, a) for c in columns} for a in aspects},
    }


# --- the G-Eval table ------------------------------------------------------------------------------
STATS = (("rho", "spearman"), ("tau", "kendall"))  # G-Eval's Table 1 reports Spearman ρ and Kendall τ


def geval_table(result: dict) -> dict:
    """Gives per metric and judge, per aspect and on average over the aspects, Spearman ρ and Kendall τ.

    The layout of G-Eval's Table 1 (Liu et al. 2023): one row per metric, ρ and τ per aspect,
    then their average (None when an aspect has no figure).
    """
    out: dict[str, dict] = {}
    for aspect, table in result["aspects"].items():
        for column, c in table.items():
            out.setdefault(column, {})[aspect] = {short: c[name] for short, name in STATS}
    for row in out.values():
        figures = list(row.values())
        row["average"] = {short: (float(np.mean([f[short] for f in figures]))
                                  if figures and all(f[short] is not None for f in figures) else None)
                          for short, _ in STATS}
    return out


def read_published(path: str | Path) -> dict:
    """Gives a published table as {metric: {aspect: {"rho": ρ, "tau": τ}}}, from JSON of metric → aspect → [ρ, τ] or {rho, tau}.

    Metric names are the run's columns (`rouge1~reference`, `judge:NAME`); a mistake is one line naming the entry.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenvalError(f"--published: no such file {path}") from None
    except json.JSONDecodeError as exc:
        raise GenvalError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise GenvalError(f"{path}: a published table is an object, metric → aspect → [rho, tau]")
    out: dict[str, dict] = {}
    for metric, aspects in data.items():
        if not isinstance(aspects, dict):
            raise GenvalError(f"{path}: '{metric}' should map each aspect to [rho, tau]")
        for aspect, value in aspects.items():
            pair = [value.get("rho"), value.get("tau")] if isinstance(value, dict) else value
            if not isinstance(pair, list) or len(pair) != 2 or not all(
                    v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in pair):
                raise GenvalError(f"{path}: '{metric}.{aspect}' should be [rho, tau] (numbers or null), found {value!r}")
            out.setdefault(metric, {})[aspect] = {"rho": pair[0], "tau": pair[1]}
    return out


def compare_published(table: dict, published: dict, tolerance: float = TOLERANCE) -> dict:
    """Gives each published figure beside the run's, flagged where they differ by more than `tolerance`.

    A published metric or aspect the run lacks is listed in `missing`, never silently dropped.
    """
    figures, missing = [], []
    for metric, aspects in published.items():
        for aspect, pub in aspects.items():
            ours = (table.get(metric) or {}).get(aspect)
            if ours is None:
                missing.append(f"{metric} {aspect}")
                continue
            for short, _ in STATS:
                if pub[short] is None:
                    continue
                diff = None if ours[short] is None else ours[short] - pub[short]
                figures.append({"metric": metric, "aspect": aspect, "stat": short, "ours": ours[short],
                                "published": pub[short], "diff": diff,
                                "flagged": diff is None or abs(diff) > tolerance + 1e-12})
    return {"tolerance": tolerance, "figures": figures, "missing": missing,
            "flagged": sum(f["flagged"] for f in figures)}
