"""Is the machine itself steady? One fixed reference kernel timed at a run's start and end.

A per-row noise flag (IQR > 10% of the median, core/stats.py) cannot see a machine whose speed
changes between cases: on a shared 2-core VM one case varied ~170x between runs with every
sample stuck at 8 or 16 ms, tight within each row. The runner times the same small matmul
before the first case and after the last; when the two medians differ by more than
core/stats.UNSTABLE_RATIO the run is flagged `unstable` in run.json, the report and the
summary, and `compare` refuses to call its differences significant.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from harness.core.stats import UNSTABLE_RATIO, unstable
from harness.measure.device import Device
from harness.measure.timing import Budget, measure

# The reference: a square matmul short enough to cost little at each run's start and end
# (~0.16 ms on the 2-core build machine) and to stay clear of a GPU's power cap, large enough
# that launch overhead does not dominate its time.
REFERENCE = {"cuda": (2048, torch.bfloat16), "cpu": (256, torch.float32)}


def describe(dev: Device) -> str:
    n, dtype = REFERENCE["cuda" if dev.is_cuda else "cpu"]
    return f"matmul {n}x{n}x{n} {str(dtype).removeprefix('torch.')}, median of the run's time budget"


def reference_time_s(dev: Device, budget: Budget, clock: Callable[[], float] | None = None) -> float:
    """Median seconds of one reference matmul on `dev`, timed by the one timing primitive."""
    n, dtype = REFERENCE["cuda" if dev.is_cuda else "cpu"]
    gen = torch.Generator(device=dev.torch_device).manual_seed(99)
    a = torch.randn((n, n), dtype=dtype, device=dev.torch_device, generator=gen)
    b = torch.randn((n, n), dtype=dtype, device=dev.torch_device, generator=gen)
    c = torch.empty((n, n), dtype=dtype, device=dev.torch_device)
    meas = measure(lambda: torch.matmul(a, b, out=c), dev, Budget(budget.warmup_s, budget.rep_s),
                   clock=clock)
    return meas.stats()["time_s"]


def summary(reference: str, start_s: float | None, end_s: float | None, error: str | None = None) -> dict:
    """run.json's `stability`: both timings, their ratio, the bound and the verdict."""
    ratio = max(start_s, end_s) / min(start_s, end_s) if start_s and end_s else None
    out = {"reference": reference, "start_s": start_s, "end_s": end_s, "ratio": ratio,
           "bound": UNSTABLE_RATIO, "unstable": unstable(start_s, end_s)}
    if error:
        out["error"] = error
    return out
