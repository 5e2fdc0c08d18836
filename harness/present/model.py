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
    if d.get("layer_shapes"):
        ls = d["layer_shapes"]
        lines.append(f"- GEMM shapes of this layout measured exactly: {ls['exact']} of {ls['of']} "
                     "(the rest interpolated from the run's GEMM rows; `gwbench run --only gemm --model ... "
                     "--tp --micro-batch --seq` measures them all)")
    if prof["lacking"]:
        lines.append(f"- lacking in the run (taken from the spec): {'; '.join(prof['lacking'])}")
    if d["search"]:
        lines.append(f"- search: {d['search']['tried']} layouts tried, {d['search']['fit']} fit; fastest shown")
    lines += ["", format_table(["part", "s per step", "share"],
                          [[k, f"{v:.4g}", f"{v / r['step_s']:.1%}"]
                           for k, v in r["breakdown"].items()] + [["step", f"{r['step_s']:.4g}", "100%"]],
                          "md" if fmt == "md" else "text"), ""]
    lines += [f"- tokens/s per GPU: {r['tokens_per_s_per_gpu']:,.0f}",
              f"- MFU {r['mfu']:.1%} (p5-p95 {m['low']:.1%}-{m['high']:.1%}: the back-tests' prediction band); "
              f"HFU {r['hfu']:.1%}; pipeline bubble {r['bubble']:.1%}",
              f"- convention: {r['convention']}",
              "- memory per GPU in GB (1 GB = 1e9 B; 1 GiB = 1.074 GB): "
              + ", ".join(f"{k} {v:.1f}" for k, v in r["memory_gb"].items())
              + f"; total {sum(r['memory_gb'].values()):.1f} of {r['hbm_gb']:.1f} usable"
              + f" (fullest pipeline stage: {r['fullest_stage']})"
              + ("" if r["fits"] else " — DOES NOT FIT (predicted anyway: --no-fit-check)")]
    g = d["goodput"]
    lines.append(f"- goodput at {g['gpus']:,.0f} GPUs: {g['goodput']:.1%} (MTBF {g['mtbf_h']:.2f} h, "
                 f"a {g['checkpoint_s']:.3g} s checkpoint every {g['interval_s']:.0f} s, {g['restart_s']:g} s "
                 "restarts; Young/Daly on harness/data/onerun.toml, as `gwbench project`)")
    for s in d["sites"]:
        gp = s["point"]
        lines.append(f"- {s['site']} site as ONE job: {s['accelerators']:,.0f} accelerators, MTBF "
                     f"{gp['mtbf_h'] * 60:.1f} min, goodput {gp['goodput']:.1%} "
                     f"(range {s['low']:.1%}-{s['high']:.1%}; `gwbench project` finds the job size that "
                     "trains the most)" + (f"; flag: {gp['flag']}" if gp["flag"] else ""))
    return "\n".join(lines)


# ---------------------------------------------------------------- back-tests


def _pct(x: float) -> str:
    return f"{x:+.1%}"


def _tok(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def _summary_line(name: str, s: dict[str, Any]) -> str:
    if not s.get("cases"):
        return f"- {name}: no cases"
    n = s["cases"]
    return (f"- {name}: {n} cases from {s['sources']} sources ({', '.join(s['generations'])}); median |error| "
            f"{s['median_abs_error']:.1%}, max {s['max_abs_error']:.1%}; within +-15%: {s['within_tolerance']}/{n}; "
            f"published inside p5-p95: {s['inside_range']}/{n}; refused for memory: {s['refused_for_memory']}")


def render_backtest(d: dict[str, Any], fmt: str = "md") -> str:
    """`gwbench model --backtest`: the table, the fit, the held-out half and all."""
    if fmt == "json":
        return json_text(d, indent=2)
    tfmt = "md" if fmt == "md" else "text"
    scored = [r for r in d["rows"] if r["status"] == "scored"]
    flagged = [r for r in d["rows"] if r["status"] == "flagged"]

    def table(rows):
        return format_table(
            ["case", "source", "GPUs", "published", "tok/s/GPU published", "predicted", "error", "p5-p95",
             "inside", "half"],
            [[r["id"], r["source"], f"{r['gpus']:,} {r['hardware']}", r["published"],
              _tok(r["published_tokens_per_s_per_gpu"]),
              f"{_tok(r['predicted_tokens_per_s_per_gpu'])} (MFU {r['predicted_mfu']:.1%})", _pct(r["error"]),
              f"{_tok(r['low_tokens_per_s_per_gpu'])}-{_tok(r['high_tokens_per_s_per_gpu'])}",
              "yes" if r["inside"] else "NO", r["half"] + ("" if r["fits"] else ", does not fit")]
             for r in rows], tfmt)

    lines = [f"# gwbench model --backtest: {len(scored)} scored published runs (+{len(flagged)} flagged)", "",
             f"- error = predicted / published throughput - 1 (tokens/s per GPU; each published figure converted "
             f"with its source's FLOP formula); MFU: {d['convention']}",
             f"- split: {d['split_rule']}",
             f"- {d['settle_rule']}",
             "- fitted, ONE set per GPU generation (layer-GEMM efficiency; the p5-p95 band is the prediction "
             "interval of the fit half's log errors):"]
    for g, f in d["fits"].items():
        ship = d["shipped"].get(g, {})
        same = ship.get("gemm_eff") == f["gemm_eff"] and ship.get("band") == f["band"]
        lines.append(f"  - {g}: gemm_eff {f['gemm_eff']:.3f}, band x exp(+-{f['band']:.3f}) from {len(f['cases'])} "
                     f"fit cases ({'= harness/data/perfmodel.toml' if same else 'DIFFERS from harness/data/perfmodel.toml: ' + str(ship)})")
    lines += ["", table(scored), ""]
    for name, key in (("held-out half", "held-out"), ("fit half", "fit"), ("all scored", "all")):
        lines.append(_summary_line(name, d["summary"][key]))
    if flagged:
        lines += ["", f"Flagged (not in the figures above): {len(flagged)} runs resting on recalled or assumed "
                  "values, or refused for memory", "", table(flagged), ""]
        lines += [f"- {r['id']}: {r['flag']}" for r in flagged if r["flag"]]
        lines.append(_summary_line("flagged", d["flagged"]))
    if d["not_used"]:
        lines += ["", "Not usable as back-tests: " + "; ".join(f"{n['id']} ({n['reason']})" for n in d["not_used"])]
    return "\n".join(lines)
