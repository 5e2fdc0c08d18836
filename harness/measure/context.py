"""What a family needs to measure a case: the device, budgets, options, telemetry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.measure.device import Device
from harness.measure.timing import Budget, Measurement


@dataclass
class Context:
    dev: Device
    suite: str = "quick"
    budget: Budget = field(default_factory=Budget)
    options: dict[str, Any] = field(default_factory=dict)
    # Telemetry window factory (harness.measure.telemetry); None measures without power.
    window: Callable[[], Any] | None = None
    clock: Callable[[], float] | None = None
    # Multi-rank runs (harness/dist.py): this process's rank and the number of ranks;
    # collectives run on torch.distributed's default group (NCCL on CUDA, gloo on the CPU).
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    # The gloo group for small Python objects (dist.World.ctrl; None = the default group):
    # agreeing that a case failed on one rank must not need the GPU that just ran out of memory.
    ctrl: Any = None


@dataclass
class Outcome:
    """What a family returns for one case; the runner turns it into a row."""

    measurement: Measurement
    flop: float | None = None
    nbytes: float | None = None
    # {"ok": bool, "max_rel_err": float, "tol": float, "reference": str}; a failed check
    # fails the row whatever its speed.
    check: dict | None = None
    extra: dict[str, Any] = field(default_factory=dict)
