"""A checkpoint retrained in place is another model: a re-run generates again instead of keeping stale outputs.

Before, the generate stage's input hash held an hf model's path only, so retraining the model at the
same path and running the config again skipped every stage and reported the old model's numbers.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from genval.pipeline import run_pipeline  # noqa: E402
from genval.runfolder import Run  # noqa: E402
from tests.conftest import write_jsonl, write_yaml  # noqa: E402
from tests.tiny_models import build_tiny_model  # noqa: E402


def test_a_retrained_checkpoint_is_generated_again(tmp_path):
    build_tiny_model(tmp_path / "teacher", seed=0)
    build_tiny_model(tmp_path / "student", seed=1)
    write_jsonl(tmp_path / "eval.jsonl", [{"id": f"e{i}", "input": t, "reference": "the cat"}
                                          for i, t in enumerate(["the cat sat", "dogs bark", "rain falls"])])
    write_yaml(tmp_path / "run.yaml", {
        "name": "r", "task": "generation", "eval_set": "eval.jsonl", "prompt": "{input}",
        "models": {"teacher": {"backend": "hf", "model": str(tmp_path / "teacher"), "device": "cpu"},
                   "student": {"backend": "hf", "model": str(tmp_path / "student"), "device": "cpu"}},
        "generation": {"max_tokens": 8}, "metrics": ["chrf"], "analysis": {"bootstrap": 100}})
    run = Run(run_pipeline(tmp_path / "run.yaml", out_dir=tmp_path / "runs", quiet=True))
    before = run.read_table("outputs")
    build_tiny_model(tmp_path / "student", seed=2)  # retrained: same path, other weights
    run = Run(run_pipeline(tmp_path / "run.yaml", out_dir=tmp_path / "runs", quiet=True))
    after = run.read_table("outputs")
    student = [frame[frame["role"] == "student"]["text"].tolist() for frame in (before, after)]
    teacher = [frame[frame["role"] == "teacher"]["text"].tolist() for frame in (before, after)]
    assert student[0] != student[1] and teacher[0] == teacher[1]
    assert run.manifest["stages"]["generate"]["model_calls"] == 3  # the student's; the teacher's are cached


def test_a_relative_model_folder_is_read_from_the_config_folder(tmp_path, monkeypatch):
    """`model: ../models/student` beside `eval_set: ../data/eval.jsonl` names a folder from the config's folder,
    as every other path of a config does; before, it was read from wherever genval was started."""
    from genval.config import load_config

    (tmp_path / "configs").mkdir()
    (tmp_path / "models" / "student").mkdir(parents=True)
    write_yaml(tmp_path / "configs" / "run.yaml", {
        "name": "r", "task": "generation", "eval_set": "../eval.jsonl", "prompt": "{input}",
        "models": {"teacher": {"backend": "hf", "model": "org/teacher"},
                   "student": {"backend": "vllm", "model": "../models/student"}}})
    monkeypatch.chdir(tmp_path / "models")
    config = load_config(tmp_path / "configs" / "run.yaml")
    assert config.models["student"].model == str((tmp_path / "models" / "student").resolve())
    assert config.models["teacher"].model == "org/teacher"  # a hub id stays as written
