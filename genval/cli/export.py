"""`genval export RUN --mlflow`: a finished run logged to an MLflow tracking server; `genval.cli` calls
`add_commands` with its subparsers."""

from __future__ import annotations

from genval.errors import GenvalError


def _cmd_export(args) -> int:
    from genval.pipeline import current_summary
    from genval.progress import Progress
    from genval.report.export import export
    from genval.runfolder import open_run

    if not args.mlflow:
        raise GenvalError("genval export: say where to, e.g. --mlflow (the only target so far)")
    run = open_run(args.run)
    summary = current_summary(run, Progress())
    run_id = export(run, summary, args.tracking_uri, args.experiment)
    print(f"mlflow: logged {run.root.name} as run {run_id} in experiment {args.experiment!r}"
          f"{' at ' + args.tracking_uri if args.tracking_uri else ''}")
    return 0


def add_commands(subparsers) -> None:
    """Adds `genval export`."""
    p = subparsers.add_parser("export", help="log a finished run's numbers, decision and reports to MLflow")
    p.add_argument("run", help="the run folder")
    p.add_argument("--mlflow", action="store_true", help="log to MLflow (pip install 'genval[mlflow]')")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLflow's own, MLFLOW_TRACKING_URI)")
    p.add_argument("--experiment", default="genval", help="MLflow experiment name (default: genval)")
    p.set_defaults(func=_cmd_export)
