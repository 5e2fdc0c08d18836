"""What a benchmark family declares, so the runner needs no knowledge of any one family.

A family module ends with `FAMILY = Family(...)`: its name, the pure function that expands a
suite into cases, the function that measures one case (raising SkipCase for a case that
cannot run here), which cases deserve a sustained, power-measured window, how it checks
the run options it owns (so a bad option is a usage error before anything runs), and what it
releases after its last case (so nothing it holds slows what is measured after it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.core.cases import Case
from harness.core.result import Outcome
from harness.measure.context import Context


def _no_options(options: Mapping[str, Any]) -> None:
    return None


def _nothing_held(ctx: Context) -> None:
    return None


@dataclass(frozen=True)
class Family:
    name: str
    cases: Callable[[str, Context], list[Case]]  # (suite, ctx) -> the suite's cases here
    run: Callable[[Case, Context], Outcome]  # measure one case
    power_case: Callable[[Case, str], bool]  # (case, device backend) -> sustained window?
    check_options: Callable[[Mapping[str, Any]], None] = _no_options  # raises UsageError
    finish: Callable[[Context], None] = _nothing_held  # after its last case; idempotent
