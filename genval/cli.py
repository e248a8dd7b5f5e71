"""The `genval` command.

`run` and `validate` live here; each area adds its own commands from its `commands.py`
(`add_commands(subparsers)`), so the command line grows without one module knowing them all.
A user's mistake prints one line and exits 2; a release gate that fails exits 1; a run (or
stage command) that finished with failed requests, or whose decision is INCOMPLETE, exits 3.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from genval import __version__
from genval.errors import GenvalError

COMMAND_MODULES = (
    "genval.backends.commands", "genval.metrics.commands", "genval.judging.commands", "genval.analysis.commands",
)


def _say_outcome(result: dict) -> None:
    """Prints the decision and its reasons, and the failed requests a plain re-run retries (stdout)."""
    decision = result["decision"]
    if decision:
        print(f"decision: {decision['verdict'].replace('_', ' ')}")
        for reason in decision["reasons"]:
            print(f"  - {reason}")
    for stage, count in result["failed_requests"].items():
        print(f"{stage}: {count} requests failed; a plain re-run retries them (exit 3)")


def _cmd_run(args) -> int:
    from genval.config import load_config
    from genval.pipeline import outcome, prepare, report_path, run_stages
    from genval.progress import Progress

    config = load_config(args.config)
    progress = Progress(quiet=args.quiet)
    run = prepare(config, Path(args.out))
    run_stages(run, config, progress, force=tuple(args.force or ()))
    result = outcome(run)
    _say_outcome(result)
    print(report_path(run))
    return result["exit_code"]


def _cmd_stage(args) -> int:
    """Runs the stages up to and including the named one; those whose inputs are unchanged are skipped."""
    from genval.config import load_config
    from genval.pipeline import STAGE_NAMES, outcome, prepare, report_path, run_stages
    from genval.progress import Progress

    config = load_config(args.config)
    run = prepare(config, Path(args.out))
    force = (args.command,) if args.force else ()
    upto = STAGE_NAMES[: STAGE_NAMES.index(args.command) + 1]
    run_stages(run, config, Progress(quiet=args.quiet), force=force, only=upto)
    result = outcome(run, upto)
    _say_outcome(result)
    print(report_path(run) if args.command == "report" else run.root)
    return result["exit_code"]


def _cmd_validate(args) -> int:
    from genval.config import load_config
    from genval.evalset import load_evalset

    config = load_config(args.config)
    evalset = load_evalset(config.eval_set, config.prompt, config.slices, config.system_prompt)
    config.load_schema()
    from genval.metrics.registry import get_metric

    for spec in config.metric_specs:
        metric = get_metric(spec.name)
        unknown = sorted(set(spec.options) - set(metric.options))
        if unknown:
            raise GenvalError(f"{args.config}: metric '{spec.name}' has no option '{unknown[0]}' "
                              f"(it takes: {', '.join(metric.options) or 'none'})")
    for role, model in config.models.items():
        path = getattr(model, "path", None)
        if path is not None and not Path(path).exists():
            raise GenvalError(f"{args.config}: models.{role}.path: no such file {path}")
    from genval.judging.definition import load_definition

    for ref in config.judge:
        load_definition(ref.config)
    if config.human_labels is not None and not Path(config.human_labels).exists():
        raise GenvalError(f"{args.config}: human_labels: no such file {config.human_labels}")
    print(f"{args.config}: valid — task {config.task}, {evalset.n} examples, roles {', '.join(config.roles)}, "
          f"eval set sha256 {evalset.sha256[:12]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genval",
        description="Tells whether a distilled student model can replace its teacher, and where it falls short.",
    )
    parser.add_argument("--version", action="version", version=f"genval {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run every stage of a config; prints the report's path last")
    p.add_argument("config", help="the run config (YAML)")
    p.add_argument("--out", default="runs", help="folder that holds run folders (default: runs)")
    p.add_argument("--force", action="append", metavar="STAGE",
                   help="redo this stage even if its inputs are unchanged (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_run)

    for name, what in (("generate", "run teacher, student and other candidates over the eval set"),
                       ("score", "score the outputs with the configured metrics"),
                       ("judge", "ask the configured judges, and calibrate them against human labels"),
                       ("aggregate", "aggregate every number per slice with intervals into summary.json")):
        p = sub.add_parser(name, help=f"{what} (`run` up to this stage)")
        p.add_argument("config", help="the run config (YAML)")
        p.add_argument("--out", default="runs", help="folder that holds run folders (default: runs)")
        p.add_argument("--force", action="store_true", help="redo the stage even if its inputs are unchanged")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.set_defaults(func=_cmd_stage)

    p = sub.add_parser("validate", help="check a config, its eval set, paths and schema without running")
    p.add_argument("config", help="the run config (YAML)")
    p.set_defaults(func=_cmd_validate)

    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GenvalError as exc:
        print(f"genval: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genval: interrupted; finished requests are in the cache, run again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
