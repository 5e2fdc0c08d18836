"""What a family hands the runner for one case: the measurement, the work it counts, the check.

Plain data, no torch: the timing primitive (measure/timing.py) fills a Measurement, a family
wraps it in an Outcome with its FLOP / byte counts and a Check of its result, and the one row
builder (core/row.py) turns that into the stored row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from harness.core.stats import summarize


@dataclass
class Measurement:
    """Every timed sample of one case and the window they were taken in."""

    samples_s: list[float]
    n_warmup: int
    estimate_s: float  # wall time of one iteration, flush and setup included
    window_s: float  # wall time of the timed region (the telemetry window)
    telemetry: dict = field(default_factory=dict)  # the window's summary (measure/telemetry)
    sustained: bool = False

    def stats(self) -> dict:
        return summarize(self.samples_s)


@dataclass(frozen=True)
class Check:
    """A case's result against its reference; a failed check fails the row whatever its speed.

    Stored in the row as `check`: {ok, max_rel_err, tol, reference} plus family details (the
    collectives' nccl-tests `wrong` count, the parts of a merged check). `max_rel_err` and `tol`
    are None only where the reference gives no error figure (an imported `#wrong` count).
    """

    ok: bool
    max_rel_err: float | None
    tol: float | None
    reference: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "max_rel_err": self.max_rel_err, "tol": self.tol,
                "reference": self.reference, **self.details}

    @property
    def failure(self) -> str:
        """The row's error text when the check failed."""
        return (f"wrong result: max relative error {self.max_rel_err!r} > tolerance {self.tol!r} "
                f"({self.reference})")


def check_within(max_rel_err: float, tol: float, reference: str, *, ok: bool | None = None,
                 **details: Any) -> Check:
    """The one way a family states its check: ok when the error is within `tol` (a NaN error
    is infinite: a NaN anywhere in a result fails it) and, where given, `ok` also holds."""
    err = float(max_rel_err)
    if math.isnan(err):
        err = math.inf
    passed = err <= tol and (ok is None or bool(ok))
    return Check(passed, err, float(tol), reference, dict(details))


def merge_checks(*checks: Check) -> Check:
    """Several checks of one case (output and gradients, timed and reduced-size): the worst
    error decides, every part must pass, and the parts are kept."""
    worst = max(checks, key=lambda c: -1.0 if c.max_rel_err is None else c.max_rel_err)
    return Check(all(c.ok for c in checks), worst.max_rel_err, worst.tol,
                 "; ".join(c.reference for c in checks), {"parts": [c.as_dict() for c in checks]})


@dataclass
class Outcome:
    """What a family returns for one case; the runner turns it into a row (core/row.py)."""

    measurement: Measurement
    flop: float | None = None
    nbytes: float | None = None
    check: Check | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def relative_error(err: float, scale: float) -> float:
    """|got - ref| / |ref| at their largest, or the absolute error where the reference is all
    zeros; NaN (a NaN in the result) is infinite, so it fails every tolerance."""
    rel = err / scale if scale > 0 else err
    return math.inf if rel != rel else float(rel)
