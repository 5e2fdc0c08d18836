"""Facility power -> accelerators -> training FLOP, with sources and Monte Carlo ranges.

The chain most published analyses use (Epoch AI, "GPU clusters" dataset documentation: cluster
power = TDP x chips x 1.82 x PUE, 1.82 = DGX H100's 10.2 kW / 8 GPUs / 700 W):

    IT W                 = facility W / PUE                       ("GW" is always facility power)
    W per accelerator    = system W / GPUs per system + network share          (spec)
                         | measured GPU W x (system W per GPU / TDP) + network (measured)
    accelerators         = IT W / W per accelerator               (an accelerator is a package)
    sustained FLOP/s     = dense peak in the training dtype x MFU (dense: no sparsity)
    effective FLOP/s     = accelerators x sustained FLOP/s x goodput
    run FLOP             = effective FLOP/s x duration

Three sources of per-accelerator figures, always labelled in every output:
    spec      `--hardware NAME`          the hardware table alone
    measured  `--from RUN_DIR`           a gwbench run: its power under load and GEMM efficiency
    carried   `--from RUN_DIR --as NAME` a run's efficiency carried onto another spec (a projection)

How a measured run scales MFU (one rule, tested in tests/test_projection.py):
    e_meas = best ok bf16 GEMM TFLOP/s of the run / dense bf16 peak of that device
    e_ref  = mamf-finder's max-achievable bf16 matmul / the same peak (H100: 794.5 / 989 = 0.80)
    MFU    = MFU assumption x e_meas / e_ref          (capped at 1)
Why: the default MFU comes from large runs on healthy nodes whose GEMMs reach about mamf-finder's
figure, and a model step is bounded by its matmuls; a node whose best GEMM runs 10% below the
published achievable (power cap, throttling, old libraries) is credited 10% less MFU, and a node
that matches it gets the default unchanged, so spec and measured projections agree for a healthy
node. Where a generation has no mamf-finder figure, H100's e_ref is used and the output says so.

No torch here: this module is pure math on the hardware table and a run folder's JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis import cost
from harness.core import runinfo, specs
from harness.core.errors import UsageError
from harness.core.row import positive
from harness.core.sourced import Range  # also harness.analysis.projection.Range, as before
from harness.core.store import load_run, read_json_file

SCHEMA_VERSION = 1
SECONDS_PER_DAY = 86_400.0
DAYS_PER_YEAR = 365.0


# ---------------------------------------------------------------- defaults, each with its source

# PUE = facility / IT energy. Google fleet 1.10 (2023) and Meta 1.08 (2023) bound the best
# large operators; Uptime Institute's 2023 industry average is 1.58, new large AI sites <= 1.3,
# Epoch uses 1.14 for specialised AI datacenters (Shehabi et al. 2024). 1.2 is a new gigawatt
# site built fast (often air/liquid hybrid) rather than a hyperscaler's best; 1.4 the upper end.
DEFAULT_PUE = Range(1.08, 1.2, 1.4, "Meta 1.08 / Google 1.10 (2023) to new large sites <= 1.3; "
                    "Uptime 2023 average 1.58; point 1.2")
# MFU = model FLOP/s / (GPUs x dense peak). Llama 3 (Table 4): 38-43% on 8k-16k H100 (41% on
# 16,384); PaLM 540B 46.2%; MegaScale 175B 55.2%; Epoch's median of known runs ~0.375-0.38.
# 0.40 sits inside Llama 3's 38-43% (docs/sources.md "Training runs"). The ends hold every published
# run of gwbench's back-tests (harness/data/backtests.toml, gwbench's MFU convention; a test checks
# it): 0.27 MT-NLG 530B on 3,360 A100 (2021 software), 0.62 MosaicML's MPT-7B on 8 A100.
DEFAULT_MFU = Range(0.27, 0.40, 0.62, "Llama 3 38-43% (Table 4); PaLM 46.2%; MegaScale 55.2%; "
                    "Epoch median ~0.38; back-tests 27-62%")
# Goodput = productive time / wall time. Llama 3: 466 interruptions in 54 days, ~90% effective
# training time; the model card's 3.8e25 FLOP over 30.84M GPU-hours is ~35% of peak vs 38-43%
# MFU while running (~0.85-0.9). Failures grow with GPU count (Young/Daly), hence 0.80 low.
DEFAULT_GOODPUT = Range(0.80, 0.90, 0.95, "Llama 3: ~90% effective training time over 54 days")
# Scale-out network outside the server (leaf/spine/core switches, optics). NOT a published
# figure: gwbench's estimate. A 3-tier fat tree spends ~5 switch ports per GPU NIC port at
# ~10-20 W each -> ~50-100 W; NICs are already inside the server's rated power.
DEFAULT_NETWORK_W = Range(25.0, 50.0, 100.0, "gwbench estimate (not published): ~5 switch ports "
                          "per GPU at ~10-20 W in a 3-tier fat tree")
# Server W / accelerator TDP where the table has no system entry: Epoch's chip-to-server
# multiplier (DGX H100 10.2 kW / 8 / 0.7 kW = 1.82); range from DGX B200 1.79 to DGX A100 2.03.
SERVER_FACTOR = Range(1.79, 1.82, 2.03, "Epoch chip-to-server multiplier: DGX B200 1.79, "
                      "DGX H100 1.82, DGX A100 2.03")
DEFAULT_DAYS = 365.0  # one year of operation; --days overrides
# Bounds of the options (documented in `gwbench project --help`): beyond them the chain's floats
# overflow to inf/NaN, and no facility or study needs them (the largest announced sites are 10 GW).
MAX_POWER_W, MAX_DAYS, MAX_ACCELERATORS, MAX_PUE, MAX_NETWORK_W = 1e15, 36_500.0, 1e9, 5.0, 10_000.0
DEFAULT_SITES_W = (1e9, 1e10)  # 1 GW and 10 GW of facility power (OpenAI-NVIDIA LOI: >= 10 GW)
DEFAULT_SAMPLES = 100_000
DEFAULT_SEED = 0
SENSOR_ERROR = 0.05  # NVML power reading +-5% (Yang, Adamek, Armour, SC'24, arXiv 2312.02741)
LLAMA3_405B_FLOP = 3.8e25  # Llama 3 paper / Llama 3.1 model card
SCALE_LIMIT_FLOP = 1e28  # Epoch (arXiv 2411.01137): data movement cuts utilisation past ~1e28
CHINCHILLA_TOKENS_PER_PARAM = 20.0  # Chinchilla: D ~ 20 N, C ~ 6 N D -> N = sqrt(C / 120)
REFERENCE_GENERATIONS = ("h100", "h200", "b200", "gb300", "rubin")
BASELINE = "h100"  # the generation table's ratio column


@dataclass(frozen=True)
class Assumptions:
    pue: Range = DEFAULT_PUE
    mfu: Range = DEFAULT_MFU
    goodput: Range = DEFAULT_GOODPUT
    network_w: Range = DEFAULT_NETWORK_W
    days: float = DEFAULT_DAYS
    samples: int = DEFAULT_SAMPLES
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        for name in ("pue", "mfu", "goodput", "network_w"):
            r = getattr(self, name)
            if not all(math.isfinite(x) for x in (r.low, r.mode, r.high)) or not r.low <= r.mode <= r.high:
                raise UsageError(f"--{name.replace('_', '-')}: expected low <= value <= high, got {r}")
        if self.pue.low < 1 or self.pue.high > MAX_PUE:
            raise UsageError(f"--pue must be >= 1 and <= {MAX_PUE:g} (facility energy / IT energy), got {self.pue}")
        for name in ("mfu", "goodput"):
            r = getattr(self, name)
            if not (0 < r.low and r.high <= 1):
                raise UsageError(f"--{name} must be in (0, 1], got {r}")
        if self.network_w.low < 0 or self.network_w.high > MAX_NETWORK_W:
            raise UsageError(f"--network-w must be >= 0 and <= {MAX_NETWORK_W:g}, got {self.network_w}")
        if not (math.isfinite(self.days) and 0 < self.days <= MAX_DAYS):
            raise UsageError(f"--days must be positive and at most {MAX_DAYS:g} (100 years), got {self.days:g}")
        if not 0 <= self.seed < 2**32:
            raise UsageError(f"--seed must be in 0..2^32-1, got {self.seed}")
        if not 1 <= self.samples <= 10_000_000:
            raise UsageError(f"--samples must be 1..10000000, got {self.samples}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k).to_dict() for k in ("pue", "mfu", "goodput", "network_w")}
        return d | {"days": self.days, "samples": self.samples, "seed": self.seed}


# ---------------------------------------------------------------- parsing user input

_POWER = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kmgt]?)w?\s*$", re.IGNORECASE)
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}  # 'm' is mega: nobody builds mW sites


def parse_power(text: str | float) -> float:
    """'1GW', '500MW', '750kW', '1e9' (watts) -> watts; non-positive or malformed -> UsageError."""
    m = _POWER.match(str(text))
    watts = float(m.group(1)) * _SCALE[m.group(2).lower()] if m else float("nan")
    if not (math.isfinite(watts) and 0 < watts <= MAX_POWER_W):
        raise UsageError(f"power must be positive and at most 1 PW, like 1GW, 500MW, 750kW or 1e9 "
                         f"(watts); got {str(text)[:40]!r}")
    return watts


def parse_range(text: str | float, name: str, source: str = "set on the command line") -> Range:
    """'0.45' (fixed: no spread) or 'LOW:MODE:HIGH' -> Range. Bounds are checked by Assumptions."""
    parts = str(text).split(":")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) == 1:
        return Range.fixed(nums[0], source)
    if len(nums) == 3:
        return Range(*nums, source)
    raise UsageError(f"--{name}: expected a number or LOW:MODE:HIGH, got {text!r}")


def format_power(watts: float) -> str:
    for unit, k in (("GW", 1e9), ("MW", 1e6), ("kW", 1e3)):
        if watts >= k:
            return f"{watts / k:g} {unit}"
    return f"{watts:g} W"


# ---------------------------------------------------------------- per-accelerator basis


@dataclass(frozen=True)
class Basis:
    """The per-accelerator inputs of the chain and where each came from."""

    source: str  # "spec" | "measured" | "carried"
    label: str
    accelerator: specs.Accelerator
    dtype: str
    peak_tflops: float
    peak_source: str
    node_w: Range  # all-in IT W per accelerator before the network share
    mfu_scale: float = 1.0
    mfu_rule: str = "MFU assumption used as is (spec table only)"
    sensor_error: float = 0.0  # relative, uniform; applied to node_w when power was measured
    gpus_per_system: int | None = None
    system_name: str | None = None
    measured: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        keys = ("source", "label", "dtype", "peak_tflops", "peak_source", "mfu_scale", "mfu_rule",
                "sensor_error", "gpus_per_system", "system_name")
        d = {k: getattr(self, k) for k in keys}
        return d | {"hardware": {"key": self.accelerator.key, "name": self.accelerator.name,
                                 "status": self.accelerator.status},
                    "node_w": self.node_w.to_dict(), "measured": dict(self.measured or {}) or None}


def node_power(acc: specs.Accelerator, table: specs.HardwareTable, gpu_w: float | None = None) -> Range:
    """All-in IT W per accelerator before network: from the system entry, else TDP x Epoch's
    multiplier. With `gpu_w` (measured), the system's overhead factor (system W per GPU / TDP)
    is applied to the measured GPU power instead of the TDP."""
    system = table.system_for(acc)
    if system is not None and (gpu_w is None or acc.tdp_w):
        p = system.power_kw
        per_gpu = Range((p.low or p.value) * 1e3, p.value * 1e3, (p.high or p.value) * 1e3)
        per_gpu = per_gpu.scaled(1 / system.gpu_count)
        if gpu_w is None:
            source = f"{system.name}: {p.value:g} kW / {system.gpu_count} ({p.source})"
            return replace(per_gpu, source=source)
        k = per_gpu.scaled(1 / acc.tdp_w.value)
        return k.scaled(gpu_w, f"measured {gpu_w:.0f} W x {k.mode:.2f} ({system.name} W per GPU / "
                               f"{acc.tdp_w.value:g} W TDP)")
    base = gpu_w if gpu_w is not None else (acc.tdp_w.value if acc.tdp_w else None)
    if base is None:
        raise UsageError(f"{acc.name} has no TDP or system power in the hardware table")
    what = f"measured {gpu_w:.0f} W" if gpu_w is not None else f"TDP {base:g} W"
    source = f"{what} x {SERVER_FACTOR.mode} (no system entry; {SERVER_FACTOR.source})"
    return SERVER_FACTOR.scaled(base, source)


def from_spec(name: str | specs.Accelerator, table: specs.HardwareTable | None = None,
              dtype: str = "bf16") -> Basis:
    """Source (b): the spec table alone."""
    table = table or specs.load()
    acc = name if isinstance(name, specs.Accelerator) else table.lookup(name)
    peak = acc.peak(dtype)
    system = table.system_for(acc)
    label = f"spec: {acc.name} from the hardware table (not measured)"
    if acc.preliminary:
        label += "; preliminary, announced figures"
    return Basis("spec", label, acc, dtype, peak.value, peak.source, node_power(acc, table),
                 gpus_per_system=system.gpu_count if system else None,
                 system_name=system.name if system else None)


def _power_of(row: Mapping[str, Any]) -> float | None:
    if str(row.get("power_source") or "").startswith("unavailable"):
        return None
    return positive(row.get("power_w"))


def reference_efficiency(acc: specs.Accelerator, table: specs.HardwareTable,
                         dtype: str) -> tuple[float, str]:
    """mamf-finder's achievable / dense peak for `acc` (or H100's when `acc` has none)."""
    for a, fallback in ((acc, ""), (table.accelerators.get(BASELINE), " (no figure for this generation)")):
        if a is not None and dtype in a.mamf_tflops and dtype in a.dense_tflops:
            mamf, peak = a.mamf_tflops[dtype].value, a.dense_tflops[dtype].value
            return mamf / peak, f"mamf-finder {a.name} {mamf:g}/{peak:g}{fallback}"
    return 0.80, "mamf-finder H100 bf16 794.5/989 (built-in fallback)"


def _efficiency_rows(rows: Sequence[Mapping], dtype: str, run_dir: Path) -> list[Mapping]:
    """The ok `dtype` GEMM rows with a rate at the median, the statistic e_meas is taken at (the
    reference e_ref is mamf-finder's mean, which the median of a steady kernel matches). A row
    with only the fastest sample (a mamf-finder log of 2024-08 prints the max alone) is not
    used: the fastest of 100 iterations runs above the mean and would credit the node MFU it
    does not sustain; the error says so rather than that no row exists."""
    ok = [r for r in rows if r.get("family") == "gemm" and r.get("dtype") == dtype and r.get("status") == "ok"]
    gemm = [r for r in ok if positive(r.get("tflops"))]
    if gemm:
        return gemm
    if not ok:
        raise UsageError(f"{run_dir} has no ok {dtype} GEMM rows to measure efficiency from")
    best_only = sum(1 for r in ok if positive(r.get("tflops_best")))
    n = f"{len(ok)} ok {dtype} GEMM row{'s' if len(ok) != 1 else ''}"
    if best_only == len(ok):
        raise UsageError(f"{run_dir}: its {n} {'has' if len(ok) == 1 else 'have'} no median TFLOP/s, only "
                         "the fastest sample (an imported log that printed the max alone); efficiency is "
                         "measured at the median, and the max would overstate it")
    raise UsageError(f"{run_dir}: its {n} {'has' if len(ok) == 1 else 'have'} no rate at the median "
                     "to measure efficiency from")


def from_run(run_dir: Path, table: specs.HardwareTable | None = None, dtype: str = "bf16",
             as_name: str | None = None, require_power: bool = False) -> Basis:
    """Source (a), or (c) with `as_name`: a measured run's efficiency (and power) per accelerator."""
    table = table or specs.load()
    run_dir = Path(run_dir)
    meta, rows = load_run(run_dir)
    device = runinfo.device(meta)
    name = runinfo.device_label(meta)
    if device.get("backend") == "cpu":
        raise UsageError(f"{run_dir} is a CPU run ({name}): no accelerator to project from")
    gemm = _efficiency_rows(rows, dtype, run_dir)
    if runinfo.device_name(meta) is None:
        raise UsageError(f"{run_dir}: the run's device name is {runinfo.NOT_RECORDED}, so it has no spec "
                         "peak to measure efficiency against; project from the spec with --hardware NAME")
    acc = table.lookup(name)
    # A sustained window (--sustain; the power case) is what a facility sees all year: the
    # clocks have settled under the power cap. Prefer it for both the efficiency and the power;
    # else the best burst figure (mamf-finder's maximum achievable).
    sustained = [r for r in gemm if r.get("sustained")]
    best = max(sustained or gemm, key=lambda r: r["tflops"])
    peak = acc.peak(dtype).value
    e_meas = best["tflops"] / peak
    if e_meas > 1.02:  # above the datasheet peak: wrong device mapping or a broken timer
        raise UsageError(f"{run_dir}: {dtype} GEMM at {best['tflops']:.0f} TFLOP/s exceeds {acc.name}'s "
                         f"dense peak {peak:g}")
    e_ref, ref_source = reference_efficiency(acc, table, dtype)
    scale = e_meas / e_ref
    # Power under load: the chosen row's window, else the highest reading of any ok GEMM row
    # of that dtype. Windows under 1 s are never used: the NVML counter and sensor refresh too
    # coarsely for them (on an H200, 0.1 s windows read 250-1370 W on a 700 W card).
    trusted = [r for r in gemm if _power_of(r) and not r.get("telemetry_short_window")]
    power_row = best if best in trusted else max(trusted, key=_power_of, default=None)
    power = _power_of(power_row) if power_row else None
    if power is None and require_power:
        raise UsageError(f"{run_dir}: power was not read during the GEMM rows")
    if power and acc.tdp_w and power > 1.2 * acc.tdp_w.value:  # rows hold a per-GPU mean
        raise UsageError(f"{run_dir}: power_w {power:.0f} W is far above {acc.name}'s {acc.tdp_w.value:g} W "
                         "TDP; expected the mean power of one GPU")
    measured = {"run_dir": str(run_dir), "run_id": meta.get("run_id"), "device": name,
                "device_count": device.get("count"), "best_tflops": best["tflops"],
                "best_sustained": bool(best.get("sustained")),
                "best_params": best.get("params"), "efficiency": e_meas, "reference_efficiency": e_ref,
                "reference_source": ref_source, "power_w": power,
                "power_source": power_row.get("power_source") if power_row else "not read: spec power used"}
    kind = "sustained" if best.get("sustained") else "best"
    rule = (f"MFU x {scale:.3f} = measured ({kind}) {best['tflops']:.0f}/{peak:g} = {e_meas:.3f} / "
            f"reference {e_ref:.3f} ({ref_source})")
    if as_name:
        target = table.lookup(as_name)
        b = from_spec(target, table, dtype)
        label = (f"projection: efficiency measured on {name} (run {meta.get('run_id')}) carried onto "
                 f"{target.name}'s spec; not measured on {target.name}")
        return replace(b, source="carried", label=label, mfu_scale=scale, mfu_rule=rule, measured=measured)
    system = table.system_for(acc)
    if power is None:
        node, what = node_power(acc, table), "power not read: IT power from the spec table"
    else:
        node, what = node_power(acc, table, power), "measured power under load"
    label = f"measured: {name} (run {meta.get('run_id')}), {what}"
    return Basis("measured", label, acc, dtype, peak, acc.peak(dtype).source, node, scale, rule,
                 SENSOR_ERROR if power else 0.0, system.gpu_count if system else None,
                 system.name if system else None, measured)


# ---------------------------------------------------------------- the chain


# (key, label, unit) in report order; every output gets point / p5 / p50 / p95.
OUTPUTS = (
    ("accelerators", "accelerators", "count"),
    ("systems", "systems", "count"),
    ("w_per_accelerator", "all-in IT power per accelerator", "W"),
    ("it_mw", "IT power", "MW"),
    ("facility_mw", "facility power", "MW"),
    ("sustained_tflops", "sustained TFLOP/s per accelerator (peak x MFU)", "TFLOP/s"),
    ("effective_eflops", "effective training compute (x goodput)", "EFLOP/s"),
    ("flop_per_day", "training FLOP per day", "FLOP"),
    ("flop_per_year", "training FLOP per year", "FLOP"),
    ("run_flop", "training FLOP in one run", "FLOP"),
    ("energy_twh_per_year", "facility energy per year at full power", "TWh"),
    ("flop_per_joule", "training FLOP per facility joule", "FLOP/J"),
    ("optimal_params", "compute-optimal parameters for that run (N = sqrt(C/120))", "params"),
    ("optimal_tokens", "compute-optimal tokens (D = 20 N)", "tokens"),
    ("llama3_405b_runs", "in Llama 3.1 405B runs (3.8e25 FLOP)", "x"),
)


def chain(*, peak_tflops: Any, mfu: Any, goodput: Any, pue: Any, node_w: Any, network_w: Any,
          days: float, facility_w: float | None = None, accelerators: float | None = None,
          gpus_per_system: int | None = None) -> dict[str, Any]:
    """Every output of the chain for floats or numpy arrays (one formula for point and samples).

    Give `facility_w` (power mode) or `accelerators` (fixed-cluster mode)."""
    w_acc = node_w + network_w
    if accelerators is None:
        it_w = facility_w / pue
        n = it_w / w_acc
    else:
        n = accelerators + 0 * w_acc  # broadcast to the samples' shape
        it_w = n * w_acc
    fac_w = it_w * pue
    sustained = peak_tflops * 1e12 * mfu
    eff = n * sustained * goodput  # FLOP/s
    run = eff * days * SECONDS_PER_DAY
    params = np.sqrt(run / (6 * CHINCHILLA_TOKENS_PER_PARAM))  # C = 6 N D, D = 20 N
    return {
        "accelerators": n,
        "systems": n / gpus_per_system if gpus_per_system else None,
        "w_per_accelerator": w_acc,
        "it_mw": it_w / 1e6,
        "facility_mw": fac_w / 1e6,
        "sustained_tflops": sustained / 1e12,
        "effective_eflops": eff / 1e18,
        "flop_per_day": eff * SECONDS_PER_DAY,
        "flop_per_year": eff * SECONDS_PER_DAY * DAYS_PER_YEAR,
        "run_flop": run,
        "energy_twh_per_year": fac_w * 24 * DAYS_PER_YEAR / 1e12,  # W x h -> Wh; 1e12 Wh = 1 TWh
        "flop_per_joule": eff / fac_w,
        "optimal_params": params,
        "optimal_tokens": CHINCHILLA_TOKENS_PER_PARAM * params,
        "llama3_405b_runs": run / LLAMA3_405B_FLOP,
    }


def _draws(basis: Basis, a: Assumptions) -> dict[str, np.ndarray]:
    """One seeded set of samples, shared by every site (common random numbers)."""
    rng = np.random.default_rng(a.seed)
    n = a.samples
    node = basis.node_w.sample(rng, n)
    if basis.sensor_error:
        node = node * rng.uniform(1 - basis.sensor_error, 1 + basis.sensor_error, n)
    return {"pue": a.pue.sample(rng, n), "mfu": np.minimum(a.mfu.sample(rng, n) * basis.mfu_scale, 1.0),
            "goodput": a.goodput.sample(rng, n), "network_w": a.network_w.sample(rng, n), "node_w": node}


def _points(basis: Basis, a: Assumptions) -> dict[str, float]:
    return {"pue": a.pue.mode, "mfu": min(a.mfu.mode * basis.mfu_scale, 1.0), "goodput": a.goodput.mode,
            "network_w": a.network_w.mode, "node_w": basis.node_w.mode}


def summary(label: str, unit: str, point: Any, samples: Any) -> dict[str, Any]:
    """One output: its point estimate and the p5 / p50 / p95 of its Monte Carlo samples."""
    p5, p50, p95 = np.percentile(samples, [5, 50, 95])
    return {"label": label, "unit": unit, "point": float(point), "p5": float(p5), "p50": float(p50),
            "p95": float(p95)}


def _site(basis: Basis, a: Assumptions, draws: Mapping[str, np.ndarray], *,
          facility_w: float | None = None, accelerators: float | None = None,
          extensions: Sequence[Any] = ()) -> dict[str, Any]:
    common = dict(peak_tflops=basis.peak_tflops, days=a.days, facility_w=facility_w,
                  accelerators=accelerators, gpus_per_system=basis.gpus_per_system)
    point_draws = _points(basis, a)
    point = chain(**common, **point_draws)
    if accelerators is None and point["accelerators"] < 1:
        raise UsageError(f"{format_power(facility_w)} of facility power buys {point['accelerators']:.2g} "
                         f"{basis.accelerator.name} (each needs {point['w_per_accelerator']:.0f} W of IT power "
                         f"at PUE {a.pue.mode:g}): give --power of at least "
                         f"{format_power(point['w_per_accelerator'] * a.pue.mode)}")
    mc = chain(**common, **draws)
    outputs = {}
    for key, label, unit in OUTPUTS:
        if point[key] is None:
            continue
        outputs[key] = summary(label, unit, point[key], mc[key])
    name = format_power(facility_w) if accelerators is None else f"{accelerators:,.0f} accelerators"
    flags = []
    if outputs["run_flop"]["p50"] > SCALE_LIMIT_FLOP:
        limit = f"{SCALE_LIMIT_FLOP:.0e}".replace("e+", "e")  # 1e28
        flags.append(f"run FLOP above ~{limit}: Epoch (arXiv 2411.01137) finds data "
                     "movement cutting utilisation past this for a 3-month run; the MFU range is optimistic")
    site = {"name": name, "facility_w": facility_w, "accelerators": accelerators,
            "outputs": outputs, "flags": flags}
    # Extensions (analysis/cost.py, analysis/onerun.py) add outputs computed from the same
    # samples (common random numbers), tagged with their group, and a section of their own.
    prior: dict[str, tuple[Any, Any]] = {}
    for ext in extensions:
        ctx = {"basis": basis, "assumptions": a, "point": point, "mc": mc, "point_draws": point_draws,
               "draws": draws, "facility_w": facility_w, "accelerators": accelerators, "prior": prior,
               "site_name": name}
        extra = ext.site(ctx)
        for key, label, unit, p, samples in extra.get("outputs", []):
            outputs[key] = summary(label, unit, p, samples) | {"group": ext.name}
            prior[key] = (p, samples)
        site[ext.name] = extra.get("section") or {}
        flags += extra.get("flags", [])
    return site


def project(basis: Basis, assumptions: Assumptions | None = None, *,
            sites_w: Sequence[float] = DEFAULT_SITES_W, accelerators: float | None = None,
            extensions: Sequence[Any] = ()) -> dict[str, Any]:
    """Point estimate and seeded Monte Carlo p5/p50/p95 of every output, per site.

    Power mode: one site per facility power in `sites_w`. Fixed-cluster mode (`accelerators`):
    one site of that many accelerators; power becomes an output. `extensions` (cost, one run)
    each have a `name`, `site(ctx) -> {outputs, section, flags}` and `describe()`."""
    a = assumptions or Assumptions()
    if accelerators is not None and not (math.isfinite(accelerators) and 1 <= accelerators <= MAX_ACCELERATORS):
        raise UsageError(f"--accelerators must be positive: 1 to {MAX_ACCELERATORS:g}, got {accelerators:g}")
    draws = _draws(basis, a)
    if accelerators is not None:
        sites = [_site(basis, a, draws, accelerators=accelerators, extensions=extensions)]
    else:
        sites = [_site(basis, a, draws, facility_w=parse_power(w), extensions=extensions) for w in sites_w]
    notes = []
    if basis.accelerator.preliminary:
        notes.append(f"{basis.accelerator.name}: announced, preliminary figures ({basis.accelerator.note})")
    if basis.mfu_scale * a.mfu.high > 1:
        notes.append("MFU capped at 1 in some samples")
    result = {"kind": "gwbench.projection", "schema_version": SCHEMA_VERSION, "basis": basis.to_dict(),
              "assumptions": a.to_dict(), "mode": "fixed-cluster" if accelerators is not None else "power",
              "sites": sites, "notes": notes}
    for ext in extensions:
        result[ext.name] = ext.describe()
    return result


# ---------------------------------------------------------------- generations


def _generation_row(acc: specs.Accelerator, table: specs.HardwareTable, a: Assumptions,
                    sites: Sequence[float], dtype: str, cost_file: Path | None = None) -> dict[str, Any]:
    # V100 has no bf16: fp16 was its mixed-precision training dtype; used and labelled.
    use = dtype if dtype in acc.dense_tflops else None
    if use is None and dtype == "bf16" and "fp16" in acc.dense_tflops:
        use = "fp16"
    row: dict[str, Any] = {"key": acc.key, "name": acc.name, "status": acc.status, "dtype": use}
    try:
        if use is None:
            raise UsageError(f"no published {dtype} peak")
        b = from_spec(acc, table, use)
    except UsageError as exc:
        return row | {"skipped": str(exc)}
    points = _points(b, a)
    per_site = [chain(peak_tflops=b.peak_tflops, days=a.days, facility_w=w, **points) for w in sites]
    # The Monte Carlo spread beside each point, from the same draws `gwbench project` takes, so
    # the generation table and `gwbench project --hardware NAME` print the same p50 (p5-p95).
    draws = _draws(b, a)
    mc = [chain(peak_tflops=b.peak_tflops, days=a.days, facility_w=w, gpus_per_system=b.gpus_per_system, **draws)
          for w in sites]
    return row | {"peak_tflops": b.peak_tflops, "w_per_accelerator": per_site[0]["w_per_accelerator"],
                  "power_source": b.node_w.source, "flop_per_joule": per_site[0]["flop_per_joule"],
                  "sites": [{"facility_w": w, "accelerators": s["accelerators"],
                             "flop_per_year": s["flop_per_year"],
                             "accelerators_mc": _spread(m["accelerators"]),
                             "flop_per_year_mc": _spread(m["flop_per_year"]),
                             "above_scale_limit": s["run_flop"] > SCALE_LIMIT_FLOP}
                            for w, s, m in zip(sites, per_site, mc)]} | _generation_cost(b, points, a, cost_file)


def _spread(samples: Any) -> dict[str, float]:
    p5, p50, p95 = np.percentile(samples, [5, 50, 95])
    return {"p5": float(p5), "p50": float(p50), "p95": float(p95)}


def _generation_cost(b: Basis, points: Mapping[str, float], a: Assumptions,
                     cost_file: Path | None) -> dict[str, Any]:
    """The cost-of-intelligence columns at the assumptions' modes: capex of one GW of facility
    power, TCO $ per accelerator-hour and $ per 1e18 training FLOP (analysis/cost.py); None
    without a price in the cost table."""
    inputs = cost.inputs_for(b.accelerator, cost_file)
    if inputs.price is None:
        return {"server_usd_per_gpu": None, "capex_usd_per_gw": None, "usd_per_gpu_hour": None,
                "usd_per_eflop": None, "cost_note": "no price in the cost table"}
    gw = chain(peak_tflops=b.peak_tflops, days=a.days, facility_w=1e9, **points)
    modes = {k: getattr(inputs, k).mode for k in cost.RANGES} | {"price": inputs.price.mode}
    c = cost.tco(accelerators=gw["accelerators"], it_w=gw["it_mw"] * 1e6, pue=points["pue"], days=a.days,
                 run_flop=gw["run_flop"], **modes)
    return {"server_usd_per_gpu": inputs.price.mode, "price_source": inputs.price.source,
            "capex_usd_per_gw": c["capex_usd"], "usd_per_gpu_hour": c["usd_per_gpu_hour"],
            "usd_per_eflop": c["usd_per_eflop"], "cost_warnings": list(inputs.warnings)}


def generations(table: specs.HardwareTable | None = None, assumptions: Assumptions | None = None, *,
                sites_w: Sequence[float] = DEFAULT_SITES_W, dtype: str = "bf16",
                keys: Iterable[str] | None = None, cost_file: Path | None = None) -> dict[str, Any]:
    """Every accelerator (or those in `keys`) side by side: point estimates at the assumptions'
    modes, since all rows share the same assumptions; `ratio vs H100` = FLOP per facility joule
    over H100's, which is also the FLOP-per-year ratio at equal facility power. Cost columns
    (capex per GW of facility power, $ per accelerator-hour, $ per 1e18 FLOP: the cost of
    intelligence across generations) from harness/data/costs.toml, or `cost_file` on top."""
    table = table or specs.load()
    a = assumptions or Assumptions()
    sites = [parse_power(w) for w in sites_w]
    chosen = [table.accelerators[k] for k in keys or table.accelerators]
    rows = [_generation_row(acc, table, a, sites, dtype, cost_file) for acc in chosen]
    base: dict[str, Any] = {}
    if BASELINE in table.accelerators:
        base = _generation_row(table.accelerators[BASELINE], table, a, sites, dtype)
    for r in rows:
        if "flop_per_joule" in r and "flop_per_joule" in base:
            r["vs_h100"] = r["flop_per_joule"] / base["flop_per_joule"]
    return {"kind": "gwbench.generations", "schema_version": SCHEMA_VERSION, "source": "spec",
            "label": "spec-based: hardware table only, not measured; point estimates at the default assumptions, "
                     "with the Monte Carlo p50 (p5-p95) beside them",
            "dtype": dtype, "sites_w": sites, "assumptions": a.to_dict(), "rows": rows}


def flop_per_year_by_generation(keys: Sequence[str] | None = None, samples: int = 20_000
                                ) -> tuple[list[str], dict[str, list[tuple[float, float, float]]]]:
    """Spec-based training FLOP per year of each generation at each default site: (names,
    {site: [(p50, p5, p95) per name]}). A generation without bf16 or power figures is left out."""
    table = specs.load()
    a = Assumptions(samples=samples)
    names: list[str] = []
    by_site: dict[str, list[tuple[float, float, float]]] = {}
    for key in keys or REFERENCE_GENERATIONS:
        acc = table.accelerators.get(key)
        if acc is None or "bf16" not in acc.dense_tflops:
            continue
        try:
            res = project(from_spec(acc, table, "bf16"), a)
        except Exception:  # noqa: BLE001 -- a generation without power figures is left out
            continue
        names.append(acc.name)
        for s in res["sites"]:
            o = s["outputs"]["flop_per_year"]
            by_site.setdefault(s["name"], []).append((o["p50"], o["p5"], o["p95"]))
    return names, by_site


# ---------------------------------------------------------------- a run's projection


def project_measured_run(run_dir: Path) -> dict[str, Any]:
    """The 1 GW / 10 GW projection at the end of `gwbench run`. Never raises for a valid run
    folder: without a device in the table, ok bf16 GEMM rows or a power reading, the result is
    the spec-based projection of the reference generations with `fallback_reason` saying why."""
    try:
        table = specs.load()
        return project(from_run(Path(run_dir), table, require_power=True))
    except Exception as exc:  # noqa: BLE001 -- the end of a long run must not crash on the summary
        reason = " ".join(str(exc).split()) or type(exc).__name__
        result = generations(keys=REFERENCE_GENERATIONS)
        result["fallback_reason"] = reason
        return result


def run_projection(run_dir: Path) -> dict[str, Any]:
    """The projection a report shows for a run: projection.json as the run wrote it, else one
    computed now from the measured basis (20,000 samples), else {"fallback_reason": why}.
    Kept while the folder's files are unchanged: publish asks twice per run (run page,
    projection page), and computing one re-reads every row."""
    run_dir = Path(run_dir)
    stamp = tuple(_mtime(run_dir / f) for f in ("projection.json", "rows.jsonl", "run.json"))
    key = (str(run_dir.resolve()), stamp)
    if key not in _RUN_PROJECTIONS:
        if len(_RUN_PROJECTIONS) > 256:
            _RUN_PROJECTIONS.clear()
        _RUN_PROJECTIONS[key] = _run_projection(run_dir)
    return _RUN_PROJECTIONS[key]


_RUN_PROJECTIONS: dict[tuple, dict[str, Any]] = {}


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _run_projection(run_dir: Path) -> dict[str, Any]:
    result = read_json_file(run_dir, "projection.json")
    if isinstance(result, Mapping) and result.get("kind") == "gwbench.projection":
        return dict(result)
    reason = result.get("fallback_reason") if isinstance(result, Mapping) else None
    if reason:
        return {"fallback_reason": reason}
    try:
        return project(from_run(run_dir), Assumptions(samples=20_000))
    except Exception as exc:  # noqa: BLE001 -- a report must render without a projection
        return {"fallback_reason": " ".join(str(exc).split()), "computed": True}
