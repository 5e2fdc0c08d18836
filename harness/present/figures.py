"""Figures of a run (matplotlib, Agg backend: no display needed), PNG and SVG.

Each function takes the run's rows (and meta or folder) and a path stem, writes `stem.png`
and `stem.svg` (or the formats asked for) and returns the paths written; it returns [] when
the run has nothing to draw, so callers never need to know which families a run holds.
Spec ceilings come from the hardware table (harness/specs.py), never from literals here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

from harness.core.flops import STREAM_WORDS  # noqa: E402
from harness.analysis.peaks import peak_for, spec_for  # noqa: E402
from harness.core.row import busbw_gbps, number, params  # noqa: E402
from harness.core.store import write_atomic  # noqa: E402

FORMATS = ("png", "svg")
plt.rcParams.update({"svg.hashsalt": "gwbench", "figure.dpi": 80,  # deterministic SVG ids
                     "figure.subplot.left": 0.13, "figure.subplot.bottom": 0.16,
                     "figure.subplot.right": 0.97, "figure.subplot.top": 0.9})


def _save(fig, stem: Path, formats: Sequence[str]) -> list[Path]:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for f in formats:
        p = stem.with_suffix(f".{f}")
        # Fixed margins rather than bbox_inches="tight", which draws every figure twice: publish
        # draws hundreds of them.
        buf = io.BytesIO()  # written by write_atomic: never through a link planted at `p`
        fig.savefig(buf, format=f, metadata={"Date": None} if f == "svg" else None)
        write_atomic(p, buf.getvalue())
        out.append(p)
    plt.close(fig)
    return out


def _ok(rows: Iterable[Mapping], family: str) -> list[Mapping]:
    return [r for r in rows if r.get("family") == family and r.get("status") == "ok"]


def _series_plot(series: Mapping[str, list[tuple[float, float]]], *, title: str, xlabel: str,
                 ylabel: str, logx: bool, hlines: Mapping[str, float] = {}):
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, pts in sorted(series.items()):
        pts = sorted(pts)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=str(name))
    for i, (name, y) in enumerate(sorted(hlines.items())):
        ax.axhline(y, ls="--", lw=1, color=f"C{i}", alpha=0.7, label=f"{name} spec peak {y:g}")
    if logx:
        ax.set_xscale("log", base=2)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def gemm_vs_size(meta: Mapping, rows: Sequence[Mapping], stem: Path,
                 formats: Sequence[str] = FORMATS) -> list[Path]:
    """TFLOP/s against the cube root of m·n·k (one size axis for any shape), per dtype."""
    acc = spec_for(meta)
    series: dict[str, list] = {}
    for r in _ok(rows, "gemm"):
        p, t = params(r), number(r.get("tflops"))
        dims = [number(p.get(d)) for d in ("m", "n", "k")]
        if t is None or None in dims:  # not a GEMM row, or a hand-edited one
            continue
        series.setdefault(str(r.get("dtype")), []).append(((dims[0] * dims[1] * dims[2]) ** (1 / 3), t))
    if not series:
        return []
    peaks = {dt: peak_for(acc, "gemm", dt)[0] for dt in series}
    fig = _series_plot(series, title=f"GEMM — {_device(meta)}", xlabel="size (m·n·k)^(1/3)",
                       ylabel="TFLOP/s", logx=True, hlines={k: v for k, v in peaks.items() if v})
    return _save(fig, stem, formats)


def attention_vs_seq(meta: Mapping, rows: Sequence[Mapping], stem: Path,
                     formats: Sequence[str] = FORMATS) -> list[Path]:
    series: dict[str, list] = {}
    for r in _ok(rows, "attention"):
        seq, t = number(params(r).get("seq")), number(r.get("tflops"))
        if seq is None or t is None:
            continue
        causal = "causal" if params(r).get("causal") else "full"
        name = f"{r.get('backend')} {r.get('op')} {r.get('dtype')} {causal} d={params(r).get('head_dim')}"
        series.setdefault(name, []).append((seq, t))
    if not series:
        return []
    fig = _series_plot(series, title=f"attention — {_device(meta)}", xlabel="sequence length",
                       ylabel="TFLOP/s", logx=True)
    return _save(fig, stem, formats)


def busbw_vs_size(meta: Mapping, rows: Sequence[Mapping], stem: Path,
                  formats: Sequence[str] = FORMATS) -> list[Path]:
    series: dict[str, list] = {}
    for r in _ok(rows, "collectives"):
        size = number(params(r).get("size_bytes"))
        bus = busbw_gbps(r)
        if size is None or bus is None:
            continue
        pl = params(r).get("placement")
        name = f"{r.get('op')}{' ' + str(pl) if pl else ''} {r.get('dtype')} ×{r.get('world_size')}"
        series.setdefault(name, []).append((size, bus))
    if not series:
        return []
    peak = peak_for(spec_for(meta), "collectives", None)[0]
    fig = _series_plot(series, title=f"collectives busbw — {_device(meta)}", xlabel="message size (bytes)",
                       ylabel="busbw GB/s", logx=True, hlines={"NVLink": peak} if peak else {})
    return _save(fig, stem, formats)


def roofline(meta: Mapping, rows: Sequence[Mapping], stem: Path,
             formats: Sequence[str] = FORMATS) -> list[Path]:
    """Arithmetic intensity (FLOP / byte moved, the rows' own counts) against achieved TFLOP/s;
    ceilings: the spec roof (HBM bandwidth, dense peak) and the measured one (best memory GB/s,
    best TFLOP/s of the run) — Williams, Waterman & Patterson, CACM 2009."""
    pts: dict[str, list] = {}
    for r in rows:
        flop, nb, t = number(r.get("flop")), number(r.get("bytes")), number(r.get("tflops"))
        if r.get("status") != "ok" or not flop or not nb or t is None:
            continue
        pts.setdefault(f"{r.get('family')} {r.get('dtype')}", []).append((flop / nb, t))
    if not pts:
        return []
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, p in sorted(pts.items()):
        ax.scatter([x for x, _ in p], [y for _, y in p], s=10, label=name)
    xs = [x for p in pts.values() for x, _ in p]
    lo, hi = min(xs) / 2, max(xs) * 2
    grid = [lo * (hi / lo) ** (i / 50) for i in range(51)]

    def roof(bw_gbps, peak_tflops, label, style):
        if not bw_gbps or not peak_tflops:
            return
        ax.plot(grid, [min(peak_tflops, bw_gbps * x / 1e3) for x in grid], style, lw=1, label=label)

    acc = spec_for(meta)
    dtypes = sorted({r.get("dtype") for r in rows if r.get("family") == "gemm"} - {None})
    spec_peak = max((peak_for(acc, "gemm", d)[0] or 0 for d in dtypes), default=0)
    roof(peak_for(acc, "memory", None)[0], spec_peak, "spec roof", "k--")
    mem = [number(r.get("gbps")) for r in _ok(rows, "memory") if r.get("op") in STREAM_WORDS]
    best_bw = max((m for m in mem if m), default=None)
    best_t = max((y for p in pts.values() for _, y in p), default=None)
    roof(best_bw, best_t, "measured roof", "r:")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(title=f"roofline — {_device(meta)}", xlabel="arithmetic intensity (FLOP/byte)",
           ylabel="TFLOP/s")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _save(fig, stem, formats)


def read_trace(path: Path) -> dict[str, list[tuple[float, float]]]:
    """A run's power.csv (telemetry.start_run_trace: t_s, device, power_w, clock_sm_mhz, temp_c)
    -> device -> [(t_s, power_w)]; unreadable or empty -> {}."""
    out: dict[str, list] = {}
    if Path(path).is_symlink() or not Path(path).is_file():  # no link out of the run folder, no FIFO
        return out
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for rec in csv.DictReader(f):
                t, w = number(_float(rec.get("t_s"))), number(_float(rec.get("power_w")))
                if t is not None and w is not None:
                    out.setdefault(str(rec.get("device")), []).append((t, w))
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}
    return out


def _float(x) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def power_trace(run_dir: Path, stem: Path, formats: Sequence[str] = FORMATS,
                max_points: int = 5000) -> list[Path]:
    trace = read_trace(Path(run_dir) / "power.csv")
    if not trace:
        return []
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    for dev, pts in sorted(trace.items()):
        step = max(1, len(pts) // max_points)  # hours at 10 Hz: thin for drawing, not for energy
        pts = pts[::step]
        ax.plot([t for t, _ in pts], [w for _, w in pts], lw=0.8, label=dev)
    ax.set(title="power during the run", xlabel="time since start (s)", ylabel="W")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, stem, formats)


def projection_generations(stem: Path, formats: Sequence[str] = FORMATS, samples: int = 20_000,
                           keys: Sequence[str] | None = None) -> list[Path]:
    """Training FLOP per year at 1 GW and 10 GW per generation (spec-based), p50 with p5–p95 bars."""
    from harness.analysis.projection import flop_per_year_by_generation

    names, by_site = flop_per_year_by_generation(keys, samples)
    if not names:
        return []
    fig, ax = plt.subplots(figsize=(6.4, 4))
    width = 0.8 / max(1, len(by_site))
    for i, (site, vals) in enumerate(by_site.items()):
        xs = [j + i * width for j in range(len(vals))]
        p50 = [v[0] for v in vals]
        err = [[v[0] - v[1] for v in vals], [v[2] - v[0] for v in vals]]
        ax.bar(xs, p50, width, yerr=err, capsize=3, label=f"{site} (p5–p95)")
    ax.set_xticks([j + width * (len(by_site) - 1) / 2 for j in range(len(names))], names, rotation=20, fontsize=8)
    ax.set_yscale("log")
    ax.set(title="training FLOP per year (bf16, spec-based)", ylabel="FLOP / year")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    return _save(fig, stem, formats)


def _device(meta: Mapping) -> str:
    d = meta.get("device") if isinstance(meta.get("device"), Mapping) else {}
    return f"{d.get('name')} ×{d.get('count')}"


RUN_FIGURES = (("gemm", gemm_vs_size), ("attention", attention_vs_seq), ("busbw", busbw_vs_size),
               ("roofline", roofline))


def run_figures(meta: Mapping, rows: Sequence[Mapping], run_dir: Path | None, out_dir: Path,
                formats: Sequence[str] = FORMATS) -> list[Path]:
    """Every figure the run has data for, into out_dir/<name>.<fmt>."""
    out: list[Path] = []
    for name, fn in RUN_FIGURES:
        out += fn(meta, rows, Path(out_dir) / name, formats)
    if run_dir is not None:
        out += power_trace(run_dir, Path(out_dir) / "power", formats)
    return out
