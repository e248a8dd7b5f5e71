"""token_kl and token_agreement through a whole run: the scores table, summary.json per slice, the report,
compare, the gate and the number registry — the generic paths every metric takes."""

from __future__ import annotations

import os

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch")

from genval import registry  # noqa: E402
from genval.analysis.compare import compare_runs  # noqa: E402
from genval.cli import main  # noqa: E402
from genval.models import forced  # noqa: E402
from genval.pipeline import run_pipeline  # noqa: E402
from genval.runfolder import Run  # noqa: E402
from tests.conftest import write_jsonl, write_yaml  # noqa: E402
from tests.test_token_fidelity import direct  # noqa: E402
from tests.tiny_models import build_tiny_model  # noqa: E402

INPUTS = ["the cat sat", "dogs bark at", "rain falls in", "summarise the ticket", "billing shipping",
          "the student model", "the sun is", "answer with one", "read the support ticket", "the teacher model"]


def config(root, student, name: str, rules=None) -> dict:
    data = {"name": name, "task": "generation", "eval_set": "eval.jsonl", "prompt": "{input}",
            "models": {"teacher": {"backend": "hf", "model": str(root / "teacher"), "device": "cpu"},
                       "student": {"backend": "hf", "model": str(student), "device": "cpu"}},
            "generation": {"max_tokens": 6}, "metrics": ["token_fidelity"], "slices": ["kind"],
            "analysis": {"bootstrap": 200}}
    if rules:
        data["gate"] = {"rules": rules}
    return data


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs on one eval set: a student of other weights (A), and the teacher itself as its student (B)."""
    root = tmp_path_factory.mktemp("flow")
    build_tiny_model(root / "teacher", seed=0)
    build_tiny_model(root / "student", seed=1)
    write_jsonl(root / "eval.jsonl", [{"id": f"e{i}", "input": text, "slices": {"kind": "ab"[i % 2]}}
                                      for i, text in enumerate(INPUTS * 2)])
    write_yaml(root / "a.yaml", config(root, root / "student", "a", ["token_kl <= 0.5", "token_agreement >= 0.0"]))
    write_yaml(root / "b.yaml", config(root, root / "teacher", "b", ["token_kl <= 0.5"]))
    forced.release()
    a = run_pipeline(root / "a.yaml", out_dir=root / "runs", quiet=True)
    b = run_pipeline(root / "b.yaml", out_dir=root / "runs", quiet=True)
    forced.release()
    return root, Run(a), Run(b)


def test_the_scores_table_holds_each_examples_numbers(runs):
    root, a, _ = runs
    scores = a.read_table("scores")
    outputs = a.read_table("outputs")
    teacher = outputs[outputs["role"] == "teacher"].set_index("id")["text"]
    examples = a.read_table("examples").set_index("id")
    kl = scores[scores["metric"] == "token_kl"].set_index("id")
    agreement = scores[scores["metric"] == "token_agreement"].set_index("id")
    assert set(kl["pair"]) == {"student~teacher"} and len(kl) == len(examples)
    for ident in examples.index[:4]:
        want_kl, want_share, count = direct(root / "teacher", root / "student", examples.loc[ident, "prompt"],
                                            teacher[ident])
        assert kl.loc[ident, "value"] == pytest.approx(want_kl, abs=1e-5)
        assert agreement.loc[ident, "value"] == want_share
        assert kl.loc[ident, "detail"] == f"{count} tokens"


def test_summary_has_them_per_slice_with_n_and_intervals(runs):
    _, a, _ = runs
    summary = a.read_json("summary.json")
    scores = a.read_table("scores")
    values = scores[scores["metric"] == "token_kl"].set_index("id")["value"].astype(float)
    kinds = a.read_table("examples").set_index("id")["slice_kind"].reindex(values.index)
    found = summary["metrics"]["student~teacher"]["token_kl"]
    assert found["value"] == pytest.approx(values.mean()) and found["n"] == len(values)
    assert found["ci"][0] <= found["value"] <= found["ci"][1]
    for kind in ("a", "b"):
        block = summary["slices"]["kind"][kind]["metrics"]["student~teacher"]
        assert block["token_kl"]["n"] == len(values) // 2 and block["token_agreement"]["ci"] is not None
        assert block["token_kl"]["value"] == pytest.approx(values[kinds == kind].mean())


def test_the_registry_knows_their_directions():
    assert registry.better("token_kl") == "lower" and registry.worst("token_kl") is None
    assert registry.better("token_agreement") == "higher" and registry.worst("token_agreement") == 0.0


def test_the_gate_reads_them_in_their_direction(runs):
    _, a, b = runs
    gate_a, gate_b = a.read_json("summary.json")["gate"], b.read_json("summary.json")["gate"]
    kl_a = a.read_json("summary.json")["metrics"]["student~teacher"]["token_kl"]["value"]
    rule_a = next(r for r in gate_a["rules"] if r["metric"] == "token_kl")
    assert rule_a["passed"] == (kl_a <= 0.5) and rule_a["value"] == kl_a
    assert kl_a > 0.5  # two different tiny models: the rule fails, as it should
    assert next(r for r in gate_b["rules"] if r["metric"] == "token_kl")["passed"]  # the teacher against itself


def test_the_report_shows_them(runs):
    _, a, _ = runs
    text = a.path("report.md").read_text(encoding="utf-8")
    assert "token_kl" in text and "token_agreement" in text


def test_compare_sees_the_change_in_its_direction(runs):
    _, a, b = runs
    result = compare_runs(a.root, b.root)
    improved = {(r["metric"], r["slice"]) for r in result["improved"]}
    assert ("token_kl", None) in improved  # from the other weights' KL down to the teacher's own 0


def test_a_replay_student_is_refused_before_anything_is_written(tmp_path, capsys):
    write_jsonl(tmp_path / "eval.jsonl", [{"id": "a", "input": "x", "kind": "a"}])
    write_jsonl(tmp_path / "s.jsonl", [{"id": "a", "text": "y"}])
    data = config(tmp_path, tmp_path, "r")
    data["models"]["teacher"] = {"backend": "hf", "model": "some/model"}
    data["models"]["student"] = {"backend": "replay", "path": "s.jsonl"}
    write_yaml(tmp_path / "run.yaml", data)
    code = main(["run", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "replay file, which holds no model" in err[0] and "run.yaml:" in err[0]
    assert not (tmp_path / "runs").exists()


def test_models_are_an_input_of_the_score_stage_only_with_token_fidelity(tmp_path, runs):
    from genval.config import parse_config
    from genval.pipeline import STAGES

    root, _, _ = runs
    score = next(s for s in STAGES if s.name == "score")
    with_tokens = parse_config(config(root, root / "student", "x"), root)
    other = parse_config({**config(root, root / "student", "x"), "metrics": ["bleu"]}, root)
    assert "models" in score.config_key(with_tokens) and "models" not in score.config_key(other)
    assert pd.notna(score.config_key(with_tokens)["models"]["student"]["model"])


def test_the_candidates_table_gives_each_candidates_token_fidelity(runs):
    """docs/distillation.md reads token KL and agreement per student off the candidates table: both reports give
    each candidate's own mean of its scores rows (the metrics table shows the student's pair only)."""
    import html
    import re

    root, _, _ = runs
    data = config(root, root / "student", "c")
    data["models"]["student_v2"] = {"backend": "hf", "model": str(root / "teacher"), "device": "cpu"}
    write_yaml(root / "c.yaml", data)
    forced.release()
    c = Run(run_pipeline(root / "c.yaml", out_dir=root / "runs", quiet=True))
    forced.release()
    scores = c.read_table("scores")
    means = scores.groupby(["pair", "metric"])["value"].mean()
    md = c.path("report.md").read_text(encoding="utf-8")
    table = md[md.index("### Candidates against the teacher"):].split("\n\n")[1].splitlines()
    head = [h.strip() for h in table[0].strip("|").split("|")]
    assert "token_kl" in head and "token_agreement" in head and "task: None" not in head
    page = html.unescape(c.path("report.html").read_text(encoding="utf-8"))
    section = page[page.index('id="candidates"'):page.index("</table>", page.index('id="candidates"'))]
    assert ">token_kl<" in section and ">token_agreement<" in section
    for role in ("student", "student_v2"):
        row = next(r for r in table[2:] if r.startswith(f"| {role} |"))
        cells = dict(zip(head, (x.strip() for x in row.strip("|").split("|"))))
        for metric in ("token_kl", "token_agreement"):
            shown = float(cells[metric].split(" ")[0])
            assert shown == pytest.approx(means[(f"{role}~teacher", metric)], abs=5e-4)
        html_row = re.search(rf"<tr><td[^>]*>{role}</td>(.*?)</tr>", section).group(1)
        assert cells["token_agreement"].split(" ")[0] in html_row
    assert float(next(r for r in table[2:] if r.startswith("| student_v2 |")).split("|")[
        head.index("token_agreement") + 1].split()[0]) == 1.0  # the teacher as its own student agrees everywhere


def test_a_kl_of_zero_everywhere_gets_no_share_interval(runs):
    """The teacher as its own student: token_kl is 0 on every example. A KL in nats is no share, so Wilson's
    interval of 0 successes in n (upper end 3.84 / (n + 3.84)) would be made up; a bootstrap of no spread gives no
    interval and says why. token_agreement (1 everywhere) is a share and keeps Wilson's."""
    _, _, b = runs
    summary = b.read_json("summary.json")
    values = b.read_table("scores")
    assert (values[values["metric"] == "token_kl"]["value"].abs() < 1e-6).all()
    for block in [summary["metrics"]["student~teacher"],
                  *(s["metrics"]["student~teacher"] for s in summary["slices"]["kind"].values())]:
        kl = block["token_kl"]
        assert "Wilson" not in kl["method"] and kl["ci"] == [None, None] and "no interval" in kl["note"]
        n = block["token_agreement"]["n"]
        assert block["token_agreement"]["ci"][0] == pytest.approx(n / (n + 1.959963984540054 ** 2))
