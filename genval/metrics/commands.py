"""This area's `genval` subcommands: `score` and `metrics`; `genval.cli` calls `add_commands` with its subparsers."""

from __future__ import annotations

from pathlib import Path


def _cmd_score(args) -> int:
    from genval.config import load_config
    from genval.pipeline import prepare, run_stages
    from genval.progress import Progress

    config = load_config(args.config)
    run = prepare(config, Path(args.out))
    # generate is skipped when its outputs are current; scoring needs them
    run_stages(run, config, Progress(quiet=args.quiet), force=("score",) if args.force else (),
               only=["generate", "score"])
    print(run.path("scores"))
    return 0


def _cmd_metrics(args) -> int:
    from genval.metrics.registry import METRICS, get_metric

    get_metric("bleu")  # fills the registry
    for name in sorted(METRICS):
        metric = METRICS[name]
        doc = (metric.func.__doc__ or "").strip().splitlines()[0]
        kind = "per role" if metric.kind == "single" else "per pair"
        print(f"{name:<13} {kind:<8} options: {', '.join(metric.options) or '-'}\n              {doc}")
    return 0


def add_commands(subparsers) -> None:
    """Adds `genval score` and `genval metrics`."""
    p = subparsers.add_parser("score", help="run the stages up to scoring (generate when needed, then score)")
    p.add_argument("config", help="the run config (YAML)")
    p.add_argument("--out", default="runs", help="folder that holds run folders (default: runs)")
    p.add_argument("--force", action="store_true", help="score again even if inputs are unchanged")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_score)
    p = subparsers.add_parser("metrics", help="list the metrics a config's 'metrics:' can name, with their options")
    p.set_defaults(func=_cmd_metrics)
