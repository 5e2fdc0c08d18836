"""The one mapping from a CUDA ordinal to NVML's device handle.

NVML numbers GPUs in PCI bus order and ignores CUDA_VISIBLE_DEVICES, while CUDA numbers the
visible GPUs from 0 (in FASTEST_FIRST order unless CUDA_DEVICE_ORDER=PCI_BUS_ID). So CUDA
ordinal i is, in order of trust:
  1. the GPU whose UUID CUDA reports for ordinal i (exact, whatever the ordering rules);
  2. entry i of CUDA_VISIBLE_DEVICES (an NVML index or a GPU UUID), when the UUID is unknown;
  3. NVML index i, when nothing narrows the view.
Device facts (device.py), telemetry (telemetry/nvml.py) and the topology of a multi-GPU launch
(dist.py) all take handles from here. Zeus (zeus/device/gpu/nvidia.py) maps the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def visible_entries(env: Mapping[str, str]) -> list[str] | None:
    """CUDA_VISIBLE_DEVICES as a list, or None when the variable is not set."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    return None if visible is None else [e.strip() for e in visible.split(",") if e.strip()]


def cuda_uuid(index: int) -> str | None:
    """The UUID CUDA reports for ordinal `index` ("GPU-..."), or None where torch or CUDA cannot
    say (a CPU-only install, a fake NVML in tests)."""
    try:
        import torch

        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            return None
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    except Exception:  # noqa: BLE001 - no UUID: the variable or the index decides
        return None
    return None if uuid is None else f"GPU-{uuid}"


def handle(nvml, index: int, env: Mapping[str, str] | None = None, uuid: str | None = None):
    """NVML's handle for CUDA ordinal `index` (rules in the module docstring). `nvml` is the
    pynvml module or a fake; its errors propagate to the caller, which decides what they mean."""
    env = os.environ if env is None else env
    if uuid is not None:
        try:
            return nvml.nvmlDeviceGetHandleByUUID(uuid)
        except nvml.NVMLError:
            pass  # a MIG or virtualised GPU may not answer by UUID: fall through
    entries = visible_entries(env)
    entry = entries[index] if entries is not None and index < len(entries) else str(index)
    if entry.isdigit():
        return nvml.nvmlDeviceGetHandleByIndex(int(entry))
    return nvml.nvmlDeviceGetHandleByUUID(entry)
