"""Harness vs torch.utils.benchmark on the same CPU GEMM, side by side in one process.

Run: `make bench` (or `.venv/bin/python -m pytest tests/bench_gemm_accuracy.py
--benchmark-enable -s`). It prints both figures and their ratio for fp32 and bf16, and the
timer overhead per sample. Figures are printed, not asserted: this machine is shared and
noisy, so speed targets are read off benchmark output, never enforced by a timed test.
"""

import pytest
import torch
import torch.utils.benchmark as tb

from harness.measure.device import Device
from harness.measure.timing import Budget, measure, timer_overhead_s

SHAPE = 512
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def harness_vs_blocked_autorange(dtype: torch.dtype, size: int = SHAPE, rounds: int = 5) -> dict:
    """Alternate the two timers `rounds` times (ABAB...) so load from other processes hits
    both alike; report the median of each and the median of the per-round ratios."""
    dev = Device("cpu")
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    c = torch.empty(size, size, dtype=dtype)
    fn = lambda: torch.matmul(a, b, out=c)  # noqa: E731
    timer = tb.Timer("torch.matmul(a, b, out=c)", globals={"torch": torch, "a": a, "b": b, "c": c},
                     num_threads=torch.get_num_threads())
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(measure(fn, dev, Budget(warmup_s=0.05, rep_s=0.4)).stats()["time_s"])
        theirs.append(timer.blocked_autorange(min_run_time=0.4).median)
    flop = 2 * size**3
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {"harness_tflops": flop / med(ours) / 1e12, "torch_benchmark_tflops": flop / med(theirs) / 1e12,
            "ratio": med([t / o for o, t in zip(ours, theirs)])}


@pytest.mark.parametrize("name", list(DTYPES))
def test_gemm_figure_vs_torch_benchmark(benchmark, name):
    result = benchmark.pedantic(harness_vs_blocked_autorange, args=(DTYPES[name],), rounds=1, iterations=1)
    print(f"\n{name} {SHAPE}^3: harness {result['harness_tflops']:.4f} TFLOP/s, "
          f"torch.utils.benchmark {result['torch_benchmark_tflops']:.4f} TFLOP/s, "
          f"harness/torch = {result['ratio']:.3f}")
    benchmark.extra_info.update(result)
    assert result["harness_tflops"] > 0 and result["torch_benchmark_tflops"] > 0


def test_timer_overhead(benchmark):
    overhead = benchmark.pedantic(timer_overhead_s, args=(Device("cpu"),), rounds=1, iterations=1)
    print(f"\nCPU timer overhead per sample: {overhead * 1e6:.3f} us")
    benchmark.extra_info["timer_overhead_s"] = overhead
    assert overhead >= 0
