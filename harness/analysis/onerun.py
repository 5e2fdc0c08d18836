"""The largest single synchronous training run a site can train in N days, and the limit that binds it.

The projection's "training FLOP in one run" is the whole site's aggregate. One synchronous job
meets five limits a spreadsheet ignores; this module finds the job that trains the most FLOP
in `days` under all of them at once (inputs: harness/data/onerun.toml, each sourced, flags
override) and names the one that binds:

  power          the GPUs the site (x `job_share`) can power: the projection's accelerator count
  batch          a maximum useful global batch B (tokens): DeepSeek LLM's B_opt = 0.292 C^0.3271
                 (mode; low: Llama 3.1 405B's 16M; high: DeepSeek-V3's 63M scaled with the same
                 exponent). A job of n GPUs gets B / (seq x n) sequences per GPU per step; the
                 performance model's MFU at that share comes from a layout search (below). Fewer
                 sequences per GPU mean fewer micro-batches per pipeline and a larger bubble, until
                 a data-parallel replica has no sequence at all.
  interruptions  failures independent per GPU at rate r (Llama 3 Table 5: 419 unexpected in 54 days
                 on 16,384 H100): MTBI = 1 / (r n). Goodput by Young/Daly (perfmodel/goodput.py):
                 lost = sqrt(2 delta / MTBI) + R / MTBI, delta = checkpoint bytes / (per-GPU
                 storage bandwidth x n), R = restart. With storage growing with the GPUs the first
                 term is a constant c and n x goodput peaks at n* = (1 - c) / (2 R r).
  network        data-parallel gradient reduction over the scale-out fabric is inside the
                 performance model's step (its inter-node rate set to the system's NIC rate per
                 GPU); a job larger than one campus (`campus_max_w`) also all-reduces fp32
                 gradients between campuses over the site links (Epoch: 4-20 Pbps by 2030),
                 after the reduction inside each campus (not overlapped):
                 t_x = 2 (k-1)/k x 4 N / link + (k-1) x RTT for k campuses.
  latency        a floor on the step: every layer's forward and backward in sequence,
                 t_min = L x t_L + 2 (PP-1) x a + 2 log2(DP) x a (t_L: one layer's minimum
                 forward + backward time; a: inter-node message latency). This is gwbench's own
                 model with its parameters stated as assumptions, NOT Erdil & Schneider-Joseph's
                 (arXiv 2411.01137), whose equations were not retrieved; their published headline
                 figures (utilisation falls past ~1e28 FLOP in 3 months, blog 2e28; a latency wall
                 at ~1e31, blog 2e31) are shown beside the wall this model gives
                 (`latency_wall_flop`).

The job: run FLOP = max over the layout curve and over n <= min(power, batch-feedable) of
n x peak x MFU(B / (seq n)) x goodput(n) x step / (max(step, t_min) + t_x) x days. The binding
limit is the one whose removal alone (power: unlimited GPUs; batch: the best MFU at any GPU
count; interruptions: goodput 1; network: no exposed data-parallel or cross-campus time;
latency: no floor) raises the run the most; the output gives each gain.

The model: compute-optimal dense (Chinchilla, N = sqrt(C/120)) in Llama 3's shape (d_model =
128 x layers, FFN 3.25 x d_model, GQA with 8 KV heads, 128k vocabulary), sized by a fixed point
on the run's own compute, or a preset (`--model`). The layout search is a coarse grid over the
performance model's public step(): TP 8, micro-batch 1, CP 1-8, PP powers of two to 128,
virtual stages 1/2/4, ZeRO 1-3, every recomputation mode, at sequences-per-GPU 2^-13 .. 4
(checked against predict.search's full grid in tests). Monte Carlo over the uncertain inputs
(interruption rate, restart, storage, batch, MFU range of the chosen layout, site links, t_L) at
fixed layouts: ONE_RUN_SAMPLES of the projection's samples. No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np

from harness.analysis import projection
from harness.analysis.perfmodel import predict
from harness.analysis.perfmodel import profile as prof_mod
from harness.analysis.perfmodel import step as stepmod
from harness.analysis.projection import Range
from harness.core import sourced, specs
from harness.core.errors import UsageError
from harness.core.models import Transformer

DEFAULT_DAYS = 90.0
ONE_RUN_SAMPLES = 10_000
LIMITS = ("power", "batch", "interruptions", "network", "latency")
SPG_EXPONENTS = tuple(range(-13, 3))  # sequences per GPU per step, 2^-13 .. 4
TP = 8  # tensor parallel inside an 8-GPU node (the performance model's GPUS_PER_NODE)
DP_REF = 64  # data-parallel degree of the reference layouts (the step is per GPU)
GRAD_BYTES_PER_PARAM = 4.0  # fp32 gradient reduction, as the performance model's DP sync
VOCAB = 128_256  # Llama 3
KV_HEADS = 8
HEAD_DIM = 128
FIXED_POINT_STEPS = 6  # model size <-> run compute: converges in 2-4 (N ~ sqrt(C))
MAX_GPUS = 1e10  # a bound for "unlimited" when a limit is lifted
# name in onerun.toml -> flag
RANGES = {
    "interruption_rate_per_gpu_hour": "--interruption-rate",
    "restart_s": "--restart-s",
    "storage_gbps_per_gpu": "--storage-gbps-per-gpu",
    "site_links_pbps": "--site-links",
    "site_rtt_s": "--site-rtt-s",
    "layer_latency_s": "--layer-latency-s",
}


@dataclass(frozen=True)
class OneRunInputs:
    interruption_rate_per_gpu_hour: Range
    restart_s: Range
    storage_gbps_per_gpu: Range
    site_links_pbps: Range
    site_rtt_s: Range
    layer_latency_s: Range
    days: float = DEFAULT_DAYS
    seq: int = 8192
    max_batch_tokens: Range | None = None  # None: the batch law at the run's compute
    checkpoint_bytes_per_param: float = 14.0
    campus_max_w: float = 5e9
    job_share: float = 1.0
    aspect_ratio: float = 128.0
    ffn_ratio: float = 3.25
    batch_law: tuple[float, float] = (0.2920, 0.3271)
    batch_low_tokens: float = 16_777_216
    batch_high_anchor: tuple[float, float] = (62_914_560, 3.3e24)  # tokens, at compute FLOP
    model: str | None = None  # a preset; None: compute-optimal
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name, flag in RANGES.items():
            r = getattr(self, name)
            if not all(math.isfinite(x) for x in (r.low, r.mode, r.high)) or not r.low <= r.mode <= r.high:
                raise UsageError(f"{flag}: expected finite numbers, low <= value <= high, got {r}")
            if r.low < 0:
                raise UsageError(f"{flag} must be >= 0, got {r.low:g}")
        for name in ("storage_gbps_per_gpu", "site_links_pbps"):
            if getattr(self, name).low <= 0:
                raise UsageError(f"{RANGES[name]} must be > 0, got {getattr(self, name).low:g}")
        if not (math.isfinite(self.days) and self.days > 0):
            raise UsageError(f"--days must be positive, got {self.days:g}")
        if self.seq < 1:
            raise UsageError(f"--seq must be >= 1 token, got {self.seq}")
        b = self.max_batch_tokens
        if b is not None:
            if not all(math.isfinite(x) for x in (b.low, b.mode, b.high)) or not b.low <= b.mode <= b.high:
                raise UsageError(f"--max-batch-tokens: expected low <= value <= high, got {b}")
            if b.low < self.seq:
                raise UsageError(f"--max-batch-tokens {b.low:g} is below one sequence of {self.seq} tokens")
        if not (math.isfinite(self.campus_max_w) and self.campus_max_w > 0):
            raise UsageError(f"--campus-power must be positive, got {self.campus_max_w:g}")
        if not 0 < self.job_share <= 1:
            raise UsageError(f"--job-share must be in (0, 1], got {self.job_share:g}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k).to_dict() for k in RANGES}
        d |= {k: getattr(self, k) for k in ("days", "seq", "checkpoint_bytes_per_param", "campus_max_w",
                                             "job_share", "aspect_ratio", "ffn_ratio", "batch_low_tokens",
                                             "model")}
        d["max_batch_tokens"] = self.max_batch_tokens.to_dict() if self.max_batch_tokens else None
        d["batch_law"] = {"coef": self.batch_law[0], "exponent": self.batch_law[1]}
        d["batch_high_anchor"] = {"tokens": self.batch_high_anchor[0], "compute_flop": self.batch_high_anchor[1]}
        return d | {"sources": dict(self.sources)}


def _range(s: sourced.Sourced) -> Range:
    return Range(s.low, s.mode, s.high, s.source)


def load_inputs(overrides: Mapping[str, Any] | None = None) -> OneRunInputs:
    """The packaged one-run table with flag values on top (Range for the RANGES names; plain values
    for days, seq, max_batch_tokens, campus_max_w, job_share, model)."""
    t = sourced.load("onerun")
    over = dict(overrides or {})

    def given(name: str, default: Any) -> Any:
        v = over.pop(name, None)
        return default() if v is None else v

    values: dict[str, Any] = {name: given(name, lambda n=name: _range(t.figure(n))) for name in RANGES}
    for name in ("checkpoint_bytes_per_param", "campus_max_w", "job_share", "aspect_ratio", "ffn_ratio",
                 "batch_low_tokens"):
        values[name] = given(name, lambda n=name: t.figure(n).mode)
    seq = given("seq", lambda: int(t.figure("seq_tokens").mode))
    law, anchor = t.section("batch_law"), t.section("batch_high_anchor")
    sources = {k: t.figure(k).source for k in ("checkpoint_bytes_per_param", "campus_max_w", "job_share",
                                                 "aspect_ratio", "ffn_ratio", "batch_low_tokens", "seq_tokens")}
    sources |= {"batch_law": str(law.get("source", "")), "batch_high_anchor": str(anchor.get("source", ""))}
    days = over.pop("days", None)
    inputs = OneRunInputs(seq=seq, batch_law=(float(law["coef"]), float(law["exponent"])),
                          batch_high_anchor=(float(anchor["tokens"]), float(anchor["compute_flop"])),
                          days=DEFAULT_DAYS if days is None else days, max_batch_tokens=over.pop("max_batch_tokens", None),
                          model=over.pop("model", None), sources=sources, **values)
    if over:
        raise UsageError(f"unknown one-run inputs {', '.join(sorted(over))}")
    return inputs


def reference() -> dict[str, Any]:
    """Published figures the one-run answer is compared with (onerun.toml [reference])."""
    return dict(sourced.load("onerun").section("reference"))


# ---------------------------------------------------------------- model, batch, profile


def dense_model(params: float, aspect_ratio: float = 128.0, ffn_ratio: float = 3.25,
                layers: int | None = None) -> Transformer:
    """A dense Llama-3-shaped model of about `params` weights: layers a multiple of 32 (pipeline
    stages up to 32 split it evenly; `layers` to choose), d_model = aspect x layers rounded to
    1024 (heads of 128 divisible by TP 8), N ~ 12 L d^2 (4 d^2 attention with GQA, 3 x 3.25 d^2
    gated MLP)."""
    if not (math.isfinite(params) and params > 0):
        raise UsageError(f"model size must be positive, got {params:g}")
    if layers is None:
        layers = max(32, 32 * round((params / (12 * aspect_ratio**2)) ** (1 / 3) / 32))
    d = max(1024, 1024 * round(math.sqrt(params / (12 * layers)) / 1024))
    ffn = 512 * round(ffn_ratio * d / 512)
    model = Transformer("dense", layers, d, ffn, d // HEAD_DIM, KV_HEADS, VOCAB, HEAD_DIM)
    return replace(model, name=f"dense-{model.params():.2g}")


def model_shapes(params: float, aspect_ratio: float = 128.0, ffn_ratio: float = 3.25) -> list[Transformer]:
    """The compute-optimal size in three shapes: the aspect ratio's layer count and 32 either side
    (the layer count decides which pipeline depths divide the model, so the fastest shape is
    searched rather than fixed)."""
    base = dense_model(params, aspect_ratio, ffn_ratio)
    return [dense_model(params, aspect_ratio, ffn_ratio, layers)
            for layers in (base.layers - 32, base.layers, base.layers + 32) if layers >= 32]


def batch_range(compute_flop: float, inp: OneRunInputs) -> Range:
    """The maximum useful global batch (tokens) for a run of `compute_flop`."""
    if inp.max_batch_tokens is not None:
        return inp.max_batch_tokens
    coef, exp = inp.batch_law
    mode = coef * compute_flop**exp
    high = inp.batch_high_anchor[0] * (compute_flop / inp.batch_high_anchor[1]) ** exp
    lo, mid, hi = sorted((inp.batch_low_tokens, mode, high))
    return Range(max(lo, inp.seq), max(mid, inp.seq), max(hi, inp.seq),
                 f"DeepSeek LLM B_opt = {coef} C^{exp} at C = {compute_flop:.2g} (mode); Llama 3.1 405B's "
                 f"16M (low); DeepSeek-V3's 63M scaled by (C / 3.3e24)^{exp} (high)")


def profile_for(basis: projection.Basis, table: specs.HardwareTable, run_dir=None) -> tuple[prof_mod.Profile, str]:
    """The performance-model profile of the basis and where its scale-out rate comes from: the
    run's inter-node rows, else the system's NIC (hardware.toml) x the generation's efficiency."""
    if basis.source == "measured" and run_dir is not None:
        prof = prof_mod.from_run(run_dir, table, basis.dtype, fill=basis.accelerator.name)
    else:
        prof = prof_mod.from_spec(basis.accelerator, table, basis.dtype)
    if any(m.startswith("inter-node") for m in prof.measured):
        return prof, "inter-node busbw measured by the run"
    note = next((a for a in prof.assumed if a.startswith("inter-node")),
                f"inter-node busbw {prof.inter_busbw_gbps:g} GB/s per GPU")
    return prof, note


# ---------------------------------------------------------------- the layout curve


@dataclass(frozen=True)
class CurvePoint:
    spg: float  # sequences per GPU per step
    result: stepmod.Result

    @property
    def cell(self) -> int:
        lay = self.result.layout
        return lay.tp * lay.cp * lay.pp


def _tp_for(model: Transformer) -> int:
    return next(t for t in (TP, 4, 2, 1) if model.heads % t == 0 and
                (model.kv_heads % t == 0 or t % model.kv_heads == 0))


@lru_cache(maxsize=256)  # the model search revisits sizes; report and JSON ask for the same site
def layout_curve(model: Transformer, prof: prof_mod.Profile, seq: int) -> tuple[CurvePoint, ...]:
    """For each sequences-per-GPU share on the grid, the fastest layout that fits (coarse grid,
    module docstring), evaluated at a reference data-parallel degree (the step is per GPU)."""
    tp = _tp_for(model)
    points = []
    for e in SPG_EXPONENTS:
        spg = 2.0**e
        best = None
        for cp in (1, 2, 4, 8):
            if cp > 1 and (seq % cp or seq // cp < 1024):
                continue
            for pp in (1, 2, 4, 8, 16, 32, 64, 128):
                layers = stepmod.stage_layers(model, pp)
                micro = spg * tp * cp * pp  # sequences per replica = micro-batches (micro-batch 1)
                if layers is None or micro < 1 or micro != int(micro):
                    continue
                for v in (1, 2, 4, 8):  # 8 as predict.search: its best 405B layout on H100 interleaves 8
                    if v > 1 and (pp == 1 or layers % v):
                        continue
                    for zero in (1, 2, 3):
                        # Recompute only adds time (none < selective < full): at one ZeRO stage
                        # the first that fits is the fastest, the rest are not timed.
                        for rc in stepmod.RECOMPUTE:
                            lay = stepmod.Layout(gpus=tp * cp * pp * DP_REF, tp=tp, pp=pp, cp=cp, vpp=v,
                                                 micro_batch=1, seq=seq, batch_tokens=int(micro) * DP_REF * seq,
                                                 zero=zero, recompute=rc)
                            try:
                                stepmod.check(model, lay)
                            except UsageError:
                                continue
                            fullest = stepmod.fullest_stage(model, lay)
                            if sum(fullest[1].values()) * 1e9 > prof.hbm_bytes:
                                continue
                            r = stepmod.step(model, lay, prof, require_fit=False, fullest=fullest)
                            if best is None or r.mfu > best.mfu:
                                best = r
                            break
        if best is not None:
            points.append(CurvePoint(spg, best))
    if not points:
        raise UsageError(f"no layout of {model.name} fits in {prof.hbm_bytes / 1e9:.1f} GB (1e9 B) per GPU "
                         f"of {prof.name} on the one-run grid; give a smaller --model")
    return tuple(points)


# ---------------------------------------------------------------- the joint model (vectorised)


def goodput_of(n: Any, rate_per_gpu_s: Any, restart_s: Any, ckpt_bytes: float, storage_bps_per_gpu: Any) -> Any:
    """Young/Daly goodput of a job of `n` GPUs (perfmodel/goodput.py's formula, for arrays):
    delta = ckpt / (storage x n), MTBI = 1 / (rate x n), lost = sqrt(2 delta / MTBI) + R / MTBI."""
    c = np.sqrt(2.0 * ckpt_bytes * rate_per_gpu_s / storage_bps_per_gpu)
    return np.clip(1.0 - c - restart_s * rate_per_gpu_s * n, 0.0, 1.0)


def cross_site_s(params: float, sites: Any, link_bps: Any, rtt_s: Any,
                 bytes_per_param: float = GRAD_BYTES_PER_PARAM) -> Any:
    """Gradient all-reduce between `sites` campuses (ring over the site links): 2(k-1)/k of the
    gradient bytes each way plus (k-1) round trips; 0 for one campus."""
    k = np.asarray(sites, dtype=float)
    t = 2 * (k - 1) / np.maximum(k, 1) * bytes_per_param * params * 8 / link_bps + (k - 1) * rtt_s
    return np.where(k > 1, t, 0.0)


def latency_wall_flop(days: float, layer_latency_s: Any, batch_coef: Any, batch_exp: float,
                      aspect_ratio: float = 128.0, params: float | None = None, layers: int | None = None) -> Any:
    """The largest compute-optimal run whose steps, each at least L x t_L long, fit in `days`:
    steps = D / B with B = coef x C^exp. Compute-optimal: N = sqrt(C/120), D = 20 N, L =
    (N / (12 a^2))^(1/3), so D/B x L x t_L = A x C^(2/3 - exp) = T. A preset model (params,
    layers): D = C / 6N, so C^(1 - exp) = 6 N coef T / (L t_L). gwbench's model, not the paper's."""
    t = days * projection.SECONDS_PER_DAY
    if params is not None and layers is not None:
        return (6 * params * batch_coef * t / (layers * layer_latency_s)) ** (1 / (1 - batch_exp))
    a = 20 * 120 ** (-2 / 3) * (12 * aspect_ratio**2) ** (-1 / 3) * layer_latency_s / batch_coef
    return (t / a) ** (1 / (2 / 3 - batch_exp))


@dataclass(frozen=True)
class Problem:
    """Everything the joint model needs; arrays have one entry per sample (one for the point)."""

    curve: tuple[CurvePoint, ...]
    params: float  # model weights
    layers: int
    peak_flops: float
    seq: int
    days: float
    ckpt_bytes: float
    n_power: np.ndarray
    batch_tokens: np.ndarray
    k_mfu: np.ndarray
    rate_per_gpu_s: np.ndarray
    restart_s: np.ndarray
    storage_bps_per_gpu: np.ndarray
    link_bps: np.ndarray
    rtt_s: np.ndarray
    layer_latency_s: np.ndarray
    campus_gpus: np.ndarray


def evaluate(pb: Problem, lift: str | None = None, only_j: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The largest run per sample with every limit applied, or with `lift` removed; `only_j`: keep
    each sample's layout-curve point (its sequences per GPU and step) fixed."""
    s = len(pb.n_power)
    best: dict[str, np.ndarray] = {"flop": np.zeros(s), "gpus": np.zeros(s), "j": np.zeros(s, dtype=int),
                                   "goodput": np.zeros(s), "sites": np.ones(s), "cross_site_s": np.zeros(s),
                                   "step_s": np.zeros(s), "mfu": np.zeros(s)}
    mfus = np.array([p.result.mfu for p in pb.curve])
    rate, restart = pb.rate_per_gpu_s, pb.restart_s
    if lift == "interruptions":
        rate = np.zeros(s)
    c = np.sqrt(2.0 * pb.ckpt_bytes * rate / pb.storage_bps_per_gpu)
    slope = restart * rate
    with np.errstate(divide="ignore", invalid="ignore"):
        n_star = np.where(slope > 0, (1.0 - c) / (2.0 * slope), MAX_GPUS)
    alpha = prof_mod.LAT_INTER_S
    for j, pt in enumerate(pb.curve):
        r, lay = pt.result, pt.result.layout
        step_s = r.step_s
        dp_exposed = r.breakdown.get("DP gradient sync (exposed)", 0.0)
        mfu = r.mfu
        if lift == "batch":
            mfu = float(mfus.max())
        if lift == "network":
            mfu = mfu * step_s / (step_s - dp_exposed)
        n_batch = np.full(s, MAX_GPUS) if lift == "batch" else pb.batch_tokens / (pb.seq * pt.spg)
        cap = n_batch if lift == "power" else np.minimum(pb.n_power, n_batch)
        top = np.minimum(np.minimum(cap, n_star), MAX_GPUS)
        # Candidates: the interruption optimum (or the cap), and the edge of each campus below it:
        # n x goodput rises to n*, while every campus added lengthens the step by a fixed time.
        cands = [top]
        if lift != "network":
            k_top = np.ceil(top / pb.campus_gpus)
            for k in range(1, int(min(np.max(k_top, initial=1), 64))):
                cands.append(np.where(k < k_top, k * pb.campus_gpus, top))
        for n in cands:
            n = np.floor(n / pt.cell) * pt.cell  # whole data-parallel replicas
            g = np.clip(1.0 - c - slope * n, 0.0, 1.0)
            sites = np.maximum(np.ceil(n / pb.campus_gpus), 1)
            t_x = np.zeros(s) if lift == "network" else cross_site_s(pb.params, sites, pb.link_bps, pb.rtt_s)
            t_min = 0.0
            if lift != "latency":
                dp = np.maximum(n / pt.cell, 1)
                t_min = (pb.layers * pb.layer_latency_s + 2 * (lay.pp - 1) * alpha
                         + 2 * np.ceil(np.log2(dp)) * alpha)
            step_tot = np.maximum(step_s, t_min) + t_x
            mfu_eff = mfu * pb.k_mfu * step_s / step_tot
            flop = n * g * mfu_eff * pb.peak_flops * pb.days * projection.SECONDS_PER_DAY
            if only_j is not None:
                flop = np.where(only_j == j, flop, 0.0)
            better = flop > best["flop"]
            for key, v in (("flop", flop), ("gpus", n), ("j", j), ("goodput", g), ("sites", sites),
                           ("cross_site_s", t_x), ("step_s", step_tot), ("mfu", mfu_eff)):
                best[key] = np.where(better, v, best[key])
    return best


def binding(pb: Problem) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """(the run with every limit, each limit's gain when lifted alone, index of the binding one)."""
    run = evaluate(pb)
    base = np.maximum(run["flop"], 1e-300)
    # Lifting the batch keeps each sample's sequences per GPU (and so its step): the gain is the
    # MFU of an ample batch and the GPUs the batch could not feed. Re-optimising the share too
    # would credit the batch with hiding the latency and cross-campus costs behind longer steps.
    gains = {lim: evaluate(pb, lim, run["j"] if lim == "batch" else None)["flop"] / base for lim in LIMITS}
    which = np.argmax(np.vstack([gains[lim] for lim in LIMITS]), axis=0)
    return run, gains, which


# ---------------------------------------------------------------- the extension


@dataclass
class OneRunExtension:
    """Adds the largest single run to every site of `projection.project` (its `extensions`)."""

    inputs: OneRunInputs
    prof: prof_mod.Profile
    profile_note: str = ""
    name: str = "one_run"
    _draws: dict[str, np.ndarray] | None = None
    _draws_key: tuple[int, int] | None = None

    def _samples(self, seed: int, n: int) -> dict[str, np.ndarray]:
        if self._draws is None or self._draws_key != (seed, n):
            self._draws_key = (seed, n)
            rng = np.random.default_rng((seed, 1801))
            self._draws = {k: getattr(self.inputs, k).sample(rng, n) for k in RANGES}
            self._draws["u_batch"] = rng.uniform(size=n)  # quantile of the batch range, set per site
            self._draws["u_mfu"] = rng.uniform(size=n)  # quantile of the chosen layout's MFU range
        return self._draws

    def _model(self, n_power: float, a: projection.Assumptions, pue: float, w_acc: float
               ) -> tuple[Transformer, str, float]:
        """(model, how it was sized, the run's compute): a fixed point, since the model's size and
        the batch law follow the run's compute, which follows the model's layouts."""
        inp = self.inputs
        preset = stepmod.preset(inp.model) if inp.model else None
        compute = n_power * self.prof.peak_tflops * 1e12 * a.mfu.mode * a.goodput.mode * inp.days * 86_400
        model = preset
        for _ in range(FIXED_POINT_STEPS):
            shapes = [preset] if preset else model_shapes(math.sqrt(compute / 120), inp.aspect_ratio, inp.ffn_ratio)
            runs = [(evaluate(self._problem(m, n_power, compute, None, point=True, pue=pue, w_acc=w_acc))["flop"][0], m)
                    for m in shapes]
            run, model = max(runs, key=lambda rm: rm[0])
            if run <= 0:
                break
            converged = abs(math.log(run / compute)) < math.log(1.05)
            compute = run
            if converged:
                break
        if preset:
            return model, "preset (--model)", compute
        return model, ("compute-optimal (Chinchilla N = sqrt(C/120), a fixed point on the run's compute; "
                       "the fastest of three layer counts)"), compute

    def _problem(self, model: Transformer, n_power: Any, compute: float, draws: Mapping[str, Any] | None,
                 point: bool = False, pue: Any = None, w_acc: Any = None, k_mfu: Any = None) -> Problem:
        inp = self.inputs
        curve = layout_curve(model, self.prof, inp.seq)
        b = batch_range(compute, inp)
        n_power = np.atleast_1d(np.asarray(n_power, dtype=float))
        size = len(n_power)
        if point or draws is None:
            v = {k: np.full(size, getattr(inp, k).mode) for k in RANGES}
            batch = np.full(size, b.mode)
        else:
            v = {k: draws[k][:size] for k in RANGES}
            batch = _triangular_ppf(draws["u_batch"][:size], b)
        campus = np.full(size, MAX_GPUS) if pue is None else inp.campus_max_w / (np.asarray(pue) * np.asarray(w_acc))
        return Problem(curve=curve, params=float(model.params()), layers=model.layers,
                       peak_flops=self.prof.peak_tflops * 1e12, seq=inp.seq, days=inp.days,
                       ckpt_bytes=inp.checkpoint_bytes_per_param * model.params(), n_power=n_power,
                       batch_tokens=batch, k_mfu=np.ones(size) if k_mfu is None else np.asarray(k_mfu),
                       rate_per_gpu_s=v["interruption_rate_per_gpu_hour"] / 3600.0, restart_s=v["restart_s"],
                       storage_bps_per_gpu=v["storage_gbps_per_gpu"] * 1e9, link_bps=v["site_links_pbps"] * 1e15,
                       rtt_s=v["site_rtt_s"], layer_latency_s=v["layer_latency_s"],
                       campus_gpus=np.maximum(campus, 1.0))

    def site(self, ctx: Mapping[str, Any]) -> dict[str, Any]:
        a, inp = ctx["assumptions"], self.inputs
        point_chain, mc = ctx["point"], ctx["mc"]
        n_point = float(point_chain["accelerators"]) * inp.job_share
        pdraw = ctx["point_draws"]
        w_point = pdraw["node_w"] + pdraw["network_w"]
        model, sizing, compute0 = self._model(n_point, a, pdraw["pue"], w_point)
        # the point estimate, at the modes
        pb0 = self._problem(model, n_point, compute0, None, point=True, pue=pdraw["pue"], w_acc=w_point)
        run0, gains0, which0 = binding(pb0)
        chosen = pb0.curve[int(run0["j"][0])]
        mfu_r = predict.mfu_range(model, chosen.result.layout, self.prof)
        # the Monte Carlo: the first ONE_RUN_SAMPLES of the projection's samples, and its own draws
        size = min(len(mc["accelerators"]), ONE_RUN_SAMPLES)
        draws = self._samples(a.seed, size)
        k_range = Range(mfu_r.low / mfu_r.mode, 1.0, mfu_r.high / mfu_r.mode)
        k_mfu = _triangular_ppf(draws["u_mfu"], k_range)
        d = ctx["draws"]
        w_acc = (d["node_w"] + d["network_w"])[:size]
        pb = self._problem(model, mc["accelerators"][:size] * inp.job_share, compute0, draws,
                           pue=d["pue"][:size], w_acc=w_acc, k_mfu=k_mfu)
        run, gains, which = binding(pb)
        outputs = self._outputs(pb0, run0, pb, run, ctx, compute0)
        share = {lim: float(np.mean(which == i)) for i, lim in enumerate(LIMITS)}
        lay = chosen.result.layout
        dp = int(run0["gpus"][0] // chosen.cell)
        layout = (f"TP{lay.tp} CP{lay.cp} PP{lay.pp}" + (f" v{lay.vpp}" if lay.vpp > 1 else "")
                  + f" DP{dp:,} mb1 zero{lay.zero} recompute={lay.recompute}, "
                  f"{chosen.spg:g} sequences per GPU per step")
        wall = {"batch_law": float(self._wall(pb0, compute0)[0]),
                "batch_low_fixed": float(latency_wall_flop(inp.days, inp.layer_latency_s.mode,
                                                           inp.batch_low_tokens, 0.0, inp.aspect_ratio,
                                                           *self._shape(model)))}
        section = {
            "days": inp.days,
            "binding": max(share, key=share.get),  # the limit that binds in most samples
            "binding_at_modes": LIMITS[int(which0[0])],
            "binding_share": share,
            "gain_if_lifted": {lim: {"point": float(gains0[lim][0]), "p50": float(np.median(gains[lim]))}
                               for lim in LIMITS},
            "model": {"name": model.name, "params": float(model.params()), "layers": model.layers,
                      "d_model": model.d_model, "ffn": model.ffn, "heads": model.heads, "sizing": sizing},
            "layout": layout,
            "mfu_range": mfu_r.to_dict(),
            "batch_tokens_range": batch_range(compute0, inp).to_dict(),
            "latency_wall_flop": wall,
            "profile": f"{self.prof.name} ({self.prof.source}); {self.profile_note}",
            "samples": size,
        }
        flags = []
        if section["binding"] == "interruptions" or share["interruptions"] > 0.5:
            # The table's own p50s (np.percentile, as projection.py), so the flag and the table agree.
            p50 = {k: float(np.percentile(v, 50)) for k, _, _, _, v in outputs
                   if k in ("one_run_gpus", "one_run_mtbi_h", "one_run_goodput")}
            flags.append(f"one run: interruptions bind in {share['interruptions']:.0%} of the samples; at the "
                         f"p50s the job is at its best on {p50['one_run_gpus']:,.0f} GPUs, interrupted every "
                         f"{p50['one_run_mtbi_h'] * 60:.1f} min, and keeps {p50['one_run_goodput']:.0%} of its "
                         "time; a bigger site "
                         f"does not make a bigger synchronous run until restarts (mode {inp.restart_s.mode:g} s) "
                         "get faster (--restart-s) or failures rarer (--interruption-rate)")
        return {"outputs": outputs, "section": section, "flags": flags}

    def _shape(self, model: Transformer) -> tuple[float | None, int | None]:
        """(params, layers) of a preset model for the latency wall; (None, None): compute-optimal."""
        return (None, None) if self.inputs.model is None else (float(model.params()), model.layers)

    def _outputs(self, pb0: Problem, run0: Mapping[str, np.ndarray], pb: Problem, run: Mapping[str, np.ndarray],
                 ctx: Mapping[str, Any], compute: float) -> list[tuple[str, str, str, float, np.ndarray]]:
        def spg(r: Mapping[str, np.ndarray], p: Problem) -> np.ndarray:
            return np.array([p.curve[j].spg for j in r["j"]])

        def dp_exposed(r: Mapping[str, np.ndarray], p: Problem) -> np.ndarray:
            return np.array([p.curve[j].result.breakdown.get("DP gradient sync (exposed)", 0.0) for j in r["j"]])

        def derived(r: Mapping[str, np.ndarray], p: Problem) -> dict[str, np.ndarray]:
            gpus = np.maximum(r["gpus"], 1.0)
            return {
                "one_run_flop": r["flop"],
                "one_run_gpus": r["gpus"],
                "one_run_idle_gpus": np.maximum(p.n_power / self.inputs.job_share - r["gpus"], 0.0),
                "one_run_campuses": r["sites"],
                "one_run_batch_tokens": r["gpus"] * spg(r, p) * p.seq,
                "one_run_mfu": r["mfu"],
                "one_run_goodput": r["goodput"],
                "one_run_mtbi_h": 1.0 / np.maximum(p.rate_per_gpu_s * gpus, 1e-30) / 3600.0,
                "one_run_checkpoint_s": p.ckpt_bytes / (p.storage_bps_per_gpu * gpus),
                "one_run_step_s": r["step_s"],
                "one_run_dp_exposed_s": dp_exposed(r, p),
                "one_run_cross_site_s": r["cross_site_s"],
                "one_run_latency_wall_flop": self._wall(p, compute),
            }

        p0, ps = derived(run0, pb0), derived(run, pb)
        prior = ctx["prior"]
        if "usd_per_gpu_hour" in prior:
            usd_p, usd_s = prior["usd_per_gpu_hour"]
            usd_s = np.asarray(usd_s)[:len(pb.n_power)]
            hours = self.inputs.days * 24
            p0["one_run_cost_usd"] = usd_p * run0["gpus"] * hours
            ps["one_run_cost_usd"] = usd_s * run["gpus"] * hours
            p0["one_run_usd_per_eflop"] = p0["one_run_cost_usd"] / np.maximum(run0["flop"] / 1e18, 1e-300)
            ps["one_run_usd_per_eflop"] = ps["one_run_cost_usd"] / np.maximum(run["flop"] / 1e18, 1e-300)
        return [(k, label, unit, float(p0[k][0]), ps[k]) for k, label, unit in OUTPUTS if k in p0]

    def _wall(self, p: Problem, compute: float) -> np.ndarray:
        """The latency wall per sample: the sampled batch at this compute, scaled with the law's
        exponent (a fixed batch when --max-batch-tokens is given), and the sampled t_L."""
        inp = self.inputs
        if inp.max_batch_tokens is not None:
            coef, exp = p.batch_tokens, 0.0
        else:
            exp = inp.batch_law[1]
            coef = p.batch_tokens / max(compute, 1.0) ** exp
        shape = (None, None) if inp.model is None else (p.params, p.layers)
        return latency_wall_flop(inp.days, p.layer_latency_s, coef, exp, inp.aspect_ratio, *shape)

    def describe(self) -> dict[str, Any]:
        return {"inputs": self.inputs.to_dict(), "reference": reference(),
                "method": "harness/analysis/onerun.py (module docstring); docs/sources.md 'One run at gigawatt scale'"}


# (key, label, unit) in report order
OUTPUTS = (
    ("one_run_flop", "training FLOP of the largest single run", "FLOP"),
    ("one_run_gpus", "GPUs the job uses", "count"),
    ("one_run_idle_gpus", "GPUs left for other jobs", "count"),
    ("one_run_campuses", "campuses the job spans", "count"),
    ("one_run_batch_tokens", "global batch", "tokens"),
    ("one_run_mfu", "MFU (layout, latency floor, cross-campus sync)", "x"),
    ("one_run_goodput", "goodput (Young/Daly)", "x"),
    ("one_run_mtbi_h", "mean time between interruptions of the job", "h"),
    ("one_run_checkpoint_s", "checkpoint write (blocking)", "s"),
    ("one_run_step_s", "optimizer step", "s"),
    ("one_run_dp_exposed_s", "data-parallel sync left exposed per step (fabric, after overlap)", "s"),
    ("one_run_cross_site_s", "cross-campus sync per step", "s"),
    ("one_run_latency_wall_flop", "latency wall, compute-optimal model (gwbench's model)", "FLOP"),
    ("one_run_cost_usd", "cost of the run (its GPUs, TCO $/GPU-hour)", "USD"),
    ("one_run_usd_per_eflop", "cost per 1e18 FLOP of the run", "USD"),
)


def _triangular_ppf(u: np.ndarray, r: Range) -> np.ndarray:
    """Triangular(low, mode, high) at quantiles u (so one uniform draw serves a range set per site)."""
    lo, mode, hi = r.low, r.mode, r.high
    if hi == lo:
        return np.full(len(u), mode)
    f = (mode - lo) / (hi - lo)
    return np.where(u < f, lo + np.sqrt(u * (hi - lo) * (mode - lo)),
                    hi - np.sqrt((1 - u) * (hi - lo) * (hi - mode)))
