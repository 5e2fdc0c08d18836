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


# ------------------------------------------------------------------ mamf-finder's method


def _method_case(dtype="fp32", **method):
    return Case.make("gemm", "matmul", dtype, m=64, n=48, k=32, data="randn", **method)


@pytest.mark.parametrize("rewrite", [True, False])
def test_output_rewritten_before_every_timed_call_or_not(fast_ctx, monkeypatch, rewrite):
    """mamf-finder's C.copy_(C_rand): with the rewrite on, every call finds C holding the random
    copy, never the previous product; with it off, C still holds the previous product."""
    seen = []

    def record(a, b, out):
        seen.append(out.clone())
        torch.matmul(a, b, out=out)
        seen.append(out.clone())

    monkeypatch.setattr(gemm, "_matmul", record)
    status, outcome, error = measure_case(_method_case(out_rewrite=rewrite), fast_ctx)
    assert status == "ok", error
    entries, products = seen[2::2], seen[1:-1:2]  # each call's C on entry, the call before's product
    assert len(entries) >= 9  # at least 1 + 5 estimate + 1 warm-up + 3 timed calls
    held_product = [torch.equal(e, p) for e, p in zip(entries, products)]
    assert not any(held_product) if rewrite else all(held_product)
    assert ("random C" in outcome.extra["out_rewrite"]) is rewrite


@pytest.mark.parametrize("layout,strides", [("nk", (1, 32)), ("kn", (48, 1))])
def test_b_layout(fast_ctx, monkeypatch, layout, strides):
    """nk: B built (n, k) contiguous and used transposed, a column-major k×n operand (as
    mamf-finder); kn: (k, n) row-major. The product is checked either way."""
    got = {}

    def record(a, b, out):
        got["shape"], got["stride"] = tuple(b.shape), b.stride()
        torch.matmul(a, b, out=out)

    monkeypatch.setattr(gemm, "_matmul", record)
    status, outcome, error = measure_case(_method_case(b_layout=layout), fast_ctx)
    assert status == "ok", error
    assert got == {"shape": (32, 48), "stride": strides}
    assert outcome.check.ok


def test_method_is_in_the_case_identity(fast_ctx):
    from dataclasses import replace

    default = gemm.cases("quick", fast_ctx)
    assert default and all(c.p["b_layout"] == "nk" and c.p["out_rewrite"] is True for c in default)
    ctx = replace(fast_ctx, options={"b_layout": ["nk", "kn"], "out_rewrite": [True, False],
                                     "fp8_out": ["fp8", "bf16"]})
    both = gemm.cases("quick", ctx)
    fp8 = [c for c in both if c.dtype == "fp8"]
    other = [c for c in both if c.dtype != "fp8"]
    assert len(other) == 4 * len([c for c in default if c.dtype != "fp8"])
    assert {c.p["b_layout"] for c in fp8} == {"nk"}  # _scaled_mm takes a column-major B only
    assert {(c.p["out"], c.p["out_rewrite"]) for c in fp8} == {("fp8", True), ("fp8", False),
                                                               ("bf16", True), ("bf16", False)}
    assert len({c.id for c in both}) == len(both)
    assert "b_layout=kn" in next(c for c in other if c.p["b_layout"] == "kn").id


def test_bad_method_options_are_usage_errors():
    from harness.core.errors import UsageError

    with pytest.raises(UsageError, match="--b-layout 'mk': choose from nk, kn"):
        gemm.check_options({"b_layout": ["mk"]})
    with pytest.raises(UsageError, match="--fp8-out 'fp16'"):
        gemm.check_options({"fp8_out": ["fp16"]})


def test_fp8_output_check_saturates_and_rounds_like_fp8():
    """An fp8 (e4m3) output keeps 3 mantissa bits and saturates at ±448: the check compares
    with the reference clamped to ±448, at fp8's rounding. torch._scaled_mm runs on this CPU,
    so the real fp8 product is what is checked."""
    if not hasattr(torch, "_scaled_mm"):
        pytest.skip("torch without _scaled_mm")
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(64, 512, generator=gen).to(torch.float8_e4m3fn)
    b = torch.randn(48, 512, generator=gen).to(torch.float8_e4m3fn).t()
    one = torch.ones((), dtype=torch.float32)
    for out_dtype in (torch.float8_e4m3fn, torch.bfloat16):
        c = torch.empty(64, 48, dtype=out_dtype)
        try:
            gemm._scaled_mm(a, b, one, one, c)
        except RuntimeError as exc:  # a CPU build without fp8 matmul
            pytest.skip(f"torch._scaled_mm on this CPU: {exc}")
        fp8_out = out_dtype == torch.float8_e4m3fn
        check = gemm.verify(a, b, c, "fp8", on_cuda=False, out="fp8" if fp8_out else "bf16")
        assert check.ok, check
        assert check.tol == (gemm.FP8_OUT_TOLERANCE if fp8_out else gemm.TOLERANCE["fp8"])
    # A product past 448 saturates: the clamped reference accepts it, a wrong sign does not.
    big = torch.full((4, 64), 4.0).to(torch.float8_e4m3fn)  # each dot product: 64 × 16 = 1024
    c = torch.full((4, 4), 448.0).to(torch.float8_e4m3fn)
    assert gemm.verify(big, big.t(), c, "fp8", on_cuda=False, out="fp8").ok
    assert not gemm.verify(big, big.t(), (-c.float()).to(torch.float8_e4m3fn), "fp8", on_cuda=False,
                           out="fp8").ok


def test_search_ranks_by_a_stated_statistic():
    """The best shape by the mean (mamf-finder's table), by the median or by the fastest
    sample can differ; the answer names the statistic and says when its row is noisy."""
    from harness.analysis.gemm_search import best_shapes, best_text
    from tests.conftest import built_row

    flop = 2 * 4096**3
    steady = [flop / 800e12] * 40  # 800 TFLOP/s every time
    spiky = [flop / 840e12] * 28 + [flop / 600e12] * 12  # median 840, mean lower, IQR wide
    rows = [built_row("gemm", "matmul", "bf16", {"m": 4096, "n": 4096, "k": k, "data": "randn",
                                                 "b_layout": "nk", "out_rewrite": True},
                      flop=flop, samples_s=s, label="search") for k, s in ((4096, steady), (4097, spiky))]
    rows[1]["flop"] = flop  # same work, for the ranking's sake
    by_mean, = best_shapes(rows)
    by_median, = best_shapes(rows, "median")
    assert by_mean["statistic"] == "mean" and by_mean["shape"] == (4096, 4096, 4096)
    assert by_median["shape"] == (4096, 4096, 4097) and by_median["noisy"]
    text = best_text(by_median)
    assert "TFLOP/s median (ranked by median;" in text and "NOISY" in text
    assert "b_layout=nk out_rewrite=True" in text
    with pytest.raises(ValueError):
        best_shapes(rows, "p99")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,method", [("bf16", {"b_layout": "kn"}), ("bf16", {"out_rewrite": False}),
                                          ("fp8", {"out": "fp8"}), ("fp8", {"out": "bf16"})])
def test_cuda_gemm_methods(dtype, method):
    """mamf-finder's method and its alternatives run and check on a GPU (fp8 out: saturating)."""
    from harness.measure.context import Context
    from harness.measure.device import resolve
    from harness.measure.timing import Budget

    if dtype == "fp8" and torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("fp8 needs compute capability >= 8.9")
    ctx = Context(dev=resolve("cuda"), budget=Budget(warmup_s=0.01, rep_s=0.05))
    case = Case.make("gemm", "matmul", dtype, m=2048, n=2048, k=2048, data="randn", **method)
    status, outcome, error = measure_case(case, ctx)
    assert status == "ok", error
    assert outcome.extra["out_dtype"] == method.get("out", dtype)
