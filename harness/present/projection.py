"""The 1 GW / 10 GW projection and the generation table as text, Markdown or JSON.

Rendering only: the figures are computed in analysis/projection.py and handed over.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from harness.analysis.projection import OUTPUTS, SCALE_LIMIT_FLOP, Range, format_power
from harness.core.store import json_text
from harness.present.tables import fmt_value, format_table, rich_table


def _assumption_lines(a: Mapping[str, Any], monte_carlo: bool = True) -> list[str]:
    def r(d: Mapping[str, Any]) -> str:
        return str(Range(d["low"], d["mode"], d["high"]))
    mc = f"; Monte Carlo {a['samples']} samples (triangular ranges), seed {a['seed']}" if monte_carlo else ""
    return [f"PUE {r(a['pue'])}: {a['pue']['source']}",
            f"MFU {r(a['mfu'])}: {a['mfu']['source']}",
            f"goodput {r(a['goodput'])}: {a['goodput']['source']}",
            f"network share W per accelerator {r(a['network_w'])}: {a['network_w']['source']}",
            f"duration {a['days']:g} days{mc}"]


def render_projection(result: Mapping[str, Any], fmt: str = "text", width: int | None = None) -> str:
    """The projection as text, Markdown or JSON. `width` (a terminal's, text only): prose wraps at
    words and a table too wide for it is printed one site at a time, its labels wrapped."""
    if fmt == "json":
        return json_text(result, indent=2)
    width = width if fmt == "text" else None
    lines, headers, rows, flags = _projection_parts(result)
    bullet = "- " if fmt == "md" else ""
    head = _prose([bullet + ln for ln in lines], width)
    tail = _prose([f"{bullet}flag: {f}" for f in flags], width)
    parts = [head, _site_table(headers, rows, fmt, width, [st["name"] for st in result["sites"]])]
    if "one_run" in result:
        parts += _one_run_parts(result, fmt, width)
    if "cost" in result:
        parts += _cost_parts(result, fmt, width)
    return "\n\n".join(p for p in (*parts, tail) if p)


def _prose(lines: list[str], width: int | None) -> str:
    """Lines as given, or each wrapped at words to `width` with a hanging indent."""
    if width is None:
        return "\n".join(lines)
    return "\n".join(textwrap.fill(ln, width, subsequent_indent="  ", break_on_hyphens=False,
                                    break_long_words=False) for ln in lines)


def _site_table(headers: list[str], rows: list[list[str]], fmt: str, width: int | None,
                sites: list[str]) -> str:
    """A table of (label, unit, then the same columns per site). Wider than `width`: one table
    per site, under its name, the label wrapped; the figures are never cut."""
    whole = format_table(headers, rows, fmt)
    if width is None or max(len(ln) for ln in whole.splitlines()) <= width:
        return whole
    k = (len(headers) - 2) // len(sites)
    out = []
    for i, site in enumerate(sites):
        cols = [0, 1, *range(2 + i * k, 2 + (i + 1) * k)]
        sub = [headers[j].removeprefix(f"{site} ") for j in cols]
        out.append(f"{site}:\n" + format_table(sub, [[r[j] for j in cols] for r in rows], fmt, width=width))
    return "\n\n".join(out)


def _projection_parts(result: Mapping[str, Any]) -> tuple[list[str], list[str], list[list[str]], list[str]]:
    """(header lines, table headers, table rows, flags) of a projection, for every renderer."""
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
    # point (every assumption at its mode) beside the Monte Carlo p50 and p5-p95: the same three
    # figures everywhere gwbench prints a projection (the generation table too).
    headers = ["output", "unit"] + [h for s in sites for h in (f"{s['name']} point", f"{s['name']} p50",
                                                               f"{s['name']} p5 – p95")]
    rows = []
    for key, label, unit in OUTPUTS:
        if key not in sites[0]["outputs"]:
            continue
        cells = [label, unit]
        for s in sites:
            o = s["outputs"][key]
            spread = f"{fmt_value(o['p5'], unit)} – {fmt_value(o['p95'], unit)}"
            cells += [fmt_value(o["point"], unit), fmt_value(o["p50"], unit), spread]
        rows.append(cells)
    flags = [f"{s['name']}: {f}" for s in sites for f in s["flags"]] + list(result["notes"])
    return lines, headers, rows, flags


def fmt_money(x: float | None) -> str:
    """$35.1B, $1.16M, $1.75: three significant figures."""
    if x is None:
        return "—"
    for suffix, k in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= k:
            return f"${x / k:.3g}{suffix}"
    return f"${x:.3g}"


def _fmt(x: float | None, unit: str) -> str:
    if unit == "USD":
        return fmt_money(x)
    if unit == "x" and x is not None:
        return f"{x:.3g}"
    return fmt_value(x, unit)


def _group_table(result: Mapping[str, Any], group: str, fmt: str, width: int | None = None) -> str:
    """The outputs an extension added (p50 and p5 - p95 per site), in the order it gave them."""
    sites = result["sites"]
    headers = ["output", "unit"] + [h for s in sites for h in (f"{s['name']} p50", f"{s['name']} p5 – p95")]
    rows = []
    for key, o in sites[0]["outputs"].items():
        if o.get("group") != group:
            continue
        cells = [o["label"], "$" if o["unit"] == "USD" else o["unit"]]
        for s in sites:
            v = s["outputs"][key]
            cells += [_fmt(v["p50"], v["unit"]), f"{_fmt(v['p5'], v['unit'])} – {_fmt(v['p95'], v['unit'])}"]
        rows.append(cells)
    return _site_table(headers, rows, fmt, width, [st["name"] for st in sites]) if rows else ""


def _title(text: str, fmt: str) -> str:
    return f"### {text}" if fmt == "md" else f"{text}\n{'=' * len(text)}"


def _r(d: Mapping[str, Any]) -> str:
    return str(Range(d["low"], d["mode"], d["high"]))


def _one_run_parts(result: Mapping[str, Any], fmt: str, width: int | None = None) -> list[str]:
    one, sites = result["one_run"], result["sites"]
    inp = one["inputs"]
    bullet = "- " if fmt == "md" else ""
    lines = []
    for s in sites:
        sec = s.get("one_run") or {}
        if not sec:
            continue
        share = sorted(sec["binding_share"].items(), key=lambda kv: -kv[1])
        shares = ", ".join(f"{k} {v:.0%}" for k, v in share if v >= 0.005)
        gains = ", ".join(f"{k} x{v['p50']:.2f}" for k, v in sec["gain_if_lifted"].items())
        m = sec["model"]
        lines += [f"{s['name']}: binding limit {sec['binding']} (share of samples: {shares}; at the modes: "
                  f"{sec['binding_at_modes']}); run with one limit lifted, p50: {gains}",
                  f"{s['name']}: model {m['name']} ({m['params']:.3g} parameters, {m['layers']} layers, "
                  f"d_model {m['d_model']:,}; {m['sizing']}); layout at the modes {sec['layout']}; "
                  f"MFU range of that layout {_r(sec['mfu_range'])}; batch range "
                  f"{_r(sec['batch_tokens_range'])} tokens"]
    ref = one["reference"]
    wall = sites[0].get("one_run", {}).get("latency_wall_flop", {})
    lines += [
        f"inputs: interruptions {_r(inp['interruption_rate_per_gpu_hour'])} per GPU-hour "
        f"({inp['interruption_rate_per_gpu_hour']['source']})",
        f"restart {_r(inp['restart_s'])} s ({inp['restart_s']['source']})",
        f"checkpoint {inp['checkpoint_bytes_per_param']:g} B per parameter at "
        f"{_r(inp['storage_gbps_per_gpu'])} GB/s per GPU ({inp['storage_gbps_per_gpu']['source']})",
        f"batch: {inp['sources']['batch_law']}; low {inp['batch_low_tokens']:,.0f} tokens "
        f"({inp['sources']['batch_low_tokens']})" if inp["max_batch_tokens"] is None else
        f"batch: {_r(inp['max_batch_tokens'])} tokens (--max-batch-tokens)",
        f"network: {sites[0].get('one_run', {}).get('profile', '')}; campuses of at most "
        f"{inp['campus_max_w'] / 1e9:g} GW ({inp['sources']['campus_max_w']}) joined by "
        f"{_r(inp['site_links_pbps'])} Pb/s ({inp['site_links_pbps']['source']}), round trip {_r(inp['site_rtt_s'])} s",
        f"latency: one layer's forward + backward at least {_r(inp['layer_latency_s'])} s "
        f"({inp['layer_latency_s']['source']})",
        f"latency wall of this model in {inp['days']:g} days (compute-optimal): "
        f"{fmt_value(wall.get('batch_law'))} FLOP with "
        f"{'the batch law' if inp['max_batch_tokens'] is None else 'the given batch'}, "
        f"{fmt_value(wall.get('batch_low_fixed'))} "
        f"with a fixed 16M-token batch; Erdil & Schneider-Joseph publish utilisation falling past "
        f"~{fmt_value(ref['erdil_onset_flop'])} (blog {fmt_value(ref['erdil_onset_blog_flop'])}) and a wall at "
        f"~{fmt_value(ref['erdil_wall_flop'])} (blog {fmt_value(ref['erdil_wall_blog_flop'])}) for 3 months "
        "(headline figures compared, their equations not reproduced)",
        f"compare: Epoch AI expects one 1-5 GW campus to train {fmt_value(ref['epoch_campus_low_flop'])}-"
        f"{fmt_value(ref['epoch_campus_high_flop'])} FLOP by 2030 and {fmt_value(ref['epoch_feasible_flop'])} "
        "to be feasible (2030 hardware, lower precision, longer runs)",
        f"share of the site for one job {inp['job_share']:g} ({inp['sources']['job_share']}); "
        f"Monte Carlo: {sites[0].get('one_run', {}).get('samples', 0):,} of the samples, layouts fixed",
    ]
    if result.get("mode") == "fixed-cluster":
        lines.append("fixed cluster: the 'power' limit is the cluster's accelerator count")
    head = _title(f"Largest single synchronous run in {inp['days']:g} days", fmt)
    return [head, _prose([bullet + ln for ln in lines], width), _group_table(result, "one_run", fmt, width)]


def _cost_parts(result: Mapping[str, Any], fmt: str, width: int | None = None) -> list[str]:
    c = result["cost"]
    inp = c["inputs"]
    bullet = "- " if fmt == "md" else ""
    head = _title("Cost", fmt)
    price = inp["server_usd_per_gpu"]
    if price is None:
        skipped = result["sites"][0].get("cost", {}).get("skipped", "no price")
        return [head, bullet + f"not computed: {skipped}"]
    money = lambda d: f"{fmt_money(d['mode'])} ({fmt_money(d['low'])}-{fmt_money(d['high'])})"  # noqa: E731
    lines = [
        f"server price per accelerator {money(price)}: {price['source']}",
        f"network {_r(inp['network_share'])} of IT hardware ({inp['network_share']['source']})",
        f"facility {money(inp['facility_usd_per_mw'])} per MW of IT load ({inp['facility_usd_per_mw']['source']})",
        f"electricity {money(inp['usd_per_mwh'])} per MWh ({inp['usd_per_mwh']['source']}); average draw "
        f"{_r(inp['load_factor'])} of rated ({inp['load_factor']['source']})",
        f"other opex {money(inp['opex_usd_per_mw_year'])} per MW-year ({inp['opex_usd_per_mw_year']['source']})",
        f"lives: IT {_r(inp['it_life_years'])} years ({inp['it_life_years']['source']}); facility "
        f"{_r(inp['facility_life_years'])} years ({inp['facility_life_years']['source']})",
        "methods: TCO = capex / life (straight line) + energy + opex; Epoch's amortized hardware + energy "
        f"(Cottier et al. 2024) lets value fall {inp['price_ooms_per_year']:g} orders of magnitude a year and "
        f"adds 19/81 for interconnect, no facility or opex; hardware age {inp['hardware_age_years']:g} years",
        "NVIDIA's 'up to $100B ... as each gigawatt is deployed' (OpenAI letter of intent, 2025-09-22) is an "
        "equity investment in total, not a build cost per GW",
    ]
    lines += [f"warning: {w}" for w in c.get("warnings", [])]
    return [head, _prose([bullet + ln for ln in lines], width), _group_table(result, "cost", fmt, width)]


def render_generations(result: Mapping[str, Any], fmt: str = "text", width: int | None = None) -> str:
    """The generation table as text, Markdown or JSON; with `width` (a terminal's, text only),
    the terminal's tables: one small table per site that fits it (print_run_projection's)."""
    if fmt == "json":
        return json_text(result, indent=2)
    if fmt == "text" and width is not None:
        import io

        from rich.console import Console

        buf = io.StringIO()
        console = Console(file=buf, width=width, force_terminal=False, color_system=None)
        lines, _, _, notes = _generations_parts(result)
        _print_generation_tables(result, lines, notes, console)
        return buf.getvalue().rstrip("\n")
    head, headers, rows, notes = _generations_parts(result)
    bullet = "- " if fmt == "md" else ""
    tail = "\n".join(bullet + n for n in notes)
    parts = ("\n".join(bullet + ln for ln in head), format_table(headers, rows, fmt), tail)
    return "\n\n".join(p for p in parts if p)


def _generations_parts(result: Mapping[str, Any]) -> tuple[list[str], list[str], list[list[Any]], list[str]]:
    """(header lines, table headers, table rows, notes) of the generation table."""
    site_names = [format_power(w) for w in result["sites_w"]]
    headers = ["accelerator", "status", "dtype", "dense peak TFLOP/s", "IT W per accel."]
    headers += [h for n in site_names for h in (f"{n} accelerators: point / p50",
                                                f"{n} FLOP/year: point / p50 (p5–p95)")]
    headers += ["FLOP per facility J", "vs H100", "capex per GW", "$ per GPU-hour", "$ per EFLOP"]
    rows, skipped, priced = [], [], []
    for r in result["rows"]:
        if "skipped" in r:
            skipped.append(f"{r['name']}: {r['skipped']}")
            continue
        cells = [r["name"], r["status"], r["dtype"], f"{r['peak_tflops']:g}", f"{r['w_per_accelerator']:.0f}"]
        for s in r["sites"]:
            star = " *" if s["above_scale_limit"] else ""
            acc, fpy = s.get("accelerators_mc"), s.get("flop_per_year_mc")
            cells += [fmt_value(s["accelerators"], "count") + (f" / {fmt_value(acc['p50'], 'count')}" if acc else ""),
                      fmt_value(s["flop_per_year"]) + (f" / {fmt_value(fpy['p50'])} ({fmt_value(fpy['p5'])}–"
                                                       f"{fmt_value(fpy['p95'])})" if fpy else "") + star]
        cells += [fmt_value(r["flop_per_joule"]), f"{r['vs_h100']:.2f}x" if "vs_h100" in r else None]
        cells += [fmt_money(r.get("capex_usd_per_gw")), fmt_money(r.get("usd_per_gpu_hour")),
                  fmt_money(r.get("usd_per_eflop"))]
        if r.get("server_usd_per_gpu") is not None:
            priced.append(f"{r['name']} {fmt_money(r['server_usd_per_gpu'])}")
        rows.append(cells)
    head = [f"gwbench generations — {result['label']}"]
    head += _assumption_lines(result["assumptions"], monte_carlo=False)
    head.append("point: every assumption at its mode; p50 (p5–p95): the Monte Carlo spread over the assumption "
                "ranges, the figures `gwbench project --hardware NAME` prints")
    head.append("W per accelerator: system power / GPUs + network share, or TDP x 1.82 where the table "
                "has no system (`gwbench specs NAME` for sources); preliminary rows are announced figures")
    notes = [f"not shown: {s}" for s in skipped]
    if priced:
        notes.append("cost columns (TCO at the modes of harness/data/costs.toml: straight-line lives, facility, "
                     "energy, opex; capex per GW of facility power; $ per 1e18 training FLOP): server price per "
                     "accelerator " + ", ".join(priced) + "; — = no price in the table; Rubin's is a "
                     "forward-looking estimate from NVIDIA's per-GW figure")
    if any(s["above_scale_limit"] for r in result["rows"] for s in r.get("sites", [])):
        days = result["assumptions"]["days"]
        notes.append(f"* one {days:g}-day run above ~{fmt_value(SCALE_LIMIT_FLOP)} FLOP: "
                     "Epoch (arXiv 2411.01137) finds data movement cutting utilisation past it")
    return head, headers, rows, notes


# ---------------------------------------------------------------- a run's projection


def render_run_projection(result: Mapping[str, Any]) -> str:
    """The Markdown `gwbench run` prints at its end and writes to projection.md."""
    reason = result.get("fallback_reason")
    if reason is None:
        return render_projection(result, "md")
    return (f"No measured projection ({reason}); showing the spec-based projection of reference "
            "generations, not measured.\n\n" + render_generations(result, "md"))


def print_run_projection(result: Mapping[str, Any], console) -> None:
    """The end of `gwbench run` in the terminal: the same figures as projection.md, in the same
    table style as the run's summary (rich), so one run ends in one style."""
    reason = result.get("fallback_reason")
    if reason is None:
        lines, headers, rows, notes = _projection_parts(result)
        tables = [("1 GW / 10 GW projection (point; Monte Carlo p50, p5 – p95)", headers, rows, [])]
        notes = [f"flag: {f}" for f in notes]
    else:
        lines, _, _, notes = _generations_parts(result)
        lines = [f"No measured projection ({reason}); the spec-based projection of reference "
                 "generations, not measured:"] + lines
        _print_generation_tables(result, lines, notes, console)
        return
    for ln in lines:
        console.print(ln, highlight=False, overflow="fold", markup=False)
    for title, headers, rows, optional in tables:
        console.print(rich_table(headers, rows, title=title, width=console.width, optional=optional))
    for n in notes:
        console.print(n, highlight=False, overflow="fold", markup=False)


def _print_generation_tables(result: Mapping[str, Any], lines: list[str], notes: list[str], console) -> None:
    """The generation table in a terminal: the lines, one table per site fitted to the console,
    and the notes, less the one on cost columns when the terminal had no room for them."""
    tables = [rich_table(headers, rows, title=title, width=console.width, optional=optional)
              for title, headers, rows, optional in _generation_site_tables(result)]
    costs_shown = any(c.header == "$ per EFLOP" for t in tables for c in t.columns)
    for ln in lines:
        console.print(ln, highlight=False, overflow="fold", markup=False)
    for t in tables:
        console.print(t)
    for n in notes:
        if costs_shown or not n.startswith("cost columns"):
            console.print(n, highlight=False, overflow="fold", markup=False)


def _generation_site_tables(result: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]], list[int]]]:
    """The generation table for a terminal: one small table per site (accelerators and FLOP per
    year, point and Monte Carlo p50 with p5–p95), so it fits 80 columns."""
    out = []
    for i, w in enumerate(result["sites_w"]):
        headers = ["accelerator", "GPUs: point / p50", "FLOP/year: point / p50 (p5–p95)", "vs H100", "$ per EFLOP"]
        rows = []
        for r in result["rows"]:
            if "skipped" in r:
                continue
            site = r["sites"][i]
            acc, fpy = site.get("accelerators_mc") or {}, site.get("flop_per_year_mc") or {}
            star = " *" if site["above_scale_limit"] else ""
            rows.append([r["name"],
                         f"{_count(site['accelerators'])} / {_count(acc.get('p50'))}",
                         f"{fmt_value(site['flop_per_year'])} / {fmt_value(fpy.get('p50'))} "
                         f"({fmt_value(fpy.get('p5'))}–{fmt_value(fpy.get('p95'))}){star}",
                         f"{r['vs_h100']:.2f}x" if "vs_h100" in r else None, fmt_money(r.get("usd_per_eflop"))])
        out.append((f"{format_power(w)}, spec-based", headers, rows, [4, 3]))
    return out


def _count(n: float | None) -> str:
    """Accelerators for the narrow generation table: millions as 6.29M (the point has three
    significant figures either way), so the 10 GW table fits 80 columns as the 1 GW one does."""
    if n is not None and n >= 1e6:
        return f"{n / 1e6:.3g}M"
    return fmt_value(n, "count")


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
