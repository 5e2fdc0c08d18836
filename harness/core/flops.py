"""FLOP and byte counts: pure functions, each with its source. No torch here."""

from __future__ import annotations

from collections.abc import Callable

DTYPE_BYTES = {"fp64": 8, "fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "fp4": 0.5}


def gemm_flop(m: int, n: int, k: int) -> int:
    """C[m,n] = A[m,k] @ B[k,n]: one multiply and one add per (i, j, l) -> 2·m·n·k."""
    for name, v in (("m", m), ("n", n), ("k", k)):
        if v <= 0:
            raise ValueError(f"gemm dimension {name}={v} must be positive")
    return 2 * m * n * k


def gemm_bytes(m: int, n: int, k: int, in_bytes: float, out_bytes: float) -> int:
    """Compulsory traffic: read A and B once, write C once (the roofline lower bound)."""
    return int((m * k + k * n) * in_bytes + m * n * out_bytes)


def tflops(flop: float, time_s: float) -> float:
    return flop / time_s / 1e12


def gbps(nbytes: float, time_s: float) -> float:
    return nbytes / time_s / 1e9


ATTENTION_FLOP_CONVENTION = ("FlashAttention: matmul FLOP only; fwd 4*b*h*s_q*s_k*d, causal exactly /2, "
                             "bwd 2.5*fwd, fwd+bwd 3.5*fwd; h = query heads")


def attention_flop(b: int, h: int, s_q: int, s_k: int, d: int, causal: bool, mode: str) -> int:
    """Matmul FLOP of softmax(Q Kᵀ) V for `mode` "fwd", "bwd" or "fwdbwd".

    FlashAttention convention (Dao et al.; flash-attn benchmarks/benchmark_flash_attention.py;
    docs/sources.md "Attention"): the forward is two GEMMs, Q Kᵀ and P V, each 2·s_q·s_k·d per
    head, so 4·b·h·s_q·s_k·d; a causal mask halves it (exactly /2 by convention, ignoring
    the diagonal); the backward is five such GEMMs against the forward's two, 2.5 × fwd.
    h counts query heads: grouped-query attention shares K/V but not the matmul work.
    Softmax, scaling and masking are not counted.
    """
    for name, v in (("b", b), ("h", h), ("s_q", s_q), ("s_k", s_k), ("d", d)):
        if v <= 0:
            raise ValueError(f"attention dimension {name}={v} must be positive")
    factor = {"fwd": 4, "bwd": 10, "fwdbwd": 14}.get(mode)  # 4, 2.5·4, 3.5·4
    if factor is None:
        raise ValueError(f"attention mode {mode!r}: choose fwd, bwd or fwdbwd")
    flop = factor * b * h * s_q * s_k * d
    return flop // 2 if causal else flop  # factor is even, so the halving is exact


# STREAM words moved per element (McCalpin, STREAM "Counting Bytes and FLOPs"; BabelStream
# adds dot): copy c=a and scale c=q·a read one array and write one; add c=a+b and triad
# c=a+q·b read two and write one; dot reads two. No write-allocate credit: the read of c
# that a write-back cache may do before writing it is not counted.
STREAM_WORDS = {"copy": 2, "scale": 2, "add": 3, "triad": 3, "dot": 2}


def stream_bytes(op: str, n: int, elem_bytes: float) -> int:
    """Bytes a STREAM operation over arrays of `n` elements moves, by STREAM's convention."""
    if op not in STREAM_WORDS:
        raise ValueError(f"unknown STREAM operation {op!r}: one of {', '.join(STREAM_WORDS)}")
    if n <= 0 or elem_bytes <= 0:
        raise ValueError(f"STREAM arrays need n > 0 and elem_bytes > 0 (got {n}, {elem_bytes})")
    return int(STREAM_WORDS[op] * n * elem_bytes)


def fma_flop(n_fma: int, lanes: int = 1) -> int:
    """A fused multiply-add is 2 FLOP (one multiply, one add, as vendors count peaks); a
    packed instruction (half2: 2 lanes) does `lanes` of them."""
    return 2 * n_fma * lanes


# nccl-tests' bus bandwidth (NVIDIA/nccl-tests doc/PERFORMANCE.md; docs/sources.md
# "Collectives"): algbw = S / t with GB = 1e9 B, busbw = algbw x a per-collective factor that
# makes the figure comparable to the hardware's link bandwidth whatever the number of ranks n.
# Our collective names -> busbw factor as a function of the number of ranks n.
# all_reduce: 2(n-1)/n (a reduce-scatter then an all-gather, each moving (n-1)/n of S).
# reduce_scatter, all_gather, alltoall: (n-1)/n. broadcast, reduce, sendrecv: 1.
BUSBW_FACTORS: dict[str, Callable[[int], float]] = {
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "alltoall": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "reduce": lambda n: 1.0,
    "sendrecv": lambda n: 1.0,
}


def busbw_factor(collective: str, n: int) -> float:
    if collective not in BUSBW_FACTORS:
        raise ValueError(f"unknown collective {collective!r}: choose from {', '.join(BUSBW_FACTORS)}")
    if n < 1:
        raise ValueError(f"number of ranks must be >= 1, got {n}")
    return BUSBW_FACTORS[collective](n)


def busbw_gbps(collective: str, n: int, size_bytes: float, time_s: float) -> float:
    """busbw = algbw × factor, algbw = S / t in GB/s (GB = 1e9 B)."""
    return gbps(size_bytes, time_s) * busbw_factor(collective, n)


# nccl-tests' element counts (NVIDIA/nccl-tests src/*.cu GetCollByteCount, HEAD 2.19.6;
# docs/sources.md "Collectives"). From a requested size S it takes count = S / element size,
# then all_gather, reduce_scatter and alltoall divide it among the n ranks and round the
# per-rank (per-peer) count down to a multiple of 16 bytes (since 29f4114, v2.13.12; earlier
# versions rounded to 4 elements, or not at all); all_reduce, broadcast, reduce and sendrecv
# never round. The `count` column it prints is that per-rank count for the divided tests and
# the whole count for the others; its `size` column is the buffer actually moved, which can be
# smaller than the size asked for.
NCCL_DIVIDED = ("all_gather", "reduce_scatter", "alltoall")
NCCL_ALIGN_BYTES = 16


def nccl_counts(collective: str, size_bytes: int, elem_bytes: int, n: int) -> tuple[int, int, int]:
    """(nccl-tests' count column, elements in the whole buffer, size column in bytes)."""
    if collective not in BUSBW_FACTORS:
        raise ValueError(f"unknown collective {collective!r}: choose from {', '.join(BUSBW_FACTORS)}")
    if n < 1 or elem_bytes < 1 or size_bytes < 0:
        raise ValueError(f"need n >= 1, elem_bytes >= 1, size_bytes >= 0 (got {n}, {elem_bytes}, {size_bytes})")
    count = size_bytes // elem_bytes
    if collective not in NCCL_DIVIDED:
        return count, count, count * elem_bytes
    align = max(1, NCCL_ALIGN_BYTES // elem_bytes)  # elements per 16 bytes (4 floats, 8 halves)
    per = (count // n) // align * align
    return per, per * n, per * n * elem_bytes
