"""Telemetry's base types and pure helpers: what every backend and the window share.

A backend (nvml.py, rapl.py, replay.py, or the NullBackend here) implements `Backend`; the
window (window.py) polls it into `Sample`s and summarises them with the helpers below. Nothing
here touches a device, so all of it is tested on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# Columns of the whole-run power trace, power.csv (schema v1).
TRACE_COLUMNS = ("t_s", "device", "power_w", "clock_sm_mhz", "temp_c")

# ---------------------------------------------------------------------------------------------
# Pure helpers


class TelemetryError(Exception):
    """A backend could not be opened or read; str(e) is the reason written into the row."""

    def __init__(self, reason: str, code: int | None = None):
        super().__init__(reason)
        self.code = code  # NVML return code where there is one, for "stop asking" decisions


# Clock event ("throttle") reason bits, as nvidia-ml-py names them (nvmlClocksEventReason*,
# called nvmlClocksThrottleReason* before driver 535; nvml.h, docs/sources.md "Power"), with the
# short labels rows carry. Values come from the binding itself, so a bit NVML adds or renumbers
# is not misread; bits the binding lacks are decoded as unknown_0x... .
_THROTTLE_LABELS = {
    "GpuIdle": "gpu_idle", "ApplicationsClocksSetting": "applications_clocks",
    "SwPowerCap": "sw_power_cap", "HwSlowdown": "hw_slowdown", "SyncBoost": "sync_boost",
    "SwThermalSlowdown": "sw_thermal", "HwThermalSlowdown": "hw_thermal",
    "HwPowerBrakeSlowdown": "hw_power_brake", "DisplayClockSetting": "display_clocks",
    "BoardLimit": "board_limit", "Reliability": "reliability",
}


def _throttle_bits() -> dict[int, str]:
    try:
        import pynvml
    except ImportError:  # nvidia-ml-py is a dependency; without it every bit reads unknown_0x...
        return {}
    bits: dict[int, str] = {}
    for name, label in _THROTTLE_LABELS.items():
        value = getattr(pynvml, f"nvmlClocksEventReason{name}", None)
        if value is None:
            value = getattr(pynvml, f"nvmlClocksThrottleReason{name}", None)
        if isinstance(value, int) and value > 0:
            bits.setdefault(value, label)
    return dict(sorted(bits.items()))


THROTTLE_BITS: dict[int, str] = _throttle_bits()


def decode_throttle(mask: int) -> list[str]:
    """Names of the set bits, lowest first; bits NVML has not documented read `unknown_0x...`."""
    names = [name for bit, name in THROTTLE_BITS.items() if mask & bit]
    rest = mask & ~sum(THROTTLE_BITS)
    bit = 1
    while rest:
        if rest & bit:
            names.append(f"unknown_{bit:#x}")
            rest &= ~bit
        bit <<= 1
    return names


def integrate_trace(t_s: Sequence[float], power_w: Sequence[float | None]) -> float:
    """Energy in joules of a power trace by the trapezoid rule.

    Points whose time or power is missing (None/NaN) are dropped and the rule spans the gap
    linearly. Points are sorted by time with a stable sort, so a repeated timestamp costs
    nothing (a zero-width trapezoid) and two readings at one instant, given in order, describe
    a vertical step exactly. Raises ValueError with fewer than two usable points.
    """
    points = sorted(
        ((float(t), float(p)) for t, p in zip(t_s, power_w, strict=True)
         if t is not None and p is not None and math.isfinite(t) and math.isfinite(p)),
        key=lambda tp: tp[0],
    )
    if len(points) < 2:
        raise ValueError(f"need two or more power samples to integrate, got {len(points)}")
    return math.fsum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(points, points[1:]))


def counter_delta(start: float, end: float, max_range: float | None) -> tuple[float | None, str | None]:
    """(end - start, None) for a cumulative counter, or (None, reason).

    A counter with a `max_range` (RAPL max_energy_range_uj) wraps to zero, so end < start means
    one wrap. One wrap only: a RAPL package at 250 W takes ~17 min to wrap 262 kJ, far longer
    than a poll. A counter without a range (NVML mJ since driver load) that goes backwards was
    reset (driver reload, GPU reset): the delta is unknown and we say so.
    """
    if end >= start:
        return end - start, None
    if max_range:
        return end + max_range - start, None
    return None, f"energy counter went backwards ({start:g} → {end:g}): driver reload or GPU reset?"


# ---------------------------------------------------------------------------------------------
# The backend interface


@dataclass(frozen=True, slots=True)
class Sample:
    """One poll of one device; every field it could not read is None."""

    t_s: float                          # host clock when polled
    power_w: float | None = None        # instantaneous power, where the device has a sensor
    power_ts_us: int | None = None      # the sensor's own timestamp: equal ones are one reading
    energy_j: float | None = None       # cumulative counter (RAPL polls carry this, not power)
    energy_range_j: float | None = None  # where that counter wraps
    clock_sm_mhz: float | None = None
    clock_mem_mhz: float | None = None
    temp_c: float | None = None
    throttle_mask: int | None = None


class Backend(Protocol):
    """What a window needs from a device family. Expected failures are never raised: the
    method returns None and appends a reason to `errors`."""

    name: str                    # "nvml" | "rapl" | "replay" | "none"
    labels: list[str]            # one per device: "gpu0", "package-0"
    reason: str | None           # why nothing at all can be read (null backend), else None
    notes: list[str]             # standing remarks copied into every window's telemetry_errors
    counter_source: str | None   # power_source when energy comes from the counter
    trace_source: str | None     # power_source when energy comes from the power trace
    has_power_sensor: bool       # False: power is derived from the counter, not measured

    def sample(self, i: int, t_s: float, errors: list[str]) -> Sample: ...
    def energy_counter_j(self, i: int, errors: list[str]) -> tuple[float, float | None] | None: ...
    def power_limit_w(self, i: int, errors: list[str]) -> float | None: ...
    def violation_s(self, i: int, errors: list[str]) -> dict[str, float | None]: ...
    def close(self) -> None: ...


class NoCounters:
    """Defaults for backends without energy counters, power limits or violation timers."""

    def energy_counter_j(self, i: int, errors: list[str]) -> None:
        return None

    def power_limit_w(self, i: int, errors: list[str]) -> None:
        return None

    def violation_s(self, i: int, errors: list[str]) -> dict[str, float | None]:
        return {}

    def close(self) -> None:
        pass


class NullBackend(NoCounters):
    """Nothing readable: no devices, every figure None, and `reason` says why."""

    name, counter_source, trace_source, has_power_sensor = "none", None, None, False

    def __init__(self, reason: str):
        self.reason, self.labels, self.notes = reason, [], []

    def sample(self, i: int, t_s: float, errors: list[str]) -> Sample:
        return Sample(t_s)
