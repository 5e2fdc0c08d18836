"""Hardware profile for the training performance model: the rates a step is built from.

Two sources, and the profile records which of its numbers were measured and which assumed:

  spec      `from_spec(NAME)`   the hardware table's peaks, HBM, NVLink, NIC and NVLink-domain
                                figures x the GPU generation's documented efficiencies
                                (harness/data/perfmodel.toml via inputs.py: the layer-GEMM
                                efficiency fitted to the back-tests with its shape law, the
                                generation's attention kernel, HBM/NVLink/NIC shares)
  measured  `from_run(RUN_DIR)` a gwbench run folder's ok rows: GEMM rate by shape (exact layer
                                shapes when measured, e.g. by `gwbench run --only gemm --model ...`,
                                else interpolated by arithmetic intensity and size), attention by
                                sequence and head dim, HBM bandwidth, collective busbw by message
                                size (intra-node; inter-node when the run spanned nodes). Missing
                                rows: a one-line UsageError that names them, unless `fill`
                                (= --hardware as well) takes them from the spec profile, recorded
                                as assumed.

One documented set per generation is used for every case (no per-case tuning). No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.core import runinfo, specs
from harness.core.errors import UsageError
from harness.core.flops import DTYPE_BYTES, STREAM_WORDS
from harness.analysis.perfmodel import inputs
from harness.core.row import busbw_gbps, gemm_shape, message_bytes, params, positive
from harness.core.store import load_run


# ---------------------------------------------------------------- documented factors

# The efficiencies of a spec profile are per GPU generation, each with its source and range, in
# harness/data/perfmodel.toml (inputs.py): GEMM efficiency on layer shapes (the one figure fitted
# to the back-tests), the generation's attention kernel, HBM, NVLink and NIC shares. The link
# rates themselves are the hardware table's: NVLink per accelerator (`scaleup_gbps`), the NIC per
# GPU and the NVLink domain per system (`scaleout_gbps`, `scaleup_domain`).
# Where a system has no NIC figure: one 400 Gb/s NIC per GPU (DGX H100's, hardware.toml), said so.
NIC_GBPS_DEFAULT = 50.0
# Per-collective launch/latency cost (NCCL small-message latency is ~10-30 us on NVLink, more
# across nodes): a gwbench estimate, only noticeable for small messages.
LAT_INTRA_S = 15e-6
LAT_INTER_S = 30e-6
GPUS_PER_NODE = 8  # HGX/DGX nodes: the NVLink domain where a system names none

# HBM capacity. Everything here is in bytes and printed as GB = 1e9 B, as everywhere in
# gwbench. The table's `hbm_gb` holds the vendor's capacity figure, and vendors' HBM "GB" is
# binary: HBM stacks come in power-of-two sizes (H100: 5 x 16 GiB stacks = 80 GiB), and devices
# report about that many GiB, not GB: this repository's H200 runs read torch total_memory =
# 150,109,880,320 B for the "141 GB" card (results/h200-*/run.json), 139.8 GiB = 0.9915 of
# 141 GiB but 1.065 x 141e9; an H100 80 GB shows 81,559 MiB in nvidia-smi (0.996 of 80 GiB). So
# the spec capacity is hbm_gb GiB x the share the driver leaves visible (0.99, the H200 figure
# rounded down); a measured profile takes the run's own total_memory instead. Reading "141 GB"
# as 141e9 B would understate the card by 6.5% and refuse layouts that fit.
VENDOR_GB_BYTES = 2**30
HBM_VISIBLE = 0.99
# Minus a reserve for the CUDA context, NCCL buffers and allocator fragmentation (gwbench estimate).
HBM_RESERVE_B = 3e9


@dataclass(frozen=True)
class Profile:
    """The rates one GPU delivers. `gemm_points` (measured) hold (m, n, k, efficiency)."""

    name: str
    source: str  # "spec" | "measured" | "measured+spec"
    dtype: str
    peak_tflops: float
    gemm_eff: float  # large-GEMM efficiency (spec) or the fallback for shapes far from the sweep
    attn_fwd_eff: float
    attn_bwd_eff: float
    hbm_gbps: float  # achieved
    intra_busbw_gbps: float  # achieved all_reduce busbw, large messages
    inter_busbw_gbps: float
    hbm_bytes: float  # capacity, bytes
    gemm_points: tuple[tuple[int, int, int, float], ...] = ()
    busbw_points: tuple[tuple[float, float], ...] = ()  # (bytes, busbw GB/s), intra-node
    attn_points: tuple[tuple[int, int, float], ...] = ()  # (seq, head_dim, fwd efficiency)
    attn_fa2_eff: float = 0.0  # FlashAttention-2 on this generation (older stacks; 0: attn_fwd_eff)
    attn_peak_tflops: float = 0.0  # bf16 peak the attention kernel runs against (0: peak_tflops)
    node_gpus: int = 8  # GPUs per NVLink domain (DGX/HGX 8; NVL72 racks 72)
    # GEMM shape law of the spec profile: time = FLOP / (peak x gemm_eff x q(m) q(n) q(k)) +
    # launch_s, q(x) = x^a / (x^a + x0^a); (x0_mn, x0_k, a, launch_s); () = no shape law
    shape: tuple[float, float, float, float] = ()
    generation: str = ""
    measured: tuple[str, ...] = ()
    assumed: tuple[str, ...] = ()
    lacking: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    # -- rates (FLOP/s, B/s) ------------------------------------------------------------

    def gemm_time(self, m: int, n: int, k: int) -> float:
        return _gemm_time(self, m, n, k)

    @property
    def attn_peak(self) -> float:
        return self.attn_peak_tflops or self.peak_tflops

    def attention_eff(self, seq: int, head_dim: int) -> tuple[float, float]:
        """(forward, backward) efficiency vs peak; nearest measured (seq, head_dim) by log distance."""
        if not self.attn_points:
            return self.attn_fwd_eff, self.attn_bwd_eff
        best = min(self.attn_points, key=lambda p: abs(math.log(p[0] / seq)) + abs(math.log(p[1] / head_dim)))
        # Backward/forward ratio from the spec factors: runs measure the forward (FlashAttention
        # FLOP convention, Dao 2023 arXiv:2307.08691 s4.1: backward = 2.5x forward FLOP).
        return best[2], best[2] * self.attn_bwd_eff / self.attn_fwd_eff

    def collective_time(self, nbytes: float, factor: float, inter: bool, per_node: int = 1) -> float:
        """nccl-tests: time = S x factor / busbw (factor 2(n-1)/n all_reduce, (n-1)/n RS/AG).
        Across nodes, a group with `per_node` members in each node runs that many rings at once,
        one per GPU's NIC (NCCL's rail-aligned channels), up to the NVLink rate."""
        if nbytes <= 0 or factor <= 0:
            return 0.0
        if inter:
            bw = min(self.inter_busbw_gbps * max(per_node, 1), max(self.intra_busbw_gbps, self.inter_busbw_gbps))
            return LAT_INTER_S + nbytes * factor / (bw * 1e9)
        return LAT_INTRA_S + nbytes * factor / (_busbw_at(self, nbytes) * 1e9)

    def scaled(self, k_gemm: float, k_attn: float, k_hbm: float, k_intra: float, k_inter: float,
               label: str) -> Profile:
        """The same profile with its rates scaled (the uncertain-input ranges)."""
        pts = tuple((m, n, kk, min(e * k_gemm, 1.0)) for m, n, kk, e in self.gemm_points)
        ap = tuple((s, d, min(e * k_attn, 1.0)) for s, d, e in self.attn_points)
        bp = tuple((b, g * k_intra) for b, g in self.busbw_points)
        return replace(self, name=f"{self.name} ({label})", gemm_eff=min(self.gemm_eff * k_gemm, 1.0),
                       attn_fwd_eff=min(self.attn_fwd_eff * k_attn, 1.0),
                       attn_bwd_eff=min(self.attn_bwd_eff * k_attn, 1.0), hbm_gbps=self.hbm_gbps * k_hbm,
                       intra_busbw_gbps=self.intra_busbw_gbps * k_intra,
                       inter_busbw_gbps=self.inter_busbw_gbps * k_inter, gemm_points=pts,
                       attn_points=ap, busbw_points=bp)

    def to_dict(self) -> dict[str, Any]:
        keys = ("name", "source", "dtype", "peak_tflops", "gemm_eff", "attn_fwd_eff", "attn_bwd_eff",
                "hbm_gbps", "intra_busbw_gbps", "inter_busbw_gbps", "hbm_bytes", "node_gpus", "generation")
        d = {k: getattr(self, k) for k in keys}
        return d | {"measured": list(self.measured), "assumed": list(self.assumed),
                    "lacking": list(self.lacking), "gemm_points": len(self.gemm_points),
                    "notes": list(self.notes)}


@lru_cache(maxsize=65536)
def _gemm_time(p: Profile, m: int, n: int, k: int) -> float:
    flop = 2.0 * m * n * k  # harness/flops.py gemm_flop
    peak = p.peak_tflops * 1e12
    eff = p.gemm_eff
    if p.gemm_points:
        eff = _interpolated_eff(p.gemm_points, m, n, k, p.gemm_eff)
        if eff is None:  # an exact layer shape was measured: its rate, no roofline
            return flop / (peak * _exact_eff(p.gemm_points, m, n, k))
    # Roofline for shapes the big-GEMM efficiency does not describe (thin, small): compulsory
    # traffic (harness/flops.py gemm_bytes) at achieved HBM bandwidth bounds the time from below.
    b = DTYPE_BYTES.get(p.dtype, 2)
    nbytes = (m * k + k * n) * b + m * n * max(b, 2)
    t = flop / (peak * eff)
    if p.shape and not p.gemm_points:
        x0_mn, x0_k, a, launch_s = p.shape
        q = _q(m, x0_mn, a) * _q(n, x0_mn, a) * _q(k, x0_k, a)
        t = t / q + launch_s
    return max(t, nbytes / (p.hbm_gbps * 1e9))


def _q(x: float, x0: float, a: float) -> float:
    return x**a / (x**a + x0**a)


def _exact_eff(points, m, n, k) -> float:
    return max(e for pm, pn, pk, e in points if (pm, pn, pk) == (m, n, k))


def _interpolated_eff(points, m, n, k, fallback: float) -> float | None:
    """None for an exactly measured shape; else inverse-distance weighting of the 4 nearest sweep
    points in (log arithmetic intensity, log FLOP), where the rate of a GEMM mostly depends on
    those two (roofline position and how well it fills the GPU)."""
    if any((pm, pn, pk) == (m, n, k) for pm, pn, pk, _ in points):
        return None
    x = _shape_coords(m, n, k)
    near = sorted((math.dist(x, _shape_coords(pm, pn, pk)), e) for pm, pn, pk, e in points)[:4]
    if not near:
        return fallback
    w = [1.0 / (d + 1e-3) ** 2 for d, _ in near]
    return sum(wi * e for wi, (_, e) in zip(w, near)) / sum(w)


def _shape_coords(m: int, n: int, k: int) -> tuple[float, float]:
    flop = 2.0 * m * n * k
    intensity = flop / (2.0 * (m * k + k * n + m * n))
    return math.log(intensity), math.log(flop)


def _busbw_at(p: Profile, nbytes: float) -> float:
    """Measured busbw at this size: log-linear between sweep points, clamped at the ends."""
    pts = p.busbw_points
    if not pts:
        return p.intra_busbw_gbps
    if nbytes <= pts[0][0]:
        return pts[0][1]
    for (b0, g0), (b1, g1) in zip(pts, pts[1:]):
        if nbytes <= b1:
            t = math.log(nbytes / b0) / math.log(b1 / b0)
            return g0 + t * (g1 - g0)
    return pts[-1][1]


# ---------------------------------------------------------------- spec profile


def spec_capacity_bytes(acc: specs.Accelerator) -> float:
    """Device-visible HBM bytes of `acc` from the table's vendor figure (binary GB, see above)."""
    if acc.hbm_gb is None:
        raise UsageError(f"{acc.name} has no HBM capacity in the hardware table")
    if acc.hbm_gb.low:  # the table's device-visible figure (B300, GB300: ~270-279 of 288)
        return acc.hbm_gb.low * VENDOR_GB_BYTES
    return acc.hbm_gb.value * VENDOR_GB_BYTES * HBM_VISIBLE


def _capacity_note(total_b: float, how: str) -> str:
    return (f"HBM capacity {total_b / 1e9:.1f} GB ({how}) - {HBM_RESERVE_B / 1e9:g} GB reserve = "
            f"{(total_b - HBM_RESERVE_B) / 1e9:.1f} GB usable (GB = 1e9 B)")


def gemm_dtype_scale(acc: specs.Accelerator, dtype: str) -> tuple[float, str]:
    """Efficiency of `dtype` GEMMs relative to bf16 ones on `acc`: the ratio of mamf-finder's
    achievable shares (hardware.toml), 1 where the table lacks one of them."""
    if dtype == "bf16":
        return 1.0, ""
    if dtype in acc.mamf_tflops and "bf16" in acc.mamf_tflops and dtype in acc.dense_tflops:
        k = (acc.mamf_tflops[dtype].value / acc.dense_tflops[dtype].value) / \
            (acc.mamf_tflops["bf16"].value / acc.dense_tflops["bf16"].value)
        return k, f"x {k:.3f} = mamf {dtype} share / mamf bf16 share"
    return 1.0, f"no mamf-finder {dtype} figure for {acc.name}: bf16's share taken"


def links(acc: specs.Accelerator, table: specs.HardwareTable) -> tuple[float, int, str, str]:
    """(NIC GB/s per GPU, GPUs per NVLink domain, their sources) from the accelerator's system."""
    system = table.system_for(acc)
    nic = system.scaleout_gbps if system else None
    dom = system.scaleup_domain if system else None
    nic_src = (f"{system.name}: {nic.source}" if nic else
               f"no NIC figure for {acc.name}'s system: {NIC_GBPS_DEFAULT:g} GB/s (400 Gb/s, DGX H100's) assumed")
    dom_src = f"{system.name}: {dom.source}" if dom else f"no NVLink domain for {acc.name}: {GPUS_PER_NODE} assumed"
    return (nic.value if nic else NIC_GBPS_DEFAULT), int(dom.value if dom else GPUS_PER_NODE), nic_src, dom_src


def from_spec(name: str | specs.Accelerator, table: specs.HardwareTable | None = None,
              dtype: str = "bf16") -> Profile:
    """The spec profile: the hardware table's peaks and link rates x the generation's documented
    efficiencies (harness/data/perfmodel.toml)."""
    table = table or specs.load()
    acc = name if isinstance(name, specs.Accelerator) else table.lookup(name)
    peak = acc.peak(dtype)
    bf16 = acc.peak("bf16") if "bf16" in acc.dense_tflops else peak
    gen, gen_note = inputs.for_accelerator(acc.key)
    notes = [gen_note] if gen_note else []
    k_dtype, dtype_src = gemm_dtype_scale(acc, dtype)
    eff = min(gen.gemm_eff.mode * k_dtype, 1.0)
    if acc.hbm_tbps is None or acc.scaleup_gbps is None:
        raise UsageError(f"{acc.name} lacks HBM bandwidth or scale-up link rate in the hardware table")
    if acc.preliminary:
        notes.append(f"{acc.name}: announced, preliminary figures")
    nic, domain, nic_src, dom_src = links(acc, table)
    capacity = spec_capacity_bytes(acc)
    assumed = (f"GEMM efficiency {eff:.3f} on large layer shapes ({gen.name}: {gen.gemm_eff.source}"
               f"{'; ' + dtype_src if dtype_src else ''}), shape law {gen.shape_source}",
               f"attention ({gen.attention_kernel}) fwd/bwd {gen.attn_fwd_eff.mode:g}/{gen.attn_bwd_eff.mode:g} "
               f"of the bf16 peak ({gen.attn_fwd_eff.source})",
               f"HBM {acc.hbm_tbps.value:g} TB/s x {gen.hbm_eff.mode:g} ({gen.hbm_eff.source})",
               f"NVLink busbw {acc.scaleup_gbps.value:g} GB/s x {gen.nvlink_eff.mode:g} ({gen.nvlink_eff.source}); "
               f"{domain} GPUs per NVLink domain ({dom_src})",
               f"inter-node busbw {nic:g} GB/s per GPU x {gen.nic_eff.mode:g} ({nic_src}; {gen.nic_eff.source})",
               _capacity_note(capacity, f"device-visible {acc.hbm_gb.low:g} GiB of the vendor's {acc.hbm_gb.value:g} GB"
                              if acc.hbm_gb.low else
                              f"vendor {acc.hbm_gb.value:g} GB read as GiB x {HBM_VISIBLE} visible"))
    return Profile(name=acc.name, source="spec", dtype=dtype, peak_tflops=peak.value, gemm_eff=eff,
                   attn_fwd_eff=gen.attn_fwd_eff.mode, attn_bwd_eff=gen.attn_bwd_eff.mode,
                   hbm_gbps=acc.hbm_tbps.value * 1e3 * gen.hbm_eff.mode,
                   intra_busbw_gbps=acc.scaleup_gbps.value * gen.nvlink_eff.mode,
                   inter_busbw_gbps=nic * gen.nic_eff.mode, hbm_bytes=capacity - HBM_RESERVE_B,
                   attn_fa2_eff=gen.attn_fa2_eff.mode, attn_peak_tflops=bf16.value, node_gpus=domain, shape=gen.shape, generation=gen.key,
                   assumed=assumed, notes=tuple(notes))


# ---------------------------------------------------------------- measured profile


def _ok(rows: Sequence[Mapping[str, Any]], family: str) -> list[Mapping[str, Any]]:
    return [r for r in rows if r.get("family") == family and r.get("status") == "ok"]


def from_run(run_dir: Path, table: specs.HardwareTable | None = None, dtype: str = "bf16",
             fill: str | None = None) -> Profile:
    """A measured profile; `fill` names the spec entry that supplies lacking rows (--hardware)."""
    table = table or specs.load()
    meta, rows = load_run(Path(run_dir))
    device = runinfo.device(meta)
    dev_name = runinfo.device_label(meta)
    if device.get("backend") == "cpu" and not fill:
        raise UsageError(f"{run_dir} is a CPU run ({dev_name}): no accelerator to model; "
                         "use --hardware NAME")
    if runinfo.device_name(meta) is None and not fill:
        raise UsageError(f"{run_dir}: the run's device name is {runinfo.NOT_RECORDED}; "
                         "add --hardware NAME for its peaks")
    try:
        acc = table.lookup(fill or dev_name)
    except UsageError:
        raise UsageError(f"{run_dir}: device {dev_name!r} is not in the hardware table; "
                         "add --hardware NAME for its peaks") from None
    base = from_spec(acc, table, dtype)
    peak = base.peak_tflops
    measured, lacking = [], []

    gemm = [r for r in _ok(rows, "gemm") if r.get("dtype") == dtype and positive(r.get("tflops"))]
    attn = [r for r in _ok(rows, "attention")
            if r.get("dtype") in (dtype, None) and positive(r.get("tflops"))]
    fastest = max(gemm + attn, key=lambda r: r["tflops"], default=None)
    if fastest is not None and fastest["tflops"] > 1.02 * peak:  # as projection.from_run refuses
        raise UsageError(f"{run_dir}: {fastest.get('family')} {dtype} at {fastest['tflops']:.0f} TFLOP/s "
                         f"exceeds {acc.name}'s dense peak {peak:g}: a wrong device mapping or a broken "
                         "timer, not a rate to model")
    points = []
    for r in gemm:
        shape = gemm_shape(r)
        if shape:
            points.append((*shape, min(r["tflops"] / peak, 1.0)))
    if points:
        measured.append(f"GEMM {dtype}: {len(points)} shapes, best {max(e for *_, e in points):.3f} of peak")
    else:
        lacking.append(f"ok {dtype} GEMM rows (family gemm)")

    # The fastest backend per (seq, head_dim): a training run pins the best kernel, and the
    # run also measures MATH (the reference, ~2% of peak), which must not stand for it.
    best_at: dict[tuple[int, int], float] = {}
    for r in attn:
        s, d = positive(params(r).get("seq")), positive(params(r).get("head_dim"))
        if s and d and str(r.get("op", "")).find("bwd") < 0:
            key = (int(s), int(d))
            best_at[key] = max(best_at.get(key, 0.0), min(r["tflops"] / peak, 1.0))
    apoints = [(s, d, e) for (s, d), e in best_at.items()]
    if apoints:
        measured.append(f"attention: {len(apoints)} (seq, head_dim) points")
    else:
        lacking.append("ok attention rows with seq and head_dim (family attention)")

    # Memory-bound training ops read and write: STREAM copy/scale/add/triad, not dot (reads only).
    mem = [positive(r.get("gbps")) for r in _ok(rows, "memory")
           if r.get("op") in STREAM_WORDS and r.get("op") != "dot"]
    mem = [g for g in mem if g]
    if mem:
        measured.append(f"HBM {max(mem):.0f} GB/s (best STREAM copy/scale/add/triad row)")
    else:
        lacking.append("ok memory bandwidth rows (family memory)")

    coll = [r for r in _ok(rows, "collectives")
            if "all_reduce" in str(r.get("op", "")) and positive(busbw_gbps(r))]
    # A run's collectives span the nodes its launch had (run.json `distributed`).
    dist = meta.get("distributed") if isinstance(meta.get("distributed"), dict) else {}
    nodes = dist.get("nodes") if isinstance(dist.get("nodes"), int) else 1
    intra = [r for r in coll if nodes <= 1 and (r.get("world_size") or 1) > 1]
    inter = [r for r in coll if nodes > 1]
    by_size: dict[float, float] = {}
    for r in intra:
        size = message_bytes(r)
        if size:
            by_size[size] = max(by_size.get(size, 0.0), busbw_gbps(r))
    if by_size:
        measured.append(f"intra-node all_reduce busbw at {len(by_size)} sizes")
    else:
        lacking.append("ok multi-GPU all_reduce rows with a message size (family collectives)")

    missing = lacking
    if missing and not fill:
        raise UsageError(f"{run_dir} lacks what a measured profile needs: {'; '.join(missing)}; "
                         f"add --hardware {acc.key.upper()} to take those from the spec table, "
                         "or use --hardware alone")
    # What the run did not measure is the spec's (each spec line names its input); the capacity
    # and inter-node lines are decided below.
    taken = {"GEMM efficiency": not points, "attention": not apoints, "HBM ": not mem, "NVLink": not by_size}
    assumed = [a for a in base.assumed
               if any(a.startswith(k) and lack for k, lack in taken.items()) and not a.startswith("HBM capacity")]
    p = base
    if points:
        big = max(points, key=lambda q: 2.0 * q[0] * q[1] * q[2])
        p = replace(p, gemm_points=tuple(points), gemm_eff=big[3])
    if apoints:
        p = replace(p, attn_points=tuple(sorted(apoints)))
    if mem:
        p = replace(p, hbm_gbps=max(mem))
    if by_size:
        pts = tuple(sorted(by_size.items()))
        p = replace(p, busbw_points=pts, intra_busbw_gbps=pts[-1][1])
    # HBM capacity: the device's own total_memory (bytes, as torch reports it) where the run
    # recorded it; it replaces the spec's vendor figure, so the GB/GiB reading never arises.
    # A CPU run's memory_bytes is host RAM: not an accelerator's.
    total_b = positive(device.get("memory_bytes")) if device.get("backend") != "cpu" else None
    if total_b:
        p = replace(p, hbm_bytes=total_b - HBM_RESERVE_B)
        measured.append(_capacity_note(total_b, "device total_memory"))
    else:
        assumed.append(_capacity_note(spec_capacity_bytes(acc), "spec: the run has no device memory_bytes"))
    if inter:
        measured.append("inter-node all_reduce busbw (multi-node run)")
        p = replace(p, inter_busbw_gbps=max(busbw_gbps(r) for r in inter))
    else:
        assumed.append(f"inter-node busbw {base.inter_busbw_gbps:.1f} GB/s per GPU (single-node run: "
                       "the system's NIC rate x the generation's stated efficiency)")
    source = "measured+spec" if missing else "measured"
    label = f"{dev_name} (run {meta.get('run_id')})"
    return replace(p, name=label, source=source, measured=tuple(measured),
                   assumed=tuple(dict.fromkeys(assumed)), lacking=tuple(lacking))
