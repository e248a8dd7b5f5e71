"""rougeLsum's sentences: genval's rule-based splitter, as rouge-score's split_summaries (nltk Punkt) splits."""

from __future__ import annotations

import random

import pytest
from rouge_score import rouge_scorer, tokenize

from genval.metrics import lexical
from genval.metrics.registry import MetricContext
from genval.metrics.sentences import SIGNATURE, sentence_lines, split_sentences

# What nltk's Punkt English model (rouge-score's split_summaries) gives for each text: each checked with nltk's own
# sent_tokenize and its punkt_tab English data (benchmarks/sentences_vs_punkt.py builds that data offline).
PUNKT = [
    ("Mr. Smith went to Washington. He arrived at 5 p.m. on Monday.",
     ["Mr. Smith went to Washington.", "He arrived at 5 p.m. on Monday."]),
    ("The U.S. economy grew. It was 2.5 percent.", ["The U.S. economy grew.", "It was 2.5 percent."]),
    ('"Where are you?" he asked. Nobody answered!', ['"Where are you?"', "he asked.", "Nobody answered!"]),
    ("It cost $3.50. Then it rose.", ["It cost $3.50.", "Then it rose."]),
    ("He moved to the U.S. He liked it.", ["He moved to the U.S.", "He liked it."]),
    ("J. K. Rowling wrote it. She is British.", ["J. K. Rowling wrote it.", "She is British."]),
    ("No. 5 is here. Fig. 3 shows it, e.g. in red.", ["No. 5 is here.", "Fig. 3 shows it, e.g. in red."]),
    # SummEval's model outputs: lower-cased and tokenized, a period standing alone between sentences
    ("paul merson was brought on with only seven minutes remaining in his team 's 0-0 draw with burnley . "
     "andros townsend scored the tottenham midfielder in the 89th minute .",
     ["paul merson was brought on with only seven minutes remaining in his team 's 0-0 draw with burnley .",
      "andros townsend scored the tottenham midfielder in the 89th minute ."]),
    # A number before a lower-case word ends no sentence (Punkt's ortho heuristic on ##number##); capitalised, it does.
    ("if the program is covered by section 10. if the program as you receive it is not, stop.",
     ["if the program is covered by section 10. if the program as you receive it is not, stop."]),
    ("he wrote more code during summer 2006. in february 2007 , fabian joined .",
     ["he wrote more code during summer 2006. in february 2007 , fabian joined ."]),
    ("the fee rose to 3.5. the board agreed .", ["the fee rose to 3.5. the board agreed ."]),
    ("He wrote more code in 2006. In February 2007 Fabian joined.",
     ["He wrote more code in 2006.", "In February 2007 Fabian joined."]),
    # A closing bracket after a space goes with the sentence before (Punkt's boundary realignment).
    ("you decide what ( if anything ! ) they choose to support . none of it is paid .",
     ["you decide what ( if anything ! )", "they choose to support .", "none of it is paid ."]),
    ("the width is exceeded . ) then the line breaks .", ["the width is exceeded . )", "then the line breaks ."]),
    ("one line.\nanother line. and more", ["one line.", "another line.", "and more"]),
    ("no end at all", ["no end at all"]),
]


@pytest.mark.parametrize("text, expected", PUNKT, ids=[t[:30] for t, _ in PUNKT])
def test_sentences_split_as_punkt_splits(text, expected):
    assert split_sentences(text) == expected


def test_only_whitespace_becomes_a_newline_so_rouge_tokens_are_unchanged():
    rng = random.Random(0)
    words = ["Mr.", "the", "cat", "sat.", "It", "was", "2.5", "p.m.", "U.S.", '"Why?"', "he", "said!", ".", "J.", ")",
             "''", "10.", "In"]
    for _ in range(300):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 30)))
        lines = sentence_lines(text)
        assert lines.replace("\n", " ") == " ".join(text.split())
        assert tokenize.tokenize(lines, None) == tokenize.tokenize(text, None)


CANDS = ["the cat sat on the mat . it was happy . then it slept", "Rain fell. The river rose. People left."]
REFS = ["a cat sat on a mat . the cat slept . it was happy", "The river rose after rain. Everyone left. It fell."]


@pytest.mark.parametrize("engine", ["rouge-score", "rouge-score-rs"])
def test_rougelsum_with_split_sentences_is_rouge_scores_own_on_the_split_texts(engine, monkeypatch):
    types = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    split = lexical.rouge(CANDS, REFS, MetricContext(task="x", options={"types": types, "engine": engine,
                                                                          "sentences": "split"}))
    plain = lexical.rouge(CANDS, REFS, MetricContext(task="x", options={"types": types, "engine": engine}))
    scorer = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    by_hand = [scorer.score(sentence_lines(r), sentence_lines(c))["rougeLsum"].fmeasure for c, r in zip(CANDS, REFS)]
    assert split.values["rougeLsum"] == pytest.approx(by_hand)
    # rouge-score's own split_summaries, its nltk splitter given these sentences: the same numbers
    import nltk

    monkeypatch.setattr(nltk, "sent_tokenize", split_sentences)
    punkt_way = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True, split_summaries=True)
    assert split.values["rougeLsum"] == pytest.approx([punkt_way.score(r, c)["rougeLsum"].fmeasure
                                                       for c, r in zip(CANDS, REFS)])
    # Without the split, one line is one sentence: rougeLsum is rougeL. The other types never move.
    assert plain.values["rougeLsum"] == pytest.approx(plain.values["rougeL"])
    assert split.values["rougeLsum"] != pytest.approx(plain.values["rougeLsum"])
    for t in ("rouge1", "rouge2", "rougeL"):
        assert split.values[t] == plain.values[t]
    # The signature says how the sentences were found; the other types' signatures are as before.
    assert split.settings["rougeLsum"].endswith(f"|sentences:{SIGNATURE}")
    assert plain.settings["rougeLsum"].endswith("|sentences:newline")
    assert split.settings["rouge1"] == plain.settings["rouge1"] and "sentences" not in split.settings["rouge1"]
