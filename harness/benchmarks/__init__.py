"""The benchmark families, listed explicitly (no discovery by name).

A family module defines FAMILY (its name), `cases(suite, ctx) -> list[Case]` and
`run(case, ctx) -> Outcome`, raising SkipCase for a case that cannot run here. It may
define `power_case(case) -> bool`: cases worth a sustained, power-measured window.
"""

from harness.benchmarks import attention, collectives, gemm, memory

FAMILIES = {m.FAMILY: m for m in (gemm, attention, collectives, memory)}
