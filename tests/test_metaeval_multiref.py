"""genval metaeval on a synthetic SummEval-layout file with 3 references: G-Eval's table, checked with scipy."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from rouge_score import rouge_scorer
from scipy import stats as sps

from genval.cli import main
from genval.errors import GenvalError
from genval.judging.summeval import import_summeval, read_published
from tests.conftest import write_jsonl

SENTENCES = ["the council approved the park budget", "a long debate came first", "rain flooded the valley roads",
             "schools closed for two days", "the team won the final", "its youngest player scored late",
             "prices rose again this month", "shoppers bought less food"]
SYSTEMS = ["M0", "M1", "M2", "M5", "M8"]
ASPECTS = ("coherence", "consistency", "fluency", "relevance")


def _corpus(seed=0):
    """Gives per document 3 references and per system a summary (sentences on lines) and 3 experts' ratings."""
    rng = np.random.default_rng(seed)
    docs = {}
    for d in range(5):
        refs = ["\n".join(rng.choice(SENTENCES, size=2, replace=False)) for _ in range(3)]
        systems = {}
        for m in SYSTEMS:
            summary = "\n".join(rng.choice(SENTENCES, size=int(rng.integers(1, 4)), replace=False))
            experts = [{a: int(rng.integers(1, 6)) for a in ASPECTS} | {"informativeness": int(rng.integers(1, 6))}
                       for _ in range(3)]
            systems[m] = (summary, experts)
        docs[f"d{d}"] = (refs, systems)
    docs["d4"][1]["M0"][1][0]["fluency"] = docs["d4"][1]["M0"][1][0]["fluency"]  # (rated as drawn)
    for m in SYSTEMS:  # one document whose experts agree on every summary's fluency: skipped for fluency
        for e in docs["d4"][1][m][1]:
            e["fluency"] = 4
    return docs


def _write(path, docs):
    return write_jsonl(path, [{"id": d, "model_id": m, "decoded": summary, "references": refs, "text": f"source {d}",
                               "expert_annotations": experts, "turker_annotations": []}
                              for d, (refs, systems) in docs.items() for m, (summary, experts) in systems.items()])


def _expected(docs, rouge_type, aspect):
    """Gives (ρ, τ) averaged over documents, from rouge-score and scipy directly, constant documents skipped."""
    scorer = rouge_scorer.RougeScorer([rouge_type], use_stemmer=True)
    rhos, taus = [], []
    for refs, systems in docs.values():
        x = [np.mean([scorer.score(r, s)[rouge_type].fmeasure for r in refs]) for s, _ in systems.values()]
        y = [np.mean([e[aspect] for e in experts]) for _, experts in systems.values()]
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        rhos.append(sps.spearmanr(x, y)[0])
        taus.append(sps.kendalltau(x, y)[0])
    return float(np.mean(rhos)), float(np.mean(taus))


def test_metaeval_prints_the_geval_table_and_flags_published_figures(tmp_path, capsys):
    docs = _corpus()
    src = _write(tmp_path / "model_annotations.aligned.paired.jsonl", docs)
    assert main(["import", "summeval", str(src), "--out", str(tmp_path / "se")]) == 0
    printed = capsys.readouterr().out
    assert "3 references per document" in printed and "note: aspect 'informativeness'" in printed
    config = yaml.safe_load((tmp_path / "se" / "summeval.yaml").read_text())
    assert config["metrics"][0] == "bleu" and config["metrics"][1]["reduce"] == "mean"
    assert config["metrics"][2] == {"name": "bertscore", "reduce": "mean"}
    config["metrics"] = config["metrics"][:2]  # BERTScore's multi-reference numbers are checked in test_multiref_semantic
    (tmp_path / "se" / "summeval.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    expected = {(t, a): _expected(docs, t, a) for t in ("rouge1", "rouge2", "rougeLsum") for a in ASPECTS}
    published = {"rouge1~reference": {a: list(expected[("rouge1", a)]) for a in ASPECTS},
                 "rougeLsum~reference": {"relevance": [expected[("rougeLsum", "relevance")][0] + 0.02, None]},
                 "bertscore_f1~reference": {"coherence": [0.1, 0.1]}}
    (tmp_path / "published.json").write_text(json.dumps(published), encoding="utf-8")
    assert main(["run", str(tmp_path / "se" / "summeval.yaml"), "--out", str(tmp_path / "runs"), "--quiet"]) in (0, 1, 2)
    capsys.readouterr()
    run_dir = tmp_path / "runs" / "summeval"
    assert main(["metaeval", str(run_dir), "--published", str(tmp_path / "published.json")]) == 0
    out = capsys.readouterr().out
    result = json.loads((run_dir / "metaeval.json").read_text())
    table = result["table"]
    for (t, a), (rho, tau) in expected.items():
        assert table[f"{t}~reference"][a] == {"rho": pytest.approx(rho, abs=1e-12), "tau": pytest.approx(tau, abs=1e-12)}
    for t in ("rouge1", "rouge2", "rougeLsum"):
        row = table[f"{t}~reference"]
        assert row["average"]["rho"] == pytest.approx(np.mean([row[a]["rho"] for a in [*ASPECTS, "informativeness"]]))
    assert result["aspects"]["fluency"]["rouge1~reference"]["skipped"] == 1  # d4: the experts agree
    found = result["published"]
    assert found["flagged"] == 1 and len(found["figures"]) == 9 and found["missing"] == ["bertscore_f1~reference coherence"]
    flagged = [f for f in found["figures"] if f["flagged"]][0]
    assert (flagged["metric"], flagged["aspect"], flagged["stat"]) == ("rougeLsum~reference", "relevance", "rho")
    assert flagged["diff"] == pytest.approx(-0.02)
    assert "1 of 9 published figures differ by more than 0.01" in out and "*" in out
    header = next(line for line in out.splitlines() if line.startswith("metric / judge"))
    assert header.split()[3:] == ["coherence", "consistency", "fluency", "relevance", "informativeness", "average"]


def test_the_rated_summary_layout_imports_the_same_way(tmp_path):
    rows = [{"doc_id": "n1", "system_id": s, "source": "text", "references": ["a b c", "b c d"], "system_output": o,
             "scores": {"relevance": [4, 5], "informativeness": 3}}
            for s, o in (("A", "a b"), ("B", "c d"))]
    path = tmp_path / "newsroom.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    result = import_summeval(path, tmp_path / "out")
    assert result["layout"] == "rated-summary" and result["ratings"] == 6 and result["references"] == [2, 2]
    assert result["notes"] == ["aspect 'informativeness' is not one of SummEval's (coherence, consistency, fluency, "
                               "relevance); kept as it is"]
    evalset = json.loads((tmp_path / "out" / "eval.jsonl").read_text().splitlines()[0])
    assert evalset["reference"] == ["a b c", "b c d"]
    labels = [json.loads(line) for line in (tmp_path / "out" / "human_labels.jsonl").read_text().splitlines()]
    assert sorted((r["pair"], r["annotator"], r["aspect"], r["score"]) for r in labels if r["pair"] == "teacher") == [
        ("teacher", "annotator_1", "relevance", 4.0), ("teacher", "annotator_2", "relevance", 5.0),
        ("teacher", "mean", "informativeness", 3.0)]


def test_a_file_without_ratings_and_a_bad_published_table_are_one_line_errors(tmp_path):
    rows = [{"doc_id": "n1", "system_id": s, "source": "t", "reference": "r", "system_output": "o", "scores": {}}
            for s in "AB"]
    path = write_jsonl(tmp_path / "empty.jsonl", rows)
    with pytest.raises(GenvalError, match=r"empty\.jsonl: no rating in the file"):
        import_summeval(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    rows[0]["scores"] = {"relevance": "high"}
    with pytest.raises(GenvalError, match=r"empty\.jsonl:1: the rating of 'relevance' should be a number"):
        import_summeval(write_jsonl(tmp_path / "empty.jsonl", rows), tmp_path / "out")
    (tmp_path / "pub.json").write_text(json.dumps({"rouge1~reference": {"coherence": [0.1]}}), encoding="utf-8")
    with pytest.raises(GenvalError, match=r"pub\.json: 'rouge1~reference\.coherence' should be \[rho, tau\]"):
        read_published(tmp_path / "pub.json")
