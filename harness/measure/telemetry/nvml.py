"""NVML backend for harness.measure.telemetry: GPU power, energy, clocks, temperature, throttling.

Every NVML call goes through NvmlBackend._call, the one place where pynvml.NVMLError becomes
TelemetryError (Zeus does the same with its _handle_nvml_errors decorator in
zeus/device/gpu/nvidia.py, which also maps CUDA ordinals through CUDA_VISIBLE_DEVICES). A reading
NVML refuses for good (Not Supported, Insufficient Permissions, Function Not Found) is not asked
again: the reason is remembered and repeated to every window, so polling at 100 Hz does not
hammer the driver with calls that cannot succeed.

NVML facts used (NVML API reference, "Device Queries"; docs/sources.md "Power"):
- nvmlDeviceGetTotalEnergyConsumption: mJ since the driver loaded, Volta and newer.
- NVML_FI_DEV_POWER_INSTANT (field 186) through nvmlDeviceGetFieldValues: instantaneous mW,
  with the sensor's own timestamp (us), which tells a fresh reading from a repeat. We ask for
  the default scope, NVML_POWER_SCOPE_GPU: on Grace Hopper the MODULE scope would add the CPU.
- nvmlDeviceGetPowerUsage: mW, but a 1 s average on Ampere and newer: only a fallback.
- nvmlDeviceGetViolationStatus: cumulative ns throttled per policy (power, thermal).
- nvmlDeviceGetCurrentClocksEventReasons, named ...ClocksThrottleReasons before driver 535.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from harness.measure.nvml import cuda_uuid, visible_entries
from harness.measure.nvml import handle as nvml_handle
from harness.measure.telemetry.base import Sample, TelemetryError

# Field value unions by NVML_VALUE_TYPE_* (nvml.h, nvmlValueType_t).
_VALUE_MEMBER = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}
# Functions NVML renamed: new name -> the old one, tried when the new one is missing.
_OLD_NAME = {"nvmlDeviceGetCurrentClocksEventReasons": "nvmlDeviceGetCurrentClocksThrottleReasons"}


class NvmlBackend:
    """The GPUs a run measures, through nvidia-ml-py (`import pynvml`)."""

    name, reason = "nvml", None
    counter_source, trace_source, has_power_sensor = "nvml:energy_counter", "nvml:power_trace", True

    def __init__(self, nvml=None, device_indices: list[int] | None = None,
                 env: Mapping[str, str] | None = None):
        real = nvml is None
        if nvml is None:
            try:
                import pynvml as nvml  # imported here: a CPU-only install may lack it
            except ImportError as e:
                raise TelemetryError(str(e)) from e
        # A fake NVML (tests) has no GPUs behind it: do not ask CUDA for their UUIDs.
        self._real = real
        self.nvml, self.notes = nvml, []
        # Readings NVML has refused for good: (device, what) -> reason, repeated to each window.
        self._refused: dict[tuple[int, str], str] = {}
        self._renamed: dict[str, str] = {}
        self._call("nvmlInit")
        try:
            self.handles, self.labels = self._open(device_indices, os.environ if env is None else env)
        except TelemetryError:
            self.close()
            raise

    def _call_with(self, fn):
        """fn() with NVMLError turned into TelemetryError, as _call does for named functions."""
        try:
            return fn()
        except self.nvml.NVMLError as e:
            raise TelemetryError(str(e), getattr(e, "value", None)) from e

    def _call(self, fn: str, *args):
        """Call pynvml.<fn>; NVMLError -> TelemetryError carrying NVML's message and code.

        A function that the binding or the driver lacks (renamed in driver 535) is retried once
        under its old name, and the old name is used from then on."""
        fn = self._renamed.get(fn, fn)
        try:
            f = getattr(self.nvml, fn, None)
            if f is None:
                raise self.nvml.NVMLError(self.nvml.NVML_ERROR_FUNCTION_NOT_FOUND)
            return f(*args)
        except self.nvml.NVMLError as e:
            code = getattr(e, "value", None)
            if code == self.nvml.NVML_ERROR_FUNCTION_NOT_FOUND and fn in _OLD_NAME:
                self._renamed[fn] = _OLD_NAME[fn]
                return self._call(fn, *args)
            raise TelemetryError(f"{fn}: {e}", code) from e

    def _open(self, indices: list[int] | None, env: Mapping[str, str]) -> tuple[list, list[str]]:
        """Handles of the CUDA ordinals `indices` (None: every visible GPU), through the one
        ordinal -> handle mapping (measure/nvml.py)."""
        entries = visible_entries(env)
        count = len(entries) if entries is not None else self._call("nvmlDeviceGetCount")
        indices = list(range(count)) if indices is None else list(indices)
        if not indices:
            raise TelemetryError("no GPUs to measure")
        handles, labels = [], []
        for i in indices:
            if not isinstance(i, int) or not 0 <= i < count:
                raise TelemetryError(f"GPU {i} not found ({count} visible)")
            uuid = cuda_uuid(i) if self._real else None
            handles.append(self._call_with(lambda i=i, uuid=uuid: nvml_handle(self.nvml, i, env, uuid)))
            labels.append(f"gpu{i}")
        return handles, labels

    def _read(self, i: int, what: str, fn: str, *args, errors: list[str]):
        """One reading, or None with the reason appended; permanent refusals are remembered."""
        refused = self._refused.get((i, what))
        if refused:
            errors.append(refused)
            return None
        try:
            return self._call(fn, self.handles[i], *args)
        except TelemetryError as e:
            reason = f"{self.labels[i]} {what}: {e}"
            if e.code in self._permanent_codes():
                self._refused[(i, what)] = reason
            errors.append(reason)
            return None

    def _permanent_codes(self) -> tuple[int, ...]:
        n = self.nvml
        return (n.NVML_ERROR_NOT_SUPPORTED, n.NVML_ERROR_NO_PERMISSION, n.NVML_ERROR_FUNCTION_NOT_FOUND)

    def _power(self, i: int, errors: list[str]) -> tuple[float | None, int | None]:
        """(watts, sensor timestamp us): the instant field first, nvmlDeviceGetPowerUsage only
        once the field is refused for good (a transient failure is a gap, so one trace never
        mixes instant readings with 1 s averages)."""
        n, key = self.nvml, (i, "instant power")
        if key not in self._refused:
            values = self._read(i, "instant power", "nvmlDeviceGetFieldValues",
                                [n.NVML_FI_DEV_POWER_INSTANT], errors=errors)
            if values is not None:
                v = values[0]  # each field carries its own return code
                if v.nvmlReturn == n.NVML_SUCCESS:
                    return getattr(v.value, _VALUE_MEMBER.get(v.valueType, "uiVal")) / 1000.0, v.timestamp
                reason = f"{self.labels[i]} instant power: {n.NVMLError(v.nvmlReturn)}"
                if v.nvmlReturn in self._permanent_codes():
                    self._refused[key] = reason
                else:
                    errors.append(reason)
            if key not in self._refused:
                return None, None
        errors.append(self._refused[key])
        errors.append(f"{self.labels[i]}: power from nvmlDeviceGetPowerUsage, a 1 s average on "
                      "Ampere and newer, because instant power is unavailable")
        mw = self._read(i, "power usage", "nvmlDeviceGetPowerUsage", errors=errors)
        return (None if mw is None else mw / 1000.0), None

    # -- the Backend interface --------------------------------------------------------------

    def sample(self, i: int, t_s: float, errors: list[str]) -> Sample:
        n = self.nvml
        power_w, ts = self._power(i, errors)
        return Sample(
            t_s, power_w=power_w, power_ts_us=ts,
            clock_sm_mhz=self._read(i, "SM clock", "nvmlDeviceGetClockInfo", n.NVML_CLOCK_SM, errors=errors),
            clock_mem_mhz=self._read(i, "memory clock", "nvmlDeviceGetClockInfo", n.NVML_CLOCK_MEM,
                                     errors=errors),
            temp_c=self._read(i, "temperature", "nvmlDeviceGetTemperature", n.NVML_TEMPERATURE_GPU,
                              errors=errors),
            throttle_mask=self._read(i, "throttle reasons", "nvmlDeviceGetCurrentClocksEventReasons",
                                     errors=errors),
        )

    def energy_counter_j(self, i: int, errors: list[str]) -> tuple[float, None] | None:
        mj = self._read(i, "energy counter", "nvmlDeviceGetTotalEnergyConsumption", errors=errors)
        return None if mj is None else (mj / 1000.0, None)  # mJ since driver load; never wraps

    def power_limit_w(self, i: int, errors: list[str]) -> float | None:
        mw = self._read(i, "power limit", "nvmlDeviceGetEnforcedPowerLimit", errors=errors)
        return None if mw is None else mw / 1000.0

    def violation_s(self, i: int, errors: list[str]) -> dict[str, float | None]:
        out = {}
        for kind, policy in (("power", self.nvml.NVML_PERF_POLICY_POWER),
                             ("thermal", self.nvml.NVML_PERF_POLICY_THERMAL)):
            v = self._read(i, f"{kind} violation time", "nvmlDeviceGetViolationStatus", policy, errors=errors)
            out[kind] = None if v is None else v.violationTime / 1e9  # ns throttled, cumulative
        return out

    def close(self) -> None:
        try:
            self._call("nvmlShutdown")  # reference-counted by NVML: pairs with our nvmlInit
        except TelemetryError:
            pass
