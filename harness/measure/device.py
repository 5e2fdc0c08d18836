"""Backend detection, synchronisation, timers, the cache-flush buffer and device facts.

Only this module (and the benchmark families) talk to torch's device APIs. Timers:
CUDA events around each iteration on the GPU (the host clock would include launch
latency and queueing); `perf_counter` around a synchronised call on the CPU.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.core.errors import SkipCase, UsageError
from harness.measure.nvml import cuda_uuid
from harness.measure.nvml import handle as nvml_handle

MiB = 1 << 20
CUDA_FLUSH_MIN_BYTES = 256 * MiB  # mamf-finder and triton flush with 256 MiB on the GPU
CPU_FLUSH_MIN_BYTES = 8 * MiB


class CpuTimer:
    """Host-clock timer: sync, read the clock, run, sync, read the clock.

    `clock` is injectable so tests can drive the timing algorithm with a fake clock.
    """

    def __init__(self, sync: Callable[[], None], clock: Callable[[], float] = time.perf_counter):
        self._sync = sync
        self._clock = clock
        self._t0 = 0.0
        self._samples: list[float] = []

    def start(self) -> None:
        self._sync()
        self._t0 = self._clock()

    def stop(self) -> None:
        self._sync()
        self._samples.append(self._clock() - self._t0)

    def samples(self) -> list[float]:
        return list(self._samples)


class CudaTimer:
    """One pair of CUDA events per iteration; read once after a single synchronize."""

    def __init__(self, stream=None):
        self._pairs: list[tuple] = []
        self._stream = stream

    def start(self) -> None:
        ev = torch.cuda.Event(enable_timing=True)
        ev.record(self._stream)
        self._pairs.append((ev, None))

    def stop(self) -> None:
        ev = torch.cuda.Event(enable_timing=True)
        ev.record(self._stream)
        start, _ = self._pairs[-1]
        self._pairs[-1] = (start, ev)

    def samples(self) -> list[float]:
        torch.cuda.synchronize()
        return [s.elapsed_time(e) / 1e3 for s, e in self._pairs]  # elapsed_time is in ms


@dataclass
class Device:
    backend: str  # "cuda" | "cpu"
    index: int = 0
    _flush_buf: torch.Tensor | None = field(default=None, repr=False)

    @property
    def torch_device(self) -> torch.device:
        return torch.device("cuda", self.index) if self.backend == "cuda" else torch.device("cpu")

    @property
    def is_cuda(self) -> bool:
        return self.backend == "cuda"

    def sync(self) -> None:
        if self.is_cuda:
            torch.cuda.synchronize(self.index)

    def timer(self, clock: Callable[[], float] | None = None):
        """CUDA events on the GPU; the (injectable) host clock on the CPU or when faked."""
        if clock is not None or not self.is_cuda:
            return CpuTimer(self.sync, clock or time.perf_counter)
        return CudaTimer()

    def cache_bytes(self) -> int:
        """The cache a flush must evict: L2 on the GPU, private L2s of all cores on the CPU."""
        if self.is_cuda:
            props = torch.cuda.get_device_properties(self.index)
            return int(getattr(props, "L2_cache_size", 0) or 0)
        l2 = cpu_cache_bytes(level=2) or 0
        return l2 * (os.cpu_count() or 1)

    def last_level_cache_bytes(self) -> int:
        """Last-level cache of the whole device: L2 on a GPU, L3 summed over its domains on a
        CPU (one L3 per socket or CCX), never less than the private L2s together. Arrays meant
        to live in DRAM/HBM are sized from this (STREAM: 4x)."""
        if self.is_cuda:
            return self.cache_bytes()
        l3 = cpu_cache_bytes(level=3) or 0
        domains = set()
        for f in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cache/index3/shared_cpu_list"):
            try:
                domains.add(f.read_text().strip())
            except OSError:
                pass
        return max(l3 * max(1, len(domains)), self.cache_bytes())

    def flush_bytes(self) -> int:
        floor = CUDA_FLUSH_MIN_BYTES if self.is_cuda else CPU_FLUSH_MIN_BYTES
        return max(floor, 2 * self.cache_bytes())

    def flush_bytes_to_allocate(self) -> int:
        """What the flush buffer will still take from free memory (0 once it exists)."""
        return self.flush_bytes() if self._flush_buf is None else 0

    def flush_cache(self) -> None:
        """Overwrite a buffer twice the cache size so the next kernel reads from memory."""
        if self._flush_buf is None:
            n = self.flush_bytes() // 4
            self._flush_buf = torch.empty(n, dtype=torch.int32, device=self.torch_device)
        self._flush_buf.zero_()

    def free_bytes(self) -> int | None:
        if self.is_cuda:
            free, _ = torch.cuda.mem_get_info(self.index)
            return int(free)
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def check_fits(self, need: int, what: str = "") -> None:
        """SkipCase when `need` bytes exceed 90% of what is free. On a GPU, blocks torch's
        caching allocator holds but no tensor uses count as free: torch reuses them."""
        free = self.free_bytes()
        if free is None:
            return
        if self.is_cuda:
            free += torch.cuda.memory_reserved(self.index) - torch.cuda.memory_allocated(self.index)
        if need > 0.9 * free:
            who = f"{what} needs" if what else "needs"
            raise SkipCase(f"out of memory: {who} {need / 2**30:.2f} GiB, {free / 2**30:.2f} GiB free")

    def empty_cache(self) -> None:
        self._flush_buf = None
        if self.is_cuda:
            torch.cuda.empty_cache()

    def name(self) -> str:
        if self.is_cuda:
            return torch.cuda.get_device_name(self.index)
        return _cpu_model()


def resolve(requested: str = "auto") -> Device:
    """`auto` picks CUDA when torch sees a GPU; `cuda` without one is a usage error."""
    req = requested.strip().lower()
    index = 0
    if req.startswith("cuda:"):
        req, _, idx = req.partition(":")
        if not (idx.isascii() and idx.isdigit()):  # "²" is a digit to str.isdigit, not to int()
            raise UsageError(f"bad device {requested!r}: expected cuda:N")
        index = int(idx)
    if req not in ("auto", "cuda", "cpu"):
        raise UsageError(f"unknown device {requested!r}: choose auto, cuda, cuda:N or cpu")
    has_cuda = torch.cuda.is_available()
    if req == "auto":
        req = "cuda" if has_cuda else "cpu"
    if req == "cuda":
        if not has_cuda:
            raise UsageError("--device cuda: no CUDA GPU is visible to torch "
                             f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device cuda:{index}: only {torch.cuda.device_count()} GPU(s) visible")
        torch.cuda.set_device(index)
    return Device(req, index)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_cache_bytes(level: int) -> int | None:
    """Size of cpu0's cache at `level` (data or unified) from sysfs."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in sorted(base.glob("index*")):
        try:
            if int((idx / "level").read_text()) != level:
                continue
            if (idx / "type").read_text().strip() == "Instruction":
                continue
            text = (idx / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        mult = {"K": 1024, "M": MiB, "G": 1 << 30}.get(text[-1], 1)
        return int(text.rstrip("KMG")) * mult
    return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def matmul_flags() -> dict:
    """The precision switches that change what a "fp32" matmul means (docs/sources.md, GEMM)."""
    return {
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "allow_bf16_reduced_precision_reduction":
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction,
        "allow_fp16_reduced_precision_reduction":
            torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
    }


def facts(dev: Device) -> dict:
    """Everything about the device and software that a reader needs to trust a number."""
    out: dict = {
        "backend": dev.backend,
        "index": dev.index,
        "name": dev.name(),
        "host": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_l2_bytes": cpu_cache_bytes(2),
        "cpu_l3_bytes": cpu_cache_bytes(3),
        "torch_threads": torch.get_num_threads(),
        "flush_bytes": dev.flush_bytes(),
        "matmul_flags": matmul_flags(),
        "software": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "torch_cuda": torch.version.cuda,
            "numpy": _version("numpy"),
            "pandas": _version("pandas"),
            "cupy": _version("cupy-cuda12x") or _version("cupy-cuda13x") or _version("cupy"),
            "nvidia_ml_py": _version("nvidia-ml-py"),
        },
    }
    if dev.is_cuda:
        props = torch.cuda.get_device_properties(dev.index)
        out.update({
            "count": torch.cuda.device_count(),
            "sm_count": props.multi_processor_count,
            "memory_bytes": props.total_memory,
            "l2_bytes": getattr(props, "L2_cache_size", None),
            "compute_capability": f"{props.major}.{props.minor}",
        })
        out["software"]["cudnn"] = torch.backends.cudnn.version()
        try:
            out["software"]["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
        except Exception as exc:  # torch without NCCL (e.g. some wheels)
            out["software"]["nccl"] = f"unavailable: {exc}"
        out.update(_nvml_facts(dev.index))
    else:
        out.update({
            "count": 1,
            "memory_bytes": _meminfo_total(),
            "l2_bytes": cpu_cache_bytes(2),
        })
    return out


def _meminfo_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _nvml_facts(index: int) -> dict:
    """Clocks, driver, power limit from NVML; each missing value says why."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:
        return {"nvml": f"unavailable: {exc}"}
    out: dict = {}
    try:
        h = nvml_handle(pynvml, index, uuid=cuda_uuid(index))
        reads = {
            "driver_version": lambda: pynvml.nvmlSystemGetDriverVersion(),
            "cuda_driver_version": lambda: pynvml.nvmlSystemGetCudaDriverVersion_v2(),
            "clock_sm_max_mhz": lambda: pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_SM),
            "clock_mem_max_mhz": lambda: pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_MEM),
            "clock_sm_app_mhz": lambda: pynvml.nvmlDeviceGetApplicationsClock(h, pynvml.NVML_CLOCK_SM),
            "power_limit_w": lambda: pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1e3,
            "power_limit_default_w": lambda: pynvml.nvmlDeviceGetPowerManagementDefaultLimit(h) / 1e3,
            "serial": lambda: pynvml.nvmlDeviceGetSerial(h),
            "vbios": lambda: pynvml.nvmlDeviceGetVbiosVersion(h),
            "pcie_gen_max": lambda: pynvml.nvmlDeviceGetMaxPcieLinkGeneration(h),
            "pcie_width_max": lambda: pynvml.nvmlDeviceGetMaxPcieLinkWidth(h),
        }
        for key, read in reads.items():
            try:
                value = read()
                out[key] = value.decode() if isinstance(value, bytes) else value
            except Exception as exc:
                out[key] = None
                out.setdefault("nvml_errors", {})[key] = str(exc)
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return out
