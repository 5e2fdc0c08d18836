"""Per-generation inputs of the spec profile (harness/data/perfmodel.toml): GEMM efficiency on
layer shapes (the one fitted figure), attention kernel, HBM, NVLink and NIC efficiencies, each
with its source and range. Validated on load: a bad file is a one-line UsageError. No torch."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from harness.analysis.projection import Range
from harness.core.errors import UsageError
from harness.core.tomlfile import read_toml

SCHEMA_VERSION = 1
FIGURES = ("gemm_eff", "band", "attn_fwd_eff", "attn_bwd_eff", "attn_fa2_eff", "hbm_eff", "nvlink_eff", "nic_eff")
SHAPE_KEYS = ("x0_mn", "x0_k", "power", "launch_s")
FALLBACK = "hopper"  # the set used for an accelerator no generation lists (says so)


@dataclass(frozen=True)
class Generation:
    key: str
    name: str
    accelerators: tuple[str, ...]
    attention_kernel: str
    gemm_eff: Range
    band: Range  # p5-p95 half-width of the model's log-throughput error (fitted with gemm_eff)
    attn_fwd_eff: Range
    attn_bwd_eff: Range
    attn_fa2_eff: Range  # FlashAttention-2 (forward and backward at its combined rate)
    hbm_eff: Range
    nvlink_eff: Range
    nic_eff: Range
    shape: tuple[float, float, float, float]
    shape_source: str


def default_path() -> Path:
    return Path(str(resources.files("harness.data").joinpath("perfmodel.toml")))


@lru_cache(maxsize=4)
def load(path: str | None = None) -> dict[str, Generation]:
    p = Path(path) if path else default_path()
    raw = read_toml(p, "per-generation inputs table")
    return parse(raw, str(p))


def _figure(v: Any, where: str) -> Range:
    if not isinstance(v, dict) or "value" not in v or not isinstance(v.get("source"), str) or not v["source"].strip():
        raise UsageError(f"{where}: expected {{ value, source [, low, high] }}")
    nums = []
    for k in ("low", "value", "high"):
        x = v.get(k, v["value"])
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x <= 2:
            raise UsageError(f"{where}.{k}: expected a number in (0, 2], got {x!r}")
        nums.append(float(x))
    if not nums[0] <= nums[1] <= nums[2]:
        raise UsageError(f"{where}: expected low <= value <= high")
    return Range(nums[0], nums[1], nums[2], v["source"])


def parse(raw: dict[str, Any], path: str) -> dict[str, Generation]:
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise UsageError(f"{path}: schema_version: expected {SCHEMA_VERSION}, found {raw.get('schema_version')!r}")
    gens = raw.get("generations")
    if not isinstance(gens, dict) or FALLBACK not in gens:
        raise UsageError(f"{path}: generations: expected a table including {FALLBACK!r}")
    out: dict[str, Generation] = {}
    seen: dict[str, str] = {}
    for key, g in gens.items():
        where = f"{path}: generations.{key}"
        if not isinstance(g, dict):
            raise UsageError(f"{where}: expected a table")
        accs = g.get("accelerators")
        if not isinstance(accs, list) or not all(isinstance(a, str) for a in accs):
            raise UsageError(f"{where}.accelerators: expected a list of hardware-table keys")
        for a in accs:
            if a in seen:
                raise UsageError(f"{where}.accelerators: {a!r} is already in generations.{seen[a]}")
            seen[a] = key
        shape = g.get("shape")
        if not isinstance(shape, dict) or not isinstance(shape.get("source"), str):
            raise UsageError(f"{where}.shape: expected {{ x0_mn, x0_k, power, launch_s, source }}")
        vals = []
        for k in SHAPE_KEYS:
            x = shape.get(k)
            if isinstance(x, bool) or not isinstance(x, (int, float)) or x <= 0:
                raise UsageError(f"{where}.shape.{k}: expected a positive number, got {x!r}")
            vals.append(float(x))
        out[key] = Generation(key, str(g.get("name", key)), tuple(accs), str(g.get("attention_kernel", "")),
                              *(_figure(g.get(f), f"{where}.{f}") for f in FIGURES),
                              shape=tuple(vals), shape_source=shape["source"])
    return out


def for_accelerator(key: str) -> tuple[Generation, str]:
    """The generation an accelerator belongs to, and a note when a stand-in set is used."""
    gens = load()
    for g in gens.values():
        if key in g.accelerators:
            return g, ""
    g = gens[FALLBACK]
    return g, f"no per-generation inputs for {key}: {g.name}'s set stands in"
