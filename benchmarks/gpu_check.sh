#!/usr/bin/env bash
# genval's GPU check in one command: the tests that take CUDA paths, whole `genval run`s on the GPU
# (summarization and classification), the classification numbers of a CUDA run against a CPU run of
# the same config, and the scoring, label and generation benchmarks; then a table for
# benchmarks/RESULTS.md. About 5 minutes on one H100/H200.
#
#   bash benchmarks/gpu_check.sh [--wheels DIR] [--out DIR]            # on a GPU machine, from the repo root
#   bash benchmarks/gpu_check.sh --device cpu                          # the dry run: every step, tiny sizes, CPU
#
# --wheels DIR: a folder of wheels for a machine without network whose Python already has torch,
# transformers and sentence-transformers (/work/shared/gpu/wheels.sh makes one: DIR/whl/*.whl, and
# DIR/minilm + DIR/upcast.py for the default embedding model). Only the distributions this Python
# lacks are installed, into OUT/site, put first on PYTHONPATH. pytest, where missing and not among
# the wheels, turns the test step into "not run" (the rest goes on): add its wheels to the folder
# where it is made (Python 3.12 on the GPU image):
#   python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d DIR/whl pytest pluggy iniconfig
# Every run has its own request cache: the cache key holds no device (docs/backends.md), so a
# shared cache would answer the CPU run from the CUDA run's answers.
set -uo pipefail
DEVICE=cuda
WHEELS=""
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-$(mktemp -d /tmp/genval-gpu-check.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ "$DEVICE" = cpu ]; then  # the dry run: every step at tiny sizes
  EXAMPLES=24; CLS=16; SEM_PAIRS=30; GEN=(--prompts 8 --max-new-tokens 8 --repeat 1)
  LAB=(--examples 32 --repeat 1); TESTS=(--collect-only)
else
  EXAMPLES=2000; CLS=400; SEM_PAIRS=6000; GEN=(--prompts 512 --baseline-prompts 32 --repeat 1)
  LAB=(--examples 4096 --baseline-examples 256 --repeat 1); TESTS=()
fi

RESULTS=()   # "step|seconds|result" rows for the closing table
LOG="$OUT/gpu_check.log"
: > "$LOG"
step() {  # step NAME COMMAND...: runs it, shows and keeps its output, notes time and outcome
  local name="$1"; shift
  echo; echo "== $name"
  local start=$SECONDS
  "$@" 2>&1 | tee -a "$LOG" | grep -v -E "Loading weights|Writing model shards|it/s\]$"
  local rc=${PIPESTATUS[0]}
  RESULTS+=("$name|$((SECONDS - start))|$([ "$rc" = 0 ] && echo ok || echo "FAILED (exit $rc)")")
  return 0
}

install_missing() {  # wheels for the distributions this Python lacks, into $OUT/site
  "$PY" benchmarks/gpu_install.py "$WHEELS" "$OUT/site"
}
if [ -n "$WHEELS" ]; then
  step "install what is missing from $WHEELS" install_missing
  export PYTHONPATH="$OUT/site:$PYTHONPATH"
fi

step "machine" "$PY" -c "
import platform, torch, transformers, sentence_transformers
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device'
print(f'{platform.node()}: Python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, '
      f'sentence-transformers {sentence_transformers.__version__}; {gpu}; {torch.get_num_threads()} CPU threads')
if '$DEVICE'.startswith('cuda') and not torch.cuda.is_available():
    raise SystemExit('--device $DEVICE: torch sees no CUDA device')
"

run_tests() {
  if ! "$PY" -c "import pytest" 2>/dev/null; then
    echo "pytest is not installed and not among the wheels: tests not run"; return 3
  fi
  GENVAL_TEST_DEVICE="$DEVICE" "$PY" -m pytest -q -p no:cacheprovider "${TESTS[@]}" \
    tests/test_backend_hf.py tests/test_label_batching.py tests/test_hf_continuous.py tests/test_semantic_shared.py
}
step "tests with CUDA paths (GENVAL_TEST_DEVICE=$DEVICE)" run_tests

step "configs and models for the runs" "$PY" benchmarks/gpu_runs.py make "$OUT/runs" --device "$DEVICE" \
  --examples "$EXAMPLES" --classification-examples "$CLS"
TAG=$([ "$DEVICE" = cpu ] && echo cpu || echo cuda)
genval_run() {  # genval_run CONFIG: one whole run in its own folder
  (cd "$OUT/runs" && "$PY" -m genval.cli run "$1.yaml" --out "out-$1" --quiet)
}
step "genval run: summarization on $DEVICE ($EXAMPLES examples, hf teacher and student, bertscore + embedding)" \
  genval_run "summarization-$TAG"
step "genval run: classification on $DEVICE ($CLS examples)" genval_run "classification-$TAG"
step "genval run: the same classification config on the CPU, its own cache" genval_run "classification-cpu-check"
step "throughput of the runs (ops.json)" bash -c "
  '$PY' benchmarks/gpu_runs.py ops '$OUT/runs/out-summarization-$TAG' &&
  '$PY' benchmarks/gpu_runs.py ops '$OUT/runs/out-classification-$TAG'"
step "classification: $DEVICE run against the CPU run" "$PY" benchmarks/gpu_runs.py compare \
  "$OUT/runs/out-classification-$TAG" "$OUT/runs/out-classification-cpu-check"

step "benchmark: scoring, bertscore + embedding, fp32 ($SEM_PAIRS pairs)" "$PY" benchmarks/scoring.py \
  --device "$DEVICE" --skip-lexical --semantic-pairs "$SEM_PAIRS"
if [ "$DEVICE" != cpu ]; then
  step "benchmark: scoring, bertscore + embedding, fp16 ($SEM_PAIRS pairs)" "$PY" benchmarks/scoring.py \
    --device "$DEVICE" --skip-lexical --semantic-pairs "$SEM_PAIRS" --fp16
fi
step "benchmark: label probabilities" "$PY" benchmarks/labels.py --device "$TAG" "${LAB[@]}"
step "benchmark: generation, both engines" "$PY" benchmarks/generation.py --device "$TAG" "${GEN[@]}"

echo
echo "== summary (for benchmarks/RESULTS.md; full output in $LOG)"
echo "| step | seconds | result |"
echo "| --- | --- | --- |"
failed=0
for row in "${RESULTS[@]}"; do
  IFS='|' read -r name secs result <<< "$row"
  echo "| $name | $secs | $result |"
  case "$result" in ok) ;; *) failed=1 ;; esac
done
echo "total: ${SECONDS} s"
exit $failed
