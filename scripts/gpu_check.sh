#!/usr/bin/env bash
# One prepared check for a GPU node with the packages already installed and no network:
# the gpu-marked tests, then `gwbench run --suite standard` (every family), straight from
# the checkout (PYTHONPATH, no install), then the run's report. 170 s on one H200
# (results/h200-20261129-220559-standard: tests 23 s, 254 cases 130 s; collectives need 2+ GPUs).
# Then the method and size measurements, each its own run folder with its report and console log:
#   gemm-method  bf16 search 4096..8192 (8192³ included) × B layout nk/kn × output rewrite on/off
#   fp8-out      fp8 search 4096..8192 × fp8 / bf16 output
#   copy-sizes   memory family with host/device and device-local copies at 1, 4 and 16 GiB
#   cupy-stream  scripts/cupy_stream_check.py (ExternalStream vs Stream.from_external)
#   layer-shapes Llama 3 8B's layer GEMMs at TP1, then `gwbench model --from` on them
# and the standard run itself now measures the NCCL path on one rank (world size 1) and the
# run's `stability` (reference kernel at start and end). Estimated ~6 min in all on one H200
# (not yet timed on a GPU).
#   scripts/gpu_check.sh [OUT_DIR]      (default results/)
# Extra `gwbench run` options for the standard run in GWBENCH_ARGS. EXTRA=0 skips the method and size
# runs. GWBENCH_DEVICE=cpu with SMALL=1 dry-runs the plumbing on a CPU (tiny shapes and sizes;
# the GPU-only cases are skipped rows). Prints the summary tables as it goes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results}
PY=${PYTHON:-python3}
DEVICE=${GWBENCH_DEVICE:-cuda}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"

echo "== gpu_check $(date -u +%FT%TZ) on $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm,memory.total --format=csv || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count())"

# gw_run NAME TIMEOUT ARGS...: one `gwbench run` into its own folder, renamed OUT/<run-id>-NAME,
# with console.log and report.md beside its rows. Sets last_dir and last_rc.
gw_run() {
    local name=$1 limit=$2
    shift 2
    local before
    before=$(ls "$OUT")
    echo "== $name: gwbench run $*"
    timeout "$limit" "$PY" -m harness run --device "$DEVICE" --out "$OUT" "$@" 2>&1 | tee "$OUT/.console-$name.log"
    last_rc=${PIPESTATUS[0]}
    last_dir=$(comm -13 <(echo "$before" | sort) <(ls "$OUT" | sort) | grep -v '^\.' | head -1)
    if [ -n "$last_dir" ] && [ -d "$OUT/$last_dir" ]; then
        mv "$OUT/.console-$name.log" "$OUT/$last_dir/console.log"
        "$PY" -m harness report "$OUT/$last_dir" --format md --published > "$OUT/$last_dir/report.md" 2>&1 || true
        if [ "$name" != standard ]; then
            mv "$OUT/$last_dir" "$OUT/$last_dir-$name" && last_dir="$last_dir-$name"
        fi
    fi
    echo "== $name rc=$last_rc, run folder $OUT/$last_dir"
}

echo "== gpu tests"
if [ "$DEVICE" = cpu ]; then
    echo "(GWBENCH_DEVICE=cpu: gpu tests skipped)" > "$OUT/gpu_tests.log"
    tests_rc=0
else
    timeout 240 "$PY" -m pytest -q -m "gpu or multigpu" -p no:cacheprovider -rfEs tests > "$OUT/gpu_tests.log" 2>&1
    tests_rc=$?
fi
tail -40 "$OUT/gpu_tests.log"

if [ "${SMALL:-0}" = 1 ]; then  # CPU dry run: shapes and sizes a 2-core machine does in seconds
    RANGE=(--m-range 256:512:256 --n-range 256 --k-range 256:512:256) SUITE=quick COPY=1M,4M,16M
    LAYER_MODEL=tests/data/tiny-llama.json LAYER_SEQ=64
else
    RANGE=(--m-range 4096:8192:2048 --n-range 4096:8192:2048 --k-range 4096:8192:2048) SUITE=standard COPY=1G,4G,16G
    LAYER_MODEL=8b LAYER_SEQ=8192
fi

gw_run standard 480 --suite "$SUITE" ${GWBENCH_ARGS:-}
run_rc=$last_rc
if [ -n "$last_dir" ]; then mv "$OUT/gpu_tests.log" "$OUT/$last_dir/gpu_tests.log"; fi
extra_rc=0
if [ "${EXTRA:-1}" = 1 ]; then
    # 108 cases, ~4 per second on an H200 (the 27-shape search took 7 s): mean and median of each
    # are in its rows; the summary prints the best shape per method ranked by the mean.
    gw_run gemm-method 240 --only gemm --search --dtype bf16 "${RANGE[@]}" \
        --b-layout nk,kn --out-rewrite on,off --sustain 0
    [ "$last_rc" -le 1 ] || extra_rc=1
    gw_run fp8-out 180 --only gemm --search --dtype fp8 "${RANGE[@]}" --fp8-out fp8,bf16 --sustain 0
    [ "$last_rc" -le 1 ] || extra_rc=1
    # nvbandwidth's device_local_copy counts one side; gwbench's d2d likewise (read + write = 2x).
    gw_run copy-sizes 240 --only memory --suite quick --transfer-sizes "$COPY" --sustain 0
    [ "$last_rc" -le 1 ] || extra_rc=1
    echo "== cupy-stream"
    timeout 60 "$PY" scripts/cupy_stream_check.py | tee "$OUT/${last_dir:-.}/cupy_stream.jsonl" || extra_rc=1
fi
if [ "${EXTRA:-1}" = 1 ]; then
    # The Llama 3 8B layer GEMMs at TP1, micro-batch 1, 8K tokens (forward, dgrad, wgrad; ~15
    # shapes, well under a minute), then the model fed those exact rates (the rest from the spec).
    gw_run layer-shapes 120 --only gemm --model "$LAYER_MODEL" --tp 1 --micro-batch 1 --seq "$LAYER_SEQ" \
        --idle 0 --sustain 0
    [ "$last_rc" -le 1 ] || extra_rc=1
    if [ -n "$last_dir" ] && [ -d "$OUT/$last_dir" ]; then
        gpu_name=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'H200')")
        "$PY" -m harness model --from "$OUT/$last_dir" --hardware "$gpu_name" --model "$LAYER_MODEL" --gpus 8 \
            --tp 1 --pp 1 --seq "$LAYER_SEQ" --batch-tokens $((LAYER_SEQ * 128)) --format text \
            > "$OUT/$last_dir/model.txt" 2>&1
        grep -E "GEMM shapes|MFU|measured" "$OUT/$last_dir/model.txt" | cut -c1-240
    fi
fi
if [ "${EXTRA:-1}" = 1 ]; then
    # No GPU time (seconds): the generations view and the site over every run in OUT, the new
    # ones included; the site goes to a temporary folder, not into OUT.
    "$PY" -m harness generations "$OUT" --format md > "$OUT/generations.md" 2>&1 || extra_rc=1
    site=$(mktemp -d)/site
    "$PY" -m harness publish "$OUT" --out "$site" > /dev/null || extra_rc=1
    echo "== generations: $OUT/generations.md; site: $site/index.html"
fi
echo "== gpu tests rc=$tests_rc, standard run rc=$run_rc, method, size, layer-shape and site steps ok=$((extra_rc == 0))"
[ "$tests_rc" -eq 0 ] && [ "$run_rc" -le 1 ] && [ "$extra_rc" -eq 0 ]
