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

FILES = ("report.md", "report.html", "summary.json", "calibration.json")
_NAME = re.compile(r"[^\w.\- /]")   # the characters MLflow accepts in a metric or param name


def key(*parts: str) -> str:
    """Gives an MLflow metric name from its parts: `student~teacher` → `student_vs_teacher`, other characters → _."""
    return "/".join(_NAME.sub("_", part.replace("~", "_vs_")) for part in parts if part)


def numbers(summary: dict) -> dict[str, float]:
    """Gives every exported number by MLflow name: the headline numbers, each pair's metrics and each slice's
    headline, each with `.ci_low`, `.ci_high` and `.n` beside it where it has them."""
    out: dict[str, float] = {}

    def put(name: str, n) -> None:
        if isinstance(n, dict):
            if n.get("value") is None:
                return
            out[name] = float(n["value"])
            lo, hi = (n.get("ci") or [None, None])[:2]
            for suffix, v in ((".ci_low", lo), (".ci_high", hi), (".n", n.get("n"))):
                if v is not None:
                    out[name + suffix] = float(v)
        elif isinstance(n, (int, float)) and not isinstance(n, bool):
            out[name] = float(n)

    for name, n in headline_rows(summary):
        put(key("headline", name.split(" (")[0].replace(" ", "_")), n)
    for pair, metrics in (summary.get("metrics") or {}).items():
        for metric, n in metrics.items():
            put(key("metrics", pair, metric), n)
    for field, values in (summary.get("slices") or {}).items():
        for value, block in values.items():
            head = block.get("headline") or {}
            put(key("slice", field, str(value), head.get("metric") or "headline"), head)
    for role, figures in ((summary.get("ops") or {}).get("roles") or {}).items():
        for figure, v in (figures or {}).items():
            put(key("ops", role, figure), v)
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


def export(run: Run, summary: dict, tracking_uri: str | None = None, experiment: str = "genval") -> str:
    """Logs the run to MLflow (one MLflow run per genval run); gives the MLflow run id."""
    from mlflow.entities import Metric, Param

    client = _client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    decision = summary.get("decision") or {}
    gate = summary.get("gate")
    tags = {"genval.decision": decision.get("verdict", "NO_DECISION"),
            "genval.reasons": "; ".join(decision.get("reasons") or [])[:4900],
            "genval.gate": "none" if gate is None else ("PASS" if gate["passed"] else "FAIL"),
            "genval.task": summary.get("task", ""), "genval.version": __version__}
    judge = summary.get("judge") or {}
    if judge:
        tags["genval.judge"] = f"{judge['name']} ({'validated' if judge.get('validated') else 'not validated'})"
    ev, settings = summary.get("eval_set") or {}, summary.get("settings") or {}
    params = {"name": summary.get("name"), "task": summary.get("task"), "eval_set": Path(ev.get("path") or "").name,
              "eval_set_sha256": ev.get("sha256"), "eval_set_n": ev.get("n"),
              "bootstrap": settings.get("bootstrap"), "confidence": settings.get("confidence"),
              "seed": settings.get("seed"), "min_slice_n": settings.get("min_slice_n")}
    params.update({key("signature", metric): sig for metric, sig in (settings.get("metrics") or {}).items()})
    created = client.create_run(experiment_id, run_name=summary.get("name"), tags=tags)
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
