"""Lexical overlap: sentence chrF (sacrebleu) and ROUGE-1/2/L F-measure (rouge-score's definition); BLEU is in bleu.py.

The numbers are exactly those of sacrebleu's `sentence_chrf` and of
`rouge_score.rouge_scorer.RougeScorer.score(target, prediction)`; what differs is the work done to
get them. A text appears in two pairs (the student's output against the teacher and against the
reference), so each distinct text is preprocessed and its n-grams extracted once. chrF runs on
`fastchrf` (Rust) where it computes the same number; ROUGE on `rouge-score-rs` (a Rust build of
rouge-score with identical scores) when installed, else on rouge-score with each distinct text
tokenized and stemmed once. The score stage spreads batches over the machine's cores.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from genval.metrics.bleu import sacrebleu_signatures
from genval.metrics.registry import (
    MetricContext,
    MetricResult,
    Options,
    Other,
    reduce_rows,
    register,
    spread,
    with_references,
)
from genval.metrics.sentences import SIGNATURE as SENTENCES
from genval.metrics.sentences import sentence_lines
from genval.numbers import SCORE_100, SHARE

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


# --- sacrebleu: chrF ----------------------------------------------------------------------
class ChrfOptions(Options):
    """sacrebleu's chrF settings (defaults: sacrebleu's CHRF.CHAR_ORDER, WORD_ORDER, BETA) and the engine."""

    char_order: int = Field(6, ge=1)
    word_order: int = Field(0, ge=0)
    beta: int = Field(2, ge=0)
    lowercase: bool = False
    engine: Literal["auto", "sacrebleu", "fastchrf"] = "auto"


def chrf_scorer(options: ChrfOptions):
    """Gives the sacrebleu CHRF `sentence_chrf` would build with these options."""
    from sacrebleu.metrics import CHRF

    scorer = CHRF(char_order=options.char_order, word_order=options.word_order, beta=options.beta,
                  lowercase=options.lowercase)
    scorer.num_refs = 1  # one reference per pair; sacrebleu records it in the signature
    return scorer


def _clipped_matches(h: dict, r: dict) -> int:
    """Gives Σ min(h[g], r[g]) over the n-grams both have: sacrebleu's clipped match count, looped in C."""
    common = h.keys() & r.keys()
    return sum(map(min, map(h.__getitem__, common), map(r.__getitem__, common)))


def _chrf_sacrebleu(scorer, candidates: list[str], others: list[str]) -> list[float]:
    """Gives sacrebleu's sentence chrF per pair, each distinct text's n-grams extracted once.

    sacrebleu extracts a hypothesis's n-grams with the same function as a reference's (char +
    word n-grams), so one extraction per distinct text serves both sides. The counts are
    `CHRF._get_match_statistics`' own (clipped matches Σ min(hyp, ref) and totals); they are
    integers, so the statistics and every score are identical.
    """
    info: dict[str, tuple] = {}

    def ngrams(text):
        found = info.get(text)
        if found is None:
            orders = scorer._extract_reference_info([scorer._preprocess_segment(text)])["ref_ngrams"][0]
            found = info[text] = (orders, [sum(c.values()) for c in orders])
        return found

    out = []
    for cand, other in zip(candidates, others):
        (hyp, hyp_totals), (ref, ref_totals) = ngrams(cand), ngrams(other)
        stats = []
        for h, h_total, r, r_total in zip(hyp, hyp_totals, ref, ref_totals):
            # as CHRF._get_match_statistics: no hypothesis count where the reference has no n-gram of this order
            stats.extend((h_total if r else 0, r_total, _clipped_matches(h, r)))
        out.append(scorer._compute_score_from_stats(stats).score)
    return out


@register("chrf", options=ChrfOptions, numbers={"chrf": SCORE_100}, references=True)
def chrf(candidates: list[str], others: list[Other], ctx: MetricContext) -> MetricResult:
    """Gives sentence chrF (0–100) per pair, as sacrebleu's `sentence_chrf` computes it.

    With `fastchrf` installed (a Rust chrF whose sentence scores equal sacrebleu's with
    eps_smoothing off, sacrebleu's default) and no word n-grams, the scores come from it,
    each example's texts extracted once; the signature stays sacrebleu's, since the number does.
    With several references, sacrebleu keeps the statistics of the reference with the best
    F-score (`CHRF._compute_segment_statistics`), so the sentence score is the largest of the
    single-reference scores.
    """
    engine = chrf_engine(ctx.options)
    scorer = chrf_scorer(ctx.options)
    cands, refs, owner = spread(candidates, others)
    ids = [ctx.ids[i] for i in owner] if ctx.ids is not None else None
    if engine == "sacrebleu":
        values = _chrf_sacrebleu(scorer, cands, refs)
    else:
        values = _chrf_fast(cands, refs, ids, scorer)
    if len(cands) != len(candidates):
        values = reduce_rows(values, owner, len(candidates), "max")
    one, per_row = sacrebleu_signatures(scorer, others)
    return MetricResult({"chrf": values}, {"chrf": one}, summary={"engine": {"chrf": engine}},
                        row_settings={"chrf": per_row})


def chrf_engine(options: ChrfOptions) -> str:
    """Gives 'fastchrf' when installed and the settings are ones it computes exactly (no word n-grams), else 'sacrebleu'."""
    requested = options.engine
    if requested == "sacrebleu" or options.word_order > 0:
        return "sacrebleu"
    try:
        import fastchrf  # noqa: F401
    except ImportError:
        if requested == "fastchrf":
            from genval.errors import GenvalError

            raise GenvalError("metrics.chrf.engine: fastchrf is not installed (pip install fastchrf)") from None
        return "sacrebleu"
    return "fastchrf"


def _chrf_fast(candidates: list[str], others: list[str], ids, scorer) -> list[float]:
    """Gives chrF per row from `fastchrf.pairwise_chrf`, one matrix per example so each text is read once.

    The text reaches it as sacrebleu's chrF reads it: lowercased when asked, whitespace removed
    with Python's `str.split` (CHRF with whitespace off), so both see the same characters.
    """
    import fastchrf

    def prepare(text):
        return "".join(scorer._preprocess_segment(text).split())

    groups: dict = {}
    for row, (cand, other) in enumerate(zip(candidates, others)):
        hyps, refs, rows = groups.setdefault(ids[row] if ids is not None else row, ({}, {}, []))
        rows.append((row, hyps.setdefault(cand, len(hyps)), refs.setdefault(other, len(refs))))
    order = list(groups.values())
    matrices = fastchrf.pairwise_chrf([[prepare(h) for h in g[0]] for g in order], [[prepare(r) for r in g[1]] for g in order],
                                      char_order=scorer.char_order, beta=float(scorer.beta), remove_whitespace=False,
                                      eps_smoothing=False)
    out: list[float] = [0.0] * len(candidates)
    for (_, _, rows), matrix in zip(order, matrices):
        for row, h, r in rows:
            out[row] = matrix[h][r]
    return out


# --- ROUGE --------------------------------------------------------------------------------
def rouge_engine(requested: str | None = None) -> str:
    """Gives the ROUGE implementation to use: 'rouge-score-rs' when installed (or asked), else 'rouge-score'."""
    if requested not in (None, "auto", "rouge-score", "rouge-score-rs"):
        from genval.errors import GenvalError

        raise GenvalError(f"metrics.rouge.engine: '{requested}' is not one of auto, rouge-score, rouge-score-rs")
    if requested == "rouge-score":
        return requested
    try:
        import rouge_score_rs  # noqa: F401
    except ImportError:
        if requested == "rouge-score-rs":
            from genval.errors import GenvalError

            raise GenvalError("metrics.rouge.engine: rouge-score-rs is not installed (pip install rouge-score-rs)") from None
        return "rouge-score"
    return "rouge-score-rs"


def other_script(text: str) -> bool:
    """Gives True when most letters of `text` lie outside a–z, which rouge-score's tokenizer drops.

    rouge-score lowercases and keeps only [a-z0-9] (rouge_score/tokenize.py), so Chinese, Cyrillic
    or Arabic text loses its words and scores 0 whatever its quality.
    """
    if text.isascii():  # every ASCII letter is in a–z once lowercased
        return False
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return False
    foreign = sum(1 for ch in letters if not ("a" <= ch.lower() <= "z"))
    return foreign * 2 > len(letters)


def _rouge_python(types: list[str], stem: bool, candidates, others) -> list[dict]:
    """Gives rouge-score's scores per pair, tokenizing and stemming each distinct text once."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(types, use_stemmer=stem)
    summary_level = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=stem)  # its own newline split (texts may be pre-split)
    tokens: dict[str, list[str]] = {}

    def tok(text):
        found = tokens.get(text)
        if found is None:
            found = tokens[text] = scorer._tokenizer.tokenize(text)
        return found

    out = []
    for cand, other in zip(candidates, others):
        target, prediction = tok(other), tok(cand)
        row = {}
        for t in types:
            if t == "rougeL":
                row[t] = rouge_scorer._score_lcs(target, prediction)
            elif t == "rougeLsum":
                row[t] = summary_level.score(other, cand)[t]
            else:
                n = int(t[5:])
                row[t] = rouge_scorer._score_ngrams(rouge_scorer._create_ngrams(target, n),
                                                    rouge_scorer._create_ngrams(prediction, n))
        out.append(row)
    return out


def rouge_scores(types: list[str], stem: bool, candidates, others, engine: str) -> list[dict]:
    """Gives per pair {rouge type: Score}, as `RougeScorer(types, use_stemmer=stem).score(other, candidate)`."""
    if engine == "rouge-score-rs":
        from rouge_score_rs import RougeScorer

        return RougeScorer(types, use_stemmer=stem).score_batch(list(others), list(candidates))
    return _rouge_python(types, stem, candidates, others)


class RougeOptions(Options):
    """rouge-score's settings: the ROUGE types, Porter stemming, the engine, and the reduction over references.

    `reduce: max` is rouge-score's `score_multi` (the reference with the best F-measure);
    `reduce: mean` the mean F-measure over the references, as SummEval's meta-evaluations
    (BARTScore's and G-Eval's scripts) compute it.
    """

    types: list[str] = Field(default_factory=lambda: list(ROUGE_TYPES), min_length=1)
    stemmer: bool = True
    engine: Literal["auto", "rouge-score", "rouge-score-rs"] = "auto"
    reduce: Literal["max", "mean"] = "max"
    # rougeLsum's sentences: at newlines (rouge-score's default), or `split` by genval's rule-based
    # splitter (genval.metrics.sentences), what rouge-score's split_summaries asks nltk's Punkt for
    sentences: Literal["newline", "split"] = "newline"

    @field_validator("types")
    @classmethod
    def _known(cls, value):
        # rouge-score's n-gram types are rouge1…rouge9 (its scorer reads one digit; rouge0 and rouge10 are
        # not ROUGE-N it defines, and the Rust engine rejects them)
        for t in value:
            if not re.fullmatch(r"rouge[1-9]|rougeL|rougeLsum", t):
                raise ValueError(f"unknown ROUGE type '{t}' (use rouge1…rouge9, rougeL, rougeLsum)")
        return value


@register("rouge", options=RougeOptions, numbers={"rouge*": SHARE}, references=True)
def rouge(candidates: list[str], others: list[Other], ctx: MetricContext) -> MetricResult:
    """Gives ROUGE F-measures per pair, as rouge-score's `RougeScorer.score(target, prediction)` does.

    Against several references: the largest F-measure (`score_multi`) or their mean (`reduce`).
    A pair where either text is mostly in a script other than Latin gets NaN and a detail
    instead of rouge-score's silent 0, and a note in metrics.json counts them; a reference in
    another script is left out of its row's reduction.
    """
    types = list(ctx.options.types)
    stem = ctx.options.stemmer
    engine = rouge_engine(ctx.options.engine)
    cands, refs, owner = spread(candidates, others)
    foreign = {text: other_script(text) for text in set(cands) | set(refs)}
    if ctx.options.sentences == "split" and "rougeLsum" in types:
        # one sentence per line: only whitespace becomes a newline, so the other types' tokens are unchanged
        lines = {text: sentence_lines(text) for text in set(cands) | set(refs)}
        scores = rouge_scores(types, stem, [lines[c] for c in cands], [lines[r] for r in refs], engine)
    else:
        scores = rouge_scores(types, stem, cands, refs, engine)
    columns = {t: [] for t in types}
    scorable = set()
    for i, cand, other, row in zip(owner, cands, refs, scores):
        bad = foreign[cand] or foreign[other]
        if not bad:
            scorable.add(i)
        for t in types:
            columns[t].append(float("nan") if bad else row[t].fmeasure)
    if len(cands) != len(candidates):
        columns = {t: reduce_rows(v, owner, len(candidates), ctx.options.reduce) for t, v in columns.items()}
    details = ["text mostly outside a-z: rouge-score keeps only [a-z0-9] and would give 0" if i not in scorable
               else None for i in range(len(candidates))]
    sig = f"rouge-score|fmeasure|stemmer:{'yes' if stem else 'no'}|tokenizer:default[a-z0-9]"
    split = "newline" if ctx.options.sentences == "newline" else SENTENCES
    names = {t: f"{t}|{sig}" + (f"|sentences:{split}" if t == "rougeLsum" else "") for t in types}
    counts = {"rouge: {} of {} pairs have text mostly outside a-z; their ROUGE is NaN, not 0 "
              "(rouge-score keeps only [a-z0-9])": [len(candidates) - len(scorable), len(candidates)]}
    return MetricResult(columns, names, details={t: details for t in types},
                        summary={"engine": {"rouge": engine}}, counts=counts,
                        row_settings={t: with_references(names[t], others, ctx.options.reduce) for t in types})
