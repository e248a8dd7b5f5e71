"""summary.json is one typed model: its exported JSON Schema, what every summary follows, one block type for the run
and each slice, numbers that know their meaning, and an unreadable or older summary never half-read."""

from __future__ import annotations

import json
import shutil

import jsonschema
import pytest

from genval import registry
from genval.analysis.stage import aggregate
from genval.cli import main
from genval.config import parse_config
from genval.errors import GenvalError
from genval.progress import Progress
from genval.summary import SCHEMA_VERSION, Block, OlderSummary, Slice, Summary, read, schema_text
from tests.conftest import ROOT
from tests.report_runs import demo_run, summarization_run
from tests.test_score_stage import make_classification_run

SCHEMA = ROOT / "docs" / "summary.schema.json"
BLOCK = tuple(Block.model_fields)
# What the run's judge block holds beyond a slice's: the primary judge against people over the whole run (calibration;
# people's agreement per slice is calibration.json's per_slice) and its mean score on its own pair, which every slice
# holds too, under judge.judges[name][pair].
RUN_ONLY = ("judge.calibration.", "judge.mean_score")


def _classification(tmp_path):
    run = make_classification_run(tmp_path)
    aggregate(run, parse_config(run.manifest["config"], run.root), Progress(quiet=True))
    return run


@pytest.fixture(scope="module")
def summarization(tmp_path_factory):
    return summarization_run(tmp_path_factory.mktemp("summaries"))


def _numbers(tree, path=""):
    """Yields the path of every number ({value, ci, n}) in a part of a summary."""
    if isinstance(tree, dict):
        if {"value", "ci", "n"} <= set(tree):
            yield path
        for key, value in tree.items():
            yield from _numbers(value, f"{path}.{key}" if path else key)


def test_the_committed_schema_is_the_one_the_models_give():
    assert SCHEMA.read_text("utf-8") == schema_text(), "regenerate: python -m genval.summary > docs/summary.schema.json"
    schema = json.loads(SCHEMA.read_text("utf-8"))
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    jsonschema.Draft202012Validator.check_schema(schema)


def _follows_the_schema(folder) -> Summary:
    text = (folder / "summary.json").read_text("utf-8")
    jsonschema.validate(json.loads(text), json.loads(SCHEMA.read_text("utf-8")))
    summary = read(folder)
    assert json.dumps(summary.dump(), indent=2, ensure_ascii=False) + "\n" == text   # the model is the whole file
    return summary


@pytest.mark.slow  # the whole demo run (tests/report_runs.demo_run)
def test_the_demos_summary_follows_the_exported_schema():
    summary = _follows_the_schema(demo_run())
    assert summary.task == "extraction" and summary.classification.labels and summary.judge.calibration.kappa


def test_a_summarization_and_a_classification_runs_summaries_follow_the_exported_schema(summarization, tmp_path):
    summary = _follows_the_schema(summarization)
    assert summary.task == "summarization" and summary.candidate("student_v2").decision.verdict == "READY"
    summary = _follows_the_schema(_classification(tmp_path).root)
    assert summary.task == "classification" and summary.classification.ece["student"].value is not None
    # a share over 1 breaks the schema, as it breaks the model
    data = json.loads((tmp_path / "runs" / "cls" / "summary.json").read_text())
    data["classification"]["errors"]["both_wrong"] = 2.0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, json.loads(SCHEMA.read_text("utf-8")))


def test_the_run_and_every_slice_hold_the_same_numbers(summarization, tmp_path):
    for summary in (read(summarization), read(_classification(tmp_path).root)):
        run = {key: value for key, value in summary.block.dump().items() if key in BLOCK}
        wanted = {path for path in _numbers(run) if not path.startswith(RUN_ONLY)}
        assert wanted and isinstance(summary.block, Block)
        for field, value, block in summary.each_slice():
            assert isinstance(block, Slice)
            assert wanted <= set(_numbers({key: v for key, v in block.dump().items() if key in BLOCK})), \
                f"{field}={value}"
            if block.judge:   # the judge's mean score on its pair: in every slice, under its pair
                assert block.judge.rates().mean_score is not None
        for path in _numbers(run):
            if path.startswith("fidelity.task_retention"):
                assert all(b.fidelity.task_retention is not None for _, _, b in summary.each_slice())


def test_every_number_knows_what_it_means(summarization, tmp_path):
    summary = read(summarization)
    assert summary.metrics["student~teacher"]["bleu"].meaning == registry.spec("bleu")
    assert summary.metrics["student~teacher"]["bleu"].meaning.digits == 2
    assert summary.fidelity.retention["rougeL"].meaning == registry.spec("rougeL_retention")
    assert summary.fidelity.task_retention.meaning == registry.spec("task_retention")
    assert summary.headline.meaning == registry.spec(summary.headline.metric.split(" (")[0])
    assert summary.slice("domain=legal").headline.meaning == summary.headline.meaning
    assert summary.generation["student"].meaning.better == "lower"
    cls = read(_classification(tmp_path).root).classification
    assert cls.ece["student"].meaning.better == "lower" and cls.accuracy_retention.meaning == registry.spec(
        "accuracy_retention")
    assert cls.student.accuracy.meaning.better == "higher" and cls.kl_teacher_student.meaning.better == "lower"


def test_a_renamed_key_is_refused_in_one_line_that_names_it(tmp_path):
    run = _classification(tmp_path)
    data = json.loads(run.path("summary.json").read_text())
    block = data["slices"]["kind"]["x"]["fidelity"]
    block["task_retention_x"] = block.pop("task_retention")
    bad = tmp_path / "renamed.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(GenvalError) as found:
        read(bad)
    said = str(found.value)
    assert "\n" not in said and said.startswith(f"{bad}: ") and "slices.kind.x.fidelity.task_retention" in said
    assert "--force aggregate" in said


def test_an_older_summary_is_re_aggregated_from_its_tables_or_refused_in_one_line(tmp_path, capsys):
    run = _classification(tmp_path)
    current = run.path("summary.json").read_text()
    older = json.loads(current)
    older["schema_version"] = SCHEMA_VERSION - 1
    older["classification"].pop("errors")            # an older genval's shape: never half-read
    run.path("summary.json").write_text(json.dumps(older))
    file = tmp_path / "older.json"
    shutil.copy(run.path("summary.json"), file)
    with pytest.raises(OlderSummary) as found:
        read(file)
    assert "\n" not in str(found.value) and f"found {SCHEMA_VERSION - 1}" in str(found.value)
    # the run folder holds its tables and config: `genval report` re-aggregates it first, and says so
    assert main(["report", str(run.root)]) == 0
    assert "re-aggregating it from the run's tables" in capsys.readouterr().err
    assert json.loads(run.path("summary.json").read_text()) == json.loads(current)
    assert run.path("report.html").exists()
    # a baseline that is an older summary.json alone cannot be re-aggregated: one line
    from genval.analysis.gate import read_baseline

    with pytest.raises(GenvalError) as found:
        read_baseline(file)
    assert str(found.value).startswith("gate.baseline: ") and "\n" not in str(found.value)
