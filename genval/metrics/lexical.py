"""Lexical overlap: sentence BLEU and chrF (sacrebleu), ROUGE-1/2/L F-measure (rouge-score's definition)."""

from __future__ import annotations

from genval.metrics.registry import MetricContext, MetricResult, register


@register("bleu", options=("tokenize", "lowercase"))
def bleu(candidates: list[str], others: list[str], ctx: MetricContext) -> MetricResult:
    """Gives sentence BLEU (0–100) per pair, as sacrebleu's `sentence_bleu` computes it."""
    from sacrebleu.metrics import BLEU

    scorer = BLEU(effective_order=True, tokenize=ctx.options.get("tokenize"), lowercase=ctx.options.get("lowercase", False))
    values = [scorer.sentence_score(c, [o]).score for c, o in zip(candidates, others)]
    return MetricResult({"bleu": values}, {"bleu": str(scorer.get_signature())})


@register("rouge", options=("types", "stemmer"))
def rouge(candidates: list[str], others: list[str], ctx: MetricContext) -> MetricResult:
    """Gives ROUGE F-measures per pair, as rouge-score's `RougeScorer.score(target, prediction)` does."""
    from rouge_score import rouge_scorer

    types = list(ctx.options.get("types", ["rouge1", "rouge2", "rougeL"]))
    stem = bool(ctx.options.get("stemmer", True))
    scorer = rouge_scorer.RougeScorer(types, use_stemmer=stem)
    columns = {t: [] for t in types}
    for c, o in zip(candidates, others):
        scores = scorer.score(o, c)
        for t in types:
            columns[t].append(scores[t].fmeasure)
    sig = f"rouge-score|fmeasure|stemmer:{'yes' if stem else 'no'}"
    return MetricResult(columns, {t: f"{t}|{sig}" for t in types})
