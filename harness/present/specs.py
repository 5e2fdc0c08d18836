"""`gwbench specs`: the hardware table as tables, every figure with its source."""

from __future__ import annotations

from typing import Any

from harness.core.specs import FIGURE_FIELDS, SYSTEM_FIGURES, Accelerator, Figure, HardwareTable, System
from harness.present.tables import format_table


def _v(fig: Figure | None) -> str | None:
    return None if fig is None else f"{fig.value:g}"


def overview(table: HardwareTable, fmt: str = "text") -> str:
    """All accelerators and systems, one row each (dense TFLOP/s)."""
    acc_rows = [
        [a.name, a.vendor, a.year, a.status,
         *(_v(a.dense_tflops.get(t)) for t in ("bf16", "fp8", "fp4", "tf32")),
         _v(a.hbm_gb), _v(a.hbm_tbps), _v(a.tdp_w), table.systems[a.system].name if a.system else None]
        for a in table.accelerators.values()
    ]
    sys_rows = [
        [s.name, table.accelerators[s.accelerator].name, s.gpu_count, _value_text(s.power_kw),
         f"{s.watts_per_gpu:.0f}", _ratio(s, table.accelerators[s.accelerator]), s.status]
        for s in table.systems.values()
    ]
    head = "Accelerators (dense peaks, no sparsity; per package)"
    return "\n\n".join([
        head, format_table(["accelerator", "vendor", "year", "status", "bf16 TFLOP/s", "fp8", "fp4", "tf32",
                            "HBM GB", "HBM TB/s", "TDP W", "system"], acc_rows, fmt),
        "Systems (rated maximum power)",
        format_table(["system", "accelerator", "GPUs", "power kW", "W per GPU", "x TDP", "status"],
                     sys_rows, fmt),
        f"source of every figure: `gwbench specs NAME`; table: {table.path}",
    ])


def _value_text(f: Figure) -> str:
    if f.low is None and f.high is None:
        return f"{f.value:g}"
    end = lambda x: "?" if x is None else f"{x:g}"  # noqa: E731 - a range may be open on one side
    return f"{f.value:g} ({end(f.low)}-{end(f.high)})"


def _ratio(s: System, a: Accelerator) -> str | None:
    return f"{s.watts_per_gpu / a.tdp_w.value:.2f}" if a.tdp_w else None


def describe(entry: Accelerator | System, fmt: str = "text") -> str:
    """Every figure of one entry with its source and note."""
    rows: list[list[Any]] = []
    if isinstance(entry, Accelerator):
        facts = [("vendor", entry.vendor), ("year", entry.year), ("status", entry.status),
                 ("aliases", ", ".join(entry.aliases)), ("system", entry.system), ("note", entry.note)]
        figs = [(f"dense {k} TFLOP/s", f) for k, f in entry.dense_tflops.items()]
        figs += [(f"mamf-finder {k} TFLOP/s", f) for k, f in entry.mamf_tflops.items()]
        figs += [(k, getattr(entry, k)) for k in FIGURE_FIELDS if getattr(entry, k)]
    else:
        facts = [("accelerator", entry.accelerator), ("status", entry.status), ("note", entry.note)]
        figs = [("gpus", entry.gpus), ("power_kw", entry.power_kw)]
        figs += [(k, getattr(entry, k)) for k in SYSTEM_FIGURES if getattr(entry, k)]
    rows = [[k, _value_text(f), f.source, f.note or None] for k, f in figs]
    info = "; ".join(f"{k}: {v}" for k, v in facts if v not in (None, ""))
    return f"{entry.name} ({info})\n\n" + format_table(["figure", "value", "source", "note"], rows, fmt)


def sources_for(entry: Accelerator | System, text: str) -> str:
    """The parts of docs/sources.md (`text`) about one entry: under each section, the lines and
    table rows naming it, with the section's own source notes (the paragraph after its table)."""
    names = {entry.name, entry.key, *getattr(entry, "aliases", ())}
    if isinstance(entry, System):
        names.add(entry.accelerator)
    words = {n.lower() for n in names if n} | {n.split(" (")[0].lower() for n in names if n}
    out: list[str] = []
    section: list[str] = []
    head = ""

    def flush() -> None:
        hits = [ln for ln in section if any(w in ln.lower() for w in words)]
        notes = [ln for ln in section if ln.startswith(("Sources:", "Source:"))]
        if hits:
            out.extend([head, *hits, *notes, ""])

    for line in text.splitlines():
        if line.startswith("## "):
            flush()
            head, section = line, []
        else:
            section.append(line)
    flush()
    what = "\n".join(out).strip()
    return (f"{entry.name}: every \"REF\" above means docs/sources.md; its lines about this entry:\n\n"
            + (what or "(no line names it; `gwbench specs --sources` with no NAME prints the whole file)"))
