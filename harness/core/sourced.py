"""Ranges and tables of sourced figures (harness/data/costs.toml, onerun.toml, a user's own table).

`Range` is the uncertain input every Monte Carlo in gwbench samples (the projection re-exports it
as harness.analysis.projection.Range).

A figure is a TOML table with `value`, or `low` / `mode` / `high`, and a `source`; optional
`date`, `tag` (how the source was read), `note`, `derivation`, `unit`. The packaged tables are
held to the rules: a figure without a source, an unknown key or a bad number is a one-line
UsageError. A user table (`--cost-file`) overrides figures of the packaged one; there a missing
source or an unknown key is a warning naming the figure (the user's numbers are theirs to
source), while a negative or non-finite number is still an error. No torch here.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import UsageError
from harness.core.tomlfile import read_toml

SCHEMA_VERSION = 1
NUMBER_KEYS = ("value", "low", "mode", "high")
TEXT_KEYS = ("source", "date", "tag", "note", "derivation", "unit", "basis", "id")
TAGS = ("P", "S", "R", "D", "NS")
_YEAR = re.compile(r"(19|20)\d\d")


@dataclass(frozen=True)
class Range:
    """An assumption: a point value (`mode`) and the range the Monte Carlo samples.

    Samples are triangular(low, mode, high): the point estimate is the most likely value and the
    published extremes are possible but rare. low == high means fixed (no spread).
    """

    low: float
    mode: float
    high: float
    source: str = ""

    @classmethod
    def fixed(cls, value: float, source: str) -> Range:
        return cls(value, value, value, source)

    def scaled(self, k: float, source: str | None = None) -> Range:
        return Range(self.low * k, self.mode * k, self.high * k, self.source if source is None else source)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.low == self.high:
            return np.full(n, self.mode)
        return rng.triangular(self.low, self.mode, self.high, n)

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "mode": self.mode, "high": self.high, "source": self.source}

    def __str__(self) -> str:
        if self.low == self.high:
            return f"{self.mode:.4g}"
        return f"{self.mode:.4g} ({self.low:.4g}-{self.high:.4g})"


@dataclass(frozen=True)
class Sourced:
    """One figure: its range (low == mode == high when fixed) and where it came from."""

    low: float
    mode: float
    high: float
    source: str
    date: str = ""
    tag: str = ""
    note: str = ""
    where: str = ""  # the figure's key in its table, for messages

    @property
    def fixed(self) -> bool:
        return self.low == self.high

    @property
    def year(self) -> int | None:
        """The first year in `date` (a quote's date may read '2024-07 / 2024-10')."""
        m = _YEAR.search(self.date)
        return int(m.group(0)) if m else None

    def to_dict(self) -> dict[str, Any]:
        d = {"low": self.low, "mode": self.mode, "high": self.high, "source": self.source}
        return d | {k: getattr(self, k) for k in ("date", "tag", "note") if getattr(self, k)}


def _number(x: Any, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
        raise UsageError(f"{where}: expected a finite number >= 0, found {x!r}")
    return float(x)


def figure(d: Any, where: str, *, user: bool = False, warnings: list[str] | None = None) -> Sourced:
    """Parse one figure table; `user`: missing source / unknown keys warn instead of failing."""
    if not isinstance(d, dict):
        raise UsageError(f"{where}: expected a table with value (or low, mode, high) and source")
    unknown = set(d) - set(NUMBER_KEYS) - set(TEXT_KEYS)
    if unknown:
        msg = f"{where}: unknown keys {', '.join(sorted(unknown))}"
        if not user:
            raise UsageError(msg)
        if warnings is not None:
            warnings.append(msg + " (ignored)")
    if "value" in d:
        if any(k in d for k in ("low", "mode", "high")):
            raise UsageError(f"{where}: give value or low/mode/high, not both")
        lo = mode = hi = _number(d["value"], f"{where}.value")
    elif all(k in d for k in ("low", "mode", "high")):
        lo, mode, hi = (_number(d[k], f"{where}.{k}") for k in ("low", "mode", "high"))
        if not lo <= mode <= hi:
            raise UsageError(f"{where}: expected low <= mode <= high, found {lo:g}, {mode:g}, {hi:g}")
    else:
        raise UsageError(f"{where}: expected value or all of low, mode, high")
    source = d.get("source")
    if not isinstance(source, str) or not source.strip():
        if not user:
            raise UsageError(f"{where}: a figure without a source")
        if warnings is not None:
            warnings.append(f"{where} has no source (user-supplied figure)")
        source = "user-supplied, no source given"
    tag = str(d.get("tag", ""))
    if tag and not user and not all(t in TAGS for t in tag.split("/")):
        raise UsageError(f"{where}.tag: expected one of {', '.join(TAGS)}, found {tag!r}")
    return Sourced(lo, mode, hi, source, str(d.get("date", "")), tag, str(d.get("note", "")), where)


@lru_cache(maxsize=8)
def _read_packaged(path: str) -> dict[str, Any]:
    return _read(Path(path))


def _read(path: Path) -> dict[str, Any]:
    raw = read_toml(path, "table")
    if raw.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise UsageError(f"{path}: schema_version: expected {SCHEMA_VERSION}, found {raw.get('schema_version')!r}")
    return raw


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`: tables merge key by key down to a figure, which is replaced whole
    (a user's `value` must not mix with the packaged `low`/`high`); arrays are replaced."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and not _is_figure(v):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _is_figure(d: dict[str, Any]) -> bool:
    return any(k in d for k in NUMBER_KEYS)


@dataclass(frozen=True)
class Table:
    """A packaged table with an optional user table on top."""

    name: str
    raw: dict[str, Any]
    user_keys: frozenset[str]  # dotted keys of figures the user table set
    warnings: tuple[str, ...] = ()

    def has(self, key: str) -> bool:
        return self._get(key) is not None

    def _get(self, key: str) -> Any:
        node: Any = self.raw
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def figure(self, key: str) -> Sourced:
        d = self._get(key)
        if d is None:
            raise UsageError(f"{self.name}: no figure {key!r}")
        return figure(d, f"{self.name}: {key}", user=key in self.user_keys)

    def section(self, key: str) -> dict[str, Any]:
        d = self._get(key)
        return d if isinstance(d, dict) else {}

    def records(self, key: str) -> list[dict[str, Any]]:
        d = self._get(key)
        return list(d) if isinstance(d, list) else []


def _figure_keys(d: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            key = f"{prefix}{k}"
            out += [key] if _is_figure(v) else _figure_keys(v, key + ".")
    return out


def packaged_path(name: str) -> Path:
    return Path(str(resources.files("harness.data").joinpath(f"{name}.toml")))


def load(name: str, user_path: str | Path | None = None) -> Table:
    """The packaged table `name` (costs, onerun), with the user table at `user_path` on top."""
    base = _read_packaged(str(packaged_path(name)))  # cached: never modified (a user table is merged into a copy)
    if user_path is None:
        return Table(name, base, frozenset())
    path = Path(user_path)
    over = _read(path)
    over.pop("schema_version", None)
    warnings: list[str] = []
    keys = _figure_keys(over)
    for key in keys:  # every user figure is checked now, so a bad number fails before any output
        node: Any = over
        for part in key.split("."):
            node = node[part]
        figure(node, f"{path}: {key}", user=True, warnings=warnings)
    known = set(_figure_keys(base)) | {k for k in base if isinstance(base[k], list)}
    for key in keys:
        if key not in known and not key.startswith("server_usd_per_gpu."):
            warnings.append(f"{path}: {key} is not a figure gwbench reads (ignored)")
    return Table(name, _merge(base, over), frozenset(keys), tuple(warnings))
