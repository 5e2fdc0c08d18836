#!/usr/bin/env python3
"""Which CuPy wrapper of torch's CUDA stream is safe: ExternalStream or Stream.from_external?

measure/cupy_kernels.py launches CuPy kernels on torch's current stream. CuPy 14 deprecates
`cupy.cuda.ExternalStream` for `cupy.cuda.Stream.from_external`; reading CuPy's stream.pyx
(cupy/cupy 0130cf4) suggested that the Stream from_external returns may destroy the handle when
it is collected, and this handle is torch's. This check wraps a fresh torch stream with each,
launches a kernel through the wrapper, drops the wrapper, and then uses the torch stream again:
a destroyed handle shows as a CUDA error there. Prints one JSON line per wrapper.

    python3 scripts/cupy_stream_check.py          (needs a CUDA GPU, torch and CuPy)
"""

from __future__ import annotations

import gc
import json
import sys
import warnings


def main() -> int:
    try:
        import cupy
        import torch
    except ImportError as exc:
        print(json.dumps({"check": "cupy stream", "skipped": f"import failed: {exc}"}))
        return 0
    if not torch.cuda.is_available():
        print(json.dumps({"check": "cupy stream", "skipped": "no CUDA GPU"}))
        return 0
    dev = torch.cuda.current_device()
    failed = False
    for name in ("ExternalStream", "Stream.from_external"):
        out = {"check": "cupy stream", "wrapper": name, "cupy": cupy.__version__, "torch": torch.__version__}
        stream = torch.cuda.Stream(dev)
        handle = stream.cuda_stream
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if name == "ExternalStream":
                    wrapper = cupy.cuda.ExternalStream(handle, dev)
                else:
                    make = getattr(cupy.cuda.Stream, "from_external", None)
                    if make is None:
                        out["result"] = "absent in this CuPy"
                        print(json.dumps(out))
                        continue
                    try:
                        wrapper = make(handle, dev)
                    except TypeError:
                        wrapper = make(handle)
                with wrapper:
                    total = float(cupy.ones(1 << 20, dtype=cupy.float32).sum())
                wrapper.synchronize()
            except Exception as exc:  # a wrapper that cannot even launch
                out["result"] = f"launch failed: {type(exc).__name__}: {exc}"
                print(json.dumps(out))
                failed = True
                continue
        out["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
        del wrapper
        gc.collect()
        try:  # torch's stream after the wrapper is gone
            with torch.cuda.stream(stream):
                x = torch.ones(1 << 20, device=f"cuda:{dev}").sum()
            stream.synchronize()
            out["result"] = "torch's stream still usable after the wrapper was collected"
            out["sum_ok"] = total == float(1 << 20) and float(x) == float(1 << 20)
        except Exception as exc:
            out["result"] = f"torch's stream broken after the wrapper was collected: {type(exc).__name__}: {exc}"
            failed = True
        print(json.dumps(out))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
