"""Lexical overlap: sentence BLEU and chrF (sacrebleu), ROUGE-1/2/L F-measure (rouge-score's definition).

The numbers are exactly those of sacrebleu's `sentence_bleu`/`sentence_chrf` and of
`rouge_score.rouge_scorer.RougeScorer.score(target, prediction)`; what differs is the work done to
get them. A text appears in two pairs (the student's output against the teacher and against the
reference), so each distinct text is preprocessed and its reference n-grams extracted once, and a
large batch is split by example over the machine's cores. ROUGE runs on `rouge-score-rs` (a Rust
build of rouge-score with identical scores, on all cores) when installed, else on rouge-score
with each distinct text tokenized and stemmed once.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Literal

from pydantic import Field, field_validator

from genval.metrics.registry import MetricContext, MetricResult, Options, register
from genval.numbers import SCORE_100, SHARE

PARALLEL_MIN_ROWS = 4000  # below this, starting worker processes costs more than it saves
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


# --- sacrebleu: BLEU and chrF -------------------------------------------------------------
class BleuOptions(Options):
    """sacrebleu's BLEU settings (`BLEU(tokenize, lowercase, smooth_method)`); None tokenizes with 13a."""

    tokenize: Literal["none", "zh", "13a", "intl", "char", "ja-mecab", "ko-mecab", "spm", "flores101",
                      "flores200", "spBLEU-1K"] | None = None
    lowercase: bool = False
    smooth_method: Literal["none", "floor", "add-k", "exp"] = "exp"


class ChrfOptions(Options):
    """sacrebleu's chrF settings (defaults: sacrebleu's CHRF.CHAR_ORDER, WORD_ORDER, BETA) and the engine."""

    char_order: int = Field(6, ge=1)
    word_order: int = Field(0, ge=0)
    beta: int = Field(2, ge=0)
    lowercase: bool = False
    engine: Literal["auto", "sacrebleu", "fastchrf"] = "auto"


def _sacrebleu_scorer(name: str, options: Options):
    """Gives the sacrebleu metric object `sentence_bleu`/`sentence_chrf` would build with these options."""
    from sacrebleu.metrics import BLEU, CHRF

    if name == "bleu":
        scorer = BLEU(effective_order=True, tokenize=options.tokenize, lowercase=options.lowercase,
                      smooth_method=options.smooth_method)
    else:
        scorer = CHRF(char_order=options.char_order, word_order=options.word_order, beta=options.beta,
                      lowercase=options.lowercase)
    scorer.num_refs = 1  # one reference per pair; sacrebleu records it in the signature
    return scorer


def _segment_stats(scorer, candidates: list[str], others: list[str]) -> list[list]:
    """Gives sacrebleu's per-segment statistics, extracting each distinct text's n-grams once.

    sacrebleu extracts a hypothesis's n-grams with the same function as a reference's
    (`extract_all_word_ngrams` for BLEU, char + word n-grams for chrF), so one extraction per
    distinct text serves both roles. The counts are sacrebleu's own (`BLEU._compute_segment_statistics`,
    `CHRF._get_match_statistics`: clipped matches Σ min(hyp, ref) and totals), taken over the
    intersection of the two n-gram sets and with each text's totals kept; they are integers,
    so the statistics and every score are identical.
    """
    bleu = hasattr(scorer, "max_ngram_order")
    info: dict[str, tuple] = {}

    def ngrams(text):
        found = info.get(text)
        if found is None:
            prepared = _preprocess(scorer, text)
            found = info[text] = (_bleu_entry(scorer, prepared) if bleu
                                  else _chrf_entry(scorer._extract_reference_info([prepared])))
        return found

    count = _bleu_stats if bleu else _chrf_stats
    return [count(scorer, ngrams(c), ngrams(o)) for c, o in zip(candidates, others)]


# sacrebleu's 13a tokenizer (tokenizers/tokenizer_re.py) first puts spaces around every character
# of one class — the space itself included — with a regex and a backreference template, which
# costs a Python call per character matched. A translate table does the same replacement in C;
# the other three rules (context-dependent) stay sacrebleu's own compiled regexes.
_13A_CLASS = [chr(c) for c in (*range(0x7B, 0x7F), *range(0x5B, 0x61), *range(0x20, 0x27), *range(0x28, 0x2C),
                               *range(0x3A, 0x41), 0x2F)]
_13A_TABLE = str.maketrans({ch: f" {ch} " for ch in _13A_CLASS})
_13A_PROBES = ("Hello, world! It's 3.14 -- 1,000 (approx.) & <b>\"quoted\"</b> 10-20 a/b {x} [y] ~z @ `q` ^ _ |",
               "end.  Mixed\nlines-\nand &quot;entities&amp;&lt;&gt; x.y,z 5. 6, ,7 .8 9-")


def _tokenize_13a(post, line: str) -> str:
    """Gives sacrebleu's `Tokenizer13a()(line)`, with its first regex rule done by a translate table."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} ".translate(_13A_TABLE)
    for pattern, repl in post._re[1:]:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


def _fast_13a(scorer):
    """Gives the fast 13a tokenizer when the scorer uses 13a and it agrees with sacrebleu's on the probes, else None."""
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    tokenizer = getattr(scorer, "tokenizer", None)
    if type(tokenizer) is not Tokenizer13a or len(tokenizer._post_tokenizer._re) != 4:
        return None
    post = tokenizer._post_tokenizer
    if any(_tokenize_13a(post, p) != tokenizer(p) for p in _13A_PROBES):
        return None  # another sacrebleu version changed the rules: use its own tokenizer
    return lambda line: _tokenize_13a(post, line)


def _preprocess(scorer, text: str) -> str:
    """Gives `scorer._preprocess_segment(text)`: BLEU's lowercasing and tokenizing, 13a done fast."""
    if not hasattr(scorer, "max_ngram_order"):
        return scorer._preprocess_segment(text)
    if not hasattr(scorer, "_genval_13a"):
        scorer._genval_13a = _fast_13a(scorer)
    if scorer._genval_13a is None:
        return scorer._preprocess_segment(text)
    if scorer.lowercase:
        text = text.lower()
    return scorer._genval_13a(text.rstrip())


def _bleu_entry(scorer, prepared: str) -> tuple:
    """Gives (n-gram counts per order, [length], n-gram total per order) of one tokenized text, for BLEU.

    The n-grams are the token tuples of sacrebleu's `extract_all_word_ngrams`, counted per order
    (zip over shifted token lists builds the same tuples, in C).
    """
    tokens = prepared.split()
    orders = [Counter(zip(*[tokens[i:] for i in range(n)])) for n in range(1, scorer.max_ngram_order + 1)]
    return orders, [len(tokens)], [max(len(tokens) - n + 1, 0) for n in range(1, scorer.max_ngram_order + 1)]


def _clipped_matches(h: dict, r: dict) -> int:
    """Gives Σ min(h[g], r[g]) over the n-grams both have: sacrebleu's clipped match count, looped in C."""
    common = h.keys() & r.keys()
    return sum(map(min, map(h.__getitem__, common), map(r.__getitem__, common)))


def _bleu_stats(scorer, hyp: tuple, ref: tuple) -> list[int]:
    hyp_orders, hyp_lens, total = hyp
    ref_orders, ref_lens, _ = ref
    correct = [_clipped_matches(h, r) for h, r in zip(hyp_orders, ref_orders)]
    return [hyp_lens[0], scorer._get_closest_ref_len(hyp_lens[0], ref_lens)] + correct + total[:]


def _chrf_entry(extracted: dict) -> tuple:
    """Gives (n-gram counts per order, total per order) of one text, for chrF."""
    orders = extracted["ref_ngrams"][0]
    return orders, [sum(c.values()) for c in orders]


def _chrf_stats(scorer, hyp: tuple, ref: tuple) -> list[int]:
    stats = []
    for h, h_total, r, r_total in zip(hyp[0], hyp[1], ref[0], ref[1]):
        # as CHRF._get_match_statistics: no hypothesis count where the reference has no n-gram of this order
        stats.extend((h_total if r else 0, r_total, _clipped_matches(h, r)))
    return stats


def _scored_stats(name: str, options: Options, candidates: list[str], others: list[str]) -> list[tuple[list, float]]:
    """Gives (statistics, sentence score) per row: the score as `sentence_score` computes it from them."""
    scorer = _sacrebleu_scorer(name, options)
    return [(s, scorer._aggregate_and_compute([s]).score) for s in _segment_stats(scorer, candidates, others)]


def _stats_job(args) -> list[tuple[list, float]]:
    return _scored_stats(*args)


def _example_chunks(ids: list[str] | None, n_rows: int, n_chunks: int) -> list[list[int]]:
    """Gives row indices split into chunks by example, so a worker sees every pair of its examples."""
    if ids is None:
        return [list(range(i, n_rows, n_chunks)) for i in range(n_chunks)]
    distinct = {example: k % n_chunks for k, example in enumerate(dict.fromkeys(ids))}
    chunks: list[list[int]] = [[] for _ in range(n_chunks)]
    for row, example in enumerate(ids):
        chunks[distinct[example]].append(row)
    return [c for c in chunks if c]


def workers() -> int:
    """Gives the number of processes a large batch is split over: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def all_stats(name: str, options: Options, candidates: list[str], others: list[str], ids=None) -> list[tuple[list, float]]:
    """Gives sacrebleu's statistics and sentence score for every row, on all cores when the batch is large."""
    n_proc = workers()
    if n_proc < 2 or len(candidates) < PARALLEL_MIN_ROWS:
        return _scored_stats(name, options, candidates, others)
    chunks = _example_chunks(ids, len(candidates), n_proc)
    jobs = [(name, options, [candidates[i] for i in c], [others[i] for i in c]) for c in chunks]
    out: list = [None] * len(candidates)
    import multiprocessing

    # fork: workers inherit the imported libraries instead of importing them again
    with ProcessPoolExecutor(len(jobs), mp_context=multiprocessing.get_context("fork")) as pool:
        for chunk, stats in zip(chunks, pool.map(_stats_job, jobs)):
            for row, s in zip(chunk, stats):
                out[row] = s
    return out


def _sacrebleu_metric(name: str, candidates, others, ctx: MetricContext) -> MetricResult:
    scorer = _sacrebleu_scorer(name, ctx.options)
    scored = all_stats(name, ctx.options, candidates, others, ctx.ids)
    stats = [s for s, _ in scored]
    values = [v for _, v in scored]
    signature = str(scorer.get_signature())
    summary = {}
    if name == "bleu":  # corpus BLEU per pair: sacrebleu's corpus_score over the same statistics
        corpus_scorer = _sacrebleu_scorer(name, ctx.options)
        corpus_scorer.effective_order = False  # corpus_bleu's default
        segments = ctx.segments or [("all", 0, len(stats))]
        summary = {"corpus": {pair: {"bleu": corpus_scorer._aggregate_and_compute(stats[a:b]).score,
                                     "signature": str(corpus_scorer.get_signature())}
                              for pair, a, b in segments if b > a}}
    return MetricResult({name: values}, {name: signature}, summary=summary)


@register("bleu", options=BleuOptions, numbers={"bleu": SCORE_100})
def bleu(candidates: list[str], others: list[str], ctx: MetricContext) -> MetricResult:
    """Gives sentence BLEU (0–100) per pair as sacrebleu's `sentence_bleu` does, and corpus BLEU per pair."""
    return _sacrebleu_metric("bleu", candidates, others, ctx)


@register("chrf", options=ChrfOptions, numbers={"chrf": SCORE_100})
def chrf(candidates: list[str], others: list[str], ctx: MetricContext) -> MetricResult:
    """Gives sentence chrF (0–100) per pair, as sacrebleu's `sentence_chrf` computes it.

    With `fastchrf` installed (a Rust chrF whose sentence scores equal sacrebleu's with
    eps_smoothing off, sacrebleu's default) and no word n-grams, the scores come from it,
    each example's texts extracted once; the signature stays sacrebleu's, since the number does.
    """
    engine = chrf_engine(ctx.options)
    if engine == "sacrebleu":
        result = _sacrebleu_metric("chrf", candidates, others, ctx)
    else:
        scorer = _sacrebleu_scorer("chrf", ctx.options)
        values = _chrf_fast(candidates, others, ctx.ids, scorer)
        result = MetricResult({"chrf": values}, {"chrf": str(scorer.get_signature())})
    result.summary["engine"] = {"chrf": engine}
    return result


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
    """rouge-score's settings: the ROUGE types, Porter stemming, and the engine."""

    types: list[str] = Field(default_factory=lambda: list(ROUGE_TYPES), min_length=1)
    stemmer: bool = True
    engine: Literal["auto", "rouge-score", "rouge-score-rs"] = "auto"

    @field_validator("types")
    @classmethod
    def _known(cls, value):
        for t in value:
            if t not in ("rougeL", "rougeLsum") and not (t.startswith("rouge") and t[5:].isdigit() and t[5:] != "0"):
                raise ValueError(f"unknown ROUGE type '{t}' (use rouge1…rouge9, rougeL, rougeLsum)")
        return value


@register("rouge", options=RougeOptions, numbers={"rouge*": SHARE})
def rouge(candidates: list[str], others: list[str], ctx: MetricContext) -> MetricResult:
    """Gives ROUGE F-measures per pair, as rouge-score's `RougeScorer.score(target, prediction)` does.

    A pair where either text is mostly in a script other than Latin gets NaN and a detail
    instead of rouge-score's silent 0, and a note in metrics.json counts them.
    """
    types = list(ctx.options.types)
    stem = ctx.options.stemmer
    engine = rouge_engine(ctx.options.engine)
    if engine == "rouge-score" and "rougeLsum" in types:
        engine = "rouge-score-rs"  # the memoised path covers n-grams and rougeL only
    foreign = {text: other_script(text) for text in set(candidates) | set(others)}
    scores = rouge_scores(types, stem, candidates, others, engine)
    columns = {t: [] for t in types}
    details = []
    for cand, other, row in zip(candidates, others, scores):
        bad = foreign[cand] or foreign[other]
        details.append("text mostly outside a-z: rouge-score keeps only [a-z0-9] and would give 0" if bad else None)
        for t in types:
            columns[t].append(float("nan") if bad else row[t].fmeasure)
    sig = f"rouge-score|fmeasure|stemmer:{'yes' if stem else 'no'}|tokenizer:default[a-z0-9]"
    n_bad = sum(d is not None for d in details)
    notes = [f"rouge: {n_bad} of {len(details)} pairs have text mostly outside a-z; their ROUGE is NaN, not 0 "
             "(rouge-score keeps only [a-z0-9])"] if n_bad else []
    return MetricResult(columns, {t: f"{t}|{sig}" for t in types}, details={t: details for t in types},
                        summary={"engine": {"rouge": engine}}, notes=notes)
