"""Figures of a run (matplotlib, Agg backend: no display needed), PNG and SVG.

Each function takes the run's rows (and meta or folder) and a path stem, writes `stem.png`
and `stem.svg` (or the formats asked for) and returns the paths written; it returns [] when
the run has nothing to draw, so callers never need to know which families a run holds.
Spec ceilings come from the hardware table (harness/specs.py), never from literals here.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

from harness.core.flops import STREAM_WORDS  # noqa: E402
from harness.analysis.peaks import peak_for, spec_for  # noqa: E402
from harness.core.row import busbw_gbps, memory_bytes, number, params  # noqa: E402
from harness.core.runinfo import device_count_text, device_label  # noqa: E402
from harness.core.store import write_atomic  # noqa: E402

FORMATS = ("png", "svg")
PNG_DPI = 160  # twice the layout's 80 dpi: sharp on high-density screens
plt.rcParams.update({"svg.hashsalt": "gwbench", "figure.dpi": 80,  # deterministic SVG ids
                     "figure.subplot.left": 0.1, "figure.subplot.bottom": 0.16,
                     "figure.subplot.right": 0.66, "figure.subplot.top": 0.9})
# The legend sits right of the plot (subplot.right above leaves it room), never over the data.
_LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0, "frameon": False}


def _save(fig, stem: Path, formats: Sequence[str]) -> list[Path]:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for f in formats:
        p = stem.with_suffix(f".{f}")
        # Fixed margins rather than bbox_inches="tight", which draws every figure twice: publish
        # draws hundreds of them.
        buf = io.BytesIO()  # written by write_atomic: never through a link planted at `p`
        fig.savefig(buf, format=f, metadata={"Date": None} if f == "svg" else None,
                    dpi=PNG_DPI if f == "png" else None)
        write_atomic(p, buf.getvalue())
        out.append(p)
    plt.close(fig)
    return out


def _ok(rows: Iterable[Mapping], family: str) -> list[Mapping]:
    return [r for r in rows if r.get("family") == family and r.get("status") == "ok"]


MANY = 14  # legend entries beyond which the legend goes below the plot, in two columns


def _legend(ax, n: int) -> None:
    """Right of the plot; below it in two columns past MANY entries (attention has 20+), where
    the figure was made taller for it (_figure)."""
    if n > MANY:
        ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(0.0, -0.16), frameon=False)
    else:
        ax.legend(fontsize=7, **_LEGEND)


def _figure(n_legend: int, height: float = 4.0):
    """A figure with room for its legend: at the right, or (past MANY entries) below the plot."""
    if n_legend <= MANY:
        return plt.subplots(figsize=(9.6, height))
    rows = (n_legend + 1) // 2
    extra = 0.19 * rows + 0.5
    fig, ax = plt.subplots(figsize=(9.6, height + extra))
    fig.subplots_adjust(right=0.97, bottom=(extra + 0.45) / (height + extra))
    return fig, ax


def _series_plot(series: Mapping[str, list[tuple[float, float]]], *, title: str, xlabel: str,
                 ylabel: str, logx: bool, hlines: Mapping[str, float] = {},
                 colour_of: Mapping[str, str] | None = None, points_only: set[str] = frozenset()):
    """One line per series; a spec peak (hlines, keyed like colour_of's values) is dashed in its
    series' colour and says so in the legend; series in `points_only` are drawn as markers alone
    (shapes that are not a sweep, where a line between them would mean nothing)."""
    fig, ax = _figure(len(series) + len(hlines))
    keys = sorted({(colour_of or {}).get(n, n) for n in series} | set(hlines))
    # Ten colours (tab10) while they suffice; twenty (tab20) past that, so no two series share one.
    palette = plt.get_cmap("tab10" if len(keys) <= 10 else "tab20")
    colours = {k: palette(i % palette.N) for i, k in enumerate(keys)}
    for name, pts in sorted(series.items()):
        pts = sorted(pts)
        c = colours[(colour_of or {}).get(name, name)]
        style = dict(ls="none", marker="D", ms=4) if name in points_only else dict(marker="o", ms=3)
        if " fwdbwd " in f" {name} ":
            style["ls"] = "--"  # forward+backward dashed beside its forward
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=c, label=str(name), **style)
    for name, y in sorted(hlines.items()):
        ax.axhline(y, ls="--", lw=1, color=colours[name], alpha=0.8, label=f"{name} spec peak {y:g}")
    if logx:
        ax.set_xscale("log", base=2)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    _legend(ax, len(series) + len(hlines))
    return fig


def gemm_vs_size(meta: Mapping, rows: Sequence[Mapping], stem: Path,
                 formats: Sequence[str] = FORMATS) -> list[Path]:
    """TFLOP/s against the cube root of m·n·k (one size axis for any shape), per dtype: square
    sweeps as lines, LLM-layer shapes as separate markers, each dtype's spec peak in its colour."""
    acc = spec_for(meta)
    series: dict[str, list] = {}
    colour_of: dict[str, str] = {}
    points_only: set[str] = set()
    for r in _ok(rows, "gemm"):
        p, t = params(r), number(r.get("tflops"))
        dims = [number(p.get(d)) for d in ("m", "n", "k")]
        if t is None or None in dims:  # not a GEMM row, or a hand-edited one
            continue
        dt = str(r.get("dtype"))
        kind = {"square": "square", "search": "search"}.get(str(r.get("label")), "LLM shapes")
        name = f"{dt} {kind}"
        colour_of[name] = dt
        if kind != "square":
            points_only.add(name)
        series.setdefault(name, []).append(((dims[0] * dims[1] * dims[2]) ** (1 / 3), t))
    if not series:
        return []
    peaks = {dt: peak_for(acc, "gemm", dt)[0] for dt in set(colour_of.values())}
    fig = _series_plot(series, title=f"GEMM — {_device(meta)}", xlabel="size (m·n·k)^(1/3)",
                       ylabel="TFLOP/s (median)", logx=True, hlines={k: v for k, v in peaks.items() if v},
                       colour_of=colour_of, points_only=points_only)
    return _save(fig, stem, formats)


def _attention_config(row: Mapping) -> tuple:
    p = params(row)
    gqa = p.get("kv_heads") not in (None, p.get("heads"))
    return (str(row.get("dtype")), p.get("head_dim"), gqa, str(row.get("label") or ""))


def attention_vs_seq(meta: Mapping, rows: Sequence[Mapping], stem: Path,
                     formats: Sequence[str] = FORMATS) -> list[Path]:
    """TFLOP/s against sequence length, one panel per (op, causal), one colour per backend: the
    question is which backend to pin. Lines are the run's main sweep (its commonest dtype and
    head_dim without GQA or a model preset); every other shape (head dims, GQA, fp16, presets)
    is a hollow marker in its backend's colour, so 100 configurations never make 100 legend
    entries. A run of one backend draws a line per plain (dtype, head_dim) instead."""
    ok = [r for r in _ok(rows, "attention")
          if number(params(r).get("seq")) is not None and number(r.get("tflops")) is not None]
    if not ok:
        return []
    plain = [_attention_config(r) for r in ok if not _attention_config(r)[2] and not _attention_config(r)[3]]
    main = Counter(plain or [_attention_config(r) for r in ok]).most_common(1)[0][0]
    backends = sorted({str(r.get("backend")) for r in ok})
    one_backend = len(backends) == 1

    def series(r: Mapping) -> tuple[str, bool]:
        """(colour key, drawn as a line?)"""
        c = _attention_config(r)
        if one_backend:
            return f"{c[0]} head_dim {c[1]}", not c[2] and not c[3]
        return str(r.get("backend")), c == main

    keys = sorted({series(r)[0] for r in ok}, key=lambda k: [int(t) if t.isdigit() else t for t in k.split()])
    palette = plt.get_cmap("tab10" if len(keys) <= 10 else "tab20")
    colour = {k: palette(i % palette.N) for i, k in enumerate(keys)}
    panels = sorted({(str(r.get("op")), bool(params(r).get("causal"))) for r in ok}, key=lambda x: (x[0], not x[1]))
    ncols = 1 if len(panels) == 1 else 2
    nrows = (len(panels) + ncols - 1) // ncols
    height = 1.0 + 2.9 * nrows
    fig, axes = plt.subplots(nrows, ncols, figsize=(9.6, height), squeeze=False, sharey=True)
    fig.subplots_adjust(left=0.08, right=0.74, top=1 - 0.75 / height, bottom=0.5 / height, hspace=0.45, wspace=0.08)
    for ax, (op, causal) in zip(axes.flat, panels):
        mine = [r for r in ok if str(r.get("op")) == op and bool(params(r).get("causal")) == causal]
        for k in keys:
            line = sorted((params(r)["seq"], r["tflops"]) for r in mine if series(r) == (k, True))
            other = [(params(r)["seq"], r["tflops"]) for r in mine if series(r) == (k, False)]
            if line:
                ax.plot([x for x, _ in line], [y for _, y in line], color=colour[k], marker="o", ms=3)
            if other:
                ax.scatter([x for x, _ in other], [y for _, y in other], s=14, marker="D", facecolors="none",
                           edgecolors=[colour[k]], linewidths=0.8)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{op}, {'causal' if causal else 'full (non-causal)'}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("TFLOP/s (median)", fontsize=9)
    for ax in axes[-1, :]:
        ax.set_xlabel("sequence length", fontsize=9)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colour[k], marker="o", ms=4, label=k) for k in keys]
    if any(not series(r)[1] for r in ok):
        what = "GQA, model presets" if one_backend else "other head_dim, GQA,\ndtype, model presets"
        handles.append(Line2D([], [], ls="none", marker="D", mfc="none", mec="0.3", label=f"hollow: {what}"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.76, 1 - 0.75 / height), fontsize=8, frameon=False)
    title = f"backend {backends[0]}" if one_backend else f"lines {main[0]}, head_dim {main[1]}"
    fig.suptitle(f"attention — {_device(meta)}: {title}", fontsize=11)
    return _save(fig, stem, formats)


def memory_bandwidth(meta: Mapping, rows: Sequence[Mapping], stem: Path,
                     formats: Sequence[str] = FORMATS) -> list[Path]:
    """Left: GB/s of each STREAM kernel (dtype, backend) on the device's own memory, beside the
    spec HBM bandwidth. Right: the copies (host to device, device to host, both ways, device to
    device) against their size, pinned and pageable apart."""
    ok = _ok(rows, "memory")
    stream = [r for r in ok if r.get("op") in STREAM_WORDS and number(r.get("gbps"))]
    copies = [r for r in ok if r.get("op") not in STREAM_WORDS and r.get("op") != "peak_fma"
              and number(r.get("gbps")) and memory_bytes(r)]
    if not stream and not copies:
        return []
    ncols = int(bool(stream)) + int(bool(copies))
    fig, axes = plt.subplots(1, ncols, figsize=(9.6, 4.4), squeeze=False)
    fig.subplots_adjust(left=0.17 if stream else 0.08, right=0.8, wspace=0.35, bottom=0.14, top=0.86)
    axes = list(axes.flat)
    if stream:
        ax = axes.pop(0)
        best: dict[str, float] = {}
        for r in stream:  # one bar per kernel: its best size (the HBM-resident one)
            name = f"{r.get('op')} {r.get('dtype')} ({r.get('backend')})"
            best[name] = max(best.get(name, 0.0), float(r["gbps"]))
        names = sorted(best, key=lambda n: (n.split()[0], n))
        backends = sorted({n.rsplit("(", 1)[1] for n in names})
        colour = {b: plt.get_cmap("tab10")(i) for i, b in enumerate(backends)}
        ax.barh(range(len(names)), [best[n] for n in names], color=[colour[n.rsplit("(", 1)[1]] for n in names])
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.invert_yaxis()
        peak = peak_for(spec_for(meta), "memory", None)[0]
        if peak:
            ax.axvline(peak, color="k", ls="--", lw=1)
        ax.set(xlabel="GB/s (median)")
        ax.set_title("STREAM kernels" + (f" (dashed: HBM spec {peak:g} GB/s)" if peak else ""), fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    if copies:
        ax = axes.pop(0)
        series: dict[str, list] = {}
        for r in copies:
            mem = params(r).get("host_mem")
            name = f"{r.get('op')}{' ' + str(mem) if mem else ''}"
            series.setdefault(name, []).append((memory_bytes(r), float(r["gbps"])))
        for name, pts in sorted(series.items()):
            pts = sorted(pts)
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", ms=3, label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")  # PCIe (tens of GB/s) and device copies (thousands) on one axis
        ax.set(xlabel="bytes per copy", ylabel="GB/s (median)")
        ax.set_title("copies by size", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, **_LEGEND)
    fig.suptitle(f"memory — {_device(meta)}", fontsize=11)
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
                       ylabel="busbw GB/s (median)", logx=True, hlines={"NVLink": peak} if peak else {},
                       colour_of={n: "NVLink" for n in list(series)[:1]} if peak else None)
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
    fig, ax = plt.subplots(figsize=(9.6, 4))
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
    _legend(ax, len(pts) + 2)
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


def _seconds(iso: object) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return None


def case_spans(rows: Sequence[Mapping]) -> list[tuple[str, float, float, bool]]:
    """(family, start, end, sustained) of each case in seconds from the first case's start: the
    rows' started_at (1 s resolution) and wall_s. Where the run's power trace begins is when
    its first case begins (the runner starts the trace just before the loop)."""
    starts = [(r, _seconds(r.get("started_at"))) for r in rows if r.get("status") == "ok"]
    starts = [(r, t) for r, t in starts if t is not None]
    if not starts:
        return []
    t0 = min(t for _, t in starts)
    return [(str(r.get("family")), t - t0, t - t0 + (number(r.get("wall_s")) or 0.0), bool(r.get("sustained")))
            for r, t in starts]


def power_trace(run_dir: Path, stem: Path, formats: Sequence[str] = FORMATS,
                max_points: int = 5000, meta: Mapping | None = None,
                rows: Sequence[Mapping] = ()) -> list[Path]:
    """Power over the whole run, with the device's power limit and where each family's cases
    ran (sustained power cases shaded): what drew the power is on the same axis."""
    trace = read_trace(Path(run_dir) / "power.csv")
    if not trace:
        return []
    fig, ax = plt.subplots(figsize=(9.6, 3.6))
    for dev, pts in sorted(trace.items()):
        step = max(1, len(pts) // max_points)  # hours at 10 Hz: thin for drawing, not for energy
        pts = pts[::step]
        ax.plot([t for t, _ in pts], [w for _, w in pts], lw=0.8, label=dev)
    d = (meta or {}).get("device") if isinstance((meta or {}).get("device"), Mapping) else {}
    limit = number(d.get("power_limit_w"))
    if limit:
        ax.axhline(limit, color="k", ls="--", lw=1, label=f"power limit {limit:g} W")
    family_start: dict[str, float] = {}
    for fam, a, b, sustained in case_spans(rows):
        family_start.setdefault(fam, a)
        if sustained:
            ax.axvspan(a, b, color="C3", alpha=0.12, lw=0)
    for i, (fam, a) in enumerate(sorted(family_start.items(), key=lambda x: x[1])):
        ax.axvline(a, color="0.5", lw=0.8, ls=":")
        ax.text(a, 1.01, fam, transform=ax.get_xaxis_transform(), fontsize=7, rotation=0, va="bottom")
    if any(s for *_, s in case_spans(rows)):
        ax.axvspan(0, 0, color="C3", alpha=0.12, label="sustained power cases")
    ax.set(xlabel="time since the first case (s)", ylabel="W")
    ax.set_title("power during the run", pad=14)
    ax.grid(alpha=0.3)
    _legend(ax, len(trace) + 2)
    return _save(fig, stem, formats)


def projection_generations(stem: Path, formats: Sequence[str] = FORMATS, samples: int = 20_000,
                           keys: Sequence[str] | None = None) -> list[Path]:
    """Training FLOP per year at 1 GW and 10 GW per generation (spec-based), p50 with p5–p95 bars."""
    from harness.analysis.projection import flop_per_year_by_generation

    names, by_site = flop_per_year_by_generation(keys, samples)
    if not names:
        return []
    fig, ax = plt.subplots(figsize=(9.6, 4))
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
    _legend(ax, len(by_site))
    return _save(fig, stem, formats)


def _device(meta: Mapping) -> str:
    return f"{device_label(meta)} ×{device_count_text(meta)}"


RUN_FIGURES = (("gemm", gemm_vs_size), ("attention", attention_vs_seq), ("memory", memory_bandwidth),
               ("busbw", busbw_vs_size), ("roofline", roofline))


def run_figures(meta: Mapping, rows: Sequence[Mapping], run_dir: Path | None, out_dir: Path,
                formats: Sequence[str] = FORMATS) -> list[Path]:
    """Every figure the run has data for, into out_dir/<name>.<fmt>."""
    out: list[Path] = []
    for name, fn in RUN_FIGURES:
        out += fn(meta, rows, Path(out_dir) / name, formats)
    if run_dir is not None:
        out += power_trace(run_dir, Path(out_dir) / "power", formats, meta=meta, rows=rows)
    return out
