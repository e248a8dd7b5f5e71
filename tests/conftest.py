"""Shared fixtures: small eval sets and configs written into a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def score_frames(result, segments, batch: int = 50) -> list:
    """Gives a metric's result as scores-table rows (`pair`, `metric`, `stats`, `signature`), cut into frames of `batch`."""
    import pandas as pd

    pairs = [pair for pair, a, b in segments for _ in range(a, b)]
    frames = [pd.DataFrame({"pair": pairs, "metric": column, "value": values,
                            "stats": result.stats.get(column, [None] * len(values)),
                            "signature": result.row_settings.get(column, result.settings[column])})
              for column, values in result.values.items()]
    rows = pd.concat(frames, ignore_index=True)
    return [rows.iloc[i:i + batch] for i in range(0, len(rows), batch)]


FAKE_VLLM = ROOT / "tests" / "fake_vllm"  # the strict stand-in for vLLM's offline API (tests/fake_vllm)


@pytest.fixture
def fake_vllm(monkeypatch):
    """Puts the stand-in vLLM on sys.path for one test only, its call log empty, and forgets it afterwards."""
    import sys

    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(FAKE_VLLM))
    import vllm

    vllm.LLM.calls.clear()
    vllm.LLM.instances.clear()
    yield vllm
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        sys.modules.pop(name, None)


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def small_run(tmp_path):
    """A summarization config over 4 examples with replay teacher and student; gives its path."""
    examples = [
        {"id": "a", "input": "the cat sat on the mat", "reference": "a cat sat on a mat", "slices": {"kind": "x"}},
        {"id": "b", "input": "dogs bark at night", "reference": "dogs bark loudly at night", "slices": {"kind": "x"}},
        {"id": "c", "input": "rain falls in spring", "reference": "spring brings rain", "slices": {"kind": "y"}},
        {"id": "d", "input": "the sun is hot", "reference": "the sun is very hot", "slices": {"kind": "y"}},
    ]
    write_jsonl(tmp_path / "eval.jsonl", examples)
    write_jsonl(tmp_path / "teacher.jsonl", [{"id": e["id"], "text": e["reference"], "latency_s": 1.0} for e in examples])
    write_jsonl(tmp_path / "student.jsonl", [{"id": e["id"], "text": e["input"], "latency_s": 0.5} for e in examples])
    config = {
        "name": "small", "task": "summarization", "eval_set": "eval.jsonl", "prompt": "Summarise: {input}",
        "models": {"teacher": {"backend": "replay", "path": "teacher.jsonl"},
                   "student": {"backend": "replay", "path": "student.jsonl"}},
        "metrics": ["bleu", "rouge"], "slices": ["kind"],
    }
    return write_yaml(tmp_path / "run.yaml", config)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A seeded 2-layer causal LM and its trained tokenizer, saved to a folder (built once per session)."""
    from tests.tiny_models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_chat(tmp_path_factory):
    """The same tiny model with a chat template on its tokenizer."""
    from tests.tiny_models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_chat"), chat=True)


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """One headless Chromium for the session (tests/test_report_browser.py's Browser), shared by every browser test."""
    from tests.test_report_browser import Browser, _browser

    found = Browser(_browser(), tmp_path_factory.mktemp("browser") / "profile")
    yield found
    found.close()
