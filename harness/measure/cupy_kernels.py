"""Load the CUDA sources in kernels/ through CuPy (NVRTC), compiled once per device.

The .cu files ship inside the wheel as the package `harness.kernels` (pyproject maps the
top-level kernels/ folder there); from a checkout run with PYTHONPATH the same folder is
found next to harness/. Kernels launch on torch's current stream (CuPy wraps it as an
ExternalStream), so the harness's CUDA events bracket exactly the kernel, and they work
on torch-allocated memory, wrapped zero-copy through __cuda_array_interface__.

Anything that stops a kernel from running here (no CuPy, no NVRTC, a compile error)
raises SkipCase with the reason, so the case becomes a skipped row and torch cases go on.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

from harness.core.errors import SkipCase

# NVRTC options. CuPy adds the architecture itself, from the current device's compute
# capability (a cubin for sm_XX when its NVRTC knows the GPU, else PTX for the driver to
# JIT); passing --gpu-architecture too would clash with the one CuPy appends.
NVRTC_OPTIONS = ("--std=c++17",)
MAX_MESSAGE = 600

_modules: dict[tuple[int, str], Any] = {}


def source_path(name: str) -> Path:
    """The installed harness/kernels/<name>, else the checkout's top-level kernels/<name>."""
    try:
        from importlib import resources

        res = resources.files("harness.kernels").joinpath(name)
        if res.is_file():
            return Path(str(res))
    except (ModuleNotFoundError, TypeError, OSError):
        pass  # running from a checkout: no harness.kernels package
    path = Path(__file__).resolve().parents[2] / "kernels" / name
    if not path.is_file():
        raise SkipCase(f"kernel source {name} not found (looked in harness.kernels and {path.parent})")
    return path


def sources() -> list[Path]:
    """Every .cu file that ships with the package (tests compile each with nvcc)."""
    return sorted(source_path("stream.cu").parent.glob("*.cu"))


def cupy_module():
    """CuPy, or SkipCase saying why it cannot be used."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a CuPy built for another CUDA
        raise SkipCase(f"needs CuPy for the hand-written kernels (pip install gwbench[cuda13]): "
                       f"{type(exc).__name__}: {_short(exc)}") from None
    return cupy


def load(name: str, device_index: int, kernels: tuple[str, ...]) -> dict[str, Any]:
    """Compile kernels/<name> for `device_index` (cached by device and source hash) and
    return its functions by name."""
    text = source_path(name).read_text()
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    key = (device_index, f"{name}:{digest}")
    mod = _modules.get(key)
    cupy = cupy_module()
    if mod is None:
        try:
            with cupy.cuda.Device(device_index):
                mod = cupy.RawModule(code=text, options=NVRTC_OPTIONS, backend="nvrtc")
                mod.compile()
        except Exception as exc:  # CompileException carries the NVRTC log; no NVRTC lib too
            raise SkipCase(f"{name} failed to compile with NVRTC: {_short(exc)}") from None
        _modules[key] = mod
    try:
        with cupy.cuda.Device(device_index):
            return {k: mod.get_function(k) for k in kernels}
    except Exception as exc:
        raise SkipCase(f"{name}: cannot load kernel: {_short(exc)}") from None


def arch(device_index: int) -> str:
    """The compute capability CuPy compiles for, e.g. "sm_90" (recorded in rows)."""
    cupy = cupy_module()
    return f"sm_{cupy.cuda.Device(device_index).compute_capability}"


def as_cupy(tensor):
    """A CuPy view of a torch CUDA tensor; the memory stays torch's."""
    cupy = cupy_module()
    if not tensor.is_contiguous():
        raise ValueError("kernels take contiguous tensors")
    return cupy.asarray(tensor)


class Launcher:
    """Launches CuPy kernels on torch's current stream of one device."""

    def __init__(self, device_index: int):
        import torch

        cupy = cupy_module()
        self.device_index = device_index
        self._device = cupy.cuda.Device(device_index)
        handle = torch.cuda.current_stream(device_index).cuda_stream
        if handle == 0:  # torch's default stream is the legacy null stream
            self._stream = cupy.cuda.Stream.null
        else:
            # CuPy 14 deprecates ExternalStream for Stream.from_external. In the stream.pyx
            # read for this (cupy/cupy 0130cf4), from_external returns a Stream whose __del__
            # destroys any handle but the null and per-thread ones, and this handle is
            # torch's. Until a GPU run shows a CuPy that does not, keep the class that never
            # owns its handle, and keep only its own warning out of every run's log.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="ExternalStream is deprecated",
                                        category=DeprecationWarning)
                try:
                    self._stream = cupy.cuda.ExternalStream(handle, device_index)
                except TypeError:  # CuPy < 12 takes no device id
                    self._stream = cupy.cuda.ExternalStream(handle)

    def __call__(self, kernel, grid: int, block: int, args: tuple) -> None:
        with self._device, self._stream:
            kernel((grid,), (block,), args)


def _short(exc: BaseException) -> str:
    """The compiler's message on one line: its error lines first, cut to MAX_MESSAGE."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    text = " | ".join(errors or lines) or repr(exc)
    return text[:MAX_MESSAGE]
