"""The benchmark families, listed explicitly (no discovery by name).

Each module declares `FAMILY = Family(...)` (benchmarks/base.py): its name, the suite's cases,
how one case is measured, its power cases and its option checks.
"""

from harness.benchmarks import attention, collectives, gemm, memory
from harness.benchmarks.base import Family

FAMILIES: dict[str, Family] = {m.FAMILY.name: m.FAMILY for m in (gemm, attention, collectives, memory)}
