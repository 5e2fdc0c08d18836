"""Memory bandwidth family: STREAM kernels, peak FMA arithmetic, host and peer copies.

Method (docs/sources.md "Memory"): STREAM's four operations plus BabelStream's dot over
arrays at least 4× the last-level cache (L2 on a GPU, L3 on a CPU), counted by STREAM's
convention (flops.stream_bytes: copy/scale 2 words, add/triad 3, dot 2; no
write-allocate credit) and checked against a float64 reference. On a GPU the hand-written
kernels in kernels/stream.cu (16-byte vector accesses, grid-stride loop, launched through
CuPy on torch's stream) run beside torch's own tensor ops; on a CPU torch runs beside
numpy as a cross-check. Host↔device, device-local and peer copies follow nvbandwidth:
copy-engine memcpys, bytes counted once per copy (one side), every row says which
convention it uses in extra["byte_convention"].
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from harness.measure import device as devmod
from harness.measure import cupy_kernels
from harness.core.cases import Case
from harness.benchmarks.base import Family
from harness.core.result import Check, Outcome, check_within, relative_error
from harness.measure.context import Context
from harness.core.errors import SkipCase
from harness.core.flops import STREAM_WORDS, fma_flop, stream_bytes
from harness.core.sizes import parse_size_list
from harness.measure.timing import measure

NAME = "memory"
STREAM_OPS = tuple(STREAM_WORDS)  # copy, scale, add, triad, dot
TRANSFER_OPS = ("h2d", "d2h", "bidir", "d2d", "p2p_write", "p2p_read")
TORCH_DTYPE = {"fp32": torch.float32, "fp64": torch.float64}
NUMPY_DTYPE = {"fp32": np.float32, "fp64": np.float64}
# q in scale and triad. BabelStream uses 0.4; 0.375 is exact in every float type, so the
# float64 reference and the kernel multiply by the same number.
SCALAR = 0.375

# Largest error relative to the largest reference value. Elementwise results are one or
# two roundings away from the float64 reference (2^-24 ≈ 6e-8 in fp32); a dot product
# adds up millions of terms in the working precision, blockwise, so it gets more room.
TOLERANCE = {"fp32": 1e-6, "fp64": 1e-14}
DOT_TOLERANCE = {"fp32": 1e-4, "fp64": 1e-12}

MiB, GiB = 1 << 20, 1 << 30
GPU_MIN_ARRAY_BYTES = 1 * GiB  # BabelStream-class arrays; ≥ 4× the 50-60 MB L2 of H100/H200
CACHE_MULTIPLE = 4  # STREAM's rule: each array at least 4× the last-level cache
CPU_MIN_ARRAY_BYTES = 16 * MiB
ROUND_ELEMENTS = 1 << 20
STREAM_BLOCK = 256  # must match STREAM_BLOCK in kernels/stream.cu
STREAM_UNROLL = 1  # must match STREAM_UNROLL's default in kernels/stream.cu
NUMPY_CHUNK_BYTES = 1 << 20  # per ufunc call: big enough that call overhead is small (256 KiB
# chunks ran 7-20% slower on the 2-core EPYC build machine), small enough to stay in cache
VERIFY_CHUNK = 1 << 24  # elements per float64 reference chunk on the GPU
SAMPLE_POINTS = 1 << 20  # strided elements checked on the CPU (plus head and tail)

TRANSFER_SIZES = {
    "quick": (256 * MiB,),
    "standard": (1 * MiB, 16 * MiB, 256 * MiB, 1 * GiB),
    "full": tuple(4**i * MiB for i in range(6)),  # 1 MiB .. 1 GiB, as nvbandwidth sweeps
}
P2P_BYTES = 256 * MiB
# fp32: 8 chains × 2^17 FMAs per thread is ~10 ms on an H200 (~60 TFLOP/s), ~25 ms on an A100.
PEAK_ITERS = 1 << 17
PEAK_ACC = 8  # must match PEAK_ACC in kernels/peak.cu
PEAK_TOLERANCE = {"fp32": 1e-5, "fp16": 1e-2}  # the chains stall a few ulps below 1 in fp16

BYTE_CONVENTION = {
    "stream": "STREAM: copy/scale 2 words, add/triad 3, dot 2 per element; no write-allocate credit",
    "h2d": "nvbandwidth: bytes copied (one side)",
    "d2h": "nvbandwidth: bytes copied (one side)",
    "bidir": "sum of both directions (nvbandwidth's bidirectional tests print one direction)",
    "d2d": "nvbandwidth device_local_copy: bytes copied (one side); memory traffic is 2x (read + write)",
    "p2p_write": "nvbandwidth: bytes copied (one side)",
    "p2p_read": "nvbandwidth: bytes copied (one side)",
}


# ---------------------------------------------------------------- sizes and cases

def stream_elements(dev: devmod.Device, dtype: str) -> int:
    """Elements per array: ≥ 4× the last-level cache, rounded up to 2^20 elements."""
    eb = torch.finfo(TORCH_DTYPE[dtype]).bits // 8
    floor = GPU_MIN_ARRAY_BYTES if dev.is_cuda else CPU_MIN_ARRAY_BYTES
    nbytes = max(floor, CACHE_MULTIPLE * dev.last_level_cache_bytes())
    return math.ceil(nbytes / eb / ROUND_ELEMENTS) * ROUND_ELEMENTS


def cases(suite: str, ctx: Context) -> list[Case]:
    dev = ctx.dev
    out: list[Case] = []
    dtypes = ("fp32",) if suite == "quick" else ("fp32", "fp64")
    if dev.is_cuda:
        for dt in dtypes:
            n = stream_elements(dev, dt)
            for backend in ("cupy-kernel", "torch"):
                out += [Case.make(NAME, op, dt, backend=backend, n=n, label="hbm")
                        for op in STREAM_OPS]
        out += [Case.make(NAME, "peak_fma", dt, backend="cupy-kernel", iters=PEAK_ITERS,
                          label="peak arithmetic") for dt in ("fp32", "fp16")]
        out += _transfer_cases(suite, ctx.options.get("transfer_sizes"))
        if suite != "quick" and torch.cuda.device_count() > 1:
            out += _p2p_cases(torch.cuda.device_count())
        return out
    for dt in dtypes:
        n = stream_elements(dev, dt)
        # quick keeps a CPU run short (each case moves ~0.4 GB at a few GB/s, ~17 times)
        torch_ops = ("copy", "triad", "dot") if suite == "quick" else STREAM_OPS
        numpy_ops = ("triad",) if suite == "quick" else STREAM_OPS
        # Each numpy cross-check right after its torch case: on a shared machine, figures
        # taken minutes apart differ by more than the 10% the cross-check is judged by.
        for op in torch_ops:
            out.append(Case.make(NAME, op, dt, backend="torch", n=n, label="dram"))
            if op in numpy_ops:
                out.append(Case.make(NAME, op, dt, backend="numpy", n=n, label="dram cross-check"))
    return out


def _transfer_cases(suite: str, sizes_text: str | None = None) -> list[Case]:
    """Host/device and device-local copies at the suite's sizes, or at --transfer-sizes."""
    sizes = parse_size_list(sizes_text, "--transfer-sizes") if sizes_text else TRANSFER_SIZES[suite]
    out = []
    if suite == "quick":
        combos = [("h2d", "pinned"), ("d2h", "pinned")]
    else:
        combos = [(op, mem) for op in ("h2d", "d2h", "bidir") for mem in ("pinned", "pageable")]
    for op, mem in combos:
        out += [Case.make(NAME, op, "u8", size_bytes=s, host_mem=mem, label="host") for s in sizes]
    out += [Case.make(NAME, "d2d", "u8", size_bytes=s, label="device-local") for s in sizes]
    return out


def _p2p_cases(count: int) -> list[Case]:
    out = []
    for src in range(count):
        for dst in range(count):
            if src != dst:
                out.append(Case.make(NAME, "p2p_write", "u8", src=src, dst=dst,
                                     size_bytes=P2P_BYTES, label="peer"))
                out.append(Case.make(NAME, "p2p_read", "u8", backend="cupy", src=src, dst=dst,
                                     size_bytes=P2P_BYTES, label="peer"))
    return out


def power_case(case: Case, backend: str) -> bool:
    """The sustained, power-measured case: the STREAM triad over the large arrays."""
    if case.op != "triad" or case.dtype != "fp32":
        return False
    return case.backend == ("cupy-kernel" if backend == "cuda" else "torch")


# ---------------------------------------------------------------- run

def run(case: Case, ctx: Context) -> Outcome:
    if case.op in STREAM_OPS:
        return _stream(case, ctx)
    if case.op == "peak_fma":
        return _peak(case, ctx)
    if case.op in ("h2d", "d2h", "bidir", "d2d"):
        return _transfer(case, ctx)
    if case.op in ("p2p_write", "p2p_read"):
        return _p2p(case, ctx)
    raise SkipCase(f"unknown memory operation {case.op!r}")


def _elem_bytes(dtype: str) -> int:
    if dtype not in TORCH_DTYPE:
        raise SkipCase(f"dtype {dtype} is not a STREAM dtype here ({', '.join(TORCH_DTYPE)})")
    return torch.finfo(TORCH_DTYPE[dtype]).bits // 8


def _fill(n: int, dtype: torch.dtype, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """Random values in [0.5, 1.5): never zeros, all positive so a dot product's error can
    be judged against its size. On the CPU one random block is tiled (drawing 10^8
    random numbers there takes seconds; the bandwidth does not care)."""
    if device.type == "cuda":
        return torch.empty(n, dtype=dtype, device=device).uniform_(0.5, 1.5, generator=gen)
    block = min(n, 1 << 20)
    base = torch.empty(block, dtype=dtype).uniform_(0.5, 1.5, generator=gen)
    out = torch.empty(n, dtype=dtype)
    reps = n // block
    out[: reps * block].view(reps, block).copy_(base.expand(reps, block))
    out[reps * block:] = base[: n - reps * block]
    return out


def _torch_stream(op: str, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, q: float):
    """The baseline: torch's own tensor op for `op` (the dot returns its 0-d tensor)."""
    if op == "copy":
        return c.copy_(a)
    if op == "scale":
        return torch.mul(a, q, out=c)
    if op == "add":
        return torch.add(a, b, out=c)
    if op == "triad":
        return torch.add(a, b, alpha=q, out=c)
    return torch.dot(a, b)


def _stream(case: Case, ctx: Context) -> Outcome:
    dev, op, backend = ctx.dev, case.op, case.backend
    eb = _elem_bytes(case.dtype)
    n = int(case.p["n"])
    if backend == "cupy-kernel":
        cupy_kernels.cupy_module()  # no CuPy: skipped, whatever the device
        if not dev.is_cuda:
            raise SkipCase("the CuPy kernels need a CUDA GPU")
    elif backend == "numpy" and dev.is_cuda:
        raise SkipCase("numpy runs on the host; it is the CPU cross-check")
    elif backend not in ("torch", "numpy"):
        raise SkipCase(f"unknown STREAM backend {backend!r}")
    scratch = 4 * VERIFY_CHUNK * 8 if dev.is_cuda else 0  # float64 reference chunks
    dev.check_fits(3 * n * eb + scratch, f"three {n}-element {case.dtype} arrays")

    kern = None
    if backend == "cupy-kernel":
        sfx = "f32" if case.dtype == "fp32" else "f64"
        kern = cupy_kernels.load("stream.cu", dev.index, (f"{op}_{sfx}",))[f"{op}_{sfx}"]

    tdt = TORCH_DTYPE[case.dtype]
    device = dev.torch_device
    gen = torch.Generator(device=device).manual_seed(20240531)
    a = _fill(n, tdt, gen, device)
    b = _fill(n, tdt, gen, device)
    c = torch.empty(n, dtype=tdt, device=device)
    result: dict = {}
    extra = {"byte_convention": BYTE_CONVENTION["stream"], "array_bytes": n * eb,
             "llc_bytes": dev.last_level_cache_bytes(), "scalar": SCALAR}

    pool = None
    if backend == "torch":
        def fn():
            result["dot"] = _torch_stream(op, a, b, c, SCALAR)
        extra["threads"] = None if dev.is_cuda else torch.get_num_threads()
    elif backend == "numpy":
        threads = torch.get_num_threads()
        pool = ThreadPoolExecutor(threads)
        fn = _numpy_stream(op, a.numpy(), b.numpy(), c.numpy(), NUMPY_DTYPE[case.dtype](SCALAR),
                           threads, pool, result)
        extra.update(threads=threads, numpy_chunk_bytes=NUMPY_CHUNK_BYTES)
    else:
        fn, info = _kernel_stream(op, kern, a, b, c, SCALAR, case.dtype, dev)
        partial = info.pop("partial")
        extra.update(info)

    try:
        meas = measure(fn, dev, ctx.budget, clock=ctx.clock, window=ctx.window)
    finally:
        if pool is not None:
            pool.shutdown()
    if op == "dot":
        if backend == "cupy-kernel":
            result["dot"] = partial.double().sum()  # BabelStream also sums the partials apart
        value = float(result["dot"])
    else:
        value = None
    check = verify(op, a, b, c, value, case.dtype, full=dev.is_cuda)
    return Outcome(measurement=meas, nbytes=stream_bytes(op, n, eb), check=check, extra=extra)


def _numpy_stream(op, a, b, c, q, threads, pool, result):
    """numpy over `threads` contiguous parts in parallel (ufuncs release the GIL), so the
    cross-check uses as many cores as torch. numpy cannot fuse the triad: it runs as
    t = q·b into a cache-sized scratch buffer per thread, then c = a + t, so t never leaves
    the cache, c is written once, and the memory traffic stays STREAM's 3 words. (Building
    q·b in c and adding a into it ran 4-18% slower on the 2-core EPYC build machine.)"""
    n = a.shape[0]
    bounds = [(i * n // threads, (i + 1) * n // threads) for i in range(threads)]
    chunk = max(1024, NUMPY_CHUNK_BYTES // a.itemsize)
    scratch = [np.empty(chunk, dtype=a.dtype) for _ in range(threads)] if op == "triad" else []

    def part(i):
        lo, hi = bounds[i]
        if op == "copy":
            np.copyto(c[lo:hi], a[lo:hi])
        elif op == "scale":
            np.multiply(a[lo:hi], q, out=c[lo:hi])
        elif op == "add":
            np.add(a[lo:hi], b[lo:hi], out=c[lo:hi])
        elif op == "triad":
            for s in range(lo, hi, chunk):
                e = min(s + chunk, hi)
                t = scratch[i][: e - s]
                np.multiply(b[s:e], q, out=t)
                np.add(a[s:e], t, out=c[s:e])
        else:
            return float(np.dot(a[lo:hi], b[lo:hi]))
        return None

    def fn():
        parts = list(pool.map(part, range(threads)))
        if op == "dot":
            result["dot"] = math.fsum(parts)

    return fn


def _kernel_stream(op, kern, a, b, c, q, dtype, dev):
    """The CuPy launch of kernels/stream.cu for `op` (grid: see below)."""
    for t in (a, b, c):
        if t.data_ptr() % 16:
            raise SkipCase("the vector kernels need 16-byte aligned arrays")
    props = torch.cuda.get_device_properties(dev.index)
    if op == "dot":  # one partial sum per block: one resident wave keeps the partials few
        per_sm = max(1, getattr(props, "max_threads_per_multi_processor", 2048) // STREAM_BLOCK)
        grid = props.multi_processor_count * per_sm
    else:
        # One pass: each thread moves STREAM_UNROLL vectors and exits, and the hardware hands
        # blocks to whichever SM is free. On the H200 one resident wave striding the whole
        # array ran at 3.9-4.0 TB/s whatever the unroll, 4 waves at 4.15, one pass at 4.39
        # (torch 4.34; scripts/stream_variants.py): the static split waits on the slowest SM.
        vec = 16 // a.element_size()
        grid = max(1, -(-(a.numel() // vec) // (STREAM_BLOCK * STREAM_UNROLL)))
    partial = torch.zeros(grid, dtype=a.dtype, device=a.device)
    launch = cupy_kernels.Launcher(dev.index)
    qs = np.float32(q) if dtype == "fp32" else np.float64(q)
    n = np.int64(a.numel())
    ca, cb, cc, cp = (cupy_kernels.as_cupy(t) for t in (a, b, c, partial))
    args = {"copy": (ca, cc, n), "scale": (ca, cc, qs, n), "add": (ca, cb, cc, n),
            "triad": (ca, cb, cc, qs, n), "dot": (ca, cb, cp, n)}[op]

    def fn():
        launch(kern, grid, STREAM_BLOCK, args)

    info = {"partial": partial, "grid": grid, "block": STREAM_BLOCK, "vector_bytes": 16,
            "arch": cupy_kernels.arch(dev.index), "compiler": "nvrtc via cupy.RawModule"}
    return fn, info


def _expected(op: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if op == "copy":
        return a
    if op == "scale":
        return SCALAR * a
    if op == "add":
        return a + b
    return a + SCALAR * b


def verify(op: str, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, dot: float | None,
           dtype: str, full: bool) -> Check:
    """Compare against float64. `full` checks every element (cheap on a GPU); otherwise a
    strided sample of ~1M elements plus the first and last 4096 (where tails go wrong).
    The dot product is always recomputed in full, in float64."""
    n = a.numel()
    if op == "dot":
        if a.is_cuda:
            ref = sum(torch.dot(a[s:s + VERIFY_CHUNK].double(), b[s:s + VERIFY_CHUNK].double()).item()
                      for s in range(0, n, VERIFY_CHUNK))
        else:  # einsum casts chunk by chunk and sums in float64, without a float64 copy
            ref = float(np.einsum("i,i->", a.numpy(), b.numpy(), dtype=np.float64))
        err = abs(dot - ref) if dot == dot else float("inf")
        # positive inputs: |sum| = sum of |terms|
        return check_within(relative_error(err, abs(ref)), DOT_TOLERANCE[dtype],
                            "float64 dot over every element")
    if full:
        err, scale = 0.0, 0.0
        for s in range(0, n, VERIFY_CHUNK):
            e = min(n, s + VERIFY_CHUNK)
            ref = _expected(op, a[s:e].double(), b[s:e].double())
            err = max(err, (c[s:e].double() - ref).abs().max().item())
            scale = max(scale, ref.abs().max().item())
        where = "every element"
    else:
        step = max(1, n // SAMPLE_POINTS) | 1  # odd: samples land on every vector lane
        idx = torch.cat([torch.arange(0, min(n, 4096)), torch.arange(0, n, step),
                         torch.arange(max(0, n - 4096), n)]).to(a.device)
        ref = _expected(op, a[idx].double(), b[idx].double())
        err = (c[idx].double() - ref).abs().max().item()
        scale = ref.abs().max().item()
        where = f"{idx.numel()} sampled elements (stride {step}, head and tail)"
    return check_within(relative_error(err, scale), TOLERANCE[dtype], f"float64 on {where}")


# ---------------------------------------------------------------- peak arithmetic

def _peak(case: Case, ctx: Context) -> Outcome:
    dev = ctx.dev
    cupy_kernels.cupy_module()
    if not dev.is_cuda:
        raise SkipCase("the peak-FMA kernels need a CUDA GPU")
    if case.dtype not in PEAK_TOLERANCE:
        raise SkipCase(f"peak FMA runs fp32 and fp16 (half2), not {case.dtype}")
    name = "fma_f32" if case.dtype == "fp32" else "fma_f16x2"
    kern = cupy_kernels.load("peak.cu", dev.index, (name,))[name]
    props = torch.cuda.get_device_properties(dev.index)
    block = 256
    grid = props.multi_processor_count * max(
        1, getattr(props, "max_threads_per_multi_processor", 2048) // block)
    threads = grid * block
    iters = int(case.p["iters"])
    launch = cupy_kernels.Launcher(dev.index)
    if case.dtype == "fp32":
        out = torch.zeros(threads, dtype=torch.float32, device=dev.torch_device)
        args = (cupy_kernels.as_cupy(out), np.float32(15 / 16), np.float32(1 / 16), np.int32(iters))
        lanes = 1
    else:
        out = torch.zeros(threads, dtype=torch.int32, device=dev.torch_device)
        m2 = _half2_bits(15 / 16)
        s2 = _half2_bits(1 / 16)
        args = (cupy_kernels.as_cupy(out), np.uint32(m2), np.uint32(s2), np.int32(iters))
        lanes = 2

    def fn():
        launch(kern, grid, block, args)

    meas = measure(fn, dev, ctx.budget, clock=ctx.clock, window=ctx.window)
    got = out.double() if case.dtype == "fp32" else out.view(torch.float16).double()
    err = relative_error((got - 1.0).abs().max().item(), 1.0)
    check = check_within(err, PEAK_TOLERANCE[case.dtype], "every chain's fixed point s / (1 - m) = 1")
    flop = fma_flop(threads * iters * PEAK_ACC, lanes)
    return Outcome(measurement=meas, flop=flop, check=check,
                   extra={"grid": grid, "block": block, "chains_per_thread": PEAK_ACC,
                          "flop_convention": "2 FLOP per FMA; half2 FMA = 2 FMAs",
                          "arch": cupy_kernels.arch(dev.index)})


def _half2_bits(x: float) -> int:
    """The same fp16 value in both halves of a 32-bit word."""
    h = int(np.array(x, dtype=np.float16).view(np.uint16))
    return (h << 16) | h


# ---------------------------------------------------------------- host and peer copies

def _host_free() -> int | None:
    return devmod.Device("cpu").free_bytes()


def _random_bytes(size: int, device: torch.device, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 256, (size,), dtype=torch.uint8, device=device, generator=gen)


def _host_buffer(size: int, pinned: bool, like: torch.Tensor | None = None) -> torch.Tensor:
    buf = torch.empty(size, dtype=torch.uint8, pin_memory=pinned)
    if like is not None:
        buf.copy_(like)
    return buf


def _transfer(case: Case, ctx: Context) -> Outcome:
    dev, op, p = ctx.dev, case.op, case.p
    if not dev.is_cuda:
        raise SkipCase("host/device copies need a CUDA GPU")
    size = int(p["size_bytes"])
    pinned = p.get("host_mem", "pinned") == "pinned"
    ways = 2 if op == "bidir" else 1
    dev.check_fits(ways * size * (2 if op == "d2d" else 1) + size, f"{size / MiB:g} MiB copies")
    host_free = _host_free()
    if op != "d2d" and host_free is not None and ways * size > 0.8 * host_free:
        raise SkipCase(f"out of memory: needs {ways * size / GiB:.2f} GiB of host memory, "
                       f"{host_free / GiB:.2f} GiB free")
    device = dev.torch_device
    gen = torch.Generator(device=device).manual_seed(7)
    pairs = []  # (source, destination) of every copy, checked afterwards
    if op in ("h2d", "bidir"):
        src_dev = _random_bytes(size, device, gen)
        h_in = _host_buffer(size, pinned, like=src_dev)
        d_in = torch.empty(size, dtype=torch.uint8, device=device)
        del src_dev
        pairs.append((h_in, d_in))
    if op in ("d2h", "bidir"):
        d_out = _random_bytes(size, device, gen)
        h_out = _host_buffer(size, pinned)
        pairs.append((d_out, h_out))
    if op == "d2d":
        d_src = _random_bytes(size, device, gen)
        d_dst = torch.empty_like(d_src)
        pairs.append((d_src, d_dst))

    if op == "bidir":
        cur = torch.cuda.current_stream(dev.index)
        streams = [torch.cuda.Stream(dev.index), torch.cuda.Stream(dev.index)]

        def fn():
            for s, (src, dst) in zip(streams, pairs):
                s.wait_stream(cur)  # start together, after the timer's start event
                with torch.cuda.stream(s):
                    dst.copy_(src, non_blocking=True)
            for s in streams:
                cur.wait_stream(s)  # the timer's stop event waits for both
    else:
        src, dst = pairs[0]

        def fn():
            dst.copy_(src, non_blocking=True)

    meas = measure(fn, dev, ctx.budget, clock=ctx.clock, window=ctx.window)
    dev.sync()
    check = _check_copies(pairs)
    extra = {"byte_convention": BYTE_CONVENTION[op], "method": "torch copy_ (cudaMemcpyAsync, copy engine)"}
    if op != "d2d":
        extra["host_mem"] = "pinned" if pinned else "pageable"
    if op == "d2d":
        extra["traffic_bytes"] = 2 * size
    if op == "bidir":
        extra["streams"] = 2
        if not pinned:
            extra["note"] = "pageable copies are staged through the driver and may not overlap"
    return Outcome(measurement=meas, nbytes=ways * size, check=check, extra=extra)


def _check_copies(pairs) -> Check:
    """Every copy must be bit-exact: compare a strided sample and the last bytes."""
    bad = 0
    for src, dst in pairs:
        n = src.numel()
        step = max(1, n // SAMPLE_POINTS) | 1
        for sl in (slice(0, n, step), slice(max(0, n - 4096), n)):
            bad += int((src[sl].cpu() != dst[sl].cpu()).sum().item())
    # Bit-exact: the "error" is the count of differing bytes, and none is tolerated.
    return check_within(float(bad), 0.0, "bytes equal to the source on a strided sample and the tail")


def _p2p(case: Case, ctx: Context) -> Outcome:
    """One ordered pair of GPUs: write = the source pushes (torch copy_ on the source's
    stream); read = the destination pulls (cudaMemcpyPeerAsync on its own stream, CuPy)."""
    p = case.p
    src, dst, size = int(p["src"]), int(p["dst"]), int(p["size_bytes"])
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if max(src, dst) >= count:
        raise SkipCase(f"peer copy {src}→{dst} needs {max(src, dst) + 1} GPUs; {count} visible")
    reader = case.op == "p2p_read"
    if reader:
        cupy = cupy_kernels.cupy_module()
    timing = dst if reader else src
    tdev = devmod.Device("cuda", timing)
    for idx in (src, dst):
        devmod.Device("cuda", idx).check_fits(size, f"a {size / MiB:g} MiB peer buffer")
    with torch.cuda.device(timing):
        gen = torch.Generator(device=f"cuda:{src}").manual_seed(11)
        a = _random_bytes(size, torch.device("cuda", src), gen)
        b = torch.empty(size, dtype=torch.uint8, device=torch.device("cuda", dst))
        peer = torch.cuda.can_device_access_peer(timing, src if reader else dst)
        if reader:
            rt = cupy.cuda.runtime
            with cupy.cuda.Device(dst):
                try:
                    rt.deviceEnablePeerAccess(src)
                except Exception:
                    pass  # already enabled (torch may have done it) or not possible
            handle = torch.cuda.current_stream(dst).cuda_stream

            def fn():
                rt.memcpyPeerAsync(b.data_ptr(), dst, a.data_ptr(), src, size, handle)
        else:
            def fn():
                b.copy_(a, non_blocking=True)

        meas = measure(fn, tdev, ctx.budget, clock=ctx.clock, window=ctx.window)
        torch.cuda.synchronize(src)
        torch.cuda.synchronize(dst)
        check = _check_copies([(a, b)])
    return Outcome(measurement=meas, nbytes=size, check=check,
                   extra={"byte_convention": BYTE_CONVENTION[case.op], "peer_access": peer,
                          "timed_on": f"cuda:{timing}",
                          "method": "cudaMemcpyPeerAsync on the reader's stream" if reader
                          else "torch copy_ on the writer's stream"})


def check_options(options) -> None:
    """--transfer-sizes is parsed up front, whichever families run."""
    if options.get("transfer_sizes"):
        parse_size_list(options["transfer_sizes"], "--transfer-sizes")


FAMILY = Family(NAME, cases, run, power_case, check_options)
