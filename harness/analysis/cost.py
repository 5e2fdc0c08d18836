"""What a gigawatt costs: capex, total cost of ownership, $ per GPU-hour, $ per run, $ per 1e18 FLOP.

Two methods, both shown, from the same sampled inputs (harness/data/costs.toml; flags override):

TCO (straight-line lives; the view an owner budgets with, as Epoch AI's data-center cost model):
    capex_it        = accelerators x server price per accelerator / (1 - network share)
    capex_facility  = IT MW x facility $ per MW of critical load     (Cushman & Wakefield 2025)
    capex           = capex_it + capex_facility
    energy / year   = IT W x load factor x PUE x 8766 h x $ per MWh
    tco / year      = capex_it / IT life + capex_facility / facility life + energy + other opex
    $ per GPU-hour  = tco / (accelerators x 8766 h)
    run cost        = tco x days / 365.25;    $ per EFLOP = run cost / (run FLOP / 1e18)

Epoch AI's amortized hardware + energy (Cottier et al. 2024, arXiv 2405.21015, as their code
epoch-research/training-cost-trends implements it; tests/test_cost.py reproduces their five
published GPU runs within 1.5%):
    value at the run  = price x 10^(-0.14 x hardware age in years)   (GPU price-performance)
    hardware / hour   = value x 0.14 ln 10 / 8766 h / (1 - 0.19)     (interconnect 19% of cluster)
    energy / hour     = server W per accelerator x 0.75 x PUE x $ per kWh
It charges no facility and no opex, and writes hardware off at 32% of its value a year instead of
over a life: on new hardware it runs ~25-30% above the TCO view with a 5-year life (below it with a
3-year life); on hardware a year or two old, below it (docs/sources.md).

The OpenAI-NVIDIA letter of intent's "up to $100 billion ... progressively as each gigawatt is
deployed" is NVIDIA's equity investment in OpenAI in total (~$10B per GW as reported), not a build
cost per GW; it is not an input here. No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.core import sourced, specs
from harness.core.errors import UsageError
from harness.core.sourced import Range

HOURS_PER_YEAR = 8766.0  # 365.25 days, Epoch's convention
DAYS_PER_YEAR = 365.25
# name in costs.toml -> (flag, label)
RANGES = {
    "network_share": ("--network-share", "cluster network share of IT hardware cost"),
    "facility_usd_per_mw": ("--facility-usd-per-mw", "facility capex per MW of IT (critical) load"),
    "usd_per_mwh": ("--usd-per-mwh", "electricity price"),
    "load_factor": ("--load-factor", "average IT draw / rated power"),
    "opex_usd_per_mw_year": ("--opex-usd-per-mw-year", "other opex per MW of IT per year"),
    "it_life_years": ("--it-life-years", "IT (server and network) life"),
    "facility_life_years": ("--facility-life-years", "facility life"),
}


@dataclass(frozen=True)
class CostInputs:
    """Every cost input as a Range with its source; `price` None when no price is known."""

    price: Range | None  # server $ per accelerator
    price_date: str
    network_share: Range
    facility_usd_per_mw: Range
    usd_per_mwh: Range
    load_factor: Range
    opex_usd_per_mw_year: Range
    it_life_years: Range
    facility_life_years: Range
    price_ooms_per_year: float = 0.14
    hardware_age_years: float = 0.0
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        check(self)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"server_usd_per_gpu": self.price.to_dict() if self.price else None,
                             "price_date": self.price_date}
        d |= {k: getattr(self, k).to_dict() for k in RANGES}
        return d | {"price_ooms_per_year": self.price_ooms_per_year,
                    "hardware_age_years": self.hardware_age_years}


def _finite_range(r: Range, flag: str) -> None:
    if not all(math.isfinite(x) for x in (r.low, r.mode, r.high)) or not r.low <= r.mode <= r.high:
        raise UsageError(f"{flag}: expected finite numbers, low <= value <= high, got {r}")


def check(c: CostInputs) -> None:
    """One-line UsageError for a price or rate no budget can have."""
    if c.price is not None:
        _finite_range(c.price, "--gpu-price")
        if c.price.low < 0:
            raise UsageError(f"--gpu-price must be >= 0 dollars, got {c.price.low:g}")
    for name, (flag, _) in RANGES.items():
        r = getattr(c, name)
        _finite_range(r, flag)
        if name.endswith("_life_years") and r.low <= 0:
            raise UsageError(f"{flag} must be > 0 years, got {r.low:g}")
        if r.low < 0:
            raise UsageError(f"{flag} must be >= 0, got {r.low:g}")
    if c.network_share.high >= 1:
        raise UsageError(f"--network-share must be below 1 (a share of IT cost), got {c.network_share.high:g}")
    if not (0 < c.load_factor.low and c.load_factor.high <= 1):
        raise UsageError(f"--load-factor must be in (0, 1], got {c.load_factor}")
    if not (math.isfinite(c.hardware_age_years) and c.hardware_age_years >= 0):
        raise UsageError(f"--hardware-age-years must be >= 0, got {c.hardware_age_years:g}")


def _range(s: sourced.Sourced) -> Range:
    return Range(s.low, s.mode, s.high, s.source + (f" ({s.date})" if s.date else ""))


def inputs_for(acc: specs.Accelerator, cost_file=None, overrides: Mapping[str, Range] | None = None,
               hardware_age_years: float = 0.0) -> CostInputs:
    """The cost inputs for `acc`: the packaged table, a user table on top, flags on top of both.
    Warnings (returned in `warnings`) name a price older than the hardware's release year and a
    user figure without a source."""
    table = sourced.load("costs", cost_file)
    warnings = list(table.warnings)
    overrides = dict(overrides or {})
    price, price_date = overrides.pop("price", None), ""
    key = f"server_usd_per_gpu.{acc.key}"
    if price is None and table.has(key):
        s = table.figure(key)
        price, price_date = _range(s), s.date
        if s.year is not None and s.year < acc.year:
            estimate = " (a forward-looking estimate: no price published)" if s.tag == "D" else ""
            warnings.append(f"{key}: price dated {s.date} is older than {acc.name}'s release "
                            f"({acc.year}){estimate}")
    values = {name: overrides.pop(name, None) or _range(table.figure(name)) for name in RANGES}
    if overrides:
        raise UsageError(f"unknown cost inputs {', '.join(sorted(overrides))}")
    ooms = table.figure("epoch_price_performance_ooms_per_year").mode
    return CostInputs(price, price_date, price_ooms_per_year=ooms, hardware_age_years=hardware_age_years,
                      warnings=tuple(warnings), **values)


# ---------------------------------------------------------------- the formulas (floats or arrays)


def tco(*, accelerators: Any, it_w: Any, pue: Any, price: Any, network_share: Any, facility_usd_per_mw: Any,
        usd_per_mwh: Any, load_factor: Any, opex_usd_per_mw_year: Any, it_life_years: Any,
        facility_life_years: Any, days: float, run_flop: Any) -> dict[str, Any]:
    """The TCO view (module docstring) for a site of `accelerators` drawing `it_w` of IT power."""
    it_mw = it_w / 1e6
    capex_it = accelerators * price / (1 - network_share)
    capex_facility = it_mw * facility_usd_per_mw
    energy = it_mw * load_factor * pue * HOURS_PER_YEAR * usd_per_mwh
    opex = it_mw * opex_usd_per_mw_year
    per_year = capex_it / it_life_years + capex_facility / facility_life_years + energy + opex
    run = per_year * days / DAYS_PER_YEAR
    return {"capex_usd": capex_it + capex_facility, "capex_it_usd": capex_it,
            "capex_facility_usd": capex_facility, "energy_usd_per_year": energy,
            "tco_usd_per_year": per_year, "usd_per_gpu_hour": per_year / (accelerators * HOURS_PER_YEAR),
            "run_cost_usd": run, "usd_per_eflop": run / (run_flop / 1e18)}


def epoch_gpu_hour(*, price: Any, hardware_age_years: float, server_w: Any, load_factor: Any, pue: Any,
                   usd_per_mwh: Any, network_share: Any = 0.19, ooms_per_year: float = 0.14) -> Any:
    """Epoch's amortized hardware + energy cost of one accelerator-hour (module docstring)."""
    value = price * 10 ** (-ooms_per_year * hardware_age_years)
    hardware = value * ooms_per_year * math.log(10) / HOURS_PER_YEAR / (1 - network_share)
    energy = server_w / 1e3 * load_factor * pue * usd_per_mwh / 1e3
    return hardware + energy


# ---------------------------------------------------------------- outputs beside the projection

# (key, label, unit) in report order.
OUTPUTS = (
    ("capex_usd", "capex (IT + facility)", "USD"),
    ("capex_it_usd", "capex: servers and network", "USD"),
    ("capex_facility_usd", "capex: facility", "USD"),
    ("energy_usd_per_year", "energy per year", "USD"),
    ("tco_usd_per_year", "total cost of ownership per year (straight-line)", "USD"),
    ("usd_per_gpu_hour", "all-in owner cost per accelerator-hour", "USD"),
    ("run_cost_usd", "cost of the run projected (TCO share)", "USD"),
    ("usd_per_eflop", "cost per 1e18 training FLOP delivered", "USD"),
    ("usd_per_gpu_hour_epoch", "Epoch method: amortized hardware + energy per accelerator-hour", "USD"),
    ("run_cost_usd_epoch", "Epoch method: cost of the run projected", "USD"),
)


@dataclass
class CostExtension:
    """Adds the cost outputs to every site of `projection.project` (its `extensions`)."""

    inputs: CostInputs
    name: str = "cost"
    _draws: dict[str, np.ndarray] | None = None
    _draws_key: tuple[int, int] | None = None

    def _samples(self, seed: int, n: int) -> dict[str, np.ndarray]:
        if self._draws is None or self._draws_key != (seed, n):
            self._draws_key = (seed, n)
            rng = np.random.default_rng((seed, 18))  # its own stream; shared by every site
            c = self.inputs
            self._draws = {k: getattr(c, k).sample(rng, n) for k in RANGES}
            self._draws["price"] = c.price.sample(rng, n)
        return self._draws

    def _points(self) -> dict[str, float]:
        c = self.inputs
        return {k: getattr(c, k).mode for k in RANGES} | {"price": c.price.mode}

    @staticmethod
    def _outputs(v: Mapping[str, Any], chain: Mapping[str, Any], draws: Mapping[str, Any], days: float,
                 c: CostInputs) -> dict[str, Any]:
        it_w = chain["it_mw"] * 1e6
        out = tco(accelerators=chain["accelerators"], it_w=it_w, pue=draws["pue"], days=days,
                  run_flop=chain["run_flop"], **v)
        out["usd_per_gpu_hour_epoch"] = epoch_gpu_hour(
            price=v["price"], hardware_age_years=c.hardware_age_years, server_w=draws["node_w"],
            load_factor=v["load_factor"], pue=draws["pue"], usd_per_mwh=v["usd_per_mwh"],
            network_share=v["network_share"], ooms_per_year=c.price_ooms_per_year)
        out["run_cost_usd_epoch"] = out["usd_per_gpu_hour_epoch"] * chain["accelerators"] * days * 24
        return out

    def site(self, ctx: Mapping[str, Any]) -> dict[str, Any]:
        """ctx: basis, assumptions, point / mc (the chain's outputs), point_draws / draws."""
        if self.inputs.price is None:
            return {"outputs": [], "section": {"skipped": f"no price for {ctx['basis'].accelerator.name} "
                                                          "in the cost table: give --gpu-price"}}
        a = ctx["assumptions"]
        mc = ctx["mc"]
        draws = self._samples(a.seed, len(mc["accelerators"]))
        point = self._outputs(self._points(), ctx["point"], ctx["point_draws"], a.days, self.inputs)
        samples = self._outputs(draws, mc, ctx["draws"], a.days, self.inputs)
        return {"outputs": [(k, label, unit, point[k], samples[k]) for k, label, unit in OUTPUTS],
                "section": {"method": "TCO: straight-line lives; Epoch: 0.14 OOM/yr value decay + 19/81 "
                                      "interconnect + energy (docs/sources.md)"}}

    def describe(self) -> dict[str, Any]:
        return {"inputs": self.inputs.to_dict(), "warnings": list(self.inputs.warnings)}


def usd_per_gpu_hour_point(c: CostInputs, *, w_per_accelerator: float, pue: float) -> float | None:
    """TCO $ per accelerator-hour at the modes (the generation table)."""
    if c.price is None:
        return None
    v = CostExtension(c)._points()
    out = tco(accelerators=1.0, it_w=w_per_accelerator, pue=pue, days=DAYS_PER_YEAR, run_flop=1.0, **v)
    return float(out["usd_per_gpu_hour"])
