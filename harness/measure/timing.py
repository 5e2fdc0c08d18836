"""THE timing primitive: warm-up and repeats driven by time budgets, raw samples kept.

Modelled on triton.testing.do_bench: run once (allocation, kernel selection), estimate
the cost of one iteration, derive the warm-up and repeat counts from millisecond budgets,
then time every iteration separately. Before each timed call the cache can be flushed
and the inputs/outputs rewritten (`setup`), outside the timed region, so a case meant to
read from HBM does. Every sample is kept; statistics are derived later (stats.py).

Sustained mode runs the case back to back for a wall-clock window after a short pre-heat,
so power and clocks reach steady state (Zeus; Yang et al., SC'24, arXiv 2312.02741).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

from harness.core.result import Measurement
from harness.measure.device import Device

ESTIMATE_ITERS = 5


@dataclass(frozen=True)
class Budget:
    """Time budgets in seconds and repeat bounds for one measurement."""

    warmup_s: float = 0.025
    rep_s: float = 0.1
    min_reps: int = 10
    max_reps: int = 10_000
    sustain_s: float | None = None  # run back to back this long instead of rep_s

    def __post_init__(self):
        if self.warmup_s < 0 or self.rep_s <= 0:
            raise ValueError("budgets must be positive")
        if self.min_reps < 1 or self.max_reps < self.min_reps:
            raise ValueError("need 1 <= min_reps <= max_reps")
        if self.sustain_s is not None and self.sustain_s <= 0:
            raise ValueError("sustain_s must be positive")


def measure(
    fn: Callable[[], object],
    dev: Device,
    budget: Budget = Budget(),
    *,
    flush: bool = False,
    setup: Callable[[], object] | None = None,
    clock: Callable[[], float] | None = None,
    window: Callable[[], object] | None = None,
) -> Measurement:
    """Time `fn` on `dev`; returns every per-iteration sample in seconds.

    `clock` replaces the host clock (tests inject a fake one; it also forces the host
    timer on a GPU). `window` is a context-manager factory (telemetry) entered around the
    timed loop only; its `summary()` lands in `Measurement.telemetry`.
    """
    wall = clock or time.perf_counter

    def one_iteration() -> None:
        if flush:
            dev.flush_cache()
        if setup is not None:
            setup()
        fn()

    # First call: allocations, autotuning, lazy kernel loads. Never timed.
    one_iteration()
    dev.sync()

    t0 = wall()
    for _ in range(ESTIMATE_ITERS):
        one_iteration()
    dev.sync()
    estimate_s = max((wall() - t0) / ESTIMATE_ITERS, 1e-9)

    n_warmup = max(1, math.ceil(budget.warmup_s / estimate_s))
    for _ in range(n_warmup):
        one_iteration()

    if budget.sustain_s is not None:
        # Pre-heat so clocks and power settle before the window opens (rise time dropped).
        for _ in range(max(1, math.ceil(min(1.0, budget.sustain_s / 5) / estimate_s))):
            one_iteration()
        n_rep = max(budget.min_reps, math.ceil(budget.sustain_s / estimate_s))
    else:
        n_rep = min(budget.max_reps, max(budget.min_reps, math.ceil(budget.rep_s / estimate_s)))

    timer = dev.timer(clock)
    ctx = window() if window is not None else nullcontext()
    with ctx as w:
        dev.sync()
        w0 = wall()
        for _ in range(n_rep):
            if flush:
                dev.flush_cache()
            if setup is not None:
                setup()
            timer.start()
            fn()
            timer.stop()
        dev.sync()
        window_s = wall() - w0
    samples = timer.samples()
    telemetry = w.summary() if w is not None and hasattr(w, "summary") else {}
    return Measurement(samples, n_warmup, estimate_s, window_s, telemetry,
                       sustained=budget.sustain_s is not None)


def timer_overhead_s(dev: Device, n: int = 2000) -> float:
    """Median cost of one start/stop pair around an empty call (reported in run.json)."""
    timer = dev.timer()
    for _ in range(n):
        timer.start()
        timer.stop()
    xs = sorted(timer.samples())
    return xs[len(xs) // 2]
