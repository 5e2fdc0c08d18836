#!/usr/bin/env bash
# One prepared check for a GPU node with the packages already installed and no network:
# the gpu-marked tests, then `gwbench run --suite standard` (every family), straight from
# the checkout (PYTHONPATH, no install), then the run's report. 170 s on one H200
# (results/h200-20261129-220559-standard: tests 23 s, 254 cases 130 s; collectives need 2+ GPUs).
#   scripts/gpu_check.sh [OUT_DIR]      (default results/)
# Extra `gwbench run` options can be given in GWBENCH_ARGS. Prints the summary table last.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results}
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"

echo "== gpu_check $(date -u +%FT%TZ) on $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm,memory.total --format=csv || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count())"

echo "== gpu tests"
timeout 240 "$PY" -m pytest -q -m "gpu or multigpu" -p no:cacheprovider -rfEs tests > "$OUT/gpu_tests.log" 2>&1
tests_rc=$?
tail -40 "$OUT/gpu_tests.log"

echo "== gwbench run --suite standard"
before=$(ls "$OUT")
timeout 420 "$PY" -m harness run --suite standard --device cuda --out "$OUT" ${GWBENCH_ARGS:-}
run_rc=$?
run_dir=$(comm -13 <(echo "$before" | sort) <(ls "$OUT" | sort) | head -1)
if [ -n "$run_dir" ] && [ -d "$OUT/$run_dir" ]; then
    mv "$OUT/gpu_tests.log" "$OUT/$run_dir/gpu_tests.log"
    "$PY" -m harness report "$OUT/$run_dir" --format md > "$OUT/$run_dir/report.md" 2>&1 || true
fi
# Issue #15: the Llama 3 8B layer GEMMs at TP1, micro-batch 1, 8K tokens (forward, dgrad, wgrad;
# ~15 shapes, well under a minute), then the model fed those exact rates (the rest from the spec).
echo "== layer shapes: gwbench run --only gemm --model 8b --tp 1 --micro-batch 1 --seq 8192"
before=$(ls "$OUT")
timeout 120 "$PY" -m harness run --only gemm --model 8b --tp 1 --micro-batch 1 --seq 8192 --device cuda \
    --out "$OUT" --idle 0 --no-projection > "$OUT/layer_shapes.log" 2>&1
layer_rc=$?
layer_dir=$(comm -13 <(echo "$before" | sort) <(ls "$OUT" | sort) | head -1)
if [ -n "$layer_dir" ] && [ -d "$OUT/$layer_dir" ]; then
    gpu_name=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))")
    "$PY" -m harness model --from "$OUT/$layer_dir" --hardware "$gpu_name" --model 8b --gpus 8 --tp 1 --pp 1 \
        --seq 8192 --batch-tokens $((8192 * 128)) --format text > "$OUT/$layer_dir/model.txt" 2>&1
    grep -E "GEMM shapes|MFU|measured" "$OUT/$layer_dir/model.txt" | cut -c1-240
fi
echo "== layer shapes rc=$layer_rc, folder $OUT/$layer_dir"

echo "== gpu tests rc=$tests_rc, run rc=$run_rc, run folder $OUT/$run_dir"
[ "$tests_rc" -eq 0 ] && [ "$run_rc" -le 1 ]
