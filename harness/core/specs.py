"""Typed loader for the hardware table (harness/data/hardware.toml).

Every figure in the file is an inline table `{ value, source [, note, low, high] }`; the loader
refuses a figure without a source, an unknown key (a typo like `souce`), a dtype it does not
know, or a dangling system/accelerator reference, each with a one-line UsageError. Peaks are
dense (no 2:4 sparsity). Python >= 3.11 (pyproject), so `tomllib` is in the standard library.

`lookup(name)` maps what torch/NVML report ("NVIDIA H200", "NVIDIA H100 80GB HBM3") or what a
user types ("h100", "GB300 NVL72") to an Accelerator; unknown names get the closest matches.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.core.errors import UsageError
from harness.core.tomlfile import read_toml

SCHEMA_VERSION = 1
DTYPES = ("fp64", "tf32", "bf16", "fp16", "fp8", "fp4")
STATUSES = ("shipping", "preliminary")
FIGURE_FIELDS = ("hbm_gb", "hbm_tbps", "l2_mb", "sms", "scaleup_gbps", "tdp_w")
SYSTEM_FIGURES = ("scaleout_gbps", "scaleup_domain")


@dataclass(frozen=True)
class Figure:
    """One sourced number. `low`/`high` bound it where sources disagree or it is an estimate."""

    value: float
    source: str
    note: str = ""
    low: float | None = None
    high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"value": self.value, "source": self.source}
        d.update({k: v for k, v in (("note", self.note), ("low", self.low), ("high", self.high)) if v})
        return d


@dataclass(frozen=True)
class Accelerator:
    key: str
    name: str
    vendor: str
    year: int
    status: str
    aliases: tuple[str, ...]
    dense_tflops: Mapping[str, Figure]  # dtype -> dense peak
    mamf_tflops: Mapping[str, Figure]  # dtype -> mamf-finder max achievable matmul
    hbm_gb: Figure | None = None
    hbm_tbps: Figure | None = None
    l2_mb: Figure | None = None
    sms: Figure | None = None
    scaleup_gbps: Figure | None = None  # unidirectional, per accelerator
    tdp_w: Figure | None = None
    system: str | None = None  # key of the reference system, if any
    note: str = ""

    @property
    def preliminary(self) -> bool:
        return self.status == "preliminary"

    def peak(self, dtype: str) -> Figure:
        """Dense peak for `dtype`; a one-line UsageError when the table has none."""
        if dtype not in DTYPES:
            raise UsageError(f"unknown dtype {dtype!r}; choose from {', '.join(DTYPES)}")
        if dtype not in self.dense_tflops:
            has = ", ".join(self.dense_tflops) or "none"
            raise UsageError(f"{self.name} has no {dtype} peak in the hardware table (has: {has})")
        return self.dense_tflops[dtype]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k) for k in ("key", "name", "vendor", "year", "status")}
        d["aliases"] = list(self.aliases)
        d["dense_tflops"] = {k: f.to_dict() for k, f in self.dense_tflops.items()}
        d["mamf_tflops"] = {k: f.to_dict() for k, f in self.mamf_tflops.items()}
        d.update({k: getattr(self, k).to_dict() for k in FIGURE_FIELDS if getattr(self, k)})
        d.update({k: getattr(self, k) for k in ("system", "note") if getattr(self, k)})
        return d


@dataclass(frozen=True)
class System:
    key: str
    name: str
    accelerator: str  # key of its accelerator
    status: str
    gpus: Figure  # accelerator packages per system
    power_kw: Figure  # rated maximum; low/high where uncertain
    note: str = ""
    scaleout_gbps: Figure | None = None  # scale-out (InfiniBand/RoCE) NIC GB/s per GPU, one direction
    scaleup_domain: Figure | None = None  # GPUs in one NVLink domain

    @property
    def gpu_count(self) -> int:
        return int(self.gpus.value)

    @property
    def watts_per_gpu(self) -> float:
        return self.power_kw.value * 1000.0 / self.gpu_count

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("key", "name", "accelerator", "status")}
        d.update(gpus=self.gpus.to_dict(), power_kw=self.power_kw.to_dict())
        d.update({k: getattr(self, k).to_dict() for k in SYSTEM_FIGURES if getattr(self, k)})
        return d | ({"note": self.note} if self.note else {})


@dataclass(frozen=True)
class HardwareTable:
    path: str
    accelerators: Mapping[str, Accelerator]
    systems: Mapping[str, System]
    # normalised name -> entry; built once, refusing a name two entries share
    _by_name: Mapping[str, Accelerator | System] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", MappingProxyType(_build_index(self)))

    def system_for(self, acc: Accelerator) -> System | None:
        return self.systems.get(acc.system) if acc.system else None

    def find(self, name: str) -> Accelerator | System:
        """The accelerator or system called `name` (key, name or alias; case/space-blind)."""
        hit = self._by_name.get(_norm(name))
        if hit is None:
            raise UsageError(f"unknown hardware {name!r}; {self._suggest(name)}")
        return hit

    def lookup(self, name: str) -> Accelerator:
        """The accelerator for a measured device name, key, alias, or system name."""
        hit = self.find(name)
        return self.accelerators[hit.accelerator] if isinstance(hit, System) else hit

    def _suggest(self, name: str) -> str:
        index, query = self._by_name, _norm(name)
        # A key inside the query first ("NVIDIA H100 PCIe" -> H100 SXM), longest key first so
        # "gb300..." prefers GB300 to B300; then difflib's similarity.
        keys = (k for k in (*self.accelerators, *self.systems) if _norm(k) in query)
        inside = sorted(keys, key=len, reverse=True)
        close = difflib.get_close_matches(query, list(index), n=6, cutoff=0.5)
        names = list(dict.fromkeys(index[_norm(c)].name for c in (*inside, *close)))[:3]
        if names:
            return "closest: " + ", ".join(names) + " (`gwbench specs` lists all)"
        return "`gwbench specs` lists the known names"


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name).lower())


def _build_index(table: HardwareTable) -> dict[str, Accelerator | System]:
    index: dict[str, Accelerator | System] = {}
    entries: list[tuple[Accelerator | System, Sequence[str]]] = [
        (a, (a.key, a.name, *a.aliases)) for a in table.accelerators.values()
    ]
    entries += [(s, (s.key, s.name)) for s in table.systems.values()]
    for entry, names in entries:
        for n in names:
            other = index.setdefault(_norm(n), entry)
            if other is not entry:
                raise UsageError(f"{table.path}: name {n!r} used by both {other.key} and {entry.key}")
    return index


# ------------------------------------------------------------------ loading and validation


def default_path() -> Path:
    return Path(str(resources.files("harness.data").joinpath("hardware.toml")))


def sources_text() -> str:
    """docs/sources.md, the published figures "REF" in the table points at: from the installed
    package (harness.docs) or, running from a checkout, the repository's docs/ folder."""
    for path in (Path(str(resources.files("harness").joinpath("docs", "sources.md"))),
                 Path(__file__).resolve().parents[2] / "docs" / "sources.md"):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise UsageError("docs/sources.md is not installed with this gwbench (reinstall the package)")


@lru_cache(maxsize=8)
def _load_cached(path: str) -> HardwareTable:
    p = Path(path)
    raw = read_toml(p, "hardware table")
    try:
        return _parse(raw, str(p))
    except RecursionError:
        raise UsageError(f"{p}: not a hardware table (nested too deeply)") from None


def load(path: str | Path | None = None) -> HardwareTable:
    """Load and validate the table (the packaged one by default); cached per path."""
    return _load_cached(str(Path(path).resolve() if path else default_path()))


def lookup(name: str, table: HardwareTable | None = None) -> Accelerator:
    """Accelerator entry for `name`; UsageError suggesting the closest names when unknown."""
    return (table or load()).lookup(name)


def _parse(raw: dict[str, Any], path: str) -> HardwareTable:
    def fail(where: str, msg: str) -> UsageError:
        return UsageError(f"{path}: {where}: {msg}")

    if raw.get("schema_version") != SCHEMA_VERSION:
        raise fail("schema_version", f"expected {SCHEMA_VERSION}, found {raw.get('schema_version')!r}")
    extra = set(raw) - {"schema_version", "accelerators", "systems"}
    if extra:
        raise fail("top level", f"unknown keys {sorted(extra)}")

    def table_of(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise fail(where, "expected a table")
        return value

    def check_keys(d: dict[str, Any], where: str, required: set[str], optional: set[str]) -> None:
        if missing := required - set(d):
            raise fail(where, f"missing {', '.join(sorted(missing))}")
        if unknown := set(d) - required - optional:
            raise fail(where, f"unknown keys {', '.join(sorted(unknown))}")

    def text(d: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        v = d.get(key, default)
        if not isinstance(v, str) or not v.strip():
            raise fail(f"{where}.{key}", "expected a non-empty string")
        return v

    def figure(v: Any, where: str) -> Figure:
        d = table_of(v, where)
        check_keys(d, where, {"value", "source"}, {"note", "low", "high"})
        nums = {}
        for k in ("value", "low", "high"):
            x = d.get(k)
            if x is None and k != "value":
                continue
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not x > 0 or x == float("inf"):
                raise fail(f"{where}.{k}", f"expected a positive number, found {x!r}")
            nums[k] = float(x)
        lo, hi = nums.get("low", nums["value"]), nums.get("high", nums["value"])
        if not lo <= nums["value"] <= hi:
            raise fail(where, "expected low <= value <= high")
        note = text(d, "note", where) if "note" in d else ""
        return Figure(nums["value"], text(d, "source", where), note, nums.get("low"), nums.get("high"))

    def dtype_figures(v: Any, where: str) -> Mapping[str, Figure]:
        d = table_of(v, where)
        if unknown := set(d) - set(DTYPES):
            raise fail(where, f"unknown dtypes {', '.join(sorted(unknown))} (known: {', '.join(DTYPES)})")
        return MappingProxyType({k: figure(d[k], f"{where}.{k}") for k in DTYPES if k in d})

    def status(d: dict[str, Any], where: str) -> str:
        s = text(d, "status", where)
        if s not in STATUSES:
            raise fail(f"{where}.status", f"expected one of {', '.join(STATUSES)}, found {s!r}")
        return s

    accelerators: dict[str, Accelerator] = {}
    for key, v in table_of(raw.get("accelerators", {}), "accelerators").items():
        where = f"accelerators.{key}"
        d = table_of(v, where)
        check_keys(d, where, {"name", "vendor", "year", "status", "aliases", "dense_tflops"},
                   {"mamf_tflops", "system", "note", *FIGURE_FIELDS})
        aliases = d["aliases"]
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            raise fail(f"{where}.aliases", "expected a list of non-empty strings")
        year = d["year"]
        if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year <= 2100:
            raise fail(f"{where}.year", f"expected a year, found {year!r}")
        accelerators[key] = Accelerator(
            key=key, name=text(d, "name", where), vendor=text(d, "vendor", where), year=year,
            status=status(d, where), aliases=tuple(aliases),
            dense_tflops=dtype_figures(d["dense_tflops"], f"{where}.dense_tflops"),
            mamf_tflops=dtype_figures(d.get("mamf_tflops", {}), f"{where}.mamf_tflops"),
            system=text(d, "system", where) if "system" in d else None,
            note=text(d, "note", where) if "note" in d else "",
            **{k: figure(d[k], f"{where}.{k}") for k in FIGURE_FIELDS if k in d},
        )

    systems: dict[str, System] = {}
    for key, v in table_of(raw.get("systems", {}), "systems").items():
        where = f"systems.{key}"
        d = table_of(v, where)
        check_keys(d, where, {"name", "accelerator", "status", "gpus", "power_kw"}, {"note", *SYSTEM_FIGURES})
        acc = text(d, "accelerator", where)
        if acc not in accelerators:
            raise fail(f"{where}.accelerator", f"no accelerator {acc!r} in the table")
        gpus = figure(d["gpus"], f"{where}.gpus")
        if gpus.value != int(gpus.value):
            raise fail(f"{where}.gpus", "expected a whole number")
        systems[key] = System(key, text(d, "name", where), acc, status(d, where), gpus,
                              figure(d["power_kw"], f"{where}.power_kw"),
                              text(d, "note", where) if "note" in d else "",
                              **{k: figure(d[k], f"{where}.{k}") for k in SYSTEM_FIGURES if k in d})

    for acc in accelerators.values():
        if acc.system and acc.system not in systems:
            raise fail(f"accelerators.{acc.key}.system", f"no system {acc.system!r} in the table")
    if not accelerators:
        raise fail("accelerators", "the table lists no accelerators")
    return HardwareTable(path, MappingProxyType(accelerators), MappingProxyType(systems))
