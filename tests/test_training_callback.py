"""GenvalCallback inside a real transformers Trainer: a tiny student trained two epochs, evaluated each epoch."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
pytestmark = pytest.mark.slow  # trains tiny models for epochs with an evaluation at each
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments  # noqa: E402

from genval.errors import GenvalError  # noqa: E402
from genval.models import forced  # noqa: E402
from genval.training import GenvalCallback  # noqa: E402
from tests.conftest import write_jsonl, write_yaml  # noqa: E402
from tests.tiny_models import SENTENCES, build_tiny_model  # noqa: E402

PROMPTS = ["the cat sat", "dogs bark at", "rain falls in", "summarise the ticket", "the student model", "billing"]


class Texts(torch.utils.data.Dataset):
    """Causal-LM examples: each sentence's ids as input and label (no padding: batches of equal length)."""

    def __init__(self, tokenizer, texts):
        ids = [tokenizer(t)["input_ids"][:8] for t in texts]
        self.rows = [r for r in ids if len(r) == 8]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        ids = torch.tensor(self.rows[i])
        return {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids)}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    build_tiny_model(root / "teacher", seed=0)
    build_tiny_model(root / "student", seed=1)
    write_jsonl(root / "eval.jsonl", [{"id": f"e{i}", "input": p, "reference": "the cat sat on the mat"}
                                      for i, p in enumerate(PROMPTS)])
    return root


def write_config(root, name: str, temperature: float = 0.0, **extra) -> str:
    data = {"name": name, "task": "generation", "eval_set": str(root / "eval.jsonl"), "prompt": "{input}",
            "models": {"teacher": {"backend": "hf", "model": str(root / "teacher"), "device": "cpu"},
                       "student": {"backend": "hf", "model": "trained-in-memory", "device": "cpu", "batch_size": 3}},
            "generation": {"max_tokens": 6, "temperature": temperature, "seed": 1},
            "metrics": ["token_fidelity", "bleu"], "analysis": {"bootstrap": 100},
            "gate": {"rules": ["token_kl <= 0.5", "bleu >= 0"]}, **extra}
    return str(write_yaml(root / f"{name}.yaml", data))


def trainer_for(root, out, callback=None):
    tokenizer = AutoTokenizer.from_pretrained(root / "student")
    # Dropout draws from torch's global random state at every training step, so a test can see it moved.
    model = AutoModelForCausalLM.from_pretrained(root / "student", attention_dropout=0.3)
    args = TrainingArguments(output_dir=str(out), num_train_epochs=2, per_device_train_batch_size=2,
                             learning_rate=5e-3, report_to=[], save_strategy="no", logging_strategy="no", seed=3,
                             use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=Texts(tokenizer, SENTENCES), processing_class=tokenizer)
    if callback is not None:
        callback.attach(trainer)
    return trainer


@pytest.fixture(scope="module")
def trained(setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    forced.release()
    callback = GenvalCallback(write_config(setup, "tiny"), every="epoch", out=out / "runs", quiet=True)
    trainer = trainer_for(setup, out / "trainer", callback)
    trainer.train()
    forced.release()
    return out, trainer, callback


def test_each_epoch_writes_a_step_folder_whose_numbers_are_in_the_logs(trained):
    out, trainer, callback = trained
    steps = [s.step for s in callback.steps]
    per_epoch = trainer.state.max_steps // 2
    assert steps == [per_epoch, 2 * per_epoch]
    logged = [e for e in trainer.state.log_history if any(k.startswith("genval/") for k in e)]
    assert [e["step"] for e in logged] == steps
    for entry, step in zip(logged, steps):
        summary = json.loads((out / "runs" / "tiny" / f"step-{step}" / "summary.json").read_text())
        pair = summary["metrics"]["student~teacher"]
        assert entry["genval/metrics/student_vs_teacher/token_kl"] == pair["token_kl"]["value"]
        assert entry["genval/metrics/student_vs_teacher/token_kl.ci_low"] == pair["token_kl"]["ci"][0]
        assert entry["genval/metrics/student_vs_teacher/token_agreement"] == pair["token_agreement"]["value"]
        bleu = summary["metrics"]["student~reference"]["bleu"]
        assert entry["genval/metrics/student_vs_reference/bleu"] == bleu["value"]
        assert entry["genval/metrics/student_vs_reference/bleu.n"] == bleu["n"] == len(PROMPTS)
        retention = summary["fidelity"]["task_retention"]
        assert entry["genval/headline/task_retention"] == retention["value"]
        assert entry["genval/gate_passed"] == float(summary["gate"]["passed"])
        assert entry["genval/ready"] == float(summary["decision"]["verdict"] == "READY")
        # every number of the step's pairs is there, and nothing that is not a number of the step
        names = {f"genval/metrics/{p.replace('~', '_vs_')}/{m}" for p, ms in summary["metrics"].items() for m in ms}
        assert names <= set(entry)
    # the model in training is what was evaluated: its numbers moved between the epochs
    assert logged[0]["genval/metrics/student_vs_teacher/token_kl"] != logged[1]["genval/metrics/student_vs_teacher/token_kl"]


def test_the_teacher_is_asked_once(trained):
    out, _, callback = trained
    first, last = (json.loads((s.folder / "ops.json").read_text())["roles"] for s in callback.steps)
    assert first["teacher"]["model_calls"] == len(PROMPTS)
    assert last["teacher"]["model_calls"] == 0 and last["teacher"]["cached"] == len(PROMPTS)
    assert last["student"]["model_calls"] == len(PROMPTS)  # the student changes: never answered from the cache


def test_train_end_names_the_last_and_the_best_step(setup, tmp_path, capsys):
    forced.release()
    callback = GenvalCallback(write_config(setup, "ends"), every=3, out=tmp_path / "runs")
    trainer = trainer_for(setup, tmp_path / "t", callback)
    trainer.train()
    err = capsys.readouterr().err
    last = trainer.state.global_step
    assert [s.step for s in callback.steps] == [s for s in range(3, last + 1, 3)] + ([last] if last % 3 else [])
    assert f"genval: last step {last}: gate " in err and "genval: best step " in err
    best = max(callback.steps, key=lambda s: (sum(r["passed"] for r in s.summary["gate"]["rules"]),
                                               -s.summary["gate"]["rules"][0]["value"], -s.step))
    assert f"best step {best.step} by the gate's numbers" in err


def test_sampling_in_an_evaluation_leaves_training_as_it_was(setup, tmp_path):
    forced.release()
    plain = trainer_for(setup, tmp_path / "plain")
    plain.train()
    callback = GenvalCallback(write_config(setup, "sampled", temperature=1.0), every=2, out=tmp_path / "runs",
                              quiet=True)
    watched = trainer_for(setup, tmp_path / "watched", callback)
    watched.train()
    assert len(callback.steps) >= 2
    for (name, a), b in zip(plain.model.named_parameters(), watched.model.parameters()):
        assert torch.equal(a, b), name


def test_a_bad_config_stops_before_the_first_step(setup, tmp_path, capsys):
    with pytest.raises(GenvalError, match="unknown key"):
        GenvalCallback(write_config(setup, "typo", metricz=["bleu"]))
    with pytest.raises(GenvalError, match="every="):
        GenvalCallback(write_config(setup, "zero"), every=0)
    missing = write_config(setup, "missing")
    text = open(missing).read().replace(str(setup / "eval.jsonl"), str(setup / "nowhere.jsonl"))
    open(missing, "w").write(text)
    trainer = trainer_for(setup, tmp_path / "t", GenvalCallback(missing, out=tmp_path / "runs"))
    with pytest.raises(GenvalError, match="nowhere.jsonl"):
        trainer.train()
    assert trainer.state.global_step == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("genval: error:")]
    assert len(lines) == 1 and "nowhere.jsonl" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_a_step_folder_from_an_earlier_training_is_evaluated_afresh(setup, tmp_path):
    """Training again (a notebook cell re-run, the same callback) writes step-2 again: it must hold the new
    model's numbers, not the earlier one's. The second model is the teacher itself, untrained (learning rate 0):
    teacher-forced on its own output, token KL is 0 and agreement 1, computed by hand."""
    forced.release()
    callback = GenvalCallback(write_config(setup, "again"), every=2, out=tmp_path / "runs", quiet=True)
    tokenizer = AutoTokenizer.from_pretrained(setup / "student")
    found = []
    for path in (setup / "student", setup / "teacher"):
        args = TrainingArguments(output_dir=str(tmp_path / "t"), max_steps=2, per_device_train_batch_size=2,
                                 learning_rate=0.0, report_to=[], save_strategy="no", logging_strategy="no",
                                 use_cpu=True, disable_tqdm=True)
        trainer = Trainer(model=AutoModelForCausalLM.from_pretrained(path), args=args,
                          train_dataset=Texts(tokenizer, SENTENCES), processing_class=tokenizer)
        callback.attach(trainer)
        trainer.train()
        summary = json.loads((tmp_path / "runs" / "again" / "step-2" / "summary.json").read_text())
        found.append(summary["metrics"]["student~teacher"])
    forced.release()
    assert found[0]["token_kl"]["value"] > 0.1  # the other weights: far from the teacher
    assert found[1]["token_kl"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert found[1]["token_agreement"]["value"] == 1.0


def test_a_student_with_its_own_tokenizer_stops_before_the_first_step(setup, tmp_path, capsys):
    """Token fidelity compares ids: a model in training whose tokenizer is not the teacher's stops training at once,
    in one line that names it as the user knows it (not genval's internal `memory:` name)."""
    other = build_tiny_model(tmp_path / "other", seed=1, vocab_size=280)
    tokenizer = AutoTokenizer.from_pretrained(other)
    args = TrainingArguments(output_dir=str(tmp_path / "t"), max_steps=2, per_device_train_batch_size=2,
                             report_to=[], save_strategy="no", logging_strategy="no", use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=AutoModelForCausalLM.from_pretrained(other), args=args,
                      train_dataset=Texts(tokenizer, SENTENCES), processing_class=tokenizer)
    GenvalCallback(write_config(setup, "tokens"), every=1, out=tmp_path / "runs").attach(trainer)
    with pytest.raises(GenvalError, match="different tokenizers"):
        trainer.train()
    assert trainer.state.global_step == 0 and not (tmp_path / "runs").exists()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("genval: error:")]
    assert len(lines) == 1 and "the model in training" in lines[0] and "memory:" not in lines[0]


def test_a_resumed_training_ranks_the_steps_before_its_checkpoint_too(setup, tmp_path, capsys):
    """Resumed from checkpoint-2, training evaluates steps 3 and 4 only; its best step is ranked among 1–4 (the
    folders of 1 and 2 are this training's, and its log history has their numbers). The model starts as the
    teacher (token KL 0) and a high learning rate moves it away, so the best step, by the gate's rules (passed
    count, then token_kl lowest), is one before the checkpoint — read here from the step folders' summaries."""
    forced.release()
    tokenizer = AutoTokenizer.from_pretrained(setup / "teacher")
    config = write_config(setup, "resumed")

    def trainer(resume=None):
        args = TrainingArguments(output_dir=str(tmp_path / "t"), max_steps=4, per_device_train_batch_size=2,
                                 learning_rate=5e-2, report_to=[], save_strategy="steps", save_steps=2,
                                 logging_strategy="no", use_cpu=True, disable_tqdm=True, seed=0)
        found = Trainer(model=AutoModelForCausalLM.from_pretrained(setup / "teacher"), args=args,
                        train_dataset=Texts(tokenizer, SENTENCES), processing_class=tokenizer)
        callback = GenvalCallback(config, every=1, out=tmp_path / "runs").attach(found)
        found.train(resume_from_checkpoint=resume)
        return callback

    trainer()
    capsys.readouterr()
    resumed = trainer(str(tmp_path / "t" / "checkpoint-2"))
    forced.release()
    assert [s.step for s in resumed.steps] == [1, 2, 3, 4]
    summaries = {n: json.loads((tmp_path / "runs" / "resumed" / f"step-{n}" / "summary.json").read_text())
                 for n in (1, 2, 3, 4)}

    def rank(n):
        rules = summaries[n]["gate"]["rules"]
        kl = next(r["value"] for r in rules if r["metric"] == "token_kl")
        return (-sum(r["passed"] for r in rules), kl, n)

    expected = min(summaries, key=rank)
    assert expected <= 2  # the case this test is about: the best step is before the checkpoint
    captured = capsys.readouterr()
    assert f"genval: best step {expected} by the gate's numbers" in captured.out + captured.err
