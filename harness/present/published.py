"""Published reference figures beside a measured run (analysis/published.py), as Markdown and
HTML: rendering only. Every published figure is labelled "published" with its source."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.present.html import esc

HEADERS = ("published figure", "tool", "published", "its statistic", "this run", "statistic",
           "run / published", "source")


def _cells(line: Mapping[str, Any]) -> list[str]:
    f, m = line["figure"], line["measured"]
    ours = "not measured in this run"
    if m is not None:
        ours = f"{m['value']:.4g} {f['unit']}" + (" (noisy)" if m.get("noisy") else "")
        if m.get("note"):
            ours += f"; {m['note']}"
    ratio = f"{line['ratio']:.3f}x" if line.get("ratio") else "—"
    return [f"{f['what']} ({f['conditions']})", f["tool"], f"{f['value']:g} {f['unit']} (published)",
            f["tool_statistic"], ours, m["statistic"] if m else "", ratio, f["source"]]


def render_md(result: Mapping[str, Any]) -> str:
    def md(s: Any) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    gen = result.get("generation")
    lines = [f"## {md(result.get('run_id'))} beside published figures ({md(gen or 'no generation')})", ""]
    if result.get("unstable"):
        lines.append("- UNSTABLE run: its figures are not steady (run.json `stability`)")
    if not result["lines"]:
        lines.append("No published figure for this hardware in harness/data/published.toml"
                     + ("" if gen else " (the run's device is not in the hardware table)") + ".")
        return "\n".join(lines)
    lines += ["Published figures are other people's measurements with their sources "
              "(harness/data/published.toml), never gwbench's; the run's figure is taken at the "
              "statistic closest to the tool's.", "",
              "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(md(c) for c in _cells(line)) + " |" for line in result["lines"]]
    return "\n".join(lines)


def render_html(result: Mapping[str, Any]) -> str:
    gen = result.get("generation")
    out = [f"<h2>{esc(result.get('run_id'))} beside published figures ({esc(gen or 'no generation')})</h2>"]
    if result.get("unstable"):
        out.append("<p class=\"note\">UNSTABLE run: its figures are not steady</p>")
    if not result["lines"]:
        out.append("<p>No published figure for this hardware.</p>")
        return "\n".join(out)
    head = "".join(f"<th>{esc(h)}</th>" for h in HEADERS)
    trs = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in _cells(line)) + "</tr>"
                  for line in result["lines"])
    out.append("<p class=\"note\">Published figures are other people's, with their sources; never "
               "gwbench's measurements.</p>")
    out.append(f"<div class=\"wide\"><table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table></div>")
    return "\n".join(out)
