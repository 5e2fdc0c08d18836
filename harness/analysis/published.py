"""Published reference figures per GPU generation (harness/data/published.toml), and a measured
run put beside them. No torch here.

The figures are other people's (mamf-finder's table, BabelStream and nvbandwidth results
published by clouds, nccl-tests busbw of 8-GPU nodes), each with its source, and are never
mixed with measured rows: they are loaded from their own file, carry `published: True`, and
every rendering labels them so.

For a page that shows generations side by side (the publish site's generations page), the API is:

    figures = load()                       # every PublishedFigure, checked, in file order
    by_generation(figures)                 # {"h100": [PublishedFigure, ...], ...}
    generation_of(meta)                    # a run's hardware.toml key (None on a CPU/unknown)
    beside(meta, rows, figures)            # [{"figure": {...}, "measured": {...} | None, ...}]

A PublishedFigure says which gwbench rows measure the same thing (`match`: family, op, dtype,
world size, size, placement, host memory) and at which statistic (`statistic`: mamf-finder's
mean, BabelStream's fastest run -> min, nvbandwidth's median); `beside` takes the best matching
ok row of the run at that statistic and their ratio, with a note where the run's method differs
from the tool's (`prefer`: mamf-finder's B layout, output rewrite and fp8 output).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from harness.analysis.peaks import spec_for
from harness.core import specs
from harness.core.errors import UsageError
from harness.core.tomlfile import read_toml
from harness.core.row import busbw_gbps, message_bytes, params, rate_at
from harness.core.stats import STATISTICS

REQUIRED = {"generation", "tool", "what", "value", "unit", "tool_statistic", "statistic",
            "conditions", "source"}
OPTIONAL = {"match", "prefer"}
MATCH_KEYS = {"family", "op", "dtype", "world_size", "size_bytes", "placement", "host_mem"}
UNITS = {"TFLOP/s": "tflops", "GB/s": "gbps"}


@dataclass(frozen=True)
class PublishedFigure:
    generation: str  # hardware.toml accelerator key
    tool: str
    what: str
    value: float
    unit: str
    tool_statistic: str
    statistic: str  # the gwbench statistic to take for the same figure
    conditions: str
    source: str
    match: Mapping[str, Any] = field(default_factory=dict)
    prefer: Mapping[str, Any] = field(default_factory=dict)
    published: bool = True  # never a measurement of this repository

    def to_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in vars(self).items()}


def default_path() -> Path:
    return Path(str(resources.files("harness.data").joinpath("published.toml")))


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[PublishedFigure, ...]:
    p = Path(path)
    raw = read_toml(p, "published figures")
    if raw.get("schema_version") != 1 or not isinstance(raw.get("figure"), list):
        raise UsageError(f"{p}: expected schema_version = 1 and [[figure]] tables")
    keys = set(specs.load().accelerators)
    out = []
    for i, f in enumerate(raw["figure"]):
        where = f"{p}: figure {i + 1}"
        if not isinstance(f, dict):
            raise UsageError(f"{where}: not a table")
        missing, unknown = REQUIRED - f.keys(), f.keys() - REQUIRED - OPTIONAL
        if missing or unknown:
            raise UsageError(f"{where}: " + (f"missing {', '.join(sorted(missing))}" if missing
                                             else f"unknown keys {', '.join(sorted(unknown))}"))
        if f["generation"] not in keys:
            raise UsageError(f"{where}: generation {f['generation']!r} is not a hardware.toml accelerator key")
        if not str(f["source"]).strip():
            raise UsageError(f"{where}: a figure needs a source")
        if f["unit"] not in UNITS or f["statistic"] not in STATISTICS:
            raise UsageError(f"{where}: unit one of {', '.join(UNITS)}; statistic one of {', '.join(STATISTICS)}")
        if isinstance(f["value"], bool) or not isinstance(f["value"], (int, float)) or f["value"] <= 0:
            raise UsageError(f"{where}: value must be a positive number")
        match, prefer = f.get("match", {}), f.get("prefer", {})
        if not isinstance(match, dict) or not isinstance(prefer, dict) or (match and "family" not in match) \
                or set(match) - MATCH_KEYS:
            raise UsageError(f"{where}: match needs a family and only {', '.join(sorted(MATCH_KEYS))}")
        out.append(PublishedFigure(**{**f, "value": float(f["value"]), "match": match, "prefer": prefer}))
    return tuple(out)


def load(path: str | Path | None = None) -> list[PublishedFigure]:
    """Every published figure of the file (the packaged one by default), checked."""
    return list(_load(str(Path(path).resolve() if path else default_path())))


def by_generation(figures: Sequence[PublishedFigure]) -> dict[str, list[PublishedFigure]]:
    out: dict[str, list[PublishedFigure]] = {}
    for f in figures:
        out.setdefault(f.generation, []).append(f)
    return out


def generation_of(meta: Mapping) -> str | None:
    """The hardware.toml key of a run's device (None for a CPU or an unknown name)."""
    acc = spec_for(meta)
    return acc.key if acc is not None else None


# ------------------------------------------------------------------ a run beside the figures

def _matches(row: Mapping, match: Mapping[str, Any]) -> bool:
    p = params(row)
    for key, want in match.items():
        if key == "size_bytes":
            got = message_bytes(row)
        elif key in ("placement", "host_mem"):
            got = p.get(key)
        else:
            got = row.get(key)
        if got != want:
            return False
    return True


def _value(row: Mapping, fig: PublishedFigure) -> float | None:
    if fig.match.get("family") == "collectives":
        return busbw_gbps(row)  # one figure per row: nccl-tests' busbw
    return rate_at(row, UNITS[fig.unit], fig.statistic)


def measured_for(fig: PublishedFigure, rows: Sequence[Mapping]) -> dict | None:
    """The run's counterpart of `fig`: its best matching ok row at the figure's statistic, or
    None. Rows that follow the tool's method (`prefer`) are taken first; without them the
    best row is taken and the difference named in `note`."""
    if not fig.match:
        return None
    ok = [r for r in rows if r.get("status") == "ok" and _matches(r, fig.match)]
    ok = [(v, r) for r in ok if (v := _value(r, fig)) is not None]
    if not ok:
        return None
    same = [(v, r) for v, r in ok if all(params(r).get(k) == v2 for k, v2 in fig.prefer.items())]
    value, row = max(same or ok, key=lambda x: x[0])
    note = ""
    if fig.prefer and not same:
        p = params(row)
        note = "method differs from the tool's: " + ", ".join(
            f"{k} {p.get(k, 'not recorded')} (tool: {v})" for k, v in fig.prefer.items() if p.get(k) != v)
    return {"value": value, "statistic": fig.statistic, "case_id": row.get("case_id"),
            "noisy": bool(row.get("noisy")), "note": note}


def beside(meta: Mapping, rows: Sequence[Mapping], figures: Sequence[PublishedFigure] | None = None,
           generation: str | None = None) -> dict[str, Any]:
    """The published figures of the run's generation (or `generation`), each with the run's
    counterpart and the ratio measured / published."""
    figures = load() if figures is None else figures
    gen = generation or generation_of(meta)
    lines = []
    for fig in figures:
        if fig.generation != gen:
            continue
        got = measured_for(fig, rows)
        ratio = got["value"] / fig.value if got else None
        lines.append({"figure": fig.to_dict(), "measured": got, "ratio": ratio})
    return {"kind": "gwbench.published", "run_id": meta.get("run_id"), "generation": gen,
            "unstable": bool(meta.get("unstable")), "lines": lines}
