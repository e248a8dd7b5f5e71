"""Lexical metrics give exactly sacrebleu's and rouge-score's numbers, and flag text rouge-score cannot read."""

import math
import random

import pytest
from rouge_score import rouge_scorer
from sacrebleu import corpus_bleu, sentence_bleu, sentence_chrf

from genval.metrics import lexical
from genval.metrics.registry import MetricContext

WORDS = "the cat sat on a mat dogs were running quickly over lazy foxes it is raining again today".split()


def texts(n, seed):
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(0, 14))) for _ in range(n)]


CANDS, OTHERS = texts(120, 1), texts(120, 2)
CANDS[5], OTHERS[7] = "", ""  # empty outputs score as the libraries score them


def test_bleu_matches_sentence_bleu_and_corpus_bleu_per_pair():
    ctx = MetricContext(task="summarization", segments=[("a~b", 0, 60), ("c~d", 60, 120)])
    result = lexical.bleu(CANDS, OTHERS, ctx)
    assert result.values["bleu"] == [sentence_bleu(c, [o]).score for c, o in zip(CANDS, OTHERS)]
    assert result.summary["corpus"]["a~b"]["bleu"] == corpus_bleu(CANDS[:60], [OTHERS[:60]]).score
    assert result.summary["corpus"]["c~d"]["bleu"] == corpus_bleu(CANDS[60:], [OTHERS[60:]]).score
    assert result.settings["bleu"].startswith("nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp")


def test_chrf_matches_sentence_chrf_with_options():
    from sacrebleu.metrics import CHRF

    assert lexical.chrf(CANDS, OTHERS, MetricContext(task="x")).values["chrf"] == [
        sentence_chrf(c, [o]).score for c, o in zip(CANDS, OTHERS)]
    ctx = MetricContext(task="summarization", options={"word_order": 2, "lowercase": True})
    result = lexical.chrf(CANDS, OTHERS, ctx)
    reference = CHRF(word_order=2, lowercase=True)  # chrF++ lowercased, called directly
    assert result.values["chrf"] == [reference.sentence_score(c, [o]).score for c, o in zip(CANDS, OTHERS)]
    assert "nw:2" in result.settings["chrf"] and "case:lc" in result.settings["chrf"]


def test_parallel_path_gives_the_same_numbers(monkeypatch):
    # force the multi-process path on a small batch: splitting by example must not change a number
    monkeypatch.setattr(lexical, "PARALLEL_MIN_ROWS", 10)
    monkeypatch.setattr(lexical, "workers", lambda: 2)
    ids = [f"e{i % 40}" for i in range(120)]
    ctx = MetricContext(task="summarization", ids=ids)
    assert lexical.bleu(CANDS, OTHERS, ctx).values["bleu"] == [sentence_bleu(c, [o]).score for c, o in zip(CANDS, OTHERS)]


@pytest.mark.parametrize("engine", ["rouge-score", "rouge-score-rs"])
@pytest.mark.parametrize("stem", [True, False])
def test_rouge_engines_match_rouge_score_exactly(engine, stem):
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=stem)
    ctx = MetricContext(task="summarization", options={"engine": engine, "stemmer": stem})
    result = lexical.rouge(CANDS, OTHERS, ctx)
    for t in ("rouge1", "rouge2", "rougeL"):
        assert result.values[t] == [scorer.score(o, c)[t].fmeasure for c, o in zip(CANDS, OTHERS)]
    assert result.settings["rougeL"] == f"rougeL|rouge-score|fmeasure|stemmer:{'yes' if stem else 'no'}|tokenizer:default[a-z0-9]"


def test_rouge_by_hand():
    # candidate "the cat sat", target "the cat ran": unigram P = R = 2/3; bigram 1/2; LCS 2 of 3
    result = lexical.rouge(["the cat sat"], ["the cat ran"], MetricContext(task="x", options={"stemmer": False}))
    assert result.values["rouge1"][0] == pytest.approx(2 / 3)
    assert result.values["rouge2"][0] == pytest.approx(1 / 2)
    assert result.values["rougeL"][0] == pytest.approx(2 / 3)


def test_rouge_other_script_is_nan_with_a_note_not_zero():
    cands = ["Кошка сидела на ковре", "the cat sat", "猫が座った"]
    others = ["Кошка сидит на ковре", "the cat sat", "猫が座る"]
    # what rouge-score itself gives: a silent 0 for the Cyrillic pair although the texts overlap
    assert rouge_scorer.RougeScorer(["rouge1"]).score(others[0], cands[0])["rouge1"].fmeasure == 0
    result = lexical.rouge(cands, others, MetricContext(task="x"))
    assert math.isnan(result.values["rouge1"][0]) and math.isnan(result.values["rouge1"][2])
    assert result.values["rouge1"][1] == 1.0
    assert "a-z" in result.details["rouge1"][0] and result.details["rouge1"][1] is None
    assert result.notes and "2 of 3" in result.notes[0]


def test_other_script_detection():
    assert lexical.other_script("Привет мир")
    assert not lexical.other_script("hello мир world")  # mostly Latin: rouge-score reads most of it
    assert not lexical.other_script("12345 !!")  # no letters: nothing is lost


def test_unknown_rouge_type_is_a_user_error():
    from genval.errors import GenvalError

    with pytest.raises(GenvalError, match="rouge.types"):
        lexical.rouge(["a"], ["a"], MetricContext(task="x", options={"types": ["rougeX"]}))


EDGE = ["", " ", "a", "Привет, мир!", "猫が座った。", "x  y\tz", "emoji 😀 test", "A.B.C", "ß straße STRASSE", "İstanbul"]


@pytest.mark.parametrize("options", [{}, {"char_order": 4, "beta": 3}, {"lowercase": True}])
def test_chrf_engines_give_sacrebleu_numbers_on_odd_text(options):
    pytest.importorskip("fastchrf")
    from sacrebleu.metrics import CHRF

    rng = random.Random(4)
    cands = CANDS + [rng.choice(EDGE) for _ in range(60)]
    others = OTHERS + [rng.choice(EDGE) for _ in range(60)]
    ids = [f"e{i % 50}" for i in range(len(cands))]  # shared ids: texts grouped per example
    reference = CHRF(**options)
    expected = [reference.sentence_score(c, [o]).score for c, o in zip(cands, others)]
    for engine in ("fastchrf", "sacrebleu"):
        result = lexical.chrf(cands, others, MetricContext(task="x", options={**options, "engine": engine}, ids=ids))
        assert result.values["chrf"] == expected, engine
        assert result.summary["engine"]["chrf"] == engine
    assert lexical.chrf_engine(lexical.ChrfOptions(word_order=2)) == "sacrebleu"  # chrF++ stays on sacrebleu


def test_fast_13a_tokenizer_equals_sacrebleus_on_random_punctuated_text():
    from sacrebleu.metrics import BLEU

    scorer = BLEU(effective_order=True)
    assert lexical._fast_13a(scorer) is not None  # this sacrebleu's rules are the ones it mirrors
    rng = random.Random(7)
    alphabet = "abc XYZ 0123456789 .,;:!?-–'\"()[]{}<>/\\@#$%^&*_+=|~`\n\t&quot;&amp;<skipped>ßü猫😀"
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    assert [lexical._preprocess(scorer, t) for t in lines] == [scorer._preprocess_segment(t) for t in lines]
    cands, others = lines[:300], lines[300:600]
    result = lexical.bleu(cands, others, MetricContext(task="x"))
    assert result.values["bleu"] == [sentence_bleu(c, [o]).score for c, o in zip(cands, others)]
