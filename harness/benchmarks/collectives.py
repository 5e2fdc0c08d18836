"""Collectives family: nccl-tests semantics through torch.distributed (NCCL on CUDA, gloo on CPU).

Method (nccl-tests, docs/sources.md "Collectives"; its flags in brackets): the requested size
becomes nccl-tests' counts (core/flops.nccl_counts: per-rank counts rounded down to 16 bytes
for all_gather / reduce_scatter / alltoall only; the row keeps the size actually moved and the
`count` column nccl-tests prints); after one untimed set-up call every size is warmed up
(`warmup_iters`, -w, default 1 as nccl-tests since v2.16.8); each trial times `iters` (-n, 20)
back-to-back calls with the host clock and one sync; each rank's time is reduced across ranks
(mean reported, max recorded) by an all_reduce; algbw = S/t and busbw with nccl-tests' factors
(core/flops.py). After the timed calls, correctness is checked in separate, untimed calls on
known rank-dependent inputs (`check_iters`, -c, default 1; stopping at the first pass that
finds errors; 0 = unchecked, #wrong N/A), counted as wrong elements summed over the ranks.
A world of one rank runs too, on a one-rank process group, as nccl-tests does on one GPU:
algbw is measured and busbw is algbw × 0 for all_reduce / all_gather / reduce_scatter /
alltoall. `run` is called on every rank in lockstep; the runner keeps rank 0's row. Before a
case's first collective, and after each untimed result check, the ranks agree that each got
through: one rank's failure (an OOM) fails the case on every rank instead of leaving the others
waiting out --dist-timeout.

Why not measure/timing.measure(): a sample here is one trial's time averaged across ranks
(nccl-tests reduces each rank's mean of `iters` back-to-back calls, and we keep the max as
well), which needs an all_reduce after each timed loop; measure() times one process's calls
one by one. The Measurement it fills is the same record (core/result.py), with no telemetry
window: power_case is False (rank 0's window would see one GPU of many).
"""

from __future__ import annotations

import atexit
import os
import time

import torch

from harness.benchmarks.base import Family
from harness.core.cases import Case
from harness.core.errors import SkipCase, UsageError, one_line
from harness.core.flops import busbw_factor, busbw_gbps, gbps, nccl_counts
from harness.core.sizes import GiB, KiB, MiB, parse_size as _parse_size
from harness.core.result import Check, Measurement, Outcome, check_within
from harness.measure.context import Context
from harness.measure.dist import PeerLost

NAME = "collectives"


# torch 2.13 renamed all_gather_into_tensor / reduce_scatter_tensor to *_single and warns on the
# old names in the middle of a run's output; the same collective either way (older torch has
# only the old names).
def _all_gather(dist):
    return getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


def _reduce_scatter(dist):
    return getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor

TORCH_DTYPE = {"fp32": torch.float32, "bf16": torch.bfloat16}
# (op, placement): torch has all_reduce, broadcast and reduce only in place (one tensor);
# all_gather_into_tensor and reduce_scatter_tensor have both (in place = the shard is a view
# of the full buffer, as in nccl-tests); all_to_all_single and the send/recv ring only out of place.
OPS = (("all_reduce", "in_place"), ("all_gather", "out_of_place"), ("all_gather", "in_place"),
       ("reduce_scatter", "out_of_place"), ("reduce_scatter", "in_place"),
       ("alltoall", "out_of_place"), ("broadcast", "in_place"), ("reduce", "in_place"),
       ("sendrecv", "out_of_place"))
# (smallest, largest, factor) of S in bytes per backend and suite. The GPU standard suite
# stops at 1 GiB (not yet timed on GPUs: only one was lent); full goes to nccl-tests' usual 8 GiB.
SIZES = {
    ("cuda", "quick"): (KiB, 256 * MiB, 16), ("cuda", "standard"): (KiB, GiB, 4),
    ("cuda", "full"): (KiB, 8 * GiB, 2),
    ("cpu", "quick"): (KiB, MiB, 4), ("cpu", "standard"): (KiB, 4 * MiB, 4),
    ("cpu", "full"): (KiB, 16 * MiB, 2),
}
SUITE_DTYPES = {"quick": ("fp32",), "standard": ("fp32", "bf16"), "full": ("fp32", "bf16")}
# nccl-tests' defaults: -w 1 (5 until v2.16.8, f2015cb, 2025-08-25), -n 20, -c 1.
WARMUP_ITERS, ITERS, CHECK_ITERS = 1, 20, 1
MAX_SIZES = 10_000  # a --sizes step form that would sweep more is refused
TRIALS = {"quick": 3, "standard": 5, "full": 5}
# Rank-dependent inputs are small integers, exact in fp32; bf16 sums may round.
TOLERANCE = {"fp32": 0.0, "bf16": 1e-2}
# Test hook: "RANK:OP[:check]" makes that rank's set-up (or its first result check) of every
# OP case fail, so that a test can show (2 gloo ranks on the CPU) that the other ranks hear of
# it; tests/test_collectives.py.
FAIL_SETUP_ENV = "GWBENCH_TEST_FAIL_SETUP"


def parse_size(text: str) -> int:
    return _parse_size(text)


def parse_sizes(text: str) -> tuple[int, int, int, int]:
    """(MIN, MAX, FACTOR, STEP) of `MIN:MAX[:FACTOR]` (nccl-tests' -b MIN -e MAX -f FACTOR;
    factor 2 by default) or `MIN:MAX:+STEP` (-b MIN -e MAX -i STEP: sizes MIN, MIN+STEP, ...).
    Exactly one of FACTOR and STEP is nonzero."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise UsageError(f"--sizes {text!r}: expected MIN:MAX[:FACTOR] or MIN:MAX:+STEP, e.g. 1K:1G:4")
    lo, hi = parse_size(parts[0]), parse_size(parts[1])
    last = parts[2] if len(parts) == 3 else "2"
    if last.startswith("+"):
        factor, step = 0, parse_size(last[1:])
    elif last.isdigit() and int(last) >= 2:
        factor, step = int(last), 0
    else:
        raise UsageError(f"--sizes {text!r}: FACTOR must be an integer >= 2 (or +STEP a size)")
    if hi < lo:
        raise UsageError(f"--sizes {text!r}: need MIN <= MAX")
    if hi > 64 * GiB:
        raise UsageError(f"--sizes {text!r}: MAX above 64G")
    if step and (hi - lo) // step + 1 > MAX_SIZES:
        raise UsageError(f"--sizes {text!r}: {(hi - lo) // step + 1} sizes; at most {MAX_SIZES}")
    return lo, hi, factor, step


def sizes(backend: str, suite: str, spec: str | None = None) -> list[int]:
    lo, hi, f, step = parse_sizes(spec) if spec else (*SIZES[(backend, suite)], 0)
    out, s = [], lo
    while s <= hi:
        out.append(s)
        s = s * f if f else s + step
    return out


def cases(suite: str, ctx: Context) -> list[Case]:
    backend = "nccl" if ctx.dev.is_cuda else "gloo"
    swept = sizes(ctx.dev.backend, suite, ctx.options.get("coll_sizes"))
    dtypes = ctx.options.get("dtypes") or SUITE_DTYPES[suite]
    return [Case.make(NAME, op, dt, backend=backend, world_size=ctx.world_size,
                      size_bytes=s, placement=pl, label=f"{op} {pl.replace('_', '-')}")
            for dt in dtypes for op, pl in OPS for s in swept]


def power_case(case: Case, backend: str) -> bool:
    return False  # rank 0's window would see one GPU of many; sustained power is per-device work


class _Bufs:
    """Buffers of one case and the call that runs it once, nccl-tests' layout."""

    def __init__(self, op: str, placement: str, count: int, dtype, device, rank: int, n: int):
        self.op, self.placement, self.rank, self.n = op, placement, rank, n
        per = count // n
        if op == "all_gather":
            self.full = torch.empty(count, dtype=dtype, device=device)
            self.shard = (self.full[rank * per:(rank + 1) * per] if placement == "in_place"
                          else torch.empty(per, dtype=dtype, device=device))
        elif op == "reduce_scatter":
            self.full = torch.empty(count, dtype=dtype, device=device)
            self.shard = (self.full[rank * per:(rank + 1) * per] if placement == "in_place"
                          else torch.empty(per, dtype=dtype, device=device))
        elif op in ("alltoall", "sendrecv"):
            self.send = torch.empty(count, dtype=dtype, device=device)
            self.recv = torch.empty(count, dtype=dtype, device=device)
        else:
            self.buf = torch.empty(count, dtype=dtype, device=device)

    def inputs(self) -> list[torch.Tensor]:
        if self.op == "all_gather":
            return [self.shard]
        if self.op == "reduce_scatter":
            return [self.full]
        if self.op in ("alltoall", "sendrecv"):
            return [self.send]
        return [self.buf]

    def output(self) -> torch.Tensor:
        if self.op == "all_gather":
            return self.full
        if self.op == "reduce_scatter":
            return self.shard
        if self.op in ("alltoall", "sendrecv"):
            return self.recv
        return self.buf

    def call(self) -> None:
        import torch.distributed as dist

        op = self.op
        if op == "all_reduce":
            dist.all_reduce(self.buf)
        elif op == "all_gather":
            _all_gather(dist)(self.full, self.shard)
        elif op == "reduce_scatter":
            _reduce_scatter(dist)(self.shard, self.full)
        elif op == "alltoall":
            dist.all_to_all_single(self.recv, self.send)
        elif op == "broadcast":
            dist.broadcast(self.buf, src=0)
        elif op == "reduce":
            dist.reduce(self.buf, dst=0)
        else:  # sendrecv: a ring, each rank sends to rank+1 and receives from rank-1
            reqs = dist.batch_isend_irecv([
                dist.P2POp(dist.isend, self.send, (self.rank + 1) % self.n),
                dist.P2POp(dist.irecv, self.recv, (self.rank - 1) % self.n)])
            for r in reqs:
                r.wait()


CHUNK = 1 << 24  # elements per step of the fill and the check: float64 temporaries stay ~128 MiB


def _pattern(lo: int, hi: int, rank: int, dtype, device) -> torch.Tensor:
    """Rank r holds (r+1)·((i mod 5)+1) at element i: small integers, exact in bf16 for n ≤ 8."""
    i = torch.arange(lo, hi, device=device, dtype=torch.float64)
    return ((rank + 1) * (torch.remainder(i, 5) + 1)).to(dtype)


def _expected(b: _Bufs, count: int, device, lo: int, hi: int) -> torch.Tensor:
    """Expected output elements [lo, hi) on this rank, in float64."""
    n, r, per = b.n, b.rank, count // b.n
    tri = n * (n + 1) / 2  # Σ_r (r+1)
    i = torch.arange(lo, hi, device=device, dtype=torch.float64)
    base = torch.remainder(i, 5) + 1
    if b.op in ("all_reduce", "reduce"):  # reduce: only the root is checked
        return tri * base
    if b.op == "broadcast":
        return base  # rank 0's (0+1)·pattern
    if b.op == "all_gather":  # shard j came from rank j, which holds the pattern at offset j·per
        return (torch.div(i, per, rounding_mode="floor") + 1) * base
    if b.op == "reduce_scatter":  # output element k is element r·per + k of the sum
        return tri * (torch.remainder(i + r * per, 5) + 1)
    if b.op == "alltoall":  # block j of rank r's output = block r of rank j's input
        owner = torch.div(i, per, rounding_mode="floor")
        return (owner + 1) * (torch.remainder(i - owner * per + r * per, 5) + 1)
    return ((r - 1) % n + 1) * base  # sendrecv: rank r-1's pattern


def _fill(b: _Bufs, count: int, dtype, device) -> None:
    per = count // b.n
    if b.op == "all_gather":
        targets = [(b.shard, b.rank * per)]
    else:
        targets = [(t, 0) for t in b.inputs()]
        if b.op in ("alltoall", "sendrecv"):
            b.recv.fill_(-1)
    for t, offset in targets:
        for lo in range(0, t.numel(), CHUNK):
            hi = min(t.numel(), lo + CHUNK)
            t[lo:hi].copy_(_pattern(offset + lo, offset + hi, b.rank, dtype, device))


def _count_wrong(b: _Bufs, count: int, dtype, device, tol: float) -> tuple[int, float]:
    if b.op == "reduce" and b.rank != 0:
        return 0, 0.0  # torch leaves a non-root's buffer undefined after reduce
    out = b.output()
    wrong, rel = 0, 0.0
    for lo in range(0, out.numel(), CHUNK):
        hi = min(out.numel(), lo + CHUNK)
        got = out[lo:hi].to(torch.float64)
        exp = _expected(b, count, device, lo, hi).to(dtype).to(torch.float64)
        err = (got - exp).abs()
        wrong += int((err > tol * exp.abs()).sum().item())
        rel = max(rel, float((err / exp.abs().clamp_min(1)).max().item()))
    return wrong, rel


def _sync_all(ctx: Context, device) -> None:
    """A small all_reduce so every rank starts a trial together (nccl-tests starts with a barrier)."""
    import torch.distributed as dist

    t = torch.zeros(1, device=device)
    dist.all_reduce(t)
    ctx.dev.sync()


def _reduce_time(ctx: Context, t: float, device) -> tuple[float, float]:
    import torch.distributed as dist

    s = torch.tensor([t], dtype=torch.float64, device=device)
    m = s.clone()
    dist.all_reduce(s)
    dist.all_reduce(m, op=dist.ReduceOp.MAX)
    return float(s.item()) / ctx.world_size, float(m.item())


def _sum_all(ctx: Context, value: int, device) -> int:
    """nccl-tests' #wrong counts every rank's wrong elements."""
    import torch.distributed as dist

    x = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(x)
    return int(x.item())


class RankFailed(Exception):
    """A rank could not set up a case (its buffers, most often) or check its result: every
    rank fails the case."""


def _together(ctx: Context, case: Case, stage: str, fn):
    """fn() on this rank, then every rank learns whether every other one got through it
    (_agree); returns fn's result."""
    try:
        out = fn()
        rank, op, where = (os.environ.get(FAIL_SETUP_ENV, "::").split(":") + ["setup"])[:3]
        if (rank, op, where) == (str(ctx.rank), case.op, stage):
            raise RuntimeError(f"{stage} failure injected by {FAIL_SETUP_ENV}")
        failure = None
    except Exception as exc:  # an OOM, most often; the peers must hear of it
        out, failure = None, f"{type(exc).__name__}: {one_line(exc, 300)}"
    _agree(ctx, case, failure, stage)
    return out


def _agree(ctx: Context, case: Case, failure: str | None, stage: str) -> None:
    """Every rank learns whether every other one got through `stage` ("setup": buffers,
    "check": a result check, which allocates float64 chunks) before the next collective
    on the case.

    Without this a rank that failed (an OOM on one GPU) moves on to the next case while the
    others wait in the case's next collective until --dist-timeout, and the run is lost.
    Each rank raises the same RankFailed, naming the first failing rank, so every rank
    records the case alike (the runner's rules: an OOM is a skipped row, anything else failed).
    """
    import torch.distributed as dist

    said: list = [None] * ctx.world_size
    try:  # on the gloo control group: no GPU memory needed to say that GPU memory ran out
        dist.all_gather_object(said, failure, group=ctx.ctrl)
    except Exception as exc:  # whatever it was, the ranks can no longer be sure to agree
        raise PeerLost(f"rank {ctx.rank}: agreeing on {case.op}'s {stage} failed (another rank "
                       f"died or timed out?): {one_line(exc, 300)}") from None
    failed = [(r, why) for r, why in enumerate(said) if why is not None]
    if failed:
        rank, why = failed[0]
        more = f" (ranks failing: {', '.join(str(r) for r, _ in failed)})" if len(failed) > 1 else ""
        verb = "set up" if stage == "setup" else "check"
        raise RankFailed(f"rank {rank} of {ctx.world_size} could not {verb} {case.op}{more}: {why}")


def _unsupported(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(k in text for k in ("not supported", "unsupported", "does not support",
                                   "no support", "not implemented", "invalid scalar type"))


def run(case: Case, ctx: Context) -> Outcome:
    n = ctx.world_size
    if case.dtype not in TORCH_DTYPE:
        raise SkipCase(f"dtype {case.dtype}: collectives sweep {', '.join(TORCH_DTYPE)}")
    p = case.p
    dtype, device = TORCH_DTYPE[case.dtype], ctx.dev.torch_device
    esize = torch.empty(0, dtype=dtype).element_size()
    count_col, count, size = nccl_counts(case.op, p["size_bytes"], esize, n)
    if count == 0:
        raise SkipCase(f"size {p['size_bytes']} B: nccl-tests' count is 0 for {case.op} on {n} "
                       f"rank(s) (per-rank counts are rounded down to 16 bytes)")
    if n == 1:
        if case.op == "sendrecv" and not ctx.dev.is_cuda:
            raise SkipCase("sendrecv on one rank sends to itself: NCCL can, gloo cannot "
                           "(its pair to its own rank is never connected)")
        _one_rank_group(ctx)
    iters = int(ctx.options.get("coll_iters") or ITERS)
    warmup = ctx.options.get("coll_warmup")
    warmup = WARMUP_ITERS if warmup is None else int(warmup)
    checks = ctx.options.get("coll_check")
    checks = CHECK_ITERS if checks is None else int(checks)
    trials = TRIALS.get(ctx.suite, 3)

    def setup() -> _Bufs:
        bufs = _Bufs(case.op, p["placement"], count, dtype, device, ctx.rank, n)
        _fill(bufs, count, dtype, device)
        return bufs

    def check() -> tuple[int, float]:  # its float64 chunks can be the allocation that fails
        ctx.dev.sync()
        return _count_wrong(b, count, dtype, device, TOLERANCE[case.dtype])

    b = _together(ctx, case, "setup", setup)
    try:
        b.call()  # first call: communicator and channel set-up, never timed
    except Exception as exc:
        if _unsupported(exc):
            raise SkipCase(f"{case.backend} in torch {torch.__version__}: {case.op} "
                           f"{case.dtype} not supported: {one_line(exc, 300)}") from None
        raise _lost(ctx, case, exc) from None
    try:
        for _ in range(warmup):
            b.call()
        samples, maxes = [], []
        for _ in range(trials):
            _fill(b, count, dtype, device)  # in-place sums grow n× per call: restart each trial
            _sync_all(ctx, device)
            t0 = time.perf_counter()
            for _ in range(iters):
                b.call()
            ctx.dev.sync()
            mean, mx = _reduce_time(ctx, (time.perf_counter() - t0) / iters, device)
            samples.append(mean)
            maxes.append(mx)
    except Exception as exc:
        raise _lost(ctx, case, exc) from None
    # nccl-tests' check: after the timed calls, separate untimed passes (-c), each on fresh
    # inputs, the wrong elements summed over the ranks; the first pass with errors ends it.
    wrong, rel = None, 0.0
    for _ in range(checks):
        try:
            _fill(b, count, dtype, device)
            b.call()
        except Exception as exc:
            raise _lost(ctx, case, exc) from None
        w, r = _together(ctx, case, "check", check)
        try:
            w = _sum_all(ctx, w, device)
        except Exception as exc:
            raise _lost(ctx, case, exc) from None
        wrong, rel = (wrong or 0) + w, max(rel, r)
        if w:
            break
    t = sorted(samples)[len(samples) // 2]
    factor = busbw_factor(case.op, n)
    alg = gbps(size, t)  # algbw = S / t (nccl-tests)
    extra = {"size_bytes": size, "requested_bytes": p["size_bytes"], "count": count_col,
             "count_meaning": COUNT_MEANING[case.op], "iters": iters, "warmup_iters": warmup,
             "check_iters": checks, "time_us": t * 1e6, "time_max_s": sorted(maxes)[len(maxes) // 2],
             "time_max_samples_s": maxes, "time_reduce": "mean over ranks (max recorded)",
             "algbw_gbps": alg, "busbw_gbps": alg * factor, "busbw_factor": factor,
             "wrong": wrong, "nranks": n, "placement": p["placement"],
             "redop": "sum" if case.op in ("all_reduce", "reduce", "reduce_scatter") else "none",
             "root": 0 if case.op in ("broadcast", "reduce") else -1,
             "busbw_max_gbps": busbw_gbps(case.op, n, size, sorted(maxes)[len(maxes) // 2])}
    if wrong is None:
        check = Check(True, None, None, "not checked (check_iters 0, nccl-tests -c 0)", {"wrong": None})
    else:
        check = check_within(rel, TOLERANCE[case.dtype],
                             f"rank-dependent integer pattern, {checks} untimed call(s) after the timed ones",
                             ok=wrong == 0, wrong=wrong)
    m = Measurement(samples_s=samples, n_warmup=warmup, estimate_s=t, window_s=sum(samples) * iters)
    return Outcome(measurement=m, nbytes=size, check=check, extra=extra)


# What the `count` column holds for each collective (nccl-tests' meaning, core/flops.nccl_counts).
COUNT_MEANING = {"all_gather": "elements per rank (sent by each)",
                 "reduce_scatter": "elements per rank (received by each)",
                 "alltoall": "elements per peer", "all_reduce": "elements in the buffer",
                 "broadcast": "elements in the buffer", "reduce": "elements in the buffer",
                 "sendrecv": "elements in the buffer"}


def _one_rank_group(ctx: Context) -> None:
    """A world of one measures on a one-rank process group (NCCL on a GPU, gloo on the CPU),
    as nccl-tests runs on one GPU; made at the family's first case, destroyed after its last
    (finish)."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    backend = "nccl" if ctx.dev.is_cuda else "gloo"
    if ctx.dev.is_cuda:
        torch.cuda.set_device(ctx.dev.index)
    dist.init_process_group(backend=backend, store=dist.HashStore(), rank=0, world_size=1)
    atexit.register(_destroy_one_rank_group)


def _destroy_one_rank_group() -> None:
    """As torch asks of every process group (NCCL warns otherwise). Not left for exit: on a
    2-core CPU a live one-rank gloo group that has run an all_gather keeps a core busy, and
    every 2-thread matmul measured after it ran 1.5x slower (the end-of-run reference
    kernel flagged each quick suite unstable)."""
    import torch.distributed as dist

    if dist.is_initialized() and dist.get_world_size() == 1:
        dist.destroy_process_group()


def finish(ctx: Context) -> None:
    """After the family's last case: a world of one drops its one-rank group (a launched
    world's group belongs to the runner, which destroys it at the end)."""
    if ctx.world_size == 1:
        _destroy_one_rank_group()


def _lost(ctx: Context, case: Case, exc: Exception) -> Exception:
    """A failure between a case's agreed steps stops the run, not just the case: a peer is
    gone, or this rank left a sequence of collectives the others are still in, and going on
    to the next case would pair different collectives across ranks. A world of one has no
    peer to fall out of step with: there it fails the case only."""
    if ctx.world_size == 1:
        return RuntimeError(f"{case.op} on one rank: {type(exc).__name__}: {one_line(exc, 300)}")
    text = str(exc).lower()
    if any(k in text for k in ("timed out", "timeout", "connection", "peer", "closed", "broken pipe",
                               "nccl error", "socket")):
        return PeerLost(f"rank {ctx.rank}: {case.op} failed (another rank died or timed out after "
                        f"{ctx.options.get('dist_timeout_s', '?')} s?): {one_line(exc, 300)}")
    return PeerLost(f"rank {ctx.rank}: {case.op} failed between the ranks' agreed steps, so the "
                    f"ranks are out of step: {type(exc).__name__}: {one_line(exc, 300)}")


def check_options(options) -> None:
    """--sizes is parsed up front, whichever families run."""
    if options.get("coll_sizes"):
        parse_sizes(options["coll_sizes"])


FAMILY = Family(NAME, cases, run, power_case, check_options, finish)
