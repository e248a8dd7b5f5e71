"""summary.json before and after a change to the aggregate stage: byte for byte, less what changed on purpose.

    python scripts/summary_before_after.py write BEFORE        # the reference runs and their summary.json
    python scripts/summary_before_after.py again BEFORE AFTER  # their aggregate stage re-run by this genval
    python scripts/summary_before_after.py compare BEFORE AFTER

`write` runs the offline demo (configs/demo.yaml), a summarization run with two students and two
judges (tests/report_runs.py), a classification run with label probabilities, an extraction run,
a classification run with failed requests, a judge, ops and a non-inferiority gate (the `answered`
block), and a run with no status (no teacher reference scores), and copies
each run folder and its summary.json into BEFORE. `again` re-runs the aggregate stage of each
stored run folder (a copy) with the genval on PYTHONPATH and writes AFTER/<name>.json: the same
tables in, so model-made numbers (BERTScore) cannot differ. `compare` says, per file, whether
AFTER is byte-identical to BEFORE once what changed on purpose is undone (ADDED taken out, CHANGED
set back, REORDERED put back in the old order; `eval_set.path`, a temporary folder, set equal),
and lists every other difference. Run `write` on the commit before
the change, `again` on the one after, then `compare`.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# What the typed summary (genval.summary) changes on purpose, each with why; `*` stands for one key.
ADDED: tuple[str, ...] = ()   # no field is added: the models describe what aggregate wrote
CHANGED = {"schema_version": "2 → 3: the typed summary; an older summary.json is re-aggregated or refused"}
REORDERED = {"status": "a run with no status wrote `held_back` before `basis`; every status now has one order "
                       "(level, retention, kl, basis, held_back)"}


def _runs(tmp: Path) -> dict[str, Path]:
    from genval.analysis.stage import aggregate
    from genval.config import parse_config
    from genval.progress import Progress
    from tests.report_runs import demo_run, summarization_run
    from tests.test_aggregate_support import make_config, make_run
    from tests.test_score_stage import _extraction_run, make_classification_run

    def aggregated(run):
        aggregate(run, parse_config(run.manifest["config"], run.root), Progress(quiet=True))
        return run.root

    out = {"demo": demo_run(), "summarization": summarization_run(tmp / "summarization"),
           "classification": aggregated(make_classification_run(tmp / "classification")),
           "extraction": aggregated(_extraction_run(tmp / "extraction"))}
    n = 60
    failed = make_run(tmp / "failures" / "run", [1] * 50 + [0] * 10, [1] * 45 + [0] * 15,
                      region=["a"] * 40 + ["b"] * 20, kl=[0.05] * n, json_valid=[1] * 58 + [0] * 2,
                      verdicts=["equivalent"] * 50 + ["not_equivalent"] * 8 + [None] * 2,
                      errors={"student": 3}, probs={"teacher": [[0.8, 0.2]] * n, "student": [[0.6, 0.4]] * n})
    failed.write_json("ops.json", {"roles": {"teacher": {"latency_p50_s": 1.0, "cost_per_1k_calls": 2.0},
                                             "student": {"latency_p50_s": 0.5, "cost_per_1k_calls": 0.5}},
                                   "savings": {"latency_p50_s_pct": 50.0, "cost_per_1k_calls_pct": 75.0},
                                   "savings_basis": "measured"})
    config = make_config(tmp / "failures", critical=["region=b"],
                         gate={"rules": ["accuracy_retention >= 0.9", "accuracy lower >= 0.5 on region=*",
                                         "equivalence_rate >= 0.5",
                                         {"metric": "accuracy", "non_inferiority": {"margin": 0.1}}]})
    failed.manifest["config"] = config.resolved()
    failed.save_manifest()
    out["failures"] = aggregated(failed)
    # No status: the student has reference scores, the teacher none (the decision says what to add).
    bare = make_run(tmp / "nostatus" / "run", [1] * n, [1] * n, rouge_student=[0.6] * n, rouge_teacher=[0.7] * n)
    scores = bare.read_table("scores")
    bare.write_table("scores", scores[(scores["metric"] == "rougeL") & (scores["pair"] == "student~reference")])
    bare.manifest["config"] = make_config(tmp / "nostatus", task="summarization", labels=None).resolved()
    bare.save_manifest()
    out["nostatus"] = aggregated(bare)
    return out


def write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="genval-summaries-") as tmp:
        for name, run in _runs(Path(tmp)).items():
            shutil.copytree(run, folder / name, dirs_exist_ok=True)
            (folder / f"{name}.json").write_bytes((Path(run) / "summary.json").read_bytes())
            print(f"{name}: {folder / f'{name}.json'}")


def again(before: Path, after: Path) -> None:
    from genval.analysis.stage import aggregate
    from genval.config import parse_config
    from genval.progress import Progress
    from genval.runfolder import Run

    after.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="genval-summaries-") as tmp:
        for file in sorted(before.glob("*.json")):
            run = Run(shutil.copytree(before / file.stem, Path(tmp) / file.stem))
            aggregate(run, parse_config(run.manifest["config"], run.root), Progress(quiet=True))
            (after / file.name).write_bytes(run.path("summary.json").read_bytes())
            print(f"{file.stem}: {after / file.name}")


def _matches(path: str, pattern: str) -> bool:
    parts, wanted = path.split("."), pattern.split(".")
    return len(parts) == len(wanted) and all(w in ("*", p) for p, w in zip(parts, wanted))


def _without(tree, path=""):
    """Gives a summary with every ADDED field taken out."""
    if isinstance(tree, dict):
        return {k: _without(v, f"{path}.{k}" if path else k) for k, v in tree.items()
                if not any(_matches(f"{path}.{k}" if path else k, p) for p in ADDED)}
    if isinstance(tree, list):
        return [_without(v, path) for v in tree]
    return tree


def _differences(before, after, path="") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        out = [f"{'added' if k not in before else 'removed'} {path}.{k}".replace(" .", " ")
               for k in list(after) + list(before) if (k in before) != (k in after)]
        if [k for k in before if k in after] != [k for k in after if k in before]:
            out.append(f"key order {path or '(top)'}")
        for k in before:
            if k in after:
                out += _differences(before[k], after[k], f"{path}.{k}" if path else k)
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for k, (x, y) in enumerate(zip(before, after)) for d in _differences(x, y, f"{path}[{k}]")]
    return [] if before == after and type(before) is type(after) else [f"changed {path}"]


def _text(summary: dict) -> str:
    from genval.runfolder import _json_default

    return json.dumps(summary, indent=2, ensure_ascii=False, default=_json_default) + "\n"


def compare(before_dir: Path, after_dir: Path) -> int:
    """Prints, per reference run, byte-identical or the differences; gives the count of files that differ."""
    differ = 0
    for file in sorted(before_dir.glob("*.json")):
        before, after = json.loads(file.read_text("utf-8")), json.loads((after_dir / file.name).read_text("utf-8"))
        added = sorted(set(_differences(before, after)) - set(_differences(before, _without(after))))
        kept = _without(after)
        kept["eval_set"]["path"] = before["eval_set"]["path"]
        for key in CHANGED:
            kept[key] = before[key]
        for key in REORDERED:
            kept[key] = {k: kept[key][k] for k in before[key]} if set(kept[key]) == set(before[key]) else kept[key]
        same = _text(kept) == file.read_text("utf-8")
        found = _differences(before, kept)
        print(f"{file.stem}: {'byte-identical' if same else 'DIFFERS'} less what changed on purpose"
              + (f" ({len(added)} added: {', '.join(added[:6])}{' …' if len(added) > 6 else ''})" if added else ""))
        for line in found[:40]:
            print(f"  {line}")
        differ += not same
    return differ


if __name__ == "__main__":
    if sys.argv[1:2] == ["write"] and len(sys.argv) == 3:
        write(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["again"] and len(sys.argv) == 4:
        again(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1:2] == ["compare"] and len(sys.argv) == 4:
        sys.exit(1 if compare(Path(sys.argv[2]), Path(sys.argv[3])) else 0)
    else:
        sys.exit(__doc__)
