"""genval view's JSON API, against a real server on 127.0.0.1, every answer checked against the run's own tables.

The run is the demo's (replay teacher, student and judge; its human labels), with the cheap
metrics only. Expected numbers are computed here with pandas from the Parquet tables.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from genval.cli import main
from tests.conftest import ROOT


def demo_run(folder: Path) -> Path:
    """Runs the demo config (cheap metrics only) into `folder`; gives the run folder."""
    from genval.pipeline import run_pipeline

    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    here = ROOT / "configs"
    for key in ("eval_set", "schema", "human_labels"):
        config[key] = str((here / config[key]).resolve())
    for role in config["models"].values():
        role["path"] = str((here / role["path"]).resolve())
    for judge in config["judge"]:
        judge["config"] = str((here / judge["config"]).resolve())
        judge["model"]["path"] = str((here / judge["model"]["path"]).resolve())
    config["metrics"] = ["json_valid", "schema_valid", "fields", "bleu"]
    config["analysis"]["bootstrap"] = 200
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "demo.yaml").write_text(yaml.safe_dump(config))
    return Path(run_pipeline(folder / "demo.yaml", out_dir=folder / "runs", quiet=True))


@contextmanager
def serving(app):
    """Serves `app` with uvicorn on a free 127.0.0.1 port in a thread; gives its base address."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def view_args(run: Path, **given) -> argparse.Namespace:
    defaults = dict(run=str(run), port=0, host="127.0.0.1", no_browser=True, filter=None, rate=False, annotator=None,
                    pair="student~teacher", n=200, fresh=False, judge=None, quiet=True)
    return argparse.Namespace(**{**defaults, **given})


def app_for(run: Path, **given):
    from genval.cli.view import build

    return build(view_args(run, **given))[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return demo_run(tmp_path_factory.mktemp("view"))


@pytest.fixture(scope="module")
def api(run):
    with serving(app_for(run)) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client


def _tables(run: Path):
    examples = pd.read_parquet(run / "examples.parquet")
    outputs = pd.read_parquet(run / "outputs.parquet")
    scores = pd.read_parquet(run / "scores.parquet")
    judgments = pd.read_parquet(run / "judgments.parquet")
    return examples, outputs, scores, judgments


def _score(scores, pair, metric) -> pd.Series:
    rows = scores[(scores["pair"] == pair) & (scores["metric"] == metric)]
    return rows.set_index("id")["value"].astype(float)


def _total(api, query: str) -> int:
    response = api.get(f"/api/examples?{query}&limit=5")
    assert response.status_code == 200, response.text
    return response.json()["total"]


def test_run_and_first_page_match_the_tables(api, run):
    examples, _, _, judgments = _tables(run)
    info = api.get("/api/run").json()
    assert info["n"] == len(examples) == 400
    assert {"student~teacher", "student~reference", "student"} <= set(info["pairs"])
    assert [j["judge"] for j in info["judges"]] == sorted(set(judgments["judge"]))
    assert info["slices"]["critical"] == sorted(set(examples["slice_critical"]))
    page = api.get("/api/examples?offset=3&limit=7").json()
    assert page["total"] == 400 and [i["id"] for i in page["items"]] == examples["id"].tolist()[3:10]


def test_an_example_carries_its_outputs_scores_and_judge_answer(api, run):
    _, outputs, scores, judgments = _tables(run)
    item = api.get("/api/examples/T0002").json()
    mine = outputs[outputs["id"] == "T0002"].set_index("role")
    assert {r: o["text"] for r, o in item["outputs"].items()} == mine["text"].to_dict()
    assert item["outputs"]["teacher"]["label_probs"] == json.loads(mine.loc["teacher", "label_probs"])
    bleu = _score(scores, "student~teacher", "bleu")["T0002"]
    assert item["scores"]["student~teacher"]["bleu"] == pytest.approx(bleu)
    assert item["details"]["student"]["schema_valid"].startswith("$.severity")  # why the student's output failed
    judged = judgments[judgments["id"] == "T0002"].iloc[0]
    assert item["judgments"][0]["raw"] == judged["raw"] and item["judgments"][0]["verdict"] == judged["verdict"]
    assert api.get("/api/examples/nope").status_code == 404


def test_every_filter_key_narrows_as_the_tables_say(api, run):
    examples, outputs, scores, judgments = _tables(run)
    assert _total(api, "slice=critical%3Dtrue") == int((examples["slice_critical"] == "true").sum())
    assert _total(api, "slice=rare_class%3Dlegal") == int((examples["label"] == "legal").sum())
    bleu = _score(scores, "student~teacher", "bleu")
    assert _total(api, "pair=student~teacher&metric=bleu&min=20&max=60") == int(bleu.between(20, 60).sum())
    verdicts = judgments[judgments["judge"] == "extraction_equivalence"]
    assert _total(api, "judge=extraction_equivalence&verdict=not_equivalent") == \
        int((verdicts["verdict"] == "not_equivalent").sum())
    fails = (_score(scores, "student", "json_valid") == 0) | (_score(scores, "student", "schema_valid") == 0)
    assert _total(api, "flag=format_failure") == int(fails.sum()) > 0
    only = (_score(scores, "teacher~reference", "label_correct") == 1) & \
        (_score(scores, "student~reference", "label_correct") == 0)
    assert _total(api, "flag=student_only_error") == int(only.sum()) > 0
    assert _total(api, "flag=failed") == outputs.loc[outputs["error"].notna(), "id"].nunique()
    assert _total(api, "diagnosis=weak_critical_slice") == int((examples["slice_critical"] == "true").sum())
    assert _total(api, "diagnosis=student_only_errors") == int(only.sum())
    # the diagnosis names its metric (schema_valid): the examples whose student output fails it
    assert _total(api, "diagnosis=format_failures") == int((_score(scores, "student", "schema_valid") == 0).sum()) > 0
    word = "password"
    texts = pd.concat([examples["input"], examples["reference"], outputs.groupby("id")["text"].agg(" ".join)
                       .reindex(examples["id"]).reset_index(drop=True)], axis=1).astype(str).agg(" ".join, axis=1)
    assert _total(api, f"q={word}") == int(texts.str.contains(word, case=False, regex=False).sum()) > 0


def test_sorting_by_a_score_puts_the_worst_first(api, run):
    _, _, scores, _ = _tables(run)
    bleu = _score(scores, "student~teacher", "bleu")
    expected = bleu.reset_index().sort_values(["value"], kind="stable")["id"].tolist()[:20]
    got = [i["id"] for i in api.get("/api/examples?pair=student~teacher&sort=bleu&limit=20").json()["items"]]
    assert got == expected
    desc = [i["id"] for i in api.get("/api/examples?pair=student~teacher&sort=bleu&order=desc&limit=5").json()["items"]]
    assert bleu[desc].tolist() == sorted(bleu, reverse=True)[:5]


@pytest.mark.parametrize("query, says", [("slice=nowhere%3D1", "no slice field 'nowhere'"),
                                         ("metric=nothing", "no score named 'nothing'"),
                                         ("colour=red", "unknown key 'colour'"),
                                         ("diagnosis=poor_calibration", "not among this run's diagnoses"),
                                         ("min=1", "need metric"), ("limit=ten", "not a whole number")])
def test_a_bad_filter_is_a_one_line_400(api, query, says):
    response = api.get(f"/api/examples?{query}")
    assert response.status_code == 400 and says in response.json()["error"] and "\n" not in response.json()["error"]


def test_view_refuses_a_filter_the_run_cannot_answer_before_serving(run, capsys):
    assert main(["view", str(run), "--no-browser", "--filter", "slice=region%3Db"]) == 2
    assert "no slice field 'region'" in capsys.readouterr().err


@pytest.fixture
def rated_run(run, tmp_path):
    """A copy of the module's run, so the ratings of one test do not reach another."""
    copy = tmp_path / "demo"
    shutil.copytree(run, copy)
    return copy


def test_a_rating_of_an_item_whose_output_failed_is_refused(rated_run):
    """The student's output of one example failed: calibration leaves a rating of it out of every n, so the page
    refused nothing and kept a rating no number would use. Now a one-line 400, and nothing is written."""
    outputs = pd.read_parquet(rated_run / "outputs.parquet")
    failed = outputs.loc[outputs.role == "student", "id"].iloc[5]
    outputs.loc[(outputs.role == "student") & (outputs.id == failed), ["text", "error"]] = ["", "timeout"]
    outputs.to_parquet(rated_run / "outputs.parquet", index=False)
    with serving(app_for(rated_run, rate=True, annotator="zed", n=10, fresh=True)) as base, \
            httpx.Client(base_url=base) as api:
        response = api.post("/api/labels", json={"id": failed, "annotator": "zed", "verdict": "equivalent"})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert f"'{failed}' has no student output to rate for student~teacher" in error and "\n" not in error
        ok = api.get("/api/rate/next?annotator=zed").json()["item"]["id"]
        assert ok != failed
        assert api.post("/api/labels", json={"id": ok, "annotator": "zed", "verdict": "equivalent"}).status_code == 201
    lines = (rated_run / "labels" / "zed.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [ok]


def test_rating_api_writes_good_ratings_and_refuses_bad_ones(rated_run):
    _, _, _, judgments = _tables(rated_run)
    before = json.loads((rated_run / "calibration.json").read_text())["judges"]["extraction_equivalence"]["n"]
    labels = rated_run / "labels" / "zed.jsonl"
    with serving(app_for(rated_run, rate=True, annotator="zed", n=40, fresh=True)) as base, \
            httpx.Client(base_url=base) as api:
        state = api.get("/api/rate/next?annotator=zed").json()
        assert state["progress"] == {"done": 0, "n": 40}
        assert state["scale"]["values"] == ["equivalent", "not_equivalent"]
        assert set(state["item"]) == {"id", "order", "input", "a", "b"}  # blind: no role named
        for bad, says in ((dict(id="nope", verdict="equivalent"), "no example with id 'nope'"),
                          (dict(id=state["item"]["id"], verdict="equivalnt"), "not on judge"),
                          (dict(id=state["item"]["id"], score=3), "answers with labels"),
                          (dict(id=state["item"]["id"], verdict="equivalent", colour=1), "unknown key")):
            response = api.post("/api/labels", json={"annotator": "zed", "pair": "student~teacher", **bad})
            assert response.status_code == 400 and says in response.json()["error"], response.text
        # a page on another site posting from the user's browser (it carries its own Origin) is refused
        foreign = api.post("/api/labels", json={"id": state["item"]["id"], "annotator": "zed", "verdict": "equivalent"},
                           headers={"Origin": "https://elsewhere.example"})
        assert foreign.status_code == 400 and "another site" in foreign.json()["error"]
        assert not labels.exists()  # nothing written by a refused rating
        rated = []
        for k in range(3):
            item = api.get("/api/rate/next?annotator=zed").json()["item"]
            verdict = "equivalent" if k % 2 else "not_equivalent"
            response = api.post("/api/labels", json={"id": item["id"], "annotator": "zed", "verdict": verdict,
                                                     "order": item["order"], "note": f"n{k}"})
            assert response.status_code == 201, response.text
            rated.append((item["id"], verdict))
        again = api.post("/api/labels", json={"id": rated[0][0], "annotator": "zed", "verdict": "equivalent"})
        assert again.status_code == 400 and "already rated" in again.json()["error"]
        assert api.post("/api/labels/undo", json={"annotator": "zed"}).json()["removed"]["id"] == rated[-1][0]
        assert api.get("/api/rate/next?annotator=zed").json()["progress"]["done"] == 2
    lines = [json.loads(line) for line in labels.read_text().splitlines()]
    assert [(r["id"], r["verdict"]) for r in lines] == rated[:2]
    assert all(r["annotator"] == "zed" and r["order"] in ("ab", "ba") and r["guideline"] == state["guideline_hash"]
               for r in lines)
    assert main(["calibrate", str(rated_run), "--quiet"]) == 0
    after = json.loads((rated_run / "calibration.json").read_text())["judges"]["extraction_equivalence"]["n"]
    parsed = judgments.set_index("id")["parsed"]
    assert after == before + sum(bool(parsed[i]) for i, _ in rated[:2])  # --fresh: items nobody had rated


def test_rate_sample_is_stratified_and_agreement_matches_sklearn(rated_run):
    from sklearn.metrics import cohen_kappa_score

    from genval.cli.view import build

    _, _, rating = build(view_args(rated_run, rate=True, annotator="ann_a", n=60))
    examples = pd.read_parquet(rated_run / "examples.parquet").set_index("id")
    assert len(rating.sample) == 60 and (examples.loc[rating.sample, "slice_critical"] == "true").sum() >= 30
    human = pd.read_json(ROOT / "human_labels" / "demo.jsonl", lines=True)
    assert not set(rating.sample) & set(human.loc[human["annotator"] == "ann_a", "id"])  # not rated again
    wide = human.pivot_table(index="id", columns="annotator", values="verdict", aggfunc="first")
    shared = wide[["ann_a", "ann_b"]].dropna()
    found = next(a for a in rating.state("ann_a")["agreement"] if a["annotators"] == ["ann_a", "ann_b"])
    assert found["n"] == len(shared)
    assert found["kappa"] == pytest.approx(cohen_kappa_score(shared["ann_a"], shared["ann_b"]))


def _rate_all(api, annotator: str, verdicts=("equivalent", "not_equivalent"), limit: int = 10**6) -> list:
    """Rates the annotator's next items through the API (verdicts in turn) until none is left or `limit`;
    gives (id, order) as they were shown."""
    shown = []
    while len(shown) < limit:
        item = api.get(f"/api/rate/next?annotator={annotator}").json()["item"]
        if item is None:
            break
        response = api.post("/api/labels", json={"id": item["id"], "annotator": annotator, "order": item["order"],
                                                 "verdict": verdicts[len(shown) % len(verdicts)]})
        assert response.status_code == 201, response.text
        shown.append((item["id"], item["order"]))
    return shown


def test_a_session_survives_a_server_restart_and_a_changed_setting_starts_anew(rated_run):
    from genval.cli.view import build
    from genval.errors import GenvalError

    kept = rated_run / "labels" / ".sessions" / "zed.json"
    app, _, rating = build(view_args(rated_run, rate=True, annotator="zed", n=12))
    assert rating.describe("zed") == "new session of 12 items (no earlier session)"
    session = json.loads(kept.read_text())
    assert session["ids"] == rating.sample and len(session["orders"]) == 12 and session["n"] == 12
    assert (session["pair"], session["guideline"]) == ("student~teacher", rating.guideline_hash)
    with serving(app) as base, httpx.Client(base_url=base) as api:
        first = _rate_all(api, "zed", limit=5)
    assert first == list(zip(session["ids"], session["orders"]))[:5]
    # the rest's A/B orders as kept, flipped: a resumed session must show the file's orders, not draw them again
    session["orders"][5:] = ["ab" if o == "ba" else "ba" for o in session["orders"][5:]]
    kept.write_text(json.dumps(session))
    app, _, rating = build(view_args(rated_run, rate=True, annotator="zed", n=12))  # the server restarted
    assert rating.describe("zed") == f"resumed the session started {session['started']}: 5 of 12 rated, 7 to go"
    redrawn = rating._draw(12, {i for i, _ in first})  # what drawing again would have given: another batch
    assert set(redrawn) - set(session["ids"])
    with serving(app) as base, httpx.Client(base_url=base) as api:
        assert api.get("/api/rate/next?annotator=zed").json()["session"]["resumed"] is True
        rest = _rate_all(api, "zed")
        assert api.get("/api/rate/next?annotator=zed").json()["progress"] == {"done": 12, "n": 12}
    assert rest == list(zip(session["ids"], session["orders"]))[5:]
    rated = {i for i, _ in first + rest}
    # a session all rated, another --n, --fresh, a changed guideline: each starts a new session and says why
    _, _, rating = build(view_args(rated_run, rate=True, annotator="zed", n=12))
    assert rating.describe("zed") == "new session of 12 items (the last session's 12 items are all rated)"
    assert not set(rating.sample) & rated
    _, _, rating = build(view_args(rated_run, rate=True, annotator="zed", n=15))
    assert rating.describe("zed") == "new session of 15 items (--n changed from the last session (12 -> 15))"
    _, _, rating = build(view_args(rated_run, rate=True, annotator="zed", n=15, fresh=True))
    assert rating.describe("zed") == "new session of 15 items (--fresh)"
    session = json.loads(kept.read_text())
    kept.write_text(json.dumps({**session, "guideline": "sha256:0"}))
    _, _, rating = build(view_args(rated_run, rate=True, annotator="zed", n=15))
    assert "the guideline changed" in rating.describe("zed") and json.loads(kept.read_text())["ids"] == rating.sample
    kept.write_text("{not json")
    with pytest.raises(GenvalError, match=f"{kept}: not a rating session .* delete it or start with --fresh"):
        build(view_args(rated_run, rate=True, annotator="zed", n=15))


def test_rate_page_counts_every_annotator_and_their_kappa_matches_sklearn(rated_run):
    from sklearn.metrics import cohen_kappa_score

    p_says = ["equivalent", "equivalent", "not_equivalent", "not_equivalent", "equivalent", "not_equivalent"]
    q_says = ["equivalent", "not_equivalent", "not_equivalent", "not_equivalent", "equivalent", "equivalent"]
    with serving(app_for(rated_run, rate=True, annotator="p", n=6)) as base, httpx.Client(base_url=base) as api:
        p_items = _rate_all(api, "p", p_says)
        q_items = _rate_all(api, "q", q_says, limit=4)  # q's own session, drawn when q first asks: the same six items
        state = api.get("/api/rate/next?annotator=q").json()
    assert [i for i, _ in q_items] == [i for i, _ in p_items][:4] and state["progress"] == {"done": 4, "n": 6}
    human = pd.read_json(ROOT / "human_labels" / "demo.jsonl", lines=True)
    counts = human[human["pair"] == "student~teacher"].groupby("annotator")["id"].nunique().to_dict()
    assert {a["annotator"]: a["rated"] for a in state["annotators"]} == {**counts, "p": 6, "q": 4}
    both = next(a for a in state["agreement"] if a["annotators"] == ["p", "q"])
    assert both["n"] == 4 and both["kappa"] == pytest.approx(cohen_kappa_score(p_says[:4], q_says[:4]))
    assert both["agreement"] == pytest.approx(sum(a == b for a, b in zip(p_says, q_says[:4])) / 4)


def test_sample_excludes_labelled_items_and_states_the_scale(run, tmp_path):
    human = pd.read_json(ROOT / "human_labels" / "demo.jsonl", lines=True)
    rated = set(human["id"])
    assert main(["sample", str(run), "--n", "120", "--to", str(tmp_path / "all.csv")]) == 0
    assert main(["sample", str(run), "--n", "120", "--exclude-labelled", "--to", str(tmp_path / "new.csv")]) == 0
    everything, fresh = pd.read_csv(tmp_path / "all.csv"), pd.read_csv(tmp_path / "new.csv")
    assert set(everything["id"]) & rated and not set(fresh["id"]) & rated and len(fresh) == 120
    assert set(fresh["scale"]) == {"verdict: equivalent | not_equivalent"}


def test_labels_refuses_a_verdict_off_the_judge_scale_by_line(tmp_path, capsys):
    source = tmp_path / "ratings.jsonl"
    source.write_text('{"id": "a", "pair": "student~teacher", "annotator": "p", "verdict": "equivalent"}\n'
                      '{"id": "b", "pair": "student~teacher", "annotator": "p", "verdict": "equivalnt"}\n')
    judge = ROOT / "judges" / "equivalence.yaml"
    assert main(["labels", str(source), str(tmp_path / "out.csv"), "--judge", str(judge)]) == 2
    assert f"{source}:2: verdict 'equivalnt' is not on judge 'equivalence''s scale" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()
    assert main(["labels", str(source), str(tmp_path / "out.csv")]) == 0  # without a judge, no scale to check
    assert "checked against no scale: the file states none" in capsys.readouterr().out


@pytest.mark.parametrize("judge", sorted((ROOT / "judges").glob("*.yaml")), ids=lambda p: p.stem)
def test_a_stated_scale_reads_back_as_the_judge_file_has_it(judge):
    from genval.judging.definition import load_definition
    from genval.judging.sampling import scale_text, stated_scale

    scale = load_definition(judge).scale
    back = stated_scale(scale_text(scale), "sheet.csv:2")
    assert (back.kind == "ordinal", back.labels, back.min, back.max) == \
        (scale.kind == "ordinal", list(scale.labels), scale.min, scale.max)


def test_labels_without_a_judge_holds_each_row_to_the_scale_its_sheet_states(run, tmp_path, capsys):
    sheet, fixed = tmp_path / "sheet.jsonl", tmp_path / "fixed.csv"
    assert main(["sample", str(run), "--n", "6", "--to", str(sheet)]) == 0
    rows = pd.read_json(sheet, lines=True, dtype=False)
    rows["annotator"] = "p"
    rows["verdict"] = ["equivalent", "not_equivalent", "equivalent", "equivalnt", "equivalent", "not_equivalent"]
    rows.to_json(sheet, orient="records", lines=True, force_ascii=False)
    capsys.readouterr()
    assert main(["labels", str(sheet), str(tmp_path / "out.csv")]) == 2
    assert f"{sheet}:4: verdict 'equivalnt' is off the scale the row states (verdict: equivalent | " \
        "not_equivalent); give one of equivalent, not_equivalent" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()
    assert main(["labels", str(sheet), str(tmp_path / "out.csv"), "--run", str(run)]) == 2  # the run's judges
    assert f"{sheet}:4: verdict 'equivalnt' is not on judge 'extraction_equivalence''s scale" in capsys.readouterr().err
    rows.loc[3, "verdict"] = "not_equivalent"
    rows.to_csv(fixed, index=False)
    assert main(["labels", str(fixed), str(tmp_path / "out.jsonl")]) == 0
    assert "6 ratings, checked against the scale each row states" in capsys.readouterr().out
    assert pd.read_json(tmp_path / "out.jsonl", lines=True)["verdict"].tolist() == rows["verdict"].tolist()
    ordinal = tmp_path / "scores.csv"  # a score sheet: a score off its range, or a verdict, named by line
    ordinal.write_text("id,pair,annotator,verdict,score,scale\n"
                       "a,student~teacher,p,,4,score 1..5 (1: poor; 5: faithful)\n"
                       "b,student~teacher,p,,9,score 1..5 (1: poor; 5: faithful)\n")
    assert main(["labels", str(ordinal), str(tmp_path / "o.jsonl")]) == 2
    assert f"{ordinal}:3: score 9 is off the scale the row states" in capsys.readouterr().err
    ordinal.write_text(ordinal.read_text().replace(",,9,", ",good,,"))
    assert main(["labels", str(ordinal), str(tmp_path / "o.jsonl")]) == 2
    assert f"{ordinal}:3: a verdict ('good') where the scale" in capsys.readouterr().err
