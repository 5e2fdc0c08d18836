"""What a family needs to measure a case: the device, budgets, options, telemetry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.measure.device import Device
from harness.measure.timing import Budget


@dataclass(frozen=True)
class Context:
    """Built once per run by the runner; a case that needs another budget (a sustained
    window) gets a copy with it (dataclasses.replace), never a changed Context."""

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
