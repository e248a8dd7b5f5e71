"""Per-example scorers, each registered by name; importing this package fills the registry."""

from genval.metrics import lexical, numeric, plugins, semantic, structure  # noqa: F401
from genval.metrics.registry import METRICS, Metric, MetricContext, MetricResult, get_metric, register

__all__ = ["METRICS", "Metric", "MetricContext", "MetricResult", "get_metric", "register"]
