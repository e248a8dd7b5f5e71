"""The `genval` command.

`run`, `validate` and the stage commands live here; the other commands live beside this file,
one module per area (analysis, judging, metrics, models), each with `add_commands(subparsers)`.
This package is the only one that parses arguments or prints for people.
A user's mistake prints one line and exits 2 (a mistake in the command line too); a release
gate that fails exits 1; a run (or stage command) that finished with failed requests, or whose
decision is INCOMPLETE, exits 3, and so does `genval gate` on such a run (unless
--allow-incomplete). A reader that stops reading (`genval metrics | head`) ends the command
quietly with 141, as a shell reports SIGPIPE. Anything else that goes wrong is a bug in genval:
one line and exit 70 (EX_SOFTWARE); `genval --debug COMMAND` shows the traceback of either.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from genval import __version__
from genval.cli import analysis, export, judging, metrics, models, monitor, plan, view
from genval.cli.args import OneLineParser, UsageError
from genval.errors import GenvalError
from genval.redact import redact

EXIT_BUG = 70  # sysexits.h EX_SOFTWARE: an internal error, not the user's
EXIT_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command whose reader went away (`genval metrics | head`)


def _say_outcome(result: dict) -> None:
    """Prints the gate's outcome, the decision and its reasons, and the failed requests a plain re-run retries (stdout).

    Read from the run folder, so a re-run that skips every stage says them again.
    """
    gate, decision = result.get("gate"), result["decision"]
    if gate is not None:
        incomplete = decision is not None and decision["verdict"] == "INCOMPLETE"
        print(f"gate: {'PASS' if gate['passed'] else 'FAIL'}"
              + (" — but the run is INCOMPLETE, so its rules cannot be trusted (see the decision)" if incomplete else "")
              + "".join(f"\n  failing: {line}" for line in gate["failing"]))
    if decision:
        print(f"decision: {decision['verdict'].replace('_', ' ')}")
        for reason in decision["reasons"]:
            print(f"  - {reason}")
    for stage, count in result["failed_requests"].items():
        unfilled = result.get("missing", {}).get(stage, 0)
        recorded = result.get("recorded", {}).get(stage, 0)
        retried = count - unfilled - recorded
        said = [f"{retried} a plain re-run retries"] if retried else []
        if unfilled:
            said.append(f"{unfilled} have no record in a replay file, which a re-run will not fill")
        if recorded:
            said.append(f"{recorded} are errors a replay file records, which a re-run reads again")
        print(f"{stage}: {count} requests failed: {'; '.join(said)} (exit 3)")
    for note in result.get("replay_notes") or []:
        print(f"  {note}")


def _cmd_run(args) -> int:
    from genval.config import load_config
    from genval.pipeline import check_force, outcome, prepare, report_path, run_stages
    from genval.progress import Progress

    config = load_config(args.config)
    check_force(args.force or ())
    progress = Progress(quiet=args.quiet)
    run = prepare(config, Path(args.out), args.executor)
    run_stages(run, config, progress, force=tuple(args.force or ()), executor=args.executor)
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
    run = prepare(config, Path(args.out), args.executor)
    force = (args.command,) if args.force else ()
    upto = STAGE_NAMES[: STAGE_NAMES.index(args.command) + 1]
    run_stages(run, config, Progress(quiet=args.quiet), force=force, only=upto, executor=args.executor)
    result = outcome(run, upto)
    _say_outcome(result)
    print(report_path(run) if args.command == "report" else run.root)
    return result["exit_code"]


def _cmd_validate(args) -> int:
    """Runs the checks `run` makes before it writes anything (genval.checks), and writes nothing."""
    from genval.checks import check_inputs, replay_gaps
    from genval.config import load_config, read_yaml

    data, _ = read_yaml(args.config)
    if isinstance(data, dict) and "traffic" in data:  # a monitor config (`traffic` is its own, required key)
        from genval.monitor.config import load_monitor_config

        monitor = load_monitor_config(args.config)
        print(f"{args.config}: valid monitor config — task {monitor.task}, {len(monitor.traffic)} traffic "
              f"pattern(s), windows of {monitor.window}; `genval monitor` reads it")
        return 0
    config = load_config(args.config)
    checked = check_inputs(config, Path(args.out))
    evalset = checked.evalset
    extra = f", {checked.judges} judge(s)" if checked.judges else ""
    extra += f", {checked.ratings} human ratings" if checked.ratings is not None else ""
    print(f"{args.config}: valid — task {config.task}, {evalset.n} examples, roles {', '.join(config.roles)}"
          f"{extra}, eval set sha256 {evalset.sha256[:12]}")
    for note in replay_gaps(config, evalset):  # valid, but a run will count these as failed outputs (exit 3)
        print(f"note: {note}")
    return 0


def _executor_option(parser) -> None:
    parser.add_argument("--executor", choices=["local", "ray"], default=None,
                        help="what runs the stages' maps over batches: this machine (local, the default) or Ray "
                             "(pip install genval[ray]); overrides the config's 'executor.kind'")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="genval",
        description="Tells whether a distilled student model can replace its teacher, and where it falls short.",
    )
    parser.add_argument("--version", action="version", version=f"genval {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run every stage of a config; prints the report's path last")
    p.add_argument("config", help="the run config (YAML)")
    p.add_argument("--out", default="runs", help="folder that holds run folders (default: runs)")
    p.add_argument("--force", action="append", metavar="STAGE",
                   help="redo this stage even if its inputs are unchanged (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _executor_option(p)
    p.set_defaults(func=_cmd_run)

    for name, what in (("generate", "run teacher, student and other candidates over the eval set"),
                       ("score", "score the outputs with the configured metrics"),
                       ("judge", "ask the configured judges (`genval calibrate` checks them against people)"),
                       ("aggregate", "aggregate every number per slice with intervals into summary.json")):
        p = sub.add_parser(name, help=f"{what} (`run` up to this stage)")
        p.add_argument("config", help="the run config (YAML)")
        p.add_argument("--out", default="runs", help="folder that holds run folders (default: runs)")
        p.add_argument("--force", action="store_true", help="redo the stage even if its inputs are unchanged")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        _executor_option(p)
        p.set_defaults(func=_cmd_stage)

    p = sub.add_parser("validate", help="every check `run` makes before it writes (config, eval set, replays, "
                                        "schema, judges, labels, baseline, options, keys, cache); writes nothing")
    p.add_argument("config", help="the run config (YAML)")
    p.add_argument("--out", default="runs", help="folder that holds run folders, as for `run` (default: runs)")
    p.set_defaults(func=_cmd_validate)

    for area in (models, metrics, judging, analysis, plan, export, view, monitor):
        area.add_commands(sub)
    return parser


def _say(message: str) -> None:
    """Prints one line on stderr, secrets redacted."""
    print(" ".join(redact(message).split("\n")), file=sys.stderr)


def _stdout_closed() -> bool:
    """Says whether stdout's reader went away; if so, stdout is pointed at /dev/null so exit flushes nothing.

    A closed pipe is the reader's choice, not an error: the command stops quietly (Python's own
    advice, docs "Note on SIGPIPE"). A broken pipe elsewhere (a socket) is an error as any other.
    """
    import os
    import select

    try:  # a pipe whose reader closed polls as an error on its write end (Linux, macOS)
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        closed = any(event & (select.POLLERR | select.POLLHUP) for _fd, event in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout is no file
        closed = False
    if not closed:
        return False
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return True


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # wherever it stands: `genval run c.yaml --debug` works too
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        _say(str(exc))
        return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that left (`| head`) is found here, not at exit
        return code
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        return EXIT_PIPE
    except GenvalError as exc:
        if debug:
            traceback.print_exc()
        _say(f"genval: error: {exc}")
        return 2
    except KeyboardInterrupt:
        _say("genval: interrupted; finished requests are in the cache, run again to resume")
        return 130
    except OSError as exc:  # the disk, not the input: full, read-only, no permission
        if debug:
            traceback.print_exc()
        _say(f"genval: error: {exc.filename or ''}: {exc.strerror or exc} (nothing finished is lost; "
             "fix it and run again)")
        return 2
    except Exception as exc:  # noqa: BLE001 — a bug: say so in one line, the traceback behind --debug
        if debug:
            traceback.print_exc()
        first = (str(exc).splitlines() or [""])[0][:200]
        _say(f"genval: internal error ({type(exc).__name__}: {first}); this is a bug in genval — "
             "run again with --debug for the traceback and report it")
        return EXIT_BUG

