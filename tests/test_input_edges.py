"""Edges of the bad-input promise: file modes, a cache that cannot open, long CSV cells, the CLI's error path."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from genval.cli import main
from genval.config import load_config
from genval.errors import GenvalError
from genval.evalset import load_evalset
from genval.pipeline import prepare, run_stages
from genval.progress import Progress
from genval.redact import REDACTED, redact, redact_frame, watch


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_run_folder_files_follow_the_umask(small_run, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        assert main(["run", str(small_run), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "runs" / "small").iterdir() if p.is_file()]
    assert len(files) >= 8 and {stat.S_IMODE(p.stat().st_mode) for p in files} == {mode}


def test_a_cache_that_cannot_open_leaves_no_stage_running(small_run, tmp_path):
    config = load_config(small_run)
    run = prepare(config, tmp_path / "runs")
    config.cache = tmp_path / "a_folder"
    config.cache.mkdir()
    with pytest.raises(GenvalError, match="cannot open the request cache"):
        run_stages(run, config, Progress(quiet=True))  # past the checks, as a library caller might be
    statuses = {name: record.get("status") for name, record in run.manifest.get("stages", {}).items()}
    assert "running" not in statuses.values()


def test_a_csv_cell_longer_than_the_csv_modules_limit_is_an_example_not_an_error(tmp_path):
    long_input = "word " * 60_000  # 300 kB, past csv's default 131,072-character field limit
    pd.DataFrame({"id": ["a", "b"], "input": [long_input, "short"]}).to_csv(tmp_path / "eval.csv", index=False)
    evalset = load_evalset(tmp_path / "eval.csv", "{input}", [])
    assert evalset.examples.set_index("id").loc["a", "prompt"] == long_input


def test_a_tsv_eval_set_is_split_on_tabs(tmp_path):
    (tmp_path / "eval.tsv").write_text("id\tinput\na\tone, two\n")
    assert load_evalset(tmp_path / "eval.tsv", "{input}", []).examples["prompt"].tolist() == ["one, two"]


def test_debug_shows_the_traceback_a_plain_run_hides(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: \xff\n")
    assert main(["validate", str(bad)]) == 2
    plain = capsys.readouterr().err
    assert plain.count("\n") == 1 and "Traceback" not in plain and "bad.yaml:1: not UTF-8" in plain
    assert main(["--debug", "validate", str(bad)]) == 2
    debug = capsys.readouterr().err
    assert "Traceback" in debug and debug.strip().splitlines()[-1] == plain.strip()


def test_a_bug_is_one_line_and_exit_70_with_the_traceback_behind_debug(monkeypatch, capsys):
    import genval.cli.metrics as commands

    def broken(args):  # stands in for any command that hits a bug in genval
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(commands, "_cmd_metrics", broken)
    assert main(["metrics"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (ZeroDivisionError: division by zero)" in err and "--debug" in err
    assert main(["metrics", "--debug"]) == 70
    assert "Traceback" in capsys.readouterr().err


def test_redaction_covers_text_cells_and_leaves_other_cells(monkeypatch):
    monkeypatch.setenv("GENVAL_EDGE_KEY", "edge-secret-0123456789")
    watch(["GENVAL_EDGE_KEY"])
    frame = pd.DataFrame({"text": ["a edge-secret-0123456789 b", None, "clean"], "n": [1, 2, 3]})
    out = redact_frame(frame)
    assert out["text"][0] == f"a {REDACTED} b" and pd.isna(out["text"][1]) and out["text"][2] == "clean"
    assert out["n"].tolist() == [1, 2, 3]
    assert frame["text"][0] == "a edge-secret-0123456789 b"  # the caller's frame is not changed
    objects = pd.DataFrame({"raw": pd.Series(["edge-secret-0123456789", 5], dtype=object)})
    assert redact_frame(objects)["raw"].tolist() == [REDACTED, 5]
    assert redact("x edge-secret-0123456789") == f"x {REDACTED}" and redact(None) is None


@pytest.mark.parametrize("damage, expected", [
    (b"{not json", "summary.json:1: not valid JSON"),
    (b'["a list"]', "not a genval summary.json of schema_version"),
    (b"\xff\xfe", "summary.json:1: not UTF-8"),
])
def test_commands_on_a_run_with_a_damaged_summary_are_one_line_and_write_nothing(small_run, tmp_path, capsys, damage,
                                                                                expected):
    from tests.test_bad_inputs import _snapshot

    out = tmp_path / "runs"
    assert main(["run", str(small_run), "--out", str(out), "--quiet"]) == 0
    (out / "small" / "summary.json").write_bytes(damage)
    (tmp_path / "gate.yaml").write_text("rules: ['bleu >= 0']\n")
    before = _snapshot(out)
    for argv in (["report", str(out / "small")], ["gate", str(out / "small"), "--config", str(tmp_path / "gate.yaml")]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, (argv, err)
    assert _snapshot(out) == before


def test_a_damaged_table_is_one_line(small_run, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["run", str(small_run), "--out", str(out), "--quiet"]) == 0
    (out / "small" / "scores.parquet").write_bytes(b"PAR1 this is not parquet")
    capsys.readouterr()
    assert main(["compare", str(out / "small"), str(out / "small")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scores.parquet: not a readable Parquet table" in err
