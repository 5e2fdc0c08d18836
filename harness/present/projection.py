"""The 1 GW / 10 GW projection and the generation table as text, Markdown or JSON.

Rendering only: the figures are computed in analysis/projection.py and handed over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.analysis.projection import OUTPUTS, SCALE_LIMIT_FLOP, Range, format_power
from harness.core.store import json_text
from harness.present.tables import fmt_value, format_table


def _assumption_lines(a: Mapping[str, Any], monte_carlo: bool = True) -> list[str]:
    def r(d: Mapping[str, Any]) -> str:
        return str(Range(d["low"], d["mode"], d["high"]))
    mc = f"; Monte Carlo {a['samples']} samples (triangular ranges), seed {a['seed']}" if monte_carlo else ""
    return [f"PUE {r(a['pue'])}: {a['pue']['source']}",
            f"MFU {r(a['mfu'])}: {a['mfu']['source']}",
            f"goodput {r(a['goodput'])}: {a['goodput']['source']}",
            f"network share W per accelerator {r(a['network_w'])}: {a['network_w']['source']}",
            f"duration {a['days']:g} days{mc}"]


def render_projection(result: Mapping[str, Any], fmt: str = "text") -> str:
    if fmt == "json":
        return json_text(result, indent=2)
    b, sites = result["basis"], result["sites"]
    lines = [f"gwbench projection — {b['label']}",
             f"{b['hardware']['name']}: dense {b['dtype']} peak {b['peak_tflops']:g} TFLOP/s "
             f"({b['peak_source']})",
             f"IT power per accelerator (before network): {Range(**b['node_w'])} W — "
             f"{b['node_w']['source']}",
             f"MFU rule: {b['mfu_rule']}"]
    if b["sensor_error"]:
        lines.append(f"power sensor error +-{b['sensor_error']:.0%} sampled (NVML, arXiv 2312.02741)")
    lines += _assumption_lines(result["assumptions"])
    headers = ["output", "unit"] + [h for s in sites for h in (f"{s['name']} p50", f"{s['name']} p5 – p95")]
    rows = []
    for key, label, unit in OUTPUTS:
        if key not in sites[0]["outputs"]:
            continue
        cells = [label, unit]
        for s in sites:
            o = s["outputs"][key]
            spread = f"{fmt_value(o['p5'], unit)} – {fmt_value(o['p95'], unit)}"
            cells += [fmt_value(o["p50"], unit), spread]
        rows.append(cells)
    flags = [f"{s['name']}: {f}" for s in sites for f in s["flags"]] + list(result["notes"])
    bullet = "- " if fmt == "md" else ""
    head = "\n".join(bullet + ln for ln in lines)
    tail = "\n".join(f"{bullet}flag: {f}" for f in flags)
    return "\n\n".join(p for p in (head, format_table(headers, rows, fmt), tail) if p)


def render_generations(result: Mapping[str, Any], fmt: str = "text") -> str:
    if fmt == "json":
        return json_text(result, indent=2)
    site_names = [format_power(w) for w in result["sites_w"]]
    headers = ["accelerator", "status", "dtype", "dense peak TFLOP/s", "IT W per accel."]
    headers += [h for n in site_names for h in (f"{n} accelerators", f"{n} FLOP/year")]
    headers += ["FLOP per facility J", "vs H100"]
    rows, skipped = [], []
    for r in result["rows"]:
        if "skipped" in r:
            skipped.append(f"{r['name']}: {r['skipped']}")
            continue
        cells = [r["name"], r["status"], r["dtype"], f"{r['peak_tflops']:g}", f"{r['w_per_accelerator']:.0f}"]
        for s in r["sites"]:
            star = " *" if s["above_scale_limit"] else ""
            cells += [fmt_value(s["accelerators"], "count"), fmt_value(s["flop_per_year"]) + star]
        cells += [fmt_value(r["flop_per_joule"]), f"{r['vs_h100']:.2f}x" if "vs_h100" in r else None]
        rows.append(cells)
    bullet = "- " if fmt == "md" else ""
    head = [f"gwbench generations — {result['label']}"]
    head += _assumption_lines(result["assumptions"], monte_carlo=False)
    head.append("W per accelerator: system power / GPUs + network share, or TDP x 1.82 where the table "
                "has no system (`gwbench specs NAME` for sources); preliminary rows are announced figures")
    notes = [f"not shown: {s}" for s in skipped]
    if any(s["above_scale_limit"] for r in result["rows"] for s in r.get("sites", [])):
        days = result["assumptions"]["days"]
        notes.append(f"* one {days:g}-day run above ~{fmt_value(SCALE_LIMIT_FLOP)} FLOP: "
                     "Epoch (arXiv 2411.01137) finds data movement cutting utilisation past it")
    tail = "\n".join(bullet + n for n in notes)
    parts = ("\n".join(bullet + ln for ln in head), format_table(headers, rows, fmt), tail)
    return "\n\n".join(p for p in parts if p)


# ---------------------------------------------------------------- a run's projection


def render_run_projection(result: Mapping[str, Any]) -> str:
    """The Markdown `gwbench run` prints at its end and writes to projection.md."""
    reason = result.get("fallback_reason")
    if reason is None:
        return render_projection(result, "md")
    return (f"No measured projection ({reason}); showing the spec-based projection of reference "
            "generations, not measured.\n\n" + render_generations(result, "md"))


def summary_lines(result: Mapping[str, Any] | None) -> list[str]:
    """A run's projection in one line per site, for a report's header."""
    if result is None:
        return ["projection: not computed (no run folder)"]
    reason = result.get("fallback_reason")
    if reason is not None:
        if result.get("computed"):
            return [f"projection: none measured ({reason})"]
        return [f"projection: none measured ({reason}); see the projection page for spec-based figures"]
    lines = [f"projection basis: {result.get('basis', {}).get('label')}"]
    for s in result.get("sites", []):
        o = (s.get("outputs") or {}).get("flop_per_year")
        if o:
            lines.append(f"{s.get('name')}: {fmt_value(o.get('p50'))} training FLOP/year "
                         f"(p5–p95 {fmt_value(o.get('p5'))} – {fmt_value(o.get('p95'))})")
    return lines
