"""GEMM family: square sweeps, LLM-shaped GEMMs and a maximum-achievable search.

Method (mamf-finder, stas00/ml-engineering compute/accelerator/benchmarks/mamf-finder.py;
docs/sources.md "GEMM"): random normal inputs (zeros run faster and draw less power), the
cache flushed and the output C rewritten with random values before every timed call, outside
the timed region (mamf-finder's `C.copy_(C_rand)`), FLOP = 2·m·n·k, and every result checked
against a higher-precision reference on a slice, so a fast wrong kernel is a failed row.

Where gwbench and mamf-finder could differ, the choice is an option whose default is
mamf-finder's, and it is part of the case identity (params), so runs made with different
choices never compare as the same case:
  b_layout     nk: B built (n, k) contiguous and used as its transpose, a column-major k×n
               operand (mamf-finder, every dtype); kn: B built (k, n) row-major. fp8 is
               always nk (torch._scaled_mm requires a column-major B).
  out_rewrite  True: C rewritten before each timed call (mamf-finder); False: not.
  out          fp8 only: the output dtype; fp8 (e4m3, mamf-finder) or bf16.
The search's ranking statistic (mean by default, as mamf-finder's table) is analysis/gemm_search.py's.
"""

from __future__ import annotations

import contextlib

import torch

from harness.core.cases import Case
from harness.benchmarks.base import Family
from harness.core.result import Check, Outcome, check_within, relative_error
from harness.measure.context import Context
from harness.core.errors import SkipCase, UsageError
from harness.core.flops import DTYPE_BYTES, gemm_bytes, gemm_flop
from harness.measure.timing import measure
from harness.core.models import MODELS

NAME = "gemm"
DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8")
TORCH_DTYPE = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16,
               "fp16": torch.float16}

# Largest error of the checked slice relative to the largest reference value. The
# reference sees the same (already rounded) inputs, so what remains is accumulation order
# and output rounding: bf16 keeps 8 mantissa bits (2^-8 ≈ 0.004), fp16 11, tf32 rounds
# inputs to 10 bits inside the kernel (≈ 5e-4 relative over a long dot product).
TOLERANCE = {"fp64": 1e-10, "fp32": 1e-4, "tf32": 1e-2, "bf16": 2e-2, "fp16": 5e-3, "fp8": 2e-2}
# An fp8 (e4m3) output keeps 3 mantissa bits: rounding alone is up to 2^-4 = 6.25% of a value,
# so of the largest one too. e4m3fn's largest finite value is 448, and CUDA's conversions to it
# saturate there (__NV_SATFINITE, CUDA Math API "FP8 Conversion"), so the reference is clamped to
# ±448 likewise. Were cuBLASLt's fp8 epilogue to write NaN on overflow instead, the NaN fails the
# check: a GPU run shows which (randn products over k = 16384 reach past 448: σ = 128).
FP8_OUT_TOLERANCE = 7e-2
FP8_MAX = 448.0
B_LAYOUTS = ("nk", "kn")
FP8_OUTS = ("fp8", "bf16")
# mamf-finder's choices (see the module docstring): the defaults of --b-layout, --out-rewrite, --fp8-out.
DEFAULT_B_LAYOUT, DEFAULT_OUT_REWRITE, DEFAULT_FP8_OUT = "nk", True, "fp8"
CHECK_ROWS, CHECK_COLS = 64, 256

SQUARES = {
    ("cuda", "quick"): (4096, 8192),
    ("cuda", "standard"): (1024, 2048, 4096, 8192, 16384),
    ("cuda", "full"): (512, 1024, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 20480),
    ("cpu", "quick"): (256, 512),
    ("cpu", "standard"): (256, 512, 1024, 2048),
    ("cpu", "full"): (256, 512, 1024, 2048, 4096),
}
SUITE_DTYPES = {
    ("cuda", "quick"): ("bf16", "fp8", "tf32"),
    ("cpu", "quick"): ("fp32", "bf16", "tf32", "fp8"),
}
# Tokens per micro-batch for the LLM-shaped GEMMs (micro-batch 1 × sequence 8192 on a
# GPU; far fewer on a CPU, where the 405B logits GEMM would take minutes).
LLM = {
    ("cuda", "quick"): (("llama3-8b",), 8192, ("bf16",)),
    ("cuda", "standard"): (("llama3-8b", "llama3-70b", "llama3-405b"), 8192, ("bf16", "fp8")),
    ("cuda", "full"): (("llama3-8b", "llama3-70b", "llama3-405b"), 8192, DTYPES),
    ("cpu", "quick"): (("llama3-8b",), 16, ("fp32",)),
    ("cpu", "standard"): (("llama3-8b", "llama3-70b"), 64, ("fp32",)),
    ("cpu", "full"): (("llama3-8b", "llama3-70b", "llama3-405b"), 64, ("fp32", "bf16")),
}
# A CPU without AVX512-BF16 or AMX runs bf16/fp16 GEMMs through a slow generic path: about
# 1 GFLOP/s on the 2-core AMD EPYC build machine (torch 2.13), 50x under fp32. The quick and
# standard CPU suites keep those dtypes to squares up to 512 (0.2 s a call); `full` has them all.
CPU_HALF_MAX = 512

SEARCH_RANGE = {"cuda": (6144, 14336, 2048), "cpu": (256, 1024, 256)}


def parse_range(text: str, name: str) -> tuple[int, int, int]:
    """`START:STOP[:STEP]` (STOP inclusive, like mamf-finder's ranges) or a single size."""
    parts = text.split(":")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"--{name}-range {text!r}: expected START:STOP[:STEP] of integers") from None
    if len(nums) == 1:
        nums = [nums[0], nums[0], 1]
    elif len(nums) == 2:
        nums.append(max(1, nums[1] - nums[0]))
    if len(nums) != 3 or nums[0] <= 0 or nums[1] < nums[0] or nums[2] <= 0:
        raise UsageError(f"--{name}-range {text!r}: need 0 < START <= STOP and STEP > 0")
    return nums[0], nums[1], nums[2]


def search_cases(backend: str, options: dict) -> list[Case]:
    ranges = []
    for dim in ("m", "n", "k"):
        text = options.get(f"{dim}_range")
        start, stop, step = parse_range(text, dim) if text else SEARCH_RANGE[backend]
        ranges.append(range(start, stop + 1, step))
    count = len(ranges[0]) * len(ranges[1]) * len(ranges[2])
    if count > 20_000:
        raise UsageError(f"--search over {count} shapes: narrow the ranges (at most 20000)")
    dtypes = options.get("dtypes") or ("bf16",)
    data = options.get("data", "randn")
    return [Case.make(NAME, "matmul", dt, m=m, n=n, k=k, data=data, label="search", **method)
            for dt in dtypes for method in methods(dt, options)
            for m in ranges[0] for n in ranges[1] for k in ranges[2]]


def methods(dtype: str, options: dict) -> list[dict]:
    """The method params of a `dtype` case, one dict per chosen combination (the options take
    comma lists, so one run can hold both B layouts or output rewrite on and off)."""
    layouts = ("nk",) if dtype == "fp8" else tuple(options.get("b_layout") or (DEFAULT_B_LAYOUT,))
    rewrites = tuple(options.get("out_rewrite") or (DEFAULT_OUT_REWRITE,))
    outs = tuple(options.get("fp8_out") or (DEFAULT_FP8_OUT,)) if dtype == "fp8" else (None,)
    out = []
    for b in dict.fromkeys(layouts):
        for rw in dict.fromkeys(rewrites):
            for o in dict.fromkeys(outs):
                out.append({"b_layout": b, "out_rewrite": bool(rw)} | ({"out": o} if o else {}))
    return out


def cases(suite: str, ctx: Context) -> list[Case]:
    backend = ctx.dev.backend
    if ctx.options.get("search"):
        return search_cases(backend, ctx.options)
    if ctx.options.get("model"):
        return layer_cases(ctx.options)
    data = ctx.options.get("data", "randn")
    out = []
    for dt in SUITE_DTYPES.get((backend, suite), DTYPES):
        for s in SQUARES[(backend, suite)]:
            if backend == "cpu" and suite != "full" and dt in ("bf16", "fp16") and s > CPU_HALF_MAX:
                continue
            out += [Case.make(NAME, "matmul", dt, m=s, n=s, k=s, data=data, label="square", **meth)
                    for meth in methods(dt, ctx.options)]
    models, tokens, llm_dtypes = LLM[(backend, suite)]
    for name in models:
        for gemm_name, m, n, k in MODELS[name].gemms(tokens):
            if (backend, suite) == ("cpu", "quick") and gemm_name == "logits":
                continue  # a 128256 x 4096 fp32 weight is 2.1 GB: randn alone took 13.6 s here
            for dt in llm_dtypes:
                out += [Case.make(NAME, "matmul", dt, m=m, n=n, k=k, data=data,
                                  label=f"{name} {gemm_name}", **meth)
                        for meth in methods(dt, ctx.options)]
    return out


@contextlib.contextmanager
def precision(dtype: str):
    """fp32 means IEEE fp32 (TF32 off); tf32 switches tensor-core TF32 on; restored after."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision())
    tf32 = dtype == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved[0]
        torch.set_float32_matmul_precision(saved[1])


def _support(case: Case, ctx: Context) -> None:
    dev, dt, p = ctx.dev, case.dtype, case.p
    if dt not in DTYPES:
        raise SkipCase(f"dtype {dt} is not a GEMM dtype here ({', '.join(DTYPES)})")
    if dt == "tf32" and not dev.is_cuda:
        raise SkipCase("tf32 is a tensor-core mode of NVIDIA GPUs; the CPU has none")
    if dt == "fp8":
        if not dev.is_cuda:
            raise SkipCase("fp8 matmul (torch._scaled_mm) needs a CUDA GPU")
        cap = torch.cuda.get_device_capability(dev.index)
        if cap < (8, 9):
            raise SkipCase(f"fp8 matmul needs compute capability >= 8.9; this GPU is {cap[0]}.{cap[1]}")
        if not hasattr(torch, "_scaled_mm") or not hasattr(torch, "float8_e4m3fn"):
            raise SkipCase(f"torch {torch.__version__} has no _scaled_mm / float8_e4m3fn")
        if any(p[d] % 16 for d in ("m", "n", "k")):
            raise SkipCase("torch._scaled_mm needs m, n, k divisible by 16")
    if p.get("data", "randn") not in ("randn", "zeros"):
        raise SkipCase(f"unknown input distribution {p.get('data')!r}")
    if _layout(case) not in B_LAYOUTS or (dt == "fp8" and _layout(case) != "nk"):
        raise SkipCase(f"b_layout {_layout(case)!r}: {'fp8 takes nk only' if dt == 'fp8' else 'nk or kn'}")
    if dt == "fp8" and _out(case) not in FP8_OUTS:
        raise SkipCase(f"fp8 output {_out(case)!r}: fp8 or bf16")


def _layout(case: Case) -> str:
    return case.p.get("b_layout", DEFAULT_B_LAYOUT)


def _rewrite(case: Case) -> bool:
    return bool(case.p.get("out_rewrite", DEFAULT_OUT_REWRITE))


def _out(case: Case) -> str:
    """The output dtype name: an fp8 case's `out` param, else the input dtype."""
    return case.p.get("out", DEFAULT_FP8_OUT) if case.dtype == "fp8" else case.dtype


def _fill(shape, dtype, data, gen, device) -> torch.Tensor:
    if data == "zeros":
        return torch.zeros(shape, dtype=dtype, device=device)
    return torch.randn(shape, dtype=dtype, device=device, generator=gen)


def _matmul(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return torch.matmul(a, b, out=out)


def _scaled_mm(a, b, scale_a, scale_b, out):
    # Into a preallocated C, as mamf-finder does (`torch._scaled_mm(A, B, s, s, out=C)`).
    return torch._scaled_mm(a, b, scale_a=scale_a, scale_b=scale_b, out_dtype=out.dtype, out=out)


OUT_TORCH = {"fp8": "float8_e4m3fn", "bf16": "bfloat16", "fp16": "float16", "fp32": "float32",
             "tf32": "float32"}


def _out_bytes(case: Case) -> int:
    return DTYPE_BYTES[_out(case)]


def _needed_bytes(case: Case) -> int:
    p = case.p
    ib, ob = DTYPE_BYTES[case.dtype], _out_bytes(case)
    rewrite = ob * p["m"] * p["n"] if _rewrite(case) else 0  # the random C copied in each call
    # inputs, output, plus fp32 staging of the inputs while they are generated
    return int(gemm_bytes(p["m"], p["n"], p["k"], ib, ob) + rewrite
               + 4 * max(p["m"] * p["k"], p["k"] * p["n"]))


def _operand_b(n: int, k: int, dtype, layout: str, data: str, gen, device) -> torch.Tensor:
    """B as a k×n operand: `nk` builds (n, k) contiguous and transposes it (column-major, as
    mamf-finder for every dtype and _scaled_mm always), `kn` builds (k, n) row-major."""
    if layout == "nk":
        return _fill((n, k), dtype, data, gen, device).t()
    return _fill((k, n), dtype, data, gen, device)


def run(case: Case, ctx: Context) -> Outcome:
    _support(case, ctx)
    dev = ctx.dev
    p = case.p
    m, n, k, data = p["m"], p["n"], p["k"], p.get("data", "randn")
    dev.check_fits(_needed_bytes(case) + dev.flush_bytes_to_allocate())

    device = dev.torch_device
    gen = torch.Generator(device=device).manual_seed(1234)
    layout, rewrite = _layout(case), _rewrite(case)
    out_dtype = getattr(torch, OUT_TORCH[_out(case)])
    with precision(case.dtype):
        if case.dtype == "fp8":
            # As mamf-finder: generated in fp32, then converted; unit fp32 scales.
            a = _fill((m, k), torch.float32, data, gen, device).to(torch.float8_e4m3fn)
            b = _fill((n, k), torch.float32, data, gen, device).to(torch.float8_e4m3fn).t()  # nk
            one = torch.ones((), dtype=torch.float32, device=device)

            def fn():
                _scaled_mm(a, b, one, one, c)
        else:
            tdt = TORCH_DTYPE[case.dtype]
            a = _fill((m, k), tdt, data, gen, device)
            b = _operand_b(n, k, tdt, layout, data, gen, device)

            def fn():
                _matmul(a, b, c)

        c = torch.empty((m, n), dtype=out_dtype, device=device)
        setup = None
        if rewrite:  # mamf-finder's C.copy_(C_rand): C is written by the copy before each call
            c_rand = _fill((m, n), torch.float32, data, gen, device).to(out_dtype)

            def setup():
                c.copy_(c_rand)

        meas = measure(fn, dev, ctx.budget, flush=True, setup=setup, clock=ctx.clock, window=ctx.window)
        check = verify(a, b, c, case.dtype, dev.is_cuda, out=_out(case))

    ib, ob = DTYPE_BYTES[case.dtype], _out_bytes(case)
    return Outcome(
        measurement=meas,
        flop=gemm_flop(m, n, k),
        nbytes=gemm_bytes(m, n, k, ib, ob),
        check=check,
        extra={"matmul_flags_in_case": {"allow_tf32": case.dtype == "tf32"},
               "out_dtype": _out(case),
               "b_layout": ("(n, k) contiguous, used transposed: column-major k×n (mamf-finder)"
                            if layout == "nk" else "(k, n) row-major"),
               "out_rewrite": ("C copied from a random C before each timed call, untimed (mamf-finder)"
                               if rewrite else "C not rewritten between calls")},
    )


def verify(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, dtype: str, on_cuda: bool,
           out: str | None = None) -> Check:
    """Compare a CHECK_ROWS × CHECK_COLS slice of C with a reference on the same inputs.

    float64 on the CPU; float32 with TF32 off on the GPU (float64 GEMMs are slow there). An fp8
    output is compared with the reference saturated to fp8's range, at fp8's rounding.
    """
    r = min(a.shape[0], CHECK_ROWS)
    cols = min(b.shape[1], CHECK_COLS)
    ref_dtype = torch.float32 if on_cuda else torch.float64
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        ref = a[:r].to(ref_dtype) @ b[:, :cols].to(ref_dtype)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    got = c[:r, :cols].to(ref_dtype)
    tol = TOLERANCE[dtype]
    what = f"{str(ref_dtype).removeprefix('torch.')} on a {r}x{cols} slice"
    if out == "fp8":
        ref, tol = ref.clamp(-FP8_MAX, FP8_MAX), FP8_OUT_TOLERANCE
        what += ", saturated to fp8 e4m3's ±448"
    rel = relative_error((got - ref).abs().max().item(), ref.abs().max().item())
    return check_within(rel, tol, what)


# Shapes given a sustained, power-measured window (--sustain): the bf16 square GEMM the
# published anchors use on a GPU (8192³, docs/sources.md), and the quick suite's on a CPU.
POWER_SIZES = {"cuda": 8192, "cpu": 512}


def power_case(case: Case, backend: str) -> bool:
    return (case.dtype == "bf16" and case.label == "square"
            and case.p.get("m") == POWER_SIZES.get(backend))


def check_options(options) -> None:
    """--m/n/k-range, --b-layout, --out-rewrite, --fp8-out and --model's layout are checked up
    front, whichever families run."""
    for dim in ("m", "n", "k"):
        if options.get(f"{dim}_range"):
            parse_range(options[f"{dim}_range"], dim)
    for key, flag, allowed in (("b_layout", "--b-layout", B_LAYOUTS), ("fp8_out", "--fp8-out", FP8_OUTS)):
        bad = [v for v in options.get(key) or () if v not in allowed]
        if bad:
            raise UsageError(f"{flag} {bad[0]!r}: choose from {', '.join(allowed)}")
    if options.get("model"):
        layer_shapes(options)


# ---------------------------------------------------------------- a model's layer shapes
# `gwbench run --only gemm --model FILE_OR_PRESET --tp N --micro-batch M --seq S` measures exactly
# the GEMMs one training layer of that layout runs on each GPU (harness/core/models.py
# layer_gemms: QKV or MLA projections, attention output, MLP up/gate and down or the experts', the
# logits; columns or rows split over TP), forward and backward: for y = x @ W (m x n x k), dgrad
# dx = dy @ W^T is m x k x n and wgrad dW = x^T @ dy is k x n x m. `gwbench model --from RUN` then
# takes these rates for exactly these shapes (analysis/perfmodel/profile.py).


def layer_shapes(options) -> list[tuple[str, int, int, int]]:
    """(label, m, n, k) of the layout's forward and backward GEMMs, each shape once."""
    from harness.core.models import load_model  # no torch: core

    model = load_model(options["model"])
    def given(key, default):
        v = options.get(key)
        return default if v is None else v

    tp, mb, seq = given("model_tp", 1), given("model_micro_batch", 1), given("model_seq", 8192)
    for flag, v in (("--tp", tp), ("--micro-batch", mb), ("--seq", seq)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UsageError(f"{flag} must be a whole number >= 1, got {v!r}")
    if model.heads % tp:
        raise UsageError(f"--tp {tp} does not divide {model.name}'s {model.heads} attention heads")
    if model.kv_heads % tp and tp % model.kv_heads:
        raise UsageError(f"--tp {tp} and {model.name}'s {model.kv_heads} KV heads: neither divides the other")
    tokens = mb * seq
    gemms = model.layer_gemms(tokens, tp, moe=False)
    if model.moe:
        gemms += [g for g in model.layer_gemms(tokens, tp, moe=True) if g[0] not in {x[0] for x in gemms}]
    gemms.append(model.head_gemm(tokens, tp))
    out, seen = [], set()
    for name, m, n, k, _count in gemms:
        for kind, shape in (("fwd", (m, n, k)), ("dgrad", (m, k, n)), ("wgrad", (k, n, m))):
            if shape not in seen:
                seen.add(shape)
                out.append((f"{model.name} tp{tp} {name} {kind}", *shape))
    return out


def layer_cases(options) -> list[Case]:
    dtypes = options.get("dtypes") or ("bf16",)
    data = options.get("data", "randn")
    return [Case.make(NAME, "matmul", dt, m=m, n=n, k=k, data=data, label=label, **meth)
            for dt in dtypes for meth in methods(dt, options) for label, m, n, k in layer_shapes(options)]


FAMILY = Family(NAME, cases, run, power_case, check_options)
