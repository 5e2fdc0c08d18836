"""The spec peak a measured figure is judged against: the run's device in the hardware table, and
the peak that matches a family's unit (dense TFLOP/s, HBM GB/s, NVLink GB/s)."""

from __future__ import annotations

from collections.abc import Mapping

from harness.core import specs
from harness.core.errors import UsageError


def spec_for(meta: Mapping):
    """The hardware-table entry of the run's device, or None (CPU, unknown name, bad table)."""
    d = meta.get("device") if isinstance(meta.get("device"), Mapping) else {}
    if d.get("backend") == "cpu" or not d.get("name"):
        return None
    try:
        return specs.load().lookup(str(d["name"]))
    except UsageError:
        return None


def peak_for(acc, family: str, dtype: str | None) -> tuple[float | None, str]:
    """(spec peak in the family's unit, unit) or (None, unit): dense TFLOP/s for compute,
    HBM GB/s for memory, scale-up (NVLink) GB/s unidirectional for busbw."""
    if family in ("gemm", "attention"):
        unit = "TFLOP/s"
        if acc is None or dtype not in acc.dense_tflops:
            return None, unit
        return acc.dense_tflops[dtype].value, unit
    if family == "memory":
        ok = acc is not None and acc.hbm_tbps
        return (acc.hbm_tbps.value * 1e3 if ok else None), "GB/s"
    if family == "collectives":
        ok = acc is not None and acc.scaleup_gbps
        return (acc.scaleup_gbps.value if ok else None), "GB/s"
    return None, ""
