"""The GEMM family on the CPU, end to end through the runner's row building."""

import pytest
import torch

from harness.benchmarks import gemm
from harness.core.cases import Case
from harness.core.row import build_row
from harness.runner import measure_case


def _case(dtype="fp32", m=64, n=48, k=32, data="randn"):
    return Case.make("gemm", "matmul", dtype, m=m, n=n, k=k, data=data)


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_cpu_gemm_ok_and_checked(fast_ctx, dtype):
    status, outcome, error = measure_case(_case(dtype), fast_ctx)
    assert status == "ok", error
    assert outcome.flop == 2 * 64 * 48 * 32
    assert outcome.check.ok and outcome.check.max_rel_err <= gemm.TOLERANCE[dtype]
    row = build_row(_case(dtype), "run", status, outcome, error=error, started_at="now", wall_s=0.1)
    assert row["tflops"] == pytest.approx(row["flop"] / row["time_s"] / 1e12)
    assert len(row["samples_s"]) == row["n_samples"] >= 3


def test_wrong_matmul_fails_the_row(fast_ctx, monkeypatch):
    def wrong(a, b, out):
        torch.matmul(a, b, out=out)
        out[3, 5] += 1.0  # one wrong element, as a buggy kernel would produce

    monkeypatch.setattr(gemm, "_matmul", wrong)
    status, outcome, error = measure_case(_case("fp32"), fast_ctx)
    assert status == "failed"
    assert error.startswith("wrong result: max relative error")
    row = build_row(_case(), "run", status, outcome, error=error, started_at="now", wall_s=0.1)
    assert row["check"]["ok"] is False and row["tflops"] is not None  # fast but wrong


def test_nan_result_fails(fast_ctx, monkeypatch):
    monkeypatch.setattr(gemm, "_matmul", lambda a, b, out: out.fill_(float("nan")))
    status, _, error = measure_case(_case("bf16"), fast_ctx)
    assert status == "failed" and "wrong result" in error


def test_zeros_variant_runs_and_is_exact(fast_ctx):
    status, outcome, _ = measure_case(_case("bf16", data="zeros"), fast_ctx)
    assert status == "ok" and outcome.check.max_rel_err == 0.0


@pytest.mark.parametrize("dtype,reason", [("tf32", "tensor-core"), ("fp8", "needs a CUDA GPU")])
def test_gpu_only_dtypes_skip_on_cpu(fast_ctx, dtype, reason):
    status, outcome, error = measure_case(_case(dtype), fast_ctx)
    assert status == "skipped" and reason in error and outcome is None


def test_too_large_is_skipped_out_of_memory(fast_ctx, monkeypatch):
    monkeypatch.setattr(fast_ctx.dev, "free_bytes", lambda: 1 << 20)
    status, _, error = measure_case(_case("fp32", m=4096, n=4096, k=4096), fast_ctx)
    assert status == "skipped" and error.startswith("out of memory")


def test_allocator_oom_becomes_skipped(fast_ctx, monkeypatch):
    def oom(*a, **k):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")

    monkeypatch.setattr(gemm, "_fill", oom)
    status, _, error = measure_case(_case(), fast_ctx)
    assert status == "skipped" and "out of memory" in error


def test_other_exception_is_failed_row(fast_ctx, monkeypatch):
    monkeypatch.setattr(gemm, "_fill", lambda *a, **k: 1 / 0)
    status, _, error = measure_case(_case(), fast_ctx)
    assert status == "failed" and error.startswith("ZeroDivisionError")


def test_precision_flags_restored():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision())
    with gemm.precision("tf32"):
        assert torch.backends.cuda.matmul.allow_tf32 is True
    assert (torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()) == before


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["fp32", "tf32", "bf16", "fp16", "fp8"])
def test_cuda_gemm_all_dtypes(dtype):
    from harness.measure.context import Context
    from harness.measure.device import resolve
    from harness.measure.timing import Budget

    ctx = Context(dev=resolve("cuda"), budget=Budget(warmup_s=0.01, rep_s=0.05))
    status, outcome, error = measure_case(_case(dtype, m=2048, n=2048, k=2048), ctx)
    # Every dtype runs on a GPU; the one allowed skip is fp8 where the hardware or torch says
    # it cannot (compute capability < 8.9, or a torch without _scaled_mm), with that reason.
    cap = torch.cuda.get_device_capability()
    fp8_refused = dtype == "fp8" and (cap < (8, 9) or not hasattr(torch, "_scaled_mm"))
    if fp8_refused:
        assert status == "skipped" and ("compute capability" in error or "_scaled_mm" in error), error
        return
    assert status == "ok", error
    assert outcome.check.ok
    assert all(s > 0 for s in outcome.measurement.samples_s)


@pytest.mark.gpu
def test_cuda_events_agree_with_host_clock():
    """Per-iteration CUDA events vs perf_counter around synced calls on a long GEMM."""
    from harness.measure.context import Context
    from harness.measure.device import resolve
    from harness.measure.timing import Budget, measure

    dev = resolve("cuda")
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    fn = lambda: a @ a  # noqa: E731
    ev = measure(fn, dev, Budget(rep_s=0.2)).stats()["time_s"]
    import time

    host = measure(fn, dev, Budget(rep_s=0.2), clock=time.perf_counter).stats()["time_s"]
    assert ev == pytest.approx(host, rel=0.1)


def test_flush_buffer_counts_once_in_the_memory_check(cpu_dev):
    # Once allocated, the flush buffer is already out of the free memory: counting it again
    # would skip shapes that fit.
    assert cpu_dev.flush_bytes_to_allocate() == cpu_dev.flush_bytes() > 0
    cpu_dev.flush_cache()
    assert cpu_dev.flush_bytes_to_allocate() == 0
