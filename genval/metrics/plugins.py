"""Any Hugging Face `evaluate` metric as an optional plug-in, by name or local path; never a default.

`evaluate.load` fetches a metric script from the Hub at run time (unless given a local folder),
which a frozen, offline evaluation should not depend on, so genval's own metrics never go
through it. A user who wants one more metric names it:

    metrics:
      - name: hf_evaluate
        metric: meteor          # or ./my_metrics/meteor (a local folder with the script)
        column: meteor          # the key of the result to keep per pair (default: the metric name)
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from genval.errors import GenvalError
from genval.metrics.registry import MetricContext, MetricResult, Options, register


class HFEvaluateOptions(Options):
    """Which `evaluate` metric (a name or a local folder), which result key to keep, and its compute() arguments."""

    metric: str | None = None
    column: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)


@register("hf_evaluate", options=HFEvaluateOptions)
def hf_evaluate(candidates: list[str], others: list[str], ctx: MetricContext) -> MetricResult:
    """Gives a Hugging Face `evaluate` metric per pair (one `compute` call per pair, as sentence scores)."""
    name = ctx.options.metric
    if not name:
        raise GenvalError("metrics.hf_evaluate: give 'metric: <name or local path>' (e.g. metric: meteor)")
    try:
        import evaluate
    except ImportError:
        raise GenvalError("metrics.hf_evaluate: the 'evaluate' package is not installed (pip install evaluate)") from None
    try:
        module = evaluate.load(name)
    except Exception as exc:  # evaluate raises many types for a missing script or no network
        raise GenvalError(f"metrics.hf_evaluate: cannot load '{name}' ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    column = ctx.options.column or name.rstrip("/").split("/")[-1]
    args = dict(ctx.options.args)
    values = []
    for cand, other in zip(candidates, others):
        result = module.compute(predictions=[cand], references=[other], **args)
        if column not in result:
            raise GenvalError(f"metrics.hf_evaluate.column: '{column}' is not in the result (keys: {', '.join(result)})")
        value = result[column]
        values.append(float(value[0] if isinstance(value, list) else value))
    sig = f"hf-evaluate|{name}|evaluate:{getattr(evaluate, '__version__', '?')}|args:{sorted(args.items())}"
    return MetricResult({f"hf:{column}": values}, {f"hf:{column}": sig})
