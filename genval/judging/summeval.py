"""SummEval: import its expert ratings as an eval set, replay outputs and human labels; meta-evaluate.

Two public layouts are read: SummEval's own `model_annotations.aligned.jsonl` /
`.aligned.paired.jsonl` (Fabbri et al. 2021: one line per summary with `id`, `model_id`,
`decoded`, `references`, `expert_annotations` — three experts' 1–5 ratings — and, in the
paired file, the source `text`), and the G-Eval repository's `summeval.json` (a list of
`doc_id`, `system_id`, `source`, `reference`, `system_output`, `scores`).

Meta-evaluation is at summary level as in G-Eval (Liu et al. 2023, Table 1): for each
source document, correlate a metric with the human score over the systems' summaries;
skip a document where either side is constant; average over documents.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats as sps

from genval.errors import GenvalError
from genval.numbers import FAILED_DETAIL

ASPECTS = ("coherence", "consistency", "fluency", "relevance")


def _read_rows(path: Path) -> tuple[str, list[tuple[str, dict]]]:
    """Gives the layout name and (where, record) pairs of a SummEval or G-Eval file."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenvalError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        return "geval", [(f"{path} item {i + 1}", r) for i, r in enumerate(data)]
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append((f"{path}:{n}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise GenvalError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
    return "summeval", rows


def _need(record, keys: tuple[str, ...], where: str, layout: str) -> None:
    if not isinstance(record, dict):
        raise GenvalError(f"{where}: each record should be a JSON object")
    missing = [k for k in keys if k not in record]
    if missing:
        raise GenvalError(f"{where}: no '{missing[0]}' (a {layout} record has {', '.join(keys)})")


def _normalise(layout: str, rows) -> list[dict]:
    """Gives one {doc, system, source, reference, summary, ratings: [{annotator, aspect, score}]} per summary."""
    out = []
    for where, r in rows:
        if layout == "geval":
            _need(r, ("doc_id", "system_id", "source", "reference", "system_output", "scores"), where, "G-Eval summeval.json")
            ratings = [{"annotator": "expert_mean", "aspect": a, "score": float(r["scores"][a])}
                       for a in ASPECTS if a in r["scores"]]
            out.append({"doc": str(r["doc_id"]), "system": str(r["system_id"]), "source": r["source"],
                        "reference": r["reference"], "summary": r["system_output"], "ratings": ratings})
        else:
            _need(r, ("id", "model_id", "decoded", "references", "expert_annotations"), where, "SummEval")
            ratings = [{"annotator": f"expert_{k + 1}", "aspect": a, "score": float(ann[a])}
                       for k, ann in enumerate(r["expert_annotations"]) for a in ASPECTS if a in ann]
            refs = r["references"] or [""]
            out.append({"doc": str(r["id"]), "system": str(r["model_id"]), "source": r.get("text"),
                        "reference": refs[0], "summary": r["decoded"], "ratings": ratings})
    return out


def import_summeval(path: str | Path, out_dir: str | Path) -> dict:
    """Writes eval set, replay outputs per system, human labels and a run config; gives what it wrote."""
    path, out_dir = Path(path), Path(out_dir)
    if not path.exists():
        raise GenvalError(f"{path}: no such file (give model_annotations.aligned[.paired].jsonl or summeval.json)")
    layout, rows = _read_rows(path)
    summaries = _normalise(layout, rows)
    if not summaries:
        raise GenvalError(f"{path}: no summaries in the file")
    systems = sorted({s["system"] for s in summaries}, key=lambda m: (len(m), m))
    if len(systems) < 2:
        raise GenvalError(f"{path}: only one system ({systems[0]}); meta-evaluation needs several per document")
    roles = {systems[0]: "teacher", systems[1]: "student", **{m: m for m in systems[2:]}}
    docs: dict[str, dict] = {}
    for s in summaries:
        docs.setdefault(s["doc"], {"id": s["doc"], "input": s["source"] or "", "reference": s["reference"]})
    (out_dir / "systems").mkdir(parents=True, exist_ok=True)
    _jsonl(out_dir / "eval.jsonl", docs.values())
    for system in systems:
        _jsonl(out_dir / "systems" / f"{system}.jsonl",
               ({"id": s["doc"], "text": s["summary"]} for s in summaries if s["system"] == system))
    labels = [{"id": s["doc"], "pair": roles[s["system"]], "annotator": r["annotator"], "score": r["score"],
               "aspect": r["aspect"], "note": f"SummEval {layout} rating of {s['system']}"}
              for s in summaries for r in s["ratings"]]
    _jsonl(out_dir / "human_labels.jsonl", labels)
    config = {
        "name": "summeval", "task": "summarization", "eval_set": "eval.jsonl",
        "prompt": "Summarise the news article in a few sentences.\n\n{input}",
        "models": {roles[m]: {"backend": "replay", "path": f"systems/{m}.jsonl"} for m in systems},
        "metrics": ["rouge", "bleu", "chrf"], "human_labels": "human_labels.jsonl",
    }
    (out_dir / "summeval.yaml").write_text(
        "# Made by `genval import summeval`: roles are SummEval systems (teacher, student = the first two).\n"
        + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    (out_dir / "systems.json").write_text(json.dumps({roles[m]: m for m in systems}, indent=2) + "\n", encoding="utf-8")
    missing_source = sum(1 for d in docs.values() if not d["input"])
    return {"layout": layout, "documents": len(docs), "systems": len(systems), "summaries": len(summaries),
            "ratings": len(labels), "without_source": missing_source, "config": str(out_dir / "summeval.yaml")}


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
    aspects = [c for c in human.columns if c not in ("doc", "role")]
    return {
        "level": "summary (per document, constant documents skipped, averaged; Liu et al. 2023)",
        "summaries": int(len(merged)),
        "aspects": {a: {c: summary_level(merged, c, a) for c in columns} for a in aspects},
    }
