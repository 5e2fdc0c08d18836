"""`gwbench compare` as Markdown and HTML: rendering only (analysis/compare.py computes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.analysis.compare import ALPHA, MARKS, MIN_CHANGE, SYMBOL
from harness.present.escape import md
from harness.present.html import esc


def _x(v: float | None, fmt: str = ".3f") -> str:
    return "—" if v is None else f"{v:{fmt}}x"


def _fig(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"


def render_md(result: Mapping[str, Any], show_same: bool = True) -> str:
    a, b = result["a"], result["b"]
    lines = [f"## {md(b['run_id'])} vs baseline {md(a['run_id'])}", "",
             f"- A: {md(a['device'])}; B: {md(b['device'])}" +
             ("" if result["same_hardware"] else " (different hardware: measured vs spec ratios below)"),
             "- ratio = B rate / A rate (> 1: B faster); better/worse need Mann-Whitney p < "
             f"{ALPHA} on the raw samples and a change above {MIN_CHANGE:.0%}"]
    lines += [f"- software changed: {md(s)}" for s in result.get("software", [])]
    if result.get("unstable"):
        lines.append(f"- UNSTABLE: {md(result['unstable'])}")
    lines += ["", "| family | geomean ratio | cases | perf/W ratio | " +
              " | ".join(MARKS) + " |", "|---|---:|---:|---:|" + "---:|" * len(MARKS)]
    for fam, f in result["families"].items():
        lines.append(f"| {md(fam)} | {_x(f['geomean_ratio'])} | {f['n']} | {_x(f['perf_per_w_ratio'])} | "
                     + " | ".join(str(f["marks"][m]) for m in MARKS) + " |")
    spec_rows = [(fam, dt, s) for fam, f in result["families"].items() for dt, s in f["vs_spec"].items()]
    if spec_rows:
        lines += ["", "| family | dtype | measured ratio | spec ratio | measured / spec |", "|---|---|---:|---:|---:|"]
        for fam, dt, s in spec_rows:
            rel = s["measured"] / s["spec"] if s["measured"] and s["spec"] else None
            lines.append(f"| {md(fam)} | {md(dt or '-')} | {_x(s['measured'])} | {_x(s['spec'])} | {_x(rel, '.2f')} |")
    lines += ["", "| mark | case | A | B | unit | ratio | judged by |", "|---|---|---:|---:|---|---:|---|"]
    for c in result["cases"]:
        if c["mark"] == "same" and not show_same:
            continue
        lines.append(f"| {SYMBOL[c['mark']]} {c['mark']} | {md(c['case_id'])} | {_fig(c['a_value'])} | "
                     f"{_fig(c['b_value'])} | {md(c['unit'])} | {_x(c['ratio'])} | {md(c['how'])} |")
    return "\n".join(lines)


def render_html(result: Mapping[str, Any]) -> str:
    a, b = result["a"], result["b"]
    out = [f"<h2>{esc(b['run_id'])} vs baseline {esc(a['run_id'])}</h2>",
           f"<p>A: {esc(a['device'])}; B: {esc(b['device'])}. Ratio = B rate / A rate (&gt; 1: B faster); "
           f"better/worse need Mann-Whitney p &lt; {ALPHA} and a change above {MIN_CHANGE:.0%}.</p>"]
    if result.get("software"):
        out.append("<p class=\"note\">software changed: " + esc("; ".join(result["software"])) + "</p>")
    if result.get("unstable"):
        out.append("<p class=\"note\">UNSTABLE: " + esc(result["unstable"]) + "</p>")
    head = "".join(f"<th>{esc(h)}</th>" for h in ("family", "geomean ratio", "cases", "perf/W ratio", *MARKS))
    trs = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in (
        fam, _x(f["geomean_ratio"]), f["n"], _x(f["perf_per_w_ratio"]), *(f["marks"][m] for m in MARKS)))
        + "</tr>" for fam, f in result["families"].items())
    out.append(f"<div class=\"wide\"><table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table></div>")
    spec = [(fam, dt, s) for fam, f in result["families"].items() for dt, s in f["vs_spec"].items()]
    if spec:
        trs = "".join(f"<tr><td>{esc(fam)}</td><td>{esc(dt or '-')}</td><td>{_x(s['measured'])}</td>"
                      f"<td>{_x(s['spec'])}</td></tr>" for fam, dt, s in spec)
        out.append("<div class=\"wide\"><table><thead><tr><th>family</th><th>dtype</th><th>measured ratio</th>"
                   f"<th>spec ratio</th></tr></thead><tbody>{trs}</tbody></table></div>")
    trs = []
    for c in result["cases"]:
        cls = {"better": "better", "worse": "worse", "newly failing": "worse", "fixed": "better"}.get(c["mark"], "")
        trs.append(f"<tr class=\"{cls}\">" + "".join(f"<td>{esc(v)}</td>" for v in (
            c["mark"], c["case_id"], _fig(c["a_value"]), _fig(c["b_value"]), c["unit"], _x(c["ratio"]),
            c["how"])) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("mark", "case", "A", "B", "unit", "ratio", "judged by"))
    out.append(f"<div class=\"wide\"><table><thead><tr>{head}</tr></thead><tbody>{''.join(trs)}</tbody></table></div>")
    return "\n".join(out)
