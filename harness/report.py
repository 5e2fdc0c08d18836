"""Render a run as Markdown, CSV or JSON: one table per family, noisy cells flagged."""

from __future__ import annotations

import io
import json

from harness.progress import shape_text
from harness.results import to_frame

FORMATS = ("md", "csv", "json")
CSV_COLUMNS = ("case_id", "family", "op", "dtype", "backend", "world_size", "label", "status",
               "error", "time_s", "time_iqr_s", "n_samples", "noisy", "flop", "bytes",
               "tflops", "gbps", "power_w", "energy_j", "power_source", "tflops_per_w")


def _num(v, fmt: str = ".4g") -> str:
    return "" if v is None or v != v else format(v, fmt)


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def header_md(meta: dict) -> str:
    d = meta.get("device", {})
    sw = d.get("software", {})
    lines = [f"# gwbench run {meta.get('run_id')}", "",
             f"- status: {meta.get('status')}; started {meta.get('started_at')}, "
             f"finished {meta.get('finished_at')}",
             f"- device: {d.get('name')} ({d.get('backend')}) × {d.get('count')}",
             f"- software: torch {sw.get('torch')} (CUDA {sw.get('torch_cuda')}), "
             f"python {sw.get('python')}, driver {d.get('driver_version', 'n/a')}",
             f"- power limit: {d.get('power_limit_w', 'n/a')} W; telemetry: "
             f"{(meta.get('telemetry') or {}).get('source', 'n/a')}",
             f"- git: {(meta.get('git') or {}).get('commit')} "
             f"(dirty: {(meta.get('git') or {}).get('dirty')})"]
    return "\n".join(_md_escape(x) if x.startswith("- ") else x for x in lines)


def family_md(family: str, rows: list[dict]) -> str:
    out = [f"## {family}", "",
           "| op | case | dtype | status | median ms | IQR % | TFLOP/s | GB/s | W | TFLOP/s/W | note |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        t, iqr = r.get("time_s"), r.get("time_iqr_s")
        iqr_pct = 100 * iqr / t if t and iqr is not None else None
        note = r.get("error") or ("noisy" if r.get("noisy") else "")
        case = f"{r.get('label') or ''} {shape_text(r)}".strip()
        out.append("| " + " | ".join(_md_escape(x) for x in (
            r["op"], case, r["dtype"], r["status"], _num(t * 1e3 if t else None),
            _num(iqr_pct, ".1f"), _num(r.get("tflops")), _num(r.get("gbps")),
            _num(r.get("power_w"), ".0f"), _num(r.get("tflops_per_w"), ".3g"), note)) + " |")
    return "\n".join(out)


def render(meta: dict, rows: list[dict], fmt: str = "md") -> str:
    if fmt == "json":
        return json.dumps({"run": meta, "rows": rows}, indent=1, sort_keys=True)
    if fmt == "csv":
        frame = to_frame(rows)
        cols = [c for c in CSV_COLUMNS if c in frame.columns]
        cols += sorted(c for c in frame.columns if c.startswith("p_"))
        buf = io.StringIO()
        frame[cols].to_csv(buf, index=False)
        return buf.getvalue()
    parts = [header_md(meta)]
    families: dict[str, list[dict]] = {}
    for r in rows:
        families.setdefault(r["family"], []).append(r)
    for fam, fam_rows in families.items():
        parts.append(family_md(fam, fam_rows))
    if not rows:
        parts.append("(no rows yet)")
    return "\n\n".join(parts) + "\n"
