"""Several references per example: BLEU, chrF and ROUGE equal sacrebleu's and rouge-score's own multi-reference calls."""

import json
import random

import pytest
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

from genval.config import load_config
from genval.errors import GenvalError
from genval.evalset import load_evalset
from genval.metrics import bleu as bleu_module
from genval.metrics import lexical
from genval.metrics.corpus import corpus_numbers
from genval.metrics.registry import MetricContext
from genval.pipeline import prepare, run_stages
from genval.progress import Progress
from tests.conftest import score_frames, write_jsonl, write_yaml

WORDS = "the cat sat on a mat dogs were running quickly over lazy foxes it is raining again today".split()


def _texts(n, rng, most=14):
    return [" ".join(rng.choices(WORDS, k=rng.randint(0, most))) for _ in range(n)]


def _case(seed=7, n=90, k=3):
    """Gives candidates and k reference streams (sacrebleu's layout), with a tie of reference lengths."""
    rng = random.Random(seed)
    cands = _texts(n, rng)
    streams = [_texts(n, rng) for _ in range(k)]
    # equally far from the hypothesis (5 tokens): 3 and 7 tokens; sacrebleu takes the shorter
    cands[0], streams[0][0], streams[1][0], streams[2][0] = "a b c d e", "a b c", "a b c d e f g", "x"
    cands[1] = streams[2][1]  # one reference equal to the output
    streams[1][2] = ""  # an empty reference
    return cands, streams


def test_bleu_several_references_equal_sacrebleu_sentence_and_corpus():
    cands, streams = _case()
    others = [tuple(refs) for refs in zip(*streams)]
    segments = [("student~reference", 0, 50), ("teacher~reference", 50, 90)]
    result = bleu_module.bleu(cands, others, MetricContext(task="summarization", segments=segments))
    sentence = BLEU(effective_order=True)
    assert result.values["bleu"] == [sentence.sentence_score(c, list(o)).score for c, o in zip(cands, others)]
    assert result.stats["bleu"][0][1] == 3  # the closest reference length, the shorter on a tie
    assert set(result.row_settings["bleu"]) == {str(_signature(sentence, 3))}
    corpus = corpus_numbers(score_frames(result, segments, batch=13))
    for pair, a, b in segments:
        theirs = BLEU()
        expected = theirs.corpus_score(cands[a:b], [s[a:b] for s in streams])
        assert corpus[pair]["bleu"] == pytest.approx(expected.score, abs=1e-12)
        assert corpus[pair]["signature"] == str(theirs.get_signature())
        assert "nrefs:3" in corpus[pair]["signature"]


def _signature(scorer, k):
    scorer.num_refs = k
    return scorer.get_signature()


def test_bleu_variable_references_corpus_is_sacrebleus_with_none_padding():
    cands, streams = _case(seed=11, n=40)
    others = [tuple(refs) if i % 3 else refs[0] for i, refs in enumerate(zip(*streams))]  # 1 or 3 references
    result = bleu_module.bleu(cands, others, MetricContext(task="x", segments=[("p", 0, 40)]))
    padded = [[s[i] if i % 3 or j == 0 else None for i in range(40)] for j, s in enumerate(streams)]
    theirs = BLEU()
    expected = theirs.corpus_score(cands, padded)
    corpus = corpus_numbers(score_frames(result, [("p", 0, 40)], batch=7))["p"]
    assert corpus["bleu"] == pytest.approx(expected.score, abs=1e-12)
    assert corpus["signature"] == str(theirs.get_signature()) and "nrefs:var" in corpus["signature"]


@pytest.mark.parametrize("engine", ["sacrebleu", "fastchrf"])
def test_chrf_several_references_equal_sentence_chrf(engine):
    cands, streams = _case(seed=5)
    others = [tuple(refs) for refs in zip(*streams)]
    ids = [f"e{i // 2}" for i in range(len(cands))]
    result = lexical.chrf(cands, others, MetricContext(task="x", ids=ids, options={"engine": engine}))
    theirs = CHRF()
    assert result.values["chrf"] == pytest.approx([theirs.sentence_score(c, list(o)).score
                                                   for c, o in zip(cands, others)], abs=1e-9)
    assert set(result.row_settings["chrf"]) == {str(_signature(CHRF(), 3))}


@pytest.mark.parametrize("engine", ["rouge-score", "rouge-score-rs"])
def test_rouge_max_is_score_multi_and_mean_is_the_mean_f(engine):
    cands, streams = _case(seed=9)
    # summaries of several sentences, one per line (rougeLsum splits on newlines)
    cands = [c.replace(" it ", "\nit ") for c in cands]
    others = [tuple(r.replace(" the ", "\nthe ") for r in refs) for refs in zip(*streams)]
    types = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    scorer = rouge_scorer.RougeScorer(types, use_stemmer=True)
    for reduce in ("max", "mean"):
        result = lexical.rouge(cands, others, MetricContext(task="x", options={"types": types, "engine": engine,
                                                                                 "reduce": reduce}))
        for t in types:
            if reduce == "max":
                expected = [scorer.score_multi(list(o), c)[t].fmeasure for c, o in zip(cands, others)]
            else:
                expected = [sum(scorer.score(r, c)[t].fmeasure for r in o) / len(o) for c, o in zip(cands, others)]
            assert result.values[t] == pytest.approx(expected, abs=1e-12), (reduce, t)
            assert set(result.row_settings[t]) == {f"{result.settings[t]}|refs:3|reduce:{reduce}"}
    assert any(a != b for a, b in zip(result.values["rougeL"], result.values["rougeLsum"]))  # the split matters


@pytest.mark.parametrize("name", ["rouge0", "rouge10", "rouge01", "rougeX"])
def test_rouge_names_outside_rouge_score_are_refused_in_one_line(tmp_path, name):
    write_jsonl(tmp_path / "eval.jsonl", [{"id": "a", "input": "x", "reference": "y"}])
    write_jsonl(tmp_path / "t.jsonl", [{"id": "a", "text": "y"}])
    path = write_yaml(tmp_path / "run.yaml", {
        "name": "r", "task": "summarization", "eval_set": "eval.jsonl", "prompt": "{input}",
        "models": {"teacher": {"backend": "replay", "path": "t.jsonl"}, "student": {"backend": "replay", "path": "t.jsonl"}},
        "metrics": [{"name": "rouge", "types": ["rouge1", name]}]})
    with pytest.raises(GenvalError, match=f"unknown ROUGE type '{name}'") as err:
        prepare(load_config(path), tmp_path / "runs")
    assert "\n" not in str(err.value) and not (tmp_path / "runs").exists()


def test_fingerprint_covers_every_reference_and_an_empty_list_is_refused(tmp_path):
    rows = [{"id": "a", "input": "x", "reference": ["one", "two", "three"]}]
    first = load_evalset(write_jsonl(tmp_path / "a.jsonl", rows), "{input}", [])
    rows[0]["reference"][2] = "changed"
    second = load_evalset(write_jsonl(tmp_path / "b.jsonl", rows), "{input}", [])
    assert first.sha256 != second.sha256 and first.max_references == 3
    assert json.loads(first.examples["references"][0]) == ["one", "two", "three"]
    rows[0]["reference"] = []
    with pytest.raises(GenvalError, match=r"c\.jsonl:1: 'reference' is an empty list"):
        load_evalset(write_jsonl(tmp_path / "c.jsonl", rows), "{input}", [])


def _multi_run(tmp_path, metrics):
    refs = {"a": ["a cat sat on a mat", "the cat is on the mat", "a cat sits there"],
            "b": ["dogs bark loudly at night", "at night dogs bark"], "c": "spring brings rain"}
    write_jsonl(tmp_path / "eval.jsonl", [{"id": i, "input": f"text {i}", "reference": r} for i, r in refs.items()])
    outputs = {"a": "the cat sat on the mat", "b": "dogs bark at night", "c": "rain in spring"}
    write_jsonl(tmp_path / "t.jsonl", [{"id": i, "text": t} for i, t in outputs.items()])
    write_jsonl(tmp_path / "s.jsonl", [{"id": i, "text": t.upper()} for i, t in outputs.items()])
    path = write_yaml(tmp_path / "run.yaml", {
        "name": "multi", "task": "summarization", "eval_set": "eval.jsonl", "prompt": "{input}",
        "models": {"teacher": {"backend": "replay", "path": "t.jsonl"}, "student": {"backend": "replay", "path": "s.jsonl"}},
        "metrics": metrics})
    cfg = load_config(path)
    run = prepare(cfg, tmp_path / "runs")
    run_stages(run, cfg, Progress(quiet=True), only=["generate", "score"])
    return run, refs, outputs


def test_score_stage_scores_against_every_reference(tmp_path):
    run, refs, outputs = _multi_run(tmp_path, ["bleu", {"name": "rouge", "reduce": "mean"}])
    scores = run.read_table("scores").set_index(["pair", "metric", "id"])
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    for i, ref in refs.items():
        group = ref if isinstance(ref, list) else [ref]
        row = scores.loc[("teacher~reference", "rouge1", i)]
        assert row["value"] == pytest.approx(sum(scorer.score(r, outputs[i])["rouge1"].fmeasure for r in group) / len(group))
        assert row["signature"].endswith(f"|refs:{len(group)}|reduce:mean") == (len(group) > 1)
        bleu = scores.loc[("teacher~reference", "bleu", i)]
        assert bleu["value"] == BLEU(effective_order=True).sentence_score(outputs[i], group).score
        assert f"nrefs:{len(group)}" in bleu["signature"]
    # fidelity keeps one other side, the teacher's output
    assert scores.loc[("student~teacher", "bleu", "a")]["signature"].startswith("nrefs:1|")
    settings = run.read_json("metrics.json")["settings"]
    assert settings["rouge1@references"] == [f"{settings['rouge1']}|refs:{k}|reduce:mean" for k in (2, 3)]


def test_a_one_reference_metric_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(GenvalError, match="metric 'regression' takes one reference.*up to 3 per example"):
        _multi_run(tmp_path, ["bleu", "regression"])
    assert not (tmp_path / "runs").exists()
