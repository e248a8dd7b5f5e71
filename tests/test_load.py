"""`genval.load(RUN)`: a run folder's tables as pandas DataFrames and its summary as a dict."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import genval
from genval.errors import GenvalError
from tests.report_runs import demo_run


@pytest.mark.slow  # reads the whole demo run (tests/report_runs.demo_run)
def test_load_gives_every_table_and_the_summary():
    run = demo_run()
    loaded = genval.load(run)
    assert list(loaded) == ["examples", "outputs", "scores", "judgments", "labels"]
    for name in loaded:
        expected = pd.read_parquet(run / f"{name}.parquet")
        pd.testing.assert_frame_equal(loaded[name], expected)
    assert loaded.summary == json.loads((run / "summary.json").read_text())
    # the tables agree with the summary: the student's mean ROUGE-L against the teacher, from the scores
    scores = loaded["scores"]
    rouge = scores[(scores["pair"] == "student~teacher") & (scores["metric"] == "rougeL")]["value"]
    assert rouge.mean() == pytest.approx(loaded.summary["metrics"]["student~teacher"]["rougeL"]["value"])
    assert len(loaded["outputs"]) == 2 * loaded.summary["eval_set"]["n"]


def test_a_missing_table_is_absent_and_a_wrong_folder_is_a_one_line_error(small_run, tmp_path):
    folder = genval.run(small_run, out_dir=tmp_path / "runs", quiet=True)
    loaded = genval.load(folder)
    assert "labels" not in loaded and len(loaded["outputs"]) == 8     # no human labels; 4 examples × 2 roles
    with pytest.raises(KeyError, match="labels"):
        loaded["labels"]
    with pytest.raises(GenvalError):
        genval.load(tmp_path / "nowhere")
