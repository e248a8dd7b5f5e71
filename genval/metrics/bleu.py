"""BLEU: sentence BLEU per pair, exactly sacrebleu's, with its statistics counted for a whole batch at once.

sacrebleu computes a segment's statistics — hypothesis and reference length, and per n-gram
order the clipped matches Σ_g min(hyp(g), ref(g)) and the hypothesis n-gram total — with a
Counter of token tuples per text (`BLEU._extract_corpus_statistics`). Here the same integers
come from numpy: a batch's texts are tokenized together, every n-gram gets an exact integer id
(an (n−1)-gram id and the next token's id, ranked), each order's counts form a sparse
text × n-gram matrix, and a pair's clipped matches are (|h| + |r| − ‖h − r‖₁) / 2, since
min(a, b) = (a + b − |a − b|) / 2. The sentence score is sacrebleu's own
`_compute_score_from_stats` over those statistics; the statistics are the row's sufficient
statistics in the scores table, and corpus BLEU per pair is sacrebleu's score of their sum
(`corpus_bleu`'s `_aggregate_and_compute`), over any split of the rows into batches.

Several references per segment are sacrebleu's multi-reference statistics
(`BLEU._extract_reference_info`, `_compute_segment_statistics`): each n-gram's reference count
is its largest count in any reference (an element-wise maximum of the references' count rows),
and the reference length is the one closest to the hypothesis length, the shorter on a tie
(`_get_closest_ref_len`). The signature's `nrefs` says how many (`var` when they vary).
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np

from genval.metrics.registry import Corpus, MetricContext, MetricResult, Options, Other, reference_lists, register
from genval.numbers import SCORE_100

# Stands between two texts when a batch is tokenized as one string: no tokenizer rule touches it
# (13a's rules look at digits, '.', ',' and '-'), and str.split() keeps it as a token of its own.
SEP = "\x00"


class BleuOptions(Options):
    """sacrebleu's BLEU settings (`BLEU(tokenize, lowercase, smooth_method)`); None tokenizes with 13a."""

    tokenize: Literal["none", "zh", "13a", "intl", "char", "ja-mecab", "ko-mecab", "spm", "flores101",
                      "flores200", "spBLEU-1K"] | None = None
    lowercase: bool = False
    smooth_method: Literal["none", "floor", "add-k", "exp"] = "exp"


def bleu_scorer(options: BleuOptions, effective_order: bool = True):
    """Gives the sacrebleu BLEU `sentence_bleu` builds with these options (`corpus_bleu`'s with effective_order off)."""
    from sacrebleu.metrics import BLEU

    scorer = BLEU(effective_order=effective_order, tokenize=options.tokenize, lowercase=options.lowercase,
                  smooth_method=options.smooth_method)
    scorer.num_refs = 1  # one reference per pair; sacrebleu records it in the signature
    return scorer


def sacrebleu_signatures(scorer, others: list[Other]) -> tuple[str, list[str]]:
    """Gives a sacrebleu scorer's signature for one reference, and each row's (`nrefs` its number of references)."""
    found: dict[int, str] = {}
    for k in {len(g) for g in reference_lists(others)} | {1}:
        scorer.num_refs = k
        found[k] = str(scorer.get_signature())
    scorer.num_refs = 1
    return found[1], [found[len(g)] for g in reference_lists(others)]


# sacrebleu's 13a tokenizer (tokenizers/tokenizer_re.py) first puts spaces around every character
# of one class — the space itself included — with a regex and a backreference template, which
# costs a Python call per character matched. One str.replace per character of the class that
# occurs does the same in C (spaces first, so the spaces the others add are not padded again);
# the other three rules (context-dependent) stay sacrebleu's own compiled regexes.
_13A_CLASS = [chr(c) for c in (*range(0x7B, 0x7F), *range(0x5B, 0x61), *range(0x21, 0x27), *range(0x28, 0x2C),
                               *range(0x3A, 0x41), 0x2F)]  # and the space (0x20), done first


def _pad_13a(line: str) -> str:
    """Gives `line` with a space either side of every character of 13a's first rule."""
    line = line.replace(" ", "   ")
    present = set(line)
    for ch in _13A_CLASS:
        if ch in present:
            line = line.replace(ch, f" {ch} ")
    return line
_13A_PROBES = ("Hello, world! It's 3.14 -- 1,000 (approx.) & <b>\"quoted\"</b> 10-20 a/b {x} [y] ~z @ `q` ^ _ |",
               "end.  Mixed\nlines-\nand &quot;entities&amp;&lt;&gt; x.y,z 5. 6, ,7 .8 9-")


def _tokenize_13a(post, line: str) -> str:
    """Gives sacrebleu's `Tokenizer13a()(line)`, with its first regex rule done by a translate table.

    `line` may hold many texts joined by ` SEP `: every rule looks only at a character and its
    neighbours, and the spaces around SEP are what each text's own padding would have been.
    """
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = _pad_13a(f" {line} ")
    for pattern, repl in post._re[1:]:
        line = pattern.sub(repl, line)
    return line


def _fast_13a(scorer):
    """Gives the post-tokenizer when the scorer uses 13a and the fast rules agree with sacrebleu's on the probes."""
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    tokenizer = getattr(scorer, "tokenizer", None)
    if type(tokenizer) is not Tokenizer13a or len(tokenizer._post_tokenizer._re) != 4:
        return None
    post = tokenizer._post_tokenizer
    if any(" ".join(_tokenize_13a(post, p).split()) != tokenizer(p) for p in _13A_PROBES):
        return None  # another sacrebleu version changed the rules: use its own tokenizer
    return post


def tokens(scorer, texts: list[str]) -> list[str | None]:
    """Gives the tokens of all `texts` as sacrebleu's BLEU reads them (`_preprocess_segment(t).split()`), None between texts."""
    lines = [(t.lower() if scorer.lowercase else t).rstrip() for t in texts]
    post = _fast_13a(scorer)
    if post is not None and not any(SEP in line for line in lines):
        return [None if w == SEP else w for w in _tokenize_13a(post, f" {SEP} ".join(lines)).split()]
    out: list[str | None] = []
    for i, text in enumerate(texts):
        if i:
            out.append(None)
        out.extend(scorer._preprocess_segment(text).split())
    return out


def ngram_counts(words: list[str | None], max_order: int):
    """Gives, per order 1…max_order, the sparse text × n-gram count matrix of token lists separated by None.

    Each n-gram's id is exact: the rank of (its (n−1)-gram's id, its last token's id), so two
    n-grams share an id exactly when their tokens are equal.
    """
    import pandas as pd
    from scipy.sparse import csr_matrix

    codes, uniques = pd.factorize(np.asarray(words, dtype=object))  # None (between texts) gets code -1
    codes = codes.astype(np.int64)
    is_sep = codes < 0
    text_of = np.cumsum(is_sep)
    n_texts = int(text_of[-1]) + 1 if len(codes) else 0
    vocab = max(len(uniques), 1)
    matrices = []
    ids, valid = codes, ~is_sep
    for n in range(1, max_order + 1):
        if n > 1:
            valid = valid[:-1] & ~is_sep[n - 1:]
            key = np.where(valid, ids[:-1] * vocab + codes[n - 1:], -1)
            ids = pd.factorize(key)[0].astype(np.int64)
        rows, cols = text_of[:len(ids)][valid], ids[valid]
        matrix = csr_matrix((np.ones(len(rows), dtype=np.int64), (rows, cols)),
                            shape=(n_texts, int(ids.max()) + 1 if len(ids) else 1))
        matrix.sum_duplicates()
        matrices.append(matrix)
    return matrices


def statistics(scorer, candidates: list[str], others: list[Other]) -> np.ndarray:
    """Gives sacrebleu's segment statistics per pair: [hyp len, ref len, matches per order…, hyp n-grams per order…].

    Each distinct text is tokenized and counted once, whichever side of whichever pair it is on.
    A row whose other side is a tuple of references gets sacrebleu's multi-reference statistics.
    """
    order = scorer.max_ngram_order
    out = np.zeros((len(candidates), 2 + 2 * order), dtype=np.int64)
    if not len(candidates):
        return out
    groups = reference_lists(others)
    distinct = list(dict.fromkeys([*candidates, *(r for g in groups for r in g)]))
    index = {text: i for i, text in enumerate(distinct)}
    hyp = np.fromiter((index[c] for c in candidates), dtype=np.int64, count=len(candidates))
    # one column per reference; a row with fewer repeats its first (a maximum and a closest length ignore repeats)
    width = max(len(g) for g in groups)
    refs = np.array([[index[g[j]] if j < len(g) else index[g[0]] for j in range(width)] for g in groups],
                    dtype=np.int64)
    matrices = ngram_counts(tokens(scorer, distinct), order)
    unigrams = np.asarray(matrices[0].sum(axis=1)).ravel()
    lengths = np.zeros(len(distinct), dtype=np.int64)
    lengths[:len(unigrams)] = unigrams
    out[:, 0], out[:, 1] = lengths[hyp], closest_length(lengths[hyp], lengths[refs])
    for n, matrix in enumerate(matrices, start=1):
        totals = np.zeros(len(distinct), dtype=np.int64)
        counted = np.asarray(matrix.sum(axis=1)).ravel()
        totals[:len(counted)] = counted
        if matrix.shape[0] < len(distinct):  # trailing empty texts have no row: pad the matrix
            matrix.resize((len(distinct), matrix.shape[1]))
        ref = matrix[refs[:, 0]]
        for j in range(1, width):
            ref = ref.maximum(matrix[refs[:, j]])
        ref_totals = np.asarray(ref.sum(axis=1)).ravel()
        l1 = np.asarray(abs(matrix[hyp] - ref).sum(axis=1)).ravel()
        out[:, 1 + n] = (totals[hyp] + ref_totals - l1) // 2
        out[:, 1 + order + n] = totals[hyp]
    return out


def closest_length(hyp_lengths: np.ndarray, ref_lengths: np.ndarray) -> np.ndarray:
    """Gives per row the reference length closest to the hypothesis length, the shorter on a tie.

    sacrebleu's `BLEU._get_closest_ref_len`; `ref_lengths` has one column per reference.
    """
    diff = np.abs(ref_lengths - hyp_lengths[:, None])
    key = diff * (int(ref_lengths.max(initial=0)) + 1) + ref_lengths  # smallest difference, then shortest
    return ref_lengths[np.arange(len(ref_lengths)), np.argmin(key, axis=1)]


def sentence_scores(scorer, stats: np.ndarray) -> list[float]:
    """Gives sacrebleu's sentence BLEU of each row of statistics (its own `_compute_score_from_stats`)."""
    return [scorer._compute_score_from_stats([int(v) for v in row]).score for row in stats]


def _signature_settings(signature: str) -> dict[str, str]:
    return dict(part.split(":", 1) for part in signature.split("|") if ":" in part)


def _partial(column: str, rows) -> tuple[np.ndarray, str]:
    signatures = rows["signature"].unique()
    state = np.sum(np.stack(rows["stats"].to_numpy()), axis=0), signatures[0]
    return _merge(state, (0, signatures[-1]))


def _merge(a: tuple, b: tuple) -> tuple:
    """Adds two partials; rows with different numbers of references make `nrefs:var`, as sacrebleu's signature does."""
    signature = a[1]
    if a[1] != b[1]:
        signature = re.sub(r"nrefs:[^|]+", "nrefs:var", a[1])
    return a[0] + b[0], signature


def _finish(state: tuple) -> dict:
    """Gives corpus BLEU from summed statistics: `corpus_bleu`'s number and signature (effective order off)."""
    from sacrebleu.metrics import BLEU

    total, signature = state
    # the signature names the smoothing (`smooth:floor[0.10]`); BleuOptions takes no value, so it is the default
    method = _signature_settings(signature).get("smooth", "exp").split("[")[0]
    order = (len(total) - 2) // 2
    score = BLEU.compute_bleu(correct=[int(v) for v in total[2:2 + order]], total=[int(v) for v in total[2 + order:]],
                              sys_len=int(total[0]), ref_len=int(total[1]), smooth_method=method,
                              effective_order=False, max_ngram_order=order).score
    return {"bleu": score, "signature": signature.replace("|eff:yes|", "|eff:no|")}


@register("bleu", options=BleuOptions, numbers={"bleu": SCORE_100}, references=True,
          corpus=Corpus(columns=("bleu",), partial=_partial, merge=_merge, finish=_finish))
def bleu(candidates: list[str], others: list[Other], ctx: MetricContext) -> MetricResult:
    """Gives sentence BLEU (0–100) per pair as sacrebleu's `sentence_bleu` does, with its statistics for corpus BLEU."""
    scorer = bleu_scorer(ctx.options)
    stats = statistics(scorer, candidates, others)
    one, per_row = sacrebleu_signatures(scorer, others)
    return MetricResult({"bleu": sentence_scores(scorer, stats)}, {"bleu": one},
                        stats={"bleu": list(stats.astype(np.float64))}, row_settings={"bleu": per_row})
