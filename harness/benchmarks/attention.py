"""Attention family: SDPA with each backend pinned, flash_attn, forward and forward+backward.

The backend choice changes attention throughput two-fold (on an H100 the unpinned default
picked a 329 TFLOP/s kernel where cuDNN gave 631 — pytorch issue 142132, docs/sources.md
"Attention"), so every SDPA backend is pinned with `torch.nn.attention.sdpa_kernel` and
measured on its own; `sdpa-default` is measured unpinned and records the kernel torch chose.
A combination a backend refuses is a skipped row carrying torch's own reason.

FLOP: FlashAttention convention (harness.core.flops.attention_flop). Correctness: every case is
rerun with the same backend and dtype at a reduced size, output and gradients compared with
the MATH backend in fp32; the timed output itself is checked on a few query rows too.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import warnings

import torch
import torch.nn.functional as F

from harness.core.cases import Case, check_names, select
from harness.benchmarks.base import Family
from harness.core.result import Check, Outcome, check_within, merge_checks, relative_error
from harness.measure.context import Context
from harness.core.errors import SkipCase, one_line
from harness.core.flops import ATTENTION_FLOP_CONVENTION, DTYPE_BYTES, attention_flop
from harness.measure.timing import measure
from harness.core.models import MODELS

try:  # torch >= 2.3
    from torch.nn.attention import SDPBackend, sdpa_kernel
except ImportError:  # pragma: no cover - older torch: only the unpinned default can run
    SDPBackend = sdpa_kernel = None

NAME = "attention"
OPS = ("fwd", "fwdbwd")
DTYPES = ("fp32", "bf16", "fp16")
TORCH_DTYPE = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

SDPA_BACKENDS = {
    "sdpa-flash": "FLASH_ATTENTION",
    "sdpa-efficient": "EFFICIENT_ATTENTION",
    "sdpa-cudnn": "CUDNN_ATTENTION",
    "sdpa-math": "MATH",
    "sdpa-default": None,  # unpinned: whatever torch's dispatcher picks
}
FLASH_ATTN_BACKENDS = ("flash_attn", "flash_attn3")  # FA2 package, FA3 (flash_attn_interface)
BACKENDS = tuple(SDPA_BACKENDS) + FLASH_ATTN_BACKENDS

# Largest absolute error relative to the largest reference value. The reference sees the
# same rounded inputs; what remains is the kernel's internal rounding: bf16 keeps 8
# mantissa bits (2^-8 ≈ 0.004) and fused kernels also round the probabilities P to the
# input dtype before P·V; fp16 keeps 11. Gradients go through two more rounded GEMMs.
TOLERANCE = {"fp32": 1e-3, "bf16": 4e-2, "fp16": 1e-2}
GRAD_TOLERANCE_FACTOR = 2.0
CHECK_SEQ = 256  # reduced-size correctness run: batch 1, few heads, s <= 256
CHECK_ROWS = 16  # query rows of the timed output checked against an fp32 reference

# Sweeps. "hidden 4096" shapes keep h·d = 4096 so FLOP is the same for every head dim.
HIDDEN = 4096
GPU_TOKENS = 16384  # tokens per step: batch = max(1, GPU_TOKENS // seq)
CPU_TOKENS = 512


def check_backends(names: list[str] | None) -> list[str] | None:
    """Validate `--attn-backend` names; None or empty means every backend."""
    return check_names(names, BACKENDS, "attention backend")


# --- optional flash_attn package -------------------------------------------------------

@functools.cache
def flash_attn_import(backend: str):
    """(flash_attn_func, None) when the package imports, else (None, reason)."""
    module = "flash_attn" if backend == "flash_attn" else "flash_attn_interface"
    try:
        mod = __import__(module)
        return mod.flash_attn_func, None
    except Exception as exc:  # ImportError, or a binary built for another torch/CUDA
        return None, f"{module} not importable: {type(exc).__name__}: {one_line(exc)}"


def _available_flash_attn() -> tuple[str, ...]:
    return tuple(b for b in FLASH_ATTN_BACKENDS if flash_attn_import(b)[0] is not None)


# --- cases -----------------------------------------------------------------------------

def _mk(op, dtype, backend, seq, head_dim, causal, heads=None, kv_heads=None, tokens=GPU_TOKENS,
        label=""):
    heads = heads or HIDDEN // head_dim
    kv_heads = kv_heads or heads
    return Case.make(NAME, op, dtype, backend=backend, batch=max(1, tokens // seq), seq=seq,
                     heads=heads, kv_heads=kv_heads, head_dim=head_dim, causal=causal, label=label)


def _gpu_cases(suite: str, backends: tuple[str, ...]) -> list[Case]:
    fast = tuple(b for b in backends if b != "sdpa-math")
    out: list[Case] = []
    if suite == "quick":
        # The headline shape for every backend, plus training-shaped fwd+bwd and GQA.
        out += [_mk("fwd", "bf16", b, 8192, 128, False, label="headline") for b in backends]
        out += [_mk("fwdbwd", "bf16", b, 8192, 128, True) for b in fast]
        m = MODELS["llama3-8b"]
        out += [_mk("fwd", "bf16", b, 8192, m.d_model // m.heads, True, m.heads, m.kv_heads,
                    label=m.name) for b in fast]
        return out
    full = suite == "full"
    seqs = (512, 1024, 2048, 4096, 8192, 16384, 32768) if full else (512, 2048, 8192, 32768)
    dtypes = ("bf16", "fp16") if full else ("bf16",)
    head_dims = (64, 128, 256)
    for dt in dtypes:
        for hd in head_dims:
            for s in seqs if (full or hd == 128) else (8192,):
                for causal in (False, True):
                    if s == 32768 and not causal and not full:
                        continue  # long context is a causal (training) shape; saves ~10 s
                    for op in OPS:
                        out += [_mk(op, dt, b, s, hd, causal,
                                    label="headline" if (dt, s, hd, causal, op) == ("bf16", 8192, 128, False, "fwd") else "")
                                for b in fast]
    if not full:  # fp16 on the headline shapes only
        out += [_mk(op, "fp16", b, 8192, 128, c) for b in fast for op in OPS for c in (False, True)]
    # MATH materialises the s×s matrix: short sequences only (it is the reference, not a contender).
    for s in (seqs if full else (512, 2048)):
        if s <= 8192:
            out += [_mk("fwd", "bf16", "sdpa-math", s, 128, False)]
            out += [_mk("fwdbwd", "bf16", "sdpa-math", s, 128, True)] if s <= 4096 else []
    out += [_mk("fwd", "bf16", "sdpa-math", 8192, 128, False, label="headline")]
    for name in ("llama3-8b", "llama3-70b", "llama3-405b"):
        m = MODELS[name]
        for op in OPS:
            for s in ((8192, 32768) if full else (8192,)):
                out += [_mk(op, dt, b, s, m.d_model // m.heads, True, m.heads, m.kv_heads, label=name)
                        for b in fast for dt in dtypes]
    return [c for c in out if c.backend in backends]


def _cpu_cases(suite: str, backends: tuple[str, ...]) -> list[Case]:
    out: list[Case] = []
    if suite == "quick":
        # Small enough for 2 cores in a few seconds: bf16 runs slowly on most CPUs (and
        # MATH's bf16 backward very slowly), so bf16 is forward only here.
        out += [_mk(op, "fp32", b, 128, 64, True, heads=4, tokens=256) for op in OPS for b in backends]
        out += [_mk("fwd", "bf16", b, 128, 64, True, heads=4, tokens=256)
                for b in backends if b != "sdpa-math"]
        m = MODELS["llama3-8b"]
        out += [_mk("fwd", "fp32", "sdpa-flash", 64, m.d_model // m.heads, True, m.heads,
                    m.kv_heads, tokens=64, label=m.name)]
        return [c for c in out if c.backend in backends]
    full = suite == "full"
    seqs = (128, 256, 512, 1024) if full else (128, 256, 512)
    for dt in ("fp32", "bf16"):
        for hd in ((64, 128, 256) if full else (64, 128)):
            for s in seqs:
                for causal in (False, True):
                    # MATH's bf16 backward on a CPU takes seconds per call: left out.
                    out += [_mk(op, dt, b, s, hd, causal, heads=8, tokens=CPU_TOKENS)
                            for op in OPS for b in backends
                            if not (b == "sdpa-math" and dt == "bf16" and op == "fwdbwd")]
    for name in (("llama3-8b", "llama3-70b", "llama3-405b") if full else ("llama3-8b",)):
        m = MODELS[name]
        out += [_mk(op, "fp32", b, 256, m.d_model // m.heads, True, m.heads, m.kv_heads,
                    tokens=256, label=name) for op in OPS for b in backends]
    return [c for c in out if c.backend in backends]


def cases(suite: str, ctx: Context) -> list[Case]:
    chosen = check_backends(ctx.options.get("attn_backends"))
    if ctx.dev.is_cuda:
        default = tuple(SDPA_BACKENDS) + _available_flash_attn()
        return select(_gpu_cases(suite, tuple(chosen) if chosen else default))
    # The CPU has no cuDNN or memory-efficient kernels; their rows say so (skipped).
    return select(_cpu_cases(suite, tuple(chosen) if chosen else tuple(SDPA_BACKENDS)))


# --- the attention calls (module-level so tests can substitute a wrong kernel) ----------

@functools.cache
def native_gqa() -> bool:
    """torch >= 2.5 takes `enable_gqa=True` and shares K/V heads inside the kernel."""
    try:
        return "enable_gqa" in inspect.signature(F.scaled_dot_product_attention).parameters
    except (TypeError, ValueError):  # a builtin without a signature: ask the docstring
        return "enable_gqa" in (F.scaled_dot_product_attention.__doc__ or "")


def _sdpa(q, k, v, causal: bool, gqa: bool):
    if gqa:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def _flash_attn(backend: str, q, k, v, causal: bool):
    fn, reason = flash_attn_import(backend)
    if fn is None:
        raise SkipCase(reason)
    out = fn(q, k, v, causal=causal)
    return out[0] if isinstance(out, tuple) else out  # some FA3 builds also return the LSE


def _pin(backend: str):
    """The sdpa_kernel context for an SDPA backend (a no-op for default and flash_attn)."""
    name = SDPA_BACKENDS.get(backend)
    if name is None:
        return contextlib.nullcontext()
    if sdpa_kernel is None:
        raise SkipCase(f"torch {torch.__version__} has no torch.nn.attention.sdpa_kernel to pin {name}")
    return sdpa_kernel(getattr(SDPBackend, name))


class _Attention:
    """One backend's call on tensors in that backend's layout.

    SDPA takes (batch, heads, seq, dim); flash_attn takes (batch, seq, heads, dim). Without
    native GQA (torch < 2.5) K/V are expanded to the query heads once, before timing.
    """

    def __init__(self, backend: str, heads: int, kv_heads: int):
        self.backend = backend
        self.flash_attn = backend in FLASH_ATTN_BACKENDS
        self.gqa = kv_heads != heads
        self.expand = 1 if (self.flash_attn or not self.gqa or native_gqa()) else heads // kv_heads
        self.head_axis = 2 if self.flash_attn else 1

    @property
    def gqa_mode(self) -> str:
        if not self.gqa:
            return "none"
        if self.expand > 1:
            return f"repeat_interleave: K/V expanded to query heads before timing (torch {torch.__version__} has no enable_gqa)"
        return "native (flash_attn)" if self.flash_attn else "native (enable_gqa=True)"

    def shape(self, b: int, h: int, s: int, d: int) -> tuple[int, ...]:
        return (b, s, h, d) if self.flash_attn else (b, h, s, d)

    def prepare_kv(self, t: torch.Tensor) -> torch.Tensor:
        return t.repeat_interleave(self.expand, dim=self.head_axis) if self.expand > 1 else t

    def __call__(self, q, k, v, causal: bool):
        if self.flash_attn:
            return _flash_attn(self.backend, q, k, v, causal)
        return _sdpa(q, k, v, causal, self.gqa and self.expand == 1)


# --- support checks, memory --------------------------------------------------------------

def _support(case: Case, ctx: Context) -> None:
    p = case.p
    if case.op not in OPS:
        raise SkipCase(f"unknown attention op {case.op!r}: choose {', '.join(OPS)}")
    if case.dtype not in DTYPES:
        raise SkipCase(f"dtype {case.dtype} is not an attention dtype here ({', '.join(DTYPES)})")
    if case.backend not in BACKENDS:
        raise SkipCase(f"unknown attention backend {case.backend!r}")
    if p["heads"] % p["kv_heads"]:
        raise SkipCase(f"heads {p['heads']} is not a multiple of kv_heads {p['kv_heads']}")
    if p.get("seq_k", p["seq"]) != p["seq"] and p["causal"]:
        raise SkipCase("causal with q_len != kv_len: SDPA aligns the mask top-left, flash_attn "
                       "bottom-right; not comparable")
    if case.backend in FLASH_ATTN_BACKENDS:
        if not ctx.dev.is_cuda:
            raise SkipCase(f"{case.backend} is a CUDA package; needs a CUDA GPU")
        fn, reason = flash_attn_import(case.backend)
        if fn is None:
            raise SkipCase(reason)
        # The package's documented limits (flash-attn README): fp16/bf16, head dim <= 256.
        if case.dtype not in ("bf16", "fp16"):
            raise SkipCase(f"{case.backend} supports fp16 and bf16 only, not {case.dtype}")
        if p["head_dim"] > 256 or p["head_dim"] % 8:
            raise SkipCase(f"{case.backend} needs head_dim <= 256 and a multiple of 8, not {p['head_dim']}")


def needed_bytes(case: Case) -> int:
    """Generous estimate of the device memory one case allocates."""
    p = case.p
    b, h, kv, s, d = p["batch"], p["heads"], p["kv_heads"], p["seq"], p["head_dim"]
    sk = p.get("seq_k", s)
    e = DTYPE_BYTES[case.dtype]
    tensors = (2 * b * h * s * d + 2 * b * kv * sk * d) * e + 4 * b * h * s  # q, out, k, v, LSE
    if case.op == "fwdbwd":
        # grad_out, dq, dk, dv, and per-query-head dk/dv some GQA kernels keep before summing
        tensors = 2 * tensors + (b * h * s * d + 2 * b * h * sk * d) * e
    if case.backend == "sdpa-math":
        # MATH materialises scores and probabilities (fp32 for fp16/bf16 inputs by default);
        # the backward keeps them plus their gradients.
        tensors += 4 * b * h * s * sk * (3 if case.op == "fwd" else 6)
    return int(tensors * 1.25) + 256 * 2**20  # allocator slack and workspaces


# --- run ---------------------------------------------------------------------------------

def _refused(exc: RuntimeError) -> bool:
    text = str(exc)
    return "No available kernel" in text or "No viable backend" in text


def _reason(exc: Exception, caught: list) -> str:
    """torch's own reason: the warnings it emitted while rejecting kernels, else the error."""
    msgs = []
    for w in caught:
        m = " ".join(str(w.message).split())
        if m and m not in msgs:
            msgs.append(m)
    text = "; ".join(msgs) if msgs else " ".join(str(exc).split())
    return text[:450]


def _default_choice(q, k, v, causal: bool, gqa: bool) -> str:
    """The kernel the unpinned dispatcher picks for these inputs, or 'unknown'."""
    try:
        kw = {"is_causal": causal}
        if gqa:
            kw["enable_gqa"] = True
        idx = int(torch._fused_sdp_choice(q, k, v, **kw))
        if SDPBackend is not None:
            for name, member in getattr(SDPBackend, "__members__", {}).items():
                if int(member) == idx:
                    return name
        return f"backend index {idx}"
    except Exception:
        return "unknown"


def _inputs(att: _Attention, b, h, kv, s, sk, d, dtype, device, gen, grad: bool):
    def make(heads, seq, expand=False):
        t = torch.randn(att.shape(b, heads, seq, d), dtype=torch.float32, device=device,
                        generator=gen).to(dtype)
        if expand:
            t = att.prepare_kv(t)
        return t.requires_grad_(grad)

    return make(h, s), make(kv, sk, True), make(kv, sk, True)


def _step(att: _Attention, q, k, v, causal: bool, op: str, grad_out, result: dict):
    """One timed call. fwd: inference-style forward, no autograd graph. fwdbwd: forward,
    then torch.autograd.grad with a fixed random grad_out, which returns fresh dq/dk/dv
    instead of accumulating into .grad: every iteration does exactly the training step's
    work (no extra add from the second call on, nothing to zero between calls)."""
    if op == "fwd":
        with torch.no_grad():
            result["out"] = att(q, k, v, causal)
        return
    out = att(q, k, v, causal)
    result["grads"] = torch.autograd.grad(out, (q, k, v), grad_out)
    result["out"] = out.detach()


def run(case: Case, ctx: Context) -> Outcome:
    _support(case, ctx)
    dev = ctx.dev
    p = case.p
    b, h, kv, s, d = p["batch"], p["heads"], p["kv_heads"], p["seq"], p["head_dim"]
    sk, causal = p.get("seq_k", s), bool(p["causal"])
    dev.check_fits(needed_bytes(case))  # an estimate: the backends' workspaces vary

    att = _Attention(case.backend, h, kv)
    tdt = TORCH_DTYPE[case.dtype]
    device = dev.torch_device
    gen = torch.Generator(device=device).manual_seed(1234)
    q = k = v = grad_out = result = None
    oom = None
    try:
        with _pin(case.backend):
            grad = case.op == "fwdbwd"
            q, k, v = _inputs(att, b, h, kv, s, sk, d, tdt, device, gen, grad)
            grad_out = torch.randn(q.shape, dtype=torch.float32, device=device,
                                   generator=gen).to(tdt) if grad else None
            chosen = _default_choice(q, k, v, causal, att.gqa and att.expand == 1) \
                if case.backend == "sdpa-default" else None
            result: dict = {}

            def fn():
                _step(att, q, k, v, causal, case.op, grad_out, result)

            _probe(fn, case.backend, dev.is_cuda)
            meas = measure(fn, dev, ctx.budget, flush=False, clock=ctx.clock, window=ctx.window)
            # Inputs at the sizes timed here dwarf L2 (and there is no output to rewrite),
            # so no flush: flush=False, like flash-attn's own benchmarks.
            row_check = _check_rows(att, q, k, v, result["out"], causal, case.dtype)
            small_check = verify(case, dev)
    except torch.cuda.OutOfMemoryError as exc:
        oom = " ".join(str(exc).split())[:300]
    if oom is not None:
        # Outside the except block the traceback (and the frames holding tensors) is gone;
        # drop our own references too so emptying the cache really frees the memory.
        q = k = v = grad_out = result = None
        dev.empty_cache()
        raise SkipCase(f"out of memory: {oom}")
    check = merge_checks(row_check, small_check)
    flop = attention_flop(b, h, s, sk, d, causal, case.op)
    e = DTYPE_BYTES[case.dtype]
    extra = {"backend": case.backend, "causal": causal, "gqa": att.gqa, "gqa_mode": att.gqa_mode,
             "heads": h, "kv_heads": kv, "head_dim": d, "seq": s, "seq_k": sk, "batch": b,
             "tokens": b * s, "flop_convention": ATTENTION_FLOP_CONVENTION,
             "layout": "bshd" if att.flash_attn else "bhsd"}
    if chosen is not None:
        extra["default_backend"] = chosen
    if case.backend in FLASH_ATTN_BACKENDS:
        extra["package"] = "flash_attn" if case.backend == "flash_attn" else "flash_attn_interface"
    return Outcome(
        measurement=meas,
        flop=flop,
        # Compulsory traffic: read q, k, v and write the output once (roofline lower bound).
        nbytes=(2 * b * h * s * d + 2 * b * kv * sk * d) * e,
        check=check,
        extra=extra,
    )


def _probe(fn, backend: str, on_cuda: bool) -> None:
    """Call once, recording torch's warnings, so a refused combination becomes a skipped
    row with the reason torch gives (it warns why each kernel was ruled out, then raises)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn()
        except RuntimeError as exc:
            if isinstance(exc, torch.cuda.OutOfMemoryError) or not _refused(exc):
                raise
            reason = _reason(exc, caught)
            if not on_cuda and not caught:  # torch gives no per-kernel reasons on the CPU
                reason += " (torch on the CPU has FLASH_ATTENTION and MATH kernels only)"
            raise SkipCase(f"{backend} refused this case: {reason}") from None


# --- correctness -------------------------------------------------------------------------

def _rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    got, ref = got.double(), ref.double()
    return relative_error((got - ref).abs().max().item(), ref.abs().max().item())


def _check_rows(att: _Attention, q, k, v, out, causal: bool, dtype: str) -> Check:
    """The last CHECK_ROWS query rows of batch 0, head 0 of the timed output against
    softmax(q kᵀ/√d) v in fp32 on the same inputs (the rows that see the most keys)."""
    ax = att.head_axis
    sel = lambda t, i: t.select(0, 0).select(ax - 1, i)  # noqa: E731 -> (seq, dim)
    qs, ks, vs = sel(q, 0).float(), sel(k, 0).float(), sel(v, 0).float()
    s_q, s_k = qs.shape[0], ks.shape[0]
    rows = torch.arange(max(0, s_q - CHECK_ROWS), s_q, device=qs.device)
    scores = (qs[rows] @ ks.T) / math.sqrt(qs.shape[1])
    if causal:  # top-left aligned; s_q == s_k for causal cases, where both conventions agree
        scores = scores.masked_fill(torch.arange(s_k, device=qs.device)[None, :] > rows[:, None],
                                    float("-inf"))
    ref = torch.softmax(scores, dim=-1) @ vs
    rel = _rel_err(sel(out, 0)[rows].float(), ref)
    return check_within(rel, TOLERANCE[dtype], f"fp32 softmax(QKᵀ/√d)V on {len(rows)} rows of the timed output")


def verify(case: Case, dev) -> Check:
    """Rerun the case's backend and dtype at a reduced size and compare output (and dq, dk,
    dv for fwdbwd) with the MATH backend in fp32 on the same rounded inputs."""
    p = case.p
    h, kv = p["heads"], p["kv_heads"]
    group = h // kv
    h_s, kv_s = (min(group, 8), 1) if group > 1 else (2, 2)  # keep GQA a GQA
    s = min(p["seq"], CHECK_SEQ)
    sk = min(p.get("seq_k", p["seq"]), CHECK_SEQ)
    d, causal, dtype = p["head_dim"], bool(p["causal"]), case.dtype
    att = _Attention(case.backend, h_s, kv_s)
    device = dev.torch_device
    gen = torch.Generator(device=device).manual_seed(4321)
    grad = case.op == "fwdbwd"
    q, k, v = _inputs(att, 1, h_s, kv_s, s, sk, d, TORCH_DTYPE[dtype], device, gen, grad)
    g = torch.randn(q.shape, dtype=torch.float32, device=device, generator=gen).to(q.dtype)
    result: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _step(att, q, k, v, causal, case.op, g, result)
        except RuntimeError as exc:
            if not _refused(exc):
                raise
            # The small shape is refused although the timed one ran: report, do not pass.
            return check_within(float("inf"), TOLERANCE[dtype],
                                f"reduced-size rerun refused: {_reason(exc, caught)}")

    # Reference: MATH in fp32, in SDPA layout, K/V expanded to the query heads.
    def ref_layout(t):
        t = t.detach().float()
        if att.flash_attn:
            t = t.transpose(1, 2)
        if t.shape[1] != h_s:
            t = t.repeat_interleave(h_s // t.shape[1], dim=1)
        return t.contiguous().requires_grad_(grad)

    rq, rk, rv = ref_layout(q), ref_layout(k), ref_layout(v)
    math_ctx = sdpa_kernel(SDPBackend.MATH) if sdpa_kernel is not None else contextlib.nullcontext()
    with math_ctx, torch.enable_grad():
        ref = F.scaled_dot_product_attention(rq, rk, rv, is_causal=causal)
        ref_grads = torch.autograd.grad(ref, (rq, rk, rv), ref_layout(g).detach()) if grad else ()

    def to_ref(t):
        t = t.detach().float()
        return t.transpose(1, 2) if att.flash_attn else t

    errs = {"out": _rel_err(to_ref(result["out"]), ref)}
    if grad:
        dq, dk, dv = (to_ref(x) for x in result["grads"])
        if dk.shape[1] != h_s:  # native GQA: fold the reference's per-query-head K/V grads
            fold = lambda t: t.unflatten(1, (kv_s, h_s // kv_s)).sum(2)  # noqa: E731
            ref_grads = (ref_grads[0], fold(ref_grads[1]), fold(ref_grads[2]))
        for name, got, want in zip(("dq", "dk", "dv"), (dq, dk, dv), ref_grads):
            errs[name] = _rel_err(got, want) / GRAD_TOLERANCE_FACTOR
    worst = max(errs, key=errs.get)
    return check_within(errs[worst], TOLERANCE[dtype],
                        f"MATH fp32 at b=1 h={h_s} kv={kv_s} s={s}: worst {worst}"
                        + (f" (grads scored at 1/{GRAD_TOLERANCE_FACTOR:g})" if grad else ""))


# Shape given a sustained, power-measured window (--sustain): the published anchor shape
# (bf16, head dim 128, non-causal forward, s = 8192) on the fastest expected H100/H200
# backend, cuDNN (docs/sources.md "Attention"); on the CPU one small quick-suite case.
POWER = {
    "cuda": ("fwd", "bf16", "sdpa-cudnn", 8192, 128, False),
    "cpu": ("fwd", "fp32", "sdpa-flash", 128, 64, True),
}


def power_case(case: Case, backend: str) -> bool:
    want = POWER.get(backend)
    if want is None or case.p.get("kv_heads") != case.p.get("heads"):
        return False
    p = case.p
    return (case.op, case.dtype, case.backend, p.get("seq"), p.get("head_dim"), p.get("causal")) == want


def check_options(options) -> None:
    check_backends(options.get("attn_backends"))


FAMILY = Family(NAME, cases, run, power_case, check_options)
