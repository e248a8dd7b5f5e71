"""Runs the report tests read: a summarization run with two students and two judges, built from replay files.

Not a test module: tests/test_report_candidates.py and tests/test_report_browser.py import it.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from tests.conftest import ROOT, write_jsonl, write_yaml

N = 60
DOMAINS = ["news"] * 25 + ["science"] * 23 + ["legal"] * 12   # legal: a small slice (n=12 < 30)


def _words(i: int) -> list[str]:
    return f"the report {i} says sales rose in quarter {i % 4} while costs fell and staff grew".split()


def _student(i: int, version: int) -> str:
    """A student summary: the teacher's words, with some dropped on legal (v1 drops more than v2)."""
    words = _words(i)
    if DOMAINS[i] == "legal":
        words = words[: (5 if version == 1 else 9)]
    elif i % (5 if version == 1 else 7) == 0:
        words = words[:-3]
    return " ".join(words)


def write_summarization(folder: Path) -> Path:
    """Writes the eval set, the replayed outputs of teacher, student and student_v2, two judges' replays and
    human labels; gives the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    examples = [{"id": f"s{i:02d}", "input": " ".join(_words(i)) + " and more detail " * 3,
                 "reference": " ".join(_words(i)[:-1]), "slices": {"domain": DOMAINS[i]}} for i in range(N)]
    write_jsonl(folder / "eval.jsonl", examples)
    outputs = {"teacher": [" ".join(_words(i)) for i in range(N)],
               "student": [_student(i, 1) for i in range(N)], "student_v2": [_student(i, 2) for i in range(N)]}
    latency = {"teacher": 1.2, "student": 0.4, "student_v2": 0.6}
    for role, texts in outputs.items():
        write_jsonl(folder / f"{role}.jsonl", [{"id": f"s{i:02d}", "text": t, "latency_s": latency[role] + i / 1000,
                                                 "completion_tokens": len(t.split())} for i, t in enumerate(texts)])
    same = {role: [outputs[role][i] == outputs["teacher"][i] for i in range(N)] for role in ("student", "student_v2")}
    equivalence = []
    for role in ("student", "student_v2"):
        for i in range(N):
            says = same[role][i] if i % 9 else not same[role][i]     # the judge is wrong on every 9th item
            equivalence.append({"id": f"s{i:02d}|{role}~teacher|ab|0",
                                "text": "VERDICT: " + ("equivalent" if says else "not_equivalent")})
    write_jsonl(folder / "equivalence.jsonl", equivalence)
    quality = [{"id": f"s{i:02d}|{role}~reference|ab|0", "text": str(5 if outputs[role][i] == outputs["teacher"][i]
                                                                      else 2 + i % 2)}
               for role in ("teacher", "student", "student_v2") for i in range(N)]
    write_jsonl(folder / "quality.jsonl", quality)
    labels = [{"id": f"s{i:02d}", "pair": "student~teacher", "annotator": "h1",
               "verdict": "equivalent" if same["student"][i] else "not_equivalent"} for i in range(N)]
    labels += [{"id": f"s{i:02d}", "pair": "student~teacher", "annotator": "h2",
                "verdict": "equivalent" if same["student"][i] == (i % 11 != 0) else "not_equivalent"}
               for i in range(0, N, 2)]
    labels += [{"id": f"s{i:02d}", "pair": "student~reference", "annotator": "h1",
                "score": 5 if same["student"][i] else 2 + (i % 3 == 0)} for i in range(N)]
    write_jsonl(folder / "labels.jsonl", labels)
    config = {
        "name": "summaries", "task": "summarization", "eval_set": "eval.jsonl", "prompt": "Summarise: {input}",
        "models": {"teacher": {"backend": "replay", "path": "teacher.jsonl", "price": {"per_gpu_hour": 4.0}},
                   "student": {"backend": "replay", "path": "student.jsonl", "price": {"per_gpu_hour": 1.0}},
                   "student_v2": {"backend": "replay", "path": "student_v2.jsonl", "price": {"per_gpu_hour": 1.5}}},
        "metrics": ["bleu", "chrf", "rouge"],
        "judge": [{"config": str(ROOT / "judges" / "equivalence.yaml"),
                   "model": {"backend": "replay", "path": "equivalence.jsonl"},
                   "pairs": ["student~teacher", "student_v2~teacher"]},
                  {"config": str(ROOT / "judges" / "summary_quality.yaml"),
                   "model": {"backend": "replay", "path": "quality.jsonl"},
                   "pairs": ["student~reference", "student_v2~reference", "teacher~reference"]}],
        "human_labels": "labels.jsonl", "slices": ["domain"],
        "analysis": {"bootstrap": 200},
        "gate": {"rules": ["rougeL [student~teacher] >= 0.9", "equivalence_rate >= 0.5"]},
    }
    return write_yaml(folder / "run.yaml", config)


def summarization_run(folder: Path) -> Path:
    """Runs every stage of the summarization config; gives the run folder."""
    from genval.pipeline import run_pipeline

    return Path(run_pipeline(write_summarization(folder), out_dir=folder / "runs", quiet=True))


@functools.cache
def demo_run() -> Path:
    """Runs configs/demo.yaml once per test process (about 20 s: it scores with BERTScore); gives the run folder."""
    from genval.pipeline import run_pipeline

    folder = Path(tempfile.mkdtemp(prefix="genval-demo-"))
    atexit.register(shutil.rmtree, folder, True)
    return Path(run_pipeline(ROOT / "configs" / "demo.yaml", out_dir=folder / "runs", quiet=True))
