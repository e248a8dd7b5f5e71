"""Lexical metrics give exactly sacrebleu's and rouge-score's numbers, and flag text rouge-score cannot read."""

import math
import random

import pytest
from rouge_score import rouge_scorer
from sacrebleu import corpus_bleu, sentence_bleu, sentence_chrf

from genval.metrics import bleu as bleu_module
from genval.metrics import lexical
from genval.metrics.corpus import corpus_numbers
from genval.metrics.registry import MetricContext
from tests.conftest import score_frames

WORDS = "the cat sat on a mat dogs were running quickly over lazy foxes it is raining again today".split()


def texts(n, seed):
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(0, 14))) for _ in range(n)]


CANDS, OTHERS = texts(120, 1), texts(120, 2)
CANDS[5], OTHERS[7] = "", ""  # empty outputs score as the libraries score them


def test_bleu_matches_sentence_bleu_and_corpus_bleu_per_pair():
    segments = [("a~b", 0, 60), ("c~d", 60, 120)]
    result = bleu_module.bleu(CANDS, OTHERS, MetricContext(task="summarization", segments=segments))
    assert result.values["bleu"] == [sentence_bleu(c, [o]).score for c, o in zip(CANDS, OTHERS)]
    assert result.settings["bleu"].startswith("nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp")
    # corpus BLEU is the reduce over the rows' statistics, whatever batches the rows come in
    corpus = corpus_numbers(score_frames(result, segments, batch=17))
    for pair, a, b in segments:
        expected = corpus_bleu(CANDS[a:b], [OTHERS[a:b]])
        assert corpus[pair]["bleu"] == expected.score
        assert corpus[pair]["signature"] == "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" + \
            __import__("sacrebleu").__version__


@pytest.mark.parametrize("options", [{}, {"lowercase": True}, {"tokenize": "intl"}, {"tokenize": "char"},
                                     {"tokenize": "none", "smooth_method": "floor"}, {"smooth_method": "add-k"},
                                     {"smooth_method": "none"}])
def test_bleu_statistics_are_sacrebleus_own_counts(options):
    from sacrebleu.metrics import BLEU

    rng = random.Random(3)
    words = "the cat , . - 3.14 1,000 ( ) & &amp; <skipped> 10-20 é ΑΣ 中文 a/b x.y,z '' \" ! -- 5. \x00".split(" ")
    words += ["a\nb", "end-\nnext", "\x00"]  # newlines, and the character genval joins a batch's texts with
    cands = ["".join(rng.choice([" ", ""]) + rng.choice(words) for _ in range(rng.randint(0, 18))) for _ in range(400)]
    others = ["".join(rng.choice([" ", ""]) + rng.choice(words) for _ in range(rng.randint(0, 18))) for _ in range(400)]
    cands[5], others[6], cands[7] = "", "", others[7]
    for texts in ((cands, others), ([c.replace("\x00", "") for c in cands], [o.replace("\x00", "") for o in others])):
        scorer = bleu_module.bleu_scorer(bleu_module.BleuOptions(**options))
        stats = bleu_module.statistics(scorer, *texts)
        theirs = BLEU(effective_order=True, **options)
        assert stats.tolist() == [theirs._extract_corpus_statistics([c], [[o]])[0] for c, o in zip(*texts)]
        assert bleu_module.sentence_scores(scorer, stats) == [theirs.sentence_score(c, [o]).score for c, o in zip(*texts)]
        reduced = corpus_numbers(score_frames(bleu_module.bleu(*texts, MetricContext(task="x", options=options)),
                                              [("p", 0, len(texts[0]))], batch=33))["p"]
        corpus = BLEU(**options)
        assert reduced["bleu"] == corpus.corpus_score(texts[0], [texts[1]]).score
        assert reduced["signature"] == str(corpus.get_signature())


def test_chrf_matches_sentence_chrf_with_options():
    from sacrebleu.metrics import CHRF

    assert lexical.chrf(CANDS, OTHERS, MetricContext(task="x")).values["chrf"] == [
        sentence_chrf(c, [o]).score for c, o in zip(CANDS, OTHERS)]
    ctx = MetricContext(task="summarization", options={"word_order": 2, "lowercase": True})
    result = lexical.chrf(CANDS, OTHERS, ctx)
    reference = CHRF(word_order=2, lowercase=True)  # chrF++ lowercased, called directly
    assert result.values["chrf"] == [reference.sentence_score(c, [o]).score for c, o in zip(CANDS, OTHERS)]
    assert "nw:2" in result.settings["chrf"] and "case:lc" in result.settings["chrf"]


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
    (template, counts), = result.counts.items()  # summed over batches by the score stage
    assert counts == [2, 3] and "2 of 3 pairs" in template.format(*counts)


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
    assert bleu_module._fast_13a(scorer) is not None  # this sacrebleu's rules are the ones it mirrors
    rng = random.Random(7)
    alphabet = "abc XYZ 0123456789 .,;:!?-–'\"()[]{}<>/\\@#$%^&*_+=|~`\n\t&quot;&amp;<skipped>ßü猫😀"
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    expected = []
    for i, t in enumerate(lines):  # a batch's texts are tokenized as one string: None between texts
        expected.extend(([None] if i else []) + scorer._preprocess_segment(t).split())
    assert bleu_module.tokens(scorer, lines) == expected
    cands, others = lines[:300], lines[300:600]
    result = bleu_module.bleu(cands, others, MetricContext(task="x"))
    assert result.values["bleu"] == [sentence_bleu(c, [o]).score for c, o in zip(cands, others)]
