"""The monitor config: YAML validated once, at the edge, with the run config's own sections and helpers.

`reference`, `metrics`, `labels`, `prompt`, `generation` and `analysis` are the run config's models,
so a teacher is configured exactly as in a run (any backend). `alerts` are the gate's rules, read by
the gate's own parser (`metric [lower|upper] >= number on field=value`, or a mapping).
"""

from __future__ import annotations

import glob
import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from genval.config import (Analysis, GateConfig, GateRule, Generation, MetricSpec, ModelConfig, RunConfig, Strict,
                           parse_model, path_field, read_yaml, yaml_line)
from genval.errors import GenvalError, where

_WINDOW = re.compile(r"^(?P<count>[1-9]\d*)(?P<unit>[hd])$")


class Sample(Strict):
    """How many requests per window the reference labels: a fixed count, or a share of all traffic."""

    per_window: int | None = Field(None, ge=1)
    rate: float | None = Field(None, gt=0, le=1)
    seed: int = 0

    @model_validator(mode="after")
    def _one(self):
        if (self.per_window is None) == (self.rate is None):
            raise ValueError("give one of 'per_window: N' or 'rate: 0.05'")
        return self


class MonitorConfig(Strict):
    """A monitor: which traffic, labelled by what, measured how, alerting on what."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    task: Literal["summarization", "extraction", "classification", "generation"]
    traffic: list[str]
    timestamp_field: str = "timestamp"
    output_field: str = "output"
    id_field: str = "id"
    input_field: str = "input"  # its length in characters is the input-drift number
    error_field: str = "error"  # a non-empty value marks a request the student failed to answer
    prompt: str
    system_prompt: str | None = None
    labels: list[str] | None = None
    reference: ModelConfig | None = None
    human_labels: Path | None = path_field(None)
    generation: Generation = Field(default_factory=Generation)
    sample: Sample
    window: str
    slices: list[str] = Field(default_factory=list)
    metrics: list[MetricSpec] = Field(default_factory=list)
    alerts: list[GateRule] = Field(default_factory=list)
    baseline: Path | None = path_field(None)  # a `genval run` folder on the frozen eval set
    baseline_windows: int = Field(1, ge=1)  # without `baseline`: the first windows recorded are the baseline
    eval_set: Path | None = path_field(None)  # without `baseline`: the frozen eval set, for `uncovered_share`
    analysis: Analysis = Field(default_factory=Analysis)
    cache: Path | None = path_field(None)

    model_config = ConfigDict(extra="forbid", strict=True)
    _source: str = PrivateAttr("<config>")
    _text: str = PrivateAttr("")

    @field_validator("traffic", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    _metric_names = field_validator("metrics", mode="before")(RunConfig._metric_names.__func__)

    @field_validator("alerts", mode="before")
    @classmethod
    def _rule_text(cls, value):
        """Reads each alert with the gate's parser, so the syntax is the gate's to the character."""
        return GateConfig._rule_text(value or [])

    @field_validator("window")
    @classmethod
    def _window(cls, value):
        if not _WINDOW.match(value):
            raise ValueError(f"'{value}' should read like 1d, 7d, 30d or 6h")
        return value

    @model_validator(mode="after")
    def _needs(self):
        if self.reference is None and self.human_labels is None:
            raise ValueError("give 'reference' (the teacher that labels the sample) or 'human_labels', or both")
        if self.baseline is not None and self.eval_set is not None:
            raise ValueError("give 'baseline' (a run folder, which brings its eval set) or 'eval_set', not both")
        if self.task == "classification" and not self.labels:
            raise ValueError("task 'classification' needs 'labels: [...]', the label set")
        return self

    def check_alerts(self) -> None:
        """Raises for an alert that cannot be read as written, naming its config line: checked before anything is
        read or written (`genval validate` too).

        A misspelt number (`agrement_rate`) was found only after the pass had recorded its windows, and a
        slice field the config does not slice by could never alert.
        """
        from fnmatch import fnmatchcase

        from genval.analysis.gate import describe
        from genval.errors import did_you_mean

        known = self.numbers()
        for i, rule in enumerate(self.alerts):
            at = f"{self.where('alerts', i)}: alert '{describe(rule)}'"
            if rule.non_inferiority is not None:
                raise GenvalError(f"{at}: non_inferiority needs teacher and student on the same requests' gold "
                                  "labels; use min, lower or max_regression in a monitor")
            if rule.pair is not None:
                raise GenvalError(f"{at}: a monitor's numbers have no pair (the student against the reference); "
                                  f"remove '[{rule.pair}]'")
            if known is not None and rule.metric not in known and not any(fnmatchcase(rule.metric, k) for k in known):
                raise GenvalError(f"{at}: this monitor has no number named '{rule.metric}' (it has: "
                                  f"{', '.join(sorted(known))})" + did_you_mean(rule.metric, sorted(known)))
            field = (rule.slice or "").partition("=")[0]
            if field and field not in self.slices:
                raise GenvalError(f"{at}: '{field}' is not among the config's 'slices' "
                                  f"({', '.join(self.slices) or 'none'})" + did_you_mean(field, self.slices))

    def numbers(self) -> set[str] | None:
        """Gives the names of the numbers a window of this monitor has (patterns for a metric's columns), None when
        a metric names its columns only as it runs (a plug-in)."""
        from genval.metrics import get_metric

        names = {"failure_rate", "psi:input_length", *(f"psi:{f}" for f in self.slices)}
        if self.reference is not None:
            names |= {"agreement_rate", "reference_failure_rate"}
        if self.human_labels is not None:
            names.add("accuracy")
        if self.baseline is not None or self.eval_set is not None:
            names.add("uncovered_share")
        for i, spec in enumerate(self.metrics):
            try:
                metric = get_metric(spec.name)
            except GenvalError as exc:  # a metric name no registry knows was read as valid and failed mid-pass
                raise GenvalError(f"{self.where('metrics', i)}: {exc}") from None
            # Its options checked here, with the config's line: `charorder` was read as valid and failed mid-pass.
            options = metric.parse_options(spec.options, self.where("metrics", i))
            if not metric.numbers:
                return None
            types = getattr(options, "types", None)  # rouge: the columns asked for
            names |= set(types) if types else set(metric.numbers)
        return names

    def where(self, *loc) -> str:
        """Gives `file:line` of the config key at `loc`, for an error message."""
        return where(self._source, yaml_line(self._text, loc) if self._text else None)

    @property
    def window_length(self) -> timedelta:
        match = _WINDOW.match(self.window)
        count = int(match["count"])
        return timedelta(days=count) if match["unit"] == "d" else timedelta(hours=count)

    def traffic_files(self) -> list[Path]:
        """Gives the traffic files the patterns match now, sorted, each once."""
        base = Path(self._source).resolve().parent if self._source != "<config>" else Path.cwd()
        found: dict[Path, None] = {}
        for pattern in self.traffic:
            full = pattern if Path(pattern).is_absolute() else str(base / pattern)
            for name in sorted(glob.glob(full, recursive=True)):
                if Path(name).is_file():
                    found[Path(name).resolve()] = None
        return list(found)


def load_monitor_config(path: str | Path) -> MonitorConfig:
    """Reads and validates the YAML monitor config at `path`."""
    data, text = read_yaml(path, "monitor config")
    config = parse_model(MonitorConfig, data, Path(path).resolve().parent, str(path), text, "monitor config",
                         "name, task, traffic")
    config.check_alerts()
    return config
