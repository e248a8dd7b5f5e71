"""The run config: validated at the edge, unknown keys and wrong types named with their line."""

from pathlib import Path

import pytest

from genval.config import HFModel, ReplayModel, load_config
from genval.errors import GenvalError

from tests.conftest import write_yaml

BASE = {
    "name": "t", "task": "summarization", "eval_set": "eval.jsonl", "prompt": "{input}",
    "models": {"teacher": {"backend": "replay", "path": "t.jsonl"}, "student": {"backend": "replay", "path": "s.jsonl"}},
}


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    sub = tmp_path / "cfg"
    sub.mkdir()
    config = load_config(write_yaml(sub / "run.yaml", {**BASE, "human_labels": "../labels.jsonl"}))
    assert config.eval_set == (sub / "eval.jsonl").resolve()
    assert config.human_labels == (tmp_path / "labels.jsonl").resolve()
    assert isinstance(config.models["teacher"], ReplayModel)
    assert config.models["teacher"].path == (sub / "t.jsonl").resolve()


def test_backend_picks_the_model_type(tmp_path):
    data = {**BASE, "models": {**BASE["models"], "student": {"backend": "hf", "model": "some/model", "batch_size": 4}}}
    config = load_config(write_yaml(tmp_path / "run.yaml", data))
    assert isinstance(config.models["student"], HFModel)
    assert config.models["student"].batch_size == 4
    assert config.roles == ["teacher", "student"]


def test_unknown_key_is_named_with_its_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "name: t\ntask: summarization\neval_set: e.jsonl\nprompt: '{input}'\n"
        "models:\n  teacher: {backend: replay, path: t.jsonl}\n  student: {backend: replay, path: s.jsonl, colour: red}\n"
    )
    with pytest.raises(GenvalError) as err:
        load_config(path)
    message = str(err.value)
    assert f"{path}:7" in message and "models.student.colour" in message and "unknown key" in message
    assert "\n" not in message


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(GenvalError, match=r"run.yaml:\d+: unknown key 'metricz'"):
        load_config(write_yaml(tmp_path / "run.yaml", {**BASE, "metricz": ["bleu"]}))


def test_wrong_type_is_named(tmp_path):
    data = {**BASE, "generation": {"max_tokens": "many"}}
    with pytest.raises(GenvalError, match=r"'generation.max_tokens'"):
        load_config(write_yaml(tmp_path / "run.yaml", data))


def test_task_and_missing_student(tmp_path):
    with pytest.raises(GenvalError, match="task"):
        load_config(write_yaml(tmp_path / "a.yaml", {**BASE, "task": "translation"}))
    with pytest.raises(GenvalError, match="student"):
        load_config(write_yaml(tmp_path / "b.yaml", {**BASE, "models": {"teacher": BASE["models"]["teacher"]}}))
    with pytest.raises(GenvalError, match="labels"):
        load_config(write_yaml(tmp_path / "c.yaml", {**BASE, "task": "classification"}))


def test_missing_config_file_and_bad_yaml(tmp_path):
    with pytest.raises(GenvalError, match="no such config file"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\nmodels: [unclosed\n")
    with pytest.raises(GenvalError, match=r"bad.yaml:\d+"):
        load_config(bad)


def test_metric_entries_take_options(tmp_path):
    data = {**BASE, "metrics": ["bleu", {"name": "rouge", "stemmer": False}]}
    config = load_config(write_yaml(tmp_path / "run.yaml", data))
    assert [m.name for m in config.metric_specs] == ["bleu", "rouge"]
    assert config.metric_specs[1].options == {"stemmer": False}


CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_are_valid_and_name_shipped_judges(path):
    from genval.judging.definition import load_definition

    config = load_config(path)
    assert config.name == path.stem
    for ref in config.judge:
        assert load_definition(ref.config).name
    if config.gate:
        assert config.gate.rules
