"""SummEval import (both public layouts) and summary-level meta-evaluation, checked against scipy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as sps

from genval.cli import main
from genval.config import load_config
from genval.errors import GenvalError
from genval.judging.labels import read_labels
from genval.judging.summeval import import_summeval, metaeval, summary_level
from genval.pipeline import prepare, run_stages
from genval.progress import Progress
from tests.conftest import ROOT, write_jsonl

DOCS = {"d1": "The council approved the new park budget on Monday after a long debate.",
        "d2": "Heavy rain flooded the valley roads and schools closed for two days.",
        "d3": "The team won the final with a late goal from its youngest player."}
SYSTEMS = ["M0", "M1", "M5", "M11"]
RNG = np.random.default_rng(4)


def _summary(doc: str, k: int) -> str:
    words = DOCS[doc].split()
    return " ".join(words[: 4 + 2 * k])


def _experts(doc: str, k: int) -> list[dict]:
    out = []
    for e in range(3):
        base = {"coherence": 1 + (k + e) % 5, "consistency": min(5, 2 + k), "fluency": 3 + (e == 0),
                "relevance": 1 + (k * 2 + e) % 5}
        if doc == "d3":
            base["consistency"] = 4  # a constant document for consistency: skipped
        out.append(base)
    return out


def summeval_jsonl(path, paired: bool):
    rows = []
    for doc in DOCS:
        for k, m in enumerate(SYSTEMS):
            row = {"id": doc, "model_id": m, "decoded": _summary(doc, k), "references": [DOCS[doc], "another reference"],
                   "expert_annotations": _experts(doc, k), "turker_annotations": [], "filepath": f"cnndm/{doc}.story"}
            if paired:
                row["text"] = DOCS[doc]
            rows.append(row)
    return write_jsonl(path, rows)


def geval_json(path):
    rows = [{"doc_id": doc, "system_id": m, "source": DOCS[doc], "reference": DOCS[doc],
             "system_output": _summary(doc, k),
             "scores": {a: float(np.mean([e[a] for e in _experts(doc, k)])) for a in ("coherence", "consistency",
                                                                                        "fluency", "relevance")}}
            for doc in DOCS for k, m in enumerate(SYSTEMS)]
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path


@pytest.mark.parametrize("layout", ["paired", "aligned", "geval"])
def test_import_writes_eval_set_replays_labels_and_config(tmp_path, layout):
    src = geval_json(tmp_path / "summeval.json") if layout == "geval" else \
        summeval_jsonl(tmp_path / "model_annotations.aligned.jsonl", paired=layout == "paired")
    result = import_summeval(src, tmp_path / "out")
    out = tmp_path / "out"
    assert result["documents"] == 3 and result["systems"] == 4 and result["summaries"] == 12
    evalset = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    assert [e["id"] for e in evalset] == list(DOCS)
    assert evalset[0]["input"] == (DOCS["d1"] if layout != "aligned" else "")
    assert result["without_source"] == (3 if layout == "aligned" else 0)
    replay = [json.loads(line) for line in (out / "systems" / "M5.jsonl").read_text().splitlines()]
    assert replay[1] == {"id": "d2", "text": _summary("d2", 2)}
    roles = json.loads((out / "systems.json").read_text())
    assert roles == {"teacher": "M0", "student": "M1", "M5": "M5", "M11": "M11"}
    labels = read_labels(out / "human_labels.jsonl")
    per_summary = 12 if layout == "geval" else 36  # G-Eval's file holds the experts' mean
    assert len(labels) == per_summary * 4
    row = labels[(labels["id"] == "d1") & (labels["pair"] == "M5") & (labels["aspect"] == "relevance")]
    assert row["score"].mean() == pytest.approx(np.mean([e["relevance"] for e in _experts("d1", 2)]))
    config = load_config(out / "summeval.yaml")
    assert config.roles == ["teacher", "student", "M5", "M11"]
    # ROUGE-L at summary level on sentences split as rouge-score's split_summaries would (one-line summaries)
    (rouge,) = [m for m in config.metric_specs if m.name == "rouge"]
    assert "rougeLsum" in rouge.options["types"] and rouge.options["sentences"] == "split"


def test_import_errors_name_the_record(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"id": "d1", "model_id": "M0", "decoded": "x"}])
    with pytest.raises(GenvalError, match=r"bad\.jsonl:1: no 'references'"):
        import_summeval(path, tmp_path / "out")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"doc_id": "d1"}]), encoding="utf-8")
    with pytest.raises(GenvalError, match=r"bad\.json item 1: no 'system_id'"):
        import_summeval(path, tmp_path / "out")


def test_summary_level_correlation_matches_scipy_and_skips_constant_documents():
    frame = pd.DataFrame({"doc": ["a"] * 4 + ["b"] * 4 + ["c"] * 4,
                          "m": [1, 2, 3, 5, 2, 1, 4, 3, 1, 2, 3, 4],
                          "h": [1, 3, 2, 5, 1, 1, 2, 2, 3, 3, 3, 3]})
    result = summary_level(frame, "m", "h")
    assert result["documents"] == 2 and result["skipped"] == 1  # c's human scores are constant
    for name, func in (("pearson", sps.pearsonr), ("spearman", sps.spearmanr), ("kendall", sps.kendalltau)):
        expected = np.mean([func(frame.m[:4], frame.h[:4])[0], func(frame.m[4:8], frame.h[4:8])[0]])
        assert result[name] == pytest.approx(expected)


def test_metaeval_of_a_run_matches_scipy_per_metric_and_judge(tmp_path, capsys):
    src = summeval_jsonl(tmp_path / "model_annotations.aligned.paired.jsonl", paired=True)
    assert main(["import", "summeval", str(src), "--out", str(tmp_path / "se")]) == 0
    se = tmp_path / "se"
    roles = json.loads((se / "systems.json").read_text())
    judge_scores = {(doc, role): int(RNG.integers(1, 6)) for doc in DOCS for role in roles}
    write_jsonl(se / "judge.jsonl", [{"id": f"{doc}|{role}|ab|0", "text": str(s)}
                                     for (doc, role), s in judge_scores.items()])
    data = yaml.safe_load((se / "summeval.yaml").read_text())
    data["metrics"] = ["bleu"]
    data["judge"] = [{"config": str(ROOT / "judges" / "summary_quality.yaml"), "pairs": ["*"],
                      "model": {"backend": "replay", "path": "judge.jsonl"}}]
    (se / "summeval.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(se / "summeval.yaml")
    run = prepare(config, tmp_path / "runs")
    run_stages(run, config, Progress(quiet=True), only=["generate", "score", "judge"])
    assert main(["metaeval", str(run.root)]) == 0
    assert "consistency" in capsys.readouterr().out
    result = run.read_json("metaeval.json")
    labels = read_labels(se / "human_labels.jsonl")
    human = labels.groupby(["id", "pair", "aspect"])["score"].mean()
    # The judge against consistency, by hand with scipy: per document over the four systems, d3 skipped.
    per_doc = []
    for doc in ("d1", "d2"):
        x = [judge_scores[(doc, r)] for r in roles]
        y = [human[(doc, r, "consistency")] for r in roles]
        if np.ptp(x) and np.ptp(y):
            per_doc.append(sps.kendalltau(x, y)[0])
    got = result["aspects"]["consistency"]["judge:summary_quality"]
    assert per_doc and got["documents"] == len(per_doc) and got["kendall"] == pytest.approx(np.mean(per_doc))
    # BLEU against relevance, from the run's own scores table.
    scores = run.read_table("scores")
    bleu = scores[scores["metric"] == "bleu"]
    bleu = bleu[bleu["pair"].str.endswith("~reference")]
    vals = {(r.id, r.pair.split("~")[0]): float(r.value) for r in bleu.itertuples()}
    spearmans = []
    for doc in DOCS:
        x = [vals[(doc, r)] for r in roles]
        y = [human[(doc, r, "relevance")] for r in roles]
        if np.ptp(x) and np.ptp(y):
            spearmans.append(sps.spearmanr(x, y)[0])
    assert spearmans and result["aspects"]["relevance"]["bleu~reference"]["spearman"] == pytest.approx(np.mean(spearmans))
    # The same run through the G-Eval layout's labels gives one rater per summary: metaeval still runs.
    assert metaeval(scores, None, labels)["summaries"] == 12
