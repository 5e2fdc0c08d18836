"""Byte sizes as the tools we follow write them: `1K`, `256M`, `8G` are powers of 1024
(nccl-tests' parsesize, src/common.cu), a bare number is bytes."""

from __future__ import annotations

from harness.core.errors import UsageError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


def parse_size(text: str, what: str = "size") -> int:
    """`1024`, `1K`, `4MiB`, `8g` -> bytes (> 0); UsageError naming `what` otherwise."""
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": KiB, "M": MiB, "G": GiB}.get(t[-1:], 1)
    num = t[:-1] if t[-1:] in ("K", "M", "G") else t
    if not num.isdigit() or int(num) <= 0:
        raise UsageError(f"bad {what} {text!r}: expected a positive integer with optional K, M or G")
    return int(num) * mult


def parse_size_list(text: str, what: str) -> tuple[int, ...]:
    """`1G,4G,16G` -> sizes in bytes, in the order given."""
    parts = [t for t in str(text).split(",") if t.strip()]
    if not parts:
        raise UsageError(f"{what} {text!r}: expected SIZE[,SIZE], e.g. 1G,4G,16G")
    return tuple(parse_size(t, what) for t in parts)
