"""Time variants of kernels/stream.cu on a GPU (unroll depth x grid size) beside torch.

The method: 2^28 fp32 elements per array (1 GiB, >> L2), random inputs,
results checked, 20 back-to-back launches between CUDA events (no launch gaps in the
figure), median of 7 samples; STREAM byte counting (copy 2 words, triad 3, dot 2).
    python3 scripts/stream_variants.py            # prints a table; needs CuPy and a GPU
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import cupy
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout: the harness's launcher, not a copy of it

from harness.measure.cupy_kernels import Launcher  # noqa: E402
N = 1 << 28
LAUNCHES, SAMPLES = 20, 7
WORDS = {"copy": 2, "triad": 3, "dot": 2}


def timed(fn) -> float:
    """Median seconds per call over SAMPLES samples of LAUNCHES back-to-back calls."""
    fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(SAMPLES):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(LAUNCHES):
            fn()
        b.record()
        b.synchronize()
        out.append(a.elapsed_time(b) / 1e3 / LAUNCHES)
    return statistics.median(out)


def main() -> int:
    src = (ROOT / "kernels" / "stream.cu").read_text()
    props = torch.cuda.get_device_properties(0)
    g = torch.Generator(device="cuda").manual_seed(0)
    a = torch.rand(N, device="cuda", generator=g) + 0.5
    b = torch.rand(N, device="cuda", generator=g) + 0.5
    c = torch.empty_like(a)
    launch = Launcher(0)  # on torch's current stream, so torch's events bracket the kernels
    ca, cb, cc = (cupy.asarray(t) for t in (a, b, c))
    q, n = cupy.float32(0.4), cupy.int64(N)
    rows = []
    for op in ("copy", "triad"):
        nbytes = WORDS[op] * N * 4
        base = {"copy": lambda: c.copy_(a), "triad": lambda: torch.add(a, b, alpha=0.4, out=c)}[op]
        rows.append((op, "torch", "-", nbytes / timed(base) / 1e9))
    for unroll in (1, 4):
        mod = cupy.RawModule(code=src, options=("--std=c++17", f"-DSTREAM_UNROLL={unroll}"))
        one_pass = -(-(N // 4) // (256 * unroll))  # every thread moves `unroll` float4s once
        for waves in (1, 4, 16, "one pass"):
            # 8 blocks of 256 fill an SM; "one pass" lets the hardware schedule blocks
            grid = one_pass if waves == "one pass" else props.multi_processor_count * 8 * waves
            for op in ("copy", "triad", "dot"):
                k = mod.get_function(f"{op}_f32")
                part = cupy.zeros(grid, dtype=cupy.float32)
                args = {"copy": (ca, cc, n), "triad": (ca, cb, cc, q, n), "dot": (ca, cb, part, n)}[op]

                def fn(k=k, grid=grid, args=args):
                    launch(k, grid, 256, args)

                t = timed(fn)
                torch.cuda.synchronize()
                if op == "triad":
                    ok = torch.allclose(c, a + 0.4 * b)
                elif op == "copy":
                    ok = torch.equal(c, a)
                else:
                    ok = abs(float(part.sum(dtype=cupy.float64)) / float((a.double() * b.double()).sum()) - 1) < 1e-4
                rows.append((op, f"unroll {unroll}", f"{grid} blocks", WORDS[op] * N * 4 / t / 1e9, ok))
    print(f"{'op':6} {'variant':10} {'grid':12} {'GB/s':>8}  check")
    for r in rows:
        print(f"{r[0]:6} {r[1]:10} {r[2]:12} {r[3]:8.0f}  {r[4] if len(r) > 4 else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
