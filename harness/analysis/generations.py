"""Hardware generations side by side: spec peaks, figures measured here, published figures, the
1 GW projection and the step from one generation to the next. No torch here.

Every figure in the view carries where it comes from, and the three are never mixed:

- spec       harness/data/hardware.toml (core/specs): dense peaks, HBM and NVLink bandwidth,
             TDP; perf per watt as the dense bf16 peak over TDP (the GPU alone, not the node)
- measured   rows of the gwbench runs given, each figure with its run folder, case and
             statistic; per joule only from power windows long enough to trust (core/row.per_watt)
- published  harness/data/published.toml (analysis/published.py): other tools' figures with
             their statistic and source; never compared as if measured here

The 1 GW projection is analysis/projection.generations(): spec-based point estimates at the
default assumptions (accelerators, training FLOP per year, capex per GW, $ per GPU-hour and $ per
1e18 FLOP). A ratio to the previous generation is taken from measured figures where both sides
were measured, else from published figures where both were published, else from the spec, and
says which.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.analysis import projection
from harness.analysis import published as pub
from harness.analysis.peaks import spec_for
from harness.core import specs
from harness.core.errors import UsageError, clip
from harness.core.row import busbw_gbps, gemm_method, gemm_shape, memory_bytes, number, params, per_watt, rate_at
from harness.core.runinfo import NOT_RECORDED, device_name
from harness.core.stats import STATISTICS
from harness.core.store import RUN_FILE, load_run

SCHEMA_VERSION = 1
DEFAULT_STATISTIC = "mean"  # mamf-finder's published table ranks shapes by their mean

# The generations in the order people step through them, one line per vendor: each row's ratios
# are to the row before it on its line. The keys are hardware.toml's; a generation that a given
# run measured is added even when it is not listed here (GH200, A100 40GB).
LINEUP: tuple[tuple[str, ...], ...] = (
    ("v100", "a100", "h100", "h200", "b200", "gb200", "b300", "gb300", "rubin"),
    ("mi300x", "mi355x"),
)
TRAIN_DTYPES = ("bf16", "fp16")  # V100 has no bf16: fp16 was its mixed-precision training dtype

BASES = {
    "measured": "measured here: gwbench rows of the runs named",
    "published": "published by another tool (harness/data/published.toml; source named)",
    "spec": "spec: the hardware table (harness/data/hardware.toml; source named), not measured",
}


# ------------------------------------------------------------------ the runs given


def runs_from(paths: Sequence[Path]) -> list[tuple[str, dict, list[dict]]]:
    """(folder name, run.json, rows) of each path: a run folder (read or refused with a one-line
    UsageError), or a folder of run folders (a results folder: one that cannot be read is skipped
    with a warning). A path that is neither is a UsageError."""
    out = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise UsageError(f"{path}: no such run folder")
        if (path / RUN_FILE).exists():
            meta, rows = load_run(path)
            out.append((path.resolve().name, meta, rows))
            continue
        inside = sorted(p for p in path.iterdir() if p.is_dir() and (p / RUN_FILE).is_file())
        if not inside:
            raise UsageError(f"{path}: not a gwbench run folder (no {RUN_FILE}) and no run folder in it")
        for d in inside:
            try:
                meta, rows = load_run(d)
            except (UsageError, OSError) as exc:  # one bad folder among many: say so, go on
                print(f"gwbench: warning: skipped {d}: {clip(str(exc))}", file=sys.stderr)
                continue
            out.append((d.name, meta, rows))
    return out


# ------------------------------------------------------------------ measured figures


def _case(row: Mapping) -> str:
    """What the best row measured, in a reader's words."""
    fam, p = row.get("family"), params(row)
    if fam == "gemm":
        shape = gemm_shape(row)
        text = "×".join(str(d) for d in shape) if shape else "?"
        label = f" ({row['label']})" if row.get("label") else ""
        method = gemm_method(p)
        return text + label + (f"; {method}" if method else "")
    if fam == "attention":
        causal = " causal" if p.get("causal") else ""
        return (f"{row.get('op')} {row.get('backend')} seq {p.get('seq')} d {p.get('head_dim')}"
                f" heads {p.get('heads')}{causal}")
    if fam == "memory":
        size = memory_bytes(row)
        where = f", {size / 2**30:g} GiB arrays" if size else ""
        return f"{row.get('op')} {row.get('dtype')} ({row.get('backend')}){where}"
    if fam == "collectives":
        size = number(p.get("size_bytes"))
        return (f"{row.get('op')} {row.get('dtype')} ×{row.get('world_size')} ranks ({row.get('backend')})"
                + (f", {size / 2**30:g} GiB" if size else ""))
    return str(row.get("case_id"))


def _best(runs: Sequence[tuple[str, Mapping, Sequence[Mapping]]], pick, value) -> dict | None:
    """The best (highest `value`) ok row over every run for which `pick(row)` holds."""
    best = None
    for label, meta, rows in runs:
        for r in rows:
            if r.get("status") != "ok" or not pick(r):
                continue
            v = value(r)
            if v is None or v <= 0:
                continue
            if best is None or v > best["value"]:
                best = {"value": v, "run": label, "run_id": meta.get("run_id"), "case_id": r.get("case_id"),
                        "case": _case(r), "noisy": bool(r.get("noisy")), "unstable": bool(meta.get("unstable"))}
    return best


def measured(runs: Sequence[tuple[str, Mapping, Sequence[Mapping]]], statistic: str = DEFAULT_STATISTIC) -> dict:
    """The best figures of one generation's runs: bf16 and fp8 GEMM, bf16 attention and the HBM
    triad at `statistic`; all_reduce busbw (nccl-tests' figure, at the median over trials); bf16
    GEMM TFLOP per joule and triad GB per joule from trusted power windows only."""
    def rate(q):
        return lambda r: rate_at(r, q, statistic)

    def gemm(dt):
        return lambda r: r.get("family") == "gemm" and r.get("op", "matmul") == "matmul" and r.get("dtype") == dt

    def triad(r):  # the STREAM triad on the device's own memory (HBM)
        return r.get("family") == "memory" and r.get("op") == "triad"

    out = {
        "gemm_bf16": _best(runs, gemm("bf16"), rate("tflops")),
        "gemm_fp8": _best(runs, gemm("fp8"), rate("tflops")),
        "attention_bf16": _best(runs, lambda r: r.get("family") == "attention" and r.get("dtype") == "bf16",
                                rate("tflops")),
        "hbm_triad": _best(runs, triad, rate("gbps")),
        "busbw": _best(runs, lambda r: r.get("family") == "collectives" and r.get("op") == "all_reduce",
                       busbw_gbps),
        "tflop_per_j": _best(runs, gemm("bf16"), lambda r: per_watt(r, "tflops")),
        "gb_per_j": _best(runs, triad, lambda r: per_watt(r, "gbps")),
    }
    for key, fig in out.items():
        if fig is None:
            continue
        fig["statistic"] = {"busbw": "median", "tflop_per_j": "median TFLOP/s ÷ mean W of a window ≥ 1 s",
                            "gb_per_j": "median GB/s ÷ mean W of a window ≥ 1 s"}.get(key, statistic)
    return out


# ------------------------------------------------------------------ published and spec figures


def _published(figures: Sequence[pub.PublishedFigure]) -> dict:
    """One generation's published counterparts of the measured figures (the highest where a
    tool published several, e.g. NVLS and ring all_reduce)."""
    def best(pred) -> dict | None:
        found = [f for f in figures if f.match and pred(f.match)]
        if not found:
            return None
        f = max(found, key=lambda f: f.value)
        return {"value": f.value, "tool": f.tool, "what": f.what, "statistic": f.statistic,
                "tool_statistic": f.tool_statistic, "conditions": f.conditions, "source": f.source}

    def gemm(dt):
        return lambda m: m.get("family") == "gemm" and m.get("dtype") == dt

    return {"gemm_bf16": best(gemm("bf16")), "gemm_fp8": best(gemm("fp8")), "attention_bf16": None,
            "hbm_triad": best(lambda m: m.get("family") == "memory" and m.get("op") == "triad"),
            "busbw": best(lambda m: m.get("family") == "collectives" and m.get("op") == "all_reduce")}


def _fig(f: specs.Figure | None, scale: float = 1.0, **extra: Any) -> dict | None:
    return None if f is None else {"value": f.value * scale, "source": f.source, **extra}


def _spec(acc: specs.Accelerator) -> dict:
    train = next((d for d in TRAIN_DTYPES if d in acc.dense_tflops), None)
    out = {
        "train_dtype": train,
        "bf16_tflops": _fig(acc.dense_tflops.get("bf16")),
        "fp8_tflops": _fig(acc.dense_tflops.get("fp8")),
        "train_tflops": _fig(acc.dense_tflops.get(train) if train else None, dtype=train),
        "hbm_gbps": _fig(acc.hbm_tbps, 1e3),
        "scaleup_gbps": _fig(acc.scaleup_gbps),
        "tdp_w": _fig(acc.tdp_w),
        "tflop_per_j": None,
        "gb_per_j": None,
    }
    if acc.tdp_w and train:
        out["tflop_per_j"] = {"value": acc.dense_tflops[train].value / acc.tdp_w.value, "dtype": train,
                              "source": f"dense {train} peak ÷ TDP (the GPU alone, not the node)"}
    if acc.tdp_w and acc.hbm_tbps:
        out["gb_per_j"] = {"value": acc.hbm_tbps.value * 1e3 / acc.tdp_w.value,
                           "source": "HBM bandwidth ÷ TDP (the GPU alone, not the node)"}
    return out


def _share(fig: Mapping | None, peak: Mapping | None) -> None:
    if fig is not None and peak is not None and peak.get("value"):
        fig["share_of_peak"] = fig["value"] / peak["value"]


# ------------------------------------------------------------------ the view


def _previous() -> dict[str, str]:
    return {key: line[i - 1] for line in LINEUP for i, key in enumerate(line) if i}


def _ratio(row: Mapping, prev: Mapping, metric: str) -> dict | None:
    """row / prev for `metric`, measured where both were measured, else published, else spec."""
    spec_key = {"gemm_bf16": "train_tflops", "hbm": "hbm_gbps", "per_watt": "tflop_per_j"}.get(metric)
    candidates: list[tuple[str, Any, Any]] = []
    if metric == "gemm_bf16":
        candidates += [("measured", row["measured"]["gemm_bf16"], prev["measured"]["gemm_bf16"]),
                       ("published", row["published"]["gemm_bf16"], prev["published"]["gemm_bf16"])]
    elif metric == "hbm":
        candidates += [("measured", row["measured"]["hbm_triad"], prev["measured"]["hbm_triad"]),
                       ("published", row["published"]["hbm_triad"], prev["published"]["hbm_triad"])]
    elif metric == "per_watt":
        candidates += [("measured", row["measured"]["tflop_per_j"], prev["measured"]["tflop_per_j"])]
    if metric == "flop_per_year":
        a, b = row["projection"], prev["projection"]
        candidates.append(("spec", a and {"value": a.get("flop_per_year_1gw")}, b and {"value": b.get("flop_per_year_1gw")}))
    else:
        candidates.append(("spec", row["spec"][spec_key], prev["spec"][spec_key]))
    for basis, a, b in candidates:
        if a and b and a.get("value") and b.get("value"):
            out = {"value": a["value"] / b["value"], "basis": basis}
            if basis == "spec" and metric in ("gemm_bf16", "per_watt"):
                da, db = row["spec"]["train_dtype"], prev["spec"]["train_dtype"]
                if da != "bf16" or db != "bf16":
                    out["note"] = f"{da} vs {db}"
            return out
    return None


def _projection(gen_row: Mapping) -> dict | None:
    if "skipped" in gen_row or not gen_row.get("sites"):
        return None
    one = gen_row["sites"][0]
    ten = gen_row["sites"][1] if len(gen_row["sites"]) > 1 else {}
    return {"dtype": gen_row.get("dtype"), "accelerators_1gw": one.get("accelerators"),
            "flop_per_year_1gw": one.get("flop_per_year"), "flop_per_year_10gw": ten.get("flop_per_year"),
            "w_per_accelerator": gen_row.get("w_per_accelerator"), "power_source": gen_row.get("power_source"),
            "capex_usd_per_gw": gen_row.get("capex_usd_per_gw"), "usd_per_gpu_hour": gen_row.get("usd_per_gpu_hour"),
            "usd_per_eflop": gen_row.get("usd_per_eflop"), "above_scale_limit": bool(one.get("above_scale_limit"))}


def view(runs: Sequence[tuple[str, Mapping, Sequence[Mapping]]] = (), statistic: str = DEFAULT_STATISTIC,
         keys: Iterable[str] | None = None) -> dict[str, Any]:
    """The generations table from `runs` ((folder label, run.json, rows), any order): one entry
    per generation of LINEUP (or `keys`) and per generation a run measured. A run on a CPU or on
    a device the hardware table does not know is listed in `not_placed` with why."""
    if statistic not in STATISTICS:
        raise UsageError(f"statistic {statistic!r}: choose {', '.join(STATISTICS)}")
    table = specs.load()
    by_gen: dict[str, list] = {}
    placed, not_placed = [], []
    for label, meta, rows in runs:
        acc = spec_for(meta)
        d = meta.get("device") if isinstance(meta.get("device"), Mapping) else {}
        if acc is None:
            why = ("a CPU run" if d.get("backend") == "cpu" else
                   f"device {d.get('name')!r} not in the hardware table" if device_name(meta) else
                   f"the run's device name is {NOT_RECORDED}")
            not_placed.append({"run": label, "device": d.get("name"), "why": why})
            continue
        by_gen.setdefault(acc.key, []).append((label, meta, rows))
        placed.append({"run": label, "run_id": meta.get("run_id"), "device": d.get("name"), "generation": acc.key})
    wanted = list(keys) if keys is not None else [k for line in LINEUP for k in line]
    wanted += [k for k in by_gen if k not in wanted]
    unknown = [k for k in wanted if k not in table.accelerators]
    if unknown:
        raise UsageError(f"unknown generation {unknown[0]!r}: choose from {', '.join(table.accelerators)}")
    figures = pub.by_generation(pub.load())
    proj = {r["key"]: r for r in projection.generations(table, keys=wanted)["rows"]}
    rows = []
    for key in wanted:
        acc = table.accelerators[key]
        spec = _spec(acc)
        meas = measured(by_gen.get(key, []), statistic)
        published = _published(figures.get(key, []))
        for name, peak in (("gemm_bf16", spec["bf16_tflops"]), ("gemm_fp8", spec["fp8_tflops"]),
                           ("attention_bf16", spec["bf16_tflops"]), ("hbm_triad", spec["hbm_gbps"]),
                           ("busbw", spec["scaleup_gbps"])):
            _share(meas[name], peak)
            _share(published.get(name), peak)
        rows.append({"key": key, "name": acc.name, "vendor": acc.vendor, "year": acc.year, "status": acc.status,
                     "spec": spec, "measured": meas, "published": published,
                     "projection": _projection(proj.get(key, {})),
                     "runs": sorted({label for label, _, _ in by_gen.get(key, [])})})
    by_key = {r["key"]: r for r in rows}
    for r in rows:
        prev = by_key.get(_previous().get(r["key"], ""))
        r["previous"] = prev["key"] if prev else None
        r["vs_previous"] = ({m: _ratio(r, prev, m) for m in ("gemm_bf16", "hbm", "per_watt", "flop_per_year")}
                            if prev else {})
    return {"kind": "gwbench.generations_view", "schema_version": SCHEMA_VERSION, "statistic": statistic,
            "bases": BASES, "runs": placed, "not_placed": not_placed,
            "projection_label": "spec-based point estimates at the default assumptions "
                                "(analysis/projection.generations; `gwbench project --from RUN` for a measured one)",
            "rows": rows}
