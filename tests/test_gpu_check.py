"""benchmarks/gpu_check.sh: its CPU dry run passes every step; its installer takes only what a Python lacks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_install  # noqa: E402


def test_the_installer_takes_only_the_distributions_this_python_lacks(tmp_path):
    (tmp_path / "whl").mkdir()
    for name in ("pydantic_core-2.41.5-cp312-cp312-manylinux_2_17_x86_64.whl",  # installed here
                 "PyYAML-6.0.2-cp312-cp312-manylinux_2_17_x86_64.whl",  # installed here, other spelling
                 "genval_no_such_dist-1.0-py3-none-any.whl"):
        (tmp_path / "whl" / name).write_bytes(b"")
    wanted, skipped = gpu_install.missing_wheels(tmp_path)
    assert [w.name for w in wanted] == ["genval_no_such_dist-1.0-py3-none-any.whl"]
    assert sorted(skipped) == ["pydantic-core", "pyyaml"]


@pytest.mark.slow
def test_the_cpu_dry_run_passes_every_step(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    summary = done.stdout[done.stdout.index("== summary"):]
    rows = re.findall(r"^\| (.+?) \| (\d+) \| (.+?) \|$", summary, flags=re.M)
    assert len(rows) == 11, summary  # machine, tests, configs, 3 runs, throughput, comparison, 3 benchmarks
    assert all(result == "ok" for _, _, result in rows), summary
    assert done.returncode == 0
    assert "same numbers (within 1e-4)" in done.stdout  # the two classification runs, separate caches
    import json

    # separate request caches: the second run called its models for every example, nothing came from the first
    check = next((tmp_path / "runs" / "out-classification-cpu-check").glob("*/ops.json"))
    for role in json.loads(check.read_text())["roles"].values():
        assert (role["cached"], role["model_calls"]) == (0, 16)
