"""Sample size before the run: per slice, the examples the eval set has and those it needs to show a given drop.

The report gives each slice's minimum detectable effect, MDE = (z_{1−α/2} + z_{power}) · SE with
SE = width / (2 z_{1−α/2}) read off the slice's interval (Bloom 1995, genval.analysis.numbers).
Before any output exists, a slice's headline is planned as a share at an assumed level p (the
student's accuracy, a judge's equivalence rate) whose interval is Wilson's — the interval the
report gives a share — and its MDE at n examples is that same formula; the examples a slice
needs are the smallest n whose MDE is at most the drop to detect (the formula inverted by a
search over n, so plan and report can never disagree). p = 0.5 (the default) is the worst case;
a team that expects 90 % accuracy plans with `--share 0.9`. The seed's advice, "a few hundred per
slice", is what this gives for drops of 5–10 points.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from genval.analysis.intervals import wilson
from genval.analysis.numbers import POWER, minimum_detectable_effect
from genval.config import RunConfig

MAX_N = 10_000_000


def share_mde(n: int, share: float, confidence: float, power: float = POWER) -> float | None:
    """Gives the MDE of a share at level `share` over n examples, from its Wilson interval (None for n = 0)."""
    if n <= 0:
        return None
    return minimum_detectable_effect({"ci": wilson(share * n, n, confidence)}, confidence, power)


def needed(drop: float, share: float, confidence: float, power: float = POWER) -> int | None:
    """Gives the fewest examples whose MDE is at most `drop` (the report's MDE inverted), None past MAX_N."""
    if share_mde(MAX_N, share, confidence, power) > drop:
        return None
    lo, hi = 1, 1
    while share_mde(hi, share, confidence, power) > drop:   # the MDE falls as n grows: double, then halve the gap
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if share_mde(mid, share, confidence, power) <= drop:
            hi = mid
        else:
            lo = mid + 1
    return hi


@dataclass
class Row:
    """One line of the plan: a slice (or the whole set), its examples, its MDE and the examples it needs."""

    slice: str
    n: int
    mde: float | None
    needed: int | None
    small: bool

    @property
    def enough(self) -> bool:
        return self.needed is not None and self.n >= self.needed


def plan(config: RunConfig, drop: float, share: float, power: float = POWER) -> list[Row]:
    """Gives the plan's rows: the whole eval set, then every value of every configured slice field, by field."""
    from genval.evalset import load_evalset

    evalset = load_evalset(config.eval_set, config.prompt, list(config.slices), config.system_prompt)
    counts: dict[str, Counter] = {field: Counter() for field in config.slices}
    for frame in evalset.batches():
        for field in config.slices:
            counts[field].update(str(v) for v in frame[f"slice_{field}"] if v is not None and v == v)
    confidence, min_n = config.analysis.confidence, config.analysis.min_slice_n
    want = needed(drop, share, confidence, power)
    rows = [Row("all", evalset.n, share_mde(evalset.n, share, confidence, power), want, False)]
    for field, found in counts.items():
        rows += [Row(f"{field}={value}", n, share_mde(n, share, confidence, power), want, n < min_n)
                 for value, n in sorted(found.items())]
    return rows
