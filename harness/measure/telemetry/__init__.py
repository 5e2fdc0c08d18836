"""Power, energy, clock and throttle telemetry around a timed region.

    tel = Telemetry.create("auto", device_indices=[0])
    with tel.window(sync=torch.cuda.synchronize) as w:
        ...timed region...
    row.update(w.summary())       # power_w, energy_j, power_source, clock_sm_mhz, throttle, ...

Why it is built this way (sources in docs/sources.md, "Power"):

- Energy comes from a hardware counter first (NVML nvmlDeviceGetTotalEnergyConsumption, mJ,
  Volta+; RAPL energy_uj on the CPU) and only falls back to integrating polled power. Yang,
  Adamek & Armour (SC'24, arXiv 2312.02741) show the A100/H100 power sensor averages only 25 ms
  of every 100 ms, so naive integration of polled power is on average 39% low; we report both
  and their disagreement rather than trusting either blindly. Zeus (ml-energy/zeus,
  zeus/monitor/energy.py) takes the same counter-first order.
- A reading that cannot be taken is None with its reason in `power_source` or
  `telemetry_errors`; nothing here ever estimates a missing value (docs/sources.md, "Power").
- No telemetry failure escapes a window: a benchmark row with a null power is worth more than a
  run that died because a sensor said "Not Supported".

The package: base.py (Sample, TelemetryError, the Backend protocol, the null backend and the
pure helpers), nvml.py (GPUs), rapl.py (CPU packages), replay.py (recorded traces), and
window.py (Window, Telemetry and the whole-run trace). Backends import base; window imports
them all; nothing imports window back, so there is no import circle.
"""


from harness.core.stats import short_window, slowdown  # noqa: F401 - window helpers, re-exported
from harness.measure.telemetry.base import (THROTTLE_BITS, TRACE_COLUMNS, Backend, NullBackend,  # noqa: F401
                                            Sample, TelemetryError, counter_delta, decode_throttle,
                                            integrate_trace)
from harness.measure.telemetry.replay import ReplayBackend  # noqa: F401
from harness.measure.telemetry.window import SUMMARY_KEYS, Telemetry, Window  # noqa: F401
