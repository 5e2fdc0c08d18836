"""Telemetry without hardware: a fake NVML on the real pynvml signatures, a fake sysfs tree for
RAPL, a replay backend, synthetic traces with known energy, and every sensor fault the window must survive.

Timing is driven by a fake clock (sample_hz=0: the test calls Window.poll() between clock
steps), so nothing here depends on how fast this machine is. Only the tests named *_thread*
start a real sampler thread, and they assert nothing about its rate.
"""

from __future__ import annotations

import bisect
import csv
import math
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from unittest import mock

import pynvml
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.measure.telemetry import (SUMMARY_KEYS, ReplayBackend, Telemetry, counter_delta, decode_throttle,
                               integrate_trace, short_window, slowdown)

# ---------------------------------------------------------------------------------------------
# Synthetic traces with exactly known energy


class Pwl:
    """Piecewise-linear power in W through breakpoints [(t_s, w)]; two breakpoints at one time
    are a step. Exact energy is the trapezoid through the breakpoints."""

    def __init__(self, points: list[tuple[float, float]]):
        self.t = [t for t, _ in points]
        self.p = [p for _, p in points]

    def __call__(self, t: float) -> float:
        k = bisect.bisect_right(self.t, t) - 1  # after a step at exactly t: the new level
        if k < 0:
            return self.p[0]
        if k >= len(self.t) - 1:
            return self.p[-1]
        t0, t1, p0, p1 = self.t[k], self.t[k + 1], self.p[k], self.p[k + 1]
        return p0 if t1 == t0 else p0 + (p1 - p0) * (t - t0) / (t1 - t0)

    def energy(self, a: float, b: float) -> float:
        """Exact joules over [a, b]."""
        ts = sorted({a, b, *[t for t in self.t if a < t < b]})
        total = 0.0
        for t0, t1 in zip(ts, ts[1:]):
            # Inside one linear piece the midpoint rule is exact.
            total += (t1 - t0) * self((t0 + t1) / 2)
        return total


STEP = Pwl([(0.0, 200.0), (2.5, 200.0), (2.5, 400.0), (10.0, 400.0)])
RAMP = Pwl([(0.0, 100.0), (5.0, 500.0), (10.0, 500.0)])


class FakeClock:
    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


# ---------------------------------------------------------------------------------------------
# A fake NVML: every function autospecced from the real pynvml, so a wrong call signature fails


@dataclass
class FakeGpu:
    power: Callable[[float], float] = field(default_factory=lambda: Pwl([(0.0, 300.0), (1e6, 300.0)]))
    sensor_period_s: float = 0.0          # 0: a fresh reading at every poll
    energy_offset_mj: int = 987_654_321    # the counter starts at driver load, not at zero
    clock_sm: Callable = lambda t: 1980
    clock_mem: Callable = lambda t: 2619
    temp: Callable = lambda t: 60
    throttle: Callable = lambda t: 0
    violation_ns: Callable = lambda policy, t: 0
    limit_mw: int = 700_000
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    # name -> NVML error code (raised as pynvml.NVMLError) or an exception to raise
    fail: dict = field(default_factory=dict)
    field_return: int = pynvml.NVML_SUCCESS
    energy_override: Callable[[float], int] | None = None

    def energy_j(self, t: float) -> float:
        return self.power.energy(0.0, t) if isinstance(self.power, Pwl) else self.power(t) * t

    def power_at(self, t: float) -> tuple[float, float]:
        """(watts, sensor timestamp s): a sensor that refreshes every sensor_period_s."""
        ts = math.floor(t / self.sensor_period_s + 1e-9) * self.sensor_period_s if self.sensor_period_s else t
        return self.power(ts), ts


def fake_nvml(gpus: list[FakeGpu], clock, init_error: int | None = None) -> types.SimpleNamespace:
    nv = types.SimpleNamespace(NVMLError=pynvml.NVMLError)
    for name in dir(pynvml):
        if name.startswith(("NVML_", "nvmlClocks")):
            setattr(nv, name, getattr(pynvml, name))

    def failing(name, fn):
        def call(handle, *args):
            err = handle.fail.get(name)
            if isinstance(err, BaseException):
                raise err
            if err is not None:
                raise pynvml.NVMLError(err)
            return fn(handle, *args)
        return call

    def init():
        if init_error is not None:
            raise pynvml.NVMLError(init_error)

    def field_values(h, field_ids):
        watts, ts = h.power_at(clock())
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        for v, fid in zip(values, field_ids):
            v.fieldId, v.timestamp, v.nvmlReturn = fid, round(ts * 1e6), h.field_return
            v.valueType, v.value.uiVal = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT, round(watts * 1000)
        return values

    def energy(h):
        t = clock()
        if h.energy_override is not None:
            return h.energy_override(t)
        return h.energy_offset_mj + round(h.energy_j(t) * 1000)

    def violation(h, policy):
        return pynvml.c_nvmlViolationTime_t(round(clock() * 1e6), h.violation_ns(policy, clock()))

    def clock_info(h, kind):
        return h.clock_sm(clock()) if kind == pynvml.NVML_CLOCK_SM else h.clock_mem(clock())

    impl = {
        "nvmlInit": init,
        "nvmlShutdown": lambda: None,
        "nvmlDeviceGetCount": lambda: len(gpus),
        "nvmlDeviceGetHandleByIndex": lambda i: gpus[i],
        "nvmlDeviceGetHandleByUUID": lambda u: next(g for g in gpus if g.uuid == u),
        # Per-device queries: each can be made to fail through FakeGpu.fail.
        "nvmlDeviceGetFieldValues": field_values,
        "nvmlDeviceGetPowerUsage": lambda h: round(h.power(clock()) * 1000),
        "nvmlDeviceGetTotalEnergyConsumption": energy,
        "nvmlDeviceGetClockInfo": clock_info,
        "nvmlDeviceGetTemperature": lambda h, sensor: h.temp(clock()),
        "nvmlDeviceGetCurrentClocksEventReasons": lambda h: h.throttle(clock()),
        "nvmlDeviceGetCurrentClocksThrottleReasons": lambda h: h.throttle(clock()),
        "nvmlDeviceGetViolationStatus": violation,
        "nvmlDeviceGetEnforcedPowerLimit": lambda h: h.limit_mw,
    }
    lookups = ("nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetHandleByUUID")
    for name, fn in impl.items():
        if name.startswith("nvmlDeviceGet") and name not in lookups:
            fn = failing(name, fn)
        setattr(nv, name, mock.create_autospec(getattr(pynvml, name), side_effect=fn))
    return nv


def nvml_telemetry(gpus, clock=None, **create):
    clock = clock or FakeClock()
    create.setdefault("sample_hz", 0)
    tel = Telemetry.create("nvml", nvml=fake_nvml(gpus, clock), clock=clock, env={}, **create)
    assert tel.source == "nvml", tel.source
    return tel, clock


def drive(tel, clock, t_end: float, dt: float = 0.01, t_start: float = 0.0,
          skip: tuple[float, float] | None = None, sync=None) -> dict:
    """One window from t_start to t_end, polled every dt of fake time (minus a gap in `skip`)."""
    clock.t = t_start
    with tel.window(sync=sync) as w:  # the window itself samples at both edges
        for k in range(1, round((t_end - t_start) / dt)):
            clock.t = t_start + k * dt
            if skip is None or not skip[0] < clock.t < skip[1]:
                w.poll()
        clock.t = t_end
    return w.summary()


def close_to(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * abs(b)


# ---------------------------------------------------------------------------------------------
# Pure helpers


def test_integrate_trace_is_exact_for_ramps_and_steps():
    assert integrate_trace([0, 1, 2], [100, 100, 100]) == pytest.approx(200)
    assert integrate_trace([0, 2], [100, 300]) == pytest.approx(400)
    # A step given as two readings at one instant, in order, is integrated exactly.
    assert integrate_trace([0, 1, 1, 2], [100, 100, 300, 300]) == pytest.approx(400)


def test_integrate_trace_handles_duplicates_gaps_and_order():
    base = integrate_trace([0, 1, 2, 3], [100, 200, 300, 400])
    assert integrate_trace([0, 1, 1, 2, 3], [100, 200, 200, 300, 400]) == pytest.approx(base)
    assert integrate_trace([0, 1, 2, 3], [100, None, float("nan"), 400]) == pytest.approx(base)
    assert integrate_trace([3, 0, 2, 1], [400, 100, 300, 200]) == pytest.approx(base)
    with pytest.raises(ValueError):
        integrate_trace([0, 1], [100, None])


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.floats(0.001, 1.0), st.floats(0.0, 1000.0)), min_size=1, max_size=30))
def test_integrate_trace_matches_exact_energy_of_any_piecewise_linear_trace(pieces):
    t, points = 0.0, [(0.0, 500.0)]
    for dt, p in pieces:
        t += dt
        points.append((t, p))
    trace = Pwl(points)
    assert integrate_trace(trace.t, trace.p) == pytest.approx(trace.energy(0.0, t), rel=1e-9, abs=1e-9)


def test_decode_throttle():
    assert decode_throttle(0) == []
    assert decode_throttle(0x4 | 0x40) == ["sw_power_cap", "hw_thermal"]
    assert decode_throttle(0x8 | 0x20 | 0x80) == ["hw_slowdown", "sw_thermal", "hw_power_brake"]
    # 0x200 (board limit) and 0x400 (reliability) come from nvidia-ml-py's own constants.
    assert decode_throttle(0x1 | 0x200 | 0x400) == ["gpu_idle", "board_limit", "reliability"]
    assert decode_throttle(0x1 | 0x10000) == ["gpu_idle", "unknown_0x10000"]


def test_throttle_bits_are_nvml_bindings_own():
    import pynvml

    from harness.measure.telemetry import THROTTLE_BITS

    assert THROTTLE_BITS[pynvml.nvmlClocksThrottleReasonSwPowerCap] == "sw_power_cap"
    assert THROTTLE_BITS[pynvml.nvmlClocksThrottleReasonBoardLimit] == "board_limit"
    assert len(set(THROTTLE_BITS.values())) == len(THROTTLE_BITS)  # no bit named twice


def test_counter_delta_wraps_with_a_range_and_refuses_to_go_backwards():
    assert counter_delta(10, 25, None) == (15, None)
    assert counter_delta(990, 5, 1000) == (15, None)
    delta, reason = counter_delta(500, 400, None)
    assert delta is None and "backwards" in reason


def test_short_window_follows_sc24():
    assert short_window(0.5, 1000)          # under 1 s
    assert short_window(10.0, 31)           # under 32 iterations
    assert not short_window(1.0, 32)
    assert short_window(None, 100)


def test_slowdown_compares_first_and_last_tenth():
    assert slowdown([1.0] * 100) == 0.0
    samples = [1.0] * 10 + [1.05] * 80 + [1.1] * 10
    assert slowdown(samples) == pytest.approx(0.1)
    assert slowdown([1.0, 2.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        slowdown([1.0])


# ---------------------------------------------------------------------------------------------
# NVML through the fake: synthetic traces, energy two ways


@pytest.mark.parametrize("trace", [STEP, RAMP], ids=["step", "ramp"])
def test_window_energy_matches_exact_within_0_1_percent(trace):
    tel, clock = nvml_telemetry([FakeGpu(power=trace)])
    s = drive(tel, clock, t_end=5.0)
    exact = trace.energy(0.0, 5.0)
    assert s["power_source"] == "nvml:energy_counter"
    assert close_to(s["energy_j"], exact, 1e-5)              # the counter: mJ resolution
    assert close_to(s["energy_trace_j"], exact, 1e-3)        # the trace: within 0.1%
    assert close_to(s["power_w"], exact / 5.0, 1e-5)
    assert s["window_s"] == pytest.approx(5.0)
    assert abs(s["energy_disagreement"]) < 1e-3
    assert s["n_power_samples"] == 501
    assert s["power_max_w"] == pytest.approx(max(trace(t) for t in (0.0, 2.5, 5.0)))


def test_a_gap_in_the_samples_is_spanned():
    tel, clock = nvml_telemetry([FakeGpu(power=RAMP)])
    s = drive(tel, clock, t_end=5.0, skip=(1.0, 1.5))
    assert close_to(s["energy_trace_j"], RAMP.energy(0.0, 5.0), 1e-3)
    assert s["n_power_samples"] == 501 - 49


def test_repeated_sensor_readings_count_once():
    # The sensor refreshes every 50 ms; polling at 100 Hz sees each reading twice.
    tel, clock = nvml_telemetry([FakeGpu(power=RAMP, sensor_period_s=0.05)])
    s = drive(tel, clock, t_end=5.0)
    assert s["n_power_samples"] == 101  # 0, 0.05, ..., 5.0
    # Closing between refreshes: the reading in force is kept at the closing edge, so the
    # trace spans the whole window (100 refreshes up to 4.95 s, plus the edge at 4.98 s).
    s = drive(tel, clock, t_end=4.98)
    assert s["n_power_samples"] == 101


def test_sensor_that_misses_most_of_a_pulsed_load_disagrees_with_the_counter():
    # SC'24: the A100/H100 sensor sees 25 ms of every 100 ms. A load pulsing with that period
    # fools a sampled trace; the counter does not, and the disagreement says so.
    def pulses(t):
        return 600.0 if (t % 0.1) < 0.025 else 150.0

    gpu = FakeGpu(power=pulses, sensor_period_s=0.1)
    gpu.energy_j = lambda t: (150.0 * t + 450.0 * 0.025 * math.floor(t / 0.1)
                              + 450.0 * min(t % 0.1, 0.025))
    tel, clock = nvml_telemetry([gpu])
    s = drive(tel, clock, t_end=5.0, dt=0.01)
    assert s["power_source"] == "nvml:energy_counter"
    assert close_to(s["energy_j"], gpu.energy_j(5.0), 1e-5)
    assert s["energy_disagreement"] == pytest.approx((s["energy_trace_j"] - s["energy_j"]) / s["energy_j"])
    assert s["energy_disagreement"] > 0.5  # the sensor only ever saw the peaks


def test_clocks_temperature_throttle_and_violation_time():
    gpu = FakeGpu(
        clock_sm=lambda t: 1980 if t < 3 else 1500,
        clock_mem=lambda t: 2619,
        temp=lambda t: 60 + 5 * t,
        throttle=lambda t: (0x4 if t >= 3 else 0) | (0x40 if t >= 4 else 0),
        violation_ns=lambda policy, t: round(max(0.0, t - (3 if policy == pynvml.NVML_PERF_POLICY_POWER
                                                          else 4)) * 1e9),
    )
    tel, clock = nvml_telemetry([gpu])
    s = drive(tel, clock, t_end=5.0)
    assert s["clock_sm_mhz"] == 1500
    assert 1500 < s["clock_sm_mean_mhz"] < 1980
    assert s["clock_mem_mhz"] == 2619 and s["clock_mem_mean_mhz"] == 2619
    assert s["temp_c"] == pytest.approx(85)
    assert s["power_limit_w"] == 700
    assert s["throttle"] == ["sw_power_cap", "hw_thermal"]
    assert s["throttle_time_s"] == pytest.approx(2.0)
    gpu0 = s["per_gpu"][0]
    assert gpu0["throttle_power_s"] == pytest.approx(2.0)
    assert gpu0["throttle_thermal_s"] == pytest.approx(1.0)
    assert s["telemetry_errors"] == []


def test_summary_keys_and_sync_at_both_edges():
    tel, clock = nvml_telemetry([FakeGpu()])
    sync = mock.Mock()
    s = drive(tel, clock, t_end=1.0, sync=sync)
    assert tuple(s) == SUMMARY_KEYS
    assert sync.call_count == 2
    assert set(s["per_gpu"][0]) == {
        "device", "power_w", "power_max_w", "energy_j", "energy_trace_j", "energy_disagreement",
        "power_source", "clock_sm_mhz", "clock_sm_mean_mhz", "clock_mem_mhz", "clock_mem_mean_mhz",
        "temp_c", "power_limit_w", "throttle", "throttle_power_s", "throttle_thermal_s",
        "throttle_time_s", "n_power_samples"}


def test_multi_gpu_records_every_gpu_and_the_node_total():
    a = FakeGpu(power=Pwl([(0.0, 300.0), (10.0, 300.0)]), limit_mw=700_000)
    b = FakeGpu(power=RAMP, limit_mw=500_000)
    tel, clock = nvml_telemetry([a, b])
    s = drive(tel, clock, t_end=5.0)
    assert [g["device"] for g in s["per_gpu"]] == ["gpu0", "gpu1"]
    assert close_to(s["energy_j"], 1500.0 + RAMP.energy(0.0, 5.0), 1e-5)
    assert s["energy_j"] == pytest.approx(sum(g["energy_j"] for g in s["per_gpu"]))
    assert s["power_max_w"] == pytest.approx(300.0 + 500.0)
    assert s["power_limit_w"] == 1200
    assert s["n_power_samples"] == 501


def test_cuda_visible_devices_maps_ordinals_to_nvml_devices():
    gpus = [FakeGpu(limit_mw=100_000), FakeGpu(limit_mw=200_000, uuid="GPU-b"), FakeGpu(limit_mw=300_000)]
    clock = FakeClock()
    for visible in ("1", "GPU-b"):
        tel = Telemetry.create("nvml", device_indices=[0], nvml=fake_nvml(gpus, clock), sample_hz=0,
                               clock=clock, env={"CUDA_VISIBLE_DEVICES": visible})
        assert drive(tel, clock, t_end=1.0)["power_limit_w"] == 200
    tel = Telemetry.create("nvml", device_indices=[3], nvml=fake_nvml(gpus, clock), env={})
    assert tel.source == "unavailable: no NVML (GPU 3 not found (3 visible))"


def test_sampler_thread_collects_samples_on_a_real_clock():
    tel = Telemetry.create("nvml", nvml=fake_nvml([FakeGpu()], time.perf_counter), sample_hz=200, env={})
    with tel.window() as w:
        time.sleep(0.1)
    s = w.summary()
    assert s["n_power_samples"] >= 3  # two edges and the thread's first poll
    assert close_to(s["power_w"], 300.0, 0.1)  # real clock: loose, precision is tested above
    assert s["telemetry_errors"] == []


def test_summary_only_after_the_block_and_body_errors_propagate():
    tel, clock = nvml_telemetry([FakeGpu()], sample_hz=100)
    with pytest.raises(ZeroDivisionError):
        with tel.window() as w:
            with pytest.raises(RuntimeError):
                w.summary()
            1 / 0
    assert w.summary()["power_source"] == "nvml:energy_counter"


# ---------------------------------------------------------------------------------------------
# Faults: each leaves a reason and the window returns normally


def test_nvml_library_missing_on_this_machine_or_not_installed(monkeypatch):
    if Telemetry.create("nvml").source == "nvml":
        pytest.skip("this machine has a working NVML")
    assert Telemetry.create("nvml").source == "unavailable: no NVML (nvmlInit: NVML Shared Library Not Found)"
    monkeypatch.setitem(__import__("sys").modules, "pynvml", None)  # as if nvidia-ml-py were absent
    assert Telemetry.create("nvml").source.startswith("unavailable: no NVML (import of pynvml halted")


def test_nvml_init_failure_from_the_driver():
    nv = fake_nvml([FakeGpu()], FakeClock(), init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    tel = Telemetry.create("nvml", nvml=nv)
    assert tel.source == "unavailable: no NVML (nvmlInit: Driver Not Loaded)"
    with tel.window() as w:
        pass
    assert w.summary()["power_w"] is None
    assert w.summary()["power_source"] == tel.source


def test_energy_counter_permission_denied_falls_back_to_the_trace():
    gpu = FakeGpu(power=RAMP, fail={"nvmlDeviceGetTotalEnergyConsumption": pynvml.NVML_ERROR_NO_PERMISSION})
    tel, clock = nvml_telemetry([gpu])
    s = drive(tel, clock, t_end=5.0)
    assert s["power_source"] == "nvml:power_trace"
    assert s["energy_j"] == s["energy_trace_j"]
    assert close_to(s["energy_j"], RAMP.energy(0.0, 5.0), 1e-3)
    assert s["energy_disagreement"] is None
    assert any("Insufficient Permissions" in e for e in s["telemetry_errors"])
    # Refused for good: asked once, not at every window edge again.
    drive(tel, clock, t_end=5.0)
    assert tel.backend.nvml.nvmlDeviceGetTotalEnergyConsumption.call_count == 1


def test_instant_power_field_not_supported_falls_back_to_power_usage():
    gpu = FakeGpu(power=RAMP, field_return=pynvml.NVML_ERROR_NOT_SUPPORTED)
    tel, clock = nvml_telemetry([gpu])
    s = drive(tel, clock, t_end=5.0)
    assert close_to(s["energy_trace_j"], RAMP.energy(0.0, 5.0), 1e-3)
    assert any("nvmlDeviceGetPowerUsage" in e for e in s["telemetry_errors"])
    assert any("instant power: Not Supported" in e for e in s["telemetry_errors"])
    assert tel.backend.nvml.nvmlDeviceGetFieldValues.call_count == 1


def test_unsupported_clock_and_temperature_are_none_with_reasons():
    gpu = FakeGpu(fail={"nvmlDeviceGetClockInfo": pynvml.NVML_ERROR_NOT_SUPPORTED,
                        "nvmlDeviceGetTemperature": pynvml.NVML_ERROR_NO_PERMISSION,
                        "nvmlDeviceGetViolationStatus": pynvml.NVML_ERROR_NOT_SUPPORTED})
    tel, clock = nvml_telemetry([gpu])
    s = drive(tel, clock, t_end=1.0)
    assert s["clock_sm_mhz"] is None and s["clock_mem_mhz"] is None and s["temp_c"] is None
    assert s["throttle_time_s"] is None
    assert s["power_source"] == "nvml:energy_counter"  # the rest of the row still stands
    errors = " | ".join(s["telemetry_errors"])
    assert "gpu0 SM clock" in errors and "gpu0 temperature" in errors and "violation" in errors
    assert tel.backend.nvml.nvmlDeviceGetClockInfo.call_count == 2  # SM and memory, once each


def test_old_driver_without_clocks_event_reasons_uses_the_old_name():
    gpu = FakeGpu(throttle=lambda t: 0x8,
                  fail={"nvmlDeviceGetCurrentClocksEventReasons": pynvml.NVML_ERROR_FUNCTION_NOT_FOUND})
    tel, clock = nvml_telemetry([gpu])
    s = drive(tel, clock, t_end=1.0)
    assert s["throttle"] == ["hw_slowdown"]
    assert tel.backend.nvml.nvmlDeviceGetCurrentClocksEventReasons.call_count == 1
    assert s["telemetry_errors"] == []


def test_counter_that_goes_backwards_falls_back_to_the_trace():
    gpu = FakeGpu(power=RAMP)
    gpu.energy_override = lambda t: 5_000_000 if t == 0 else 10  # a driver reload mid-window
    tel, clock = nvml_telemetry([gpu])
    s = drive(tel, clock, t_end=5.0)
    assert s["power_source"] == "nvml:power_trace"
    assert close_to(s["energy_j"], RAMP.energy(0.0, 5.0), 1e-3)
    assert any("went backwards" in e for e in s["telemetry_errors"])


def test_counter_that_did_not_advance_in_a_short_window_is_not_trusted():
    gpu = FakeGpu()
    gpu.energy_override = lambda t: 42_000  # updates every ~100 ms; a 30 ms window can see none
    tel, clock = nvml_telemetry([gpu])
    s = drive(tel, clock, t_end=0.03)
    assert s["power_source"] == "nvml:power_trace"
    assert s["energy_j"] == pytest.approx(300 * 0.03)
    assert any("did not advance" in e for e in s["telemetry_errors"])


def test_sampler_thread_that_dies_leaves_a_reason():
    calls = {"n": 0}

    def flaky(t):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("sensor went away")
        return 300.0

    gpu = FakeGpu(power=flaky)
    gpu.energy_j = lambda t: 300.0 * t
    tel = Telemetry.create("nvml", nvml=fake_nvml([gpu], time.perf_counter), sample_hz=500, env={})
    with tel.window() as w:
        time.sleep(0.05)
    s = w.summary()
    errors = " | ".join(s["telemetry_errors"])
    assert "sampler thread died: RuntimeError: sensor went away" in errors
    assert "last sample failed" in errors
    assert s["power_source"] == "nvml:energy_counter"  # the counter still measured the window
    assert close_to(s["power_w"], 300.0, 0.1)


def test_a_lost_gpu_yields_nulls_not_an_exception():
    lost = pynvml.NVML_ERROR_GPU_IS_LOST
    gpu = FakeGpu(fail={name: lost for name in (
        "nvmlDeviceGetFieldValues", "nvmlDeviceGetPowerUsage", "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetClockInfo", "nvmlDeviceGetTemperature", "nvmlDeviceGetCurrentClocksEventReasons",
        "nvmlDeviceGetViolationStatus", "nvmlDeviceGetEnforcedPowerLimit")})
    tel, clock = nvml_telemetry([gpu])
    s = drive(tel, clock, t_end=1.0)
    for key in ("power_w", "power_max_w", "energy_j", "energy_trace_j", "clock_sm_mhz", "temp_c",
                "power_limit_w", "throttle", "throttle_time_s"):
        assert s[key] is None, key
    assert s["power_source"].startswith("unavailable: gpu0 has neither")
    assert any("GPU is lost" in e for e in s["telemetry_errors"])
    assert s["n_power_samples"] == 0


def test_one_unreadable_gpu_means_no_node_total():
    ok = FakeGpu()
    bad = FakeGpu(fail={"nvmlDeviceGetFieldValues": pynvml.NVML_ERROR_NO_PERMISSION,
                        "nvmlDeviceGetPowerUsage": pynvml.NVML_ERROR_NO_PERMISSION,
                        "nvmlDeviceGetTotalEnergyConsumption": pynvml.NVML_ERROR_NO_PERMISSION})
    tel, clock = nvml_telemetry([ok, bad])
    s = drive(tel, clock, t_end=1.0)
    assert s["per_gpu"][0]["energy_j"] == pytest.approx(300.0)
    assert s["energy_j"] is None and s["power_w"] is None and s["power_max_w"] is None
    assert s["power_source"].startswith("unavailable: gpu1")


# ---------------------------------------------------------------------------------------------
# RAPL from a fake sysfs tree


MAX_UJ = 262_143_328_850  # a real package's max_energy_range_uj


def rapl_tree(root, packages: dict[str, int]):
    for n, (name, start_uj) in enumerate(packages.items()):
        zone = root / f"intel-rapl:{n}"
        zone.mkdir(parents=True)
        (zone / "name").write_text(name + "\n")
        (zone / "energy_uj").write_text(f"{start_uj}\n")
        (zone / "max_energy_range_uj").write_text(f"{MAX_UJ}\n")
        (zone / "constraint_0_power_limit_uw").write_text("125000000\n")
    core = root / "intel-rapl:0:0"  # a sub-zone inside package-0: must not be added again
    core.mkdir()
    (core / "name").write_text("core\n")
    (core / "energy_uj").write_text("0\n")
    mmio = root / "intel-rapl-mmio:0"  # the same package through MMIO: must not count twice
    mmio.mkdir()
    (mmio / "name").write_text("package-0\n")
    return root


def set_uj(root, n: int, value: int):
    (root / f"intel-rapl:{n}" / "energy_uj").write_text(f"{value % MAX_UJ}\n")


def test_rapl_package_energy_with_wraparound(tmp_path):
    start0 = MAX_UJ - 100_000_000  # package-0 wraps 100 J into the window
    root = rapl_tree(tmp_path, {"package-0": start0, "package-1": 5_000_000})
    clock = FakeClock()
    tel = Telemetry.create("rapl", rapl_root=root, sample_hz=0, clock=clock)
    assert tel.source == "rapl" and tel.backend.labels == ["package-0", "package-1"]
    with tel.window() as w:
        for k in range(1, 501):  # 5 s at 100 Hz: 65 W on package-0, 35 W on package-1
            clock.t = k * 0.01
            set_uj(tmp_path, 0, start0 + round(65e6 * clock.t))
            set_uj(tmp_path, 1, 5_000_000 + round(35e6 * clock.t))
            if k < 500:
                w.poll()
    s = w.summary()
    assert s["power_source"] == "rapl:package"
    assert s["energy_j"] == pytest.approx(500.0)
    assert s["power_w"] == pytest.approx(100.0)
    assert s["power_max_w"] == pytest.approx(100.0)
    assert [g["energy_j"] for g in s["per_gpu"]] == [pytest.approx(325.0), pytest.approx(175.0)]
    assert s["power_limit_w"] == 250
    assert s["energy_trace_j"] is None  # RAPL has no power sensor to cross-check against
    assert s["clock_sm_mhz"] is None and s["temp_c"] is None and s["throttle"] is None
    assert any("clocks, temperature and throttle are not read" in e for e in s["telemetry_errors"])


def test_rapl_permission_denied_and_missing(tmp_path, monkeypatch):
    assert Telemetry.create("rapl", rapl_root=tmp_path / "nope").source == \
        f"unavailable: no RAPL ({tmp_path / 'nope'} not found)"
    root = rapl_tree(tmp_path / "pc", {"package-0": 1})
    real_read = type(root).read_text

    def denied(self, *a, **k):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return real_read(self, *a, **k)

    monkeypatch.setattr(type(root), "read_text", denied)
    source = Telemetry.create("rapl", rapl_root=root).source
    assert source.startswith("unavailable: no RAPL (permission denied reading")
    assert "CVE-2020-8694" in source


def test_auto_picks_by_run_kind(tmp_path):
    root = rapl_tree(tmp_path, {"package-0": 1})
    broken = fake_nvml([], FakeClock(), init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    assert Telemetry.create("auto", gpu=False, rapl_root=root).source == "rapl"
    assert Telemetry.create("auto", gpu=None, nvml=broken, rapl_root=root).source == "rapl"
    # A GPU run never reports CPU package power as the kernel's power.
    gpu_run = Telemetry.create("auto", gpu=True, nvml=broken, rapl_root=root)
    assert gpu_run.source == "unavailable: no NVML (nvmlInit: NVML Shared Library Not Found)"
    working = fake_nvml([FakeGpu()], FakeClock())
    assert Telemetry.create("auto", gpu=True, nvml=working, env={}).source == "nvml"
    assert Telemetry.create("none").source.startswith("unavailable: telemetry switched off")
    with pytest.raises(ValueError):
        Telemetry.create("bogus")


# ---------------------------------------------------------------------------------------------
# Replay, the run trace, idle power


def test_replay_of_a_recorded_trace_deduplicates_to_the_recording():
    t = [k / 8 for k in range(41)]  # recorded at 8 Hz (binary-exact times), ramp 100 -> 350 W
    p = [100 + 50 * x for x in t]
    clock = FakeClock()
    tel = Telemetry(ReplayBackend({"gpu0": {"t_s": t, "power_w": p, "temp_c": [50] * 41}}, origin=0.0),
                    sample_hz=0, clock=clock)
    assert tel.source == "replay"
    s = drive(tel, clock, t_end=5.0, dt=1 / 64)  # polled 8 times faster
    assert s["n_power_samples"] == 41
    assert s["power_source"] == "replay:power_trace"
    assert s["energy_j"] == pytest.approx(integrate_trace(t, p))
    assert s["temp_c"] == 50 and s["clock_sm_mhz"] is None


def test_run_trace_csv_run_energy_and_replay(tmp_path):
    gpu = FakeGpu(sensor_period_s=0.01)
    gpu.energy_j = lambda t: 300.0 * t
    tel = Telemetry.create("nvml", nvml=fake_nvml([gpu], time.perf_counter), env={})
    path = tmp_path / "power.csv"
    tel.start_run_trace(path, sample_hz=100)
    time.sleep(0.1)
    run = tel.stop_run_trace()
    assert run["run_energy_source"] == "nvml:energy_counter"
    assert close_to(run["run_energy_j"], 300.0 * run["run_time_s"], 0.1)
    assert run["run_trace_path"] == str(path) and run["run_trace_errors"] == []
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["t_s", "device", "power_w", "clock_sm_mhz", "temp_c"]
    assert len(rows) == run["run_trace_rows"] >= 2
    assert rows[0] == {"t_s": rows[0]["t_s"], "device": "gpu0", "power_w": "300.00",
                       "clock_sm_mhz": "1980", "temp_c": "60"}
    replay = ReplayBackend.from_csv(path, origin=0.0)
    assert replay.labels == ["gpu0"]
    assert replay.sample(0, 0.05, []).power_w == 300.0
    assert tel.stop_run_trace()["run_energy_j"] is None  # nothing running any more
    tel.close()
    tel.close()


def test_idle_power():
    clock = FakeClock()

    def sleep(seconds):
        clock.t += seconds

    tel = Telemetry.create("nvml", nvml=fake_nvml([FakeGpu(power=Pwl([(0, 80.0), (99, 80.0)]))], clock),
                           sample_hz=0, clock=clock, env={})
    tel._sleep = sleep
    idle = tel.idle(3.0)
    assert idle["power_w"] == pytest.approx(80.0)
    assert idle["window_s"] == pytest.approx(3.0)
    with pytest.raises(ValueError):
        tel.idle(0)


def test_cpu_run_on_this_machine_says_why_power_is_null():
    import torch

    for kind in (None, False):
        tel = Telemetry.create("auto", gpu=kind)
        a = torch.randn(64, 64)
        with tel.window() as w:
            a @ a
        s = w.summary()
        if not tel.source.startswith("unavailable"):
            assert s["power_source"] == "rapl:package"  # a machine with readable RAPL
            continue
        assert s["power_w"] is None and s["energy_j"] is None
        assert s["power_source"] == tel.source
        assert "no RAPL" in s["power_source"]
        assert ("no NVML" in s["power_source"]) == (kind is None)
        assert s["window_s"] > 0


@pytest.mark.gpu
def test_nvml_window_reads_real_power_around_gpu_work():
    """On a real GPU: the NVML backend opens, and a window around ~1 s of bf16 GEMMs reads
    energy from the counter and the sampler, within a plausible band of the card's limit."""
    import torch

    from harness.measure.telemetry import Telemetry

    tel = Telemetry.create("nvml", [torch.cuda.current_device()], sample_hz=100)
    try:
        assert tel.source == "nvml", tel.source
        a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        with tel.window(sync=torch.cuda.synchronize) as w:
            t_end = time.perf_counter() + 1.0
            while time.perf_counter() < t_end:
                for _ in range(8):
                    a @ a
                torch.cuda.synchronize()
        s = w.summary()
    finally:
        tel.close()
    assert s["energy_j"] and s["energy_j"] > 0, s
    limit = s["power_limit_w"]
    assert limit and 50 < s["power_w"] <= 1.2 * limit, s
    assert s["n_power_samples"] >= 5, s
    assert s["clock_sm_mhz"] and s["clock_sm_mhz"] > 300, s
    assert isinstance(s["throttle"], list)
