"""`gwbench model` as Markdown, text or JSON: rendering only (analysis/perfmodel computes)."""

from __future__ import annotations

from typing import Any

from harness.core.store import json_text
from harness.present.tables import format_table


def render(d: dict[str, Any], fmt: str = "md") -> str:
    if fmt == "json":
        return json_text(d, indent=2)
    r, prof, lay = d["result"], d["profile"], d["result"]["layout"]
    m = d["mfu_range"]
    lines = [f"# gwbench model — {d['model']} ({d['params'] / 1e9:.0f}B params, "
             f"{d['active_params'] / 1e9:.0f}B active) on {lay['gpus']:,} x {prof['name']}",
             "",
             f"- layout: TP{lay['tp']} CP{lay['cp']} PP{lay['pp']} (virtual {lay['vpp']}) DP{lay['dp']}, "
             f"micro-batch {lay['micro_batch']} x {lay['micro_batches']}, seq {lay['seq']}, "
             f"batch {lay['batch_tokens']:,} tokens, zero {lay['zero']}, recompute {lay['recompute']}, "
             f"{lay['precision']}",
             f"- profile: {prof['source']}; measured: {'; '.join(prof['measured']) or 'nothing'}",
             f"- assumed: {'; '.join(prof['assumed']) or 'nothing'}"]
    if prof["lacking"]:
        lines.append(f"- lacking in the run (taken from the spec): {'; '.join(prof['lacking'])}")
    if d["search"]:
        lines.append(f"- search: {d['search']['tried']} layouts tried, {d['search']['fit']} fit; fastest shown")
    lines += ["", format_table(["part", "s per step", "share"],
                          [[k, f"{v:.4g}", f"{v / r['step_s']:.1%}"]
                           for k, v in r["breakdown"].items()] + [["step", f"{r['step_s']:.4g}", "100%"]],
                          "md" if fmt == "md" else "text"), ""]
    lines += [f"- tokens/s per GPU: {r['tokens_per_s_per_gpu']:,.0f}",
              f"- MFU {r['mfu']:.1%} (range {m['low']:.1%}-{m['high']:.1%} from the uncertain rates); "
              f"HFU {r['hfu']:.1%}; pipeline bubble {r['bubble']:.1%}",
              f"- convention: {r['convention']}",
              "- memory per GPU in GB (1 GB = 1e9 B; 1 GiB = 1.074 GB): "
              + ", ".join(f"{k} {v:.1f}" for k, v in r["memory_gb"].items())
              + f"; total {sum(r['memory_gb'].values()):.1f} of {r['hbm_gb']:.1f} usable"
              + ("" if r["fits"] else " — DOES NOT FIT")]
    g = d["goodput"]
    lines.append(f"- goodput at {g['gpus']:,.0f} GPUs: {g['goodput']:.1%} (MTBF {g['mtbf_h']:.2f} h, "
                 f"checkpoint every {g['interval_s']:.0f} s, Young/Daly; Llama 3 failure rate)")
    for s in d["sites"]:
        gp = s["point"]
        lines.append(f"- {s['site']} site: {s['accelerators']:,.0f} accelerators, MTBF "
                     f"{gp['mtbf_h'] * 60:.1f} min, one-job goodput {gp['goodput']:.1%} "
                     f"(range {s['low']:.1%}-{s['high']:.1%})" + (f"; flag: {gp['flag']}" if gp["flag"] else ""))
    return "\n".join(lines)
