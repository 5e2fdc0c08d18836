#!/usr/bin/env bash
# Create .venv and install gwbench into it, choosing torch for the hardware present:
#  - torch already importable by $PYTHON (NGC container, cluster module): the venv sees
#    the system site-packages and reuses that torch; nothing is downloaded for it.
#  - an NVIDIA GPU and no torch: pip's default torch (a CUDA build).
#  - no NVIDIA GPU: torch==$GWBENCH_CPU_TORCH (default 2.13.0; the CPU wheel on our build
#    machines), so a CPU box never pulls the multi-GB CUDA build. Override with
#    GWBENCH_TORCH_SPEC, or point PIP_INDEX_URL/PIP_EXTRA_INDEX_URL at a CPU index.
# Extra pip arguments (e.g. ".[test]") come from GWBENCH_EXTRAS.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${GWBENCH_VENV:-.venv}
EXTRAS=${GWBENCH_EXTRAS:-}

log() { echo "setup: $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
    if "$PYTHON" -c "import torch" >/dev/null 2>&1; then
        log "reusing the torch installed for $PYTHON ($("$PYTHON" -c 'import torch; print(torch.__version__)'))"
        "$PYTHON" -m venv --system-site-packages "$VENV"
    else
        "$PYTHON" -m venv "$VENV"
    fi
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    if [ -n "${GWBENCH_TORCH_SPEC:-}" ]; then
        spec=$GWBENCH_TORCH_SPEC
    elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        spec=torch
    else
        spec="torch==${GWBENCH_CPU_TORCH:-2.13.0}"
    fi
    log "installing $spec"
    "${PIP[@]}" install -q "$spec"
fi

# Editable install: the checkout's code runs, and results/ stays next to it.
target="."
[ -n "$EXTRAS" ] && target=".[$EXTRAS]"
"${PIP[@]}" install -q -e "$target"
# Show which torch was kept or chosen (CPU wheel or CUDA build).
"$VENV/bin/python" -c "import torch; print('setup: torch', torch.__version__, 'cuda', torch.version.cuda, 'gpu', torch.cuda.is_available())" >&2
