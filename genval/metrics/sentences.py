"""Sentence splitting for ROUGE-Lsum: a small rule-based splitter that ships with genval (no data to download).

rouge-score's `rougeLsum` scores the union LCS over sentences, which it finds at newlines; with
`split_summaries=True` it asks nltk's Punkt model (`nltk.sent_tokenize`), whose data is a
separate download. Summaries usually hold several sentences on one line, so at newlines they are
one sentence and ROUGE-Lsum is ROUGE-L. These rules follow what Punkt's English model does on
such text (Kiss & Strunk 2006; nltk.tokenize.punkt):

- a sentence ends at a token that ends in `.`, `?` or `!` (closing quotes and brackets after it
  stay with it) and is followed by whitespace: also in lower-cased, tokenized text such as
  SummEval's ("… with burnley . andros townsend …"), as Punkt does;
- not after an abbreviation (`Mr.`, `Dr.`, `e.g.`, `U.S.`, `p.m.`, month names, …) or a single
  letter's initial (`J. Smith`), unless an abbreviation is followed by a capitalised word that
  commonly starts a sentence (`… in the U.S. He …`), Punkt's orthographic heuristic;
- not after a number (`section 10. if …`, `in 2006. in …`) followed by a lower-case word: Punkt's
  orthographic heuristic on its `##number##` type (a lower-case word is no sentence start there);
- not inside a number (`2.5`) or before a closing quote, and never where there is no whitespace;
- closing quotes and brackets that open the next sentence, followed by whitespace (`… anything ! )
  they …`), belong to the sentence before, as Punkt's boundary realignment moves them.

Checked against nltk's Punkt itself (its English punkt_tab model) by benchmarks/sentences_vs_punkt.py
(benchmarks/RESULTS.md, "Sentence splitting").

Only the whitespace at a boundary becomes a newline, so every token (and so ROUGE-1, -2 and -L)
is unchanged; `SIGNATURE` names these rules in a metric's signature.
"""

from __future__ import annotations

import re

SIGNATURE = "genval-rules-2"   # -1 split after a number before a lower-case word

# Punkt's English model's most frequent abbreviation types (nltk punkt_tab english/abbrev_types.txt),
# the ones that occur in news and reviews; lower case, without the final period.
ABBREVIATIONS = frozenset("""
mr mrs ms dr prof sr jr st mt ft rev gen col lt capt sgt maj cmdr adm gov sen rep pres supt insp det
vs etc e.g i.e cf al approx dept est fig figs no nos vol vols pp ed eds inc ltd co corp bros assn
u.s u.k u.n u.s.a e.u a.m p.m jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur
thurs fri sat sun calif fla ill mass mich minn penn tenn tex va wash conn ariz colo ga ky la md mo nev okla ore wis
""".split())
# Words that commonly open a sentence: after an abbreviation, one of these capitalised ends the sentence.
STARTERS = frozenset("""
the he she it they we i you a an but and in on at this that there these those his her its their our
however meanwhile then so if when while after before since as for what who why how
""".split())

_BOUNDARY = re.compile(r"(?<=[.?!])([\"'”’)\]]*)(\s+)")
_REALIGNED = re.compile(r"[\"'”’)\]}]+(?:\s+|$)")   # nltk punkt's _re_boundary_realignment


def _token_before(text: str, end: int) -> str:
    """Gives the whitespace-delimited token that ends at `end` (its closing quotes and brackets stripped)."""
    start = text.rfind(" ", 0, end) + 1
    start = max(start, text.rfind("\n", 0, end) + 1, text.rfind("\t", 0, end) + 1)
    return text[start:end].lstrip("\"'“‘([")


def _ends_sentence(token: str, following: str) -> bool:
    """Says whether `token` (ending in . ? or !) ends its sentence, given the word that follows it."""
    if token.endswith(("?", "!")) or token == ".":
        return True
    word = token[:-1].lower()
    if word.endswith("."):  # an ellipsis or a doubled period
        return following[:1].isupper()
    next_word = re.sub(r"[^\w]", "", following.split(" ", 1)[0]).lower()
    capital_starter = following[:1].isupper() and next_word in STARTERS
    if word in ABBREVIATIONS or re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):  # Mr. / U.S. / e.g.
        return capital_starter
    if re.fullmatch(r"[a-z]", word):  # an initial: J. Smith
        return capital_starter
    if re.fullmatch(r"\d+(?:[.,:/-]\d+)*", word):  # a number: Punkt's ortho heuristic on ##number##
        return not following[:1].islower()
    return True


def split_sentences(text: str) -> list[str]:
    """Gives the sentences of `text`, in order, by the rules above (each line of the text split further)."""
    out = []
    for line in text.split("\n"):
        start = 0
        for match in _BOUNDARY.finditer(line):
            end = match.start(2)
            following = line[match.end():]
            if not following:
                continue
            if _ends_sentence(_token_before(line, match.start()), following):
                closing = _REALIGNED.match(following)
                if closing:   # `! ) they`: the bracket closes this sentence
                    end = match.end() + len(closing.group().rstrip())
                out.append(line[start:end])
                start = match.end() + (closing.end() if closing else 0)
        out.append(line[start:])
    return [s for s in (x.strip() for x in out) if s]


def sentence_lines(text: str) -> str:
    """Gives `text` with one sentence per line: what rouge-score's `rougeLsum` reads."""
    return "\n".join(split_sentences(text))
