"""This area's `genval` subcommands: `metrics` (`genval score` is one stage of `run`, in genval.cli); `genval.cli` calls `add_commands` with its subparsers."""

from __future__ import annotations


def _cmd_metrics(args) -> int:
    from genval.metrics import METRICS, get_metric

    get_metric("bleu")  # fills the registry
    for name in sorted(METRICS):
        metric = METRICS[name]
        doc = (metric.func.__doc__ or "").strip().splitlines()[0]
        kind = {"single": "per role", "fidelity": "~teacher"}.get(metric.kind, "per pair")
        print(f"{name:<13} {kind:<8} options: {', '.join(metric.options.model_fields) or '-'}\n              {doc}")
    return 0


def add_commands(subparsers) -> None:
    """Adds `genval metrics`."""
    p = subparsers.add_parser("metrics", help="list the metrics a config's 'metrics:' can name, with their options")
    p.set_defaults(func=_cmd_metrics)
