"""Backend parity: the same checkpoint through hf and (the stand-in) vLLM as teacher and student, gated by the
`parity` preset: label flips with McNemar, label-probability KL, token agreement and KL."""

from __future__ import annotations


import numpy as np
import pytest
from scipy.stats import binomtest

from genval.analysis.gate import evaluate, mcnemar
from genval.cli import main
from genval.config import GateConfig
from genval.errors import GenvalError
from genval.presets import GATE_PRESETS
from tests.conftest import ROOT, write_jsonl, write_yaml


def test_the_preset_puts_its_rules_first_and_a_rule_of_ones_own_replaces_its():
    gate = GateConfig.model_validate({"preset": "parity", "rules": ["token_kl <= 0.05", "accuracy >= 0.5"]})
    described = [(r.metric, r.min, r.max, r.lower) for r in gate.rules]
    assert described == [("agreement_rate", None, None, 0.98), ("mcnemar_p", 0.05, None, None),
                         ("kl_teacher_student", None, 0.01, None), ("token_agreement", None, None, 0.98),
                         ("token_kl", None, 0.05, None), ("accuracy", 0.5, None, None)]
    assert len(gate.rules) == len(GATE_PRESETS["parity"]) + 1


def test_an_unknown_preset_is_a_one_line_error(tmp_path):
    from genval.config import validated

    with pytest.raises(GenvalError, match="preset"):
        validated(GateConfig, {"preset": "parody"}, "gate.yaml")


def _classification(n: int, only_student_wrong: float, only_teacher_wrong: float):
    """A typed classification block with what McNemar's test reads: the student's accuracy n and the error shares."""
    from genval.summary import Classification, Number, RoleFigures
    from genval.summary.block import ErrorShares

    return Classification.model_construct(
        student=RoleFigures.model_construct(accuracy=Number(value=0.8, ci=[None, None], n=n)),
        errors=ErrorShares.model_construct(only_student_wrong=only_student_wrong,
                                           only_teacher_wrong=only_teacher_wrong))


def test_mcnemar_p_is_the_exact_binomial_test_of_the_discordant_examples():
    from genval.summary import Settings, Summary

    n = 200
    found = mcnemar(_classification(n, 12 / n, 3 / n))
    assert found["n"] == 15
    assert found["value"] == pytest.approx(binomtest(3, 15, 0.5).pvalue)
    assert found["value"] < 0.05  # 12 against 3: one engine loses labels the other keeps
    same = mcnemar(_classification(n, 0.0, 0.0))
    assert same["value"] == 1.0 and same["n"] == 0
    summary = Summary.model_construct(classification=_classification(n, 12 / n, 3 / n),
                                      settings=Settings.model_construct(confidence=0.95))   # what the gate reads
    result = evaluate(GateConfig(rules=["mcnemar_p >= 0.05"]), summary, None)
    assert not result["passed"] and "mcnemar_p" in result["failing"][0]



LABELS = ["positive", "negative", "neutral"]


def parity_config(tmp_path, model, **gate) -> dict:
    rng = np.random.default_rng(0)
    words = ["the cat sat", "dogs bark at night", "rain falls in spring", "the sun is hot", "billing shipping"]
    write_jsonl(tmp_path / "eval.jsonl", [{"id": f"e{i}", "input": words[i % 5], "label": LABELS[int(rng.integers(3))]}
                                          for i in range(200)])
    return {"name": "parity", "task": "classification", "eval_set": "eval.jsonl", "labels": LABELS,
            "prompt": "{input}", "metrics": ["token_fidelity"], "generation": {"max_tokens": 6},
            "models": {"teacher": {"backend": "hf", "model": str(model), "device": "cpu"},
                       "student": {"backend": "vllm", "model": str(model)}},
            "analysis": {"bootstrap": 200}, "gate": {"preset": "parity", **gate}}


def test_one_checkpoint_through_hf_and_vllm_passes_the_parity_gate(fake_vllm, tiny, tmp_path):
    from genval.models import forced
    from genval.pipeline import run_pipeline
    from genval.runfolder import Run

    write_yaml(tmp_path / "parity.yaml", parity_config(tmp_path, tiny))
    forced.release()
    run = Run(run_pipeline(tmp_path / "parity.yaml", out_dir=tmp_path / "runs", quiet=True))
    forced.release()
    summary = run.read_json("summary.json")
    cls = summary["classification"]
    # The stand-in's label scores are the tiny model's own forward pass, so the engines agree to rounding.
    assert cls["agreement_rate"]["value"] == 1.0 and cls["kl_teacher_student"]["value"] < 1e-6
    pair = summary["metrics"]["student~teacher"]
    assert pair["token_agreement"]["value"] == 1.0 and pair["token_kl"]["value"] < 1e-6
    assert "top-20 approximation" in run.read_json("metrics.json")["settings"]["token_kl"]
    rules = {r["metric"]: r for r in summary["gate"]["rules"]}
    assert set(rules) == {"agreement_rate", "mcnemar_p", "kl_teacher_student", "token_agreement", "token_kl"}
    assert rules["mcnemar_p"]["value"] == 1.0 and summary["gate"]["passed"], summary["gate"]["failing"]


def test_the_preset_needs_labels_and_token_fidelity(fake_vllm, tmp_path, tiny, capsys):
    data = parity_config(tmp_path, tiny)
    data["metrics"] = ["chrf"]
    write_yaml(tmp_path / "parity.yaml", data)
    code = main(["validate", str(tmp_path / "parity.yaml")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "preset 'parity'" in err[0] and "token_fidelity" in err[0]
    assert "parity.yaml:" in err[0]


def test_the_documented_parity_config_is_valid():
    from genval.config import load_config
    from genval.presets import GATE_PRESETS

    config = load_config(ROOT / "configs" / "parity.yaml")
    assert config.gate.preset == "parity" and len(config.gate.rules) >= len(GATE_PRESETS["parity"])
    assert {config.models["teacher"].backend, config.models["student"].backend} == {"hf", "vllm"}
    assert config.models["teacher"].model == config.models["student"].model
