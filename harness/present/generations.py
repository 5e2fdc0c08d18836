"""The generations view (analysis/generations.py) as the terminal's tables, Markdown, JSON or an
HTML page body: rendering only.

Four tables, one question each: compute (dense TFLOP/s), memory and interconnect (GB/s), energy
(work per joule) and the 1 GW projection. Each column says where its figures come from in its
header: "spec", "measured here" or "published". A measured cell names its run by a number ([1])
and a published one its source by a letter ([a]); the lists under the tables spell both out, with
the case and statistic behind each measured figure and the tool, statistic and document behind
each published one. "—" is a figure nobody has: nothing is filled in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.analysis.generations import LINEUP
from harness.core.store import json_text
from harness.present.escape import md
from harness.present.html import esc, html_page
from harness.present.projection import fmt_money
from harness.present.tables import fmt_value, format_table

FORMATS = ("text", "md", "json", "html")
NOISY = "~"


@dataclass
class GCell:
    text: str = "—"
    sort: float | None = None
    kind: str = ""  # spec | measured | published | ratio: the HTML cell's class
    title: str = ""  # the source or the case behind the figure (HTML tooltip)
    run: str | None = None  # the run folder behind a measured figure (HTML link)
    short: str | None = None  # the terminal's text where it differs

    @property
    def terse(self) -> str:
        return self.text if self.short is None else self.short


@dataclass
class GTable:
    title: str
    headers: list[str]
    rows: list[list[GCell]] = field(default_factory=list)
    short_headers: list[str] = field(default_factory=list)  # the terminal's (notes() spell them out)
    optional: list[int] = field(default_factory=list)  # columns a narrow terminal drops, first first


class _Refs:
    """Footnote numbers of the runs ([1]) and letters of the published figures ([a])."""

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}
        self.run_figures: dict[str, list[str]] = {}  # what each run's cells show, and the case behind it
        self.published: dict[tuple, str] = {}
        self.published_text: dict[str, str] = {}
        self.published_terse: dict[str, str] = {}  # the terminal's: without the conditions

    def run(self, label: str, figure: str = "") -> str:
        self.runs.setdefault(label, len(self.runs) + 1)
        if figure and figure not in self.run_figures.setdefault(label, []):
            self.run_figures[label].append(figure)
        return f"[{self.runs[label]}]"

    def pub(self, fig: Mapping) -> str:
        key = (fig["tool"], fig["what"], fig["source"])
        if key not in self.published:
            n = len(self.published)
            letter = chr(ord("a") + n % 26) + (str(n // 26) if n >= 26 else "")
            self.published[key] = letter
            self.published_text[letter] = (f"{fig['tool']}: {fig['what']}, {fig['value']:g}; "
                                           f"{fig['tool_statistic']} (read as the {fig['statistic']}); "
                                           f"{fig['conditions']}; source: {fig['source']}")
            self.published_terse[letter] = (f"{fig['tool']}: {fig['what']}, {fig['value']:g} "
                                            f"({fig['statistic']}); {fig['source']}")
        return f"[{self.published[key]}]"


def _share(fig: Mapping) -> str:
    s = fig.get("share_of_peak")
    return f" ({100 * s:.0f}%)" if s is not None else ""


def _num(v: float | None, fmt: str = ".4g") -> str:
    """Four significant figures; 10,000 and above whole, with separators (never 2.2e+04)."""
    if v is None:
        return "—"
    return f"{v:,.0f}" if abs(v) >= 1e4 and fmt == ".4g" else format(v, fmt)


def _spec(fig: Mapping | None, fmt: str = ".4g", suffix: str = "") -> GCell:
    if not fig:
        return GCell(kind="spec")
    return GCell(f"{_num(fig['value'], fmt)}{suffix}", fig["value"], "spec", f"spec: {fig.get('source', '')}")


def _measured(fig: Mapping | None, refs: _Refs, what: str, fmt: str = ".4g") -> GCell:
    if not fig:
        return GCell(kind="measured")
    flags = (NOISY if fig.get("noisy") else "") + (" UNSTABLE" if fig.get("unstable") else "")
    ref = refs.run(fig["run"], f"{what} {_num(fig['value'], fmt)}: {fig['case']}")
    return GCell(f"{_num(fig['value'], fmt)}{_share(fig)}{flags} {ref}", fig["value"],
                 "measured", f"measured here, {fig['statistic']}: {fig['case']} in {fig['run']}", fig["run"])


def _published(fig: Mapping | None, refs: _Refs) -> GCell:
    if not fig:
        return GCell(kind="published")
    return GCell(f"{_num(fig['value'])}{_share(fig)} {refs.pub(fig)}", fig["value"], "published",
                 f"published ({fig['tool']}, {fig['statistic']}): {fig['source']}")


def _ratio(r: Mapping, metric: str, names: Mapping[str, str]) -> GCell:
    x = (r.get("vs_previous") or {}).get(metric)
    if not x:
        return GCell(kind="ratio")
    note = f" ({x['note']})" if x.get("note") else ""
    return GCell(f"{x['value']:.2f}x {x['basis']}{note}", x["value"], "ratio",
                 f"{r['name']} ÷ {names.get(r['previous'], r['previous'])}, from {x['basis']} figures{note}",
                 short=f"{x['value']:.2f}x {SHORT_BASIS[x['basis']]}")


SHORT_BASIS = {"measured": "meas.", "published": "pub.", "spec": "spec"}


def _name(r: Mapping) -> GCell:
    return GCell(f"{r['name']} ({r['year']})", float(r["year"]), "", f"{r['vendor']} {r['name']}, {r['status']}",
                 short=r["name"])


def tables(view: Mapping[str, Any]) -> tuple[list[GTable], _Refs]:
    """The view's four tables and the footnotes their cells refer to."""
    refs = _Refs()
    stat = view["statistic"]
    names = {r["key"]: r["name"] for r in view["rows"]}
    compute = GTable("compute: dense TFLOP/s per accelerator, (NN%) = share of the spec peak",
                     ["generation", "bf16 spec", "fp8 spec", f"bf16 GEMM measured here ({stat})",
                      "bf16 GEMM published", f"fp8 GEMM measured here ({stat})", "fp8 GEMM published",
                      f"bf16 attention measured here ({stat})", "bf16 GEMM vs previous"],
                     short_headers=["generation", "bf16 spec", "fp8 spec", "bf16 meas.", "bf16 pub.",
                                    "fp8 meas.", "fp8 pub.", "attn meas.", "vs prev."],
                     optional=[5, 6, 7, 2])
    memory = GTable("memory and interconnect: GB/s per accelerator, (NN%) = share of the spec figure",
                    ["generation", "HBM spec", f"HBM triad measured here ({stat})", "HBM triad published",
                     "NVLink spec (one way)", "all_reduce busbw measured here (median)",
                     "all_reduce busbw published", "HBM vs previous"],
                    short_headers=["generation", "HBM spec", "triad meas.", "triad pub.", "NVLink spec",
                                   "busbw meas.", "busbw pub.", "vs prev."],
                    optional=[5, 6, 4])
    energy = GTable("energy: work per joule (= per watt) of one accelerator",
                    ["generation", "TDP W spec", "TFLOP/J spec (train dtype peak ÷ TDP)",
                     "TFLOP/J measured here (bf16 GEMM)", "GB/J spec (HBM ÷ TDP)", "GB/J measured here (triad)",
                     "TFLOP/J vs previous"],
                    short_headers=["generation", "TDP W", "TFLOP/J spec", "TFLOP/J meas.", "GB/J spec",
                                   "GB/J meas.", "vs prev."],
                    optional=[4, 5, 1])
    proj = GTable("1 GW projection: spec-based point estimates at the default assumptions",
                  ["generation", "dtype", "IT W per accelerator", "accelerators at 1 GW",
                   "training FLOP/year at 1 GW", "FLOP/year at 10 GW", "capex per GW", "$ per GPU-hour",
                   "$ per 1e18 FLOP", "FLOP/year vs previous"],
                  short_headers=["generation", "dtype", "W/accel.", "accel. 1 GW", "FLOP/yr 1 GW",
                                 "FLOP/yr 10 GW", "capex/GW", "$/GPU-h", "$/1e18 FLOP", "vs prev."],
                  optional=[1, 5, 2, 6, 7, 8])
    rows = view["rows"]
    for r in rows:  # table by table, so footnotes run in reading order
        s, m, p = r["spec"], r["measured"], r["published"]
        train = s.get("train_tflops")
        bf16 = _spec(s["bf16_tflops"])
        if s["bf16_tflops"] is None and train:  # V100: fp16 was its training dtype
            bf16 = GCell(f"— ({train['dtype']} {train['value']:g})", None, "spec", f"spec: {train['source']}")
        compute.rows.append([_name(r), bf16, _spec(s["fp8_tflops"]), _measured(m["gemm_bf16"], refs, "bf16 GEMM"),
                             _published(p["gemm_bf16"], refs), _measured(m["gemm_fp8"], refs, "fp8 GEMM"),
                             _published(p["gemm_fp8"], refs), _measured(m["attention_bf16"], refs, "bf16 attention"),
                             _ratio(r, "gemm_bf16", names)])
    for r in rows:
        s, m, p = r["spec"], r["measured"], r["published"]
        memory.rows.append([_name(r), _spec(s["hbm_gbps"]), _measured(m["hbm_triad"], refs, "HBM triad"),
                            _published(p["hbm_triad"], refs), _spec(s["scaleup_gbps"]),
                            _measured(m["busbw"], refs, "busbw"), _published(p["busbw"], refs), _ratio(r, "hbm", names)])
    for r in rows:
        s, m = r["spec"], r["measured"]
        tj = s["tflop_per_j"]
        tj_cell = _spec(tj, ".3g", f" {tj['dtype']}" if tj and tj.get("dtype") != "bf16" else "")
        energy.rows.append([_name(r), _spec(s["tdp_w"], "g"), tj_cell, _measured(m["tflop_per_j"], refs, "TFLOP/J", ".3g"),
                            _spec(s["gb_per_j"], ".3g"), _measured(m["gb_per_j"], refs, "GB/J", ".3g"),
                            _ratio(r, "per_watt", names)])
    for r in rows:
        pr = r["projection"]
        if pr is None:
            proj.rows.append([_name(r)] + [GCell(kind="spec") for _ in proj.headers[1:-1]] + [GCell(kind="ratio")])
            continue
        star = " *" if pr["above_scale_limit"] else ""
        proj.rows.append([
            _name(r), GCell(str(pr["dtype"]), None, "spec", "the training dtype of the projection"),
            GCell(_num(pr["w_per_accelerator"], ".0f"), pr["w_per_accelerator"], "spec", pr.get("power_source") or ""),
            GCell(fmt_value(pr["accelerators_1gw"], "count"), pr["accelerators_1gw"], "spec"),
            GCell(fmt_value(pr["flop_per_year_1gw"]) + star, pr["flop_per_year_1gw"], "spec"),
            GCell(fmt_value(pr["flop_per_year_10gw"]), pr["flop_per_year_10gw"], "spec"),
            GCell(fmt_money(pr["capex_usd_per_gw"]), pr["capex_usd_per_gw"], "spec"),
            GCell(fmt_money(pr["usd_per_gpu_hour"]), pr["usd_per_gpu_hour"], "spec"),
            GCell(fmt_money(pr["usd_per_eflop"]), pr["usd_per_eflop"], "spec"),
            _ratio(r, "flop_per_year", names)])
    return [compute, memory, energy, proj], refs


def notes(view: Mapping[str, Any], refs: _Refs, terse: bool = False) -> list[str]:
    """What every mark in the tables means, the runs behind [n] and the documents behind [a]."""
    stat = view["statistic"]
    by_label = {x["run"]: x for x in view["runs"]}
    out = [
        view["bases"]["spec"] + "; dense peaks (no 2:4 sparsity); `gwbench specs NAME --sources`",
        f"measured here: the best ok row of the runs below at its {stat} (busbw: nccl-tests' figure, the median "
        "over trials; per joule: the row's median rate over the mean power of a window of 1 s or more, never a "
        f"shorter one); {NOISY} noisy (IQR over 10% of the median); UNSTABLE: the run's reference kernel moved",
        "published: " + view["bases"]["published"] + "; each tool's statistic as it published it",
        "busbw share of the NVLink figure: above 100% with NVLS (the switch reduces; busbw's 2(n-1)/n "
        "factor assumes ring traffic)",
        "vs previous: this row ÷ the one before it on "
        + "; ".join(" → ".join(line) for line in LINEUP)
        + " — from measured figures where both were measured here, else published where both were "
          "published, else spec (the basis is named in the cell)",
        "projection: " + view["projection_label"] + "; * one 365-day run above ~1e28 FLOP, where Epoch "
        "(arXiv 2411.01137) finds data movement cutting utilisation; — no price in harness/data/costs.toml",
    ]
    for label, n in refs.runs.items():
        x = by_label.get(label, {})
        out.append(f"[{n}] {label} (run {x.get('run_id')}, {x.get('device')}): "
                   + "; ".join(refs.run_figures.get(label, [])))
    for letter, text in (refs.published_terse if terse else refs.published_text).items():
        out.append(f"[{letter}] {text}")
    for x in view["not_placed"]:
        out.append(f"not placed: {x['run']} ({x['why']})")
    if not view["runs"]:
        out.append("no gwbench run on a GPU of the table was given: every measured column is empty "
                   "(`gwbench generations RESULTS_DIR` or RUN ...)")
    return out


# ------------------------------------------------------------------ formats


def render_md(view: Mapping[str, Any]) -> str:
    ts, refs = tables(view)
    parts = ["# gwbench generations: spec, measured here, published"]
    for t in ts:
        parts.append(f"## {md(t.title)}\n\n" + format_table(t.headers, [[c.text for c in r] for r in t.rows], "md"))
    parts.append("\n".join(f"- {md(n)}" for n in notes(view, refs)))
    return "\n\n".join(parts) + "\n"


def render_json(view: Mapping[str, Any]) -> str:
    return json_text(view, indent=1, sort_keys=True) + "\n"


def print_text(view: Mapping[str, Any], console) -> None:
    """The terminal: each table in rich's style, fitted to the console's width (columns the
    terminal cannot hold are dropped, least wanted first; figures are never cut)."""
    from rich.markup import escape

    from harness.present.tables import rich_table

    ts, refs = tables(view)
    console.print("gwbench generations: spec, measured here, published", highlight=False, markup=False)
    for t in ts:  # escaped: rich would read the footnote "[a]" as markup
        console.print(rich_table([escape(h) for h in t.short_headers], [[escape(c.terse) for c in r] for r in t.rows],
                                 title=escape(t.title), width=console.width, optional=t.optional))
    console.print("meas. = measured here, pub. = published, spec = the hardware table; vs prev. = this row ÷ "
                  "the one before it (basis named); --format md or html spells out each column",
                  highlight=False, markup=False, overflow="fold")
    for n in notes(view, refs, terse=True):
        console.print(n, highlight=False, markup=False, overflow="fold")


def render_html_body(view: Mapping[str, Any], run_href: Mapping[str, str] | None = None) -> str:
    """The generations page: the tables (sortable; each cell's source in its tooltip, a measured
    cell linked to its run's page where `run_href` has it) and the notes."""
    ts, refs = tables(view)
    hrefs = run_href or {}
    parts = ["<h1>hardware generations: spec, measured here, published</h1>",
             "<p class=\"note\">Cells are shaded by where the figure comes from: "
             "<span class=\"measured\">measured here</span>, <span class=\"published\">published</span>, "
             "spec (grey). Hover a cell for its source; click a column's header to sort.</p>"]
    for t in ts:
        head = "".join(f"<th>{esc(h)}</th>" for h in t.headers)
        trs = []
        for row in t.rows:
            tds = []
            for c in row:
                attrs = (f" class=\"{c.kind}\"" if c.kind in ("measured", "published", "spec") else "")
                attrs += f" data-sort=\"{c.sort:.9g}\"" if c.sort is not None else ""
                attrs += f" title=\"{esc(c.title)}\"" if c.title else ""
                text = esc(c.text)
                if c.run and c.run in hrefs:
                    text = f"<a href=\"{esc(hrefs[c.run])}\">{text}</a>"
                tds.append(f"<td{attrs}>{text}</td>")
            trs.append("<tr>" + "".join(tds) + "</tr>")
        parts.append(f"<h2>{esc(t.title)}</h2><div class=\"wide\"><table class=\"generations\"><thead><tr>"
                     f"{head}</tr></thead><tbody>{''.join(trs)}</tbody></table></div>")
    items = []
    for n in notes(view, refs):
        m = re.match(r"\[\d+\] (\S+)", n)
        label = m.group(1) if m else ""
        text = esc(n)
        if label in hrefs:
            text = text.replace(esc(label), f"<a href=\"{esc(hrefs[label])}\">{esc(label)}</a>", 1)
        items.append(f"<li>{text}</li>")
    parts.append("<ul class=\"note\">" + "".join(items) + "</ul>")
    return "\n".join(parts)


def render_html(view: Mapping[str, Any]) -> str:
    return html_page("gwbench generations", render_html_body(view))


RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {"md": render_md, "json": render_json,
                                                            "html": render_html}


def render(view: Mapping[str, Any], fmt: str) -> str:
    return RENDERERS[fmt](view)

