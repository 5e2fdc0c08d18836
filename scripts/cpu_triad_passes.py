"""Why the numpy STREAM triad trails torch's on a CPU: time each of numpy's two passes alone.

numpy cannot fuse c = a + q*b: the harness's cross-check (harness/benchmarks/memory.py) runs
t = q*b into a cache-sized scratch chunk, then c = a + t. Both touch DRAM the same number of
times as torch's fused loop, but pass 1 reads ONE stream while the fused loop keeps three
(a, b, c) in flight; where one core's bandwidth is limited by the misses it has in flight,
one stream moves fewer bytes per second and the two passes together take longer.

    .venv/bin/python scripts/cpu_triad_passes.py [--mib 128]

One core (one torch thread, numpy unthreaded): the per-core effect; the harness's
cross-check runs both on torch's thread count. Median of 7 calls after one warm-up; GB/s counts the bytes each pass moves by STREAM's rule
(no write-allocate credit).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

CHUNK_BYTES = 1 << 20  # the harness's NUMPY_CHUNK_BYTES


def median_s(fn, reps: int = 7) -> float:
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=128, help="MiB per array (default 128, >> L3)")
    args = ap.parse_args()
    if args.mib < 1:
        print("cpu_triad_passes.py: error: --mib must be >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    n = args.mib * (1 << 20) // 4
    gen = torch.Generator().manual_seed(0)
    a, b, c = (torch.rand(n, generator=gen) + 0.5 for _ in range(3))
    an, bn, cn = a.numpy(), b.numpy(), c.numpy()
    q = np.float32(0.375)
    step = CHUNK_BYTES // 4
    t = np.empty(step, dtype=np.float32)
    views = [(an[s:s + step], bn[s:s + step], cn[s:s + step]) for s in range(0, n, step)]

    def pass1():  # t = q*b: reads b, the scratch chunk stays in cache
        for _, bv, _ in views:
            np.multiply(bv, q, out=t[: bv.shape[0]])

    def pass2():  # c = a + t: reads a, writes c
        for av, _, cv in views:
            np.add(av, t[: av.shape[0]], out=cv)

    def both():
        for av, bv, cv in views:
            tt = t[: av.shape[0]]
            np.multiply(bv, q, out=tt)
            np.add(av, tt, out=cv)

    def fused():
        torch.add(a, b, alpha=float(q), out=c)

    t1, t2, tb, tf = median_s(pass1), median_s(pass2), median_s(both), median_s(fused)
    both()
    if not np.allclose(cn, an + q * bn, rtol=1e-6):
        print("cpu_triad_passes.py: error: the numpy triad is wrong", file=sys.stderr)
        return 1
    gb = n * 4 / 1e9
    print(f"{args.mib} MiB arrays, one core, numpy chunks of {CHUNK_BYTES >> 10} KiB")
    print(f"numpy pass 1  t = q*b   reads b       {t1 * 1e3:7.1f} ms  {gb / t1:6.1f} GB/s")
    print(f"numpy pass 2  c = a + t reads a, w c  {t2 * 1e3:7.1f} ms  {2 * gb / t2:6.1f} GB/s")
    print(f"numpy triad   both passes             {tb * 1e3:7.1f} ms  {3 * gb / tb:6.1f} GB/s")
    print(f"torch triad   fused, one pass         {tf * 1e3:7.1f} ms  {3 * gb / tf:6.1f} GB/s")
    print(f"torch / numpy triad: {tb / tf:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
