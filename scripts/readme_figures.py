#!/usr/bin/env python3
"""Recompute the README's "Measured figures" from the committed runs in results/.

Each figure is read from the rows of a named run folder through gwbench's own readers
(core/store.load_run, core/row.rate_at, analysis/gemm_search), at a named statistic; a row
flagged noisy (IQR > 10% of its median) says so. Run from the repository root:

    python3 scripts/readme_figures.py            # Markdown table, as pasted into README.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.analysis.gemm_search import best_shapes  # noqa: E402
from harness.core.row import params, rate_at  # noqa: E402
from harness.core.store import load_run  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
STD, GEMM, SEARCH = "h200-20261129-220559-standard", "h200-20261129-211537-gemm", "h200-20261129-221321-gemm-search"
ATTN, MEM = "h200-20261129-221206-attention-cudnn-full", "h200-20261129-221738-memory"
_cache: dict[str, list[dict]] = {}


def rows(run: str) -> list[dict]:
    if run not in _cache:
        _cache[run] = load_run(RESULTS / run)[1]
    return _cache[run]


def one(run: str, **want) -> dict:
    """The one ok row of `run` whose fields or params equal `want`."""
    got = [r for r in rows(run) if r["status"] == "ok"
           and all((params(r) | r).get(k) == v for k, v in want.items())]
    if len(got) != 1:
        raise SystemExit(f"{run}: {len(got)} rows match {want}")
    return got[0]


def fig(row: dict, quantity: str = "tflops", stat: str = "median") -> str:
    v = rate_at(row, quantity, stat)
    return f"{v:.4g}" + ("~" if row.get("noisy") else "")


def sq(dtype: str, n: int = 8192, run: str = STD, **extra) -> dict:
    return one(run, family="gemm", dtype=dtype, m=n, n=n, k=n, label="square", **extra)


def main() -> None:
    out = []
    search = next(e for e in best_shapes(rows(SEARCH), "mean") if e["dtype"] == "bf16")
    m, n, k = search["shape"]
    out.append((f"GEMM bf16, best of a 27-shape search ({m}×{n}×{k}); ranked by the mean, as mamf-finder",
                f"{search['at']['mean']:.4g}{'~' if search['noisy'] else ''} mean "
                f"(median {search['at']['median']:.4g}, IQR {100 * search['iqr_share']:.1f}%)", SEARCH))
    s = sq("bf16", sustained=True)
    out.append(("GEMM bf16 8192³, sustained 5 s at the 700 W cap "
                f"({s['power_w']:.0f} W)", f"{fig(s)} median, {fig(s, stat='mean')} mean", STD))
    a = one(STD, family="gemm", dtype="bf16", label="llama3-8b attn_out")
    out.append(("GEMM bf16 Llama-3-8B attn_out 8192×4096×4096 (0.1 s window)", f"{fig(a)} median", STD))
    f1, f2 = sq("fp8", run=GEMM), sq("fp8")
    out.append(("GEMM fp8 e4m3 8192³ (`torch._scaled_mm`, bf16 output, B (n, k) used transposed)",
                f"{fig(f1)} ({GEMM}) / {fig(f2)} ({STD}) median", f"{GEMM}, {STD}"))
    out.append(("GEMM tf32 / fp32 (IEEE) 8192³", f"{fig(sq('tf32'))} / {fig(sq('fp32'))} median", STD))
    att = [one(ATTN, family="attention", op="fwd", dtype="bf16", head_dim=128, causal=False, seq=s,
               heads=32, kv_heads=32) for s in (8192, 16384, 32768)]
    out.append(("attention fwd bf16 hd128 non-causal, cuDNN, s = 8k / 16k / 32k",
                " / ".join(fig(r) for r in att) + " median", ATTN))
    sus = [r for r in rows(STD) if r["family"] == "attention" and r.get("sustained") and r["status"] == "ok"]
    out.append((f"the same, s = 8k, sustained 5 s at the cap ({sus[0]['power_w']:.0f} W)",
                f"{fig(sus[0])} median", STD))
    hl = {r["backend"]: r for r in rows(STD) if r.get("label") == "headline" and r["op"] == "fwd"
          and r["status"] == "ok" and params(r).get("seq") == 8192}
    out.append(("attention fwd bf16 hd128 s = 8k: flash / efficient / math",
                " / ".join(fig(hl[b]) for b in ("sdpa-flash", "sdpa-efficient", "sdpa-math")) + " median", STD))
    k = {op: one(MEM, family="memory", op=op, backend="cupy-kernel", dtype="fp32") for op in
         ("copy", "add", "triad", "dot")}
    t = {op: one(MEM, family="memory", op=op, backend="torch", dtype="fp32") for op in ("copy", "add", "dot")}
    out.append((f"STREAM triad, hand-written kernel, 1 GiB arrays, sustained 5 s ({k['triad']['power_w']:.0f} W)",
                f"{fig(k['triad'], 'gbps')} median, {fig(k['triad'], 'gbps', 'min')} fastest", MEM))
    out.append(("STREAM copy / add / dot, kernel (torch beside it)",
                " / ".join(fig(k[o], "gbps") for o in ("copy", "add", "dot")) + " ("
                + " / ".join(fig(t[o], "gbps") for o in ("copy", "add", "dot")) + ") median", MEM))
    d = one(STD, family="memory", op="d2d", size_bytes=1 << 30)
    out.append(("device-local copy 1 GiB (nvbandwidth: one side; read + write is twice)",
                f"{fig(d, 'gbps')} ({2 * rate_at(d, 'gbps'):.4g}) median", STD))
    h = {op: one(STD, family="memory", op=op, size_bytes=1 << 30, host_mem="pinned") for op in ("h2d", "d2h", "bidir")}
    out.append(("host→device / device→host pinned 1 GiB; both at once",
                f"{fig(h['h2d'], 'gbps')} / {fig(h['d2h'], 'gbps')}; {fig(h['bidir'], 'gbps')} median", STD))
    pg = one(STD, family="memory", op="h2d", size_bytes=1 << 30, host_mem="pageable")
    out.append(("host→device pageable 1 GiB", f"{fig(pg, 'gbps')} median", STD))
    pk = {r["dtype"]: r for r in rows(STD) if r["op"] == "peak_fma" and r["status"] == "ok"}
    out.append(("peak FMA fp32 / fp16 half2 (non-tensor)", f"{fig(pk['fp32'])} / {fig(pk['fp16'])} median", STD))
    idle = [json.loads((RESULTS / r / "run.json").read_text())["idle"] for r in (GEMM, STD, ATTN, SEARCH, MEM)]
    w = [i["power_w"] for i in idle]
    dis = [abs(i["energy_disagreement"]) * 100 for i in idle]
    out.append(("idle power, 2 s (mean over the window, NVML energy counter); counter vs 100 Hz sampler",
                f"{min(w):.0f}–{max(w):.0f} W; {min(dis):.2f}–{max(dis):.2f}% apart", "h200-2026112*/run.json idle"))
    # The projection with today's code (`gwbench project --from` the run), beside the one the run
    # wrote with the code and MFU range of its day (its projection.json).
    from harness.analysis import projection  # noqa: E402 - only this figure needs it

    today = projection.project(projection.from_run(RESULTS / STD), projection.Assumptions())
    stored = json.loads((RESULTS / STD / "projection.json").read_text())
    e = lambda x: f"{x:.3g}".replace("e+", "e")  # noqa: E731
    for label, proj, where in (("today's code", today, f"gwbench project --from {STD}"),
                               ("as the run wrote it", stored, f"{STD}/projection.json")):
        site = next(s for s in proj["sites"] if s["name"] == "1 GW")["outputs"]
        fy, acc = site["flop_per_year"], site["accelerators"]
        mfu = proj["assumptions"]["mfu"]
        out.append((f"1 GW, sustained GEMM row, {label}: point inputs (PUE 1.2, MFU 0.40 × 0.834, goodput 0.9) / "
                    f"Monte Carlo (MFU {mfu['low']:g}–{mfu['high']:g})",
                    f"{e(fy['point'])} / p50 {e(fy['p50'])} (p5–p95 {e(fy['p5'])}–{e(fy['p95'])}) bf16 FLOP/year; "
                    f"{acc['point']:,.0f} / p50 {acc['p50']:,.0f} GPUs", where))
    print("| what | figure (statistic; `~` noisy row) | run |\n|---|---|---|")
    for what, value, run in out:
        print(f"| {what} | {value} | `{run}` |")


if __name__ == "__main__":
    main()
