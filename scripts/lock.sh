#!/usr/bin/env bash
# Regenerates constraints.txt: the exact versions a fresh install of genval and its test extras gets today.
# Run it to upgrade the lock, then the whole test suite (`python -m pytest`), then commit constraints.txt.
#   bash scripts/lock.sh            # newest versions pyproject.toml allows
# torch stays at the version pyproject.toml pins (a CPU machine takes its CPU build; see README).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(mktemp -d)/venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e ".[dev]"
{
  echo "# The versions genval's tests pass with: pip install -e \".[dev]\" -c constraints.txt (README, .ci/run)."
  echo "# Made by scripts/lock.sh from a fresh virtual environment ($("$venv/bin/python" -V)); run it again to upgrade."
  # a local version label (torch's +cpu) names a build, not a version: `==2.13.0` matches any build of it
  "$venv/bin/python" -m pip freeze --exclude-editable | grep -v '^#' | sed -E 's/^([^=]+==[^+]+)\+.*$/\1/'
} > constraints.txt
rm -rf "$(dirname "$venv")"
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages pinned"
