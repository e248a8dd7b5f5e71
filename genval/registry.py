"""The number registry: for every number genval reports, which way is better, its range, its printing precision.

compare, gate, diagnosis, the plots and the reports read direction and range from here;
nothing else knows that a lower KL is better. A metric registered in
`genval.metrics.registry` declares its own columns (`register(..., numbers={...})`); the
numbers genval derives itself (classification, judge, ops, failures) in `genval.numbers`.
Names may be patterns (`rouge*`, `field:*`, `*_pct`), matched with `fnmatch`, exact names first.

A failed or missing output takes its number's `worst` value (the low end of the range for a
higher-is-better number, the high end for a lower-is-better one): that is what a user of the
deployed model gets. A number whose worst end is unbounded (KL, NLL, absolute error) has no
worst value; its failures are left out and the summary says so.
"""

from __future__ import annotations

from genval.numbers import BUILTIN, FAILED_DETAIL, NumberSpec, lookup

__all__ = ["FAILED_DETAIL", "NumberSpec", "better", "digits", "spec", "worst"]


def _declared() -> dict[str, NumberSpec]:
    from genval.metrics import METRICS  # importing the package fills the metric registry

    out: dict[str, NumberSpec] = {}
    for metric in METRICS.values():
        out.update(metric.numbers)
    return out


_TABLE: dict[str, NumberSpec] | None = None


def _table() -> dict[str, NumberSpec]:
    global _TABLE
    if _TABLE is None:
        _TABLE = {**BUILTIN, **_declared()}
    return _TABLE


def spec(name: str) -> NumberSpec | None:
    """Gives the registry entry of a number by name (exact, else the first matching pattern); None if unknown."""
    return lookup(_table(), name)


def better(name: str) -> str | None:
    """Gives 'higher', 'lower' or None (unknown, or neither) for the number called `name`."""
    found = spec(name)
    return found.better if found else None


def worst(name: str) -> float | None:
    """Gives the value a failed output counts as for this number; None when unknown or unbounded."""
    found = spec(name)
    return found.worst if found else None


def digits(name: str) -> int:
    """Gives how many decimals this number is printed with (4 when unknown)."""
    found = spec(name)
    return found.digits if found else 4
