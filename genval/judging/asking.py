"""Asking one judge about every pair: the requests it gets, and the verdicts read from its answers.

A request's id is `<example id>|<pair>|<order>|<sample>`: order `ab` puts the pair's first
role first, `ba` swaps them (pairwise mode only), and sample counts the repeated draws.
A pair that flips under the swap is a tie (position-bias control, Zheng et al. 2023,
"Judging LLM-as-a-judge", §3.3); repeated samples give the majority verdict, the mean
score and the spread (Liu et al. 2023, G-Eval, sample n=20 for the score distribution).
`samples: k` means k draws per order: with the swap a pair gets 2k requests, and its row
counts the parsed draws of each order (`samples`, `samples_swapped`); scores and spread are
taken after the swapped order is turned back into the pair's own order.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd

from genval.judging.definition import Definition
from genval.judging.parsing import choose, expected_score, parse_answer, probs_from_top_logprobs
from genval.judging.prompts import render_prompt
from genval.models import Completion, Params, Request
from genval.pairs import REFERENCE, Pair, resolve_pairs  # noqa: F401  (resolve_pairs: cli/judging.py's)


def PairSpec(name: str, candidate: str, other: str | None) -> Pair:  # noqa: N802
    """Gives the `Pair` a (name, candidate, other) triple names; kept for judging/sampling.py's callers."""
    return Pair(candidate, other)


def pair_items(examples: pd.DataFrame, outputs: pd.DataFrame, spec: Pair) -> pd.DataFrame:
    """Gives `id`, `input`, `reference`, `candidate`, `other` for the examples where both sides exist (whole tables;
    kept for judging/sampling.py — the judge stage reads batches through `batch_items`)."""
    ok = outputs[outputs["error"].isna()]
    texts = {role: frame.set_index("id")["text"].fillna("") for role, frame in ok.groupby("role")}
    base = examples.set_index("id")
    frame = pd.DataFrame({"input": base["input"].fillna(base["prompt"]), "reference": base["reference"]})
    frame["candidate"] = texts.get(spec.candidate, pd.Series(dtype=object))
    if spec.other == REFERENCE:
        frame["other"] = frame["reference"]
    elif spec.other is not None:
        frame["other"] = texts.get(spec.other, pd.Series(dtype=object))
    else:
        frame["other"] = ""
    frame = frame.dropna(subset=["candidate", "other"])
    return frame.reset_index(names="id")


EXAMPLE_COLUMNS = ("input", "prompt", "reference")  # what a judge's prompt reads of an example


def batch_items(batch: pd.DataFrame, pair: Pair) -> tuple[pd.DataFrame, pd.Series]:
    """Gives, for one joined batch (genval.pairs.joined), the items of `pair` where both sides exist —
    `id`, `input`, `reference`, `candidate`, `other` — and the ids the pair is judged on when nothing fails."""
    def answered(role):
        return batch[f"{role}.text"].fillna("").where(batch[f"{role}.error"].isna())

    frame = pd.DataFrame({"id": batch["id"], "input": batch["input"].fillna(batch["prompt"]),
                          "reference": batch["reference"], "candidate": answered(pair.candidate)})
    if pair.other == REFERENCE:
        frame["other"], scope = frame["reference"], batch["id"][batch["reference"].notna()]
    else:
        frame["other"], scope = (answered(pair.other) if pair.other else ""), batch["id"]
    return frame.dropna(subset=["candidate", "other"]).reset_index(drop=True), scope


def request_ids(ident: str, pair: str, definition: Definition, samples: int, swap: bool) -> list[str]:
    """Gives the ids of the requests one item gets: `<example id>|<pair>|<order>|<sample>`."""
    return [f"{ident}|{pair}|{order}|{s}" for order in _orders(definition, swap) for s in range(samples)]


def _orders(definition: Definition, swap: bool) -> list[str]:
    return ["ab", "ba"] if definition.mode == "pairwise" and swap else ["ab"]


def build_requests(definition: Definition, items: pd.DataFrame, pair: str, task: str, samples: int,
                   swap: bool, aspect: str | None, key: bytes) -> list[Request]:
    """Gives every request for one pair: each example × order × sample, prompts rendered and fenced (nonces keyed by `key`)."""
    p = definition.parameters
    labels = definition.scale.tokens if p.weighted else None
    # A weighted choice judge is a constrained choice: the scale tokens are scored, nothing is generated.
    generate = not (p.weighted and definition.parser.kind == "choice")
    schema = definition.answer_schema()  # a JSON judge's answer shape, enforced where the engine can
    requests = []
    for row in items.itertuples(index=False):
        for order in _orders(definition, swap):
            first, second = (row.candidate, row.other) if order == "ab" else (row.other, row.candidate)
            fields = {"task": task, "input": row.input, "reference": row.reference, "candidate": first,
                      "other": second, "output_a": first, "output_b": second}
            system, user = render_prompt(definition, fields, aspect, key=key)
            for s in range(samples):
                # Each sample gets its own seed, so the cache keeps k distinct draws, not one answer k times.
                params = Params(max_tokens=p.max_tokens, temperature=p.temperature, top_p=p.top_p,
                                seed=p.seed + s, logprobs=p.logprobs)
                requests.append(Request(id=f"{row.id}|{pair}|{order}|{s}", prompt=user, system=system,
                                        params=params, labels=labels, generate=generate, schema=schema))
    return requests


def _canonical(verdict: str | None, order: str, definition: Definition) -> str | None:
    """Gives a pairwise verdict in the pair's own order: in the swapped order, A and B trade places."""
    if verdict is None or order == "ab" or definition.mode != "pairwise":
        return verdict
    a, b = definition.scale.labels[0], definition.scale.labels[1]
    return {a: b, b: a}.get(verdict, verdict)


def scale_probs(completion: Completion, definition: Definition) -> dict[str, float] | None:
    """Gives the probabilities the judge put on the scale's tokens, as it answered.

    From its top log-probabilities where it gave them, at the verdict's position (a choice
    answer's first token), nothing floored; else the backend's exact label probabilities (hf,
    vllm score every scale token). The openai backend's `label_probs` are not used: they give a
    label missing from the top k the smallest listed probability, which is right for KL and
    wrong for a G-Eval expectation.
    """
    if completion.top_logprobs:
        return probs_from_top_logprobs(completion.top_logprobs, definition.scale,
                                       first=definition.parser.kind == "choice")
    return completion.label_probs


def _sample_score(verdict: str | None, probs: dict[str, float] | None, definition: Definition) -> float | None:
    """Gives one answer's score in the order it was asked: the expectation over the scale where
    probabilities are wanted and given (G-Eval), else the parsed verdict's value."""
    scale = definition.scale
    if definition.parameters.weighted or definition.parameters.logprobs:
        weighted = expected_score(probs, scale)
        if weighted is not None:
            return weighted
    if verdict is None:
        return None
    if scale.kind == "ordinal":
        return float(verdict)
    if scale.kind == "binary":
        return 1.0 if verdict == scale.positive else 0.0
    return {scale.labels[0]: 1.0, scale.labels[1]: 0.0}.get(verdict, 0.5)


def _majority(verdicts: list[str], definition: Definition) -> str | None:
    """Gives the most frequent verdict; a split vote gives the median (ordinal) or None (labels, never guessed)."""
    if not verdicts:
        return None
    counts = Counter(verdicts).most_common()
    if len(counts) == 1 or counts[0][1] > counts[1][1]:
        return counts[0][0]
    if definition.scale.kind == "ordinal":
        return str(int(np.floor(np.median([int(v) for v in verdicts]))))
    return None


def _tie_label(definition: Definition) -> str | None:
    labels = definition.scale.labels
    return labels[2] if len(labels) > 2 else None


def read_verdicts(definition: Definition, judge_name: str, requests: list[Request],
                  completions: list[Completion]) -> pd.DataFrame:
    """Gives one judgments row per example × pair from the answers to `requests`."""
    groups: dict[tuple[str, str], list] = {}
    for req, comp in zip(requests, completions):
        ident, pair, order, _ = req.id.rsplit("|", 3)
        score = None
        if comp.error:
            parsed, problem = None, f"backend error: {comp.error}"
        else:
            probs = scale_probs(comp, definition)
            scored_only = definition.parser.kind == "choice" and probs and not (comp.text or "").strip()
            asked = f"{req.system or ''}\n{req.prompt}"  # where the fences genval issued are
            result = choose(probs, definition.scale) if scored_only else parse_answer(comp.text, definition, asked)
            parsed, problem = result.verdict, result.problem
            if scored_only:
                comp.text = json.dumps(probs, sort_keys=True)  # the raw answer is the scored choice
            score = _canonical_score(_sample_score(parsed, probs, definition), order, definition)
        groups.setdefault((ident, pair), []).append({
            "order": order, "verdict": _canonical(parsed, order, definition), "raw": comp.text or "",
            "problem": problem, "score": score, "comp": comp,
        })
    rows = [_row(definition, judge_name, ident, pair, answers) for (ident, pair), answers in groups.items()]
    return pd.DataFrame(rows)


def _canonical_score(score: float | None, order: str, definition: Definition) -> float | None:
    """Gives a sample's score in the pair's own order: the swapped order's "first wins" is the pair's "second wins"."""
    if score is None or order == "ab" or definition.mode != "pairwise":
        return score
    return 1.0 - score


def _order_scores(answers: list[dict], order: str) -> list[float]:
    return [a["score"] for a in answers if a["order"] == order and a["score"] is not None]


def _row(definition: Definition, judge_name: str, ident: str, pair: str, answers: list[dict]) -> dict:
    orders = list(dict.fromkeys(a["order"] for a in answers))
    per_order = {o: _majority([a["verdict"] for a in answers if a["order"] == o and a["verdict"]], definition)
                 for o in orders}
    swap_consistent = None
    if len(orders) == 2 and all(per_order.values()):
        swap_consistent = per_order["ab"] == per_order["ba"]
        verdict = per_order["ab"] if swap_consistent else _tie_label(definition)
    else:
        verdict = next((v for v in per_order.values() if v), None)
    # Scores are already in the pair's own order, so a judge that answers alike in both orders
    # has no spread; each order weighs the same in the mean, whatever its number of parsed samples.
    by_order = {o: _order_scores(answers, o) for o in ("ab", "ba")}
    order_scores = [float(np.mean(v)) for v in by_order.values() if v]
    sample_scores = by_order["ab"] + by_order["ba"]
    problems = [a["problem"] for a in answers if a["problem"]]
    comps = [a["comp"] for a in answers]
    return {
        "id": ident, "pair": pair, "judge": judge_name, "verdict": verdict,
        "score": float(np.mean(order_scores)) if order_scores else None,
        "raw": answers[0]["raw"] if len(answers) == 1 else json.dumps([a["raw"] for a in answers], ensure_ascii=False),
        "parsed": not problems, "swap_consistent": swap_consistent,
        "spread": float(np.std(sample_scores)) if len(sample_scores) > 1 else None,
        "samples": len(by_order["ab"]), "samples_swapped": len(by_order["ba"]) if "ba" in orders else None,
        "requests": len(answers),
        "problem": "; ".join(dict.fromkeys(problems)) or None,
        "prompt_tokens": sum(c.prompt_tokens or 0 for c in comps),
        "completion_tokens": sum(c.completion_tokens or 0 for c in comps),
        "latency_s": sum(c.latency_s or 0.0 for c in comps if not c.cached),
    }
