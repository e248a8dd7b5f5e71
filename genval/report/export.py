"""A finished run logged to MLflow: the headline and per-slice numbers with their intervals, the metrics per
pair, the decision and the gate, and the report files — so a team's tracking server holds genval's verdict.

MLflow is an optional extra (`pip install 'genval[mlflow]'`; `mlflow-skinny` is enough). Logging goes
through `MlflowClient` in batches (MLflow's limits: 1000 metrics, 100 params, 100 tags a call),
never the fluent API, so no global active run is left behind.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from genval import __version__
from genval.errors import GenvalError
from genval.report.decision import headline_rows
from genval.runfolder import Run
from genval.summary import Estimate, Summary, parse

FILES = ("report.md", "report.html", "summary.json", "calibration.json")
_NAME = re.compile(r"[^\w.\- /]")   # the characters MLflow accepts in a metric or param name


def key(*parts: str) -> str:
    """Gives an MLflow metric name from its parts: `student~teacher` → `student_vs_teacher`, other characters → _."""
    return "/".join(_NAME.sub("_", part.replace("~", "_vs_")) for part in parts if part)


def numbers(summary: Summary | dict) -> dict[str, float]:
    """Gives every exported number by MLflow name: the headline numbers, each pair's metrics and each slice's
    headline, each with `.ci_low`, `.ci_high` and `.n` beside it where it has them."""
    summary = parse(summary)
    out: dict[str, float] = {}

    def put(name: str, n) -> None:
        if isinstance(n, Estimate):
            if n.value is None:
                return
            out[name] = float(n.value)
            for suffix, v in ((".ci_low", n.lo), (".ci_high", n.hi), (".n", n.n)):
                if v is not None:
                    out[name + suffix] = float(v)
        elif isinstance(n, (int, float)) and not isinstance(n, bool):
            out[name] = float(n)

    for name, n in headline_rows(summary):
        put(key("headline", name.split(" (")[0].replace(" ", "_")), n)
    for pair, metrics in summary.metrics.items():
        for metric, n in metrics.items():
            put(key("metrics", pair, metric), n)
    for field, value, block in summary.each_slice():
        put(key("slice", field, str(value), block.headline.metric if block.headline else "headline"), block.headline)
    for role, figures in summary.ops.roles.items():
        for figure, v in figures.items() if figures else ():
            put(key("ops", role, figure), v)
    # Each further candidate's own headline numbers (its accuracy, KL, ECE…, computed with it as the student):
    # without them a run comparing students logged the student's KL and calibration only.
    for role, found in (summary.candidates or {}).items():
        for name, n in headline_rows(found):
            put(key("candidate", role, "headline", name.split(" (")[0].replace(" ", "_")), n)
    return out


def _client(tracking_uri: str | None):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise GenvalError("genval export --mlflow needs MLflow: pip install 'genval[mlflow]'") from None
    if tracking_uri and (tracking_uri.startswith("file:") or "://" not in tracking_uri):
        # MLflow 3 keeps its file store in maintenance mode behind this switch; a file: URI asks for it by name.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=tracking_uri)


def export(run: Run, summary: Summary | dict, tracking_uri: str | None = None, experiment: str = "genval") -> str:
    """Logs the run to MLflow (one MLflow run per genval run); gives the MLflow run id."""
    from mlflow.entities import Metric, Param

    client = _client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    summary = parse(summary)
    gate = summary.gate
    tags = {"genval.decision": summary.decision.verdict, "genval.reasons": "; ".join(summary.decision.reasons)[:4900],
            "genval.gate": "none" if gate is None else ("PASS" if gate.passed else "FAIL"),
            "genval.task": summary.task, "genval.version": __version__}
    for role, found in (summary.candidates or {}).items():
        tags[f"genval.candidate.{role}.decision"] = found.decision.verdict
    judge = summary.judge
    if judge:
        tags["genval.judge"] = f"{judge.name} ({'validated' if judge.validated else 'not validated'})"
    ev, settings = summary.eval_set, summary.settings
    params = {"name": summary.name, "task": summary.task, "eval_set": Path(ev.path).name,
              "eval_set_sha256": ev.sha256, "eval_set_n": ev.n,
              "bootstrap": settings.bootstrap, "confidence": settings.confidence,
              "seed": settings.seed, "min_slice_n": settings.min_slice_n}
    params.update({key("signature", metric): sig for metric, sig in settings.metrics.items()})
    created = client.create_run(experiment_id, run_name=summary.name, tags=tags)
    run_id = created.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(name, value, now, 0) for name, value in sorted(numbers(summary).items())]
    param_list = [Param(k, str(v)[:6000]) for k, v in params.items() if v is not None]
    for k in range(0, len(param_list), 100):
        client.log_batch(run_id, params=param_list[k:k + 100])
    for k in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[k:k + 1000])
    for name in FILES:
        if run.path(name).exists():
            client.log_artifact(run_id, str(run.path(name)))
    client.set_terminated(run_id)
    return run_id
