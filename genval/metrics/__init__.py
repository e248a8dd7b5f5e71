"""Per-example scorers, each registered by name; importing this package fills the registry."""

from genval.errors import GenvalError, did_you_mean
from genval.metrics import bleu, lexical, numeric, plugins, semantic, structure, tokens  # noqa: F401  (they register)
from genval.metrics.registry import METRICS, Corpus, Metric, MetricContext, MetricResult, Prepass, register

__all__ = ["METRICS", "Corpus", "Metric", "MetricContext", "MetricResult", "Prepass", "get_metric", "register"]


def get_metric(name: str) -> Metric:
    """Gives the registered metric called `name`, or a one-line error listing the known ones."""
    if name not in METRICS:
        raise GenvalError(f"metrics: unknown metric '{name}' (known: {', '.join(sorted(METRICS))})"
                          + did_you_mean(name, sorted(METRICS)))
    return METRICS[name]
