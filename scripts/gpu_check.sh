#!/usr/bin/env bash
# One prepared check for a GPU node with the packages already installed and no network:
# the gpu-marked tests, then `gwbench run --suite standard`, straight from the checkout
# (PYTHONPATH, no install). Budget: about 8 minutes on one H100/H200.
#   scripts/gpu_check.sh [OUT_DIR]      (default results/)
# Extra `gwbench run` options can be given in GWBENCH_ARGS. Prints the summary table last.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results}
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

echo "== gpu_check $(date -u +%FT%TZ) on $(hostname)"
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm,memory.total --format=csv || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count())"

echo "== gpu tests"
timeout 150 "$PY" -m pytest -q -m "gpu or multigpu" -p no:cacheprovider tests 2>&1 | tail -25
tests_rc=${PIPESTATUS[0]}

echo "== gwbench run --suite standard"
timeout 330 "$PY" -m harness run --suite standard --device cuda --out "$OUT" ${GWBENCH_ARGS:-}
run_rc=$?
echo "== gpu tests rc=$tests_rc, run rc=$run_rc"
[ "$tests_rc" -eq 0 ] && [ "$run_rc" -le 1 ]
