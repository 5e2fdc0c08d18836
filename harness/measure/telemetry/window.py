"""Windows around a timed region, and the run-level Telemetry that opens them.

    tel = Telemetry.create("auto", device_indices=[0])
    with tel.window(sync=torch.cuda.synchronize) as w:
        ...timed region...
    w.summary()       # power_w, energy_j, power_source, clock_sm_mhz, throttle, ...
"""

from __future__ import annotations

import csv
import math
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from harness.measure.telemetry.base import (TRACE_COLUMNS, Backend, NullBackend, Sample, TelemetryError,
                                            counter_delta, decode_throttle, integrate_trace)
from harness.measure.telemetry.nvml import NvmlBackend
from harness.measure.telemetry.rapl import RaplBackend


# ---------------------------------------------------------------------------------------------
# Sampling


class _Ticker:
    """Calls fn() every period_s on a daemon thread until stop(). An exception ends the thread
    and is kept in `error`; it never reaches the benchmark."""

    def __init__(self, period_s: float, fn: Callable[[], None], name: str):
        self.error: str | None = None
        self._period_s, self._fn = period_s, fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_t = time.monotonic()
        try:
            while not self._stop.is_set():
                self._fn()
                # Fixed-rate schedule; after a stall, skip the missed ticks instead of bursting.
                next_t = max(next_t + self._period_s, time.monotonic())
                self._stop.wait(next_t - time.monotonic())
        except Exception as e:  # noqa: BLE001 - a dying sampler must leave a reason, not a crash
            self.error = f"sampler thread died: {type(e).__name__}: {e}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        if self._thread.is_alive():
            self.error = self.error or "sampler thread did not stop within 5 s"


def _power_points(samples: list[Sample], has_sensor: bool) -> list[tuple[float, float | None, bool]]:
    """(t_s, power_w, is_new) per poll of one device.

    With a sensor: repeated sensor timestamps are one reading, so later copies are marked not
    new (they must not count as samples), except the last poll, which closes the window with
    the reading still in force. Without one (RAPL): power is the counter's slope between polls,
    placed at the interval's midpoint.
    """
    if has_sensor:
        points, last_ts = [], object()
        for k, s in enumerate(samples):
            new = s.power_ts_us is None or s.power_ts_us != last_ts or k == len(samples) - 1
            if s.power_w is not None:
                last_ts = s.power_ts_us
            points.append((s.t_s, s.power_w, new and s.power_w is not None))
        return points
    points = [(samples[0].t_s, None, False)] if samples else []
    for a, b in zip(samples, samples[1:]):
        p = None
        if a.energy_j is not None and b.energy_j is not None and b.t_s > a.t_s:
            delta, _ = counter_delta(a.energy_j, b.energy_j, b.energy_range_j)
            p = None if delta is None else delta / (b.t_s - a.t_s)
        points.append(((a.t_s + b.t_s) / 2, p, p is not None))
    return points


def _or_throttle(samples: list[Sample]) -> list[str] | None:
    """Throttle reasons seen at any poll: the masks OR-ed over the window, decoded. None when
    no poll could read them ([] would claim "not throttled")."""
    masks = [s.throttle_mask for s in samples if s.throttle_mask is not None]
    mask = 0
    for m in masks:
        mask |= m
    return decode_throttle(mask) if masks else None


def _minimum(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return min(values) if values else None


def _maximum(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return math.fsum(values) / len(values) if values else None


def _total(values: list) -> float | None:
    """Node total: only when every device has a value, or it is not a total."""
    return None if not values or any(v is None for v in values) else math.fsum(values)


# ---------------------------------------------------------------------------------------------
# Windows


class Window:
    """One measurement window; use through Telemetry.window(). Summary after the `with` block."""

    def __init__(self, tel: Telemetry, sync: Callable[[], object] | None):
        self._tel, self._b, self._sync = tel, tel.backend, sync
        self._n = len(self._b.labels)
        self._polls: list[list[Sample]] = []   # one list per poll, one Sample per device
        self._errors: dict[str, None] = {}    # ordered set: a repeated failure is one reason
        self._ticker: _Ticker | None = None
        self._summary: dict | None = None

    # -- edges ------------------------------------------------------------------------------

    def __enter__(self) -> Window:
        if self._sync is not None:
            self._sync()
        self._limits = self._each("power limit", self._b.power_limit_w)
        self._viol_start = self._each("violation status", self._b.violation_s)
        self._guard("first sample", self.poll)
        self._counter_start = self._each("energy counter", self._b.energy_counter_j)
        self._t0 = self._tel.clock()
        if self._n and self._tel.sample_hz > 0:
            self._ticker = _Ticker(1.0 / self._tel.sample_hz, self.poll, "gwbench-telemetry")
        return self

    def __exit__(self, *exc_info) -> bool:
        try:
            if self._sync is not None:
                self._sync()  # a device fault here is the benchmark's, so it propagates
        finally:
            self._t1 = self._tel.clock()
            self._counter_end = self._each("energy counter", self._b.energy_counter_j)
            self._viol_end = self._each("violation status", self._b.violation_s)
            if self._ticker is not None:
                self._ticker.stop()
                if self._ticker.error:
                    self._errors[self._ticker.error] = None
            self._guard("last sample", self.poll)
            self._summary = self._guard("summary", self._summarize) or self._empty_summary()
        return False

    def poll(self) -> None:
        """Take one sample of every device now. The sampler thread calls this at sample_hz;
        tests with sample_hz=0 call it by hand between steps of a fake clock."""
        errors: list[str] = []
        t = self._tel.clock()
        self._polls.append([self._b.sample(i, t, errors) for i in range(self._n)])
        self._errors.update(dict.fromkeys(errors))

    def _guard(self, what: str, fn: Callable[[], object]):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - no telemetry fault escapes a window
            self._errors[f"{what} failed: {type(e).__name__}: {e}"] = None
            return None

    def _each(self, what: str, method: Callable) -> list:
        errors: list[str] = []
        values = [self._guard(f"{self._b.labels[i]} {what}", lambda i=i: method(i, errors))
                  for i in range(self._n)]
        self._errors.update(dict.fromkeys(errors))
        return values

    # -- summary ----------------------------------------------------------------------------

    def summary(self) -> dict:
        """Flat row fields (see _summarize); available once the `with` block has closed."""
        if self._summary is None:
            raise RuntimeError("Window.summary() is available after the `with` block closes")
        return self._summary

    def _empty_summary(self) -> dict:
        out = dict.fromkeys(SUMMARY_KEYS)
        out.update(power_source=self._b.reason or "unavailable: telemetry failed (see telemetry_errors)",
                   per_gpu=[], n_power_samples=0,
                   telemetry_errors=self._b.notes + list(self._errors))
        if getattr(self, "_t1", None) is not None:
            out["window_s"] = self._t1 - self._t0
        return out

    def _summarize(self) -> dict:
        window_s = self._t1 - self._t0
        if not self._n:
            return self._empty_summary()
        self._counter_j: list[float | None] = [None] * self._n  # filled by _device_summary
        per = [self._device_summary(i, window_s) for i in range(self._n)]
        # Node total power at each poll: only polls where every device had a reading.
        traces = [_power_points([p[i] for p in self._polls], self._b.has_power_sensor)
                  for i in range(self._n)]
        node_power = [_total([tr[k][1] for tr in traces]) for k in range(len(self._polls))]
        energy = _total([d["energy_j"] for d in per])
        sources = {d["power_source"] for d in per}
        if energy is None:
            source = next((s for s in sources if s.startswith("unavailable")), "unavailable: energy missing")
        else:  # a node is only as good as its worst device's source
            source = self._b.trace_source if self._b.trace_source in sources else self._b.counter_source
        out = {
            "power_w": energy / window_s if energy is not None and window_s > 0 else None,
            "power_max_w": _maximum(node_power),
            "energy_j": energy,
            "energy_trace_j": _total([d["energy_trace_j"] for d in per]),
            "energy_disagreement": None,
            "power_source": source,
            "clock_sm_mhz": _minimum([d["clock_sm_mhz"] for d in per]),
            "clock_sm_mean_mhz": _mean([s.clock_sm_mhz for p in self._polls for s in p]),
            "clock_mem_mhz": _minimum([d["clock_mem_mhz"] for d in per]),
            "clock_mem_mean_mhz": _mean([s.clock_mem_mhz for p in self._polls for s in p]),
            "temp_c": _maximum([d["temp_c"] for d in per]),
            "power_limit_w": _total([d["power_limit_w"] for d in per]),
            "throttle": _or_throttle([s for p in self._polls for s in p]),
            # The slowest GPU gates a synchronous step, so the node figure is the worst GPU's.
            "throttle_time_s": _maximum([d["throttle_time_s"] for d in per]),
            "window_s": window_s,
            "n_power_samples": min(d["n_power_samples"] for d in per),
            "per_gpu": per,
            "telemetry_errors": self._b.notes + list(self._errors),
        }
        counter = _total(self._counter_j)
        if counter and out["energy_trace_j"] is not None:
            out["energy_disagreement"] = (out["energy_trace_j"] - counter) / counter
        return out

    def _device_summary(self, i: int, window_s: float) -> dict:
        label, b = self._b.labels[i], self._b
        samples = [p[i] for p in self._polls]
        points = _power_points(samples, b.has_power_sensor)
        new = [(t, p) for t, p, is_new in points if is_new]

        counter, reason = None, None
        start, end = self._counter_start[i], self._counter_end[i]
        if start is not None and end is not None:
            counter, reason = counter_delta(start[0], end[0], end[1])
        trace = None
        if b.has_power_sensor and len(new) >= 2:
            # The first and last polls sit just outside the window's clock readings, so the
            # trace spans slightly more (or, with gaps, less) than window_s: take its
            # time-weighted mean power and scale it to the window, which is exact for
            # constant power whatever the window's length.
            span = new[-1][0] - new[0][0]
            if span > 0:
                mean_w = integrate_trace([t for t, _ in new], [p for _, p in new]) / span
                trace = mean_w * window_s

        if counter == 0 and trace:
            # A drawing device cannot use zero energy: the counter had not ticked yet.
            counter = None
            reason = f"energy counter did not advance in {window_s:.3f} s (it updates every ~100 ms)"
        if reason:
            self._errors[f"{label}: {reason}"] = None
        self._counter_j[i] = counter
        energy, source = (counter, b.counter_source) if counter is not None else (trace, b.trace_source)
        if energy is None:
            source = f"unavailable: {label} has neither an energy counter delta nor a power trace"

        viol = {}
        for kind in ("power", "thermal"):
            a = (self._viol_start[i] or {}).get(kind)
            z = (self._viol_end[i] or {}).get(kind)
            viol[kind] = None if a is None or z is None else counter_delta(a, z, None)[0]
        return {
            "device": label,
            "power_w": energy / window_s if energy is not None and window_s > 0 else None,
            "power_max_w": _maximum([p for _, p in new]),
            "energy_j": energy,
            "energy_trace_j": trace,
            "energy_disagreement": (trace - counter) / counter if counter and trace is not None else None,
            "power_source": source,
            "clock_sm_mhz": _minimum([s.clock_sm_mhz for s in samples]),
            "clock_sm_mean_mhz": _mean([s.clock_sm_mhz for s in samples]),
            "clock_mem_mhz": _minimum([s.clock_mem_mhz for s in samples]),
            "clock_mem_mean_mhz": _mean([s.clock_mem_mhz for s in samples]),
            "temp_c": _maximum([s.temp_c for s in samples]),
            "power_limit_w": self._limits[i],
            "throttle": _or_throttle(samples),
            "throttle_power_s": viol["power"],
            "throttle_thermal_s": viol["thermal"],
            # Power and thermal violations can overlap in time, so the larger is a lower bound.
            "throttle_time_s": _maximum([viol["power"], viol["thermal"]]),
            "n_power_samples": len(new),
        }


# Node-level keys of Window.summary(), in order; per_gpu entries carry the same figures per
# device plus "device", "throttle_power_s" and "throttle_thermal_s".
SUMMARY_KEYS = (
    "power_w", "power_max_w", "energy_j", "energy_trace_j", "energy_disagreement", "power_source",
    "clock_sm_mhz", "clock_sm_mean_mhz", "clock_mem_mhz", "clock_mem_mean_mhz", "temp_c",
    "power_limit_w", "throttle", "throttle_time_s", "window_s", "n_power_samples", "per_gpu",
    "telemetry_errors",
)



# ---------------------------------------------------------------------------------------------
# The run-level object


class Telemetry:
    """Created once per run: picks a backend, opens windows, records the whole-run trace."""

    def __init__(self, backend: Backend, sample_hz: float = 100.0,
                 clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], object] = time.sleep):
        # 0 means no sampler thread (edge samples only). The CLI's --sample-hz allows up to
        # 10 kHz; beyond ~1 kHz polling only burns CPU, as NVML readings refresh every few ms.
        if not 0 <= sample_hz <= 10_000:
            raise ValueError(f"sample_hz must be in [0, 10000], got {sample_hz}")
        self.backend, self.sample_hz, self.clock, self._sleep = backend, sample_hz, clock, sleep
        self._run: _RunTrace | None = None

    @property
    def source(self) -> str:
        """"nvml", "rapl", "replay", or "unavailable: <why>"."""
        return self.backend.reason or self.backend.name

    @classmethod
    def create(cls, backend: str = "auto", device_indices: list[int] | None = None,
               sample_hz: float = 100.0, nvml=None, rapl_root: str | Path | None = None, *,
               gpu: bool | None = None, clock: Callable[[], float] = time.perf_counter,
               env: Mapping[str, str] | None = None) -> Telemetry:
        """Open the best readable backend; never raises for an unreadable one.

        backend: "auto" | "nvml" | "rapl" | "none". `gpu` says what the run measures: True ->
        "auto" reads NVML or nothing (CPU package power is not a GPU kernel's power); False ->
        RAPL or nothing; None -> NVML if it sees a GPU, else RAPL, else nothing.
        device_indices are CUDA ordinals (mapped through CUDA_VISIBLE_DEVICES from `env`);
        None means every GPU. `nvml` replaces the pynvml module (tests); `rapl_root` replaces
        /sys/class/powercap.
        """
        if backend not in ("auto", "nvml", "rapl", "none"):
            raise ValueError(f"telemetry backend must be auto, nvml, rapl or none, got {backend!r}")
        reasons: list[str] = []
        if backend == "nvml" or (backend == "auto" and gpu is not False):
            try:
                return cls(NvmlBackend(nvml, device_indices, env), sample_hz, clock)
            except TelemetryError as e:
                reasons.append(f"no NVML ({e})")
            except Exception as e:  # noqa: BLE001 - an odd binding or driver: say so, run on
                reasons.append(f"no NVML ({type(e).__name__}: {e})")
        if backend == "rapl" or (backend == "auto" and gpu is not True):
            try:
                return cls(RaplBackend(rapl_root), sample_hz, clock)
            except TelemetryError as e:
                reasons.append(f"no RAPL ({e})")
            except Exception as e:  # noqa: BLE001
                reasons.append(f"no RAPL ({type(e).__name__}: {e})")
        if backend == "none":
            reasons.append("telemetry switched off (--telemetry none)")
        return cls(NullBackend("unavailable: " + "; ".join(reasons)), sample_hz, clock)

    def window(self, sync: Callable[[], object] | None = None) -> Window:
        """`with tel.window(sync=dev.sync) as w:` around the timed region; then w.summary()."""
        return Window(self, sync)

    def idle(self, seconds: float) -> dict:
        """A window over `seconds` of doing nothing: the node's idle power, for run.json."""
        if not seconds > 0:
            raise ValueError(f"idle seconds must be positive, got {seconds}")
        with self.window() as w:
            self._sleep(seconds)
        return w.summary()

    def start_run_trace(self, path: str | Path, sample_hz: float = 10.0) -> None:
        """Start writing the whole run's power trace to `path` (CSV: t_s, device, power_w,
        clock_sm_mhz, temp_c; t_s from the start of the trace). 10 Hz by default: the NVML
        power reading refreshes about every 100 ms (SC'24), and hours at 100 Hz are bulky."""
        if self._run is not None:
            raise RuntimeError("a run trace is already being recorded")
        self._run = _RunTrace(self, Path(path), sample_hz)

    def stop_run_trace(self) -> dict:
        """Stop the run trace; returns run_energy_j, run_energy_source, run_time_s,
        run_trace_path, run_trace_rows and run_trace_errors (for run.json)."""
        if self._run is None:
            return {"run_energy_j": None, "run_energy_source": "unavailable: no run trace was started"}
        run, self._run = self._run, None
        return run.stop()

    def close(self) -> None:
        """Stop any run trace and release the backend (nvmlShutdown). Safe to call twice."""
        if self._run is not None:
            self.stop_run_trace()
        try:
            self.backend.close()
        except Exception:  # noqa: BLE001 - shutting down must not fail a finished run
            pass


class _RunTrace:
    """The whole-run trace: streamed to CSV and flushed at each poll, so a crash keeps it
    (a crash keeps every flushed line); energy integrated as it goes rather than kept in memory."""

    def __init__(self, tel: Telemetry, path: Path, sample_hz: float):
        self._tel, self._b, self.path = tel, tel.backend, path
        n = len(self._b.labels)
        self._errors: dict[str, None] = {}
        self._file = open(path, "w", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(TRACE_COLUMNS)
        self.rows = 0
        self._prev: list[Sample | None] = [None] * n     # last sample, for repeats and slopes
        self._last: list[tuple[float, float] | None] = [None] * n  # last point integrated
        self._trace_j = [0.0] * n
        self._counter_start = self._counters()
        self._t0 = tel.clock()
        self._poll()
        self._ticker = None
        if n and sample_hz > 0:
            self._ticker = _Ticker(1.0 / sample_hz, self._poll, "gwbench-run-trace")

    def _counters(self) -> list:
        errors: list[str] = []
        out = []
        for i in range(len(self._b.labels)):
            try:
                out.append(self._b.energy_counter_j(i, errors))
            except Exception as e:  # noqa: BLE001
                errors.append(f"{self._b.labels[i]} energy counter failed: {type(e).__name__}: {e}")
                out.append(None)
        self._errors.update(dict.fromkeys(errors))
        return out

    def _poll(self, last: bool = False) -> None:
        errors: list[str] = []
        t = self._tel.clock()
        for i, label in enumerate(self._b.labels):
            s, prev = self._b.sample(i, t, errors), self._prev[i]
            power = s.power_w
            if self._b.has_power_sensor:
                repeat = prev is not None and s.power_ts_us is not None and s.power_ts_us == prev.power_ts_us
                if repeat and not last:
                    continue
                if power is not None:
                    if self._last[i] is not None:
                        t0, p0 = self._last[i]
                        self._trace_j[i] += (t - t0) * (p0 + power) / 2
                    self._last[i] = (t, power)
            else:
                power = None
                if prev is not None and prev.energy_j is not None and s.energy_j is not None and t > prev.t_s:
                    delta, _ = counter_delta(prev.energy_j, s.energy_j, s.energy_range_j)
                    power = None if delta is None else delta / (t - prev.t_s)
            self._prev[i] = s
            if power is None and s.clock_sm_mhz is None and s.temp_c is None:
                continue
            self._csv.writerow([f"{t - self._t0:.3f}", label, _fmt(power, 2), _fmt(s.clock_sm_mhz, 0),
                                _fmt(s.temp_c, 0)])
            self.rows += 1
        self._file.flush()
        self._errors.update(dict.fromkeys(errors))

    def stop(self) -> dict:
        if self._ticker is not None:
            self._ticker.stop()
            if self._ticker.error:
                self._errors[self._ticker.error] = None
        try:
            self._poll(last=True)
        except Exception as e:  # noqa: BLE001
            self._errors[f"last sample failed: {type(e).__name__}: {e}"] = None
        run_time_s = self._tel.clock() - self._t0
        counter_end = self._counters()
        self._file.close()
        deltas = []
        for i, (a, z) in enumerate(zip(self._counter_start, counter_end)):
            delta = None
            if a is not None and z is not None:
                delta, reason = counter_delta(a[0], z[0], z[1])
                if reason:
                    self._errors[f"{self._b.labels[i]}: {reason}"] = None
            deltas.append(delta)
        energy, source = _total(deltas), self._b.counter_source
        if energy is None and self._b.has_power_sensor and all(self._last):
            energy, source = math.fsum(self._trace_j), self._b.trace_source
        if energy is None:
            source = self._b.reason or "unavailable: no energy counter or power trace over the run"
        return {"run_energy_j": energy, "run_energy_source": source, "run_time_s": run_time_s,
                "run_trace_path": str(self.path), "run_trace_rows": self.rows,
                "run_trace_errors": self._b.notes + list(self._errors)}


def _fmt(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"
