"""The memory family: byte counts, case lists, CPU runs end to end, checks that catch
wrong results, skipped rows without CuPy, and (on a GPU) the real kernels."""

from dataclasses import replace

import builtins
import json
import sys
import types

import pytest
import torch

from conftest import FAST, gwbench
from harness.measure import cupy_kernels as kernels_cupy
from harness.benchmarks import memory
from harness.core.cases import Case
from harness.measure.device import Device
from harness.core.errors import SkipCase
from harness.core.flops import fma_flop, stream_bytes
from harness.core.row import build_row
from harness.runner import measure_case

SMALL = (1 << 16) + 3  # not a multiple of any vector width: the tails are exercised


def _case(op="triad", dtype="fp32", backend="torch", n=SMALL):
    return Case.make("memory", op, dtype, backend=backend, n=n)


# ---------------------------------------------------------------- pure counts

@pytest.mark.parametrize("op,words", [("copy", 2), ("scale", 2), ("add", 3), ("triad", 3), ("dot", 2)])
def test_stream_bytes_follow_stream_convention(op, words):
    assert stream_bytes(op, 1000, 4) == words * 1000 * 4
    assert stream_bytes(op, 1 << 28, 8) == words * (1 << 28) * 8


@pytest.mark.parametrize("args", [("nstream", 10, 4), ("copy", 0, 4), ("copy", 10, 0)])
def test_stream_bytes_rejects_bad_input(args):
    with pytest.raises(ValueError):
        stream_bytes(*args)


def test_fma_flop_counts_two_per_fma_and_half2_lanes():
    assert fma_flop(10) == 20
    assert fma_flop(10, lanes=2) == 40


def test_half2_bits():
    assert memory._half2_bits(1.0) == 0x3C003C00
    assert memory._half2_bits(1 / 16) == 0x2C002C00


# ---------------------------------------------------------------- case lists

@pytest.mark.parametrize("llc_mib", [32, 97, 256])
def test_cpu_cases_are_at_least_four_times_the_llc(monkeypatch, fast_ctx, llc_mib):
    # The device's cache size is given, so the sizing rule is checked against a known answer:
    # 4 x LLC of fp32 elements, rounded up to a whole 2^20 elements.
    monkeypatch.setattr(Device, "last_level_cache_bytes", lambda self: llc_mib << 20)
    cs = memory.cases("quick", fast_ctx)
    ops = {(c.op, c.backend) for c in cs}
    assert {("copy", "torch"), ("triad", "torch"), ("dot", "torch"), ("triad", "numpy")} <= ops
    want = -(-4 * (llc_mib << 20) // 4 // (1 << 20)) * (1 << 20)
    assert {c.p["n"] for c in cs} == {want}
    std = memory.cases("standard", fast_ctx)
    assert {c.dtype for c in std} == {"fp32", "fp64"}
    for backend in ("torch", "numpy"):
        assert {(op, backend) for op in memory.STREAM_OPS} <= {(c.op, c.backend) for c in std}


def test_gpu_case_lists(monkeypatch, fast_ctx):
    """The CUDA sweep, built on a CPU box with the device facts faked."""
    dev = Device("cuda")
    monkeypatch.setattr(Device, "cache_bytes", lambda self: 50 << 20)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    ctx = replace(fast_ctx, dev=dev)
    quick = memory.cases("quick", ctx)
    std = memory.cases("standard", ctx)
    kern = [c for c in std if c.backend == "cupy-kernel" and c.op in memory.STREAM_OPS]
    assert {c.op for c in kern} == set(memory.STREAM_OPS)
    assert all(c.p["n"] * (4 if c.dtype == "fp32" else 8) >= 4 * (50 << 20) for c in kern)
    assert {c.dtype for c in std if c.op == "peak_fma"} == {"fp32", "fp16"}
    sizes = {c.p["size_bytes"] for c in std if c.op == "h2d"}
    assert min(sizes) == 1 << 20 and max(sizes) == 1 << 30
    assert {c.p["host_mem"] for c in std if c.op == "bidir"} == {"pinned", "pageable"}
    pairs = {(c.p["src"], c.p["dst"], c.op) for c in std if c.op.startswith("p2p")}
    assert pairs == {(0, 1, "p2p_write"), (1, 0, "p2p_write"), (0, 1, "p2p_read"), (1, 0, "p2p_read")}
    assert not any(c.op.startswith("p2p") for c in quick)
    assert len({c.id for c in std}) == len(std)


def test_power_case_is_the_large_triad():
    assert memory.power_case(_case(backend="cupy-kernel"), "cuda")
    assert not memory.power_case(_case(backend="torch"), "cuda")
    assert not memory.power_case(_case("copy", backend="cupy-kernel"), "cuda")
    assert memory.power_case(_case(backend="torch"), "cpu")


# ---------------------------------------------------------------- CPU end to end

@pytest.mark.parametrize("backend", ["torch", "numpy"])
@pytest.mark.parametrize("op", memory.STREAM_OPS)
def test_cpu_stream_ok_and_checked(fast_ctx, op, backend):
    case = _case(op, backend=backend)
    status, outcome, error = measure_case(case, fast_ctx)
    assert status == "ok", error
    assert outcome.nbytes == stream_bytes(op, SMALL, 4)
    assert outcome.check.ok and outcome.check.max_rel_err <= outcome.check.tol
    assert outcome.extra["byte_convention"].startswith("STREAM")
    row = build_row(case, "run", status, outcome, error=error, started_at="now", wall_s=0.1)
    assert row["gbps"] == pytest.approx(row["bytes"] / row["time_s"] / 1e9)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_cpu_fp64_triad_and_dot(fast_ctx, backend):
    for op in ("triad", "dot"):
        status, outcome, error = measure_case(_case(op, "fp64", backend), fast_ctx)
        assert status == "ok", error
        assert outcome.nbytes == stream_bytes(op, SMALL, 8)
        assert outcome.check.max_rel_err <= 1e-12


def test_wrong_triad_fails_the_row(fast_ctx, monkeypatch):
    real = memory._torch_stream

    def wrong(op, a, b, c, q):
        out = real(op, a, b, c, q)
        c[-1] += 0.5  # one wrong element in the tail, as a bad remainder loop would give
        return out

    monkeypatch.setattr(memory, "_torch_stream", wrong)
    status, outcome, error = measure_case(_case("triad"), fast_ctx)
    assert status == "failed" and error.startswith("wrong result")
    assert outcome.check.ok is False


def test_wrong_dot_fails_the_row(fast_ctx, monkeypatch):
    # A dot that misses 1/256 of the array (one block of a grid, say).
    monkeypatch.setattr(memory, "_torch_stream",
                        lambda op, a, b, c, q: torch.dot(a[: -SMALL // 256], b[: -SMALL // 256]))
    status, _, error = measure_case(_case("dot"), fast_ctx)
    assert status == "failed" and "wrong result" in error


@pytest.mark.parametrize("full", [True, False])
def test_verify_catches_one_wrong_element(full):
    n = 1 << 21
    a = torch.rand(n) + 0.5
    b = torch.rand(n) + 0.5
    c = a + memory.SCALAR * b
    assert memory.verify("triad", a, b, c, None, "fp32", full).ok
    step = max(1, n // memory.SAMPLE_POINTS) | 1
    c[step * 1000] += 1e-3  # a sampled position, far from head and tail
    chk = memory.verify("triad", a, b, c, None, "fp32", full)
    assert not chk.ok and chk.max_rel_err > chk.tol


def test_nan_fails(fast_ctx, monkeypatch):
    monkeypatch.setattr(memory, "_torch_stream", lambda op, a, b, c, q: c.fill_(float("nan")))
    status, _, error = measure_case(_case("scale"), fast_ctx)
    assert status == "failed" and "wrong result" in error


def test_too_large_is_skipped(fast_ctx, monkeypatch):
    monkeypatch.setattr(fast_ctx.dev, "free_bytes", lambda: 1 << 20)
    status, outcome, error = measure_case(_case(n=1 << 24), fast_ctx)
    assert status == "skipped" and error.startswith("out of memory") and outcome is None


@pytest.mark.parametrize("op,params", [
    ("h2d", {"size_bytes": 1 << 20, "host_mem": "pinned"}),
    ("d2d", {"size_bytes": 1 << 20}),
])
def test_gpu_only_cases_skip_on_cpu(fast_ctx, op, params):
    status, _, error = measure_case(Case.make("memory", op, "u8", **params), fast_ctx)
    assert status == "skipped" and "CUDA GPU" in error


# ---------------------------------------------------------------- without CuPy

@pytest.fixture
def no_cupy(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "cupy" or name.startswith("cupy."):
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_kernel_cases_skip_without_cupy_and_torch_cases_run(fast_ctx, no_cupy):
    status, _, error = measure_case(_case(backend="cupy-kernel"), fast_ctx)
    assert status == "skipped" and "needs CuPy" in error
    status, _, error = measure_case(Case.make("memory", "peak_fma", "fp32", backend="cupy-kernel",
                                              iters=16), fast_ctx)
    assert status == "skipped" and "needs CuPy" in error
    status, _, error = measure_case(_case(backend="torch"), fast_ctx)
    assert status == "ok", error


def test_compile_error_reaches_the_row(monkeypatch):
    """A kernel that fails to compile: NVRTC's message, on one line, in the skip reason."""
    log = ('stream.cu(42): error: identifier "flaot4" is undefined\n'
           '\n1 error detected in the compilation of "stream.cu".')

    class FakeModule:
        def __init__(self, code, options, backend):
            assert backend == "nvrtc" and "--std=c++17" in options

        def compile(self):
            raise RuntimeError(log)

    class FakeDevice:
        def __init__(self, index):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    fake = types.SimpleNamespace(RawModule=FakeModule, cuda=types.SimpleNamespace(Device=FakeDevice))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(kernels_cupy, "_modules", {})
    with pytest.raises(SkipCase) as exc:
        kernels_cupy.load("stream.cu", 0, ("triad_f32",))
    msg = str(exc.value)
    assert "failed to compile" in msg and 'identifier "flaot4" is undefined' in msg
    assert "\n" not in msg


def test_missing_source_is_a_skip():
    with pytest.raises(SkipCase, match="not found"):
        kernels_cupy.source_path("nope.cu")


# ---------------------------------------------------------------- the CLI

def test_cli_runs_the_cpu_family(tmp_path):
    r = gwbench("run", "--only", "memory", "--device", "cpu", "--out", str(tmp_path), *FAST)
    assert r.returncode == 0, r.stderr + r.stdout
    rows = [json.loads(line) for line in next(tmp_path.glob("*/rows.jsonl")).read_text().splitlines()]
    assert rows and all(row["status"] == "ok" for row in rows)
    backends = {(row["op"], row["backend"]) for row in rows}
    assert ("triad", "torch") in backends and ("triad", "numpy") in backends
    assert all(row["gbps"] > 0 and row["check"]["ok"] for row in rows)


# ---------------------------------------------------------------- on a real GPU

def _gpu_ctx():
    from harness.measure.context import Context
    from harness.measure.timing import Budget

    return Context(dev=Device("cuda"), suite="quick", budget=Budget(warmup_s=0.01, rep_s=0.05))


@pytest.mark.gpu
def test_gpu_kernel_triad_is_fast_and_right():
    pytest.importorskip("cupy")
    ctx = _gpu_ctx()
    n = memory.stream_elements(ctx.dev, "fp32")
    status, outcome, error = measure_case(_case(n=n, backend="cupy-kernel"), ctx)
    assert status == "ok", error
    row = build_row(_case(n=n, backend="cupy-kernel"), "run", status, outcome, error=error, started_at="now", wall_s=0.1)
    assert row["check"]["ok"] and row["check"]["reference"].startswith("float64 on every element")
    assert row["gbps"] > 1000, row["gbps"]


@pytest.mark.gpu
@pytest.mark.parametrize("op", memory.STREAM_OPS)
def test_gpu_kernels_verify_with_a_tail(op):
    pytest.importorskip("cupy")
    status, outcome, error = measure_case(_case(op, backend="cupy-kernel", n=(1 << 22) + 3), _gpu_ctx())
    assert status == "ok", error
    assert outcome.check.ok


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_gpu_peak_fma(dtype):
    pytest.importorskip("cupy")
    case = Case.make("memory", "peak_fma", dtype, backend="cupy-kernel", iters=4096)
    status, outcome, error = measure_case(case, _gpu_ctx())
    assert status == "ok", error
    assert outcome.flop > 0 and outcome.check.ok


@pytest.mark.gpu
@pytest.mark.parametrize("op", ["h2d", "d2h", "bidir", "d2d"])
def test_gpu_copies(op):
    params = {"size_bytes": 16 << 20}
    if op != "d2d":
        params["host_mem"] = "pinned"
    status, outcome, error = measure_case(Case.make("memory", op, "u8", **params), _gpu_ctx())
    assert status == "ok", error
    assert outcome.nbytes == (2 if op == "bidir" else 1) * (16 << 20)
