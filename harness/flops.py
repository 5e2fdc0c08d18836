"""FLOP and byte counts: pure functions, each with its source. No torch here."""

from __future__ import annotations

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
