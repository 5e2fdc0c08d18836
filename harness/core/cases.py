"""Cases are data: a frozen, hashable identity for one measurement.

A family module (harness/benchmarks/<family>.py) declares its sweep as a pure function
`cases(suite, ctx) -> list[Case]` and measures one case with `run(case, ctx)`. Suites
are names, not code paths: the family decides which shapes each suite holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import UsageError

SUITES = ("quick", "standard", "full")
DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp4")


@dataclass(frozen=True)
class Case:
    family: str
    op: str
    dtype: str
    params: tuple[tuple[str, Any], ...] = ()
    backend: str = "torch"
    world_size: int = 1
    # Not part of the identity: a label for tables ("llama3-70b mlp_up").
    label: str = field(default="", compare=False)

    @classmethod
    def make(cls, family: str, op: str, dtype: str, *, backend: str = "torch",
             world_size: int = 1, label: str = "", **params: Any) -> "Case":
        return cls(family, op, dtype, tuple(sorted(params.items())), backend, world_size, label)

    @property
    def p(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def id(self) -> str:
        """Stable text identity: rows, resume and compare key on it."""
        ps = ",".join(f"{k}={_fmt(v)}" for k, v in self.params)
        ws = f"/ws={self.world_size}" if self.world_size != 1 else ""
        return f"{self.family}/{self.op}/{self.dtype}/{self.backend}{ws}/{ps}"

    def identity(self) -> dict[str, Any]:
        return {
            "case_id": self.id,
            "family": self.family,
            "op": self.op,
            "dtype": self.dtype,
            "backend": self.backend,
            "world_size": self.world_size,
            "params": self.p,
            "label": self.label,
        }


def _fmt(v: Any) -> str:
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, separators=(",", ":"), sort_keys=True)
    return str(v)


def check_suite(name: str) -> str:
    if name not in SUITES:
        raise UsageError(f"unknown suite {name!r}: choose one of {', '.join(SUITES)}")
    return name


def check_names(names: list[str] | None, allowed, what: str) -> list[str] | None:
    """`names` if every one is in `allowed` (None or empty: None, i.e. all); else UsageError."""
    if not names:
        return None
    bad = [n for n in names if n not in allowed]
    if bad:
        raise UsageError(f"unknown {what} {bad[0]!r}: choose from {', '.join(allowed)}")
    return list(names)


def check_dtypes(names: list[str] | None) -> list[str] | None:
    return check_names(names, DTYPES, "dtype")


def select(cases: list[Case], dtypes: list[str] | None = None) -> list[Case]:
    """Filter by dtype and drop duplicates while keeping declaration order."""
    seen: set[Case] = set()
    out = []
    for c in cases:
        if dtypes and c.dtype not in dtypes:
            continue
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out
